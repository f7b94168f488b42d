package binding

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/privnum/privnum/internal/store"
)

// The route cache.
//
// A call's route (an AXB caller's route hash) is the one thing call setup
// must read from Redis, and the round trip is most of what privnum adds to
// a call's setup. With CacheRoutes running, the Service keeps routes in
// memory, coherent with Redis through client tracking in broadcasting mode
// (store.Track): every change to a number's keys, by any process, a
// script, an expiry or FLUSHALL, is reported within milliseconds and drops
// (and fetches again) the route it touches. Routes a binding creates or
// changes are fetched ahead of their first call, so even the first call of
// a new binding is resolved from memory.
//
// Coherence rules:
//   - routes are served from memory only while tracking is up on every
//     primary and the last heartbeat came back within cacheStale: a
//     stalled or lost tracking connection turns the cache off and empties
//     it, and calls go to Redis;
//   - a route read from Redis is kept only if no change to its key was
//     reported while the read was in flight, and tracking did not go down
//     meanwhile;
//   - a route is kept no longer than its key lives (its TTL).
//
// A change reaches the cache a moment after Redis made it (the report's
// trip, at most cacheStale when tracking stalls). A call in that moment
// routes as it would have a moment earlier: to the party the binding
// connected before it ended (the pair is quarantined, so never to a new
// one).

// cacheStale is how old the last answered heartbeat of the tracking
// connections may be for the cache to be served.
const cacheStale = 4 * store.TrackInterval

// routeCache holds routes by route key, least recently used first out.
type routeCache struct {
	max int
	log *slog.Logger

	mu      sync.Mutex
	live    bool
	failing bool      // tracking failed since it was last up (logged once)
	epoch   uint64    // changes on every Up and Down
	beat    time.Time // the last heartbeat every primary answered (its send time)
	entries map[string]*list.Element
	lru     list.List // of *cachedRoute, most recently used first
	pending map[string]*fetching

	// prefetch takes route keys to read ahead of their first call.
	prefetch chan string

	hits, misses, prefetched, invalidations, ups atomic.Uint64
}

type cachedRoute struct {
	key    string
	h      routeFields
	expire time.Time // zero: no TTL
}

// fetching is a read of a key in flight: stale when a change to the key
// was reported meanwhile.
type fetching struct {
	n     int
	stale bool
}

// cacheTicket is what a read in flight needs to store its answer.
type cacheTicket struct {
	epoch uint64
	f     *fetching
}

func newRouteCache(max int, log *slog.Logger) *routeCache {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &routeCache{max: max, log: log, entries: map[string]*list.Element{}, pending: map[string]*fetching{},
		prefetch: make(chan string, 4096)}
}

// usable reports whether the cache may be served at now.
func (c *routeCache) usable(now time.Time) bool {
	return c.live && now.Sub(c.beat) <= cacheStale
}

// get returns key's route if the cache holds it and may serve it. It
// counts the hits; a miss is counted where the route is then read from
// Redis (a call may look twice before it does).
func (c *routeCache) get(key string, now time.Time) (routeFields, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.usable(now) {
		return routeFields{}, false
	}
	el := c.entries[key]
	if el == nil {
		return routeFields{}, false
	}
	r := el.Value.(*cachedRoute)
	if !r.expire.IsZero() && !now.Before(r.expire) {
		c.remove(el)
		return routeFields{}, false
	}
	c.lru.MoveToFront(el)
	c.hits.Add(1)
	return r.h, true
}

// begin registers a read of key about to be sent; ok is false when its
// answer could not be kept anyway.
func (c *routeCache) begin(key string, now time.Time) (cacheTicket, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.usable(now) {
		return cacheTicket{}, false
	}
	f := c.pending[key]
	if f == nil || f.stale {
		// A read begun after a change has a record of its own: the
		// change does not make it stale (the prefetch the change asked
		// for is such a read).
		f = &fetching{}
		c.pending[key] = f
	}
	f.n++
	return cacheTicket{epoch: c.epoch, f: f}, true
}

// finish ends a read begun with t and keeps its answer h, which lives
// until expire (zero: no TTL), unless it went stale. keep false drops it
// (no route, or a route the cache does not serve).
func (c *routeCache) finish(key string, t cacheTicket, h routeFields, expire time.Time, keep bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t.f.n--
	if t.f.n == 0 && c.pending[key] == t.f {
		delete(c.pending, key)
	}
	if !keep || t.f.stale || t.epoch != c.epoch || !c.live {
		return
	}
	if el := c.entries[key]; el != nil {
		el.Value.(*cachedRoute).h, el.Value.(*cachedRoute).expire = h, expire
		c.lru.MoveToFront(el)
		return
	}
	c.entries[key] = c.lru.PushFront(&cachedRoute{key: key, h: h, expire: expire})
	for c.lru.Len() > c.max {
		c.remove(c.lru.Back())
	}
}

func (c *routeCache) remove(el *list.Element) {
	delete(c.entries, el.Value.(*cachedRoute).key)
	c.lru.Remove(el)
}

// drop empties the cache and makes every read in flight stale.
func (c *routeCache) drop() {
	clear(c.entries)
	c.lru.Init()
	for _, f := range c.pending {
		f.stale = true
	}
}

// Up is store.TrackHandler's: tracking is up, the cache may fill.
func (c *routeCache) Up() {
	c.mu.Lock()
	c.drop()
	c.epoch++
	c.live, c.beat = true, time.Now()
	c.ups.Add(1)
	c.failing = false
	c.mu.Unlock()
	// Logged without the lock: call control reads the cache on the
	// goroutine that delivers ARI events.
	c.log.Info("route cache on: Redis reports every route change", "routes", c.max)
}

