// Command callload is the call-control load benchmark: one call.App holds
// many concurrent bridged calls against the ARI simulator and a real Redis,
// and callload reports what each live call costs the app and how fast calls
// are routed.
//
//	go run ./cmd/callload -calls 2000
//
// Targets (issue "Calls"): at least 2,000 concurrent calls held by one app
// instance, less than 16 KiB of app memory per live call, and a p99 routing
// decision (StasisStart to the outbound originate) under 2 ms with Redis on
// loopback. With -check (the default) a missed target exits 1.
//
// # Set-up
//
//   - Redis: -redis URL, or a throwaway redis-server on a free loopback port
//     (no persistence), killed at exit. On a Redis of yours callload adds
//     -pool virtual numbers +86170NNNNNNNN, bindings that expire after an
//     hour and one call record per call.
//   - The simulator (package arisim) runs in a child process, the same
//     binary started again, so that its memory and goroutines are not
//     counted as the app's; callload drives it over its /_sim/ control
//     endpoints: callees answer after -answer-after and never hang up.
//   - In this process: the real ari.Client, call.App (with its Prometheus
//     metrics on a private registry) and binding.Service, wired as
//     `privnum serve` wires them, and -calls bindings with distinct parties
//     created beforehand.
//
// # Measurement
//
// A warm-up (-warmup calls, made, bridged and hung up) fills connection
// pools and caches, and the Redis client's pool is filled to its size.
// Then, with the idle HTTP connections callload can reach closed and after
// runtime.GC, the baseline is read; -calls inbound calls A_i → X_i are
// injected with -concurrency workers, paced to -rate calls per second
// (default 100: 2,000 calls in 20 s, more than a busy hour brings; -rate 0
// injects as fast as the workers go, which on a small machine measures
// overload rather than routing). Once the app holds every call and the
// simulator shows every one bridged to its bound party, the same reading
// is taken again:
//
//   - memory per live call: the growth of HeapAlloc (plus StackInuse's if
//     it grew) over the baseline, divided by the calls; HeapInuse is shown
//     too;
//   - goroutines per live call (HTTP keep-alive connections are counted
//     apart: the ari client's transport keeps some idle ones for a while);
//   - routing latency from the app's own privnum_routing_seconds histogram
//     (only the observations of the measured calls): the exact share of
//     calls routed within 2 ms, a bucket bound, and p50/p99 interpolated
//     within buckets as histogram_quantile does;
//   - end-to-end latency from the simulator: inbound channel created to
//     outbound channel created (event delivery, routing, Redis, the
//     originate request), exact p50/p99 over every call;
//   - for diagnosis: the app's Resolve calls timed exactly (a wrapper of
//     the Router), the TCP connections the ARI client opened, the ARI
//     events per call, the collections, and the CPU time per call of this
//     process, the simulator and redis-server during the ramp.
//
// Then every call is hung up from the far end (callers and callees
// alternately) and callload checks that the app holds no call, the
// simulator no channel or bridge, and the goroutines are back to the
// baseline. Go maps keep the capacity they grew to, so the heap need not
// come all the way back; with -leak-cycle (the default) the same calls are
// made and hung up once more, and that second cycle must leave the heap
// where the first left it.
//
// # Soak
//
// -soak DURATION runs the soak instead (soak.go, results in BENCHMARKS.md):
// -concurrency callers (500 in this mode) each call their bound party,
// hold the call about -hold and hang up (caller or callee in turn) and call
// again, for DURATION; beside them bindings between fresh parties are
// created at -churn per second and released after 1-5 s, and callbacks
// (mapped codes) and verification flash calls are queued at -callbacks and
// -flashes per second and placed through the dial queue, as serve places
// them. Everything the load writes to Redis lives at most 90 s (short
// TTLs, quarantine and windows, unlike a real deployment) so that the run
// can see it go. Every -sample it reads the heap (after a GC), goroutines,
// open files, the Redis pool, DBSIZE and the counters. PASS needs: the
// least-squares line through the heap and goroutine samples of the last
// -trend-window (after -soak-warmup) rising less than -max-growth of their
// mean; no call misrouted or lost, and every party shown only its virtual
// number (the simulator's identities); nothing left live; and the keys,
// once the load stopped, back to the baseline (plus the three capped
// logs) within -drain. It prints the samples as CSV and exits 1 on FAIL.
//
// -memprofile writes heap profiles with every call up, at the baseline
// (.base), after the teardown (.after) and after the second cycle
// (.after2), to compare with pprof -diff_base; -cpuprofile profiles the ramp. -json prints the report as JSON.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"
)

func main() {
	if os.Getenv(simEnv) != "" {
		os.Exit(simChild())
	}
	os.Exit(realMain(os.Args[1:]))
}

