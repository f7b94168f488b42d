package call_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/privnum/privnum/ari"
	"github.com/privnum/privnum/ari/arisim"
	"github.com/privnum/privnum/call"
)

// slowPlay is a Switch whose Play requests return late: the playback
// starts at once, the answer comes after delay.
type slowPlay struct {
	call.Switch
	delay time.Duration
}

func (s slowPlay) Play(ctx context.Context, channelID, playbackID string, media ...string) (ari.Playback, error) {
	pb, err := s.Switch.Play(ctx, channelID, playbackID, media...)
	time.Sleep(s.delay)
	return pb, err
}

// restartWith replaces the App with one whose Switch is wrapped.
func (h *harness) restartWith(wrap func(call.Switch) call.Switch) {
	h.t.Helper()
	h.stop()
	h.waitFor("old connection gone", func() bool { return !h.sim.Connected("privnum") })
	h.wrap = wrap
	h.start()
}

const raceRounds = 5

// TestCallbackFirstHangsUpDuringPrompt: the first party hangs up while the
// hold prompt is being started. The callback must end failed, with no
// "calling-second" after it, and the second party must not be left ringing.
func TestCallbackFirstHangsUpDuringPrompt(t *testing.T) {
	for i := range raceRounds {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			h := newHarness(t)
			h.restartWith(func(sw call.Switch) call.Switch { return slowPlay{sw, 200 * time.Millisecond} })
			h.sim.SetEndpoint(aNum, arisim.Answer(10*time.Millisecond))
			h.sim.SetEndpoint(bNum, arisim.NoAnswer())
			var st states
			if err := h.app.Callback(context.Background(), call.CallbackRequest{
				First: aNum, Second: bNum, X: xNum, RingTimeout: 5 * time.Second, Report: st.report,
			}); err != nil {
				t.Fatal(err)
			}
			first, _ := h.outboundTo(aNum)
			h.waitFor("prompt", func() bool { _, ok := h.sim.Playback(h.lastCallID(first.ID) + "-prompt"); return ok })
			if err := h.sim.HangupFromPeer(first.ID, 16); err != nil {
				t.Fatal(err)
			}
			h.waitFor("callback ended", func() bool { l := st.list(); return len(l) > 0 && strings.HasPrefix(l[len(l)-1], "failed") })
			time.Sleep(400 * time.Millisecond) // the Play answer arrives meanwhile
			got := st.list()
			if last := got[len(got)-1]; !strings.HasPrefix(last, "failed") || strings.Count(strings.Join(got, " "), "failed") != 1 {
				t.Fatalf("states = %v; want them to end with one failed", got)
			}
			h.waitFor("no channels left", func() bool { return len(h.sim.Channels()) == 0 && h.app.LiveCalls() == 0 })
		})
	}
}

// TestCallbackBridgedBeforeCompleted: the second party hangs up the moment
// the callback is reported bridged, while the consumer of the reports is
// still storing that state. Reports must arrive in the order the call went
// through them: bridged, then completed.
func TestCallbackBridgedBeforeCompleted(t *testing.T) {
	for i := range raceRounds {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			h := newHarness(t)
			h.sim.SetEndpoint(aNum, arisim.Answer(10*time.Millisecond))
			h.sim.SetEndpoint(bNum, arisim.Answer(10*time.Millisecond))
			var st states
			bridgedReported := make(chan struct{})
			report := func(s call.CallbackState, reason string) {
				if s == call.CallbackBridged {
					close(bridgedReported)
					time.Sleep(100 * time.Millisecond) // a consumer storing the state
				}
				st.report(s, reason)
			}
			if err := h.app.Callback(context.Background(), call.CallbackRequest{
				First: aNum, Second: bNum, X: xNum, RingTimeout: 5 * time.Second, Report: report,
			}); err != nil {
				t.Fatal(err)
			}
			<-bridgedReported
			second, _ := h.outboundTo(bNum)
			if err := h.sim.HangupFromPeer(second.ID, 16); err != nil {
				t.Fatal(err)
			}
			h.waitFor("callback ended", func() bool { return slices.Contains(st.list(), "completed") })
			want := []string{"calling-first", "calling-second", "bridged", "completed"}
			if got := st.list(); !slices.Equal(got, want) {
				t.Fatalf("states = %v, want %v", got, want)
			}
		})
	}
}
