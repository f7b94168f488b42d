package dialq_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/privnum/privnum/dialq"
	"github.com/privnum/privnum/internal/redistest"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// placements counts the jobs a handler was given, by id, as the call
// placing side would see them.
type placements struct {
	mu  sync.Mutex
	n   map[string]int
	who map[string][]string
	at  map[string]time.Time
}

func newPlacements() *placements {
	return &placements{n: map[string]int{}, who: map[string][]string{}, at: map[string]time.Time{}}
}

// handler returns a handler that records placements by consumer, after
// waiting delay.
func (p *placements) handler(consumer string, delay time.Duration) func(context.Context, dialq.Job) error {
	return func(_ context.Context, j dialq.Job) error {
		time.Sleep(delay)
		p.mu.Lock()
		defer p.mu.Unlock()
		p.n[j.ID]++
		p.who[j.ID] = append(p.who[j.ID], consumer)
		p.at[j.ID] = time.Now()
		return nil
	}
}

func (p *placements) distinct() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.n)
}

// waitFor polls cond until it holds or 10s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// run starts q.Run as consumer and returns a function that stops it and
// waits for it to return.
func run(t *testing.T, q *dialq.Queue, consumer string, handle func(context.Context, dialq.Job) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- q.Run(ctx, consumer, handle) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run %s: %v", consumer, err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("Run %s did not return after its context was cancelled", consumer)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// checkDrained fails t unless the stream is empty and nothing is pending.
func checkDrained(t *testing.T, rdb redis.UniversalClient) {
	t.Helper()
	ctx := context.Background()
	if n, err := rdb.XLen(ctx, dialq.Stream).Result(); err != nil || n != 0 {
		t.Errorf("stream length %d (%v), want 0", n, err)
	}
	if p, err := rdb.XPending(ctx, dialq.Stream, dialq.Group).Result(); err != nil || p.Count != 0 {
		t.Errorf("pending %+v (%v), want none", p, err)
	}
}

// readAs reads up to n new jobs as consumer, as a serve process would just
// before dying.
func readAs(t *testing.T, rdb redis.UniversalClient, consumer string, n int64) []redis.XMessage {
	t.Helper()
	ctx := context.Background()
	if err := rdb.XGroupCreateMkStream(ctx, dialq.Stream, dialq.Group, "0").Err(); err != nil && !redis.HasErrorPrefix(err, "BUSYGROUP") {
		t.Fatal(err)
	}
	res, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: dialq.Group, Consumer: consumer, Streams: []string{dialq.Stream, ">"}, Count: n, Block: -1,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil
	}
	if err != nil {
		t.Fatalf("read as %s: %v", consumer, err)
	}
	return res[0].Messages
}

func TestQueue(t *testing.T) {
	rdb := redistest.Client(t)
	q := dialq.New(rdb, 300*time.Millisecond, discard)
	ctx := context.Background()
	// A job queued before the consumer starts is still taken.
	if err := q.Enqueue(ctx, "callback", "early"); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []string
	stop := run(t, q, "c1", func(_ context.Context, j dialq.Job) error {
		mu.Lock()
		got = append(got, j.Kind+":"+j.ID)
		mu.Unlock()
		if j.ID == "v1" {
			return fmt.Errorf("no answer")
		}
		return nil
	})
	time.Sleep(100 * time.Millisecond)
	q.Enqueue(ctx, "flash", "v1")
	waitFor(t, "two jobs", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 2 })
	stop()
	if got[0] != "callback:early" || got[1] != "flash:v1" {
		t.Fatalf("handled %v", got)
	}
	checkDrained(t, rdb)
	if s, want := q.Stats(), (dialq.Stats{Placed: 2, Failed: 1}); s != want {
		t.Errorf("stats %+v, want %+v", s, want)
	}
}

func TestQueueDropsStaleJobs(t *testing.T) {
	rdb := redistest.Client(t)
	q := dialq.New(rdb, 50*time.Millisecond, discard)
	ctx := context.Background()
	q.Enqueue(ctx, "callback", "stale")
	time.Sleep(100 * time.Millisecond)
	p := newPlacements()
	stop := run(t, q, "c1", p.handler("c1", 0))
	time.Sleep(50 * time.Millisecond)
	q.Enqueue(ctx, "callback", "fresh")
	waitFor(t, "the fresh job", func() bool { return p.distinct() == 1 })
	stop()
	if p.n["fresh"] != 1 || p.n["stale"] != 0 {
		t.Fatalf("placed %v; the stale job must be dropped, the fresh one placed", p.n)
	}
	checkDrained(t, rdb)
	if s, want := q.Stats(), (dialq.Stats{Placed: 1, Dropped: 1}); s != want {
		t.Errorf("stats %+v, want %+v", s, want)
	}
}