func realMain(args []string) int {
	fs := flag.NewFlagSet("callload", flag.ContinueOnError)
	cfg := defaultConfig()
	fs.IntVar(&cfg.Calls, "calls", cfg.Calls, "concurrent calls to hold")
	fs.IntVar(&cfg.Warmup, "warmup", -1, "calls made and hung up before the baseline (-1: min(calls, 200))")
	fs.IntVar(&cfg.Concurrency, "concurrency", cfg.Concurrency, "workers injecting and hanging up calls")
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "inbound calls per second (0: as fast as the workers go, which on a small machine measures overload, not routing)")
	fs.StringVar(&cfg.RedisURL, "redis", "", "Redis URL (empty: start a throwaway redis-server on loopback)")
	fs.IntVar(&cfg.PoolSize, "pool", cfg.PoolSize, "virtual numbers in the pool")
	fs.DurationVar(&cfg.AnswerAfter, "answer-after", cfg.AnswerAfter, "how long callees ring before they answer")
	fs.DurationVar(&cfg.MaxDuration, "max-duration", cfg.MaxDuration, "bindings' maximum call duration (each bridged call then holds a timer; 0: none)")
	fs.IntVar(&cfg.ARIIdlePerHost, "ari-idle-conns", 0, "MaxIdleConnsPerHost of the ARI client's HTTP transport (0: the ari client's default HTTP client, as privnum serve runs)")
	fs.BoolVar(&cfg.LeakCycle, "leak-cycle", cfg.LeakCycle, "after the teardown, make the same calls again and check that the heap did not grow")
	fs.DurationVar(&cfg.PhaseTimeout, "phase-timeout", 0, "how long each phase may take (0: 30s + 5ms per call)")
	fs.BoolVar(&cfg.Check, "check", true, "exit 1 when a target is missed")
	fs.IntVar(&cfg.Targets.MinCalls, "min-calls", cfg.Targets.MinCalls, "target: concurrent calls held")
	fs.Float64Var(&cfg.Targets.MaxKiBPerCall, "max-kib", cfg.Targets.MaxKiBPerCall, "target: app memory per live call, KiB")
	fs.DurationVar(&cfg.Targets.RoutingP99, "max-routing-p99", cfg.Targets.RoutingP99, "target: p99 routing decision (exact when it is a histogram bucket bound)")
	fs.StringVar(&cfg.MemProfile, "memprofile", "", "write a heap profile with every call up to this file (and FILE.base, FILE.after: before the calls, after the teardown)")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write a CPU profile of the ramp to this file")
	sc := defaultSoakConfig()
	fs.DurationVar(&sc.Duration, "soak", 0, "run the soak for this long instead (e.g. 30m): -concurrency calls held with churn, sampled every -sample (with -memprofile FILE: a heap profile FILE.<minute> at each sample); see BENCHMARKS.md")
	fs.DurationVar(&sc.Sample, "sample", sc.Sample, "soak: interval between samples")
	fs.DurationVar(&sc.Hold, "hold", sc.Hold, "soak: mean time a call is held before it is hung up and placed again")
	fs.Float64Var(&sc.Churn, "churn", sc.Churn, "soak: bindings created (and released after 1-5 s) per second")
	fs.Float64Var(&sc.Callbacks, "callbacks", sc.Callbacks, "soak: callbacks queued per second")
	fs.Float64Var(&sc.Flashes, "flashes", sc.Flashes, "soak: verification flash calls queued per second")
	fs.DurationVar(&sc.Window, "trend-window", sc.Window, "soak: the trend test reads the samples of this last span of the run")
	fs.DurationVar(&sc.Warmup, "soak-warmup", sc.Warmup, "soak: samples before this are never part of the trend test")
	fs.Float64Var(&sc.MaxGrowth, "max-growth", sc.MaxGrowth, "soak: largest growth of heap or goroutines over the trend window, relative to their mean")
	fs.DurationVar(&sc.Drain, "drain", sc.Drain, "soak: how long to wait after the load for the Redis keys to come back to the baseline")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	verbose := fs.Bool("v", false, "print the app's warnings as they happen")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "callload: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if cfg.Calls <= 0 || cfg.Concurrency <= 0 || cfg.PoolSize <= 0 || cfg.Rate < 0 {
		fmt.Fprintln(os.Stderr, "callload: -calls, -concurrency and -pool must be positive, -rate not negative")
		return 2
	}
	if sc.Duration > 0 {
		return soakMain(fs, cfg, sc, *verbose)
	}
	cfg.Progress = os.Stderr
	if cfg.MemProfile != "" {
		// Fine-grained samples: the differences looked for are a few
		// hundred bytes per call. (Slows allocation; latencies of such a
		// run are not representative.)
		runtime.MemProfileRate = 64
	}
	if *verbose {
		cfg.AppLog = os.Stderr
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	rep, err := Run(ctx, cfg)
	if rep != nil {
		if *asJSON {
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			enc.Encode(rep)
		} else {
			rep.Print(os.Stdout)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "callload:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "callload: done in %s\n", time.Since(start).Round(time.Millisecond))
	if cfg.Check && !rep.Pass() {
		return 1
	}
	return 0
}

// soakMain runs -soak: -concurrency is then the number of calls held (500
// unless given), and -redis and -pool apply as to the benchmark.
func soakMain(fs *flag.FlagSet, cfg Config, sc SoakConfig, verbose bool) int {
	sc.RedisURL = cfg.RedisURL
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "concurrency":
			sc.Calls = cfg.Concurrency
		case "pool":
			sc.PoolSize = cfg.PoolSize
		}
	})
	if sc.Sample <= 0 || sc.Hold <= 0 || sc.Churn < 0 || sc.Callbacks < 0 || sc.Flashes < 0 || sc.MaxGrowth < 0 {
		fmt.Fprintln(os.Stderr, "callload: -sample and -hold must be positive; -churn, -callbacks, -flashes and -max-growth not negative")
		return 2
	}
	sc.MemProfile = cfg.MemProfile
	sc.Progress = os.Stderr
	if verbose {
		sc.AppLog = os.Stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := Soak(ctx, sc)
	if rep != nil {
		rep.Print(os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "callload:", err)
		return 1
	}
	if !rep.Pass() {
		return 1
	}
	return 0
}
