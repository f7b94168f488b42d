package pooltrace

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/internal/redistest"
	"github.com/privnum/privnum/pool"
)

// small is a trace quick enough for every CI run, busy enough that the
// pool is set by couriers holding tens of pairs.
var small = TraceConfig{
	Seed: 7, Buyers: 400, Couriers: 8, MinLoad: 10, MaxLoad: 20,
	Span: 2 * time.Hour, OrderTime: 30 * time.Minute, Quarantine: 15 * time.Minute,
}

func TestAllocatorStaysWithinDeltaPlusTwo(t *testing.T) {
	rdb := redistest.Client(t)
	res, err := NewSimulator(rdb).Simulate(context.Background(), small, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("bindings %d, Δ active %d, Δ held %d, smallest %d, naive %d, runs %v",
		res.Bindings, res.DeltaActive, res.DeltaHeld, res.Smallest, res.Naive, res.Runs)
	if res.DeltaHeld < 10 {
		t.Fatalf("Δ = %d: the trace should have parties holding tens of pairs", res.DeltaHeld)
	}
	if res.Smallest == 0 {
		t.Fatal("no pool size placed every binding")
	}
	if res.Smallest < res.DeltaHeld {
		t.Fatalf("smallest pool %d is below the lower bound Δ = %d: the replay or the bound is wrong", res.Smallest, res.DeltaHeld)
	}
	if res.Smallest > res.DeltaHeld+2 {
		t.Errorf("smallest pool %d > Δ+2 = %d", res.Smallest, res.DeltaHeld+2)
	}
	if res.Naive <= res.Smallest {
		t.Errorf("naive one-number-per-binding pool %d is not above the allocator's %d", res.Naive, res.Smallest)
	}
	if !res.Final.OK() || res.Final.Created != res.Bindings {
		t.Errorf("final replay = %+v, want all %d bindings placed", res.Final, res.Bindings)
	}
	// A pool one short of the answer must fail (the search is exact here).
	orders, _ := Generate(small)
	r, err := NewSimulator(rdb).Replay(context.Background(), orders, small.Quarantine, res.Smallest-1, false)
	if err != nil {
		t.Fatal(err)
	}
	if r.OK() {
		t.Errorf("pool %d also placed every binding: %d is not the smallest", res.Smallest-1, res.Smallest)
	}
}

// TestEndQuarantineFreesThePair checks the replay's stand-in for TTL
// expiry: a released pair stays blocked until endQuarantine, then the
// number takes the same parties again.
func TestEndQuarantineFreesThePair(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	p := pool.New(rdb, parser())
	if _, err := p.Add(ctx, []pool.Entry{{Number: VirtualNumber(0)}}); err != nil {
		t.Fatal(err)
	}
	svc := binding.New(rdb, p, parser(), binding.Config{Quarantine: RealQuarantine, MaxTTL: RealTTL})
	req := binding.Request{A: BuyerNumber(1), B: CourierNumber(1), TTL: RealTTL}
	b, err := svc.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Release(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Create(ctx, req); !errors.Is(err, binding.ErrPoolExhausted) {
		t.Fatalf("create during quarantine: %v, want ErrPoolExhausted", err)
	}
	if err := EndQuarantine(ctx, rdb, b); err != nil {
		t.Fatal(err)
	}
	if r, _ := svc.Resolve(ctx, b.X, b.A); r.Reason != binding.ReasonNoBinding {
		t.Fatalf("route after quarantine = %+v, want no binding", r)
	}
	if _, err := svc.Get(ctx, b.ID); !errors.Is(err, binding.ErrNotFound) {
		t.Fatalf("binding after quarantine: %v, want ErrNotFound", err)
	}
	if _, err := svc.Create(ctx, req); err != nil {
		t.Fatalf("create after quarantine: %v", err)
	}
}

func TestGenerateIsDeterministic(t *testing.T) {
	a, err := Generate(small)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Generate(small)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed, different traces")
	}
	c := small
	c.Seed++
	if d, _ := Generate(c); reflect.DeepEqual(a, d) {
		t.Fatal("different seeds, same trace")
	}
	for i, o := range a {
		if o.ID != i || o.Close <= o.Open || o.Open < 0 || o.Open >= small.Span || (i > 0 && o.Open < a[i-1].Open) {
			t.Fatalf("order %d = %+v", i, o)
		}
	}
}

func TestAnalyze(t *testing.T) {
	h := func(n int) time.Duration { return time.Duration(n) * time.Hour }
	orders := []Order{
		{ID: 0, Buyer: 0, Courier: 0, Open: h(0), Close: h(2)},
		{ID: 1, Buyer: 1, Courier: 0, Open: h(1), Close: h(3)},
		// Opens when order 0 completes: not concurrent with it.
		{ID: 2, Buyer: 2, Courier: 0, Open: h(2), Close: h(4)},
		{ID: 3, Buyer: 3, Courier: 1, Open: h(2), Close: h(5)},
	}
	got := Analyze(orders, 0)
	want := Bounds{DeltaActive: 2, DeltaHeld: 2, DeltaParty: "courier 0", Naive: 3, NaiveHeld: 3}
	if got != want {
		t.Errorf("no quarantine: %+v, want %+v", got, want)
	}
	// With a 1h quarantine, order 0's pairs are held until 3h: courier 0
	// holds three pairs at 2h.
	got = Analyze(orders, h(1))
	want = Bounds{DeltaActive: 2, DeltaHeld: 3, DeltaParty: "courier 0", Naive: 3, NaiveHeld: 4}
	if got != want {
		t.Errorf("1h quarantine: %+v, want %+v", got, want)
	}
}

// TestAXEPool: giving every party of a trace an AXE extension needs
// exactly ceil(parties / extensions per number) numbers, and one fewer
// is not enough.
func TestAXEPool(t *testing.T) {
	ctx := context.Background()
	tc := TraceConfig{Seed: 2, Buyers: 40, Couriers: 3, MinLoad: 2, MaxLoad: 3, Span: 30 * time.Minute, OrderTime: 20 * time.Minute, Quarantine: 10 * time.Minute}
	sim := NewSimulator(redistest.Client(t))
	res, err := sim.SimulateAXE(ctx, tc, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Bound != (res.Parties+8)/9 || res.Smallest != res.Bound {
		t.Fatalf("AXE result %+v; want the smallest pool at the bound ceil(%d/9)", res, res.Parties)
	}
	orders, _ := Generate(tc)
	run, err := sim.ReplayAXE(ctx, Parties(orders), 1, res.Bound-1, false)
	if err != nil {
		t.Fatal(err)
	}
	if run.OK() || run.Created != (res.Bound-1)*9 {
		t.Fatalf("one number fewer: %+v; want %d created, the rest exhausted", run, (res.Bound-1)*9)
	}
}
