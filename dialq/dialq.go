// Package dialq carries requests to place calls (callbacks, verification
// flash calls) from the processes that accept them (the HTTP API, the CLI)
// to the ones that hold an ARI connection (privnum serve), through a Redis
// stream with a consumer group, so a request survives a restart of either.
//
// Several serve processes may take jobs from the queue at once; each is a
// consumer of the group. A job is placed by one of them, at most once:
//
//   - A consumer reads a job (it becomes pending for that consumer), then
//     commits it: one Lua script checks that the job is still pending for
//     this consumer, acknowledges and deletes it, and records a placed
//     marker, all atomically. Only a consumer whose commit succeeds hands
//     the job to its handler, which places the call.
//   - If a consumer dies, or stalls, after reading a job but before
//     committing it, the job stays pending; after Config.MinIdle another
//     consumer takes it over (XAUTOCLAIM, every Config.ReclaimEvery) and
//     places it. Should the stalled consumer wake up, its commit finds the
//     job no longer pending for it and it skips the job (Stats.Lost).
//   - A committed job is no longer pending, so nobody can take it over,
//     however long its handler runs. The placed marker (kept a minute
//     longer than the maximum age of a job) makes a commit whose reply was
//     lost safe to retry, and drops any copy of the job delivered again
//     (Stats.Duplicates).
//
// The at-most-once window: a consumer that dies after its commit and before
// the handler has originated the call loses that job; nobody places it.
// Exactly-once also assumes Redis keeps the writes it acknowledged: a
// failover to a replica that had not yet received a commit can undo it, and
// the job may then be placed again.
//
// Jobs are aged by the Redis server's clock (the stream entry id), not by
// the consumers', and jobs older than Config.MaxAge are dropped: a caller who
// asked minutes ago must not be rung out of the blue.
//
// Processes restart with new consumer names, so the group would grow with
// every restart: a consumer with nothing pending that has been idle for
// Config.ConsumerIdle is removed from it.
package dialq

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Stream and Group name the Redis stream and its consumer group. The
// stream and the placed markers (pn:{dialq}:placed:<entry id>) share the
// hash tag {dialq}, so one script can touch both in a Redis Cluster.
const (
	Stream = "pn:{dialq}:jobs"
	Group  = "privnum-serve"
)

// markerPrefix starts the key of a job's placed marker; the stream entry id
// follows.
const markerPrefix = "pn:{dialq}:placed:"

// Job asks for one call. It carries ids only: the numbers stay in the
// records the ids name.
type Job struct {
	// Kind says what to place: callback.JobKind or verify.FlashJobKind.
	Kind string
	// ID names the callback or verification.
	ID string
	// Queued is when the job was enqueued (by the enqueuer's clock).
	Queued time.Time
}

// ErrUnknownKind means a job's kind has no handler in the Router.
var ErrUnknownKind = errors.New("unknown dial job kind")

// Router places each job with the handler for its kind (callback.JobKind,
// verify.FlashJobKind, ...), given the job's id. Its Place is the handler
// to give Run.
type Router map[string]func(ctx context.Context, id string) error

// Place hands j to the handler for j.Kind. A kind without a handler is an
// error wrapping ErrUnknownKind.
func (r Router) Place(ctx context.Context, j Job) error {
	h, ok := r[j.Kind]
	if !ok {
		return fmt.Errorf("%w %q (job %s)", ErrUnknownKind, j.Kind, j.ID)
	}
	return h(ctx, j.ID)
}

