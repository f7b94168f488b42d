package binding

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/privnum/privnum/e164"
	"github.com/privnum/privnum/internal/store"
)

// A party holds a virtual number from the binding's creation until the end
// of its quarantine, and no two of its bindings, live or quarantined, share
// a number. So the pool can serve the current load only if it has at least
// as many numbers as the busiest party holds: Δ, the bound cmd/poolsim
// measures over a whole trace, taken at this instant. The forecast reads it
// from the party index (pn:party:{P}, each number scored by the end of its
// quarantine), per area tag and for the whole pool.

// AreaForecast is the pool of one area tag (or the whole pool) against
// the current load.
type AreaForecast struct {
	// Area is the area tag; "" for the numbers without one (or, in
	// Forecast.Total, the whole pool).
	Area string `json:"area"`
	// Pool is how many active numbers carry the tag.
	Pool int `json:"pool"`
	// Needed is the smallest pool that serves the current load: the most
	// of these numbers any one party holds, live or quarantined (Δ).
	Needed int `json:"needed"`
	// Headroom is Pool − Needed: how many more numbers of the area the
	// busiest party can be given before its bindings spill to other areas
	// (or, for the whole pool, fail with ErrPoolExhausted).
	Headroom int `json:"headroom"`
	// Busiest is a party holding Needed numbers, masked; "" when none
	// holds any.
	Busiest string `json:"busiest,omitempty"`
}

// Forecast is the pool against the current load, read at At.
type Forecast struct {
	At time.Time `json:"at"`
	// Parties is how many parties hold at least one number.
	Parties int `json:"parties"`
	// Areas has one entry per area tag of the active pool, sorted, the
	// untagged numbers ("") first.
	Areas []AreaForecast `json:"areas"`
	// Total is the whole active pool.
	Total AreaForecast `json:"total"`
}

// forecastBatch is how many party keys one SCAN step and one pipeline
// cover.
const forecastBatch = 1000

// Forecast reads the live party index and the pool and returns, per area
// tag and for the whole pool, the smallest pool that serves the current
// load and the headroom left. The pool counted is AXB's: numbers reserved
// for another mode or held by an exclusive binding are left out. It scans every party key (every master of a
// cluster), so it is meant for a periodic gauge and the CLI, not for a
// request path.
func (s *Service) Forecast(ctx context.Context) (Forecast, error) {
	now := time.Now()
	snap, err := s.pool.Snapshot(ctx)
	if err != nil {
		return Forecast{}, fmt.Errorf("forecast: %w", err)
	}
	areaOf := make(map[string]string, len(snap.Numbers))
	byArea := map[string]*AreaForecast{}
	axb := 0
	for i, n := range snap.Numbers {
		// The pool of AXB bindings: numbers reserved for another mode,
		// or held by an AXN, AXG or AXE binding, serve none.
		if !axbServes(n) || (i < len(snap.Held) && snap.Held[i] > now.UnixMilli()) {
			continue
		}
		axb++
		areaOf[n.Number] = n.Area
		a := byArea[n.Area]
		if a == nil {
			a = &AreaForecast{Area: n.Area}
			byArea[n.Area] = a
		}
		a.Pool++
	}
	f := Forecast{At: now.UTC(), Total: AreaForecast{Pool: axb}}
	var mu sync.Mutex
	count := map[string]int{}
	tally := func(party string, held []string) {
		clear(count)
		total := 0
		for _, x := range held {
			area, ok := areaOf[x]
			if !ok {
				continue // retired or gone: it takes no new bindings anyway
			}
			count[area]++
			total++
		}
		if total == 0 {
			return
		}
		f.Parties++
		for area, n := range count {
			if a := byArea[area]; busier(n, party, a.Needed, a.Busiest) {
				a.Needed, a.Busiest = n, party
			}
		}
		if busier(total, party, f.Total.Needed, f.Total.Busiest) {
			f.Total.Needed, f.Total.Busiest = total, party
		}
	}
	err = scanKeys(ctx, s.rdb, store.PartyKey("*"), func(c redis.Cmdable, keys []string) error {
		cmds := make([]*redis.StringSliceCmd, len(keys))
		_, err := c.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for i, k := range keys {
				cmds[i] = pipe.ZRangeByScore(ctx, k, &redis.ZRangeBy{Min: "(" + ms(now), Max: "+inf"})
			}
			return nil
		})
		if err != nil {
			return err
		}
		mu.Lock() // a cluster's masters are scanned at once
		defer mu.Unlock()
		for i, k := range keys {
			tally(partyOf(k), cmds[i].Val())
		}
		return nil
	})
	if err != nil {
		return Forecast{}, fmt.Errorf("forecast: read party index: %w", err)
	}
	for _, a := range byArea {
		a.Headroom = a.Pool - a.Needed
		a.Busiest = maskParty(a.Busiest)
		f.Areas = append(f.Areas, *a)
	}
	sort.Slice(f.Areas, func(i, j int) bool { return f.Areas[i].Area < f.Areas[j].Area })
	f.Total.Headroom = f.Total.Pool - f.Total.Needed
	f.Total.Busiest = maskParty(f.Total.Busiest)
	if f.Areas == nil {
		f.Areas = []AreaForecast{}
	}
	return f, nil
}

// busier reports whether party holding n numbers takes the place of the
// busiest so far (m numbers); ties go to the lower number, so that the
// answer does not depend on the scan's order.
func busier(n int, party string, m int, busiest string) bool {
	return n > m || n == m && n > 0 && party < busiest
}

// partyOf returns the party of a party-index key.
func partyOf(key string) string {
	return strings.TrimSuffix(strings.TrimPrefix(key, strings.TrimSuffix(store.PartyKey(""), "}")), "}")
}

func maskParty(p string) string {
	if p == "" {
		return ""
	}
	return e164.Mask(p)
}

// scanKeys calls fn with the keys matching pattern, in batches, on the
// client that holds them: every master of a cluster, or the one server.
func scanKeys(ctx context.Context, rdb redis.UniversalClient, pattern string, fn func(c redis.Cmdable, keys []string) error) error {
	scan := func(ctx context.Context, c *redis.Client) error {
		var cursor uint64
		for {
			keys, next, err := c.Scan(ctx, cursor, pattern, forecastBatch).Result()
			if err != nil {
				return err
			}
			if len(keys) > 0 {
				if err := fn(c, keys); err != nil {
					return err
				}
			}
			if cursor = next; cursor == 0 {
				return nil
			}
		}
	}
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		return c.ForEachMaster(ctx, scan)
	case *redis.Client:
		return scan(ctx, c)
	default:
		return fmt.Errorf("cannot scan keys with a %T", rdb)
	}
}
