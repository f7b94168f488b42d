package binding

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/privnum/privnum/internal/store"
	"github.com/privnum/privnum/pool"
)

// candidates caches the pool snapshot (reloaded when the pool's version
// counter moves) and the last load seen on each number.
type candidates struct {
	mu   sync.Mutex
	snap pool.Snapshot
	ok   bool
	load map[string]int
}

func (c *candidates) setLoad(x string, n int) {
	c.mu.Lock()
	c.load[x] = n
	c.mu.Unlock()
}

// freeCandidates returns, in the order to try them, the active pool numbers
// that neither party holds according to the party index: numbers tagged with
// the requested area first, then the least loaded, then pool order.
func (s *Service) freeCandidates(ctx context.Context, req Request, now time.Time) ([]string, error) {
	var ver *redis.StringCmd
	held := make([]*redis.StringSliceCmd, 2)
	_, err := s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		ver = pipe.Get(ctx, store.PoolVersionKey)
		for i, p := range []string{req.A, req.B} {
			held[i] = pipe.ZRangeByScore(ctx, store.PartyKey(p), &redis.ZRangeBy{Min: "(" + ms(now), Max: "+inf"})
		}
		return nil
	})
	if err != nil && err != redis.Nil {
		return nil, fmt.Errorf("read party index: %w", err)
	}
	v, _ := strconv.ParseInt(ver.Val(), 10, 64)
	snap, err := s.snapshot(ctx, v)
	if err != nil {
		return nil, err
	}
	taken := map[string]bool{}
	for _, h := range held {
		for _, x := range h.Val() {
			taken[x] = true
		}
	}
	type cand struct {
		x    string
		area bool
		load int
		idx  int
	}
	s.cache.mu.Lock()
	cs := make([]cand, 0, len(snap.Numbers))
	for i, e := range snap.Numbers {
		if taken[e.Number] || e.Number == req.A || e.Number == req.B {
			continue
		}
		cs = append(cs, cand{x: e.Number, area: req.Area != "" && e.Area == req.Area, load: s.cache.load[e.Number], idx: i})
	}
	s.cache.mu.Unlock()
	sort.Slice(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
		if a.area != b.area {
			return a.area
		}
		if a.load != b.load {
			return a.load < b.load
		}
		return a.idx < b.idx
	})
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.x
	}
	return out, nil
}

// snapshot returns the cached pool, reloading it if version v is newer.
func (s *Service) snapshot(ctx context.Context, v int64) (pool.Snapshot, error) {
	s.cache.mu.Lock()
	if s.cache.ok && s.cache.snap.Version == v {
		snap := s.cache.snap
		s.cache.mu.Unlock()
		return snap, nil
	}
	s.cache.mu.Unlock()
	snap, err := s.pool.Snapshot(ctx)
	if err != nil {
		return pool.Snapshot{}, err
	}
	s.cache.mu.Lock()
	if !s.cache.ok || snap.Version >= s.cache.snap.Version {
		s.cache.snap, s.cache.ok = snap, true
	}
	s.cache.mu.Unlock()
	return snap, nil
}
