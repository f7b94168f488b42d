package redistest

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestClusterStartsWithReplicasSyncedAndCountsCrossSlot checks the cluster
// helper itself: 3 masters with a synced replica each, the URL privnum
// takes, the CROSSSLOT count, and a replica taking over a killed master.
func TestClusterStartsWithReplicasSyncedAndCountsCrossSlot(t *testing.T) {
	ctx := context.Background()
	c := StartCluster(t)
	roles, err := c.Roles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	masters, replicas := 0, 0
	for _, r := range roles {
		if r.Master {
			masters++
		} else if r.LinkUp {
			replicas++
		}
	}
	if masters != 3 || replicas != 3 {
		t.Fatalf("roles %+v: want 3 masters and 3 synced replicas", roles)
	}
	rdb := ClientFor(t, c.URL())
	if err := rdb.Set(ctx, "a", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Errors(ctx, "CROSSSLOT"); err != nil || n != 0 {
		t.Fatalf("CROSSSLOT count before = %d, %v", n, err)
	}
	// "a" and "b" hash to different slots.
	if err := rdb.Do(ctx, "MGET", "a", "b").Err(); err == nil {
		t.Fatal("MGET across slots succeeded")
	}
	if n, err := c.Errors(ctx, "CROSSSLOT"); err != nil || n == 0 {
		t.Fatalf("CROSSSLOT count after = %d, %v; want > 0", n, err)
	}

	// Kill the master of "a"; its replica takes over with the data.
	var owner string
	cc := c.Client(t)
	if err := cc.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
		if v, _ := n.Get(ctx, "a").Result(); v == "1" {
			owner = n.Options().Addr
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if owner == "" {
		t.Fatal("no master holds a")
	}
	// Replication is asynchronous: make sure the replica has "a" first (on
	// the connection that wrote it, WAIT is what --durability replica does).
	on := redis.NewClient(&redis.Options{Addr: owner})
	defer on.Close()
	var wait *redis.Cmd
	if _, err := on.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "a", "1", 0)
		wait = p.Do(ctx, "WAIT", 1, 2000)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n, _ := wait.Int(); n != 1 {
		t.Fatalf("WAIT = %d replicas", n)
	}
	if err := c.Kill(owner); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	start := time.Now()
	if err := c.WaitHealthy(wctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("failover took %v", time.Since(start))
	if v, err := rdb.Get(ctx, "a").Result(); err != nil || v != "1" {
		t.Fatalf("after failover GET a = %q, %v", v, err)
	}
}
