package binding_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/internal/redistest"
	"github.com/privnum/privnum/internal/store"
	"github.com/privnum/privnum/pool"
)

// TestWaitReplicas: with WaitReplicas a change returns once a replica has
// it; a server with no replica cannot confirm, and says so.
func TestWaitReplicas(t *testing.T) {
	rdb := redistest.Client(t)
	p := pool.New(rdb, cn)
	if _, err := p.Add(context.Background(), xs(2)); err != nil {
		t.Fatal(err)
	}
	svc := binding.New(rdb, p, cn, binding.Config{Quarantine: time.Hour, WaitReplicas: 1, ReplicaTimeout: 100 * time.Millisecond})
	ctx := context.Background()
	b, err := svc.Create(ctx, binding.Request{A: party(1), B: party(2), TTL: time.Hour})
	if !redistest.Clustered() {
		// A lone redis-server has no replica.
		if !errors.Is(err, store.ErrNotReplicated) {
			t.Fatalf("Create on a server without replicas = %v; want ErrNotReplicated", err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Extend(ctx, b.ID, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Release(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := svc.Get(ctx, b.ID); got.State != binding.Released {
		t.Fatalf("after release: %+v", got)
	}
}

// TestFailoverNoMisroutesNoLostBindings kills a master (SIGKILL) while
// creates and resolves run in parallel, waits for its replica to take over,
// and checks that no resolve ever returned the wrong party and that every
// acknowledged create is readable afterwards. It runs once without and once
// with WaitReplicas and prints how many acknowledged creates each lost.
func TestFailoverNoMisroutesNoLostBindings(t *testing.T) {
	if redistest.Clustered() {
		t.Skip("starts clusters of its own; runs once, in the single-server pass")
	}
	for _, tc := range []struct {
		name string
		wait int
	}{
		{"durability=off", 0},
		{"durability=replica", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := redistest.StartCluster(t)
			rdb := redistest.ClientFor(t, c.URL())
			ctx := context.Background()
			p := pool.New(rdb, cn)
			if _, err := p.Add(ctx, xs(24)); err != nil {
				t.Fatal(err)
			}
			svc := binding.New(rdb, p, cn, binding.Config{Quarantine: time.Hour, WaitReplicas: tc.wait})
			r := runFailover(t, c, svc)
			fmt.Printf("failover %s: %d creates acknowledged (%d before the kill), %d failed with an error, %d acknowledged creates lost; %d resolves, %d misroutes, %d errors; failover took %s\n",
				tc.name, r.acked, r.ackedBeforeKill, r.failed, r.lost, r.resolves, r.misroutes, r.resolveErrs, r.failover.Round(time.Millisecond))
			if r.misroutes > 0 {
				t.Errorf("%d resolves returned the wrong party", r.misroutes)
			}
			if r.ackedBeforeKill == 0 || r.resolves == 0 {
				t.Errorf("the load did not run: %+v", r)
			}
			if tc.wait > 0 && r.lost > 0 {
				t.Errorf("%d acknowledged creates lost with WaitReplicas=%d", r.lost, tc.wait)
			}
		})
	}
}

type failoverResult struct {
	acked, ackedBeforeKill, failed, lost int
	resolves, misroutes, resolveErrs     int64
	failover                             time.Duration
}

func runFailover(t *testing.T, c *redistest.Cluster, svc *binding.Service) failoverResult {
	t.Helper()
	ctx := context.Background()
	var (
		mu     sync.Mutex
		acked  []binding.Binding
		failed int
		next   atomic.Int64
		res    failoverResult
		stop   = make(chan struct{})
		wg     sync.WaitGroup
	)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				n := int(next.Add(2))
				cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				b, err := svc.Create(cctx, binding.Request{A: party(n), B: party(n + 1), TTL: time.Hour})
				cancel()
				mu.Lock()
				if err != nil {
					failed++
				} else {
					acked = append(acked, b)
				}
				mu.Unlock()
			}
		}()
	}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				if len(acked) == 0 {
					mu.Unlock()
					time.Sleep(time.Millisecond)
					continue
				}
				b := acked[rand.IntN(len(acked))]
				mu.Unlock()
				caller, want := b.A, b.B
				if rand.IntN(2) == 0 {
					caller, want = b.B, b.A
				}
				cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				r, err := svc.Resolve(cctx, b.X, caller)
				cancel()
				atomic.AddInt64(&res.resolves, 1)
				switch {
				case err != nil:
					atomic.AddInt64(&res.resolveErrs, 1)
				case r.Target != "" && r.Target != want:
					atomic.AddInt64(&res.misroutes, 1)
					t.Errorf("Resolve(%s, %s) = %s; want %s or a refusal", b.X, caller, r.Target, want)
				}
			}
		}()
	}
	time.Sleep(700 * time.Millisecond)
	masters, err := c.Masters(ctx)
	if err != nil || len(masters) == 0 {
		t.Fatalf("masters: %v %v", masters, err)
	}
	mu.Lock()
	res.ackedBeforeKill = len(acked)
	mu.Unlock()
	victim := masters[rand.IntN(len(masters))]
	start := time.Now()
	if err := c.Kill(victim); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = c.WaitHealthy(wctx)
	cancel()
	if err != nil {
		close(stop)
		wg.Wait()
		t.Fatalf("no failover: %v", err)
	}
	res.failover = time.Since(start)
	time.Sleep(700 * time.Millisecond)
	close(stop)
	wg.Wait()

	res.acked, res.failed = len(acked), failed
	for _, b := range acked {
		got, err := svc.Get(ctx, b.ID)
		r, rerr := svc.Resolve(ctx, b.X, b.A)
		if err != nil || got.State != binding.Active || rerr != nil || r.Target != b.B {
			res.lost++
		}
	}
	return res
}