// Config tunes a Queue. The zero value of each field means its default.
type Config struct {
	// MaxAge is how old (by the Redis server's clock) a job may be when it
	// is committed; older jobs are dropped. Default 2m.
	MaxAge time.Duration
	// ReclaimEvery is how often a running consumer looks for jobs other
	// consumers left pending. Default 2s.
	ReclaimEvery time.Duration
	// MinIdle is how long a job must have been pending, unacknowledged,
	// before another consumer takes it over. It bounds the delay a dead
	// consumer adds to its jobs; it must exceed the time a live consumer
	// takes between reading a batch of jobs and committing the last of
	// them, or live consumers lose jobs to each other (they are still
	// placed once). Default 10s.
	MinIdle time.Duration
	// ConsumerIdle is how long a consumer must have been idle, with
	// nothing pending, before it is removed from the group. Negative
	// never removes one. Default 1h.
	ConsumerIdle time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Stats counts what a Queue's consumers did since New. Serve exports these
// as counters.
type Stats struct {
	// Placed counts jobs committed and handed to the handler.
	Placed uint64
	// Failed counts the Placed jobs whose handler returned an error.
	Failed uint64
	// Reclaimed counts jobs taken over after they had been pending for
	// MinIdle, usually from a dead consumer.
	Reclaimed uint64
	// Lost counts jobs read but not placed because another consumer took
	// them over before this one committed them.
	Lost uint64
	// Duplicates counts jobs dropped because their placed marker showed
	// another consumer had committed them already.
	Duplicates uint64
	// Dropped counts jobs dropped as too old or unreadable.
	Dropped uint64
	// ConsumersRemoved counts idle consumers removed from the group.
	ConsumersRemoved uint64
}

// Queue is the dial queue.
type Queue struct {
	rdb   redis.UniversalClient
	cfg   Config
	log   *slog.Logger
	stats struct {
		placed, failed, reclaimed, lost, duplicates, dropped, removed atomic.Uint64
	}
	// beforeCommit, if set (by tests), runs before each commit.
	beforeCommit func(consumer string, j Job)
}

// New returns a Queue on rdb that drops jobs older than maxAge (0 means
// 2 minutes), with the other settings at their defaults.
func New(rdb redis.UniversalClient, maxAge time.Duration, log *slog.Logger) *Queue {
	return NewWithConfig(rdb, Config{MaxAge: maxAge, Logger: log})
}

// NewWithConfig returns a Queue on rdb.
func NewWithConfig(rdb redis.UniversalClient, cfg Config) *Queue {
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 2 * time.Minute
	}
	if cfg.ReclaimEvery <= 0 {
		cfg.ReclaimEvery = 2 * time.Second
	}
	if cfg.MinIdle <= 0 {
		cfg.MinIdle = 10 * time.Second
	}
	if cfg.ConsumerIdle == 0 {
		cfg.ConsumerIdle = time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Queue{rdb: rdb, cfg: cfg, log: cfg.Logger}
}

// Stats returns the counts so far.
func (q *Queue) Stats() Stats {
	return Stats{
		Placed:           q.stats.placed.Load(),
		Failed:           q.stats.failed.Load(),
		Reclaimed:        q.stats.reclaimed.Load(),
		Lost:             q.stats.lost.Load(),
		Duplicates:       q.stats.duplicates.Load(),
		Dropped:          q.stats.dropped.Load(),
		ConsumersRemoved: q.stats.removed.Load(),
	}
}

// Enqueue adds a job.
func (q *Queue) Enqueue(ctx context.Context, kind, id string) error {
	err := q.rdb.XAdd(ctx, &redis.XAddArgs{
		Stream: Stream, MaxLen: 100_000, Approx: true,
		Values: []any{"kind", kind, "id", id, "at", time.Now().UnixMilli()},
	}).Err()
	if err != nil {
		return fmt.Errorf("queue %s %s: %w", kind, id, err)
	}
	return nil
}

// Run takes jobs as consumer name and hands each to handle, one at a time,
// until ctx is done. consumer should be unique among the running consumers
// (host and pid); placing at most once does not depend on it. A job is
// handed to handle once committed, and never retried: the handler records
// failures itself (its error is logged). Besides new jobs, Run takes over
// jobs other consumers left pending for Config.MinIdle. Once ctx is done Run
// commits no more jobs (those it has read stay pending, for another
// consumer to take over), lets the handler under way finish (its context is
// not cancelled: the job is this consumer's alone) and returns. It returns
// an error only if it cannot set up the consumer group.
func (q *Queue) Run(ctx context.Context, consumer string, handle func(context.Context, Job) error) error {
	if err := q.createGroup(ctx); err != nil {
		return err
	}
	c := &runner{q: q, name: consumer, token: consumer + "/" + rand.Text(), handle: handle}
	block := max(min(time.Second, q.cfg.ReclaimEvery), time.Millisecond)
	cleanupEvery := min(q.cfg.ConsumerIdle/2, time.Minute)
	nextReclaim := time.Now()
	nextCleanup := time.Now().Add(cleanupEvery)
	// First what this consumer left pending in an earlier life, then new jobs.
	start := "0"
	for ctx.Err() == nil {
		if now := time.Now(); !now.Before(nextReclaim) {
			c.reclaim(ctx)
			nextReclaim = time.Now().Add(q.cfg.ReclaimEvery)
			if q.cfg.ConsumerIdle > 0 && !now.Before(nextCleanup) {
				c.removeIdleConsumers(ctx)
				nextCleanup = time.Now().Add(cleanupEvery)
			}
		}
		res, err := q.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: Group, Consumer: consumer, Streams: []string{Stream, start}, Count: 32, Block: block,
		}).Result()
		if errors.Is(err, redis.Nil) {
			start = ">"
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if redis.HasErrorPrefix(err, "NOGROUP") {
				// The stream or the group was deleted: start afresh.
				q.log.Warn("dial queue group gone: creating it again")
				if err := q.createGroup(ctx); err == nil {
					start = "0"
					continue
				}
			}
			q.log.Warn("dial queue read", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		n := 0
		for _, s := range res {
			for _, m := range s.Messages {
				n++
				c.take(ctx, m)
			}
		}
		if start == "0" && n == 0 {
			start = ">"
		}
	}
	return nil
}

// createGroup creates the consumer group (and the stream) unless they exist.
// A new group starts at the beginning of the stream, so jobs queued before
// any consumer ran are taken.
func (q *Queue) createGroup(ctx context.Context) error {
	err := q.rdb.XGroupCreateMkStream(ctx, Stream, Group, "0").Err()
	if err != nil && !redis.HasErrorPrefix(err, "BUSYGROUP") {
		return fmt.Errorf("dial queue group: %w", err)
	}
	return nil
}

// runner is one Run: a consumer of the group.
type runner struct {
	q    *Queue
	name string
	// token names this Run in the placed markers it writes, so that a
	// retried commit recognizes its own marker, even if another live
	// process uses the same consumer name.
	token  string
	handle func(context.Context, Job) error
}

// reclaim takes over the jobs pending for MinIdle (whoever read them) and
// handles them.
func (c *runner) reclaim(ctx context.Context) {
	q := c.q
	start := "0-0"
	for range 100 { // bounded: new jobs must not wait behind a huge backlog
		msgs, next, err := q.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream: Stream, Group: Group, Consumer: c.name,
			MinIdle: q.cfg.MinIdle, Start: start, Count: 32,
		}).Result()
		if err != nil {
			if ctx.Err() == nil && !redis.HasErrorPrefix(err, "NOGROUP") {
				q.log.Warn("dial queue reclaim", "err", err)
			}
			return
		}
		q.stats.reclaimed.Add(uint64(len(msgs)))
		for _, m := range msgs {
			kind, _ := m.Values["kind"].(string)
			id, _ := m.Values["id"].(string)
			q.log.Info("dial job taken over from another consumer", "kind", kind, "id", id, "entry", m.ID)
			c.take(ctx, m)
		}
		if next == "0-0" || next == "" || ctx.Err() != nil {
			return
		}
		start = next
	}
}

