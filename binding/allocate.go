package binding

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/privnum/privnum/internal/store"
	"github.com/privnum/privnum/pool"
)

// candidates caches the pool snapshot (reloaded when the pool's version
// counter moves) and the last load seen on each number. loads and pos
// mirror load in snapshot order so that ranking the pool is a scan over a
// slice rather than a map lookup per number.
type candidates struct {
	mu    sync.Mutex
	snap  pool.Snapshot
	ok    bool
	load  map[string]int
	loads []int          // loads[i] = load[snap.Numbers[i].Number]
	pos   map[string]int // number → index in snap.Numbers
	// checked is when snap was last found current.
	checked time.Time
	// held is what this process saw each party take: party → number →
	// end of quarantine (ms). It may overstate, never matters for safety.
	held map[string]map[string]int64
}

// speculateFor is how long after the pool was last found current the
// allocator tries a number before reading the party index.
const speculateFor = 2 * time.Second

// heldMax bounds candidates.held; past it the memory starts over.
const heldMax = 1 << 17

// remember notes that party p holds x until untilMs; c.mu must be held.
func (c *candidates) remember(p, x string, untilMs int64) {
	if c.held == nil || len(c.held) >= heldMax {
		c.held = map[string]map[string]int64{}
	}
	m := c.held[p]
	if m == nil {
		m = map[string]int64{}
		c.held[p] = m
	}
	if untilMs > m[x] {
		m[x] = untilMs
	}
}

// skipFor lists the snapshot indexes of the numbers parties are known to
// hold (or are); c.mu must be held.
func (c *candidates) skipFor(nowMs int64, parties ...string) []int {
	var skip []int
	for _, p := range parties {
		if i, ok := c.pos[p]; ok {
			skip = append(skip, i)
		}
		for x, until := range c.held[p] {
			if until <= nowMs {
				delete(c.held[p], x)
				continue
			}
			if i, ok := c.pos[x]; ok {
				skip = append(skip, i)
			}
		}
	}
	return skip
}

// speculate picks the number to try first from what this process already
// knows (the cached pool, the numbers it saw the parties take), saving the
// round trip that reads the party index; "" when the pool cache is too old
// to guess from. A wrong guess costs one script run: the script decides.
func (s *Service) speculate(req Request, now time.Time) string {
	c := &s.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ok || now.Sub(c.checked) > speculateFor {
		return ""
	}
	skip := c.skipFor(now.UnixMilli(), req.A, req.B)
	best := cand{idx: -1}
	for i, e := range c.snap.Numbers {
		if slices.Contains(skip, i) {
			continue
		}
		cd := cand{x: e.Number, area: req.Area != "" && e.Area == req.Area, load: c.loads[i], idx: i}
		if best.idx < 0 || cd.before(best) {
			best = cd
		}
	}
	return best.x
}

func (c *candidates) setLoad(x string, n int) {
	c.mu.Lock()
	c.load[x] = n
	if i, ok := c.pos[x]; ok {
		c.loads[i] = n
	}
	c.mu.Unlock()
}

// install makes snap the cached snapshot; c.mu must be held.
func (c *candidates) install(snap pool.Snapshot) {
	c.snap, c.ok, c.checked = snap, true, time.Now()
	c.loads = make([]int, len(snap.Numbers))
	c.pos = make(map[string]int, len(snap.Numbers))
	for i, e := range snap.Numbers {
		c.pos[e.Number] = i
		c.loads[i] = c.load[e.Number]
	}
}

type cand struct {
	x    string
	area bool
	load int
	idx  int
}

// before is the allocator's preference: numbers tagged with the requested
// area first, then the least loaded, then pool order.
func (a cand) before(b cand) bool {
	if a.area != b.area {
		return a.area
	}
	if a.load != b.load {
		return a.load < b.load
	}
	return a.idx < b.idx
}

// freeCandidates reads the parties' index and returns the best active pool
// number that neither party holds according to it ("" if none), and a
// function listing the other free numbers in order of preference, for the
// rare case where the index was stale and the best one turns out busy.
// Finding the best number is one pass over the cached pool with no
// allocation; the full ranking is only built when needed.
func (s *Service) freeCandidates(ctx context.Context, req Request, now time.Time) (string, func() []string, error) {
	var ver *redis.StringCmd
	held := make([]*redis.StringSliceCmd, 2)
	err := s.batch(ctx, func(pipe redis.Cmdable) []redis.Cmder {
		ver = pipe.Get(ctx, store.PoolVersionKey)
		for i, p := range []string{req.A, req.B} {
			held[i] = pipe.ZRangeByScore(ctx, store.PartyKey(p), &redis.ZRangeBy{Min: "(" + ms(now), Max: "+inf"})
		}
		return []redis.Cmder{ver, held[0], held[1]}
	})
	if err != nil {
		return "", nil, fmt.Errorf("read party index: %w", err)
	}
	v, _ := strconv.ParseInt(ver.Val(), 10, 64)
	if err := s.loadSnapshot(ctx, v); err != nil {
		return "", nil, err
	}
	s.cache.mu.Lock()
	snap, loads := s.cache.snap, s.cache.loads
	// The numbers to skip, as snapshot indexes: a party holds few numbers.
	var skip []int
	for _, x := range append(append([]string{req.A, req.B}, held[0].Val()...), held[1].Val()...) {
		if i, ok := s.cache.pos[x]; ok {
			skip = append(skip, i)
		}
	}
	for i, p := range []string{req.A, req.B} {
		for _, x := range held[i].Val() {
			s.cache.remember(p, x, now.Add(time.Minute).UnixMilli())
		}
	}
	skipped := func(i int) bool {
		for _, j := range skip {
			if i == j {
				return true
			}
		}
		return false
	}
	best := cand{idx: -1}
	for i, e := range snap.Numbers {
		if skipped(i) {
			continue
		}
		c := cand{x: e.Number, area: req.Area != "" && e.Area == req.Area, load: loads[i], idx: i}
		if best.idx < 0 || c.before(best) {
			best = c
		}
	}
	s.cache.mu.Unlock()
	rest := func() []string {
		s.cache.mu.Lock()
		cs := make([]cand, 0, len(snap.Numbers))
		for i, e := range snap.Numbers {
			if i == best.idx || skipped(i) {
				continue
			}
			cs = append(cs, cand{x: e.Number, area: req.Area != "" && e.Area == req.Area, load: s.cache.load[e.Number], idx: i})
		}
		s.cache.mu.Unlock()
		sort.Slice(cs, func(i, j int) bool { return cs[i].before(cs[j]) })
		out := make([]string, len(cs))
		for i, c := range cs {
			out[i] = c.x
		}
		return out
	}
	return best.x, rest, nil
}

// loadSnapshot makes sure the cached pool is at version v or newer.
func (s *Service) loadSnapshot(ctx context.Context, v int64) error {
	s.cache.mu.Lock()
	fresh := s.cache.ok && s.cache.snap.Version == v
	if fresh {
		s.cache.checked = time.Now()
	}
	s.cache.mu.Unlock()
	if fresh {
		return nil
	}
	snap, err := s.pool.Snapshot(ctx)
	if err != nil {
		return err
	}
	s.cache.mu.Lock()
	if !s.cache.ok || snap.Version >= s.cache.snap.Version || snap.Version == v {
		s.cache.install(snap)
	}
	s.cache.mu.Unlock()
	return nil
}
