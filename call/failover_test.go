package call_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/internal/redistest"
	"github.com/privnum/privnum/internal/store"
)

// TestCallsDuringClusterFailover: while the master holding X's keys is dead
// and not yet replaced, a call to X fails closed (congestion, nobody
// dialed); once its replica has taken over, the same call connects.
func TestCallsDuringClusterFailover(t *testing.T) {
	if redistest.Clustered() {
		t.Skip("starts a cluster of its own; runs once, in the single-server pass")
	}
	c := redistest.StartCluster(t)
	rdb := redistest.ClientFor(t, c.URL())
	h := newHarnessOn(t, rdb, binding.Config{Quarantine: time.Hour, WaitReplicas: 1})
	h.bind(binding.Options{})
	ctx := context.Background()
	owner, err := rdb.(*redis.ClusterClient).MasterForKey(ctx, store.RouteKey(xNum, aNum))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Kill(owner.Options().Addr); err != nil {
		t.Fatal(err)
	}

	in := h.dial(aNum)
	ch := h.waitDestroyed(in)
	if ch.Answered || ch.SIPResponse != 503 {
		t.Errorf("call during failover: answered %v, SIP %d; want 503 (congestion)", ch.Answered, ch.SIPResponse)
	}
	if _, dialed := h.outboundTo(bNum); dialed {
		t.Fatal("a call during the failover dialed the callee")
	}

	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := c.WaitHealthy(wctx); err != nil {
		t.Fatal(err)
	}
	in = h.dial(aNum)
	out := h.bridgedLeg(in, bNum)
	h.assertPrivate(in, out.ID, aNum, bNum)
}
