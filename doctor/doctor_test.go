package doctor_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/privnum/privnum/ari"
	"github.com/privnum/privnum/ari/arisim"
	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/doctor"
	"github.com/privnum/privnum/e164"
	"github.com/privnum/privnum/internal/redistest"
	"github.com/privnum/privnum/pool"
)

var cn = e164.Parser{Region: "CN"}

// connected registers the application, as a running serve does.
type connected struct{ up chan struct{} }

func (c connected) Connected(context.Context) {
	select {
	case c.up <- struct{}{}:
	default:
	}
}
func (connected) HandleEvent(ari.Event) {}

// deployment is a healthy privnum deployment: the simulator configured
// like asterisk-conf's drop-ins, the application connected, Redis with AOF
// on and a pool with room.
type deployment struct {
	sim  *arisim.Sim
	rdb  redis.UniversalClient
	pool *pool.Pool
	svc  *binding.Service
	cfg  doctor.Config
}

func newDeployment(t *testing.T, version string) *deployment {
	t.Helper()
	ctx := context.Background()
	sim := arisim.New(arisim.Options{Username: "privnum", Password: "secret", AsteriskVersion: version})
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	// privnum-pjsip.conf's identity block on both trunks.
	for _, ep := range []string{"trunk-in", "carrier"} {
		for _, o := range []string{"send_connected_line", "trust_connected_line", "send_pai", "send_rpid", "send_diversion", "send_history_info", "trust_id_outbound"} {
			sim.SetEndpointOption(ep, o, "no")
		}
	}
	sim.SetEndpointOption("trunk-in", "message_context", "privnum-messages")
	sim.SetAOROption("carrier", "qualify_frequency", "60")

	client, err := ari.New(ari.Config{URL: sim.URL(), Username: "privnum", Password: "secret", Application: "privnum"})
	if err != nil {
		t.Fatal(err)
	}
	rdb := redistest.Client(t)
	setAOF(t, rdb, "yes")
	p := pool.New(rdb, cn)
	var entries []pool.Entry
	for i := range 10 {
		entries = append(entries, pool.Entry{Number: fmt.Sprintf("1700000%04d", i)})
	}
	if _, err := p.Add(ctx, entries); err != nil {
		t.Fatal(err)
	}
	svc := binding.New(rdb, p, cn, binding.Config{Quarantine: time.Hour})
	return &deployment{sim: sim, rdb: rdb, pool: p, svc: svc, cfg: doctor.Config{
		Redis: rdb, ARI: client, ARIURL: sim.URL(), ARIUser: "privnum", App: "privnum",
		InboundEndpoints: []string{"trunk-in"}, OutboundEndpoint: doctor.EndpointOf("PJSIP/{number}@carrier"), SMSRelay: true,
		RecordingDir: t.TempDir(), Forecast: svc, MinHeadroom: 3,
	}}
}

// connect runs an ARI event connection for the application until the test
// ends.
func (d *deployment) connect(t *testing.T) {
	t.Helper()
	c, err := ari.New(ari.Config{URL: d.sim.URL(), Username: "privnum", Password: "secret", Application: "privnum"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	up := make(chan struct{}, 1)
	go func() { c.Run(ctx, connected{up}); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-up:
	case <-time.After(10 * time.Second):
		t.Fatal("no ARI connection")
	}
}

func setAOF(t *testing.T, rdb redis.UniversalClient, v string) {
	t.Helper()
	ctx := context.Background()
	set := func(ctx context.Context, c *redis.Client) error { return c.ConfigSet(ctx, "appendonly", v).Err() }
	var err error
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, set)
	} else {
		err = set(ctx, rdb.(*redis.Client))
	}
	if err != nil {
		t.Fatal(err)
	}
}

func find(r doctor.Report, check string) (doctor.Finding, bool) {
	for _, f := range r.Findings {
		if f.Check == check {
			return f, true
		}
	}
	return doctor.Finding{}, false
}

func dump(r doctor.Report) string {
	var b strings.Builder
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "\n  %-4s %s: %s | %s", f.Status, f.Check, f.Found, f.Fix)
	}
	return b.String()
}

func TestHealthyDeployment(t *testing.T) {
	d := newDeployment(t, "")
	d.connect(t)
	r := doctor.Run(context.Background(), d.cfg)
	for _, f := range r.Findings {
		if f.Status != doctor.OK {
			t.Errorf("%s: %s %s (fix: %s)", f.Check, f.Status, f.Found, f.Fix)
		}
	}
	for _, c := range []string{"redis", "redis persistence", "ari", "asterisk version", "modules", "stasis application",
		"endpoint trunk-in", "endpoint carrier", "endpoint carrier reachability", "recording directory", "pool headroom"} {
		if _, ok := find(r, c); !ok {
			t.Errorf("no %q finding:%s", c, dump(r))
		}
	}
	if r.Failed(true) {
		t.Error("a healthy deployment failed --strict")
	}
}

