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
)

const (
	prompt  = "sound:vm-enter-num-to-call"
	invalid = "sound:pbx-invalid"
	ext     = "1234"
)

// axeHarness is a harness with A bound to extension 1234 on X. The
// prompt plays for promptLen (simulated time: the harness runs the
// simulator at 1/20); digitTimeout is the App's per-digit timeout.
func axeHarness(t *testing.T, promptLen, digitTimeout time.Duration) (*harness, binding.Binding) {
	t.Helper()
	h := newHarness(t, func(h *harness) {
		h.simOptions = func(o *arisim.Options) {
			o.MediaDurations = map[string]time.Duration{prompt: promptLen}
		}
		h.configure = func(c *call.Config) {
			c.DigitTimeout = digitTimeout
			c.FirstDigitTimeout = time.Minute
		}
	})
	b := h.bindMode(binding.Request{Mode: binding.AXE, A: aNum, Extension: ext})
	if b.X != xNum || b.Extension != ext {
		t.Fatalf("binding %+v", b)
	}
	return h, b
}

// promptPlaying waits until the prompt of try plays on the caller's
// channel and returns the call id (from the prompt playback's id).
func (h *harness) promptPlaying(in string, try int) string {
	h.t.Helper()
	var id string
	h.waitFor("prompt", func() bool {
		for _, pb := range h.sim.Playbacks() {
			if pb.Target == "channel:"+in && strings.HasSuffix(pb.ID, "-ivr"+string(rune('0'+try))) && pb.State == "playing" {
				id = strings.TrimSuffix(pb.ID, "-ivr"+string(rune('0'+try)))
				return true
			}
		}
		return false
	})
	return id
}

// noOutbound checks that nobody was dialed.
func (h *harness) noOutbound() {
	h.t.Helper()
	for _, ch := range append(h.sim.History(), h.sim.Channels()...) {
		if !ch.Inbound {
			h.t.Errorf("dialed %s (%s)", ch.Endpoint, ch.ID)
		}
	}
}

// TestAXEExtensionEntry: a caller on the AXE number is answered, hears the
// prompt and keys the extension; the extension's party is dialed with
// caller ID X while the caller hears a ringing tone, stopped before the
// bridge. However the digits come (by length, ended by "#" after a wrong
// try, right after the answer, during the prompt), the first one stops
// the prompt.
func TestAXEExtensionEntry(t *testing.T) {
	for _, tt := range []struct {
		name string
		// key keys digits on the caller's channel once it is answered.
		key func(h *harness, in string)
	}{
		{"by length", func(h *harness, in string) {
			h.promptPlaying(in, 1)
			h.sim.SendDTMF(in, ext, 50*time.Millisecond)
		}},
		{"hash ends a short entry, then the right one", func(h *harness, in string) {
			h.promptPlaying(in, 1)
			h.sim.SendDTMF(in, "12#", 50*time.Millisecond)
			id := h.promptPlaying(in, 2)
			pb, _ := h.sim.Playback(id + "-ivr2")
			if !slices.Equal(pb.Media, []string{invalid, prompt}) {
				h.t.Errorf("second prompt %+v: want the invalid prompt, then the prompt", pb)
			}
			h.sim.SendDTMF(in, ext+"#", 50*time.Millisecond)
		}},
		{"right after answer", func(h *harness, in string) {
			h.waitFor("answer", func() bool { return h.channel(in).Answered })
			h.sim.SendDTMF(in, ext, 20*time.Millisecond)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// The digit timeout is far away: only the length or "#" ends
			// an entry; the prompt plays an hour unless stopped.
			h, b := axeHarness(t, time.Hour, time.Minute)
			h.sim.SetEndpoint(aNum, arisim.Answer(2*time.Second))
			in := h.dial(stranger)
			tt.key(h, in)
			out := h.bridgedLeg(in, aNum)
			if got := h.channel(out.ID).Caller.Number; got != xNum {
				t.Errorf("A shown %q, want X", got)
			}
			// The tone was stopped before the legs were bridged.
			for _, pb := range h.sim.Playbacks() {
				t.Errorf("playback %+v still on after the bridge", pb)
			}
			callID := strings.TrimPrefix(out.ID, "privnum-")[:16]
			rb, ok := h.sim.Playback(callID + "-ringback")
			if !ok || !slices.Equal(rb.Media, []string{"tone:ring"}) || rb.State != "done" {
				t.Errorf("ringback %+v (ok %v); want tone:ring, stopped", rb, ok)
			}
			pb, _ := h.sim.Playback(callID + "-ivr1")
			if pb.State != "done" || !slices.Equal(pb.Media, []string{prompt}) {
				t.Errorf("prompt %+v; want stopped", pb)
			}
			h.sim.HangupFromPeer(in, 16)
			h.waitDestroyed(out.ID)
			r := h.lastRecord()
			if r.Mode != "axe" || r.Extension != ext || r.BindingID != b.ID || r.Disposition != cdr.Answered ||
				r.Callee != e164.Mask(aNum) || r.Caller != e164.Mask(stranger) {
				t.Errorf("record %+v", r)
			}
			for _, e := range h.events.all() {
				if e.Mode != "axe" || e.Extension != ext {
					t.Errorf("event %+v: want mode axe, extension %s", e, ext)
				}
			}
			// A calls X: the reply reaches the stranger, shown X.
			r = h.connectAndEnd(aNum, stranger, xNum)
			if r.Mode != "axe" || r.Extension != ext {
				t.Errorf("reply record %+v", r)
			}
		})
	}
}

