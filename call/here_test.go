package call_test

import (
	"strings"
	"testing"
	"time"

	"github.com/privnum/privnum/ari/arisim"
	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/call"
	"github.com/privnum/privnum/cdr"
)

// TestRoutedFromMemory places calls whose routes the route cache holds, as
// under serve: each hidden leg is dialed straight from the StasisStart
// (ari.Client.StartOriginate), and the calls go on as any other.
func TestRoutedFromMemory(t *testing.T) {
	h := newHarness(t, routeCache)
	b := h.bind(binding.Options{})
	h.waitFor("routes read ahead", func() bool { return h.bindings.RouteCacheStats().Routes >= 2 })
	for _, tt := range []struct{ from, to string }{{aNum, bNum}, {bNum, aNum}} {
		h.sim.SetEndpoint(tt.to, arisim.Answer(100*time.Millisecond))
		in := h.dial(tt.from)
		out := h.bridgedLeg(in, tt.to)
		if !strings.Contains(h.journal.about(out.ID), "startOriginate "+out.ID+" originator="+in+": sent true") {
			t.Errorf("the hidden leg was not dialed straight from the StasisStart:\n%s", h.journal.about(out.ID))
		}
		h.sim.HangupFromPeer(in, 16)
		h.waitDestroyed(out.ID)
		h.assertPrivate(in, out.ID, tt.from, tt.to)
		r := h.lastRecord()
		if r.Disposition != cdr.Answered || r.BindingID != b.ID || r.HangupBy != "caller" {
			t.Errorf("record = %+v", r)
		}
		h.rdb.Del(t.Context(), "pn:calls")
	}
	if st := h.bindings.RouteCacheStats(); st.Misses != 0 {
		t.Errorf("%d calls read their route from Redis", st.Misses)
	}
}

// TestHangupRightAfterStasisStart hangs the caller up while the hidden
// leg's originate, sent straight from the StasisStart, is in flight: the
// hidden leg never outlives the call.
func TestHangupRightAfterStasisStart(t *testing.T) {
	h := newHarness(t, routeCache)
	h.bind(binding.Options{})
	h.waitFor("routes read ahead", func() bool { return h.bindings.RouteCacheStats().Routes >= 2 })
	h.sim.SetEndpoint(bNum, arisim.Answer(50*time.Millisecond))
	for range 20 {
		in := h.dial(aNum)
		h.sim.HangupFromPeer(in, 16)
		h.waitDestroyed(in)
		h.waitFor("no live channel", func() bool { return len(h.sim.Channels()) == 0 })
		h.waitFor("no live call", func() bool { return h.app.LiveCalls() == 0 })
	}
}

// TestRefusedFromMemory refuses a call whose route the cache holds (the
// binding allows A to call B only): the refusal goes as through Redis, and
// the call counts once as a cache hit.
func TestRefusedFromMemory(t *testing.T) {
	h := newHarness(t, routeCache)
	h.bind(binding.Options{Directions: binding.AToB})
	h.waitFor("routes read ahead", func() bool { return h.bindings.RouteCacheStats().Routes >= 2 })
	before := h.bindings.RouteCacheStats()
	in := h.dial(bNum)
	h.waitDestroyed(in)
	if r := h.lastRecord(); r.Reason != binding.ReasonDirection {
		t.Errorf("record = %+v, want refused for its direction", r)
	}
	st := h.bindings.RouteCacheStats()
	if st.Hits-before.Hits != 1 || st.Misses != before.Misses {
		t.Errorf("cache hits +%d, misses +%d; want one hit", st.Hits-before.Hits, st.Misses-before.Misses)
	}
	if _, ok := h.outboundTo(aNum); ok {
		t.Error("the refused call dialed A")
	}
}

// plainRouter hides the route cache from call control: every call reads
// its route through Resolve.
type plainRouter struct{ call.Router }

// TestRoutedThroughRedisUsesReadyConnection routes a call through Resolve
// (a route the cache does not hold): its originate still goes over a
// connection the ARI client keeps ready.
func TestRoutedThroughRedisUsesReadyConnection(t *testing.T) {
	h := newHarness(t, routeCache, func(h *harness) {
		h.router = func(r call.Router) call.Router { return plainRouter{r} }
	})
	h.bind(binding.Options{})
	h.sim.SetEndpoint(bNum, arisim.Answer(50*time.Millisecond))
	in := h.dial(aNum)
	out := h.bridgedLeg(in, bNum)
	if !strings.Contains(h.journal.about(out.ID), "startOriginate "+out.ID+" originator="+in+": sent true") {
		t.Errorf("the originate did not go over a ready connection:\n%s", h.journal.about(out.ID))
	}
	h.sim.HangupFromPeer(in, 16)
	h.waitDestroyed(out.ID)
}
