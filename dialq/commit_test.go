package dialq

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/privnum/privnum/internal/redistest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// add queues a job with the given stream entry id ("*": Redis picks it).
func add(t *testing.T, rdb redis.UniversalClient, entry string) string {
	t.Helper()
	ctx := context.Background()
	if err := rdb.XGroupCreateMkStream(ctx, Stream, Group, "0").Err(); err != nil && !redis.HasErrorPrefix(err, "BUSYGROUP") {
		t.Fatal(err)
	}
	id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: Stream, ID: entry,
		Values: []any{"kind", "callback", "id", "cb1", "at", time.Now().UnixMilli()}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// read reads the next new job as consumer.
func read(t *testing.T, rdb redis.UniversalClient, consumer string) {
	t.Helper()
	res, err := rdb.XReadGroup(context.Background(), &redis.XReadGroupArgs{
		Group: Group, Consumer: consumer, Streams: []string{Stream, ">"}, Count: 1, Block: -1,
	}).Result()
	if err != nil || len(res[0].Messages) != 1 {
		t.Fatalf("read as %s: %v %v", consumer, res, err)
	}
}

// The commit decides, atomically, whether the consumer places a job.
func TestCommit(t *testing.T) {
	const maxAge = time.Minute
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, rdb redis.UniversalClient, r *runner) string
		want  int
		// after the commit: whose the entry is pending for ("" none),
		// whether it is still in the stream, the marker's value.
		pendingFor string
		inStream   bool
		marker     string
	}{{
		name: "pending for this consumer",
		setup: func(t *testing.T, rdb redis.UniversalClient, r *runner) string {
			id := add(t, rdb, "*")
			read(t, rdb, r.name)
			return id
		},
		want: commitPlace, marker: "c/token",
	}, {
		name: "retried after its reply was lost",
		setup: func(t *testing.T, rdb redis.UniversalClient, r *runner) string {
			id := add(t, rdb, "*")
			read(t, rdb, r.name)
			if got, _, err := r.commit(context.Background(), id); err != nil || got != commitPlace {
				t.Fatalf("first commit: %d, %v", got, err)
			}
			return id
		},
		want: commitPlace, marker: "c/token",
	}, {
		name: "committed by another run already",
		setup: func(t *testing.T, rdb redis.UniversalClient, r *runner) string {
			id := add(t, rdb, "*")
			read(t, rdb, r.name)
			rdb.Set(context.Background(), markerPrefix+id, "c/other", time.Minute)
			return id
		},
		want: commitDuplicate, marker: "c/other",
	}, {
		name: "taken over and committed by another run",
		setup: func(t *testing.T, rdb redis.UniversalClient, r *runner) string {
			id := add(t, rdb, "*")
			read(t, rdb, r.name)
			other := &runner{q: r.q, name: "other", token: "other/token"}
			ctx := context.Background()
			if err := rdb.XClaim(ctx, &redis.XClaimArgs{Stream: Stream, Group: Group, Consumer: "other", Messages: []string{id}}).Err(); err != nil {
				t.Fatal(err)
			}
			if got, _, err := other.commit(ctx, id); err != nil || got != commitPlace {
				t.Fatalf("other's commit: %d, %v", got, err)
			}
			return id
		},
		want: commitLost, marker: "other/token",
	}, {
		name: "taken over by another consumer",
		setup: func(t *testing.T, rdb redis.UniversalClient, r *runner) string {
			id := add(t, rdb, "*")
			read(t, rdb, "other")
			return id
		},
		want: commitLost, pendingFor: "other", inStream: true,
	}, {
		name: "never read",
		setup: func(t *testing.T, rdb redis.UniversalClient, r *runner) string {
			return add(t, rdb, "*")
		},
		want: commitLost, inStream: true,
	}, {
		name: "too old by the Redis clock",
		setup: func(t *testing.T, rdb redis.UniversalClient, r *runner) string {
			id := add(t, rdb, fmt.Sprintf("%d-0", time.Now().Add(-maxAge-time.Second).UnixMilli()))
			read(t, rdb, r.name)
			return id
		},
		want: commitTooOld,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			rdb := redistest.Client(t)
			ctx := context.Background()
			q := NewWithConfig(rdb, Config{MaxAge: maxAge, Logger: quiet})
			r := &runner{q: q, name: "c", token: "c/token"}
			id := tc.setup(t, rdb, r)
			got, _, err := r.commit(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("outcome %d, want %d", got, tc.want)
			}
			p, err := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: Stream, Group: Group, Start: id, End: id, Count: 1}).Result()
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.pendingFor == "" && len(p) != 0:
				t.Errorf("still pending: %+v", p)
			case tc.pendingFor != "" && (len(p) != 1 || p[0].Consumer != tc.pendingFor):
				t.Errorf("pending %+v, want for %s", p, tc.pendingFor)
			}
			msgs, _ := rdb.XRange(ctx, Stream, id, id).Result()
			if (len(msgs) == 1) != tc.inStream {
				t.Errorf("in the stream: %v, want %v", len(msgs) == 1, tc.inStream)
			}
			marker, err := rdb.Get(ctx, markerPrefix+id).Result()
			if err != nil && !errors.Is(err, redis.Nil) {
				t.Fatal(err)
			}
			if marker != tc.marker {
				t.Errorf("marker %q, want %q", marker, tc.marker)
			}
			if tc.marker == r.token {
				if ttl := rdb.PTTL(ctx, markerPrefix+id).Val(); ttl <= maxAge || ttl > maxAge+time.Minute {
					t.Errorf("marker ttl %v, want a little over MaxAge (%v)", ttl, maxAge)
				}
			}
		})
	}
}

