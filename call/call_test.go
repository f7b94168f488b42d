package call_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/privnum/privnum/ari"
	"github.com/privnum/privnum/ari/arisim"
	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/call"
	"github.com/privnum/privnum/cdr"
	"github.com/privnum/privnum/e164"
	"github.com/privnum/privnum/internal/redistest"
	"github.com/privnum/privnum/pool"
)

const (
	aNum = "+8613800000001"
	bNum = "+8613900000002"
	xNum = "+8617000000000"
	// stranger holds no binding.
	stranger = "+8613700000003"
)

// harness is one Asterisk (the simulator), one Redis and one call-control
// App connected to both.
type harness struct {
	t        *testing.T
	sim      *arisim.Sim
	rdb      redis.UniversalClient
	bindings *binding.Service
	cdrs     *cdr.Store
	metrics  *call.Metrics
	reg      *prometheus.Registry
	app      *call.App
	client   *ari.Client
	stop     func()
	// wrap, when set, stands between the App and the ARI client (to slow a
	// request down, say).
	wrap func(call.Switch) call.Switch
	// journal notes the App's channel requests.
	journal *journal
	// messages configures the text-message relay of the next start.
	messages call.Messages
	// events receives the App's call events.
	events *eventLog
	// noTrunks starts the next App without trunk subscriptions (calls are
	// resolved at StasisStart only).
	noTrunks bool
	// handler, when set, stands between the ARI client and the App (to
	// hold events back, say).
	handler func(ari.Handler) ari.Handler
	// router, when set, stands between the App and the binding service.
	router func(call.Router) call.Router
	// announcements configures the next start's announcements.
	announcements call.Announcements
	// logTo, when set, receives the next App's log at debug level (else
	// warnings go to stderr).
	logTo io.Writer
	// simOptions, when set, adjusts the simulator's options (set by the
	// options of newHarness: the simulator starts after them).
	simOptions func(*arisim.Options)
	// configure, when set, adjusts the App's configuration at each start.
	configure func(*call.Config)
	// cacheRoutes runs the binding service's route cache and keeps the ARI
	// client's connections ready (Warm), as serve does: calls routed from
	// memory are dialed straight from their StasisStart.
	cacheRoutes bool
}

// routeCache is the harness option that sets cacheRoutes.
func routeCache(h *harness) { h.cacheRoutes = true }

func newHarness(t *testing.T, opts ...func(*harness)) *harness {
	t.Helper()
	return newHarnessOn(t, redistest.Client(t), binding.Config{Quarantine: time.Hour}, opts...)
}

// newHarnessOn is newHarness on a given Redis and binding configuration.
// opts set the harness up before its App starts.
func newHarnessOn(t *testing.T, rdb redis.UniversalClient, bcfg binding.Config, opts ...func(*harness)) *harness {
	t.Helper()
	cn := e164.Parser{Region: "CN"}
	p := pool.New(rdb, cn)
	if _, err := p.Add(context.Background(), []pool.Entry{{Number: xNum}}); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, rdb: rdb, events: &eventLog{}, bindings: binding.New(rdb, p, cn, bcfg), cdrs: cdr.New(rdb, 0)}
	for _, o := range opts {
		o(h)
	}
	so := arisim.Options{Username: "privnum", Password: "secret", TimeScale: 0.05}
	if h.simOptions != nil {
		h.simOptions(&so)
	}
	h.sim = arisim.New(so)
	if err := h.sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.sim.Close)
	h.start()
	t.Cleanup(func() { h.stop() })
	return h
}