// TestAXEWrongExtensions: three wrong extensions, each answered with the
// invalid prompt and the prompt again, then the final announcement and a
// hang-up; nobody is dialed.
func TestAXEWrongExtensions(t *testing.T) {
	h, _ := axeHarness(t, time.Hour, time.Minute)
	in := h.dial(stranger)
	var id string
	for try, keyed := range []string{"9999", "0000", "12*9997"} {
		id = h.promptPlaying(in, try+1)
		h.sim.SendDTMF(in, keyed, 20*time.Millisecond)
	}
	h.waitDestroyed(in)
	pb, ok := h.sim.Playback(id + "-announce")
	if !ok || !slices.Equal(pb.Media, []string{"sound:sorry-youre-having-problems", "sound:goodbye"}) || pb.State != "done" {
		t.Errorf("final announcement %+v (ok %v)", pb, ok)
	}
	r := h.lastRecord()
	if r.Disposition != cdr.Rejected || r.Reason != binding.ReasonBadExtension || r.Mode != "axe" || r.Extension != "9997" {
		t.Errorf("record %+v", r)
	}
	h.noOutbound()
}

// TestAXEMissingExtension: a caller who keys nothing is prompted three
// times, each try ending DigitTimeout after the prompt, then hears the
// final announcement; nobody is dialed.
func TestAXEMissingExtension(t *testing.T) {
	h, _ := axeHarness(t, 2*time.Second, 100*time.Millisecond)
	in := h.dial(stranger)
	h.waitDestroyed(in)
	r := h.lastRecord()
	if r.Disposition != cdr.Rejected || r.Reason != "no_extension" || r.Mode != "axe" {
		t.Errorf("record %+v", r)
	}
	for try := 1; try <= 3; try++ {
		if pb, ok := h.sim.Playback(r.CallID + "-ivr" + string(rune('0'+try))); !ok || pb.State != "done" {
			t.Errorf("prompt %d: %+v (ok %v)", try, pb, ok)
		}
	}
	h.noOutbound()
}

// TestAXEHangupDuringEntry: a caller hanging up during the prompt or
// while keying ends the call cleanly: cancelled, nobody dialed, no
// playback left.
func TestAXEHangupDuringEntry(t *testing.T) {
	for _, tt := range []struct {
		name   string
		digits string
	}{
		{"during the prompt", ""},
		{"during entry", "12"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h, _ := axeHarness(t, time.Hour, time.Minute)
			in := h.dial(stranger)
			h.promptPlaying(in, 1)
			if tt.digits != "" {
				h.sim.SendDTMF(in, tt.digits, 10*time.Millisecond)
				h.waitFor("digits", func() bool { return h.channel(in).DTMFReceived == tt.digits })
			}
			h.sim.HangupFromPeer(in, 16)
			r := h.lastRecord()
			if r.Disposition != cdr.Cancelled || r.HangupBy != "caller" || r.Mode != "axe" {
				t.Errorf("record %+v", r)
			}
			if n := h.app.LiveCalls(); n != 0 {
				t.Errorf("%d calls live", n)
			}
			if pbs := h.sim.Playbacks(); len(pbs) != 0 {
				t.Errorf("playbacks left: %+v", pbs)
			}
			h.noOutbound()
		})
	}
}

