package ari_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/privnum/privnum/ari"
	"github.com/privnum/privnum/ari/arisim"
)

// chanHandler hands the events of Run to a channel and reports connections.
type chanHandler struct {
	events    chan ari.Event
	connected chan struct{}
}

func (h *chanHandler) Connected(context.Context) {
	select {
	case h.connected <- struct{}{}:
	default:
	}
}

func (h *chanHandler) HandleEvent(ev ari.Event) { h.events <- ev }

// next returns the next event of type T, skipping others; it panics after
// five seconds.
func next[T ari.Event](h *chanHandler) T {
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev := <-h.events:
			if t, ok := ev.(T); ok {
				return t
			}
		case <-timeout:
			var zero T
			panic(fmt.Sprintf("no %T within 5s", zero))
		}
	}
}

// connect starts a simulator and runs a client's event stream on it until
// the returned stop is called.
func connect(opts arisim.Options) (sim *arisim.Sim, c *ari.Client, h *chanHandler, stop func()) {
	sim = arisim.New(opts)
	if err := sim.Start(); err != nil {
		panic(err)
	}
	c, err := ari.New(ari.Config{URL: sim.URL(), Application: "privnum"})
	if err != nil {
		panic(err)
	}
	h = &chanHandler{events: make(chan ari.Event, 256), connected: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Run(ctx, h)
	}()
	<-h.connected
	return sim, c, h, func() {
		cancel()
		<-done
		sim.Close()
	}
}

func check(err error) {
	if err != nil {
		panic(err)
	}
}

// The exchange of an IVR that asks the caller for an extension: the call
// enters the application, which answers and plays the prompt; the caller
// keys "1234#" while it plays, one ChannelDtmfReceived per digit; the
// prompt goes on until the application stops it.
func Example_ivr() {
	sim, client, h, stop := connect(arisim.Options{TimeScale: 0.01, NoVarsetNoise: true,
		MediaDurations: map[string]time.Duration{"sound:please-enter-the": time.Minute}}) // ample time to key
	defer stop()
	ctx := context.Background()

	_, err := sim.InboundCall(ctx, "13800000001", "17000000000") // the caller dials X
	check(err)
	start := next[*ari.StasisStart](h)
	id := start.Channel.ID
	fmt.Println("StasisStart", start.Channel.State)

	check(client.Answer(ctx, id))
	fmt.Println("ChannelStateChange", next[*ari.ChannelStateChange](h).Channel.State)

	_, err = client.Play(ctx, id, "prompt-"+id, "sound:please-enter-the", "sound:extension")
	check(err)
	pb := next[*ari.PlaybackStarted](h).Playback
	fmt.Println("PlaybackStarted", pb.MediaURI, pb.State)

	check(sim.SendDTMF(id, "1234#", 150*time.Millisecond)) // the caller keys the extension
	var digits string
	for {
		ev := next[*ari.ChannelDtmfReceived](h)
		digits += ev.Digit
		fmt.Println("ChannelDtmfReceived", ev.Digit, ev.DurationMs, "ms")
		if ev.Digit == "#" {
			break
		}
	}

	check(client.StopPlayback(ctx, "prompt-"+id))
	pb = next[*ari.PlaybackFinished](h).Playback
	fmt.Println("PlaybackFinished", pb.MediaURI, pb.State, "digits", digits)

	check(client.Hangup(ctx, id, "normal"))
	next[*ari.StasisEnd](h)

	// Output:
	// StasisStart Ring
	// ChannelStateChange Up
	// PlaybackStarted sound:please-enter-the playing
	// ChannelDtmfReceived 1 120 ms
	// ChannelDtmfReceived 2 120 ms
	// ChannelDtmfReceived 3 120 ms
	// ChannelDtmfReceived 4 120 ms
	// ChannelDtmfReceived # 120 ms
	// PlaybackFinished sound:please-enter-the done digits 1234#
}

// TestClientOnSimulator: the calls an IVR makes, against the simulator,
// with the statuses Asterisk gives them as the client's sentinel errors.
func TestClientOnSimulator(t *testing.T) {
	sim, client, h, stop := connect(arisim.Options{TimeScale: 0.01, NoVarsetNoise: true, PlaybackDuration: time.Second,
		DefaultBehavior: &arisim.Behavior{Outcome: arisim.OutcomeNoAnswer}})
	defer stop()
	ctx := t.Context()

	id, err := sim.InboundCall(ctx, "13800000001", "17000000000")
	if err != nil {
		t.Fatal(err)
	}
	next[*ari.StasisStart](h)

	// A prompt of several media, each reported, before answer (early media).
	if _, err := client.Play(ctx, id, "pb-1", "sound:a", "sound:b"); err != nil {
		t.Fatal(err)
	}
	var seq []string
	for done := false; !done; {
		var p ari.Playback
		select {
		case ev := <-h.events:
			switch e := ev.(type) {
			case *ari.PlaybackStarted:
				p = e.Playback
			case *ari.PlaybackContinuing:
				p = e.Playback
			case *ari.PlaybackFinished:
				p, done = e.Playback, true
			default:
				continue
			}
			seq = append(seq, ev.EventType()+" "+p.MediaURI+">"+p.NextMediaURI)
		case <-time.After(5 * time.Second):
			t.Fatalf("playback events so far %v", seq)
		}
	}
	want := []string{"PlaybackStarted sound:a>sound:b", "PlaybackContinuing sound:a>sound:b",
		"PlaybackStarted sound:b>", "PlaybackFinished sound:b>"}
	if !slices.Equal(seq, want) {
		t.Errorf("playback events\n got %v\nwant %v", seq, want)
	}

	// Digits from the caller during early media.
	if err := sim.SendDTMF(id, "5", 0); err != nil {
		t.Fatal(err)
	}
	if ev := next[*ari.ChannelDtmfReceived](h); ev.Digit != "5" || ev.Channel.ID != id || ev.DurationMs != 120 {
		t.Errorf("DTMF %+v", ev)
	}

	if err := client.Answer(ctx, id); err != nil {
		t.Fatal(err)
	}
	if ev := next[*ari.ChannelStateChange](h); ev.Channel.State != "Up" {
		t.Errorf("after answer: %+v", ev.Channel)
	}
	if err := client.SendDTMF(ctx, id, ari.DTMFRequest{Digits: "12", Between: 10 * time.Millisecond, Duration: 10 * time.Millisecond}); err != nil {
		t.Errorf("SendDTMF to the answered caller: %v", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := sim.WaitFor(wctx, func(s *arisim.Sim) bool { ci, _ := s.Channel(id); return ci.DTMFSent == "12" }); err != nil {
		t.Error(err)
	}

	created, err := client.CreateChannel(ctx, ari.CreateRequest{Endpoint: "PJSIP/13900000002@carrier", ChannelID: "leg"})
	if err != nil {
		t.Fatal(err)
	}
	next[*ari.StasisStart](h)
	for _, tc := range []struct {
		name, channel string
		want          error
	}{
		{"leg not dialed", created.ID, ari.ErrPreconditionFailed},
		{"gone", "nope", ari.ErrNotFound},
	} {
		if err := client.SendDTMF(ctx, tc.channel, ari.DTMFRequest{Digits: "1"}); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if err := client.StopPlayback(ctx, "pb-1"); !errors.Is(err, ari.ErrNotFound) {
		t.Errorf("stop a finished playback: %v", err)
	}
}
