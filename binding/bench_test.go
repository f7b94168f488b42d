package binding

// Throughput benchmarks for Create and Resolve with parallel clients, the
// redis-benchmark baseline they are compared against, and tests that pin
// the number of Redis round trips each operation makes.
//
// One command prints all of it side by side (see BENCHMARKS.md):
//
//	go test -run '^$' -bench . -benchtime 3s ./binding/
//
// This file is in package binding (not binding_test) so that the baseline
// can load the very createScript the service runs.

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/privnum/privnum/e164"
	"github.com/privnum/privnum/internal/redistest"
	"github.com/privnum/privnum/internal/store"
	"github.com/privnum/privnum/pool"
)

const (
	// benchClients is how many clients hit Redis at once, both in the Go
	// benchmarks (goroutines, each with its own connection) and in the
	// redis-benchmark baseline (-c).
	benchClients = 64
	// benchPoolSize is the number of virtual numbers in the benchmark pool.
	benchPoolSize = 64
)

var benchParser = e164.Parser{Region: "CN"}

func benchX(i int) string { return fmt.Sprintf("+861700000%04d", i) }

// benchParties returns the i-th pair of distinct parties. Every pair is new,
// so creates never exhaust the pool however long the benchmark runs.
func benchParties(i int64) (a, b string) {
	return fmt.Sprintf("+86138%08d", i%100_000_000), fmt.Sprintf("+86139%08d", i%100_000_000)
}

// benchService starts a throwaway Redis with a pool of n numbers and
// returns a Service on a client with a connection for every parallel
// client, plus the server it runs on.
func benchService(tb testing.TB, n int) (*Service, *redis.Client, redistest.Server) {
	tb.Helper()
	srv := redistest.Start(tb)
	o, err := redis.ParseURL(srv.URL)
	if err != nil {
		tb.Fatal(err)
	}
	o.PoolSize = benchClients + 8
	o.MinIdleConns = benchClients
	rdb := redis.NewClient(o)
	tb.Cleanup(func() { rdb.Close() })
	p := pool.New(rdb, benchParser)
	entries := make([]pool.Entry, n)
	for i := range entries {
		entries[i] = pool.Entry{Number: benchX(i)}
	}
	if _, err := p.Add(context.Background(), entries); err != nil {
		tb.Fatal(err)
	}
	return New(rdb, p, benchParser, Config{Quarantine: time.Hour}), rdb, srv
}

// setBenchParallelism makes RunParallel use benchClients goroutines.
func setBenchParallelism(b *testing.B) {
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((benchClients + procs - 1) / procs)
}

func reportRate(b *testing.B, unit string) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, unit)
	}
}

// BenchmarkCreate measures Service.Create throughput with benchClients
// parallel clients, each create binding two parties never seen before, on
// a pool of benchPoolSize numbers and on a large pool (the allocator ranks
// every free number of the pool on each create).
func BenchmarkCreate(b *testing.B) {
	for _, n := range []int{benchPoolSize, 4096} {
		b.Run(fmt.Sprintf("pool=%d", n), func(b *testing.B) { benchmarkCreate(b, n, false) })
	}
	b.Run(fmt.Sprintf("pool=%d/autopipeline", benchPoolSize), func(b *testing.B) { benchmarkCreate(b, benchPoolSize, true) })
}