// TestFindings breaks one thing at a time and expects the finding that
// names it, with its status and fix.
func TestFindings(t *testing.T) {
	cases := []struct {
		name    string
		version string
		noApp   bool
		setup   func(t *testing.T, d *deployment)
		check   string
		status  doctor.Status
		found   string
		fix     string
	}{
		{name: "AOF off", setup: func(t *testing.T, d *deployment) { setAOF(t, d.rdb, "no") },
			check: "redis persistence", status: doctor.Warn, found: "AOF off", fix: "appendonly yes"},
		{name: "Redis down", setup: func(t *testing.T, d *deployment) {
			d.cfg.Redis = redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
			d.cfg.Forecast = nil
		}, check: "redis", status: doctor.Fail, found: "cannot reach Redis", fix: "--redis"},
		{name: "wrong ARI password", setup: func(t *testing.T, d *deployment) {
			c, _ := ari.New(ari.Config{URL: d.sim.URL(), Username: "privnum", Password: "wrong", Application: "privnum"})
			d.cfg.ARI = c
		}, check: "ari", status: doctor.Fail, found: "(401)", fix: "--ari-password"},
		{name: "ARI unreachable", setup: func(t *testing.T, d *deployment) {
			c, _ := ari.New(ari.Config{URL: "http://127.0.0.1:1", Application: "privnum"})
			d.cfg.ARI = c
		}, check: "ari", status: doctor.Fail, found: "cannot reach ARI", fix: "--ari-url"},
		{name: "old Asterisk", version: "20.5.2", check: "asterisk version", status: doctor.Warn, found: "Asterisk 20.5.2", fix: "Asterisk 22"},
		{name: "module missing", setup: func(t *testing.T, d *deployment) { d.sim.SetModule("res_stasis_playback.so", "") },
			check: "module res_stasis_playback.so", status: doctor.Fail, found: "not loaded", fix: "load = res_stasis_playback.so"},
		{name: "module not running", setup: func(t *testing.T, d *deployment) { d.sim.SetModule("func_callerid.so", "Not Running") },
			check: "module func_callerid.so", status: doctor.Fail, found: "Not Running", fix: "log"},
		{name: "messaging missing with SMS relay", setup: func(t *testing.T, d *deployment) { d.sim.SetModule("res_pjsip_messaging.so", "") },
			check: "module res_pjsip_messaging.so", status: doctor.Fail, found: "text messages", fix: "load = res_pjsip_messaging.so"},
		{name: "app not registered", noApp: true,
			check: "stasis application", status: doctor.Fail, found: `"privnum" is not registered`, fix: "start privnum serve"},
		{name: "send_pai with connected-line updates", setup: func(t *testing.T, d *deployment) {
			d.sim.SetEndpointOption("carrier", "send_pai", "yes")
			d.sim.SetEndpointOption("carrier", "send_connected_line", "yes")
		}, check: "endpoint carrier send_pai", status: doctor.Fail, found: "P-Asserted-Identity", fix: "set send_connected_line=no on endpoint carrier"},
		{name: "send_rpid with connected-line updates", setup: func(t *testing.T, d *deployment) {
			d.sim.SetEndpointOption("trunk-in", "send_rpid", "true")
			d.sim.SetEndpointOption("trunk-in", "send_connected_line", "yes")
		}, check: "endpoint trunk-in send_rpid", status: doctor.Fail, found: "Remote-Party-ID", fix: "send_connected_line=no on endpoint trunk-in"},
		{name: "send_connected_line", setup: func(t *testing.T, d *deployment) { d.sim.SetEndpointOption("carrier", "send_connected_line", "yes") },
			check: "endpoint carrier send_connected_line", status: doctor.Warn, found: "connected-line updates", fix: "set send_connected_line=no on endpoint carrier"},
		{name: "send_pai on the inbound trunk", setup: func(t *testing.T, d *deployment) { d.sim.SetEndpointOption("trunk-in", "send_pai", "yes") },
			check: "endpoint trunk-in send_pai", status: doctor.Warn, found: "inbound trunk", fix: "set send_pai=no on endpoint trunk-in"},
		{name: "trust_id_outbound", setup: func(t *testing.T, d *deployment) { d.sim.SetEndpointOption("carrier", "trust_id_outbound", "yes") },
			check: "endpoint carrier trust_id_outbound", status: doctor.Warn, found: "CLIR", fix: "set trust_id_outbound=no on endpoint carrier"},
		{name: "trust_connected_line", setup: func(t *testing.T, d *deployment) { d.sim.SetEndpointOption("carrier", "trust_connected_line", "yes") },
			check: "endpoint carrier trust_connected_line", status: doctor.Warn, found: "real number", fix: "trust_connected_line=no"},
		{name: "send_diversion", setup: func(t *testing.T, d *deployment) { d.sim.SetEndpointOption("carrier", "send_diversion", "true") },
			check: "endpoint carrier send_diversion", status: doctor.Warn, found: "redirecting", fix: "send_diversion=no"},
		{name: "from_user", setup: func(t *testing.T, d *deployment) { d.sim.SetEndpointOption("carrier", "from_user", "acct42") },
			check: "endpoint carrier from_user", status: doctor.Warn, found: "shows acct42 instead of the virtual number", fix: "remove from_user from endpoint carrier"},
		{name: "no message_context", setup: func(t *testing.T, d *deployment) { d.sim.SetEndpointOption("trunk-in", "message_context", "") },
			check: "endpoint trunk-in message_context", status: doctor.Warn, found: "Message/ast_msg_queue", fix: "message_context=privnum-messages"},
		{name: "outbound endpoint missing", setup: func(t *testing.T, d *deployment) { d.cfg.OutboundEndpoint = doctor.EndpointOf("PJSIP/{number}@nosuch") },
			check: "endpoint nosuch exists", status: doctor.Fail, found: "no PJSIP endpoint nosuch", fix: "--endpoint-template"},
		{name: "carrier does not answer OPTIONS", setup: func(t *testing.T, d *deployment) { d.sim.SetContactReachable("carrier", false) },
			check: "endpoint carrier state", status: doctor.Fail, found: "Unavailable", fix: "qualify_frequency=0"},
		{name: "qualify_2xx_only", setup: func(t *testing.T, d *deployment) { d.sim.SetAOROption("carrier", "qualify_2xx_only", "true") },
			check: "aor carrier qualify_2xx_only", status: doctor.Warn, found: "405", fix: "qualify_2xx_only=no"},
		{name: "short qualify_timeout", setup: func(t *testing.T, d *deployment) { d.sim.SetAOROption("carrier", "qualify_timeout", "0.200000") },
			check: "aor carrier qualify_timeout", status: doctor.Warn, found: "0.200000 s", fix: "qualify_timeout=3"},
		{name: "no contact", setup: func(t *testing.T, d *deployment) { d.sim.SetAOROption("carrier", "contact", "") },
			check: "aor carrier contact", status: doctor.Fail, found: "nothing to dial", fix: "contact=sip:"},
		{name: "aor missing", setup: func(t *testing.T, d *deployment) {
			d.sim.SetEndpointOption("carrier", "aors", "carrier-aor")
		}, check: "aor carrier-aor", status: doctor.Fail, found: "does not exist", fix: "[carrier-aor] type=aor"},
		{name: "recording directory missing", setup: func(t *testing.T, d *deployment) { d.cfg.RecordingDir = filepath.Join(t.TempDir(), "recording") },
			check: "recording directory", status: doctor.Warn, found: "does not exist", fix: "--recording-dir"},
		{name: "recording directory is a file", setup: func(t *testing.T, d *deployment) {
			f := filepath.Join(t.TempDir(), "recording")
			os.WriteFile(f, nil, 0o600)
			d.cfg.RecordingDir = f
		}, check: "recording directory", status: doctor.Fail, found: "not a directory"},
		{name: "headroom low", setup: func(t *testing.T, d *deployment) { hold(t, d, "13900000009", 8) },
			check: "pool headroom", status: doctor.Warn, found: "2 of 10 numbers left", fix: "+86139****0009"},
		{name: "pool exhausted for the busiest party", setup: func(t *testing.T, d *deployment) { hold(t, d, "13900000009", 10) },
			check: "pool headroom", status: doctor.Fail, found: "0 of 10", fix: "pool exhausted"},
		{name: "area headroom low", setup: func(t *testing.T, d *deployment) {
			if _, err := d.pool.Add(context.Background(), []pool.Entry{{Number: "17100000001", Area: "sh"}, {Number: "17100000002", Area: "sh"}}); err != nil {
				t.Fatal(err)
			}
		}, check: "pool headroom area sh", status: doctor.Warn, found: "2 of 2 numbers tagged sh", fix: "--area sh"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := newDeployment(t, tc.version)
			if !tc.noApp {
				d.connect(t)
			}
			if tc.setup != nil {
				tc.setup(t, d)
			}
			r := doctor.Run(context.Background(), d.cfg)
			f, ok := find(r, tc.check)
			if !ok {
				t.Fatalf("no finding %q:%s", tc.check, dump(r))
			}
			if f.Status != tc.status || !strings.Contains(f.Found, tc.found) || !strings.Contains(f.Fix, tc.fix) {
				t.Errorf("%s: %s %q fix %q; want %s, found containing %q, fix containing %q", tc.check, f.Status, f.Found, f.Fix, tc.status, tc.found, tc.fix)
			}
			if tc.status == doctor.Fail && !r.Failed(false) || tc.status == doctor.Warn && (r.Failed(false) != hasFail(r) || !r.Failed(true)) {
				t.Errorf("Failed(false) = %v, Failed(true) = %v:%s", r.Failed(false), r.Failed(true), dump(r))
			}
		})
	}
}

