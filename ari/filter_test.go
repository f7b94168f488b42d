package ari_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/privnum/privnum/ari"
	"github.com/privnum/privnum/ari/arisim"
)

// TestEventFilter: an application's event filter, set over ARI, keeps the
// disallowed types from it (the simulator as Asterisk 22 does it), and an
// empty filter lets everything through again.
func TestEventFilter(t *testing.T) {
	sim, client, h, stop := connect(arisim.Options{TimeScale: 0.01})
	defer stop()
	ctx := t.Context()

	// The trunk's channels are the app's from creation on: ChannelCreated,
	// ChannelDialplan and ChannelVarset come before StasisStart.
	if _, err := client.Subscribe(ctx, "privnum", "endpoint:PJSIP/trunk-in"); err != nil {
		t.Fatal(err)
	}
	app, err := client.SetEventFilter(ctx, "privnum", nil, []string{"ChannelVarset", "ChannelDialplan"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range app.EventsDisallowed {
		got = append(got, e.Type)
	}
	if !slices.Equal(got, []string{"ChannelVarset", "ChannelDialplan"}) || len(app.EventsAllowed) != 0 {
		t.Fatalf("application after the filter: %+v", app)
	}
	types := func() []string {
		id, err := sim.InboundCall(ctx, "13800000001", "17000000000")
		if err != nil {
			t.Fatal(err)
		}
		var seen []string
		for ev := range h.events {
			seen = append(seen, ev.EventType())
			if _, ok := ev.(*ari.StasisStart); ok {
				break
			}
		}
		if err := client.Hangup(ctx, id, "normal"); err != nil {
			t.Fatal(err)
		}
		timeout := time.After(5 * time.Second)
		for {
			select {
			case ev := <-h.events:
				seen = append(seen, ev.EventType())
				if _, ok := ev.(*ari.StasisEnd); ok {
					return seen
				}
			case <-timeout:
				t.Fatalf("no StasisEnd within 5 s: %v", seen)
			}
		}
	}
	if seen := types(); slices.Contains(seen, "ChannelVarset") || slices.Contains(seen, "ChannelDialplan") || !slices.Contains(seen, "ChannelCreated") {
		t.Errorf("filtered events were sent: %v", seen)
	}
	if _, err := client.SetEventFilter(ctx, "privnum", nil, nil); err != nil {
		t.Fatal(err)
	}
	if seen := types(); !slices.Contains(seen, "ChannelVarset") || !slices.Contains(seen, "ChannelDialplan") {
		t.Errorf("after the reset the filtered types did not come: %v", seen)
	}
	_, err = client.SetEventFilter(ctx, "nobody", nil, []string{"ChannelVarset"})
	if !errors.Is(err, ari.ErrNotFound) {
		t.Errorf("filter on an unknown application: %v, want not found", err)
	}
}
