package binding

import (
	"context"
	"fmt"
	"iter"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/privnum/privnum/internal/store"
	"github.com/privnum/privnum/pool"
)

// The allocator's preference is: numbers tagged with the requested area
// first, then the least load seen, then pool order. Ranking the whole pool
// on every create would cost O(pool); instead the pool is kept ranked in
// binary heaps (one over every number, one per area tag) that each load
// change updates in O(log pool), and a create walks a heap from its top,
// stepping over the few numbers the parties hold: O((k+1) log k) for k
// skipped numbers, whatever the size of the pool.

// candidates caches the pool snapshot (reloaded when the pool's version
// counter moves, by one goroutine at a time) ranked for allocation, and
// what this process knows about the numbers each party holds.
type candidates struct {
	mu   sync.Mutex
	snap pool.Snapshot
	ok   bool
	// checked is when snap was last found current.
	checked time.Time
	// loading, when not nil, is closed when the snapshot load under way
	// ends; other creates wait for it rather than load the pool again.
	loading chan struct{}
	// pos maps a number to its index in snap.Numbers; loads[i] is the last
	// load seen on snap.Numbers[i].
	pos   map[string]int32
	loads []int32
	// all ranks every number of snap; areas ranks the numbers of each
	// area tag.
	all   ranking
	areas map[string]*ranking
	// load keeps the load last seen on numbers that left the snapshot
	// (retired), for when they come back.
	load map[string]int
	// frontier is scratch space for ranking.first, reused under mu.
	frontier []int32
	// held is what this process saw each party take: party → number →
	// end of quarantine (ms). It may overstate, never matters for safety.
	held map[string]map[string]int64
	// holds[i] is the end (ms) of an exclusive hold known on
	// snap.Numbers[i]; shared[i] the end of the last AXB quarantine known
	// on it. Hints for the allocators, from the snapshot and the scripts'
	// answers; the scripts decide.
	holds, shared []int64
	// sweepAt is the earliest end of a hold among the numbers the AXB
	// rankings keep at heldLoad (0: none).
	sweepAt int64
	// axeLast is the number the last AXE binding went to, tried first by
	// the next; axeKnown the numbers seen carrying AXE extensions (until
	// the end of their hold, ms); axeFull the numbers seen without a free
	// extension, stepped over until the time (ms). Hints: the scripts
	// decide.
	axeLast  string
	axeKnown map[string]int64
	axeFull  map[string]int64
}

// heldLoad is the load the AXB rankings give a number held by an
// exclusive mode: it sorts after every real load, so the first number
// found at heldLoad means none is left.
const heldLoad = math.MaxInt32

// axbServes tells whether the AXB allocator may use a pool entry: it is
// unreserved or reserved for AXB.
func axbServes(e pool.Entry) bool { return e.Mode == "" || e.Mode == string(AXB) }

// heldTrust bounds how long the AXB allocator believes a hold it learnt
// of: a hold released early by another process is otherwise not seen
// until the pool snapshot is read again. Past it, the number is tried
// again (one script run, which answers "held" if it still is).
const heldTrust = 10 * time.Minute

// markHeld notes that an exclusive mode holds x until untilMs; c.mu must
// be held. With exact, untilMs replaces what was known (this process
// released the hold early).
func (c *candidates) markHeld(x string, untilMs, nowMs int64, exact bool) {
	i, ok := c.pos[x]
	if !ok {
		return
	}
	if exact {
		c.holds[i] = untilMs
	} else {
		c.holds[i] = max(c.holds[i], min(untilMs, nowMs+heldTrust.Milliseconds()))
	}
	if until := c.holds[i]; axbServes(c.snap.Numbers[i]) && until > nowMs {
		if c.loads[i] != heldLoad {
			c.loads[i] = heldLoad
			c.fixAXB(i)
		}
		if c.sweepAt == 0 || until < c.sweepAt {
			c.sweepAt = until
		}
	}
}

// markShared notes that AXB pairs may live on x until untilMs; c.mu must
// be held.
func (c *candidates) markShared(x string, untilMs int64) {
	if i, ok := c.pos[x]; ok {
		c.shared[i] = max(c.shared[i], untilMs)
	}
}

// fixAXB moves number i in the AXB rankings after its load changed.
func (c *candidates) fixAXB(i int32) {
	c.all.fix(i)
	if r := c.areas[c.snap.Numbers[i].Area]; r != nil {
		r.fix(i)
	}
}

// sweepEvery is the least time between two sweeps: holds that end close
// together are given back in one pass.
const sweepEvery = time.Second