// Commit outcomes, as commitScript returns them.
const (
	commitPlace     = 1 // committed by this run: place the job
	commitDuplicate = 2 // committed by another run already: dropped
	commitLost      = 3 // not pending for this consumer: another took it
	commitTooOld    = 4 // older than MaxAge: dropped
)

// commitScript decides whether a consumer places a job it read, and makes
// sure no other consumer will. In order: this run's own marker means an
// earlier commit of this run succeeded (its reply was lost); a job not
// pending for the consumer is another's; a job pending for it is
// acknowledged and deleted, then dropped if another run's marker shows it
// placed (it was delivered again) or if it is too old, else marked placed.
//
// KEYS: 1 stream, 2 placed marker. ARGV: 1 group, 2 consumer, 3 entry id,
// 4 run token, 5 max age ms, 6 marker ttl ms. Returns {outcome, age ms}.
var commitScript = redis.NewScript(`
local mark = redis.call('GET', KEYS[2])
if mark == ARGV[4] then return {1, 0} end
if #redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1, ARGV[2]) == 0 then
  return {3, 0}
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('XDEL', KEYS[1], ARGV[3])
if mark then return {2, 0} end
local t = redis.call('TIME')
local age = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(string.match(ARGV[3], '^%d+'))
if age > tonumber(ARGV[5]) then return {4, age} end
redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[6])
return {1, age}`)

