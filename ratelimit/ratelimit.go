// Package ratelimit bounds how often something may happen per key (a
// sender, an API key, an address), with a token bucket kept in Redis so
// that every process of a fleet counts against the same limit.
package ratelimit

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Limiter allows N events per window for each key, in bursts of up to N:
// a token bucket of N tokens refilled at N per window.
type Limiter struct {
	rdb    redis.UniversalClient
	prefix string
	n      int
	window time.Duration
}

// New returns a Limiter of n events per window for each key, stored under
// keys that start with prefix (e.g. "pn:rl:sms"). n ≤ 0 allows everything.
func New(rdb redis.UniversalClient, prefix string, n int, window time.Duration) *Limiter {
	if window <= 0 {
		window = time.Minute
	}
	return &Limiter{rdb: rdb, prefix: prefix, n: n, window: window}
}

// Key returns the Redis key of key's bucket: one hash slot per key.
func (l *Limiter) Key(key string) string { return l.prefix + ":{" + key + "}" }

// bucketScript takes one token from a bucket of ARGV[1] tokens refilled at
// ARGV[1] per ARGV[2] ms, on the server's clock. It returns 1 and the
// tokens left, or 0 and the ms until a token is back.
var bucketScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cap = tonumber(ARGV[1])
local win = tonumber(ARGV[2])
local h = redis.call('HMGET', KEYS[1], 'tok', 'ts')
local tok = tonumber(h[1]) or cap
local ts = tonumber(h[2]) or now
tok = math.min(cap, tok + (now - ts) * cap / win)
local ok = 0
if tok >= 1 then
  tok = tok - 1
  ok = 1
end
redis.call('HSET', KEYS[1], 'tok', tostring(tok), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], win + 1000)
if ok == 1 then return {1, math.floor(tok)} end
return {0, math.ceil((1 - tok) * win / cap)}
`)

// Allow takes one event for key and reports whether it is within the limit.
func (l *Limiter) Allow(ctx context.Context, key string) (bool, error) {
	ok, _, err := l.Take(ctx, key)
	return ok, err
}

// Take takes one event for key: ok reports whether it is within the limit,
// and retry, when it is not, how long until the next one would be.
func (l *Limiter) Take(ctx context.Context, key string) (ok bool, retry time.Duration, err error) {
	if l.n <= 0 {
		return true, 0, nil
	}
	r, err := bucketScript.Run(ctx, l.rdb, []string{l.Key(key)}, l.n, l.window.Milliseconds()).Int64Slice()
	if err != nil {
		return false, 0, fmt.Errorf("rate limit %s: %w", l.prefix, err)
	}
	if r[0] == 1 {
		return true, 0, nil
	}
	return false, time.Duration(r[1]) * time.Millisecond, nil
}
