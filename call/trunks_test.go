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
}

func newGate(r call.Router) *gateRouter { return &gateRouter{Router: r, open: make(chan struct{})} }

func (g *gateRouter) Resolve(ctx context.Context, x, caller string) (binding.Route, error) {
	g.calls.Add(1)
	select {
	case <-g.open:
	case <-ctx.Done():
		return binding.Route{}, ctx.Err()
	}
	return g.Router.Resolve(ctx, x, caller)
}

func (g *gateRouter) release() { g.once.Do(func() { close(g.open) }) }

// TestHangupDuringResolve: a caller who hangs up while the call's route
// is being read is recorded as cancelled, and nobody is dialed.
func TestHangupDuringResolve(t *testing.T) {
	var gate *gateRouter
	h := newHarness(t, func(h *harness) {
		h.router = func(r call.Router) call.Router { gate = newGate(r); return gate }
	})
	h.bind(binding.Options{})
	in, err := h.sim.InboundCall(context.Background(), aNum, strings.TrimPrefix(xNum, "+86"))
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
	// The harness waits for the event connection; the App sets the filter
	// once its Connected runs, just after.
	var app ari.Application
	h.waitFor("event filter set", func() bool {
		var err error
		app, err = h.client.Application(context.Background(), "privnum")
		if err != nil {
			t.Fatal(err)
		}
		return len(app.EventsDisallowed) > 0
	})
	var off []string
	for _, e := range app.EventsDisallowed {
		off = append(off, e.Type)
	}
	for _, typ := range []string{"ChannelCreated", "ChannelVarset", "ChannelDialplan", "ChannelConnectedLine", "ChannelCallerId", "EndpointStateChange"} {
		if !slices.Contains(off, typ) {
			t.Errorf("%s not filtered (disallowed: %v)", typ, off)
		}
	}
	for _, typ := range []string{"StasisStart", "StasisEnd", "Dial", "ChannelStateChange", "ChannelHangupRequest", "ChannelDestroyed", "ChannelDtmfReceived", "TextMessageReceived", "PlaybackFinished"} {
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