func benchmarkCreate(b *testing.B, poolSize int, autoPipeline bool) {
	svc, rdb, _ := benchService(b, poolSize)
	if autoPipeline {
		svc = New(rdb, svc.pool, benchParser, Config{Quarantine: time.Hour, AutoPipeline: true})
	}
	ctx := context.Background()
	// Warm the script cache and the pool snapshot outside the timer.
	if _, err := svc.Create(ctx, Request{A: "+8613700000001", B: "+8613700000002", TTL: time.Hour}); err != nil {
		b.Fatal(err)
	}
	var next atomic.Int64
	setBenchParallelism(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			a, c := benchParties(next.Add(1))
			if _, err := svc.Create(ctx, Request{A: a, B: c, TTL: time.Hour}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	reportRate(b, "creates/s")
}

// BenchmarkResolve measures Service.Resolve throughput with benchClients
// parallel clients over a set of live bindings.
func BenchmarkResolve(b *testing.B) {
	svc, _, _ := benchService(b, benchPoolSize)
	ctx := context.Background()
	type call struct{ x, caller, want string }
	const bindings = 4096
	calls := make([]call, 0, 2*bindings)
	for i := range int64(bindings) {
		a, c := benchParties(i)
		bd, err := svc.Create(ctx, Request{A: a, B: c, TTL: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		calls = append(calls, call{bd.X, a, c}, call{bd.X, c, a})
	}
	var next atomic.Int64
	setBenchParallelism(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c := calls[next.Add(1)%int64(len(calls))]
			r, err := svc.Resolve(ctx, c.x, c.caller)
			if err != nil || r.Target != c.want {
				b.Errorf("Resolve(%s, %s) = %+v, %v; want %s", c.x, c.caller, r, err, c.want)
				return
			}
		}
	})
	b.StopTimer()
	reportRate(b, "resolves/s")
}

// BenchmarkRedisBenchmarkBaseline runs redis-benchmark on the same machine
// with the same number of clients (no pipelining), b.N requests per run:
//
//   - create_script: EVALSHA of the service's own createScript on one
//     active pool number with fresh random route and binding keys on every
//     call (__rand_int__), so each call takes the full success path and
//     writes three hashes and a sorted-set entry like a real create;
//   - hgetall_route: HGETALL of an existing route hash, the one command a
//     Resolve sends.
//
// It reports redis-benchmark's own requests per second as rps. It is
// skipped when redis-benchmark is not installed.
func BenchmarkRedisBenchmarkBaseline(b *testing.B) {
	bin, err := exec.LookPath("redis-benchmark")
	if err != nil {
		b.Skip("redis-benchmark not installed")
	}
	svc, rdb, srv := benchService(b, 1)
	ctx := context.Background()
	host, port, _ := strings.Cut(srv.Addr, ":")
	x := benchX(0)

	// SCRIPT LOAD of the service's script source.
	sha, err := createScript.Load(ctx, rdb).Result()
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	exp := now.Add(time.Hour)
	createArgs := []string{
		"EVALSHA", sha, "5",
		store.NumberKey(x),
		store.RouteKey(x, "+86__rand_int__"),
		store.RouteKey(x, "+86__rand_int__"),
		store.BindingKey(x, "8617000000000.__rand_int__"),
		store.ActiveKey(x),
		ms(now), ms(exp), strconv.FormatInt(time.Hour.Milliseconds(), 10),
		"8617000000000.__rand_int__", "+86__rand_int__", "+86__rand_int__", x,
		"1", "1", "0", "0", "0", string(Both), "", "",
	}
	// Check that the command as written takes the success path, with
	// every __rand_int__ drawn differently as redis-benchmark does.
	probe := make([]any, len(createArgs))
	for i, a := range createArgs {
		probe[i] = strings.ReplaceAll(a, "__rand_int__", fmt.Sprintf("%012d", i))
	}
	if got, err := rdb.Do(ctx, probe...).Slice(); err != nil || len(got) != 2 || got[0] != "ok" {
		b.Fatalf("baseline script probe = %v, %v; want [ok n]", got, err)
	}
	b.Run("create_script", func(b *testing.B) {
		before := rdb.ZCard(ctx, store.ActiveKey(x)).Val()
		runRedisBenchmark(b, bin, host, port, createArgs)
		// Nearly every call must have taken the success path (one new
		// active entry each); random-key collisions are tolerated (under
		// load runs have seen up to 14%).
		if added := rdb.ZCard(ctx, store.ActiveKey(x)).Val() - before; float64(added) < 0.8*float64(b.N) {
			b.Fatalf("only %d of %d baseline calls created a binding: the baseline is not measuring the success path", added, b.N)
		}
	})

	bd, err := svc.Create(ctx, Request{A: "+8613800000001", B: "+8613900000001", TTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("hgetall_route", func(b *testing.B) {
		runRedisBenchmark(b, bin, host, port, []string{"HGETALL", store.RouteKey(bd.X, bd.A)})
	})
}

// runRedisBenchmark runs command b.N times with benchClients connections.
// Each __rand_int__ in it becomes a fresh 12-digit number below 10^9 on
// every call (-r is parsed as a C int: a larger value overflows and every
// call then reuses the same keys).
func runRedisBenchmark(b *testing.B, bin, host, port string, command []string) {
	args := append([]string{"-h", host, "-p", port, "-c", strconv.Itoa(benchClients),
		"-n", strconv.Itoa(b.N), "-r", "1000000000", "--csv"}, command...)
	var out, errOut bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	b.ResetTimer()
	err := cmd.Run()
	b.StopTimer()
	if err != nil {
		b.Fatalf("redis-benchmark: %v\n%s%s", err, out.String(), errOut.String())
	}
	rows, err := csv.NewReader(&out).ReadAll()
	if err != nil || len(rows) < 2 || len(rows[1]) < 2 {
		b.Fatalf("redis-benchmark output %q: %v", out.String(), err)
	}
	rps, err := strconv.ParseFloat(rows[1][1], 64)
	if err != nil {
		b.Fatalf("redis-benchmark rps %q: %v", rows[1][1], err)
	}
	b.ReportMetric(rps, "rps")
}

// roundTrips records every command round trip a client makes: a single
// command is one, a pipeline is one whatever its length.
type roundTrips struct {
	mu    sync.Mutex
	trips [][]string
}

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.add([]redis.Cmder{cmd})
		return next(ctx, cmd)
	}
}

func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		r.add(cmds)
		return next(ctx, cmds)
	}
}