// start runs a fresh App and ARI client, as a (re)started privnum would.
func (h *harness) start() {
	h.t.Helper()
	client, err := ari.New(ari.Config{URL: h.sim.URL(), Username: "privnum", Password: "secret", Application: "privnum",
		ReconnectMin: 10 * time.Millisecond, ReconnectMax: 50 * time.Millisecond})
	if err != nil {
		h.t.Fatal(err)
	}
	h.reg = prometheus.NewRegistry()
	h.metrics = call.NewMetrics(h.reg)
	h.client = client
	h.journal = &journal{Switch: client}
	var sw call.Switch = h.journal
	if h.wrap != nil {
		sw = h.wrap(sw)
	}
	logger := slog.New(slog.NewTextHandler(call.WarnLog{}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if h.logTo != nil {
		logger = slog.New(slog.NewTextHandler(h.logTo, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	var router call.Router = h.bindings
	if h.router != nil {
		router = h.router(router)
	}
	var trunks []string
	if !h.noTrunks {
		trunks = []string{"PJSIP/trunk-in"}
	}
	cfg := call.Config{
		Application: "privnum", RingTimeout: 8 * time.Second, Trunks: trunks, Messages: h.messages, Events: h.events, Announcements: h.announcements,
		Logger: logger, Metrics: h.metrics,
	}
	if h.configure != nil {
		h.configure(&cfg)
	}
	h.app = call.New(sw, router, h.cdrs, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	cached := make(chan struct{})
	if h.cacheRoutes {
		go func() { defer close(cached); h.bindings.CacheRoutes(ctx, 1000, nil) }()
		h.waitFor("route cache live", func() bool { return h.bindings.RouteCacheStats().Live })
		if err := client.Warm(ctx, 0); err != nil {
			h.t.Fatal(err)
		}
	} else {
		close(cached)
	}
	go func() {
		defer close(done)
		var hd ari.Handler = h.app
		if h.handler != nil {
			hd = h.handler(hd)
		}
		client.Run(ctx, hd)
	}()
	h.stop = func() {
		cancel()
		<-done
		<-cached
		h.app.Close()
	}
	h.waitFor("app connected", func() bool { return h.sim.Connected("privnum") })
}

func (h *harness) bind(opts binding.Options) binding.Binding {
	h.t.Helper()
	b, err := h.bindings.Create(context.Background(), binding.Request{A: aNum, B: bNum, TTL: time.Hour, Options: opts})
	if err != nil {
		h.t.Fatal(err)
	}
	return b
}

func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// dial places a call from caller to X and returns the inbound channel id.
func (h *harness) dial(caller string) string {
	h.t.Helper()
	id, err := h.sim.InboundCall(context.Background(), caller, strings.TrimPrefix(xNum, "+86"))
	if err != nil {
		h.t.Fatal(err)
	}
	return id
}

// outboundTo returns the live or finished outbound leg dialing number.
func (h *harness) outboundTo(number string) (arisim.ChannelInfo, bool) {
	var last arisim.ChannelInfo
	found := false
	for _, ch := range append(h.sim.History(), h.sim.Channels()...) {
		if !ch.Inbound && ch.FarNumber == number && (!found || ch.Created.After(last.Created)) {
			last, found = ch, true
		}
	}
	return last, found
}

func (h *harness) channel(id string) arisim.ChannelInfo {
	ch, ok := h.sim.Channel(id)
	if !ok {
		h.t.Fatalf("no channel %s", id)
	}
	return ch
}

// bridgedLeg waits until the caller's channel is bridged and returns the
// outbound leg.
func (h *harness) bridgedLeg(in, callee string) arisim.ChannelInfo {
	h.t.Helper()
	h.waitFor("bridge", func() bool {
		out, ok := h.outboundTo(callee)
		return ok && h.channel(in).BridgeID != "" && h.channel(out.ID).BridgeID == h.channel(in).BridgeID
	})
	out, _ := h.outboundTo(callee)
	return out
}

func (h *harness) lastRecord() cdr.Record {
	h.t.Helper()
	var recs []cdr.Record
	h.waitFor("call record", func() bool {
		recs, _ = h.cdrs.List(context.Background(), 1)
		return len(recs) == 1
	})
	return recs[0]
}

func (h *harness) records() []cdr.Record {
	recs, err := h.cdrs.List(context.Background(), 1000)
	if err != nil {
		h.t.Fatal(err)
	}
	return recs
}

func (h *harness) waitDestroyed(id string) arisim.ChannelInfo {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ch, err := h.sim.WaitChannelDestroyed(ctx, id)
	if err != nil {
		h.t.Logf("live calls: %v\nrequests about %s:\n%s", h.app.DebugCalls(), id, h.journal.about(id))
		h.t.Fatalf("channel %s not destroyed: %v", id, err)
	}
	return ch
}

// assertPrivate checks that neither party was ever shown the other's number.
func (h *harness) assertPrivate(in, out string, a, b string) {
	h.t.Helper()
	for _, n := range h.sim.IdentitiesSeen(out) {
		if strings.HasSuffix(a, strings.TrimPrefix(n, "+")) || strings.Contains(n, strings.TrimPrefix(a, "+86")) {
			h.t.Errorf("callee was shown the caller's number %q (all: %v)", n, h.sim.IdentitiesSeen(out))
		}
	}
	for _, n := range h.sim.IdentitiesSeen(in) {
		if strings.Contains(n, strings.TrimPrefix(b, "+86")) {
			h.t.Errorf("caller was shown the callee's number %q (all: %v)", n, h.sim.IdentitiesSeen(in))
		}
	}
	if got := h.channel(out).Caller.Number; got != xNum {
		h.t.Errorf("callee's caller ID = %q, want the virtual number %s", got, xNum)
	}
}

func TestConnectBothDirections(t *testing.T) {
	h := newHarness(t)
	b := h.bind(binding.Options{})
	tests := []struct{ from, to, hangup string }{
		{aNum, bNum, "caller"},
		{bNum, aNum, "callee"},
	}
	for _, tt := range tests {
		h.sim.SetEndpoint(tt.to, arisim.Answer(100*time.Millisecond))
		in := h.dial(tt.from)
		out := h.bridgedLeg(in, tt.to)
		if !h.channel(in).Answered || !h.channel(in).Rang {
			t.Errorf("caller leg: %+v, want rang then answered", h.channel(in))
		}
		if out.Endpoint != "PJSIP/"+tt.to+"@carrier" {
			t.Errorf("dialed %q", out.Endpoint)
		}
		if tt.hangup == "caller" {
			h.sim.HangupFromPeer(in, 16)
			h.waitDestroyed(out.ID)
		} else {
			h.sim.HangupFromPeer(out.ID, 16)
			h.waitDestroyed(in)
		}
		h.assertPrivate(in, out.ID, tt.from, tt.to)
		r := h.lastRecord()
		if r.Disposition != cdr.Answered || r.HangupBy != tt.hangup || r.BindingID != b.ID || r.X != xNum ||
			r.Caller != e164.Mask(tt.from) || r.Callee != e164.Mask(tt.to) || r.Answer == nil || r.HangupCause != 16 {
			t.Errorf("record = %+v", r)
		}
		h.waitFor("bridge destroyed", func() bool { return len(h.sim.Bridges()) == 0 })
		h.cdrs = cdr.New(h.rdb, 0)
		h.rdb.Del(context.Background(), "pn:calls")
	}
	if got := h.callsMetric("answered"); got != 2 {
		t.Errorf("answered calls metric = %v", got)
	}
}

// callsMetric reads privnum_calls_total for a disposition.
func (h *harness) callsMetric(d string) float64 {
	mfs, _ := h.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "privnum_calls_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == d {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return -1
}

func TestRefusedCalls(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(h *harness)
		caller  string
		media   string
		sip     int
		reason  string
		answers bool
	}{
		{"stranger", func(h *harness) { h.bind(binding.Options{}) }, stranger, "sound:ss-noservice", 0, binding.ReasonNoBinding, true},
		{"expired binding", func(h *harness) {
			b := h.bind(binding.Options{})
			h.bindings.Release(context.Background(), b.ID)
		}, aNum, "sound:cannot-complete-as-dialed", 0, binding.ReasonExpired, true},
		{"direction not allowed", func(h *harness) { h.bind(binding.Options{Directions: binding.AToB}) }, bNum, "", 603, binding.ReasonDirection, false},
		{"anonymous caller", func(h *harness) { h.bind(binding.Options{}) }, "anonymous", "sound:ss-noservice", 0, binding.ReasonNoBinding, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			tt.setup(h)
			in := h.dial(tt.caller)
			ch := h.waitDestroyed(in)
			if ch.Answered != tt.answers {
				t.Errorf("answered = %v, want %v", ch.Answered, tt.answers)
			}
			if tt.sip != 0 && ch.SIPResponse != tt.sip && !(ch.SIPResponse == 403) {
				t.Errorf("caller got SIP %d, want a refusal", ch.SIPResponse)
			}
			if len(h.sim.History()) != 1 {
				t.Errorf("a refused call dialed someone: %+v", h.sim.History())
			}
			r := h.lastRecord()
			pb, ok := h.sim.Playback(r.CallID + "-announce")
			if tt.media != "" && (!ok || !slices.Contains(pb.Media, tt.media) || pb.State != "done") {
				t.Errorf("announcement = %+v, want %s played to the end", pb, tt.media)
			}
			if r.Disposition != cdr.Rejected || r.Reason != tt.reason || r.HangupBy != "system" {
				t.Errorf("record = %+v", r)
			}
		})
	}
}

func TestOutboundLegFails(t *testing.T) {
	tests := []struct {
		name     string
		behavior arisim.Behavior
		disp     cdr.Disposition
		cause    int
		sip      int
	}{
		{"busy", arisim.Busy(), cdr.Busy, 17, 486},
		{"ring then busy", arisim.RingThenBusy(50 * time.Millisecond), cdr.Busy, 17, 486},
		{"no answer", arisim.NoAnswer(), cdr.NoAnswer, 19, 480},
		{"congestion", arisim.Fail(34), cdr.Failed, 34, 503},
		{"allocation failure", arisim.AllocationFailure(), cdr.Failed, 34, 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.bind(binding.Options{RingTimeout: 2 * time.Second})
			h.sim.SetEndpoint(bNum, tt.behavior)
			in := h.dial(aNum)
			ch := h.waitDestroyed(in)
			if ch.Answered || ch.SIPResponse != tt.sip {
				t.Errorf("caller: answered %v, SIP %d; want unanswered %d", ch.Answered, ch.SIPResponse, tt.sip)
			}
			r := h.lastRecord()
			if r.Disposition != tt.disp || r.HangupCause != tt.cause || r.Answer != nil {
				t.Errorf("record = %+v, want %s cause %d", r, tt.disp, tt.cause)
			}
			if h.app.LiveCalls() != 0 || len(h.sim.Channels()) != 0 {
				t.Errorf("left behind: %d calls, channels %+v", h.app.LiveCalls(), h.sim.Channels())
			}
		})
	}
}

func TestCallerCancelsWhileRinging(t *testing.T) {
	h := newHarness(t)
	h.bind(binding.Options{})
	h.sim.SetEndpoint(bNum, arisim.NoAnswer())
	in := h.dial(aNum)
	h.waitFor("callee ringing", func() bool { out, ok := h.outboundTo(bNum); return ok && out.State == "Ringing" })
	out, _ := h.outboundTo(bNum)
	h.sim.HangupFromPeer(in, 127)
	ch := h.waitDestroyed(out.ID)
	if ch.HangupBy != arisim.HangupByApp {
		t.Errorf("ringing leg ended by %s, want the app at once", ch.HangupBy)
	}
	r := h.lastRecord()
	if r.Disposition != cdr.Cancelled || r.HangupBy != "caller" {
		t.Errorf("record = %+v", r)
	}
}

func TestMaxDurationAndRecording(t *testing.T) {
	h := newHarness(t)
	h.bind(binding.Options{MaxDuration: time.Second, Record: true})
	h.sim.SetEndpoint(bNum, arisim.Answer(10*time.Millisecond))
	start := time.Now()
	in := h.dial(aNum)
	out := h.bridgedLeg(in, bNum)
	h.waitDestroyed(in)
	h.waitDestroyed(out.ID)
	if d := time.Since(start); d < time.Second {
		t.Errorf("call cut after %s, before the maximum duration", d)
	}
	r := h.lastRecord()
	if r.HangupBy != "system" || r.Disposition != cdr.Answered || r.Recording == "" {
		t.Errorf("record = %+v", r)
	}
	if _, ok := h.sim.Recording(r.Recording); !ok {
		t.Errorf("no recording %q in Asterisk", r.Recording)
	}
}

func TestWebSocketDropDuringBridgedCall(t *testing.T) {
	h := newHarness(t)
	h.bind(binding.Options{})
	in := h.dial(aNum)
	out := h.bridgedLeg(in, bNum)
	// The connection drops and, while it is down, the caller hangs up: its
	// events are lost, and the app must notice after reconnecting.
	h.sim.DropConnections()
	h.sim.HangupFromPeer(in, 16)
	h.waitDestroyed(out.ID)
	r := h.lastRecord()
	if r.Disposition != cdr.Answered {
		t.Errorf("record = %+v", r)
	}
	// A call in progress survives a drop untouched.
	h.rdb.Del(context.Background(), "pn:calls")
	in = h.dial(aNum)
	out = h.bridgedLeg(in, bNum)
	h.sim.DropConnections()
	h.waitFor("reconnect", func() bool { return h.sim.Connected("privnum") })
	time.Sleep(100 * time.Millisecond)
	if h.channel(in).Destroyed || h.channel(out.ID).Destroyed {
		t.Fatal("a bridged call did not survive the drop")
	}
	h.sim.HangupFromPeer(out.ID, 16)
	h.waitDestroyed(in)
	if r := h.lastRecord(); r.HangupBy != "callee" {
		t.Errorf("record = %+v", r)
	}
}

func TestAppRestartTakesUpBridgedCall(t *testing.T) {
	h := newHarness(t)
	h.bind(binding.Options{})
	in := h.dial(aNum)
	out := h.bridgedLeg(in, bNum)
	h.stop() // privnum goes away; Asterisk keeps the bridge
	time.Sleep(50 * time.Millisecond)
	if h.channel(in).Destroyed {
		t.Fatal("call ended with the app")
	}
	h.start()
	time.Sleep(100 * time.Millisecond)
	if h.channel(in).Destroyed || h.channel(out.ID).Destroyed {
		t.Fatal("restarted app ended a live call")
	}
	h.waitFor("taken up", func() bool { return h.app.LiveCalls() == 1 })
	h.sim.HangupFromPeer(in, 16)
	h.waitDestroyed(out.ID)
	r := h.lastRecord()
	if r.Disposition != cdr.Answered || r.HangupBy != "caller" || r.Caller != e164.Mask(aNum) {
		t.Errorf("record after restart = %+v", r)
	}
}

func TestDrain(t *testing.T) {
	h := newHarness(t)
	h.bind(binding.Options{})
	in := h.dial(aNum)
	out := h.bridgedLeg(in, bNum)
	drained := make(chan int)
	go func() { drained <- h.app.Drain(context.Background()) }()
	h.waitFor("draining", func() bool {
		// New calls are refused while draining.
		id := h.dial(bNum)
		ch := h.waitDestroyed(id)
		return ch.SIPResponse == 503
	})
	select {
	case <-drained:
		t.Fatal("drain returned with a live call")
	case <-time.After(100 * time.Millisecond):
	}
	h.sim.HangupFromPeer(out.ID, 16)
	if cut := <-drained; cut != 0 {
		t.Fatalf("drain cut %d calls", cut)
	}
	// A drain that times out cuts the calls.
	h2 := newHarness(t)
	h2.bind(binding.Options{})
	in = h2.dial(aNum)
	h2.bridgedLeg(in, bNum)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if cut := h2.app.Drain(ctx); cut != 1 {
		t.Fatalf("drain cut %d, want 1", cut)
	}
	h2.waitDestroyed(in)
}

func TestNoGoroutineGrowth(t *testing.T) {
	h := newHarness(t)
	h.bind(binding.Options{})
	h.sim.SetEndpoint(bNum, arisim.Behavior{Outcome: arisim.OutcomeAnswer, HangupAfter: time.Millisecond})
	run := func(n int) {
		for i := 0; i < n; i++ {
			in := h.dial(aNum)
			h.waitDestroyed(in)
		}
		h.waitFor("calls finished", func() bool { return h.app.LiveCalls() == 0 })
	}
	run(20)
	time.Sleep(100 * time.Millisecond)
	base := runtime.NumGoroutine()
	n := 1000
	if testing.Short() {
		n = 200
	}
	run(n)
	var now int
	h.waitFor("goroutines back to baseline", func() bool {
		h.client.CloseIdleConnections() // keep-alive connections are no leak
		now = runtime.NumGoroutine()
		return now <= base+2
	})
	if got := len(h.records()); got < n {
		t.Errorf("%d call records for %d calls", got, n+20)
	}
}

func TestRecordsUseE164(t *testing.T) {
	h := newHarness(t)
	h.waitDestroyed(h.dial(stranger))
	if r := h.lastRecord(); r.X != xNum || r.Caller != e164.Mask(stranger) {
		t.Fatalf("record = %+v", r)
	}
}

// testLog is where the App logs in tests; set PRIVNUM_TEST_LOG=1 to see it.
var testLog = func() io.Writer {
	if os.Getenv("PRIVNUM_TEST_LOG") != "" {
		return os.Stderr
	}
	return io.Discard
}()