// sweep gives the numbers whose exclusive hold ended back to the AXB
// rankings; c.mu must be held. It scans the pool, at most once per
// sweepEvery.
func (c *candidates) sweep(nowMs int64) {
	if c.sweepAt == 0 || nowMs < c.sweepAt {
		return
	}
	defer func() {
		if c.sweepAt != 0 {
			c.sweepAt = max(c.sweepAt, nowMs+sweepEvery.Milliseconds())
		}
	}()
	c.sweepAt = 0
	for i, l := range c.loads {
		if l != heldLoad {
			continue
		}
		if h := c.holds[i]; h > nowMs {
			if c.sweepAt == 0 || h < c.sweepAt {
				c.sweepAt = h
			}
			continue
		}
		c.loads[i] = 0
		c.fixAXB(int32(i))
	}
}

// speculateFor is how long after the pool was last found current the
// allocator tries a number before reading the party index.
const speculateFor = 2 * time.Second

// heldMax bounds candidates.held; past it the memory starts over.
const heldMax = 1 << 17

// heldSweep is how many parties remember looks at, each time it adds one,
// to forget what has ended. Parties that never come back would otherwise
// stay until heldMax (tens of MiB of ended quarantines, found by the
// callload soak). Go ranges over a map from a random place, so these are
// a sample: once half of the parties are stale, a sweep drops about one
// per party added, which keeps the stale ones near the number of live
// ones.
const heldSweep = 2

// remember notes that party p holds x until untilMs; c.mu must be held.
func (c *candidates) remember(p, x string, untilMs int64) {
	if c.held == nil || len(c.held) >= heldMax {
		c.held = map[string]map[string]int64{}
	}
	c.sweepHeld(time.Now().UnixMilli())
	m := c.held[p]
	if m == nil {
		m = map[string]int64{}
		c.held[p] = m
	}
	if untilMs > m[x] {
		m[x] = untilMs
	}
}

// sweepHeld forgets what has ended for up to heldSweep parties of
// c.held; c.mu must be held.
func (c *candidates) sweepHeld(nowMs int64) {
	n := 0
	for p, m := range c.held {
		if n++; n > heldSweep {
			return
		}
		for x, until := range m {
			if until <= nowMs {
				delete(m, x)
			}
		}
		if len(m) == 0 {
			delete(c.held, p)
		}
	}
}

// skipFor returns the snapshot indexes of the parties themselves, of
// except and, with known, of the numbers this process saw the parties
// take; c.mu must be held.
func (c *candidates) skipFor(nowMs int64, parties []string, known bool, except []string) idxSet {
	var skip idxSet
	add := func(x string) {
		if i, ok := c.pos[x]; ok {
			skip = append(skip, i)
		}
	}
	for _, p := range parties {
		add(p)
		if !known {
			continue
		}
		for x, until := range c.held[p] {
			if until <= nowMs {
				delete(c.held[p], x)
				continue
			}
			add(x)
		}
	}
	for _, x := range except {
		add(x)
	}
	slices.Sort(skip)
	return slices.Compact(skip)
}

// best returns the preferred number for a binding of parties in area that
// is not one of the parties, not in except and, with known, not one the
// process saw them take; "" when none is left. c.mu must be held.
func (c *candidates) best(area string, now time.Time, parties []string, known bool, except []string) string {
	c.sweep(now.UnixMilli())
	skip := c.skipFor(now.UnixMilli(), parties, known, except)
	if area != "" {
		if r := c.areas[area]; r != nil {
			if i := r.first(skip, &c.frontier); i >= 0 && c.loads[i] != heldLoad {
				return c.snap.Numbers[i].Number
			}
		}
	}
	// Every number of the area is taken (or there is none): the best of
	// the whole pool is then the best outside the area.
	if i := c.all.first(skip, &c.frontier); i >= 0 && c.loads[i] != heldLoad {
		return c.snap.Numbers[i].Number
	}
	return ""
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
	return c.best(req.Area, now, []string{req.A, req.B}, true, nil)
}

// setLoad records that x now carries n bindings and moves it in the
// rankings accordingly.
func (c *candidates) setLoad(x string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, ok := c.pos[x]
	if !ok || c.loads[i] == int32(n) || !axbServes(c.snap.Numbers[i]) {
		return
	}
	c.loads[i] = int32(n)
	c.fixAXB(i)
}

