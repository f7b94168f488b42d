package call_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/privnum/privnum/ari"
	"github.com/privnum/privnum/ari/arisim"
	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/call"
	"github.com/privnum/privnum/cdr"
)

// gateRouter holds every Resolve until opened, and counts them.
type gateRouter struct {
	call.Router
	open  chan struct{}
	once  sync.Once
	calls atomic.Int32
	mu    sync.Mutex
	seen  []string // x|caller of each resolve
}

func newGate(r call.Router) *gateRouter { return &gateRouter{Router: r, open: make(chan struct{})} }

func (g *gateRouter) Resolve(ctx context.Context, x, caller string) (binding.Route, error) {
	g.calls.Add(1)
	g.mu.Lock()
	g.seen = append(g.seen, x+"|"+caller)
	g.mu.Unlock()
	select {
	case <-g.open:
	case <-ctx.Done():
		return binding.Route{}, ctx.Err()
	}
	return g.Router.Resolve(ctx, x, caller)
}

func (g *gateRouter) release() { g.once.Do(func() { close(g.open) }) }

// resolvesMetric reads privnum_call_resolves_total{started}.
func (h *harness) resolvesMetric(started string) float64 {
	mfs, _ := h.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "privnum_call_resolves_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == started {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return -1
}

// TestEarlyRouting: on a subscribed trunk the call is resolved once, from
// ChannelCreated on; the StasisStart that follows uses that resolve unless
// the dialplan changed the number or the caller.
func TestEarlyRouting(t *testing.T) {
	x := strings.TrimPrefix(xNum, "+86")
	tests := []struct {
		name     string
		noTrunks bool
		opts     []arisim.CallOption
		// started is the resolves metric label the call must count under;
		// resolves is how many resolves the router sees in all.
		started  string
		resolves int32
	}{
		{name: "subscribed trunk", started: "created", resolves: 1},
		{name: "no trunk subscription", noTrunks: true, started: "stasis", resolves: 1},
		// Stasis(privnum,X) naming the same number the channel was created for.
		{name: "same number in the Stasis args", opts: []arisim.CallOption{arisim.WithAppArgs(x)}, started: "created", resolves: 1},
		// The dialplan sent the call on to another number: the early route
		// is not the call's.
		{name: "dialplan changed the number", opts: []arisim.CallOption{arisim.WithAppArgs("17000009999")}, started: "stasis", resolves: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gate *gateRouter
			h := newHarness(t, func(h *harness) {
				h.noTrunks = tt.noTrunks
				h.router = func(r call.Router) call.Router { gate = newGate(r); return gate }
			})
			h.bind(binding.Options{})
			h.sim.SetEndpoint(bNum, arisim.Answer(50*time.Millisecond))
			in, err := h.sim.InboundCall(context.Background(), aNum, x, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			h.waitFor("a resolve", func() bool { return gate.calls.Load() >= 1 })
			time.Sleep(20 * time.Millisecond) // a second resolve would show now
			gate.release()
			if tt.resolves == 1 {
				out := h.bridgedLeg(in, bNum)
				h.sim.HangupFromPeer(in, 16)
				h.waitDestroyed(out.ID)
				if r := h.lastRecord(); r.Disposition != cdr.Answered {
					t.Errorf("record %+v, want answered", r)
				}
			} else {
				h.waitDestroyed(in) // the other number has no binding: refused
				if r := h.lastRecord(); r.Disposition != cdr.Rejected {
					t.Errorf("record %+v, want rejected", r)
				}
			}
			if got := gate.calls.Load(); got != tt.resolves {
				t.Errorf("%d resolves (%v), want %d", got, gate.seen, tt.resolves)
			}
			if got := h.resolvesMetric(tt.started); got != 1 {
				t.Errorf("privnum_call_resolves_total{started=%q} = %v, want 1", tt.started, got)
			}
			if n := h.app.EarlyPending(); n != 0 {
				t.Errorf("%d early routes left", n)
			}
		})
	}
}

// TestEarlyRouteOfAChannelThatNeverReachesStasis: a trunk channel that
// ends before Stasis() leaves nothing behind, and a hang-up while the early
// resolve is in flight dials nobody.
func TestEarlyRouteCleanup(t *testing.T) {
	x := strings.TrimPrefix(xNum, "+86")
	t.Run("channel never reaches privnum", func(t *testing.T) {
		h := newHarness(t)
		h.bind(binding.Options{})
		// Stasis() names an application that is not connected: the call
		// fails in the dialplan, but privnum saw it created on the trunk.
		in, err := h.sim.InboundCall(context.Background(), aNum, x, arisim.WithApp("other"))
		if err == nil {
			t.Fatal("call to an unconnected application entered Stasis")
		}
		h.waitDestroyed(in)
		h.waitFor("early route dropped", func() bool { return h.app.EarlyPending() == 0 })
		if _, ok := h.outboundTo(bNum); ok {
			t.Error("a call that never reached privnum dialed B")
		}
	})
	t.Run("caller hangs up during the resolve", func(t *testing.T) {
		var gate *gateRouter
		h := newHarness(t, func(h *harness) {
			h.router = func(r call.Router) call.Router { gate = newGate(r); return gate }
		})
		h.bind(binding.Options{})
		in, err := h.sim.InboundCall(context.Background(), aNum, x)
		if err != nil {
			t.Fatal(err)
		}
		h.waitFor("a resolve", func() bool { return gate.calls.Load() >= 1 })
		h.sim.HangupFromPeer(in, 16)
		h.waitDestroyed(in)
		gate.release()
		if r := h.lastRecord(); r.Disposition != cdr.Cancelled {
			t.Errorf("record %+v, want cancelled", r)
		}
		time.Sleep(50 * time.Millisecond)
		if _, ok := h.outboundTo(bNum); ok {
			t.Error("B was dialed after the caller hung up")
		}
		if n := h.app.EarlyPending(); n != 0 {
			t.Errorf("%d early routes left", n)
		}
	})
}

