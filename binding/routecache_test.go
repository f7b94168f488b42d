package binding_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/internal/redistest"
	"github.com/privnum/privnum/internal/store"
	"github.com/privnum/privnum/pool"
)

// startCache runs the route cache of e's service until the test ends and
// waits until it is served.
func startCache(t *testing.T, e env) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.svc.CacheRoutes(ctx, 1000, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("CacheRoutes = %v, want context.Canceled", err)
		}
	})
	waitStats(t, e, "the cache to go live", func(s binding.RouteCacheStats) bool { return s.Live })
}

// waitStats waits until the route cache's counters satisfy ok.
func waitStats(t *testing.T, e env, what string, ok func(binding.RouteCacheStats) bool) binding.RouteCacheStats {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := e.svc.RouteCacheStats()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %+v", what, s)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// bindCached binds party 1 and party 2 and waits until both routes are
// read ahead into the cache.
func bindCached(t *testing.T, e env) binding.Binding {
	t.Helper()
	b, err := e.svc.Create(context.Background(), binding.Request{A: party(1), B: party(2), TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	waitStats(t, e, "the routes read ahead", func(s binding.RouteCacheStats) bool { return s.Routes == 2 })
	return b
}

func resolveTo(t *testing.T, e env, x, caller string) binding.Route {
	t.Helper()
	r, err := e.svc.Resolve(context.Background(), x, caller)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRouteCacheServesNewBindingsFromMemory: a binding created after the
// cache went live (by another process: another Service) is read ahead, and
// its first calls are resolved from memory, as Redis would resolve them.
func TestRouteCacheServesNewBindingsFromMemory(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, time.Hour, xs(1)...)
	startCache(t, e)
	other := binding.New(e.rdb, e.pool, cn, binding.Config{Quarantine: time.Hour})
	b, err := other.Create(ctx, binding.Request{A: party(1), B: party(2), TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	before := waitStats(t, e, "both routes read ahead", func(s binding.RouteCacheStats) bool { return s.Prefetched >= 2 && s.Routes == 2 })
	// As E.164 and as trunks often deliver them, in national form.
	national := func(n string) string { return strings.TrimPrefix(n, "+86") }
	calls := []struct{ x, caller, target string }{
		{b.X, party(1), party(2)}, {b.X, party(2), party(1)},
		{national(b.X), national(party(1)), party(2)}, {national(b.X), national(party(2)), party(1)},
	}
	for _, c := range calls {
		r := resolveTo(t, e, c.x, c.caller)
		want, err := other.Resolve(ctx, c.x, c.caller) // no cache: Redis
		if err != nil {
			t.Fatal(err)
		}
		if r.Action != binding.Connect || r.Target != c.target || r != want {
			t.Errorf("%s calls %s from memory: %+v; from Redis: %+v", c.caller, c.x, r, want)
		}
	}
	after := e.svc.RouteCacheStats()
	if after.Hits-before.Hits != uint64(len(calls)) || after.Misses != before.Misses {
		t.Errorf("hits %d -> %d, misses %d -> %d: want every call resolved from memory", before.Hits, after.Hits, before.Misses, after.Misses)
	}
	// A stranger has no route: Redis answers (one miss), and nothing is
	// kept. A caller asking first without waiting, as call control does,
	// is still one miss.
	if _, ok := e.svc.CachedRoute(b.X, party(3)); ok {
		t.Error("CachedRoute knows a stranger's route")
	}
	if r := resolveTo(t, e, b.X, party(3)); r.Action != binding.Reject {
		t.Errorf("stranger: %+v", r)
	}
	if s := e.svc.RouteCacheStats(); s.Routes != 2 || s.Misses != after.Misses+1 {
		t.Errorf("after a stranger's call: %d routes, %d misses; want 2 routes and %d misses", s.Routes, s.Misses, after.Misses+1)
	}
	// Tracking stays up: its heartbeats and checks of the primaries pass.
	time.Sleep(3 * store.TrackInterval)
	if s := e.svc.RouteCacheStats(); s.Ups != 1 || !s.Live || s.Routes != 2 {
		t.Errorf("after %s: %+v, want tracking up once and the routes held", 3*store.TrackInterval, s)
	}
}

// TestRouteCacheFollowsChanges: whatever changes a route in Redis, the
// next call after the change was reported resolves as Redis would.
func TestRouteCacheFollowsChanges(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		change func(t *testing.T, e env, b binding.Binding)
		want   binding.Action
	}{
		{"released", func(t *testing.T, e env, b binding.Binding) {
			if _, err := e.svc.Release(ctx, b.ID); err != nil {
				t.Fatal(err)
			}
		}, binding.Reject},
		{"route rewritten by another client", func(t *testing.T, e env, b binding.Binding) {
			if err := e.rdb.HSet(ctx, store.RouteKey(b.X, b.A), "peer", party(9)).Err(); err != nil {
				t.Fatal(err)
			}
		}, binding.Connect},
		{"route deleted", func(t *testing.T, e env, b binding.Binding) {
			if err := e.rdb.Del(ctx, store.RouteKey(b.X, b.A)).Err(); err != nil {
				t.Fatal(err)
			}
		}, binding.Reject},
		{"route key expired", func(t *testing.T, e env, b binding.Binding) {
			if err := e.rdb.PExpire(ctx, store.RouteKey(b.X, b.A), 20*time.Millisecond).Err(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(40 * time.Millisecond)
		}, binding.Reject},
		{"everything flushed", func(t *testing.T, e env, b binding.Binding) {
			flushAll(t, e.rdb)
		}, binding.Reject},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, time.Hour, xs(1)...)
			startCache(t, e)
			b := bindCached(t, e)
			if r := resolveTo(t, e, b.X, b.A); r.Target != b.B {
				t.Fatalf("before the change: %+v", r)
			}
			before := e.svc.RouteCacheStats()
			tt.change(t, e, b)
			// The change is reported (a route key invalidated, or the
			// whole cache emptied) before the next call is resolved.
			waitStats(t, e, "the change reported", func(s binding.RouteCacheStats) bool {
				return s.Invalidations > before.Invalidations || s.Routes < before.Routes
			})
			r := resolveTo(t, e, b.X, b.A)
			want, err := binding.New(e.rdb, e.pool, cn, binding.Config{Quarantine: time.Hour}).Peek(ctx, b.X, b.A)
			if err != nil {
				t.Fatal(err)
			}
			if r.Action != tt.want || r.Target != want.Target || r.Reason != want.Reason {
				t.Errorf("after the change: %+v; Redis says %+v", r, want)
			}
		})
	}
}

// TestRouteCacheOffWithoutTracking: a tracking connection killed, or
// stalled, turns the cache off and empties it, so a change made meanwhile
// is never hidden by a route read before.
func TestRouteCacheOffWithoutTracking(t *testing.T) {
	ctx := context.Background()
	t.Run("killed together with a change", func(t *testing.T) {
		e := newEnv(t, time.Hour, xs(1)...)
		startCache(t, e)
		b := bindCached(t, e)
		resolveTo(t, e, b.X, b.A)
		before := e.svc.RouteCacheStats()
		// Kill the tracking connections and change the route in one
		// transaction on each primary: the change may never be reported.
		key := store.RouteKey(b.X, b.A)
		ids := map[string]string{}
		eachPrimary(t, e.rdb, func(c *redis.Client) { ids[c.Options().Addr] = trackingClientID(t, c) })
		eachPrimary(t, e.rdb, func(c *redis.Client) {
			id := ids[c.Options().Addr]
			if _, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Do(ctx, "CLIENT", "KILL", "ID", id)
				if ownsKey(ctx, c, key) {
					p.HSet(ctx, key, "peer", party(9))
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		})
		waitStats(t, e, "tracking back up", func(s binding.RouteCacheStats) bool { return s.Ups > before.Ups && s.Live })
		if r := resolveTo(t, e, b.X, b.A); r.Target != party(9) {
			t.Errorf("after tracking was lost: %+v, want the changed peer %s", r, party(9))
		}
	})
	t.Run("stalled", func(t *testing.T) {
		e := newEnv(t, time.Hour, xs(1)...)
		startCache(t, e)
		eachPrimary(t, e.rdb, func(c *redis.Client) {
			if err := c.Do(ctx, "CLIENT", "PAUSE", "2500", "ALL").Err(); err != nil {
				t.Fatal(err)
			}
		})
		paused := time.Now()
		waitStats(t, e, "the cache off", func(s binding.RouteCacheStats) bool { return !s.Live })
		if d := time.Since(paused); d > 5*store.TrackInterval+200*time.Millisecond { // a heartbeat is at most 1 s old
			t.Errorf("the cache stayed on %s after tracking stalled", d)
		}
		time.Sleep(time.Until(paused.Add(2600 * time.Millisecond))) // the pause ends before the next test
	})
}

// eachPrimary runs f on a client of every primary of rdb, one at a time.
func eachPrimary(t *testing.T, rdb redis.UniversalClient, f func(*redis.Client)) {
	t.Helper()
	switch c := rdb.(type) {
	case *redis.Client:
		f(c)
	case *redis.ClusterClient:
		var mu sync.Mutex
		var masters []*redis.Client
		if err := c.ForEachMaster(context.Background(), func(_ context.Context, m *redis.Client) error {
			mu.Lock()
			defer mu.Unlock()
			masters = append(masters, m)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		for _, m := range masters { // on the test's goroutine, which may t.Fatal
			f(m)
		}
	default:
		t.Fatalf("client %T", rdb)
	}
}

// ownsKey reports whether the primary c serves key (always, outside a
// cluster).
func ownsKey(ctx context.Context, c *redis.Client, key string) bool {
	err := c.Do(ctx, "EXISTS", key).Err()
	return err == nil || !strings.HasPrefix(err.Error(), "MOVED")
}

// trackingClientID returns the id of the route cache's tracking
// connection on the primary c.
func trackingClientID(t *testing.T, c *redis.Client) string {
	t.Helper()
	list, err := c.ClientList(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(list, "\n") {
		if !strings.Contains(l, " name=privnum-tracking ") {
			continue
		}
		for _, f := range strings.Fields(l) {
			if id, ok := strings.CutPrefix(f, "id="); ok {
				return id
			}
		}
	}
	t.Fatalf("no tracking connection on %s:\n%s", c.Options().Addr, list)
	return ""
}

func flushAll(t *testing.T, rdb redis.UniversalClient) {
	t.Helper()
	eachPrimary(t, rdb, func(c *redis.Client) {
		if err := c.FlushAll(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestRouteCacheSentinelFailover: behind Sentinel the cache tracks the
// master, and after a failover a change made on the new master reaches
// the next call.
func TestRouteCacheSentinelFailover(t *testing.T) {
	if redistest.Clustered() {
		t.Skip("a Sentinel test: runs once, with the single-server tests")
	}
	ctx := context.Background()
	s := redistest.StartSentinel(t)
	rdb := redistest.ClientFor(t, s.URL)
	p := pool.New(rdb, cn)
	if _, err := p.Add(ctx, xs(1)); err != nil {
		t.Fatal(err)
	}
	e := env{rdb: rdb, pool: p, svc: binding.New(rdb, p, cn, binding.Config{Quarantine: time.Hour})}
	startCache(t, e)
	b := bindCached(t, e)
	if r := resolveTo(t, e, b.X, b.A); r.Target != b.B {
		t.Fatalf("before the failover: %+v", r)
	}
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.SentinelAddr.Addr})
	defer sc.Close()
	if err := sc.Failover(ctx, redistest.SentinelMaster).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		addr, err := sc.GetMasterAddrByName(ctx, redistest.SentinelMaster).Result()
		if err == nil && len(addr) == 2 && strings.HasSuffix(s.Replica.Addr, ":"+addr[1]) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failover: master %v, %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Once the client sends its commands to the new master, another
	// process releases the binding there: the next calls must not be
	// routed by the route read from the old master (which answers, and
	// reports nothing, until Sentinel demotes it seconds later).
	newMaster := redis.NewClient(&redis.Options{Addr: s.Replica.Addr})
	defer newMaster.Close()
	runID := func(c *redis.Client) string {
		info, _ := c.Info(ctx, "server").Result()
		for _, l := range strings.Split(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "run_id:"); ok {
				return v
			}
		}
		return ""
	}
	for want := runID(newMaster); runID(rdb.(*redis.Client)) != want; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the client never moved to the new master")
		}
	}
	if _, err := binding.New(newMaster, pool.New(newMaster, cn), cn, binding.Config{Quarantine: time.Hour}).Release(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	released := time.Now()
	for {
		r := resolveTo(t, e, b.X, b.A)
		if r.Action == binding.Reject {
			break
		}
		if time.Since(released) > time.Second {
			t.Fatalf("%s after the release on the new master, calls still route by the old route: %+v (%+v)", time.Since(released), r, e.svc.RouteCacheStats())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRouteCacheRefusesAClientItCannotTrack: a Redis client kind the
// cache cannot track is an error at once, and every resolve reads Redis.
func TestRouteCacheRefusesAClientItCannotTrack(t *testing.T) {
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1"}})
	defer ring.Close()
	svc := binding.New(ring, pool.New(ring, cn), cn, binding.Config{})
	done := make(chan error, 1)
	go func() { done <- svc.CacheRoutes(context.Background(), 10, nil) }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("CacheRoutes on a Ring: no error")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("CacheRoutes on a Ring did not return")
	}
	if st := svc.RouteCacheStats(); st.Live {
		t.Errorf("stats %+v: live without tracking", st)
	}
}