func hasFail(r doctor.Report) bool {
	for _, f := range r.Findings {
		if f.Status == doctor.Fail {
			return true
		}
	}
	return false
}

// hold binds party on n numbers of the pool.
func hold(t *testing.T, d *deployment, party string, n int) {
	t.Helper()
	for i := range n {
		if _, err := d.svc.Create(context.Background(), binding.Request{A: party, B: fmt.Sprintf("1380000%04d", i), TTL: time.Hour}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRecordedSwitch runs the checks against the simulator as the
// doctor-reads trace found Asterisk: trunks with send_pai, send_rpid and
// connected-line updates on, the leaking combination, and no application.
func TestRecordedSwitch(t *testing.T) {
	sim := arisim.New(arisim.Options{})
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	c, _ := ari.New(ari.Config{URL: sim.URL(), Application: "privnum"})
	r := doctor.Run(context.Background(), doctor.Config{ARI: c, ARIURL: sim.URL(), App: "privnum", InboundEndpoints: []string{"trunk-in"}, OutboundEndpoint: "carrier"})
	for check, want := range map[string]doctor.Status{
		"ari": doctor.OK, "asterisk version": doctor.OK, "modules": doctor.OK, "stasis application": doctor.Fail,
		"endpoint carrier send_pai": doctor.Fail, "endpoint carrier send_rpid": doctor.Fail,
		"endpoint trunk-in send_pai": doctor.Fail, "endpoint carrier send_connected_line": doctor.Warn,
		"endpoint carrier trust_connected_line": doctor.Warn, "endpoint carrier send_diversion": doctor.Warn,
		"endpoint carrier reachability": doctor.OK,
	} {
		if f, ok := find(r, check); !ok || f.Status != want {
			t.Errorf("%s: %+v, want %s:%s", check, f, want, dump(r))
		}
	}
}

func TestEndpointOf(t *testing.T) {
	for in, want := range map[string]string{
		"PJSIP/{number}@carrier":             "carrier",
		"PJSIP/{digits}@my-trunk":            "my-trunk",
		"PJSIP/carrier/sip:{number}@1.2.3.4": "carrier",
		"PJSIP/carrier":                      "carrier",
		"SIP/{number}@carrier":               "",
		"Local/{number}@from-privnum":        "",
	} {
		if got := doctor.EndpointOf(in); got != want {
			t.Errorf("EndpointOf(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestRedisClientTracking: a Redis whose ACL refuses CLIENT TRACKING to
// privnum's user warns that serve cannot keep its route cache.
func TestRedisClientTracking(t *testing.T) {
	if redistest.Clustered() {
		t.Skip("the ACL user is made on one server")
	}
	ctx := context.Background()
	srv := redistest.StartSingle(t)
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer admin.Close()
	if err := admin.Do(ctx, "ACL", "SETUSER", "limited", "on", ">pw", "~*", "&*", "+@all", "-client|tracking").Err(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		user, password string
		provider       bool // the client takes them from a credentials provider
		want           doctor.Status
	}{
		{"", "", false, doctor.OK},
		{"limited", "pw", false, doctor.Warn},
		{"limited", "pw", true, doctor.Warn},
	}
	for _, tt := range tests {
		o := &redis.Options{Addr: srv.Addr, Username: tt.user, Password: tt.password}
		if tt.provider {
			o.Username, o.Password = "", ""
			o.CredentialsProvider = func() (string, string) { return tt.user, tt.password }
		}
		rdb := redis.NewClient(o)
		r := doctor.Run(ctx, doctor.Config{Redis: rdb})
		rdb.Close()
		f, ok := find(r, "redis client tracking")
		if !ok || f.Status != tt.want {
			t.Errorf("user %q: %+v, want %s:%s", tt.user, f, tt.want, dump(r))
		}
		if tt.want == doctor.Warn && !strings.Contains(f.Found, "round trip") {
			t.Errorf("user %q: the finding does not say what it costs: %+v", tt.user, f)
		}
	}
}
