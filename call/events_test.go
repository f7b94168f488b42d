package call_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/privnum/privnum/ari/arisim"
	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/call"
)

// eventLog records call events in the order they arrive.
type eventLog struct {
	mu  sync.Mutex
	evs []call.CallEvent
}

func (l *eventLog) CallEvent(_ context.Context, e call.CallEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evs = append(l.evs, e)
}

func (l *eventLog) all() []call.CallEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]call.CallEvent(nil), l.evs...)
}

func (l *eventLog) types(callID string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.evs {
		if e.CallID == callID {
			out = append(out, e.Type)
		}
	}
	return out
}

// TestCallEvents: call.ringing when the hidden party rings, call.answered
// once bridged, in that order, once each, with masked numbers; a refused
// call has none; a callee who never answers gives only ringing.
func TestCallEvents(t *testing.T) {
	tests := []struct {
		name   string
		callee arisim.Behavior
		caller string
		want   []string
	}{
		{"answered", arisim.Answer(30 * time.Millisecond), aNum, []string{call.EventRinging, call.EventAnswered}},
		{"busy without ringing", arisim.Busy(), aNum, nil},
		{"stranger", arisim.Answer(0), stranger, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.sim.SetEndpoint(bNum, tt.callee)
			b := h.bind(binding.Options{})
			in := h.dial(tt.caller)
			if len(tt.want) == 2 {
				h.bridgedLeg(in, bNum)
				// The bridge is up in the switch; the owner reports it once
				// its own request returns. (Hanging up before then races the
				// answer, a case of its own.)
				h.waitFor("call.answered", func() bool {
					for _, e := range h.events.all() {
						if e.Type == call.EventAnswered {
							return true
						}
					}
					return false
				})
				h.sim.HangupFromPeer(in, 16)
			}
			h.waitDestroyed(in)
			r := h.lastRecord()
			time.Sleep(50 * time.Millisecond)
			if got := h.events.types(r.CallID); !slices.Equal(got, tt.want) {
				t.Fatalf("events %v, want %v", got, tt.want)
			}
			for _, e := range h.events.evs {
				if e.BindingID != b.ID || e.Mode != "axb" || e.X != xNum || strings.Contains(e.Caller, "0000000") || e.Callee == bNum {
					t.Errorf("event %+v", e)
				}
			}
		})
	}
}