// TestAXEOwnerWithoutLastCaller: A calling X before anyone reached the
// extension hears the no-last-caller announcement.
func TestAXEOwnerWithoutLastCaller(t *testing.T) {
	h, _ := axeHarness(t, time.Hour, time.Minute)
	r := h.refused(aNum, "sound:vm-nobodyavail", binding.ReasonNoLastCaller)
	if r.Mode != "axe" || r.Extension != ext {
		t.Errorf("record %+v", r)
	}
}

// TestAXEMessages: a stranger's text to an AXE number reaches nobody (it
// carries no extension); A's text reaches the extension's last caller.
func TestAXEMessages(t *testing.T) {
	h, b := axeHarness(t, time.Hour, time.Minute)
	h.messages = call.Messages{ToTemplate: "pjsip:carrier/sip:{number}@203.0.113.5", FromTemplate: "<sip:{number}@198.51.100.7>"}
	h.stop()
	h.waitFor("old connection gone", func() bool { return !h.sim.Connected("privnum") })
	h.start()
	h.sim.SetMessageContext("trunk-in", "privnum-messages")
	h.waitFor("subscribed", func() bool {
		app, err := h.client.Application(context.Background(), "privnum")
		return err == nil && len(app.EndpointIDs) == 1
	})
	send := func(from string) cdr.Record {
		t.Helper()
		n := len(h.records())
		if _, err := h.sim.InboundMessage(context.Background(), strings.TrimPrefix(from, "+86"), "17000000000", "hello"); err != nil {
			t.Fatal(err)
		}
		h.waitFor("record", func() bool { return len(h.records()) == n+1 })
		return h.records()[0]
	}
	rec := send(stranger)
	if len(h.sim.SentMessages()) != 0 || rec.Disposition != cdr.Rejected || rec.Reason != "no_extension" || rec.Mode != "axe" {
		t.Fatalf("stranger's message: sent %+v, record %+v", h.sim.SentMessages(), rec)
	}
	// The stranger reaches the extension by calling; then A's text
	// reaches them.
	if _, err := h.bindings.ResolveExtension(context.Background(), b.X, stranger, ext); err != nil {
		t.Fatal(err)
	}
	rec = send(aNum)
	sent := h.sim.SentMessages()
	if len(sent) != 1 || sent[0].To != "pjsip:carrier/sip:"+stranger+"@203.0.113.5" || sent[0].From != "<sip:"+xNum+"@198.51.100.7>" {
		t.Fatalf("A's message: sent %+v; want one to the last caller from X", sent)
	}
	if rec.Disposition != cdr.Relayed || rec.Mode != "axe" || rec.Extension != ext {
		t.Errorf("A's message record %+v", rec)
	}
}

// TestAXEDigitsReportedTwice: DTMF that comes with no begin (SIP INFO) is
// reported twice by Asterisk 22 — the end received, then the end of its
// own emulation — and each key still counts once (the real-switch test
// caught "1234" read as "1122").
func TestAXEDigitsReportedTwice(t *testing.T) {
	h := newHarness(t, func(h *harness) {
		h.simOptions = func(o *arisim.Options) {
			o.MediaDurations = map[string]time.Duration{prompt: time.Hour}
			o.DTMFEndOnly = true
		}
		h.configure = func(c *call.Config) {
			c.DigitTimeout = time.Minute
			c.FirstDigitTimeout = time.Minute
		}
	})
	h.bindMode(binding.Request{Mode: binding.AXE, A: aNum, Extension: ext})
	h.sim.SetEndpoint(aNum, arisim.Answer(100*time.Millisecond))
	in := h.dial(stranger)
	h.promptPlaying(in, 1)
	h.sim.SendDTMF(in, ext+"#", 100*time.Millisecond)
	out := h.bridgedLeg(in, aNum)
	h.sim.HangupFromPeer(in, 16)
	h.waitDestroyed(out.ID)
	if r := h.lastRecord(); r.Disposition != cdr.Answered {
		t.Errorf("record %+v, want answered", r)
	}
}