// install makes snap the cached snapshot, keeping the loads seen so far;
// c.mu must be held. It costs O(pool), once per pool change.
func (c *candidates) install(snap pool.Snapshot) {
	n := len(snap.Numbers)
	pos := make(map[string]int32, n)
	loads := make([]int32, n)
	holds := make([]int64, n)
	shared := make([]int64, n)
	if c.load == nil {
		c.load = map[string]int{}
	}
	nowMs := time.Now().UnixMilli()
	c.sweepAt = 0
	for i, e := range snap.Numbers {
		pos[e.Number] = int32(i)
		if i < len(snap.Held) {
			holds[i], shared[i] = snap.Held[i], snap.Shared[i]
		}
		if j, ok := c.pos[e.Number]; ok {
			loads[i] = c.loads[j]
			holds[i] = max(holds[i], c.holds[j])
			shared[i] = max(shared[i], c.shared[j])
		} else if l, ok := c.load[e.Number]; ok {
			loads[i] = int32(l)
			delete(c.load, e.Number)
		}
		holds[i] = min(holds[i], nowMs+heldTrust.Milliseconds())
		switch {
		case holds[i] > nowMs && axbServes(e):
			loads[i] = heldLoad
			if c.sweepAt == 0 || holds[i] < c.sweepAt {
				c.sweepAt = holds[i]
			}
		case loads[i] == heldLoad:
			loads[i] = 0
		}
	}
	for x, j := range c.pos {
		if _, ok := pos[x]; !ok && c.loads[j] != 0 && c.loads[j] != heldLoad {
			c.load[x] = int(c.loads[j])
		}
	}
	// The AXB rankings hold the numbers AXB may use: unreserved or
	// reserved for AXB.
	all := make([]int32, 0, n)
	byArea := map[string][]int32{}
	for i, e := range snap.Numbers {
		if !axbServes(e) {
			continue
		}
		all = append(all, int32(i))
		if e.Area != "" {
			byArea[e.Area] = append(byArea[e.Area], int32(i))
		}
	}
	c.all = newRanking(all, make([]int32, n), loads)
	// A number has at most one area: the area rankings share one
	// position table.
	areaAt := make([]int32, n)
	c.areas = make(map[string]*ranking, len(byArea))
	for a, h := range byArea {
		r := newRanking(h, areaAt, loads)
		c.areas[a] = &r
	}
	snap.Held, snap.Shared = nil, nil // copied into holds and shared
	c.snap, c.ok, c.checked = snap, true, time.Now()
	c.pos, c.loads, c.holds, c.shared = pos, loads, holds, shared
}

// freeCandidates reads the parties' index and returns the best active pool
// number that neither party holds according to it ("" if none), and the
// other free numbers in order of preference, computed one at a time, for
// the rare case where the index was stale and the best one turns out busy.
func (s *Service) freeCandidates(ctx context.Context, req Request, now time.Time) (string, iter.Seq[string], error) {
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
	// The party index is what the allocator trusts here, not what the
	// process remembers (a quarantine may have ended since).
	parties := []string{req.A, req.B}
	index := append(slices.Clip(held[0].Val()), held[1].Val()...)
	c := &s.cache
	c.mu.Lock()
	// The index entries join what the process knows the parties hold, so
	// that the next creates for them skip those numbers without reading it.
	for i, p := range parties {
		for _, x := range held[i].Val() {
			c.remember(p, x, now.Add(time.Minute).UnixMilli())
		}
	}
	best := c.best(req.Area, now, parties, false, index)
	c.mu.Unlock()
	rest := func(yield func(string) bool) {
		tried := append(slices.Clip(index), best)
		for {
			c.mu.Lock()
			x := c.best(req.Area, now, parties, false, tried)
			c.mu.Unlock()
			if x == "" || !yield(x) {
				return
			}
			tried = append(tried, x)
		}
	}
	return best, rest, nil
}

// currentSnapshot makes sure the cached pool is at the pool's current
// version (one read of the version, and of the pool when it changed).
func (s *Service) currentSnapshot(ctx context.Context) error {
	v, err := s.pool.Version(ctx)
	if err != nil {
		return fmt.Errorf("pool version: %w", err)
	}
	return s.loadSnapshot(ctx, v)
}

// loadSnapshot makes sure the cached pool is at version v. One goroutine
// reads the pool; the others wait for it and take what it installed.
func (s *Service) loadSnapshot(ctx context.Context, v int64) error {
	c := &s.cache
	c.mu.Lock()
	if c.ok && c.snap.Version == v {
		c.checked = time.Now()
		c.mu.Unlock()
		return nil
	}
	if wait := c.loading; wait != nil {
		c.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return fmt.Errorf("wait for the pool: %w", ctx.Err())
		}
		c.mu.Lock()
		if c.ok || c.loading != nil {
			// Installed, or another load is under way: a stale snapshot
			// only costs script runs on numbers that turn out unavailable.
			ok := c.ok
			c.mu.Unlock()
			if ok {
				return nil
			}
			return s.loadSnapshot(ctx, v)
		}
	}
	done := make(chan struct{})
	c.loading = done
	c.mu.Unlock()
	snap, err := s.pool.Snapshot(ctx)
	c.mu.Lock()
	if err == nil && (!c.ok || snap.Version >= c.snap.Version || snap.Version == v) {
		c.install(snap)
	}
	c.loading = nil
	close(done)
	c.mu.Unlock()
	return err
}

