package pooltrace

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/e164"
	"github.com/privnum/privnum/internal/store"
	"github.com/privnum/privnum/pool"
)

// parser reads the trace's numbers (Chinese mobile and virtual numbers).
func parser() e164.Parser { return e164.Parser{Region: "CN"} }

// Simulated time and Redis time.
//
// The trace spans hours of simulated time; replaying it in real time would
// take as long. Instead the replay runs as fast as Redis answers, and no
// binding ever reaches a wall-clock expiry: every binding gets a TTL and
// the service a quarantine far longer than any run (RealTTL,
// RealQuarantine). The trace then moves the bindings through their life
// explicitly, in simulated-time order:
//
//   - order opens     → Service.Create (the real allocator and create script)
//   - order completes → Service.Release (the real release script: the
//     pairs go into quarantine, the party index records them)
//   - quarantine ends → the keys whose PEXPIRE would have lapsed at that
//     moment are deleted (the two route hashes and the binding hash) and
//     the number leaves both parties' index, which is exactly the state
//     Redis reaches when the TTLs that Release set run out.
//
// So the allocator sees, at every create, the same set of active and
// quarantined pairs it would see in production at that simulated instant,
// and the result does not depend on how fast the machine is.
const (
	// RealTTL is every replayed binding's TTL, and RealQuarantine the
	// service's quarantine: longer than any run.
	RealTTL        = 300 * 24 * time.Hour
	RealQuarantine = 300 * 24 * time.Hour
)

// Run is the outcome of replaying the trace on one pool size.
type Run struct {
	Pool      int
	Created   int
	Exhausted int
	// FirstExhausted is the order that first found the pool exhausted
	// (-1 if none).
	FirstExhausted int
	// Scripts is how many create-script runs the creates took.
	Scripts int64
	Took    time.Duration
}

// OK reports whether every binding found a number.
func (r Run) OK() bool { return r.Exhausted == 0 }

func (r Run) String() string {
	if r.OK() {
		return fmt.Sprintf("pool %d: all %d bindings placed (%s)", r.Pool, r.Created, r.Took.Round(time.Millisecond))
	}
	return fmt.Sprintf("pool %d: exhausted at order %d (%s)", r.Pool, r.FirstExhausted, r.Took.Round(time.Millisecond))
}

// scriptCounter counts EVALSHA/EVAL commands.
type scriptCounter struct{ n atomic.Int64 }

func (c *scriptCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *scriptCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if n := cmd.Name(); n == "evalsha" || n == "eval" {
			c.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (c *scriptCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// VirtualNumber is the i-th number of the replayed pool; BuyerNumber and
// CourierNumber are the trace's parties' real numbers.
func VirtualNumber(i int) string { return fmt.Sprintf("+86170%08d", i) }

// BuyerNumber is buyer i's number.
func BuyerNumber(i int) string { return fmt.Sprintf("+86138%08d", i) }

// CourierNumber is courier i's number.
func CourierNumber(i int) string { return fmt.Sprintf("+86139%08d", i) }

// Simulator replays traces on one Redis database (a single server or a
// cluster), which it flushes.
type Simulator struct {
	rdb     redis.UniversalClient
	scripts *scriptCounter
	// After, when set, is called after each event of a replay is applied,
	// with the service that applied it; an error stops the replay.
	After func(ctx context.Context, svc *binding.Service, e Event) error
}

// NewSimulator returns a Simulator on rdb. Everything in rdb's database is
// deleted by every replay.
func NewSimulator(rdb redis.UniversalClient) *Simulator {
	c := &scriptCounter{}
	rdb.AddHook(c)
	return &Simulator{rdb: rdb, scripts: c}
}

// flush empties the database, every master's in a cluster.
func flush(ctx context.Context, rdb redis.UniversalClient) error {
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return c.FlushDB(ctx).Err() })
	}
	return rdb.FlushDB(ctx).Err()
}

