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
	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/call"
	"github.com/privnum/privnum/cdr"
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

// slowOriginate is a Switch whose originate requests are slow. Without
// reachAnyway the request takes delay to reach Asterisk (and a cancelled one
// never does); with it, Asterisk acts on the request at once and only the
// answer is late (a cancelled request that was already on the wire).
type slowOriginate struct {
	call.Switch
	delay       time.Duration
	reachAnyway bool
}

func (s slowOriginate) Originate(ctx context.Context, r ari.OriginateRequest) (ari.Channel, error) {
	if s.reachAnyway {
		type result struct {
			ch  ari.Channel
			err error
		}
		done := make(chan result, 1)
		go func() {
			ch, err := s.Switch.Originate(context.WithoutCancel(ctx), r)
			time.Sleep(s.delay)
			done <- result{ch, err}
		}()
		select {
		case <-ctx.Done():
			return ari.Channel{}, ctx.Err()
		case x := <-done:
			return x.ch, x.err
		}
	}
	select {
	case <-ctx.Done():
		return ari.Channel{}, ctx.Err()
	case <-time.After(s.delay):
	}
	return s.Switch.Originate(ctx, r)
}

// TestHangupCancelsOriginate: the caller hangs up while the hidden leg's
// originate is in flight. The request is cancelled, so nobody is dialed;
// and if Asterisk had already acted on it, the leg it created is hung up.
func TestHangupCancelsOriginate(t *testing.T) {
	for _, reach := range []bool{false, true} {
		t.Run(fmt.Sprintf("reached=%v", reach), func(t *testing.T) {
			h := newHarness(t)
			h.restartWith(func(sw call.Switch) call.Switch { return slowOriginate{sw, 300 * time.Millisecond, reach} })
			h.sim.SetEndpoint(bNum, arisim.NoAnswer())
			h.bind(binding.Options{})
			in := h.dial(aNum)
			time.Sleep(50 * time.Millisecond) // routed; the originate is on its way
			if err := h.sim.HangupFromPeer(in, 16); err != nil {
				t.Fatal(err)
			}
			h.waitFor("call ended", func() bool { return h.app.LiveCalls() == 0 })
			r := h.lastRecord()
			if r.Disposition != cdr.Cancelled {
				t.Errorf("record = %+v; want cancelled", r)
			}
			if reach {
				h.waitFor("the late leg", func() bool { _, ok := h.outboundTo(bNum); return ok })
			} else {
				time.Sleep(400 * time.Millisecond) // past the originate's delay
			}
			out, dialed := h.outboundTo(bNum)
			switch {
			case !reach && dialed:
				t.Errorf("the callee was dialed after the caller hung up: %+v", out)
			case reach && !dialed:
				t.Fatal("the simulated switch did not act on the late originate")
			case reach:
				if ch := h.waitDestroyed(out.ID); ch.HangupBy != arisim.HangupByApp {
					t.Errorf("late leg ended by %s, want privnum", ch.HangupBy)
				}
			}
		})
	}
}
