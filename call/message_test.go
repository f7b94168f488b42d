package call_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/call"
	"github.com/privnum/privnum/cdr"
	"github.com/privnum/privnum/internal/syncbuf"
	"github.com/privnum/privnum/ratelimit"
)

// TestMessageChannelIsNoCall: a SIP MESSAGE on a trunk without a
// message_context enters Stasis as a Message/ pseudo-channel. It is sent
// on in the dialplan (so it does not linger in Asterisk), and no call
// record is written.
func TestMessageChannelIsNoCall(t *testing.T) {
	h := newHarness(t)
	h.bind(binding.Options{})
	id, err := h.sim.InboundMessage(context.Background(), "13800000001", "17000000000", "hello")
	if err != nil || id == "" {
		t.Fatalf("InboundMessage = %q, %v; want a pseudo-channel", id, err)
	}
	ch := h.waitDestroyed(id)
	if !strings.HasPrefix(ch.Name, "Message/") {
		t.Fatalf("channel %+v", ch)
	}
	time.Sleep(100 * time.Millisecond)
	if recs := h.records(); len(recs) != 0 {
		t.Fatalf("a text message left call records: %+v", recs)
	}
	if n := h.app.LiveCalls(); n != 0 {
		t.Fatalf("%d live calls", n)
	}
	if _, dialed := h.outboundTo(bNum); dialed {
		t.Fatal("a text message dialed the other party")
	}
}

// TestMessageRelay: with the drop-ins' message_context, a bound party's
// SIP MESSAGE to X reaches the other party from X; a stranger's reaches
// nobody; a sender over its limit is refused. Records say so with masked
// numbers and the length; no body appears in the log.
func TestMessageRelay(t *testing.T) {
	const to = "pjsip:carrier/sip:{number}@203.0.113.5"
	const body = "meet at the north gate 7pm"
	tests := []struct {
		name   string
		from   string
		limit  int
		sends  int
		relays int
		reason string
	}{
		{"bound party", aNum, 0, 1, 1, ""},
		{"the other direction", bNum, 0, 1, 1, ""},
		{"stranger", stranger, 0, 1, 0, binding.ReasonNoBinding},
		{"over the limit", aNum, 2, 3, 2, "rate_limited"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			var log syncbuf.Buffer
			h.messages = call.Messages{ToTemplate: to, FromTemplate: "<sip:{number}@198.51.100.7>"}
			if tt.limit > 0 {
				h.messages.Limiter = ratelimit.New(h.rdb, "pn:rl:sms", tt.limit, time.Hour)
			}
			h.stop()
			h.waitFor("old connection gone", func() bool { return !h.sim.Connected("privnum") })
			h.logTo = &log
			h.start()
			h.sim.SetMessageContext("trunk-in", "privnum-messages")
			b := h.bind(binding.Options{})
			h.waitFor("subscribed", func() bool {
				app, err := h.client.Application(context.Background(), "privnum")
				return err == nil && len(app.EndpointIDs) == 1
			})
			for range tt.sends {
				if id, err := h.sim.InboundMessage(context.Background(), strings.TrimPrefix(tt.from, "+86"), "17000000000", body); err != nil || id != "" {
					t.Fatalf("InboundMessage = %q, %v", id, err)
				}
			}
			h.waitFor("records", func() bool { return len(h.records()) == tt.sends })
			sent := h.sim.SentMessages()
			if len(sent) != tt.relays {
				t.Fatalf("relayed %d messages, want %d: %+v", len(sent), tt.relays, sent)
			}
			peer := bNum
			if tt.from == bNum {
				peer = aNum
			}
			for _, m := range sent {
				if m.To != "pjsip:carrier/sip:"+peer+"@203.0.113.5" || m.From != "<sip:"+b.X+"@198.51.100.7>" || m.Body != body {
					t.Errorf("sent %+v; want to %s from %s", m, peer, b.X)
				}
			}
			relayed, refused := 0, 0
			for _, r := range h.records() {
				if r.Kind != call.MessageKind || r.Length != len(body) || strings.Contains(r.Caller, tt.from[5:9]) {
					t.Errorf("record %+v", r)
				}
				switch r.Disposition {
				case cdr.Relayed:
					relayed++
				case cdr.Rejected:
					refused++
					if r.Reason != tt.reason {
						t.Errorf("refusal reason %q, want %q", r.Reason, tt.reason)
					}
				}
			}
			if relayed != tt.relays || refused != tt.sends-tt.relays {
				t.Errorf("records: %d relayed, %d refused", relayed, refused)
			}
			if strings.Contains(log.String(), "north gate") || strings.Contains(log.String(), strings.TrimPrefix(aNum, "+86")) {
				t.Errorf("the log holds a message body or a real number:\n%s", log.String())
			}
		})
	}
}