// Down is store.TrackHandler's: changes may go unreported, so nothing is
// served from memory any more.
func (c *routeCache) Down(err error) {
	c.mu.Lock()
	c.drop()
	c.epoch++
	first := !c.failing
	c.live, c.failing = false, true
	c.mu.Unlock()
	if first && !errors.Is(err, context.Canceled) {
		c.log.Warn("route cache off until Redis client tracking is back: calls read their routes from Redis", "err", err)
	}
}

// Beat is store.TrackHandler's.
func (c *routeCache) Beat(sent time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.beat = sent
}

// Invalidate is store.TrackHandler's: the keys changed. Route keys are
// dropped and fetched again ahead of their next call.
func (c *routeCache) Invalidate(keys []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if keys == nil {
		c.drop()
		return
	}
	for _, k := range keys {
		if !isRouteKey(k) {
			continue
		}
		c.invalidations.Add(1)
		if el := c.entries[k]; el != nil {
			c.remove(el)
		}
		if f := c.pending[k]; f != nil {
			f.stale = true
		}
		select {
		case c.prefetch <- k:
		default: // a burst: the route is read at its call instead
		}
	}
}

// isRouteKey reports whether k is a route key (store.RouteKey).
func isRouteKey(k string) bool {
	_, rest, ok := strings.Cut(k, "}:")
	return ok && strings.HasPrefix(rest, "r:")
}

// routeKeyNumbers returns the virtual number and the party of a route key.
func routeKeyNumbers(k string) (x, p string) {
	x, rest, _ := strings.Cut(strings.TrimPrefix(k, store.NumberKeysPrefix), "}:r:")
	return x, rest
}

// RouteCacheStats are the route cache's counters.
type RouteCacheStats struct {
	// Live: tracking is up and the cache is served.
	Live bool
	// Routes held.
	Routes int
	// Hits and Misses of calls' resolves while the cache was served.
	Hits, Misses uint64
	// Prefetched routes read ahead of their first call; Invalidations
	// of route keys reported by Redis.
	Prefetched, Invalidations uint64
	// Ups counts how often tracking came up (more than once: it was lost
	// and the cache emptied).
	Ups uint64
}

// RouteCacheStats returns the route cache's counters (zero without
// CacheRoutes).
func (s *Service) RouteCacheStats() RouteCacheStats {
	c := s.routes.Load()
	if c == nil {
		return RouteCacheStats{}
	}
	c.mu.Lock()
	st := RouteCacheStats{Live: c.usable(time.Now()), Routes: c.lru.Len()}
	c.mu.Unlock()
	st.Hits, st.Misses, st.Prefetched, st.Invalidations, st.Ups = c.hits.Load(), c.misses.Load(), c.prefetched.Load(), c.invalidations.Load(), c.ups.Load()
	return st
}

// ErrRouteCacheRunning is returned by CacheRoutes when it already runs.
var ErrRouteCacheRunning = errors.New("binding: the route cache already runs")

// CacheRoutes keeps up to size routes in memory for Resolve, coherent
// with Redis (see the route cache above), until ctx ends, and logs to log
// (nil: nowhere) when the cache turns on and off. It returns ctx's error,
// or at once an error when the Redis client cannot be tracked or size is
// not positive. Without it, every resolve reads Redis.
func (s *Service) CacheRoutes(ctx context.Context, size int, log *slog.Logger) error {
	if size <= 0 {
		return fmt.Errorf("binding: route cache size %d: want at least 1", size)
	}
	c := newRouteCache(size, log)
	if !s.routes.CompareAndSwap(nil, c) {
		return ErrRouteCacheRunning
	}
	defer s.routes.Store(nil)
	var wg sync.WaitGroup
	defer wg.Wait() // after cancel: deferred calls run last first
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case k := <-c.prefetch:
					// Only routes between valid numbers are kept, and
					// the parser learns them, so that their call is
					// resolved without parsing either number.
					x, p := routeKeyNumbers(k)
					if s.modal.has(x) || !s.parser.Remember(x) || !s.parser.Remember(p) {
						continue // a modal number's calls take the resolve script; an invalid one is no route
					}
					if _, ok, err := s.readRoute(ctx, c, k, false); err == nil && ok {
						c.prefetched.Add(1)
					}
				}
			}
		}()
	}
	return store.Track(ctx, s.rdb, []string{store.NumberKeysPrefix}, c)
}

// readRoute reads a route hash from Redis, and keeps it in c (when not
// nil) if the cache may serve it: an AXB route that needs no last caller.
// call says a call asked (a miss of the cache), not the prefetch.
func (s *Service) readRoute(ctx context.Context, c *routeCache, key string, call bool) (routeFields, bool, error) {
	var h routeFields
	start := time.Now()
	var t cacheTicket
	tracked := false
	if c != nil {
		t, tracked = c.begin(key, start)
	}
	if !tracked {
		m, err := s.rdb.HGetAll(ctx, key).Result()
		if err != nil {
			return h, false, err
		}
		h.setAll(m)
		return h, len(m) > 0, nil
	}
	if call {
		c.misses.Add(1)
	}
	var all *redis.MapStringStringCmd
	var ttl *redis.DurationCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		all, ttl = p.HGetAll(ctx, key), p.PTTL(ctx, key)
		return nil
	})
	m := all.Val()
	h.setAll(m)
	var expire time.Time // the key's TTL counted from before the read: never late
	if d := ttl.Val(); d > 0 {
		expire = start.Add(d)
	}
	c.finish(key, t, h, expire, err == nil && len(m) > 0 && h.last != "1" && ttl.Val() != -2)
	if err != nil {
		return routeFields{}, false, err
	}
	return h, len(m) > 0, nil
}
