// Package lease gives one process of several the right to act, through a
// key in Redis that the holder renews: privnum serve uses it so that, of an
// active process and its standby for the same Asterisk application, only
// one holds the ARI application at a time, and the standby takes over
// within a lease time when the active one dies.
package lease

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrLost means another process holds the lease now: the holder must stop
// acting at once.
var ErrLost = errors.New("lease lost to another holder")

// Lease is one process's claim on a named lease.
type Lease struct {
	rdb    redis.UniversalClient
	key    string
	holder string
	ttl    time.Duration
}

// New returns holder's claim on the lease stored at key. A lease not renewed
// for ttl is free for another holder to take.
func New(rdb redis.UniversalClient, key, holder string, ttl time.Duration) *Lease {
	if ttl <= 0 {
		ttl = 2 * time.Second
	}
	return &Lease{rdb: rdb, key: key, holder: holder, ttl: ttl}
}

// Key returns the Redis key of the lease.
func (l *Lease) Key() string { return l.key }

// renewScript extends the lease if this holder has it, and takes it if
// nobody does. It returns 1 when the caller holds the lease afterwards.
//
// KEYS: 1 lease. ARGV: 1 holder, 2 ttl ms.
var renewScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
`)

// releaseScript deletes the lease if this holder has it.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// TryAcquire takes the lease if it is free (or already this holder's) and
// reports whether this holder has it now.
func (l *Lease) TryAcquire(ctx context.Context) (bool, error) {
	n, err := renewScript.Run(ctx, l.rdb, []string{l.key}, l.holder, l.ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("lease %s: %w", l.key, err)
	}
	return n == 1, nil
}

// Acquire waits until this holder has the lease or ctx is done. It checks
// eight times per lease time, so a dead holder is replaced within about
// 1.125 lease times. Redis errors are retried. waitedFor names the holder it
// waited out, "" if the lease was free at once.
func (l *Lease) Acquire(ctx context.Context) (waitedFor string, err error) {
	every := l.ttl / 8
	for {
		ok, err := l.TryAcquire(ctx)
		if ok {
			return waitedFor, nil
		}
		if err == nil {
			if h, herr := l.Holder(ctx); herr == nil && h != "" {
				waitedFor = h
			}
		}
		select {
		case <-ctx.Done():
			return waitedFor, ctx.Err()
		case <-time.After(every):
		}
	}
}

// Hold renews the lease three times per lease time until ctx is done (nil)
// or another holder has it (ErrLost). While Redis cannot be reached the
// lease is kept (no other process can take it either); once it answers
// again the lease is renewed, or taken back if it expired meanwhile and is
// still free.
func (l *Lease) Hold(ctx context.Context) error {
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, l.ttl/3)
		ok, err := l.TryAcquire(rctx)
		cancel()
		if err == nil && !ok {
			return ErrLost
		}
	}
}

// Release gives the lease up if this holder has it, so a standby can take
// it at once instead of after the lease time.
func (l *Lease) Release(ctx context.Context) error {
	if err := releaseScript.Run(ctx, l.rdb, []string{l.key}, l.holder).Err(); err != nil {
		return fmt.Errorf("release lease %s: %w", l.key, err)
	}
	return nil
}

// Holder returns who holds the lease, "" if nobody.
func (l *Lease) Holder(ctx context.Context) (string, error) {
	h, err := l.rdb.Get(ctx, l.key).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("lease %s: %w", l.key, err)
	}
	return h, nil
}
