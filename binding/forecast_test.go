package binding_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/internal/pooltrace"
	"github.com/privnum/privnum/internal/redistest"
	"github.com/privnum/privnum/pool"
)

// TestForecastFollowsTrace replays a poolsim trace through the binding
// service into real Redis and reads the forecast after every event: it must
// equal the most pairs any party holds at that instant (counted from the
// trace), and its largest value over the replay must be poolsim's Δ for the
// same trace.
func TestForecastFollowsTrace(t *testing.T) {
	ctx := context.Background()
	tc := pooltrace.TraceConfig{
		Seed: 3, Buyers: 60, Couriers: 3, MinLoad: 4, MaxLoad: 7,
		Span: 40 * time.Minute, OrderTime: 20 * time.Minute, Quarantine: 10 * time.Minute,
	}
	orders, err := pooltrace.Generate(tc)
	if err != nil {
		t.Fatal(err)
	}
	bounds := pooltrace.Analyze(orders, tc.Quarantine)
	size := bounds.NaiveHeld // every binding finds a number
	if bounds.DeltaHeld < 5 {
		t.Fatalf("Δ = %d: the trace should have a party holding several pairs", bounds.DeltaHeld)
	}

	held := map[string]int{}
	parties := func(o pooltrace.Order) []string {
		return []string{pooltrace.BuyerNumber(o.Buyer), pooltrace.CourierNumber(o.Courier)}
	}
	most := 0
	checked := 0
	sim := pooltrace.NewSimulator(redistest.Client(t))
	sim.After = func(ctx context.Context, svc *binding.Service, e pooltrace.Event) error {
		switch e.Kind {
		case pooltrace.Create:
			for _, p := range parties(orders[e.Order]) {
				held[p]++
			}
		case pooltrace.Free:
			for _, p := range parties(orders[e.Order]) {
				held[p]--
			}
		case pooltrace.Release:
			return nil // released pairs stay held: nothing changes
		}
		want, busiest := 0, 0
		for _, n := range held {
			want = max(want, n)
			if n > 0 {
				busiest++
			}
		}
		f, err := svc.Forecast(ctx)
		if err != nil {
			return err
		}
		checked++
		if f.Total.Needed != want || f.Total.Pool != size || f.Total.Headroom != size-want || f.Parties != busiest {
			return fmt.Errorf("after %v of order %d at %s: forecast %+v (%d parties), want needed %d of pool %d (%d parties)",
				e.Kind, e.Order, e.At, f.Total, f.Parties, want, size, busiest)
		}
		if len(f.Areas) != 1 || f.Areas[0] != (binding.AreaForecast{Pool: size, Needed: want, Headroom: size - want, Busiest: f.Total.Busiest}) {
			return fmt.Errorf("areas %+v, want the untagged pool only, as the total", f.Areas)
		}
		most = max(most, f.Total.Needed)
		return nil
	}
	run, err := sim.Replay(ctx, orders, tc.Quarantine, size, false)
	if err != nil {
		t.Fatal(err)
	}
	if !run.OK() {
		t.Fatalf("replay: %v", run)
	}
	if most != bounds.DeltaHeld {
		t.Errorf("largest forecast over the trace = %d, poolsim's Δ = %d", most, bounds.DeltaHeld)
	}
	t.Logf("%d orders, %d forecasts, Δ %d, pool %d", len(orders), checked, bounds.DeltaHeld, size)
}

// TestForecastByArea checks the per-area figures: each area's busiest party,
// quarantined pairs counted, retired numbers left out, numbers masked.
func TestForecastByArea(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, time.Hour,
		pool.Entry{Number: "17000000001", Area: "sh"}, pool.Entry{Number: "17000000002", Area: "sh"},
		pool.Entry{Number: "17000000003", Area: "sh"}, pool.Entry{Number: "17000000004", Area: "bj"},
		pool.Entry{Number: "17000000005", Area: "bj"}, pool.Entry{Number: "17000000006"})
	f, err := e.svc.Forecast(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if f.Parties != 0 || f.Total != (binding.AreaForecast{Pool: 6, Headroom: 6}) || len(f.Areas) != 3 {
		t.Fatalf("empty: %+v", f)
	}

	bind := func(a, b, x string) binding.Binding {
		t.Helper()
		bd, err := e.svc.Create(ctx, binding.Request{A: a, B: b, X: x, TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return bd
	}
	courier := "13900000009"
	bind("13800000001", courier, "17000000001")
	released := bind("13800000002", courier, "17000000002")
	if _, err := e.svc.Release(ctx, released.ID); err != nil {
		t.Fatal(err)
	}
	bind("13800000003", courier, "17000000004")
	bind("13800000004", "13800000005", "17000000004") // bj: one each
	bind("13800000004", "13800000006", "17000000005") // 13800000004 holds both bj numbers
	bind("13800000007", courier, "17000000006")
	if err := e.pool.Retire(ctx, "17000000003"); err != nil {
		t.Fatal(err)
	}

	f, err = e.svc.Forecast(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []binding.AreaForecast{
		{Area: "", Pool: 1, Needed: 1, Headroom: 0, Busiest: "+86138****0007"},
		{Area: "bj", Pool: 2, Needed: 2, Headroom: 0, Busiest: "+86138****0004"},
		// The courier's released pair on ...002 is quarantined: still held.
		{Area: "sh", Pool: 2, Needed: 2, Headroom: 0, Busiest: "+86139****0009"},
	}
	if len(f.Areas) != len(want) {
		t.Fatalf("areas %+v", f.Areas)
	}
	for i := range want {
		if f.Areas[i] != want[i] {
			t.Errorf("area %q: %+v, want %+v", want[i].Area, f.Areas[i], want[i])
		}
	}
	// The courier holds 001, 002 (quarantined), 004 and 006 of 5 active numbers.
	if f.Total != (binding.AreaForecast{Pool: 5, Needed: 4, Headroom: 1, Busiest: "+86139****0009"}) || f.Parties != 8 {
		t.Errorf("total %+v, %d parties", f.Total, f.Parties)
	}
}

// TestForecastLeavesOutExclusiveNumbers: the forecast is AXB's pool:
// numbers reserved for another mode or held by an AXN binding are not in
// it.
func TestForecastLeavesOutExclusiveNumbers(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, time.Hour, pool.Entry{Number: "17000000001"}, pool.Entry{Number: "17000000002", Mode: "axn"},
		pool.Entry{Number: "17000000003"}, pool.Entry{Number: "17000000004", Mode: "axb"})
	if _, err := e.svc.Create(ctx, binding.Request{Mode: binding.AXN, A: "13800000001", X: "17000000003", TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	f, err := e.svc.Forecast(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if f.Total.Pool != 2 || f.Total.Headroom != 2 {
		t.Fatalf("forecast %+v; want the two numbers axb may use", f.Total)
	}
}
