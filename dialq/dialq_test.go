package dialq_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/privnum/privnum/dialq"
	"github.com/privnum/privnum/internal/redistest"
)

func TestQueue(t *testing.T) {
	rdb := redistest.Client(t)
	q := dialq.New(rdb, 300*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A job queued before the consumer starts is still taken.
	if err := q.Enqueue(ctx, "callback", "early"); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		q.Run(ctx, "c1", func(_ context.Context, j dialq.Job) error {
			mu.Lock()
			got = append(got, j.Kind+":"+j.ID)
			mu.Unlock()
			return nil
		})
	}()
	time.Sleep(100 * time.Millisecond)
	q.Enqueue(ctx, "flash", "v1")
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if len(got) != 2 || got[0] != "callback:early" || got[1] != "flash:v1" {
		t.Fatalf("handled %v", got)
	}
	if n, _ := rdb.XLen(context.Background(), dialq.Stream).Result(); n != 0 {
		t.Fatalf("%d jobs left in the stream", n)
	}
}

func TestQueueDropsStaleJobs(t *testing.T) {
	rdb := redistest.Client(t)
	q := dialq.New(rdb, 50*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	q.Enqueue(ctx, "callback", "stale")
	time.Sleep(100 * time.Millisecond)
	handled := make(chan string, 2)
	go q.Run(ctx, "c1", func(_ context.Context, j dialq.Job) error { handled <- j.ID; return nil })
	time.Sleep(50 * time.Millisecond)
	q.Enqueue(ctx, "callback", "fresh")
	select {
	case id := <-handled:
		if id != "fresh" {
			t.Fatalf("handled %q; the stale job must be dropped", id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("fresh job not handled")
	}
}
