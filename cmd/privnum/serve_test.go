package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/privnum/privnum/ari/arisim"
	"github.com/privnum/privnum/internal/redistest"
	"github.com/privnum/privnum/internal/syncbuf"
	"github.com/privnum/privnum/webhook"
)

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestServe runs `privnum serve` against the simulator: a bound call is
// bridged, /metrics shows it, and cancelling (as SIGTERM does) drains and
// exits cleanly.
func TestServe(t *testing.T) {
	c := newCLI(t)
	c.ok("pool", "add", "17000000000")
	c.ok("bind", "create", "--a", "13800000001", "--b", "13900000002")
	sim := arisim.New(arisim.Options{Username: "u", Password: "p", TimeScale: 0.05})
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	metrics := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	var stderr bytes.Buffer
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"--redis", c.url, "--region", "CN", "serve", "--ari-url", sim.URL(),
			"--ari-user", "u", "--ari-password", "p", "--metrics-listen", metrics, "--drain-timeout", "2s"}, io.Discard, &stderr)
	}()
	waitOrFail(t, func() bool { return sim.Connected("privnum") })
	in, err := sim.InboundCall(context.Background(), "13800000001", "17000000000")
	if err != nil {
		t.Fatal(err)
	}
	waitOrFail(t, func() bool { ch, _ := sim.Channel(in); return ch.BridgeID != "" })
	if err := sim.HangupFromPeer(in, 16); err != nil {
		t.Fatal(err)
	}
	var body string
	waitOrFail(t, func() bool {
		resp, err := http.Get("http://" + metrics + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		// The record is written as the call ends; the call leaves the
		// live count once Asterisk reports both legs gone, just after.
		return strings.Contains(body, `privnum_calls_total{disposition="answered"} 1`) &&
			strings.Contains(body, "privnum_live_calls 0")
	})
	for _, want := range []string{"privnum_ari_connected 1", "privnum_live_calls 0", "privnum_routing_seconds_count 1", "privnum_ari_connects_total 1",
		// One number, held by both parties of the binding.
		`privnum_pool_headroom{area="(all)"} 0`, `privnum_pool_headroom{area="(untagged)"} 0`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	checkDeployMetrics(t, body)
	if resp, err := http.Get("http://" + metrics + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Errorf("/healthz: %v %v", resp, err)
	}
	cancel()
	select {
	case code := <-exit:
		if code != 0 {
			t.Fatalf("serve exited %d: %s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
	for _, real := range []string{"13800000001", "13900000002"} {
		if strings.Contains(stderr.String(), real) {
			t.Errorf("serve logged a real number: %s", stderr.String())
		}
	}
}

func waitOrFail(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestServePlacesQueuedCalls: a callback and a verification requested from
// the CLI are placed by a running privnum serve.
func TestServePlacesQueuedCalls(t *testing.T) {
	c := newCLI(t)
	c.ok("pool", "add", "17000000000")
	sim := arisim.New(arisim.Options{TimeScale: 0.05})
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	sim.SetEndpoint("+8613800000001", arisim.Behavior{Outcome: arisim.OutcomeAnswer, After: 10 * time.Millisecond, HangupAfter: 60 * time.Second})
	sim.SetEndpoint("+8613900000002", arisim.Behavior{Outcome: arisim.OutcomeAnswer, After: 10 * time.Millisecond, HangupAfter: 4 * time.Second})
	sim.SetEndpoint("+8613700000005", arisim.NoAnswer())
	ctx, cancel := context.WithCancel(context.Background())
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"--redis", c.url, "--region", "CN", "serve", "--ari-url", sim.URL(), "--metrics-listen", ""}, io.Discard, os.Stderr)
	}()
	defer func() { cancel(); <-exit }()
	waitOrFail(t, func() bool { return sim.Connected("privnum") })

	// Callback state changes go out as webhooks.
	var mu sync.Mutex
	var events []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			Type string
			Data struct{ State string }
		}
		json.NewDecoder(r.Body).Decode(&ev)
		mu.Lock()
		events = append(events, ev.Type+":"+ev.Data.State)
		mu.Unlock()
	}))
	defer hook.Close()
	c.ok("webhook", "add", hook.URL, "--events", "callback.updated")
	rdb := redistest.ClientFor(t, c.url)
	go webhook.NewDispatcher(webhook.NewStore(rdb), webhook.Config{}).Run(ctx)

	c.ok("callback", "map", "SHOP-1", "--first", "13800000001", "--second", "13900000002")
	var cb struct{ ID, State string }
	c.json(&cb, "callback", "start", "SHOP-1")
	waitOrFail(t, func() bool {
		c.json(&cb, "callback", "show", cb.ID)
		return cb.State == "completed" || cb.State == "failed"
	})
	if cb.State != "completed" {
		t.Fatalf("callback = %+v", cb)
	}
	waitOrFail(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(events, "callback.updated:completed") && slices.Contains(events, "callback.updated:bridged")
	})

	c.ok("verify", "callerid", "add", "17100000001")
	var v struct{ ID, Status string }
	c.json(&v, "verify", "start", "13700000005")
	var seen string
	waitOrFail(t, func() bool {
		for _, ch := range sim.History() {
			if ch.FarNumber == "+8613700000005" {
				seen = ch.Caller.Number
				return true
			}
		}
		return false
	})
	if seen != "+8617100000001" {
		t.Fatalf("flash call showed %q", seen)
	}
	if out := c.ok("verify", "check", v.ID, seen); !strings.Contains(out, "verified") {
		t.Fatalf("check: %s", out)
	}
}

