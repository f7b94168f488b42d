package binding

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/privnum/privnum/pool"
)

// bruteBest is the allocator's preference written as a scan of the whole
// pool: the area's numbers first, then the least load, then pool order.
func bruteBest(snap pool.Snapshot, loads map[string]int, area string, skip map[string]bool) string {
	best, bestIdx := "", -1
	better := func(i int) bool {
		if bestIdx < 0 {
			return true
		}
		a, b := snap.Numbers[i], snap.Numbers[bestIdx]
		if aa, ba := area != "" && a.Area == area, area != "" && b.Area == area; aa != ba {
			return aa
		}
		if loads[a.Number] != loads[b.Number] {
			return loads[a.Number] < loads[b.Number]
		}
		return i < bestIdx
	}
	for i, e := range snap.Numbers {
		if !skip[e.Number] && better(i) {
			best, bestIdx = e.Number, i
		}
	}
	return best
}

// TestRankingMatchesFullScan checks the heap-based allocator against a
// scan of the whole pool, through load changes, skipped numbers, area
// tags and snapshot reloads.
func TestRankingMatchesFullScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	areas := []string{"", "bj", "sh", "gz"}
	var c candidates
	loads := map[string]int{}
	newSnap := func(v int64, n int) pool.Snapshot {
		s := pool.Snapshot{Version: v}
		for i := range n {
			if rng.IntN(5) == 0 {
				continue // retired
			}
			s.Numbers = append(s.Numbers, pool.Entry{Number: fmt.Sprintf("+86170%08d", i), Area: areas[rng.IntN(len(areas))]})
		}
		return s
	}
	now := time.Now()
	for v := range int64(4) {
		snap := newSnap(v, 50+rng.IntN(300))
		c.mu.Lock()
		c.install(snap)
		c.mu.Unlock()
		for step := range 2000 {
			// Change a few loads, as script results do.
			for range rng.IntN(3) {
				x := snap.Numbers[rng.IntN(len(snap.Numbers))].Number
				n := rng.IntN(8)
				loads[x] = n
				c.setLoad(x, n)
			}
			// Skip a random set: a few numbers usually, at times most
			// of the pool.
			k := rng.IntN(6)
			if step%50 == 0 {
				k = rng.IntN(len(snap.Numbers) + 5)
			}
			skip := map[string]bool{}
			var except []string
			for range k {
				x := snap.Numbers[rng.IntN(len(snap.Numbers))].Number
				skip[x] = true
				except = append(except, x)
			}
			area := areas[rng.IntN(len(areas))]
			c.mu.Lock()
			got := c.best(area, now, nil, true, except)
			c.mu.Unlock()
			if want := bruteBest(snap, loads, area, skip); got != want {
				t.Fatalf("version %d step %d: area %q, %d skipped: best = %q, want %q", v, step, area, len(skip), got, want)
			}
		}
	}
}

// TestHeldForgetsEnded: what the process remembers of parties that never
// come back is forgotten once it has ended, as new parties are added, and
// does not pile up until heldMax (the callload soak saw the heap grow by
// the churn's parties). Live knowledge is kept.
func TestHeldForgetsEnded(t *testing.T) {
	now := time.Now().UnixMilli()
	for _, tc := range []struct {
		name         string
		stale, added int
		maxStale     int
	}{
		// Each party added looks at heldSweep others: the stale ones go
		// far faster than new ones come.
		{"stale parties among new ones", 1000, 5000, 50},
		{"few new parties", 1000, 200, 800},
	} {
		// Parties whose quarantine ended, as a process that ran for a
		// while holds them.
		c := candidates{held: map[string]map[string]int64{}}
		for i := range tc.stale {
			c.held[fmt.Sprintf("+86136%08d", i)] = map[string]int64{"+8617000000000": now - 1}
		}
		for i := range tc.added {
			c.remember(fmt.Sprintf("+86137%08d", i), "+8617000000001", now+time.Hour.Milliseconds())
		}
		stale := 0
		for p, m := range c.held {
			if strings.HasPrefix(p, "+86136") {
				stale++
				continue
			}
			if m["+8617000000001"] == 0 {
				t.Fatalf("%s: live knowledge of %s lost", tc.name, p)
			}
		}
		if live := len(c.held) - stale; live != tc.added {
			t.Errorf("%s: %d live parties, want %d", tc.name, live, tc.added)
		}
		t.Logf("%s: %d stale left", tc.name, stale)
		if stale > tc.maxStale {
			t.Errorf("%s: %d of %d stale parties still held, want at most %d", tc.name, stale, tc.stale, tc.maxStale)
		}
	}
}
