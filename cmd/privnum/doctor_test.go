package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/privnum/privnum/ari"
	"github.com/privnum/privnum/ari/arisim"
	"github.com/privnum/privnum/internal/redistest"
)

// nopHandler holds an ARI event connection open, as serve does.
type nopHandler struct{}

func (nopHandler) Connected(context.Context) {}
func (nopHandler) HandleEvent(ari.Event)     {}

// TestDoctor runs `privnum doctor` with serve's flags against the simulator
// set up like asterisk-conf's drop-ins: all clear, then a warning (exit 0,
// 1 with --strict), then the leaking send_pai combination (exit 1, naming
// the option and the fix).
func TestDoctor(t *testing.T) {
	c := newCLI(t)
	c.ok("pool", "add", "17000000000", "17000000001", "17000000002", "17000000003", "17000000004", "17000000005")
	rdb := redistest.ClientFor(t, c.url)
	aof := func(ctx context.Context, n *redis.Client) error { return n.ConfigSet(ctx, "appendonly", "yes").Err() }
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		if err := cc.ForEachMaster(context.Background(), aof); err != nil {
			t.Fatal(err)
		}
	} else if err := aof(context.Background(), rdb.(*redis.Client)); err != nil {
		t.Fatal(err)
	}

	sim := arisim.New(arisim.Options{Username: "u", Password: "p"})
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	for _, ep := range []string{"trunk-in", "carrier"} {
		for _, o := range []string{"send_connected_line", "trust_connected_line", "send_pai", "send_rpid", "send_diversion", "send_history_info", "trust_id_outbound"} {
			sim.SetEndpointOption(ep, o, "no")
		}
	}
	client, err := ari.New(ari.Config{URL: sim.URL(), Username: "u", Password: "p", Application: "privnum"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { client.Run(ctx, nopHandler{}); close(done) }()
	defer func() { cancel(); <-done }()
	waitOrFail(t, func() bool { return sim.Connected("privnum") })

	args := []string{"doctor", "--ari-url", sim.URL(), "--ari-user", "u", "--ari-password", "p", "--recording-dir", t.TempDir(), "--min-headroom", "3"}
	out, errs, code := c.run(args...)
	if code != 0 {
		t.Fatalf("healthy: exit %d: %s\n%s", code, errs, out)
	}
	for _, want := range []string{"✓ redis ", "✓ ari ", "✓ modules", "✓ stasis application", "✓ endpoint carrier ", "✓ endpoint trunk-in ", "✓ pool headroom"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	// A warning: exit 0, and 1 with --strict.
	sim.SetEndpointOption("carrier", "from_user", "acct42")
	out, _, code = c.run(args...)
	if code != 0 || !strings.Contains(out, "! endpoint carrier from_user") || !strings.Contains(out, "fix: remove from_user from endpoint carrier") {
		t.Errorf("from_user: exit %d:\n%s", code, out)
	}
	if _, _, code := c.run(append(args, "--strict")...); code != 1 {
		t.Errorf("--strict with a warning: exit %d, want 1", code)
	}

	// The combination that leaked on a real Asterisk: a failure.
	sim.SetEndpointOption("carrier", "send_pai", "yes")
	sim.SetEndpointOption("carrier", "send_connected_line", "yes")
	out, errs, code = c.run(append(args, "--json")...)
	if code != 1 || !strings.Contains(errs, "failed") {
		t.Fatalf("send_pai: exit %d, stderr %q", code, errs)
	}
	var rep struct {
		OK       bool
		Findings []struct{ Check, Status, Found, Fix string }
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	found := false
	for _, f := range rep.Findings {
		if f.Check == "endpoint carrier send_pai" {
			found = f.Status == "fail" && strings.Contains(f.Fix, "set send_connected_line=no on endpoint carrier")
		}
	}
	if rep.OK || !found {
		t.Errorf("--json: %+v", rep)
	}

	// Flags are checked like serve's.
	if _, _, code := c.run("doctor", "--ari-url", "ftp://x"); code != 2 {
		t.Errorf("bad --ari-url: exit %d, want 2", code)
	}
}

// TestPoolForecast: the CLI shows, per area, the pool, what the busiest
// party holds and the headroom.
func TestPoolForecast(t *testing.T) {
	c := newCLI(t)
	c.ok("pool", "add", "17000000000", "17000000001", "17000000002", "--area", "sh")
	c.ok("pool", "add", "17000000003")
	for _, a := range []string{"13800000001", "13800000002"} {
		c.ok("bind", "create", "--a", a, "--b", "13900000002", "--area", "sh")
	}
	var f struct {
		Parties int
		Areas   []struct {
			Area                   string
			Pool, Needed, Headroom int
			Busiest                string
		}
		Total struct{ Pool, Needed, Headroom int }
	}
	c.json(&f, "pool", "forecast")
	if f.Parties != 3 || len(f.Areas) != 2 || f.Areas[1].Area != "sh" || f.Areas[1].Needed != 2 || f.Areas[1].Headroom != 1 ||
		f.Areas[1].Busiest != "+86139****0002" || f.Total.Pool != 4 || f.Total.Headroom != 2 {
		t.Errorf("forecast --json = %+v", f)
	}
	out := c.ok("pool", "forecast")
	for _, want := range []string{"AREA", "HEADROOM", "sh", "(untagged)", "(all)", "+86139****0002", "3 parties hold numbers"} {
		if !strings.Contains(out, want) {
			t.Errorf("forecast lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "13900000002") {
		t.Errorf("forecast shows a real number:\n%s", out)
	}
}