// idxSet is a sorted set of snapshot indexes.
type idxSet []int32

func (s idxSet) has(i int32) bool {
	_, ok := slices.BinarySearch(s, i)
	return ok
}

// ranking is a binary min-heap of snapshot indexes in the allocator's
// order (least load seen, then pool order) that knows where each index
// sits, so that a load change moves one entry in O(log n).
type ranking struct {
	h []int32
	// at[i] is the position of index i in h; loads[i] its load. Both are
	// indexed by snapshot index and may be shared with other rankings.
	at, loads []int32
}

// newRanking heapifies h, in O(len(h)).
func newRanking(h, at, loads []int32) ranking {
	r := ranking{h: h, at: at, loads: loads}
	for p, i := range h {
		at[i] = int32(p)
	}
	for p := len(h)/2 - 1; p >= 0; p-- {
		r.down(p)
	}
	return r
}

func (r *ranking) less(a, b int32) bool {
	if la, lb := r.loads[a], r.loads[b]; la != lb {
		return la < lb
	}
	return a < b
}

func (r *ranking) swap(p, q int) {
	r.h[p], r.h[q] = r.h[q], r.h[p]
	r.at[r.h[p]], r.at[r.h[q]] = int32(p), int32(q)
}

func (r *ranking) up(p int) {
	for p > 0 {
		q := (p - 1) / 2
		if !r.less(r.h[p], r.h[q]) {
			return
		}
		r.swap(p, q)
		p = q
	}
}

func (r *ranking) down(p int) {
	n := len(r.h)
	for {
		m := 2*p + 1
		if m >= n {
			return
		}
		if q := m + 1; q < n && r.less(r.h[q], r.h[m]) {
			m = q
		}
		if !r.less(r.h[m], r.h[p]) {
			return
		}
		r.swap(p, m)
		p = m
	}
}

// fix restores the heap after index i's load changed.
func (r *ranking) fix(i int32) {
	r.up(int(r.at[i]))
	r.down(int(r.at[i]))
}

// first returns the first index in ranking order that skip does not hold,
// or -1. It walks the heap best first, keeping the frontier of heap
// positions still to look at in a small heap of its own, so that it
// visits each skipped index and its children only: O((k+1) log k) for k
// skipped indexes. frontier is scratch space.
func (r *ranking) first(skip idxSet, frontier *[]int32) int32 {
	if len(r.h) == 0 {
		return -1
	}
	if !skip.has(r.h[0]) {
		return r.h[0]
	}
	f := (*frontier)[:0]
	defer func() { *frontier = f }()
	before := func(p, q int32) bool { return r.less(r.h[p], r.h[q]) }
	push := func(p int32) {
		if int(p) >= len(r.h) {
			return
		}
		f = append(f, p)
		for j := len(f) - 1; j > 0; {
			k := (j - 1) / 2
			if !before(f[j], f[k]) {
				break
			}
			f[j], f[k] = f[k], f[j]
			j = k
		}
	}
	pop := func() int32 {
		top := f[0]
		last := len(f) - 1
		f[0] = f[last]
		f = f[:last]
		for j := 0; ; {
			m := 2*j + 1
			if m >= len(f) {
				break
			}
			if q := m + 1; q < len(f) && before(f[q], f[m]) {
				m = q
			}
			if !before(f[m], f[j]) {
				break
			}
			f[j], f[m] = f[m], f[j]
			j = m
		}
		return top
	}
	push(1)
	push(2)
	for len(f) > 0 {
		p := pop()
		if i := r.h[p]; !skip.has(i) {
			return i
		}
		push(2*p + 1)
		push(2*p + 2)
	}
	return -1
}

// Spare returns the virtual number the allocator would give party now: an
// active pool number party holds nothing on (by the party index), without
// binding anything. It fails with ErrPoolExhausted when there is none.
func (s *Service) Spare(ctx context.Context, party string) (string, error) {
	p, err := s.parser.Parse(party)
	if err != nil {
		return "", fmt.Errorf("party: %w", err)
	}
	best, _, err := s.freeCandidates(ctx, Request{A: p, B: p}, time.Now())
	if err != nil {
		return "", err
	}
	if best == "" {
		return "", ErrPoolExhausted
	}
	return best, nil
}
