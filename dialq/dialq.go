// Package dialq carries requests to place calls (callbacks, verification
// flash calls) from the processes that accept them (the HTTP API, the CLI)
// to the one that holds the ARI connection (privnum serve), through a Redis
// stream with a consumer group, so a request survives a restart of either.
package dialq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Stream and Group name the Redis stream and its consumer group.
const (
	Stream = "pn:dialq"
	Group  = "privnum-serve"
)

// Job asks for one call. It carries ids only: the numbers stay in the
// records the ids name.
type Job struct {
	// Kind says what to place: "callback" or "flash".
	Kind string
	// ID names the callback or verification.
	ID string
	// Queued is when the job was enqueued.
	Queued time.Time
}

// Queue is the dial queue.
type Queue struct {
	rdb    redis.UniversalClient
	maxAge time.Duration
	log    *slog.Logger
}

// New returns a Queue on rdb. Jobs older than maxAge when they are taken are
// dropped (a caller who asked minutes ago must not be rung out of the blue);
// 0 means 2 minutes.
func New(rdb redis.UniversalClient, maxAge time.Duration, log *slog.Logger) *Queue {
	if maxAge <= 0 {
		maxAge = 2 * time.Minute
	}
	if log == nil {
		log = slog.Default()
	}
	return &Queue{rdb: rdb, maxAge: maxAge, log: log}
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

// Run takes jobs as consumer name and hands each to handle until ctx is
// done. A job is acknowledged once handled, whatever the outcome (the
// handler records failures itself); jobs a crashed consumer left pending
// are taken over after maxAge is checked.
func (q *Queue) Run(ctx context.Context, consumer string, handle func(context.Context, Job) error) error {
	err := q.rdb.XGroupCreateMkStream(ctx, Stream, Group, "0").Err()
	if err != nil && !isBusyGroup(err) {
		return fmt.Errorf("dial queue group: %w", err)
	}
	// First what this consumer left unacknowledged, then new jobs.
	start := "0"
	for ctx.Err() == nil {
		res, err := q.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: Group, Consumer: consumer, Streams: []string{Stream, start}, Count: 32, Block: time.Second,
		}).Result()
		if errors.Is(err, redis.Nil) {
			if start == "0" {
				start = ">"
			}
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
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
				q.handle(ctx, m, handle)
			}
		}
		if start == "0" && n == 0 {
			start = ">"
		}
	}
	return nil
}

func (q *Queue) handle(ctx context.Context, m redis.XMessage, handle func(context.Context, Job) error) {
	kind, _ := m.Values["kind"].(string)
	id, _ := m.Values["id"].(string)
	at, _ := strconv.ParseInt(fmt.Sprint(m.Values["at"]), 10, 64)
	j := Job{Kind: kind, ID: id, Queued: time.UnixMilli(at)}
	if age := time.Since(j.Queued); age > q.maxAge {
		q.log.Warn("dial job too old: dropped", "kind", kind, "id", id, "age", age.Round(time.Second))
	} else if err := handle(ctx, j); err != nil {
		q.log.Warn("dial job failed", "kind", kind, "id", id, "err", err)
	}
	if err := q.rdb.XAck(context.WithoutCancel(ctx), Stream, Group, m.ID).Err(); err != nil {
		q.log.Warn("dial queue ack", "err", err)
	}
	q.rdb.XDel(context.WithoutCancel(ctx), Stream, m.ID)
}

func isBusyGroup(err error) bool {
	return err != nil && len(err.Error()) >= 9 && err.Error()[:9] == "BUSYGROUP"
}
