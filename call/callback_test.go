package call_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/privnum/privnum/ari/arisim"
	"github.com/privnum/privnum/call"
	"github.com/privnum/privnum/cdr"
)

// states collects a callback's reported states.
type states struct {
	mu  sync.Mutex
	got []string
}

func (s *states) report(st call.CallbackState, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if reason != "" {
		st += call.CallbackState(":" + reason)
	}
	s.got = append(s.got, string(st))
}

func (s *states) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

func TestCallback(t *testing.T) {
	tests := []struct {
		name          string
		first, second arisim.Behavior
		want          []string
		disp          cdr.Disposition
	}{
		{"bridged", arisim.Answer(20 * time.Millisecond), arisim.Answer(20 * time.Millisecond),
			[]string{"calling-first", "calling-second", "bridged", "completed"}, cdr.Answered},
		{"first busy", arisim.Busy(), arisim.Answer(0),
			[]string{"calling-first", "failed:first_busy"}, cdr.Busy},
		{"first no answer", arisim.NoAnswer(), arisim.Answer(0),
			[]string{"calling-first", "failed:first_no_answer"}, cdr.NoAnswer},
		{"second busy", arisim.Answer(20 * time.Millisecond), arisim.Busy(),
			[]string{"calling-first", "calling-second", "failed:second_busy"}, cdr.Busy},
		{"second fails", arisim.Answer(20 * time.Millisecond), arisim.Fail(34),
			[]string{"calling-first", "calling-second", "failed:second_failed"}, cdr.Failed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.sim.SetEndpoint(aNum, tt.first)
			h.sim.SetEndpoint(bNum, tt.second)
			var st states
			err := h.app.Callback(context.Background(), call.CallbackRequest{
				First: aNum, Second: bNum, X: xNum, RingTimeout: 2 * time.Second, Report: st.report,
			})
			if err != nil {
				t.Fatal(err)
			}
			if tt.disp == cdr.Answered {
				first, _ := h.outboundTo(aNum)
				h.waitFor("bridged", func() bool {
					return slices.Contains(st.list(), "bridged") || len(st.list()) > 2 && st.list()[2] != "bridged"
				})
				if l := st.list(); l[2] != "bridged" {
					t.Fatalf("states = %v", l)
				}
				second, _ := h.outboundTo(bNum)
				h.assertPrivate(first.ID, second.ID, aNum, bNum)
				if got := h.channel(first.ID).Caller.Number; got != xNum {
					t.Errorf("first party saw caller ID %q", got)
				}
				if pb, ok := h.sim.Playback(h.lastCallID(first.ID) + "-prompt"); !ok || !slices.Contains(pb.Media, "sound:pls-hold-while-try") {
					t.Errorf("prompt = %+v", pb)
				}
				h.sim.HangupFromPeer(second.ID, 16)
			}
			h.waitFor("callback ended", func() bool {
				l := st.list()
				return len(l) > 0 && (l[len(l)-1] == "completed" || len(l[len(l)-1]) > 6 && l[len(l)-1][:6] == "failed")
			})
			if got := st.list(); !slices.Equal(got, tt.want) {
				t.Errorf("states = %v, want %v", got, tt.want)
			}
			r := h.lastRecord()
			if r.Kind != "callback" || r.Disposition != tt.disp {
				t.Errorf("record = %+v", r)
			}
			h.waitFor("no channels left", func() bool { return len(h.sim.Channels()) == 0 && h.app.LiveCalls() == 0 })
		})
	}
}

// lastCallID recovers a callback's id from its first leg's channel id.
func (h *harness) lastCallID(channelID string) string {
	// privnum-<id>-a
	return channelID[len("privnum-") : len(channelID)-len("-a")]
}

func TestFlashHangsUpOnRinging(t *testing.T) {
	tests := []struct {
		name     string
		behavior arisim.Behavior
	}{
		{"rings", arisim.NoAnswer()},
		{"answers at once", arisim.Behavior{Outcome: arisim.OutcomeAnswer, NoRinging: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.sim.SetEndpoint(aNum, tt.behavior)
			if err := h.app.Flash(context.Background(), aNum, "+8617100000009"); err != nil {
				t.Fatal(err)
			}
			var leg arisim.ChannelInfo
			h.waitFor("flash call placed", func() bool { var ok bool; leg, ok = h.outboundTo(aNum); return ok })
			ch := h.waitDestroyed(leg.ID)
			if ch.HangupBy != arisim.HangupByApp {
				t.Errorf("flash call ended by %s, want privnum", ch.HangupBy)
			}
			if ch.Caller.Number != "+8617100000009" {
				t.Errorf("caller ID %q", ch.Caller.Number)
			}
			if d := ch.DestroyedAt.Sub(ch.Created); d > time.Second {
				t.Errorf("flash call lasted %s", d)
			}
		})
	}
}
