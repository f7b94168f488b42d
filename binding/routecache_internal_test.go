package binding

import (
	"testing"
	"time"
)

// TestRouteCacheKeepsOnlyWhatItMay: a read's answer is kept only if no
// change to its key was reported while it was in flight and tracking
// stayed up; a route is served no longer than its key lives; the least
// recently used route goes first.
func TestRouteCacheKeepsOnlyWhatItMay(t *testing.T) {
	const key, other = "pn:{+8617000000000}:r:+8613800000001", "pn:{+8617000000000}:r:+8613800000002"
	route := routeFields{id: "b1", peer: "+8613900000002"}
	t0 := time.Now()
	tests := []struct {
		name    string
		during  func(c *routeCache) // while the read is in flight
		expire  time.Time
		at      time.Time
		want    bool
		notLive bool // tracking never came up
	}{
		{name: "kept", want: true},
		{name: "its key changed meanwhile", during: func(c *routeCache) { c.Invalidate([]string{key}) }},
		{name: "another key changed meanwhile", during: func(c *routeCache) { c.Invalidate([]string{other}) }, want: true},
		{name: "a key of another family changed", during: func(c *routeCache) { c.Invalidate([]string{"pn:{+8617000000000}:num"}) }, want: true},
		{name: "everything flushed meanwhile", during: func(c *routeCache) { c.Invalidate(nil) }},
		{name: "tracking lost meanwhile", during: func(c *routeCache) { c.Down(nil) }},
		{name: "tracking lost and back meanwhile", during: func(c *routeCache) { c.Down(nil); c.Up() }},
		{name: "tracking never up", notLive: true},
		{name: "served until its key expires", expire: t0.Add(100 * time.Millisecond), at: t0.Add(99 * time.Millisecond), want: true},
		{name: "not served once its key expired", expire: t0.Add(100 * time.Millisecond), at: t0.Add(100 * time.Millisecond)},
		{name: "not served when the heartbeat is late", at: t0.Add(cacheStale + time.Second)},
		{name: "served again once a heartbeat came back", during: func(c *routeCache) { c.Beat(t0.Add(time.Hour)) }, at: t0.Add(time.Hour), want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newRouteCache(10, nil)
			if !tt.notLive {
				c.Up()
				c.Beat(t0)
			}
			tk, ok := c.begin(key, t0)
			if ok != !tt.notLive {
				t.Fatalf("begin = %v with tracking live %v", ok, !tt.notLive)
			}
			if tt.during != nil {
				tt.during(c)
			}
			if ok {
				c.finish(key, tk, route, tt.expire, true)
			}
			at := tt.at
			if at.IsZero() {
				at = t0
			}
			got, hit := c.get(key, at)
			if hit != tt.want || (hit && got != route) {
				t.Errorf("get = %+v, %v; want served %v", got, hit, tt.want)
			}
		})
	}
}

func TestRouteCacheEvictsLeastRecentlyUsed(t *testing.T) {
	c := newRouteCache(2, nil)
	c.Up()
	now := time.Now()
	c.Beat(now)
	put := func(k string) {
		tk, _ := c.begin(k, now)
		c.finish(k, tk, routeFields{id: k}, time.Time{}, true)
	}
	put("pn:{x}:r:1")
	put("pn:{x}:r:2")
	c.get("pn:{x}:r:1", now) // 2 is now the least recently used
	put("pn:{x}:r:3")
	for k, want := range map[string]bool{"pn:{x}:r:1": true, "pn:{x}:r:2": false, "pn:{x}:r:3": true} {
		if _, hit := c.get(k, now); hit != want {
			t.Errorf("%s held %v, want %v", k, hit, want)
		}
	}
	if c.lru.Len() != 2 || len(c.entries) != 2 {
		t.Errorf("holds %d (%d indexed), want 2", c.lru.Len(), len(c.entries))
	}
}

// TestRouteCacheKeepsAReadBegunAfterAChange: a change makes the reads in
// flight stale, not the read it asks for (the prefetch), begun after it.
func TestRouteCacheKeepsAReadBegunAfterAChange(t *testing.T) {
	const key = "pn:{+8617000000000}:r:+8613800000001"
	c := newRouteCache(10, nil)
	c.Up()
	now := time.Now()
	c.Beat(now)
	before, _ := c.begin(key, now) // a call's read, in flight
	c.Invalidate([]string{key})
	after, _ := c.begin(key, now) // the prefetch the change asked for
	c.finish(key, before, routeFields{id: "old"}, time.Time{}, true)
	c.finish(key, after, routeFields{id: "new"}, time.Time{}, true)
	if h, hit := c.get(key, now); !hit || h.id != "new" {
		t.Errorf("get = %+v, %v; want the read begun after the change", h, hit)
	}
	if len(c.pending) != 0 {
		t.Errorf("%d reads still pending", len(c.pending))
	}
}
