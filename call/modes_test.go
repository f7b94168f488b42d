package call_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/privnum/privnum/ari/arisim"
	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/call"
	"github.com/privnum/privnum/cdr"
	"github.com/privnum/privnum/e164"
	"github.com/privnum/privnum/group"
	"github.com/privnum/privnum/internal/redistest"
)

// member is in the AXG harness's group.
const member = "+8613600000004"

// newModeHarness is a harness whose binding service serves AXG groups (a
// group "riders" holding member).
func newModeHarness(t *testing.T) *harness {
	t.Helper()
	rdb := redistest.Client(t)
	groups := group.New(rdb, e164.Parser{Region: "CN"}, group.Config{})
	if _, err := groups.Create(context.Background(), "riders", []string{member}); err != nil {
		t.Fatal(err)
	}
	return newHarnessOn(t, rdb, binding.Config{Quarantine: time.Hour, Groups: groups})
}

func (h *harness) bindMode(req binding.Request) binding.Binding {
	h.t.Helper()
	req.TTL = time.Hour
	b, err := h.bindings.Create(context.Background(), req)
	if err != nil {
		h.t.Fatal(err)
	}
	return b
}

// connectAndEnd places a call from caller, checks it reaches callee showing
// callerID, ends it and returns its record.
func (h *harness) connectAndEnd(caller, callee, callerID string) cdr.Record {
	h.t.Helper()
	h.sim.SetEndpoint(callee, arisim.Answer(50*time.Millisecond))
	in := h.dial(caller)
	out := h.bridgedLeg(in, callee)
	if got := h.channel(out.ID).Caller.Number; got != callerID {
		h.t.Errorf("%s → %s: callee shown %q, want %q", caller, callee, got, callerID)
	}
	h.sim.HangupFromPeer(in, 16)
	h.waitDestroyed(out.ID)
	h.waitFor("call record", func() bool {
		recs, _ := h.cdrs.List(context.Background(), 1)
		return len(recs) == 1 && recs[0].Callee == e164.Mask(callee) && recs[0].Caller == e164.Mask(caller)
	})
	return h.lastRecord()
}

// refused places a call from caller and checks it is refused with media
// for reason, dialing nobody.
func (h *harness) refused(caller, media, reason string) cdr.Record {
	h.t.Helper()
	before := len(h.sim.History())
	in := h.dial(caller)
	h.waitDestroyed(in)
	var r cdr.Record
	h.waitFor("refusal record", func() bool {
		recs, _ := h.cdrs.List(context.Background(), 1)
		if len(recs) == 1 && recs[0].Reason == reason {
			r = recs[0]
			return true
		}
		return false
	})
	if len(h.sim.History()) != before+1 {
		h.t.Errorf("a refused call dialed someone: %+v", h.sim.History())
	}
	pb, ok := h.sim.Playback(r.CallID + "-announce")
	if !ok || !slices.Contains(pb.Media, media) || pb.State != "done" {
		h.t.Errorf("announcement = %+v, want %s played to the end", pb, media)
	}
	if r.Disposition != cdr.Rejected {
		h.t.Errorf("record = %+v", r)
	}
	return r
}

// TestAXNCalls: anyone calling X reaches A, shown X; A calling X reaches
// the last caller, or hears the no-last-caller announcement when nobody
// called. Records and events carry the mode.
func TestAXNCalls(t *testing.T) {
	h := newModeHarness(t)
	b := h.bindMode(binding.Request{Mode: binding.AXN, A: aNum})
	r := h.refused(aNum, "sound:vm-nobodyavail", binding.ReasonNoLastCaller)
	if r.Mode != "axn" || r.BindingID != b.ID {
		t.Errorf("refusal record = %+v", r)
	}
	r = h.connectAndEnd(stranger, aNum, xNum)
	if r.Mode != "axn" || r.BindingID != b.ID || r.Disposition != cdr.Answered {
		t.Errorf("stranger's record = %+v", r)
	}
	in := r.CallID
	if evs := h.events.types(in); len(evs) == 0 {
		t.Errorf("no events for the stranger's call")
	}
	for _, e := range h.events.all() {
		if e.Mode != "axn" {
			t.Errorf("event %+v: want mode axn", e)
		}
	}
	// A replies: the stranger is dialed, shown X.
	r = h.connectAndEnd(aNum, stranger, xNum)
	if r.Mode != "axn" || r.Callee != e164.Mask(stranger) {
		t.Errorf("reply record = %+v", r)
	}
}