// A job read by a consumer that died before placing it is placed by a live
// consumer once it has been pending for MinIdle, and only once.
func TestDeadConsumersJobTakenOver(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	const minIdle = 300 * time.Millisecond
	q := dialq.NewWithConfig(rdb, dialq.Config{MinIdle: minIdle, ReclaimEvery: 20 * time.Millisecond, Logger: discard})
	if err := q.Enqueue(ctx, "callback", "orphan"); err != nil {
		t.Fatal(err)
	}
	if got := readAs(t, rdb, "dead-1", 10); len(got) != 1 {
		t.Fatalf("dead-1 read %d jobs", len(got))
	}
	read := time.Now()
	p := newPlacements()
	stop := run(t, q, "live-1", p.handler("live-1", 0))
	waitFor(t, "the orphan placed", func() bool { return p.distinct() == 1 })
	time.Sleep(3 * minIdle) // time to place it again, wrongly
	stop()
	if p.n["orphan"] != 1 {
		t.Fatalf("orphan placed %d times", p.n["orphan"])
	}
	if waited := p.at["orphan"].Sub(read); waited < minIdle-20*time.Millisecond {
		t.Errorf("orphan taken over %v after it was read; want at least MinIdle (%v)", waited, minIdle)
	}
	checkDrained(t, rdb)
	if s, want := q.Stats(), (dialq.Stats{Placed: 1, Reclaimed: 1}); s != want {
		t.Errorf("stats %+v, want %+v", s, want)
	}
}

// A job whose handler runs longer than MinIdle is not taken over: once
// committed it is no longer pending.
func TestSlowHandlerKeepsItsJob(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	cfg := dialq.Config{MinIdle: 50 * time.Millisecond, ReclaimEvery: 10 * time.Millisecond, Logger: discard}
	a, b := dialq.NewWithConfig(rdb, cfg), dialq.NewWithConfig(rdb, cfg)
	p := newPlacements()
	started := make(chan struct{})
	slow := p.handler("a", 0)
	run(t, a, "a", func(ctx context.Context, j dialq.Job) error {
		close(started)
		time.Sleep(10 * cfg.MinIdle)
		return slow(ctx, j)
	})
	a.Enqueue(ctx, "callback", "slow")
	<-started
	run(t, b, "b", p.handler("b", 0))
	waitFor(t, "the slow job placed", func() bool { return p.distinct() == 1 })
	time.Sleep(5 * cfg.MinIdle)
	p.mu.Lock()
	defer p.mu.Unlock()
	if !slices.Equal(p.who["slow"], []string{"a"}) {
		t.Fatalf("slow job placed by %v, want [a]", p.who["slow"])
	}
	if s := b.Stats(); s != (dialq.Stats{}) {
		t.Errorf("b's stats %+v, want zero", s)
	}
}

// Two live consumers share 200 jobs: each is placed exactly once, none is
// lost, also when MinIdle is so short they keep taking jobs over from each
// other.
func TestTwoConsumersPlaceEachJobOnce(t *testing.T) {
	for _, tc := range []struct {
		name    string
		minIdle time.Duration
		delay   time.Duration
	}{
		{"steady", 10 * time.Second, 0},
		{"racing takeovers", 2 * time.Millisecond, time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rdb := redistest.Client(t)
			ctx := context.Background()
			cfg := dialq.Config{MinIdle: tc.minIdle, ReclaimEvery: 5 * time.Millisecond, Logger: discard}
			qs := []*dialq.Queue{dialq.NewWithConfig(rdb, cfg), dialq.NewWithConfig(rdb, cfg)}
			p := newPlacements()
			const jobs = 200
			for i := range jobs / 2 {
				if err := qs[0].Enqueue(ctx, "callback", fmt.Sprint(i)); err != nil {
					t.Fatal(err)
				}
			}
			var stops []func()
			for i, q := range qs {
				name := fmt.Sprintf("c%d", i+1)
				stops = append(stops, run(t, q, name, p.handler(name, tc.delay)))
			}
			for i := jobs / 2; i < jobs; i++ {
				if err := qs[1].Enqueue(ctx, "flash", fmt.Sprint(i)); err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, "every job placed", func() bool { return p.distinct() == jobs })
			time.Sleep(100 * time.Millisecond)
			for _, stop := range stops {
				stop()
			}
			for i := range jobs {
				if n := p.n[fmt.Sprint(i)]; n != 1 {
					t.Errorf("job %d placed %d times, by %v", i, n, p.who[fmt.Sprint(i)])
				}
			}
			checkDrained(t, rdb)
			s1, s2 := qs[0].Stats(), qs[1].Stats()
			if s1.Placed+s2.Placed != jobs || s1.Failed+s2.Failed+s1.Dropped+s2.Dropped+s1.Duplicates+s2.Duplicates != 0 {
				t.Errorf("stats %+v and %+v", s1, s2)
			}
			t.Logf("c1 %+v", s1)
			t.Logf("c2 %+v", s2)
		})
	}
}

