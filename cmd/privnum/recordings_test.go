package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/privnum/privnum/ari"
	"github.com/privnum/privnum/ari/arisim"
)

// TestRecordingsCLI: a recorded call through serve and the simulator;
// `calls recording` downloads its WAV, `recordings prune` deletes it
// through ARI and marks the call record, and a second prune does nothing.
func TestRecordingsCLI(t *testing.T) {
	c := newCLI(t)
	c.ok("pool", "add", "17000000000")
	c.ok("bind", "create", "--a", "13800000001", "--b", "13900000002", "--record")
	sim := arisim.New(arisim.Options{Username: "u", Password: "p", TimeScale: 0.05})
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	ari := []string{"--ari-url", sim.URL(), "--ari-user", "u", "--ari-password", "p"}
	ctx, cancel := context.WithCancel(context.Background())
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, append([]string{"--redis", c.url, "--region", "CN", "serve", "--metrics-listen", "", "--drain-timeout", "1s"}, ari...), io.Discard, io.Discard)
	}()
	waitOrFail(t, func() bool { return sim.Connected("privnum") })
	in, err := sim.InboundCall(context.Background(), "13800000001", "17000000000")
	if err != nil {
		t.Fatal(err)
	}
	waitOrFail(t, func() bool { return len(sim.LiveRecordings()) == 1 })
	if err := sim.HangupFromPeer(in, 16); err != nil {
		t.Fatal(err)
	}
	var list struct {
		Calls []struct {
			CallID    string     `json:"call_id"`
			Recording string     `json:"recording"`
			PrunedAt  *time.Time `json:"recording_pruned_at"`
		}
	}
	waitOrFail(t, func() bool {
		c.json(&list, "calls", "list")
		return len(list.Calls) == 1 && list.Calls[0].Recording != ""
	})
	cancel()
	<-exit
	id := list.Calls[0].CallID

	wav := filepath.Join(t.TempDir(), "call.wav")
	c.ok(append([]string{"calls", "recording", id, "-o", wav}, ari...)...)
	if b, err := os.ReadFile(wav); err != nil || !bytes.HasPrefix(b, []byte("RIFF")) {
		t.Fatalf("downloaded %q, %v", b[:min(4, len(b))], err)
	}
	if _, errs, code := c.run(append([]string{"calls", "recording", "nope", "-o", wav + "2"}, ari...)...); code != 1 || !strings.Contains(errs, "no recording") {
		t.Errorf("recording of an unknown call: exit %d, %q", code, errs)
	}

	if out := c.ok(append([]string{"recordings", "prune", "--older-than", "14d"}, ari...)...); !strings.Contains(out, "pruned 0") {
		t.Errorf("prune 14d: %q", out)
	}
	time.Sleep(5 * time.Millisecond)
	if out := c.ok(append([]string{"recordings", "prune", "--older-than", "1ms"}, ari...)...); !strings.Contains(out, "pruned 1 recording(s)") {
		t.Errorf("prune 1ms: %q", out)
	}
	if len(sim.LiveRecordings()) != 0 {
		t.Error("live recordings left")
	}
	if out := c.ok(append([]string{"recordings", "prune", "--older-than", "1ms"}, ari...)...); !strings.Contains(out, "pruned 0") {
		t.Errorf("second prune: %q", out)
	}
	c.json(&list, "calls", "list")
	if list.Calls[0].PrunedAt == nil {
		t.Error("call record not marked recording_pruned_at")
	}
	if _, errs, code := c.run(append([]string{"calls", "recording", id, "-o", wav}, ari...)...); code != 1 || !strings.Contains(errs, "pruned") {
		t.Errorf("recording after prune: exit %d, %q", code, errs)
	}
	if _, errs, code := c.run(append([]string{"recordings", "prune", "--older-than", "soon"}, ari...)...); code != 2 || !strings.Contains(errs, "--older-than") {
		t.Errorf("bad --older-than: exit %d, %q", code, errs)
	}
}

// TestServePrunesRecordings: serve --prune-recordings-older-than prunes as
// it starts (and then daily), through ARI, and marks the call record.
func TestServePrunesRecordings(t *testing.T) {
	c := newCLI(t)
	c.ok("pool", "add", "17000000000")
	c.ok("bind", "create", "--a", "13800000001", "--b", "13900000002", "--record")
	sim := arisim.New(arisim.Options{Username: "u", Password: "p", TimeScale: 0.05})
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	serve := func(extra ...string) (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		exit := make(chan int, 1)
		args := append([]string{"--redis", c.url, "--region", "CN", "serve", "--metrics-listen", "", "--drain-timeout", "1s",
			"--ari-url", sim.URL(), "--ari-user", "u", "--ari-password", "p"}, extra...)
		go func() { exit <- run(ctx, args, io.Discard, io.Discard) }()
		waitOrFail(t, func() bool { return sim.Connected("privnum") })
		return func() { cancel(); <-exit }
	}
	stop := serve()
	in, err := sim.InboundCall(context.Background(), "13800000001", "17000000000")
	if err != nil {
		t.Fatal(err)
	}
	waitOrFail(t, func() bool { return len(sim.LiveRecordings()) == 1 })
	if err := sim.HangupFromPeer(in, 16); err != nil {
		t.Fatal(err)
	}
	var list struct {
		Calls []struct {
			Recording string     `json:"recording"`
			PrunedAt  *time.Time `json:"recording_pruned_at"`
		}
	}
	waitOrFail(t, func() bool {
		c.json(&list, "calls", "list")
		return len(list.Calls) == 1 && list.Calls[0].Recording != ""
	})
	stop()
	client, err := ari.New(ari.Config{URL: sim.URL(), Username: "u", Password: "p", Application: "privnum"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.StoredRecording(context.Background(), list.Calls[0].Recording); err != nil {
		t.Fatalf("stored recording %s: %v", list.Calls[0].Recording, err)
	}

	time.Sleep(5 * time.Millisecond)
	stop = serve("--prune-recordings-older-than", "1ms")
	defer stop()
	waitOrFail(t, func() bool {
		c.json(&list, "calls", "list")
		return len(list.Calls) == 1 && list.Calls[0].PrunedAt != nil
	})
	if _, err := client.StoredRecording(context.Background(), list.Calls[0].Recording); !errors.Is(err, ari.ErrNotFound) {
		t.Errorf("the recording is still stored in Asterisk: %v", err)
	}
}
