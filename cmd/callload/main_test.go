package main

import (
	"bytes"
	"context"
	"math"
	"os"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	// The benchmark starts the simulator by running its own executable,
	// here the test binary, again.
	if os.Getenv(simEnv) != "" {
		os.Exit(simChild())
	}
	os.Exit(m.Run())
}

// TestSmallLoad runs the benchmark's code path on a few calls: every call
// must be held and bridged to its bound party, measured, and torn down
// without leaving calls, channels or goroutines behind. Speed and memory
// are the command's business, not the test's.
func TestSmallLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server and the simulator")
	}
	const calls = 100
	cfg := defaultConfig()
	cfg.Calls, cfg.Warmup, cfg.Concurrency, cfg.Rate = calls, calls, 8, 0
	cfg.Targets.MinCalls = calls
	cfg.RedisURL = os.Getenv("PRIVNUM_TEST_REDIS_URL")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Injected != calls || rep.Held != calls || rep.Bridged != calls || rep.Misrouted != 0 {
		t.Errorf("injected %d, held %d, bridged %d, misrouted %d; want %d calls bridged to their bound parties",
			rep.Injected, rep.Held, rep.Bridged, rep.Misrouted, calls)
	}
	if rep.Routing.Count != calls || rep.E2E.Count != calls {
		t.Errorf("latencies of %d (app) and %d (simulator) calls, want %d", rep.Routing.Count, rep.E2E.Count, calls)
	}
	if rep.Routing.FracLE < 0 || rep.Routing.FracLE > 1 || rep.E2E.P50 <= 0 || rep.E2E.P99 < rep.E2E.P50 {
		t.Errorf("implausible latencies: routing %+v, end-to-end %+v", rep.Routing, rep.E2E)
	}
	if rep.Loaded.HeapAlloc == 0 || rep.Base.HeapAlloc == 0 {
		t.Errorf("no memory reading: %+v %+v", rep.Base, rep.Loaded)
	}
	if rep.LiveAfter != 0 || rep.SimChannelsAfter != 0 || rep.SimBridgesAfter != 0 {
		t.Errorf("left behind: %d calls, %d channels, %d bridges", rep.LiveAfter, rep.SimChannelsAfter, rep.SimBridgesAfter)
	}
	if rep.After.Goroutines > rep.Base.Goroutines+goroutineSlack || rep.After2.Goroutines > rep.Base.Goroutines+goroutineSlack {
		t.Errorf("goroutines %d after teardown, %d after a second cycle, %d before the calls",
			rep.After.Goroutines, rep.After2.Goroutines, rep.Base.Goroutines)
	}
	if len(rep.Errors) > 0 || rep.AppWarnings > 0 {
		t.Errorf("errors %q, app warnings %d %q", rep.Errors, rep.AppWarnings, rep.AppWarningExamples)
	}
	var out bytes.Buffer
	rep.Print(&out)
	for _, want := range []string{"concurrent calls held", "memory per live call", "goroutines per live call",
		"share ≤ 2.000 ms", "p50 / p99", "teardown", "result: "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	t.Log(out.String())
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{{"-calls", "0"}, {"-concurrency", "-1"}, {"-nope"}, {"extra"}} {
		if code := realMain(args); code != 2 {
			t.Errorf("realMain(%q) = %d, want 2", args, code)
		}
	}
}

func TestHistogram(t *testing.T) {
	h := Histogram{
		Bounds: []float64{.0005, .001, .002, .005},
		Cum:    []uint64{10, 50, 99, 100},
		Count:  100, Sum: 0.1,
	}
	h.summarize(2 * time.Millisecond)
	if h.FracLE != 0.99 {
		t.Errorf("share ≤ 2ms = %v, want 0.99", h.FracLE)
	}
	// The 50th observation is the last of (0.5ms, 1ms].
	if math.Abs(h.P50-0.001) > 1e-12 {
		t.Errorf("p50 = %v, want 0.001", h.P50)
	}
	// The 99th is the last of (1ms, 2ms].
	if math.Abs(h.P99-0.002) > 1e-12 {
		t.Errorf("p99 = %v, want 0.002", h.P99)
	}
	if q := h.quantile(0.3); math.Abs(q-0.00075) > 1e-12 {
		t.Errorf("p30 = %v, want 0.00075 (interpolated)", q)
	}
	before := Histogram{Bounds: h.Bounds, Cum: []uint64{10, 10, 10, 10}, Count: 10}
	if d := h.minus(before); d.Count != 90 || d.Cum[0] != 0 || d.Cum[3] != 90 {
		t.Errorf("minus = %+v", d)
	}
	h.summarize(3 * time.Millisecond)
	if h.FracLE != -1 {
		t.Errorf("share under a bound that is no bucket bound = %v, want -1", h.FracLE)
	}

	e := exact([]time.Duration{5, 1, 4, 2, 3})
	if e.Count != 5 || e.P50 != 3 || e.P99 != 5 || e.Max != 5 {
		t.Errorf("exact = %+v", e)
	}
}
