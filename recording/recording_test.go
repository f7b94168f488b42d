package recording_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/privnum/privnum/ari"
	"github.com/privnum/privnum/ari/arisim"
	"github.com/privnum/privnum/cdr"
	"github.com/privnum/privnum/internal/redistest"
	"github.com/privnum/privnum/recording"
)

// recorded starts the simulator and records a bridge once per name/format,
// leaving stored recordings.
func recorded(t *testing.T, recs map[string]string) (*arisim.Sim, *ari.Client) {
	t.Helper()
	sim := arisim.New(arisim.Options{Username: "u", Password: "p"})
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	c, err := ari.New(ari.Config{URL: sim.URL(), Username: "u", Password: "p", Application: "privnum"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.CreateBridge(ctx, "br", "mixing", ""); err != nil {
		t.Fatal(err)
	}
	for name, format := range recs {
		if _, err := c.RecordBridge(ctx, "br", ari.RecordRequest{Name: name, Format: format}); err != nil {
			t.Fatal(err)
		}
		if err := c.StopRecording(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	return sim, c
}

func TestOpenAndPrune(t *testing.T) {
	ctx := context.Background()
	sim, client := recorded(t, map[string]string{"privnum-old": "wav", "privnum-new": "gsm"})
	rdb := redistest.Client(t)
	calls := cdr.New(rdb, 0)
	now := time.Now()
	for _, r := range []cdr.Record{
		{CallID: "old", Recording: "privnum-old", Start: now.Add(-20 * 24 * time.Hour), End: now.Add(-20 * 24 * time.Hour), Disposition: cdr.Answered},
		{CallID: "new", Recording: "privnum-new", Start: now.Add(-time.Hour), End: now.Add(-time.Hour), Disposition: cdr.Answered},
		{CallID: "plain", Start: now, End: now, Disposition: cdr.Answered},
	} {
		if err := calls.Add(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	svc := recording.New(client, calls, nil)

	f, err := svc.Open(ctx, "old")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(f.Body)
	f.Body.Close()
	if f.ContentType != "audio/wav" || f.Format != "wav" || !bytes.HasPrefix(body, []byte("RIFF")) {
		t.Errorf("Open(old) = %+v, %q…", f, body[:min(4, len(body))])
	}
	if f, err := svc.Open(ctx, "new"); err != nil || f.ContentType != "audio/x-gsm" {
		t.Errorf("Open(new) = %+v, %v", f, err)
	} else {
		f.Body.Close()
	}
	for _, id := range []string{"plain", "nope"} {
		if _, err := svc.Open(ctx, id); !errors.Is(err, recording.ErrNoRecording) {
			t.Errorf("Open(%s) = %v, want ErrNoRecording", id, err)
		}
	}

	// Older than 14 days: only "old" goes, through ARI, and is marked.
	res, err := svc.Prune(ctx, now.Add(-14*24*time.Hour))
	if err != nil || res != (recording.PruneResult{Deleted: 1}) {
		t.Fatalf("Prune(14d) = %+v, %v", res, err)
	}
	stored, _ := client.StoredRecordings(ctx)
	if len(stored) != 1 || stored[0].Name != "privnum-new" {
		t.Errorf("stored after prune: %+v", stored)
	}
	if _, err := svc.Open(ctx, "old"); !errors.Is(err, recording.ErrPruned) {
		t.Errorf("Open(pruned) = %v, want ErrPruned", err)
	}
	recs, err := calls.List(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if (r.RecordingPrunedAt != nil) != (r.CallID == "old") {
			t.Errorf("record %s: recording_pruned_at %v", r.CallID, r.RecordingPrunedAt)
		}
	}
	first := recs[2].RecordingPrunedAt
	// Idempotent: nothing left to prune, the mark keeps its time.
	if res, err := svc.Prune(ctx, now.Add(-14*24*time.Hour)); err != nil || res != (recording.PruneResult{}) {
		t.Errorf("second Prune = %+v, %v", res, err)
	}
	if err := calls.MarkPruned(ctx, "old", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if ref, _ := calls.Recording(ctx, "old"); first == nil || !ref.PrunedAt.Equal(*first) {
		t.Errorf("mark moved: %v, first %v", ref.PrunedAt, first)
	}
	// The mark of a recording that is gone does not stay forever.
	if ttl := rdb.TTL(ctx, "pn:rec:{old}").Val(); ttl <= 0 || ttl > cdr.PrunedMarkTTL {
		t.Errorf("pruned mark TTL %v, want (0, %v]", ttl, cdr.PrunedMarkTTL)
	}

	// A recording deleted behind privnum's back is marked, counted missing.
	if err := client.DeleteStoredRecording(ctx, "privnum-new"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Open(ctx, "new"); !errors.Is(err, recording.ErrNoRecording) {
		t.Errorf("Open(deleted in Asterisk) = %v, want ErrNoRecording", err)
	}
	if res, err := svc.Prune(ctx, now); err != nil || res != (recording.PruneResult{Missing: 1}) {
		t.Errorf("Prune(now) = %+v, %v", res, err)
	}
	if _, err := svc.Open(ctx, "new"); !errors.Is(err, recording.ErrPruned) {
		t.Errorf("Open(new) after prune = %v", err)
	}
	_ = sim
}

func TestContentType(t *testing.T) {
	for format, want := range map[string]string{"wav": "audio/wav", "gsm": "audio/x-gsm", "ulaw": "audio/basic", "mp9": "application/octet-stream"} {
		if got := recording.ContentType(format); got != want {
			t.Errorf("ContentType(%s) = %s, want %s", format, got, want)
		}
	}
}