func (r *roundTrips) add(cmds []redis.Cmder) {
	names := make([]string, len(cmds))
	for i, c := range cmds {
		names[i] = c.Name()
	}
	r.mu.Lock()
	r.trips = append(r.trips, names)
	r.mu.Unlock()
}

// count runs f and returns the round trips it made.
func (r *roundTrips) count(f func()) [][]string {
	r.mu.Lock()
	r.trips = nil
	r.mu.Unlock()
	f()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.trips
}

// roundTripEnv is a Service with a pool of n numbers on a single-connection
// client whose round trips are recorded. The connection is opened (and its
// handshake recorded) before it is returned, so counts start clean. It is
// a single server in every mode: a round trip to a cluster is one per node
// touched, which these pins do not describe.
func roundTripEnv(t *testing.T, n int) (*Service, *roundTrips) {
	t.Helper()
	srv := redistest.StartSingle(t)
	o, err := redis.ParseURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	o.PoolSize = 1
	rdb := redis.NewClient(o)
	t.Cleanup(func() { rdb.Close() })
	rt := &roundTrips{}
	rdb.AddHook(rt)
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	p := pool.New(rdb, benchParser)
	entries := make([]pool.Entry, n)
	for i := range entries {
		entries[i] = pool.Entry{Number: benchX(i)}
	}
	if _, err := p.Add(context.Background(), entries); err != nil {
		t.Fatal(err)
	}
	return New(rdb, p, benchParser, Config{Quarantine: time.Hour}), rt
}

// TestResolveIsOneRoundTrip pins Resolve at a single command: HGETALL of
// the caller's route on X, whether the call connects or is rejected.
func TestResolveIsOneRoundTrip(t *testing.T) {
	ctx := context.Background()
	svc, rt := roundTripEnv(t, 4)
	bd, err := svc.Create(ctx, Request{A: "+8613800000001", B: "+8613900000001", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ caller, want string }{
		{bd.A, bd.B},
		{bd.B, bd.A},
		{"+8613700000009", ""},
	} {
		var r Route
		trips := rt.count(func() {
			if r, err = svc.Resolve(ctx, bd.X, tc.caller); err != nil {
				t.Fatal(err)
			}
		})
		if r.Target != tc.want {
			t.Fatalf("Resolve(%s, %s) = %+v; want target %q", bd.X, tc.caller, r, tc.want)
		}
		if len(trips) != 1 || len(trips[0]) != 1 || trips[0][0] != "hgetall" {
			t.Errorf("Resolve(%s, %s) made round trips %v; want exactly [[hgetall]]", bd.X, tc.caller, trips)
		}
	}
}

// TestCreateRoundTrips pins Create's round trips. Cold (no pool cache, or a
// cache not confirmed within speculateFor): one pipeline reading the pool
// version and both parties' index, one EVALSHA of the create script, one
// pipeline writing both parties' index. Warm: the allocator guesses from
// what it knows and skips the index read.
func TestCreateRoundTrips(t *testing.T) {
	ctx := context.Background()
	svc, rt := roundTripEnv(t, 4)
	// The first create loads the pool snapshot and the script; later
	// creates find both cached.
	if _, err := svc.Create(ctx, Request{A: "+8613800000001", B: "+8613900000001", TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"evalsha"},
		{"zadd", "zremrangebyscore", "expire", "expire", "zadd", "zremrangebyscore", "expire", "expire"},
	}
	for i := range 3 {
		var err error
		trips := rt.count(func() {
			// A shares a party with the warm-up binding, so the party
			// index narrows the search: still one script run.
			_, err = svc.Create(ctx, Request{A: "+8613800000001", B: fmt.Sprintf("+86139000001%02d", i), TTL: time.Hour})
		})
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(trips) != fmt.Sprint(want) {
			t.Errorf("create %d made %d round trips %v; want %d: %v", i, len(trips), trips, len(want), want)
		}
	}
	// With the pool full for A, the allocator answers from the party index
	// alone: one round trip, no script.
	var err error
	trips := rt.count(func() {
		_, err = svc.Create(ctx, Request{A: "+8613800000001", B: "+8613900000999", TTL: time.Hour})
	})
	if !errors.Is(err, ErrPoolExhausted) {
		t.Fatalf("fifth create for A on 4 numbers: %v, want ErrPoolExhausted", err)
	}
	if len(trips) != 1 {
		t.Errorf("exhausted create made round trips %v; want 1", trips)
	}
	// A cold service (another process) reads the index first.
	cold := New(svc.rdb, svc.pool, svc.parser, svc.cfg)
	trips = rt.count(func() {
		_, err = cold.Create(ctx, Request{A: "+8613800000002", B: "+8613900000002", TTL: time.Hour})
	})
	if err != nil || len(trips) == 0 || fmt.Sprint(trips[0]) != "[get zrangebyscore zrangebyscore]" {
		t.Errorf("cold create: %v, round trips %v; want the party index read first", err, trips)
	}
}