// A consumer that stalls after reading a job, past MinIdle, finds on waking
// that another consumer took the job over, and does not place it.
func TestStalledConsumerLosesItsJob(t *testing.T) {
	rdb := redistest.Client(t)
	ctx, cancel := context.WithCancel(context.Background())
	cfg := Config{MinIdle: 200 * time.Millisecond, ReclaimEvery: 10 * time.Millisecond, Logger: quiet}
	a, b := NewWithConfig(rdb, cfg), NewWithConfig(rdb, cfg)
	stalled, resume := make(chan struct{}), make(chan struct{})
	var once sync.Once
	a.beforeCommit = func(string, Job) { once.Do(func() { close(stalled); <-resume }) }
	var mu sync.Mutex
	var placedBy []string
	handler := func(consumer string) func(context.Context, Job) error {
		return func(context.Context, Job) error {
			mu.Lock()
			defer mu.Unlock()
			placedBy = append(placedBy, consumer)
			return nil
		}
	}
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	wg.Add(2)
	go func() { defer wg.Done(); a.Run(ctx, "a", handler("a")) }()
	if err := a.Enqueue(ctx, "callback", "cb1"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stalled:
	case <-time.After(10 * time.Second):
		close(resume)
		t.Fatal("a did not take the job")
	}
	go func() { defer wg.Done(); b.Run(ctx, "b", handler("b")) }()
	deadline := time.Now().Add(10 * time.Second)
	for b.Stats().Placed == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	close(resume)
	for a.Stats().Lost == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(2 * cfg.MinIdle)
	mu.Lock()
	defer mu.Unlock()
	if len(placedBy) != 1 || placedBy[0] != "b" {
		t.Fatalf("placed by %v, want [b]", placedBy)
	}
	if s, want := a.Stats(), (Stats{Lost: 1}); s != want {
		t.Errorf("a's stats %+v, want %+v", s, want)
	}
	if s, want := b.Stats(), (Stats{Placed: 1, Reclaimed: 1}); s != want {
		t.Errorf("b's stats %+v, want %+v", s, want)
	}
}
