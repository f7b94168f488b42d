package verify_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/privnum/privnum/internal/redistest"
	"github.com/privnum/privnum/verify"
)

// jobQueue is a fake verify.Queue that keeps what it is given.
type jobQueue struct {
	mu   sync.Mutex
	jobs [][2]string // kind, id
}

func (q *jobQueue) Enqueue(_ context.Context, kind, id string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.jobs = append(q.jobs, [2]string{kind, id})
	return nil
}

// dialer is a fake verify.FlashDialer that keeps what it rings.
type dialer struct {
	mu    sync.Mutex
	rings [][2]string // number, caller ID
}

func (d *dialer) Flash(_ context.Context, number, callerID string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rings = append(d.rings, [2]string{number, callerID})
	return nil
}

// TestQueuedFlashCalls queues a flash call the way the CLI and the API do
// and places it the way privnum serve does.
func TestQueuedFlashCalls(t *testing.T) {
	ctx := t.Context()
	rdb := redistest.Client(t)
	q := &jobQueue{}
	svc := verify.New(rdb, cn, verify.QueueFlasher{Queue: q}, verify.Config{TTL: 300 * time.Millisecond})
	if _, err := svc.AddCallerIDs(ctx, cids(1)...); err != nil {
		t.Fatal(err)
	}
	v, err := svc.Start(ctx, verify.StartRequest{Number: party(1), Requester: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(q.jobs) != 1 || q.jobs[0] != [2]string{verify.FlashJobKind, v.ID} {
		t.Fatalf("queued %v, want one %s job for %s", q.jobs, verify.FlashJobKind, v.ID)
	}

	d := &dialer{}
	jobs := verify.FlashJobs{Service: svc, Dialer: d}
	for _, tt := range []struct {
		name  string
		id    string
		wait  time.Duration
		want  error
		rings int
	}{
		{"pending", v.ID, 0, nil, 1},
		{"unknown", "nope", 0, verify.ErrNotFound, 1},
		{"expired", v.ID, 350 * time.Millisecond, verify.ErrExpired, 1},
	} {
		time.Sleep(tt.wait)
		if err := jobs.Place(ctx, tt.id); !errors.Is(err, tt.want) || len(d.rings) != tt.rings {
			t.Fatalf("%s: Place = %v, rings %v; want %v and %d ring(s)", tt.name, err, d.rings, tt.want, tt.rings)
		}
	}
	if d.rings[0] != [2]string{party(1), cids(1)[0]} {
		t.Fatalf("rang %v, want %s from %s", d.rings[0], party(1), cids(1)[0])
	}
}