// Consumers that have nothing pending and have been idle for ConsumerIdle
// are removed from the group; one with jobs pending is kept.
func TestIdleConsumersRemoved(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	q := dialq.NewWithConfig(rdb, dialq.Config{MinIdle: time.Hour, ReclaimEvery: 10 * time.Millisecond,
		ConsumerIdle: 100 * time.Millisecond, Logger: discard})
	q.Enqueue(ctx, "callback", "held")
	readAs(t, rdb, "gone-holding", 1)
	if err := rdb.XGroupCreateConsumer(ctx, dialq.Stream, dialq.Group, "gone-empty").Err(); err != nil {
		t.Fatal(err)
	}
	names := func() []string {
		cs, err := rdb.XInfoConsumers(ctx, dialq.Stream, dialq.Group).Result()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range cs {
			out = append(out, c.Name)
		}
		slices.Sort(out)
		return out
	}
	if got := names(); !slices.Equal(got, []string{"gone-empty", "gone-holding"}) {
		t.Fatalf("consumers %v", got)
	}
	time.Sleep(150 * time.Millisecond)
	run(t, q, "live", newPlacements().handler("live", 0))
	want := []string{"gone-holding", "live"}
	waitFor(t, fmt.Sprint("consumers ", want), func() bool { return slices.Equal(names(), want) })
	time.Sleep(300 * time.Millisecond) // the live consumer, busy reading, stays
	if got := names(); !slices.Equal(got, want) {
		t.Fatalf("consumers %v, want %v", got, want)
	}
	if s := q.Stats(); s.ConsumersRemoved != 1 {
		t.Errorf("stats %+v, want 1 consumer removed", s)
	}
}

// If the group is deleted under a running consumer, it is created again and
// jobs keep flowing.
func TestGroupRecreated(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	q := dialq.NewWithConfig(rdb, dialq.Config{ReclaimEvery: 10 * time.Millisecond, Logger: discard})
	p := newPlacements()
	run(t, q, "c1", p.handler("c1", 0))
	q.Enqueue(ctx, "callback", "before")
	waitFor(t, "the first job", func() bool { return p.distinct() == 1 })
	if err := rdb.XGroupDestroy(ctx, dialq.Stream, dialq.Group).Err(); err != nil {
		t.Fatal(err)
	}
	q.Enqueue(ctx, "callback", "after")
	waitFor(t, "the job queued after the group was deleted", func() bool { return p.distinct() == 2 })
	time.Sleep(50 * time.Millisecond)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n["before"] != 1 || p.n["after"] != 1 {
		t.Fatalf("placed %v", p.n)
	}
}

// When its context is done, Run lets the handler under way finish with a
// live context, commits nothing more, and the jobs it had read go to
// another consumer after MinIdle.
func TestRunStopsBetweenJobs(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	cfg := dialq.Config{MinIdle: 100 * time.Millisecond, ReclaimEvery: 10 * time.Millisecond, Logger: discard}
	q1, q2 := dialq.NewWithConfig(rdb, cfg), dialq.NewWithConfig(rdb, cfg)
	q1.Enqueue(ctx, "callback", "first")
	q1.Enqueue(ctx, "callback", "second")
	p := newPlacements()
	started, release := make(chan struct{}), make(chan struct{})
	var handlerErr error
	place := p.handler("c1", 0)
	stop := run(t, q1, "c1", func(ctx context.Context, j dialq.Job) error {
		close(started)
		<-release
		handlerErr = ctx.Err()
		return place(ctx, j)
	})
	<-started
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	time.Sleep(50 * time.Millisecond) // Run's context is cancelled
	close(release)
	<-stopped
	if handlerErr != nil {
		t.Errorf("the handler's context: %v; want it live until the handler returns", handlerErr)
	}
	if p.distinct() != 1 || p.n["first"] != 1 {
		t.Fatalf("placed %v, want only the first job", p.n)
	}
	if pend, err := rdb.XPending(ctx, dialq.Stream, dialq.Group).Result(); err != nil || pend.Count != 1 || pend.Consumers["c1"] != 1 {
		t.Fatalf("pending %+v (%v), want the second job pending for c1", pend, err)
	}
	run(t, q2, "c2", p.handler("c2", 0))
	waitFor(t, "the second job", func() bool { return p.distinct() == 2 })
	if p.n["second"] != 1 || q2.Stats().Reclaimed != 1 {
		t.Errorf("placed %v; c2's stats %+v", p.n, q2.Stats())
	}
}