// slowDial delivers the hidden legs' Dial events late, as a switch busy
// sending the INVITE would.
type slowDial struct {
	ari.Handler
	j     *journal
	delay time.Duration
}

func (s slowDial) HandleEvent(ev ari.Event) {
	switch e := ev.(type) {
	case *ari.Dial:
		if strings.HasPrefix(e.Peer.ID, "privnum-") {
			time.Sleep(s.delay)
			s.j.note("event Dial %s %s", e.Peer.ID, e.DialStatus)
		}
	case *ari.ChannelStateChange:
		if strings.HasPrefix(e.Channel.ID, "privnum-") {
			time.Sleep(s.delay)
			s.j.note("event ChannelStateChange %s %s", e.Channel.ID, strings.ToUpper(e.Channel.State))
		}
	}
	s.Handler.HandleEvent(ev)
}

// TestCallerPreparedWhenTheCalleeRings: the caller's leg is made to ring
// (and its identity hidden) when the hidden leg rings, not while Asterisk
// is still sending its INVITE.
func TestCallerPreparedWhenTheCalleeRings(t *testing.T) {
	h := newHarness(t)
	h.handler = func(a ari.Handler) ari.Handler {
		return slowDial{Handler: a, j: h.journal, delay: 20 * time.Millisecond}
	}
	h.stop()
	h.start()
	h.bind(binding.Options{})
	h.sim.SetEndpoint(bNum, arisim.Answer(200*time.Millisecond))
	in := h.dial(aNum)
	out := h.bridgedLeg(in, bNum)
	if !h.channel(in).Rang {
		t.Error("the caller never heard ringing")
	}
	lines := h.journal.all()
	dial, ring := -1, -1
	for i, l := range lines {
		if dial < 0 && strings.Contains(l, " "+out.ID+" RINGING") {
			dial = i
		}
		if ring < 0 && strings.Contains(l, "ring "+in) {
			ring = i
		}
	}
	if dial < 0 || ring < 0 || ring < dial {
		t.Errorf("the caller was rung before the callee rang (callee ringing at %d, caller rung at %d):\n%s", dial, ring, strings.Join(lines, "\n"))
	}
	h.sim.HangupFromPeer(in, 16)
	h.waitDestroyed(out.ID)
}

// TestAppFiltersUnreadEvents: on connecting, the App asks Asterisk not to
// send the event types it never reads.
func TestAppFiltersUnreadEvents(t *testing.T) {
	h := newHarness(t)
	app, err := h.client.Application(context.Background(), "privnum")
	if err != nil {
		t.Fatal(err)
	}
	var off []string
	for _, e := range app.EventsDisallowed {
		off = append(off, e.Type)
	}
	for _, typ := range []string{"ChannelVarset", "ChannelDialplan", "ChannelConnectedLine", "ChannelCallerId", "EndpointStateChange"} {
		if !slices.Contains(off, typ) {
			t.Errorf("%s not filtered (disallowed: %v)", typ, off)
		}
	}
	for _, typ := range []string{"StasisStart", "ChannelCreated", "Dial", "ChannelDestroyed", "ChannelDtmfReceived", "TextMessageReceived", "PlaybackFinished"} {
		if slices.Contains(off, typ) {
			t.Errorf("%s, an event call control reads, is filtered", typ)
		}
	}
}

// slowSetVar holds the caller leg's identity requests back.
type slowSetVar struct {
	call.Switch
	j     *journal
	delay time.Duration
}

func (s slowSetVar) SetVar(ctx context.Context, id, name, value string) error {
	time.Sleep(s.delay)
	err := s.Switch.SetVar(ctx, id, name, value)
	s.j.note("setvar %s %s done", id, name)
	return err
}

// TestBridgeWaitsForHiddenIdentity: a callee who answers while the
// caller's leg is still being given the virtual number as its identity is
// bridged only once that is done.
func TestBridgeWaitsForHiddenIdentity(t *testing.T) {
	h := newHarness(t)
	h.wrap = func(sw call.Switch) call.Switch {
		return slowSetVar{Switch: sw, j: h.journal, delay: 60 * time.Millisecond}
	}
	h.stop()
	h.start()
	h.bind(binding.Options{})
	h.sim.SetEndpoint(bNum, arisim.Answer(20*time.Millisecond))
	in := h.dial(aNum)
	out := h.bridgedLeg(in, bNum)
	h.waitFor("the bridge request noted", func() bool { return strings.Contains(h.journal.about("privnum-"), "addChannel") })
	lines := h.journal.all()
	hidden, bridged := -1, -1
	for i, l := range lines {
		if strings.Contains(l, "setvar "+in+" CALLERID(num) done") {
			hidden = i
		}
		if bridged < 0 && strings.Contains(l, "addChannel") {
			bridged = i
		}
	}
	if hidden < 0 || bridged < 0 || bridged < hidden {
		t.Errorf("bridged before the caller's identity was hidden (hidden at %d, bridged at %d):\n%s", hidden, bridged, strings.Join(lines, "\n"))
	}
	h.sim.HangupFromPeer(in, 16)
	h.waitDestroyed(out.ID)
}