// TestServeLogsNoSecrets runs call control at debug level through calls, a
// refused call, a callback and a relayed text message, and checks that no
// secret (ARI password, message secret) and no real number, in any form,
// reaches the log.
func TestServeLogsNoSecrets(t *testing.T) {
	const ariPassword = "ari-Zq9-secret-pw"
	const messageSecret = "msg-secret-7Hk2Lq"
	const body = "the door code is 4471"
	t.Setenv("PRIVNUM_MESSAGE_SECRET", messageSecret)
	c := newCLI(t)
	c.ok("pool", "add", "17000000000")
	c.ok("bind", "create", "--a", "13800000001", "--b", "13900000002")
	sim := arisim.New(arisim.Options{Username: "u", Password: ariPassword, TimeScale: 0.05})
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	sim.SetMessageContext("trunk-in", "privnum-messages")
	sim.SetEndpoint("+8613600000004", arisim.Answer(10*time.Millisecond))
	sim.SetEndpoint("+8613500000005", arisim.Busy())
	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncbuf.Buffer
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"--redis", c.url, "--region", "CN", "--log-level", "debug", "serve",
			"--ari-url", sim.URL(), "--ari-user", "u", "--ari-password", ariPassword, "--metrics-listen", "",
			"--message-to-template", "pjsip:carrier/sip:{number}@203.0.113.5"}, io.Discard, &stderr)
	}()
	defer func() { cancel(); <-exit }()
	waitOrFail(t, func() bool { return sim.Connected("privnum") })
	waitOrFail(t, func() bool { // subscribed to the trunk's text messages
		req, _ := http.NewRequest("GET", sim.URL()+"/ari/applications/privnum", nil)
		req.SetBasicAuth("u", ariPassword)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), "PJSIP/trunk-in")
	})

	in, err := sim.InboundCall(context.Background(), "13800000001", "17000000000")
	if err != nil {
		t.Fatal(err)
	}
	waitOrFail(t, func() bool { ch, _ := sim.Channel(in); return ch.BridgeID != "" })
	sim.HangupFromPeer(in, 16)
	stranger, _ := sim.InboundCall(context.Background(), "13700000003", "17000000000")
	if _, err := sim.InboundMessage(context.Background(), "13800000001", "17000000000", body); err != nil {
		t.Fatal(err)
	}
	c.ok("callback", "map", "SHOP-9", "--first", "13600000004", "--second", "13500000005")
	var cb struct{ ID, State string }
	c.json(&cb, "callback", "start", "SHOP-9")
	deadline := time.Now().Add(10 * time.Second)
	for cb.State != "failed" && time.Now().Before(deadline) {
		c.json(&cb, "callback", "show", cb.ID)
		time.Sleep(20 * time.Millisecond)
	}
	if cb.State != "failed" || len(sim.SentMessages()) != 1 {
		t.Fatalf("callback %+v, %d messages relayed", cb, len(sim.SentMessages()))
	}
	deadline = time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if ch, _ := sim.Channel(stranger); ch.Destroyed {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ch, _ := sim.Channel(stranger); !ch.Destroyed {
		t.Fatalf("stranger's call still up: %+v\n%s", ch, stderr.String())
	}
	cancel()
	<-exit
	exit <- 0

	logs := stderr.String()
	if !strings.Contains(logs, "level=DEBUG") && !strings.Contains(logs, "level=INFO") {
		t.Fatalf("nothing logged:\n%s", logs)
	}
	for _, s := range []string{ariPassword, messageSecret, body,
		"13800000001", "13900000002", "13700000003", "13600000004", "13500000005"} {
		if strings.Contains(logs, s) {
			t.Errorf("the log holds %q:\n%s", s, logs)
		}
	}
}

// checkDeployMetrics checks that every privnum metric the alert rules and
// the dashboard in deploy/ use is one serve exports (body is its /metrics).
func checkDeployMetrics(t *testing.T, body string) {
	t.Helper()
	files := []string{"../../deploy/prometheus/privnum-alerts.yml", "../../deploy/grafana/privnum-dashboard.json"}
	used := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(f, ".json") {
			var d struct {
				Panels []struct{ Targets []struct{ Expr string } }
			}
			if err := json.Unmarshal(b, &d); err != nil || len(d.Panels) == 0 {
				t.Fatalf("%s: %v", f, err)
			}
		}
		for _, m := range regexp.MustCompile(`privnum_[a-z_]+`).FindAllString(string(b), -1) {
			used[m] = true
		}
	}
	if len(used) < 5 {
		t.Fatalf("deploy files use %d metrics", len(used))
	}
	for m := range used {
		base := m
		for _, suf := range []string{"_bucket", "_count", "_sum"} {
			base = strings.TrimSuffix(base, suf)
		}
		if !strings.Contains(body, "# TYPE "+base+" ") {
			t.Errorf("deploy/ uses %s, which privnum serve does not export", m)
		}
	}
}