// commit runs commitScript for the stream entry id, retrying a few times
// when Redis cannot be reached (a retry after a lost reply finds this run's
// marker and commits again).
func (c *runner) commit(ctx context.Context, entry string) (outcome int, age time.Duration, err error) {
	q := c.q
	ttl := q.cfg.MaxAge + time.Minute
	wait := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		var r []int64
		r, err = commitScript.Run(ctx, q.rdb, []string{Stream, markerPrefix + entry},
			Group, c.name, entry, c.token, q.cfg.MaxAge.Milliseconds(), ttl.Milliseconds()).Int64Slice()
		if err == nil && len(r) != 2 {
			err = fmt.Errorf("commit script returned %v", r)
		}
		if err == nil {
			return int(r[0]), time.Duration(r[1]) * time.Millisecond, nil
		}
		if attempt == 3 || ctx.Err() != nil {
			return 0, 0, fmt.Errorf("commit dial job %s: %w", entry, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait *= 2
	}
}

// take commits one job read from the stream and, if this consumer is to
// place it, hands it to the handler.
func (c *runner) take(ctx context.Context, m redis.XMessage) {
	q := c.q
	if ctx.Err() != nil {
		return // left pending: another consumer takes it over
	}
	kind, _ := m.Values["kind"].(string)
	id, _ := m.Values["id"].(string)
	if kind == "" || id == "" {
		// Unreadable, or deleted from the stream while pending.
		q.log.Warn("dial job unreadable: dropped", "entry", m.ID, "values", m.Values)
		q.stats.dropped.Add(1)
		q.rdb.XAck(context.WithoutCancel(ctx), Stream, Group, m.ID)
		q.rdb.XDel(context.WithoutCancel(ctx), Stream, m.ID)
		return
	}
	at, _ := strconv.ParseInt(fmt.Sprint(m.Values["at"]), 10, 64)
	j := Job{Kind: kind, ID: id, Queued: time.UnixMilli(at)}
	log := q.log.With("kind", kind, "id", id, "entry", m.ID)
	if q.beforeCommit != nil {
		q.beforeCommit(c.name, j)
	}
	outcome, age, err := c.commit(ctx, m.ID)
	if err != nil {
		if ctx.Err() == nil {
			log.Warn("dial job not committed: left for another consumer", "err", err)
		}
		return
	}
	switch outcome {
	case commitPlace:
		q.stats.placed.Add(1)
		// Committed, the job can no longer go to another consumer: let the
		// handler finish even if ctx is done meanwhile.
		if err := c.handle(context.WithoutCancel(ctx), j); err != nil {
			q.stats.failed.Add(1)
			log.Warn("dial job failed", "err", err)
		}
	case commitDuplicate:
		q.stats.duplicates.Add(1)
		log.Warn("dial job placed already: dropped")
	case commitLost:
		q.stats.lost.Add(1)
		log.Info("dial job taken over by another consumer before this one placed it: skipped")
	case commitTooOld:
		q.stats.dropped.Add(1)
		log.Warn("dial job too old: dropped", "age", age.Round(time.Second))
	default:
		log.Error("dial job commit: unknown outcome", "outcome", outcome)
	}
}

// removeIdleScript removes from the group the consumers other than ARGV[2]
// that have nothing pending and have been idle for more than ARGV[3] ms;
// one script, so a consumer cannot read a job between the check and its
// removal (which would lose the job). KEYS: 1 stream. ARGV: 1 group.
var removeIdleScript = redis.NewScript(`
local n = 0
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local f = {}
  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
  if f['name'] ~= ARGV[2] and tonumber(f['pending']) == 0 and tonumber(f['idle']) > tonumber(ARGV[3]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f['name'])
    n = n + 1
  end
end
return n`)

// removeIdleConsumers removes consumers (dead processes, mostly) that have
// nothing pending and have been idle for ConsumerIdle.
func (c *runner) removeIdleConsumers(ctx context.Context) {
	q := c.q
	n, err := removeIdleScript.Run(ctx, q.rdb, []string{Stream}, Group, c.name, q.cfg.ConsumerIdle.Milliseconds()).Int64()
	if err != nil {
		if ctx.Err() == nil {
			q.log.Warn("dial queue: remove idle consumers", "err", err)
		}
		return
	}
	if n > 0 {
		q.stats.removed.Add(uint64(n))
		q.log.Info("dial queue: idle consumers removed", "count", n)
	}
}
