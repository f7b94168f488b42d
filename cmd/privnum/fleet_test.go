package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/privnum/privnum/ari/arisim"
	"github.com/privnum/privnum/dialq"
	"github.com/privnum/privnum/internal/redistest"
	"github.com/privnum/privnum/internal/syncbuf"
	"github.com/redis/go-redis/v9"
)

// proc is privnum running as a process of its own.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	out  *syncbuf.Buffer
	done chan struct{}
}

// startProc runs privnum with args in a child process (the test binary,
// which runs main when runMainEnv is set), stopped when t ends.
func startProc(t *testing.T, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	p := &proc{t: t, cmd: cmd, out: &syncbuf.Buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("privnum %s output:\n%s", strings.Join(args, " "), p.out.String())
		}
	})
	return p
}

// kill ends the process with SIGKILL, as a crash or a dead host would.
func (p *proc) kill() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		p.t.Fatal(err)
	}
	<-p.done
}

// metrics returns the text of the /metrics page at addr, "" if unreachable.
func metrics(addr string) string {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func serveArgs(url string, sim *arisim.Sim, app, instance, metricsAddr string, extra ...string) []string {
	return append([]string{"--redis", url, "--region", "CN", "serve", "--ari-url", sim.URL(),
		"--ari-user", "u", "--ari-password", "p", "--ari-app", app, "--instance", instance,
		"--metrics-listen", metricsAddr}, extra...)
}

func newSim(t *testing.T) *arisim.Sim {
	t.Helper()
	sim := arisim.New(arisim.Options{Username: "u", Password: "p", TimeScale: 0.05})
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	return sim
}

func bridged(sim *arisim.Sim, in string) bool {
	ch, ok := sim.Channel(in)
	return ok && ch.BridgeID != ""
}

// TestStandbyTakesOver: a second serve for the same Asterisk application
// waits on the lease without touching the application; when the active
// process is killed, the standby takes the application within 3 s, adopts
// the bridged call (its hang-up reaches the other side) and routes new
// calls. At no point do two processes fight over the application.
func TestStandbyTakesOver(t *testing.T) {
	c := newCLI(t)
	c.ok("pool", "add", "17000000000")
	c.ok("bind", "create", "--a", "13800000001", "--b", "13900000002")
	sim := newSim(t)
	m1, m2 := freeAddr(t), freeAddr(t)
	active := startProc(t, serveArgs(c.url, sim, "privnum", "p1", m1)...)
	waitOrFail(t, func() bool {
		return sim.Connected("privnum") && strings.Contains(metrics(m1), `privnum_lease_held{serve="p1"} 1`)
	})
	startProc(t, serveArgs(c.url, sim, "privnum", "p2", m2)...)
	waitOrFail(t, func() bool { return strings.Contains(metrics(m2), `privnum_lease_held{serve="p2"} 0`) })
	if resp, err := http.Get("http://" + m2 + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Errorf("standby /healthz: %v %v", resp, err)
	}

	ctx := context.Background()
	in, err := sim.InboundCall(ctx, "13800000001", "17000000000")
	if err != nil {
		t.Fatal(err)
	}
	waitOrFail(t, func() bool { return bridged(sim, in) })
	if n := sim.Replacements("privnum"); n != 0 {
		t.Fatalf("the standby took the application from a live active process (%d replacements)", n)
	}

	active.kill()
	killed := time.Now()
	waitOrFail(t, func() bool {
		return sim.Connected("privnum") && strings.Contains(metrics(m2), `privnum_lease_held{serve="p2"} 1`)
	})
	if took := time.Since(killed); took > 3*time.Second {
		t.Errorf("standby took the application %v after the active process died; want within 3s", took)
	}
	t.Logf("takeover in %v", time.Since(killed).Round(time.Millisecond))

	// The adopted call: the callee hangs up, the caller's leg ends.
	out, ok := outboundLeg(sim, "+8613900000002")
	if !ok {
		t.Fatal("no outbound leg")
	}
	if !bridged(sim, in) {
		t.Fatal("the bridged call did not survive the takeover")
	}
	if err := sim.HangupFromPeer(out.ID, 16); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := sim.WaitChannelDestroyed(wctx, in); err != nil {
		t.Fatalf("the adopted call's caller leg was not hung up: %v", err)
	}

	// New calls route through the standby.
	in2, err := sim.InboundCall(ctx, "13900000002", "17000000000")
	if err != nil {
		t.Fatal(err)
	}
	waitOrFail(t, func() bool { return bridged(sim, in2) })
	if n := sim.Replacements("privnum"); n != 0 {
		t.Errorf("%d application replacements: two processes fought over the application", n)
	}
	if !strings.Contains(metrics(m2), "privnum_failovers_total 1") {
		t.Errorf("standby metrics lack privnum_failovers_total 1")
	}
}

// TestTwoAsteriskShareBindings: two Asterisk boxes, each with its own serve
// (its own ARI URL and application name), on one Redis: a call on either
// box routes by the same bindings.
func TestTwoAsteriskShareBindings(t *testing.T) {
	c := newCLI(t)
	c.ok("pool", "add", "17000000000")
	c.ok("bind", "create", "--a", "13800000001", "--b", "13900000002")
	sims := []*arisim.Sim{newSim(t), newSim(t)}
	apps := []string{"privnum-east", "privnum-west"}
	for i, sim := range sims {
		startProc(t, serveArgs(c.url, sim, apps[i], apps[i], freeAddr(t))...)
	}
	for i, sim := range sims {
		waitOrFail(t, func() bool { return sim.Connected(apps[i]) })
	}
	ctx := context.Background()
	for i, tc := range []struct{ from, to string }{{"13800000001", "+8613900000002"}, {"13900000002", "+8613800000001"}} {
		sim := sims[i]
		in, err := sim.InboundCall(ctx, tc.from, "17000000000", arisim.WithApp(apps[i]))
		if err != nil {
			t.Fatal(err)
		}
		waitOrFail(t, func() bool { return bridged(sim, in) })
		out, ok := outboundLeg(sim, tc.to)
		if !ok || out.Caller.Number != "+8617000000000" {
			t.Errorf("box %d: outbound %+v; want %s called from the virtual number", i, out, tc.to)
		}
		if _, ok := outboundLeg(sims[1-i], tc.to); ok {
			t.Errorf("box %d's call was placed on the other box", i)
		}
	}
}

// TestQueuedCallsPlacedOnceWhenAServeDies: callbacks queued from the CLI are
// taken by one serve, which is killed after it read a batch and placed
// some; a second serve (on another Asterisk) takes the rest over, including
// the jobs the dead one had taken and not placed. No callback is placed
// twice, and at most the one the dead process was placing at the moment it
// died is lost.
func TestQueuedCallsPlacedOnceWhenAServeDies(t *testing.T) {
	c := newCLI(t)
	c.ok("pool", "add", "17000000000")
	sims := []*arisim.Sim{newSim(t), newSim(t)}
	for _, s := range sims {
		s.SetDefaultBehavior(arisim.NoAnswer())
	}
	const n = 40
	first := func(i int) string { return fmt.Sprintf("+86138%08d", i) }
	for i := range n {
		c.ok("callback", "map", fmt.Sprintf("C-%d", i), "--first", first(i), "--second", fmt.Sprintf("+86139%08d", i))
	}
	placed := func() map[string]int {
		m := map[string]int{}
		for _, s := range sims {
			for _, ch := range append(s.History(), s.Channels()...) {
				if !ch.Inbound && strings.HasPrefix(ch.FarNumber, "+86138") {
					m[ch.FarNumber]++
				}
			}
		}
		return m
	}

	m1, m2 := freeAddr(t), freeAddr(t)
	p1 := startProc(t, serveArgs(c.url, sims[0], "privnum", "p1", m1, "--dialq-reclaim-after", "1s")...)
	waitOrFail(t, func() bool { return sims[0].Connected("privnum") })
	// Queue every job while p1 is frozen, then let it run until it has
	// placed one, and freeze it again: it holds a batch it has not placed.
	p1.signal(syscall.SIGSTOP)
	for i := range n {
		c.ok("callback", "start", fmt.Sprintf("C-%d", i))
	}
	rdb := redistest.ClientFor(t, c.url)
	holding := func() int64 {
		p, err := rdb.XPendingExt(context.Background(), &redis.XPendingExtArgs{
			Stream: dialq.Stream, Group: dialq.Group, Start: "-", End: "+", Count: 1000, Consumer: "p1",
		}).Result()
		if err != nil {
			return 0
		}
		return int64(len(p))
	}
	p1.signal(syscall.SIGCONT)
	deadline := time.Now().Add(10 * time.Second)
	for (len(placed()) == 0 || holding() < 2) && time.Now().Before(deadline) {
	}
	p1.signal(syscall.SIGSTOP)
	pend, err := rdb.XPendingExt(context.Background(), &redis.XPendingExtArgs{
		Stream: dialq.Stream, Group: dialq.Group, Start: "-", End: "+", Count: 1000, Consumer: "p1",
	}).Result()
	if err != nil {
		t.Fatal(err)
	}
	before := len(placed())
	t.Logf("p1 placed %d, holds %d taken and not placed, when killed", before, len(pend))
	if len(pend) == 0 {
		t.Fatalf("p1 placed %d and held no job when it was stopped: nothing to take over", before)
	}
	p1.kill()

	startProc(t, serveArgs(c.url, sims[1], "privnum", "p2", m2, "--dialq-reclaim-after", "1s")...)
	waitOrFail(t, func() bool { return len(placed()) >= n-1 })
	time.Sleep(1500 * time.Millisecond) // a second placement would show by now
	got := placed()
	for num, k := range got {
		if k > 1 {
			t.Errorf("callback to %s placed %d times", num, k)
		}
	}
	if len(got) < n-1 {
		t.Errorf("%d of %d callbacks placed", len(got), n)
	}
	// p2 took over every job p1 held.
	waitOrFail(t, func() bool {
		return strings.Contains(metrics(m2), "privnum_dialq_jobs_reclaimed_total "+strconv.Itoa(len(pend))+"\n")
	})
}

// signal sends sig to the process.
func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

// TestSentinelURL drives the CLI (pool add, bind create, route), `serve`
// (a bridged call) and `api` (a binding created over HTTP) through a
// redis+sentinel:// URL: a master, its replica and a Sentinel.
func TestSentinelURL(t *testing.T) {
	if redistest.Clustered() {
		t.Skip("starts a Sentinel of its own; runs once, in the single-server pass")
	}
	s := redistest.StartSentinel(t)
	c := cli{t: t, url: s.URL}
	c.ok("pool", "add", "17000000000")
	var b struct{ ID, X string }
	c.json(&b, "--durability", "replica", "bind", "create", "--a", "13800000001", "--b", "13900000002")
	var r struct{ Action, Target string }
	c.json(&r, "route", "--x", b.X, "--caller", "13900000002")
	if r.Action != "connect" || r.Target != "+8613800000001" {
		t.Fatalf("route over sentinel = %+v", r)
	}

	sim := newSim(t)
	startProc(t, serveArgs(s.URL, sim, "privnum", "p1", freeAddr(t))...)
	waitOrFail(t, func() bool { return sim.Connected("privnum") })
	in, err := sim.InboundCall(context.Background(), "13800000001", "17000000000")
	if err != nil {
		t.Fatal(err)
	}
	waitOrFail(t, func() bool { return bridged(sim, in) })

	var key struct{ Secret string }
	c.json(&key, "apikey", "create", "--name", "app", "--scope", "bindings")
	listen := freeAddr(t)
	startProc(t, "--redis", s.URL, "--region", "CN", "api", "--listen", listen)
	var resp *http.Response
	waitOrFail(t, func() bool {
		req, _ := http.NewRequest("POST", "http://"+listen+"/v1/bindings", strings.NewReader(`{"a":"13700000001","b":"13600000002","ttl_seconds":600}`))
		req.Header.Set("Authorization", "Bearer "+key.Secret)
		req.Header.Set("Content-Type", "application/json")
		resp, err = http.DefaultClient.Do(req)
		return err == nil
	})
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 || !strings.Contains(string(body), `"x":"+8617000000000"`) {
		t.Fatalf("POST /v1/bindings over sentinel: %d %s", resp.StatusCode, body)
	}
}