// Replay flushes the database, fills a pool of size numbers and plays the
// trace through the real binding service. With stopEarly it stops at the
// first exhausted create.
func (s *Simulator) Replay(ctx context.Context, orders []Order, quarantine time.Duration, size int, stopEarly bool) (Run, error) {
	rdb := s.rdb
	start := time.Now()
	run := Run{Pool: size, FirstExhausted: -1}
	if err := flush(ctx, rdb); err != nil {
		return run, fmt.Errorf("flushdb: %w", err)
	}
	p := pool.New(rdb, parser())
	entries := make([]pool.Entry, size)
	for i := range entries {
		entries[i] = pool.Entry{Number: VirtualNumber(i)}
	}
	if _, err := p.Add(ctx, entries); err != nil {
		return run, err
	}
	svc := binding.New(rdb, p, parser(), binding.Config{Quarantine: RealQuarantine, MaxTTL: RealTTL})

	bound := make([]binding.Binding, len(orders))
	for _, e := range Events(orders, quarantine) {
		o := orders[e.Order]
		switch e.Kind {
		case Create:
			before := s.scripts.n.Load()
			b, err := svc.Create(ctx, binding.Request{
				A: BuyerNumber(o.Buyer), B: CourierNumber(o.Courier),
				TTL: RealTTL, OrderID: fmt.Sprint(o.ID),
			})
			run.Scripts += s.scripts.n.Load() - before
			switch {
			case errors.Is(err, binding.ErrPoolExhausted):
				run.Exhausted++
				if run.FirstExhausted < 0 {
					run.FirstExhausted = o.ID
				}
				if stopEarly {
					run.Took = time.Since(start)
					return run, nil
				}
			case err != nil:
				return run, fmt.Errorf("order %d: create: %w", o.ID, err)
			default:
				run.Created++
				bound[o.ID] = b
			}
		case Release:
			if b := bound[o.ID]; b.ID != "" {
				if _, err := svc.Release(ctx, b.ID); err != nil {
					return run, fmt.Errorf("order %d: release: %w", o.ID, err)
				}
			}
		case Free:
			if b := bound[o.ID]; b.ID != "" {
				if err := EndQuarantine(ctx, rdb, b); err != nil {
					return run, fmt.Errorf("order %d: end quarantine: %w", o.ID, err)
				}
				bound[o.ID] = binding.Binding{}
			}
		}
		if s.After != nil {
			if err := s.After(ctx, svc, e); err != nil {
				return run, err
			}
		}
	}
	run.Took = time.Since(start)
	return run, nil
}

// EndQuarantine removes what Redis would expire when b's quarantine ends.
func EndQuarantine(ctx context.Context, rdb redis.UniversalClient, b binding.Binding) error {
	_, err := rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.Del(ctx, store.RouteKey(b.X, b.A), store.RouteKey(b.X, b.B), store.BindingKey(b.X, b.ID))
		pipe.ZRem(ctx, store.PartyKey(b.A), b.X)
		pipe.ZRem(ctx, store.PartyKey(b.B), b.X)
		return nil
	})
	return err
}

// Result is a whole simulation.
type Result struct {
	Trace    TraceConfig
	Bindings int
	Bounds
	// Smallest is the smallest pool with zero exhausted creates (0 if
	// none up to the cap).
	Smallest int
	// Exact says Smallest was found by scanning every size from the lower
	// bound up; otherwise a bisection (which assumes more numbers never
	// hurt) narrowed it down.
	Exact bool
	Runs  []Run
	// Final is the full replay at Smallest.
	Final Run
}

// linearSteps is how many sizes above the lower bound are tried one by one
// before the search switches to doubling and bisection.
const linearSteps = 4

// Simulate generates the trace and finds the smallest pool that places
// every binding, starting from the lower bound DeltaHeld (no smaller pool
// can work). Sizes are tried one by one up to DeltaHeld+linearSteps, then
// by doubling the step and bisecting, up to maxPool (0: NaiveHeld).
func (s *Simulator) Simulate(ctx context.Context, tc TraceConfig, maxPool int, progress func(Run)) (Result, error) {
	orders, err := Generate(tc)
	if err != nil {
		return Result{}, err
	}
	res := Result{Trace: tc, Bindings: len(orders), Bounds: Analyze(orders, tc.Quarantine)}
	if len(orders) == 0 {
		return res, errors.New("trace has no orders: lengthen the span")
	}
	if maxPool <= 0 {
		maxPool = res.NaiveHeld
	}
	try := func(size int) (bool, error) {
		r, err := s.Replay(ctx, orders, tc.Quarantine, size, true)
		if err != nil {
			return false, err
		}
		res.Runs = append(res.Runs, r)
		if progress != nil {
			progress(r)
		}
		return r.OK(), nil
	}
	lo := res.DeltaHeld - 1 // largest size known to fail
	found := 0
	for size := res.DeltaHeld; size <= min(res.DeltaHeld+linearSteps, maxPool); size++ {
		ok, err := try(size)
		if err != nil {
			return res, err
		}
		if ok {
			found = size
			break
		}
		lo = size
	}
	res.Exact = found != 0
	if found == 0 {
		for step := 2 * linearSteps; ; step *= 2 {
			size := min(lo+step, maxPool)
			if size <= lo {
				return res, nil
			}
			ok, err := try(size)
			if err != nil {
				return res, err
			}
			if ok {
				found = size
				break
			}
			lo = size
			if size == maxPool {
				return res, nil
			}
		}
		for found-lo > 1 {
			mid := (lo + found) / 2
			ok, err := try(mid)
			if err != nil {
				return res, err
			}
			if ok {
				found = mid
			} else {
				lo = mid
			}
		}
	}
	res.Smallest = found
	// Replay the whole trace at the answer to confirm it and count.
	final, err := s.Replay(ctx, orders, tc.Quarantine, found, false)
	if err != nil {
		return res, err
	}
	if !final.OK() {
		return res, fmt.Errorf("pool %d placed every binding with early stop but not in a full replay", found)
	}
	res.Final = final
	return res, nil
}