// TestAXNShowCaller: with the option, A is shown the caller's own number.
func TestAXNShowCaller(t *testing.T) {
	h := newModeHarness(t)
	h.bindMode(binding.Request{Mode: binding.AXN, A: aNum, ShowCaller: true})
	h.connectAndEnd(stranger, aNum, stranger)
	// A's reply still shows X.
	h.connectAndEnd(aNum, stranger, xNum)
}

// TestAXNFixedB: A reaches the fixed B; B reaches A.
func TestAXNFixedB(t *testing.T) {
	h := newModeHarness(t)
	h.bindMode(binding.Request{Mode: binding.AXN, A: aNum, B: bNum})
	h.connectAndEnd(stranger, aNum, xNum)
	h.connectAndEnd(aNum, bNum, xNum)
	h.connectAndEnd(bNum, aNum, xNum)
}

// TestAXGCalls: a member reaches A; anyone else is refused with the
// not-in-group announcement and nobody is dialed.
func TestAXGCalls(t *testing.T) {
	h := newModeHarness(t)
	b := h.bindMode(binding.Request{Mode: binding.AXG, A: aNum, Group: "riders"})
	r := h.connectAndEnd(member, aNum, xNum)
	if r.Mode != "axg" || r.BindingID != b.ID {
		t.Errorf("member's record = %+v", r)
	}
	r = h.refused(stranger, "sound:ss-noservice", binding.ReasonNotInGroup)
	if r.Mode != "axg" || r.Caller != e164.Mask(stranger) {
		t.Errorf("stranger's record = %+v", r)
	}
	// A replies to the last member who called.
	h.connectAndEnd(aNum, member, xNum)
}

// TestAnnouncementsConfigurable: the mode announcements are the App's
// configuration.
func TestAnnouncementsConfigurable(t *testing.T) {
	h := newModeHarness(t)
	h.stop()
	h.waitFor("old connection gone", func() bool { return !h.sim.Connected("privnum") })
	h.announcements = call.Announcements{NotInGroup: "sound:privacy-incorrect"}
	h.start()
	h.bindMode(binding.Request{Mode: binding.AXG, A: aNum, Group: "riders"})
	h.refused(stranger, "sound:privacy-incorrect", binding.ReasonNotInGroup)
}

// TestMessagesInModes: an AXN stranger's text reaches A from X; an AXG
// stranger's reaches nobody; an AXG member's reaches A.
func TestMessagesInModes(t *testing.T) {
	const to = "pjsip:carrier/sip:{number}@203.0.113.5"
	for _, tt := range []struct {
		name   string
		req    binding.Request
		from   string
		relay  bool
		reason string
	}{
		{"axn stranger", binding.Request{Mode: binding.AXN, A: aNum}, stranger, true, ""},
		{"axg member", binding.Request{Mode: binding.AXG, A: aNum, Group: "riders"}, member, true, ""},
		{"axg stranger", binding.Request{Mode: binding.AXG, A: aNum, Group: "riders"}, stranger, false, binding.ReasonNotInGroup},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newModeHarness(t)
			h.messages = call.Messages{ToTemplate: to, FromTemplate: "<sip:{number}@198.51.100.7>"}
			h.stop()
			h.waitFor("old connection gone", func() bool { return !h.sim.Connected("privnum") })
			h.start()
			h.sim.SetMessageContext("trunk-in", "privnum-messages")
			b := h.bindMode(tt.req)
			h.waitFor("subscribed", func() bool {
				app, err := h.client.Application(context.Background(), "privnum")
				return err == nil && len(app.EndpointIDs) == 1
			})
			if _, err := h.sim.InboundMessage(context.Background(), strings.TrimPrefix(tt.from, "+86"), "17000000000", "hello"); err != nil {
				t.Fatal(err)
			}
			h.waitFor("record", func() bool { return len(h.records()) == 1 })
			sent := h.sim.SentMessages()
			rec := h.records()[0]
			if !tt.relay {
				if len(sent) != 0 || rec.Disposition != cdr.Rejected || rec.Reason != tt.reason {
					t.Fatalf("sent %+v, record %+v; want nothing relayed, refused for %s", sent, rec, tt.reason)
				}
				return
			}
			if len(sent) != 1 || sent[0].To != "pjsip:carrier/sip:"+aNum+"@203.0.113.5" || sent[0].From != "<sip:"+b.X+"@198.51.100.7>" {
				t.Fatalf("sent %+v; want one to A from X", sent)
			}
			if rec.Disposition != cdr.Relayed || rec.Mode != string(tt.req.Mode) {
				t.Errorf("record %+v", rec)
			}
		})
	}
}
