package binding

// Throughput benchmarks for Create and Resolve with parallel clients on a
// single Redis and on a 6-node Redis Cluster, each compared with
// redis-benchmark running the same script (or command) on the same Redis
// right after it; the allocator's memory and cold start on a large pool;
// and tests that pin the number of Redis round trips each operation makes.
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
	"net"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/privnum/privnum/e164"
	"github.com/privnum/privnum/internal/redistest"
	"github.com/privnum/privnum/internal/store"
	"github.com/privnum/privnum/pool"
)

// benchClients is how many clients hit Redis at once, both in the Go
// benchmarks (goroutines, each with its own connection) and in the
// redis-benchmark baseline (-c, split over the masters of a cluster).
const benchClients = 64

// benchPools are the pool sizes BenchmarkCreate runs on.
var benchPools = []int{64, 4096, 100_000}

// benchModes are the Redis deployments every throughput benchmark runs on.
var benchModes = []string{"single", "cluster"}

var benchParser = e164.Parser{Region: "CN"}

func benchX(i int) string { return fmt.Sprintf("+86170%08d", i) }

// benchParties returns the i-th pair of distinct parties. Every pair is new,
// so creates never exhaust the pool however long the benchmark runs.
func benchParties(i int64) (a, b string) {
	return fmt.Sprintf("+86138%08d", i%100_000_000), fmt.Sprintf("+86139%08d", i%100_000_000)
}

// benchTarget is the Redis one benchmark mode runs on: a throwaway
// redis-server (or PRIVNUM_TEST_REDIS_URL) or a throwaway 6-node cluster.
type benchTarget struct {
	url     string
	cluster *redistest.Cluster
}

func startTarget(b *testing.B, mode string) benchTarget {
	b.Helper()
	if mode == "cluster" {
		c := redistest.StartCluster(b)
		return benchTarget{url: c.URL(), cluster: c}
	}
	return benchTarget{url: redistest.Start(b).URL}
}

// benchEnv is a Service on a benchTarget with a pool of numbers.
type benchEnv struct {
	svc *Service
	rdb redis.UniversalClient
	// nodes are where the redis-benchmark baseline sends its commands:
	// the server, or every master of the cluster, each with a pool number
	// whose slot it serves.
	nodes []benchNode
	// next numbers the parties of the next create, so that every create
	// of the benchmark binds two parties never seen before.
	next atomic.Int64
}

type benchNode struct{ host, port, x string }

// env empties the target and returns a Service on it with a pool of n
// numbers, on a client with a connection for every parallel client (per
// node on a cluster), closed when tb ends. The service has made one create.
func (t benchTarget) env(tb testing.TB, n int, cfg Config) *benchEnv {
	tb.Helper()
	ctx := context.Background()
	e := &benchEnv{}
	if t.cluster != nil {
		if err := t.cluster.Flush(ctx); err != nil {
			tb.Fatal(err)
		}
		e.rdb = redistest.ClientFor(tb, t.url+"&pool_size="+strconv.Itoa(benchClients+8))
	} else {
		o, err := redis.ParseURL(t.url)
		if err != nil {
			tb.Fatal(err)
		}
		o.PoolSize = benchClients + 8
		o.MinIdleConns = benchClients
		rdb := redis.NewClient(o)
		tb.Cleanup(func() { rdb.Close() })
		if err := rdb.FlushDB(ctx).Err(); err != nil {
			tb.Fatal(err)
		}
		e.rdb = rdb
	}
	p := pool.New(e.rdb, benchParser)
	entries := make([]pool.Entry, n)
	for i := range entries {
		entries[i] = pool.Entry{Number: benchX(i)}
	}
	// pool.Add writes every number in one pipeline.
	if _, err := p.Add(ctx, entries); err != nil {
		tb.Fatal(err)
	}
	// The service parses with what privnum serve builds: a parser that
	// remembers the numbers it has seen.
	parser, err := e164.NewParser("CN")
	if err != nil {
		tb.Fatal(err)
	}
	e.svc = New(e.rdb, p, parser, cfg)
	// Warm the script cache and the pool snapshot.
	if _, err := e.svc.Create(ctx, Request{A: "+8613700000001", B: "+8613700000002", TTL: time.Hour}); err != nil {
		tb.Fatal(err)
	}
	cc, ok := e.rdb.(*redis.ClusterClient)
	if !ok {
		host, port, _ := net.SplitHostPort(e.rdb.(*redis.Client).Options().Addr)
		e.nodes = []benchNode{{host, port, benchX(0)}}
		return e
	}
	masters, err := t.cluster.Masters(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	for _, m := range masters {
		for i := range n {
			c, err := cc.MasterForKey(ctx, store.NumberKey(benchX(i)))
			if err != nil {
				tb.Fatal(err)
			}
			if c.Options().Addr == m {
				host, port, _ := net.SplitHostPort(m)
				e.nodes = append(e.nodes, benchNode{host, port, benchX(i)})
				break
			}
		}
	}
	if len(e.nodes) != len(masters) {
		tb.Fatalf("pool of %d numbers: found numbers on %d of %d masters", n, len(e.nodes), len(masters))
	}
	return e
}

// setBenchParallelism makes RunParallel use benchClients goroutines.
func setBenchParallelism(b *testing.B) {
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((benchClients + procs - 1) / procs)
}

func reportRate(b *testing.B, unit string) float64 {
	s := b.Elapsed().Seconds()
	if s <= 0 {
		return 0
	}
	r := float64(b.N) / s
	b.ReportMetric(r, unit)
	return r
}

// cpuMeter measures the CPU time this process and Redis (every node of a
// cluster, replicas included) spend between start and stop.
type cpuMeter struct {
	rdb         redis.UniversalClient
	self, redis time.Duration
}

func startCPU(tb testing.TB, rdb redis.UniversalClient) *cpuMeter {
	return &cpuMeter{rdb: rdb, self: selfCPU(), redis: redisCPU(tb, rdb)}
}

// stop returns the CPU time of this process and of Redis since start.
func (m *cpuMeter) stop(tb testing.TB) (self, redis time.Duration) {
	return selfCPU() - m.self, redisCPU(tb, m.rdb) - m.redis
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// redisCPU sums used_cpu_sys and used_cpu_user over every node of rdb.
func redisCPU(tb testing.TB, rdb redis.UniversalClient) time.Duration {
	ctx := context.Background()
	var mu sync.Mutex
	var sum float64
	one := func(ctx context.Context, c *redis.Client) error {
		info, err := c.Info(ctx, "cpu").Result()
		if err != nil {
			return err
		}
		for _, line := range strings.Split(info, "\n") {
			k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
			if k == "used_cpu_sys" || k == "used_cpu_user" {
				f, _ := strconv.ParseFloat(v, 64)
				mu.Lock()
				sum += f
				mu.Unlock()
			}
		}
		return nil
	}
	var err error
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		err = c.ForEachShard(ctx, one)
	case *redis.Client:
		err = one(ctx, c)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return time.Duration(sum * float64(time.Second))
}

func reportCPU(b *testing.B, prefix string, self, redis time.Duration, n int) {
	b.ReportMetric(float64(self.Microseconds())/float64(n), prefix+"client-µs/op")
	b.ReportMetric(float64(redis.Microseconds())/float64(n), prefix+"redis-µs/op")
}

// baselineMin is the fewest operations a run must have made for the
// benchmark to run its redis-benchmark baseline (not the short probing
// runs the testing package starts with).
const baselineMin = 1000

// BenchmarkCreate measures Service.Create throughput with benchClients
// parallel clients, each create binding two parties never seen before, on
// a single Redis and on a cluster, with pools of 64 to 100,000 numbers.
// After each timed run, redis-benchmark runs the service's create script
// as many times on the same Redis (see createBaseline), and the benchmark
// reports both rates and their ratio, plus the CPU time per operation of
// each side.
func BenchmarkCreate(b *testing.B) {
	for _, mode := range benchModes {
		b.Run(mode, func(b *testing.B) {
			t := startTarget(b, mode)
			parent := b
			for _, n := range benchPools {
				var e *benchEnv
				b.Run(fmt.Sprintf("pool=%d", n), func(b *testing.B) {
					if e == nil {
						e = t.env(parent, n, Config{Quarantine: time.Hour})
					}
					benchmarkCreate(b, e)
				})
			}
			{
				// As privnum processes run.
				for _, n := range benchPools {
					var e *benchEnv
					b.Run(fmt.Sprintf("pool=%d/autopipeline", n), func(b *testing.B) {
						if e == nil {
							e = t.env(parent, n, Config{Quarantine: time.Hour, AutoPipeline: true})
						}
						benchmarkCreate(b, e)
					})
				}
			}
		})
	}
}

func benchmarkCreate(b *testing.B, e *benchEnv) {
	ctx := context.Background()
	setBenchParallelism(b)
	b.ReportAllocs()
	cpu := startCPU(b, e.rdb)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			a, c := benchParties(e.next.Add(1))
			if _, err := e.svc.Create(ctx, Request{A: a, B: c, TTL: time.Hour}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	self, rcpu := cpu.stop(b)
	rate := reportRate(b, "creates/s")
	reportCPU(b, "", self, rcpu, b.N)
	if b.N < baselineMin {
		return
	}
	if bin, err := exec.LookPath("redis-benchmark"); err == nil {
		base := createBaseline(b, bin, e, b.N)
		b.ReportMetric(base, "baseline/s")
		b.ReportMetric(rate/base, "ratio")
	}
}

// BenchmarkResolve measures Service.Resolve throughput with benchClients
// parallel clients over 4096 live bindings, on a single Redis and on a
// cluster, then runs redis-benchmark's HGETALL of a route hash (the one
// command a Resolve sends) as many times on the same Redis, and reports
// both rates and their ratio.
func BenchmarkResolve(b *testing.B) {
	for _, mode := range benchModes {
		b.Run(mode, func(b *testing.B) {
			e := startTarget(b, mode).env(b, 64, Config{Quarantine: time.Hour})
			type call struct{ x, caller, want string }
			var calls []call
			const bindings = 4096
			for i := range int64(bindings) {
				a, c := benchParties(i)
				bd, err := e.svc.Create(context.Background(), Request{A: a, B: c, TTL: time.Hour})
				if err != nil {
					b.Fatal(err)
				}
				calls = append(calls, call{bd.X, a, c}, call{bd.X, c, a})
			}
			b.Run("bindings=4096", func(b *testing.B) {
				ctx := context.Background()
				var next atomic.Int64
				setBenchParallelism(b)
				b.ReportAllocs()
				cpu := startCPU(b, e.rdb)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						c := calls[next.Add(1)%int64(len(calls))]
						r, err := e.svc.Resolve(ctx, c.x, c.caller)
						if err != nil || r.Target != c.want {
							b.Errorf("Resolve(%s, %s) = %+v, %v; want %s", c.x, c.caller, r, err, c.want)
							return
						}
					}
				})
				b.StopTimer()
				self, rcpu := cpu.stop(b)
				rate := reportRate(b, "resolves/s")
				reportCPU(b, "", self, rcpu, b.N)
				if b.N < baselineMin {
					return
				}
				if bin, err := exec.LookPath("redis-benchmark"); err == nil {
					base := hgetallBaseline(b, bin, e, b.N)
					b.ReportMetric(base, "baseline/s")
					b.ReportMetric(rate/base, "ratio")
				}
			})
		})
	}
}

// BenchmarkResolveModes measures Service.Resolve on AXN and AXG bindings
// (1024 of each, on a pool of 2048 numbers), with benchClients parallel
// clients: a stranger calling an AXN number (which also records them as
// the last caller), the owner replying to the last caller, and a member of
// a 1,000-member group calling an AXG number. Each is one round trip (see
// TestResolveIsOneRoundTrip); the CPU per resolve compares with
// BenchmarkResolve's AXB figure.
func BenchmarkResolveModes(b *testing.B) {
	members := make([]string, 1000)
	for i := range members {
		members[i] = fmt.Sprintf("+86136%08d", i)
	}
	for _, mode := range benchModes {
		b.Run(mode, func(b *testing.B) {
			const n = 1024
			e := startTarget(b, mode).env(b, 2*n+1, Config{Quarantine: time.Hour, Groups: FakeGroups{"g": members}})
			ctx := context.Background()
			var axn, axg []Binding
			for i := range int64(n) {
				a, _ := benchParties(i)
				bd, err := e.svc.Create(ctx, Request{Mode: AXN, A: a, TTL: time.Hour})
				if err != nil {
					b.Fatal(err)
				}
				axn = append(axn, bd)
				_, o := benchParties(i)
				if bd, err = e.svc.Create(ctx, Request{Mode: AXG, A: o, Group: "g", TTL: time.Hour}); err != nil {
					b.Fatal(err)
				}
				axg = append(axg, bd)
			}
			for _, kind := range []string{"axn-stranger", "axn-owner-reply", "axg-member"} {
				b.Run(kind, func(b *testing.B) {
					var next atomic.Int64
					setBenchParallelism(b)
					b.ReportAllocs()
					cpu := startCPU(b, e.rdb)
					b.ResetTimer()
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							i := next.Add(1)
							var bd Binding
							var caller string
							switch kind {
							case "axn-stranger":
								bd, caller = axn[i%n], fmt.Sprintf("+86135%08d", i%1_000_000)
							case "axn-owner-reply":
								bd = axn[i%n]
								caller = bd.A
							default:
								bd, caller = axg[i%n], members[i%int64(len(members))]
							}
							r, err := e.svc.Resolve(ctx, bd.X, caller)
							if err != nil || (r.Action != Connect && r.Reason != ReasonNoLastCaller) {
								b.Errorf("Resolve(%s, %s) = %+v, %v", bd.X, caller, r, err)
								return
							}
						}
					})
					b.StopTimer()
					self, rcpu := cpu.stop(b)
					reportRate(b, "resolves/s")
					reportCPU(b, "", self, rcpu, b.N)
				})
			}
		})
	}
}

// BenchmarkResolveExtension measures an extension call's two steps on
// AXE numbers (4096 extensions over a pool of 8 numbers, 4-digit
// extensions), with benchClients parallel clients: "collect" is a
// stranger's Resolve on X (answered Collect), "extension" the
// ResolveExtension after the digits (which records the caller as the
// extension's last caller), "owner-reply" an extension's party calling X
// (the reply path). Each is one round trip (TestExtensionCallRoundTrips).
func BenchmarkResolveExtension(b *testing.B) {
	for _, mode := range benchModes {
		b.Run(mode, func(b *testing.B) {
			const n = 4096
			e := startTarget(b, mode).env(b, 9, Config{Quarantine: time.Hour})
			ctx := context.Background()
			var axe []Binding
			for i := range int64(n) {
				a, _ := benchParties(i)
				bd, err := e.svc.Create(ctx, Request{Mode: AXE, A: a, TTL: time.Hour})
				if err != nil {
					b.Fatal(err)
				}
				axe = append(axe, bd)
			}
			for _, kind := range []string{"collect", "extension", "owner-reply"} {
				b.Run(kind, func(b *testing.B) {
					var next atomic.Int64
					setBenchParallelism(b)
					b.ReportAllocs()
					cpu := startCPU(b, e.rdb)
					b.ResetTimer()
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							i := next.Add(1)
							bd, caller := axe[i%n], fmt.Sprintf("+86135%08d", i%1_000_000)
							var r Route
							var err error
							switch kind {
							case "collect":
								r, err = e.svc.Resolve(ctx, bd.X, caller)
							case "extension":
								r, err = e.svc.ResolveExtension(ctx, bd.X, caller, bd.Extension)
							default:
								r, err = e.svc.Resolve(ctx, bd.X, bd.A)
							}
							if err != nil || (r.Action == Reject && r.Reason != ReasonNoLastCaller) {
								b.Errorf("%s on %s ext %s: %+v, %v", kind, bd.X, bd.Extension, r, err)
								return
							}
						}
					})
					b.StopTimer()
					self, rcpu := cpu.stop(b)
					reportRate(b, "resolves/s")
					reportCPU(b, "", self, rcpu, b.N)
				})
			}
		})
	}
}

// BenchmarkCreateCold measures a new Service's first Create on a pool of
// 100,000 numbers: reading the pool snapshot and ranking it (what a
// process does at start and after every pool change), then the create.
// heap-MB is the heap the service keeps for the pool afterwards
// (runtime.MemStats.HeapInuse after a GC, against before it existed).
func BenchmarkCreateCold(b *testing.B) {
	const n = 100_000
	for _, mode := range benchModes {
		b.Run(mode, func(b *testing.B) {
			e := startTarget(b, mode).env(b, n, Config{Quarantine: time.Hour})
			b.Run(fmt.Sprintf("pool=%d", n), func(b *testing.B) {
				ctx := context.Background()
				b.ReportAllocs()
				var heap float64
				for range b.N {
					b.StopTimer()
					var before, after runtime.MemStats
					runtime.GC()
					runtime.ReadMemStats(&before)
					b.StartTimer()
					svc := New(e.rdb, e.svc.pool, e.svc.parser, e.svc.cfg)
					a, c := benchParties(e.next.Add(1))
					if _, err := svc.Create(ctx, Request{A: a, B: c, TTL: time.Hour}); err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					runtime.GC()
					runtime.ReadMemStats(&after)
					heap = (float64(after.HeapInuse) - float64(before.HeapInuse)) / (1 << 20)
					runtime.KeepAlive(svc)
					b.StartTimer()
				}
				b.ReportMetric(heap, "heap-MB")
			})
		})
	}
}

// createBaseline runs redis-benchmark on e's Redis: n EVALSHA of the
// service's own createScript on an active pool number, with fresh random
// route and binding keys on every call (__rand_int__), so that each call
// takes the full success path and writes three hashes and a sorted-set
// entry like a real create. On a cluster, one redis-benchmark per master,
// all at once, each on a number that master serves. It returns the
// requests per second and reports the CPU time per request of
// redis-benchmark and of Redis.
func createBaseline(b *testing.B, bin string, e *benchEnv, n int) float64 {
	ctx := context.Background()
	sha, err := createScript.Load(ctx, e.rdb).Result()
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	exp := now.Add(time.Hour)
	command := func(x string) []string {
		return []string{
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
	}
	before := make([]int64, len(e.nodes))
	for i, nd := range e.nodes {
		// Check that the command as written takes the success path, with
		// every __rand_int__ drawn differently as redis-benchmark does.
		args := command(nd.x)
		probe := make([]any, len(args))
		for j, a := range args {
			probe[j] = strings.ReplaceAll(a, "__rand_int__", fmt.Sprintf("9%08d%03d", e.next.Add(1)%100_000_000, j))
		}
		if got, err := e.rdb.Do(ctx, probe...).Slice(); err != nil || len(got) != 2 || got[0] != "ok" {
			b.Fatalf("baseline script probe on %s = %v, %v; want [ok n]", nd.x, got, err)
		}
		before[i] = e.rdb.ZCard(ctx, store.ActiveKey(nd.x)).Val()
	}
	rps := runRedisBenchmark(b, bin, e, n, command)
	// Nearly every call must have taken the success path (one new active
	// entry each); random-key collisions are tolerated.
	var added int64
	for i, nd := range e.nodes {
		added += e.rdb.ZCard(ctx, store.ActiveKey(nd.x)).Val() - before[i]
	}
	if float64(added) < 0.8*float64(n) {
		b.Fatalf("only %d of %d baseline calls created a binding: the baseline is not measuring the success path", added, n)
	}
	return rps
}

// hgetallBaseline runs redis-benchmark's HGETALL of an existing route hash
// n times on e's Redis (on a cluster, one route hash on every master) and
// returns the requests per second.
func hgetallBaseline(b *testing.B, bin string, e *benchEnv, n int) float64 {
	ctx := context.Background()
	routes := map[string]string{}
	for i, nd := range e.nodes {
		a, c := fmt.Sprintf("+86136%08d", i), fmt.Sprintf("+86135%08d", i)
		// A second run finds the binding there already.
		if _, err := e.svc.Create(ctx, Request{A: a, B: c, X: nd.x, TTL: time.Hour}); err != nil && !errors.Is(err, ErrPartyBusy) {
			b.Fatal(err)
		}
		routes[nd.x] = store.RouteKey(nd.x, a)
	}
	return runRedisBenchmark(b, bin, e, n, func(x string) []string { return []string{"HGETALL", routes[x]} })
}

// runRedisBenchmark sends n requests of command with benchClients
// connections, no pipelining: one redis-benchmark on a single server, or
// one per master of a cluster (clients and requests split evenly), all at
// once. Each __rand_int__ in a command becomes a fresh 12-digit number
// below 10^9 on every call (-r is parsed as a C int: a larger value
// overflows and every call then reuses the same keys). It returns
// redis-benchmark's own requests per second on a single server, and n
// over the time from the first start to the last exit on a cluster; and
// it reports the CPU time per request of redis-benchmark and of Redis.
func runRedisBenchmark(b *testing.B, bin string, e *benchEnv, n int, command func(x string) []string) float64 {
	k := len(e.nodes)
	cmds := make([]*exec.Cmd, k)
	outs, errs := make([]*bytes.Buffer, k), make([]*bytes.Buffer, k)
	for i, nd := range e.nodes {
		clients := benchClients / k
		if i < benchClients%k {
			clients++
		}
		reqs := n / k
		if i < n%k {
			reqs++
		}
		args := append([]string{"-h", nd.host, "-p", nd.port, "-c", strconv.Itoa(clients),
			"-n", strconv.Itoa(reqs), "-r", "1000000000", "--csv"}, command(nd.x)...)
		outs[i], errs[i] = &bytes.Buffer{}, &bytes.Buffer{}
		cmds[i] = exec.Command(bin, args...)
		cmds[i].Stdout, cmds[i].Stderr = outs[i], errs[i]
	}
	cpu := startCPU(b, e.rdb)
	start := time.Now()
	for _, c := range cmds {
		if err := c.Start(); err != nil {
			b.Fatalf("redis-benchmark: %v", err)
		}
	}
	var benchCPU time.Duration
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			b.Fatalf("redis-benchmark: %v\n%s%s", err, outs[i].String(), errs[i].String())
		}
		benchCPU += c.ProcessState.UserTime() + c.ProcessState.SystemTime()
	}
	wall := time.Since(start)
	_, rcpu := cpu.stop(b)
	reportCPU(b, "baseline-", benchCPU, rcpu, n)
	if k > 1 {
		return float64(n) / wall.Seconds()
	}
	rows, err := csv.NewReader(outs[0]).ReadAll()
	if err != nil || len(rows) < 2 || len(rows[1]) < 2 {
		b.Fatalf("redis-benchmark output %q: %v", outs[0].String(), err)
	}
	rps, err := strconv.ParseFloat(rows[1][1], 64)
	if err != nil {
		b.Fatalf("redis-benchmark rps %q: %v", rows[1][1], err)
	}
	return rps
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

// TestResolveIsOneRoundTrip pins Resolve's round trips: an AXB call is
// one HGETALL of the caller's route, as before modes, whether it connects
// or is rejected; an AXN or AXG call is one run of the resolve script
// (EVALSHA) once the process has seen the number, including a stranger's
// call that records the last caller and the owner's reply that reads it,
// and an AXG membership check. A stranger on an AXB number costs two (the
// route, then the script finds no mode record).
func TestResolveIsOneRoundTrip(t *testing.T) {
	ctx := context.Background()
	svc, rt := roundTripEnv(t, 4)
	grp := fakeGroups{"drivers": {"+8613600000001"}}
	svc.cfg.Groups = grp
	bd, err := svc.Create(ctx, Request{A: "+8613800000001", B: "+8613900000001", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	axn, err := svc.Create(ctx, Request{Mode: AXN, A: "+8613800000002", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	axg, err := svc.Create(ctx, Request{Mode: AXG, A: "+8613800000003", Group: "drivers", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	// The first call on each number loads the script (NOSCRIPT, then
	// EVAL) and teaches the service which numbers have a mode record: not
	// counted.
	for _, x := range []string{bd.X, axn.X, axg.X} {
		if _, err := svc.Peek(ctx, x, "+8613700000001"); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		x, caller, want string
		trips           string
	}{
		{bd.X, bd.A, bd.B, "[[hgetall]]"},
		{bd.X, bd.B, bd.A, "[[hgetall]]"},
		{bd.X, "+8613700000009", "", "[[hgetall] [evalsha]]"},
		{axn.X, axn.A, "", "[[evalsha]]"},               // no last caller yet
		{axn.X, "+8613700000009", axn.A, "[[evalsha]]"}, // a stranger reaches A and becomes the last caller
		{axn.X, axn.A, "+8613700000009", "[[evalsha]]"}, // A replies to them
		{axg.X, "+8613600000001", axg.A, "[[evalsha]]"}, // a member
		{axg.X, "+8613700000009", "", "[[evalsha]]"},    // not a member
	} {
		var r Route
		trips := rt.count(func() {
			if r, err = svc.Resolve(ctx, tc.x, tc.caller); err != nil {
				t.Fatal(err)
			}
		})
		if r.Target != tc.want {
			t.Fatalf("Resolve(%s, %s) = %+v; want target %q", tc.x, tc.caller, r, tc.want)
		}
		if got := fmt.Sprint(trips); got != tc.trips {
			t.Errorf("Resolve(%s, %s) made round trips %s; want %s", tc.x, tc.caller, got, tc.trips)
		}
	}
	// A process that has not seen the AXN number yet: the route read, then
	// the script; from then on the script alone.
	cold := New(svc.rdb, svc.pool, svc.parser, svc.cfg)
	for _, want := range []string{"[[hgetall] [evalsha]]", "[[evalsha]]"} {
		if got := fmt.Sprint(rt.count(func() { cold.Resolve(ctx, axn.X, "+8613700000008") })); got != want {
			t.Errorf("cold process, AXN stranger: round trips %s; want %s", got, want)
		}
	}
}

// TestExtensionCallRoundTrips pins an extension call's round trips: the
// stranger's Resolve on an AXE number is one run of the resolve script
// (answered Collect), the ResolveExtension after the digits one more
// (one script that reads the extension and records the last caller), and
// the extension's party replying one. Digits that cannot be an extension
// cost none.
func TestExtensionCallRoundTrips(t *testing.T) {
	ctx := context.Background()
	svc, rt := roundTripEnv(t, 2)
	bd, err := svc.Create(ctx, Request{Mode: AXE, A: "+8613800000001", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	// Load the scripts and teach the service that X has a mode record.
	svc.Peek(ctx, bd.X, "+8613700000001")
	svc.PeekExtension(ctx, bd.X, "+8613700000001", bd.Extension)
	for _, tc := range []struct {
		name  string
		f     func() (Route, error)
		want  Action
		trips string
	}{
		{"stranger", func() (Route, error) { return svc.Resolve(ctx, bd.X, "+8613700000009") }, Collect, "[[evalsha]]"},
		{"extension", func() (Route, error) { return svc.ResolveExtension(ctx, bd.X, "+8613700000009", bd.Extension) }, Connect, "[[evalsha]]"},
		{"bad digits", func() (Route, error) { return svc.ResolveExtension(ctx, bd.X, "+8613700000009", "12#") }, Reject, "[]"},
		{"owner reply", func() (Route, error) { return svc.Resolve(ctx, bd.X, bd.A) }, Connect, "[[evalsha]]"},
	} {
		var r Route
		trips := rt.count(func() {
			if r, err = tc.f(); err != nil {
				t.Fatal(err)
			}
		})
		if r.Action != tc.want {
			t.Fatalf("%s: %+v; want %s", tc.name, r, tc.want)
		}
		if got := fmt.Sprint(trips); got != tc.trips {
			t.Errorf("%s: round trips %s; want %s", tc.name, got, tc.trips)
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

// BenchmarkResolveNationalCaller is one call at a time from a caller in
// national form that the process has not parsed before (the binding was
// made by another process: the CLI, the API sidecar), as a call's first
// resolve is. Run it with -benchtime at most 4096x: every resolve needs a
// caller of its own.
func BenchmarkResolveNationalCaller(b *testing.B) {
	e := startTarget(b, "single").env(b, 64, Config{Quarantine: time.Hour})
	const n = 4096
	if b.N > n {
		b.Skipf("-benchtime %dx: at most %d", b.N, n)
	}
	type call struct{ x, caller, want string }
	var calls []call
	for i := range int64(n) {
		a, c := benchParties(i)
		bd, err := e.svc.Create(context.Background(), Request{A: a, B: c, TTL: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		calls = append(calls, call{strings.TrimPrefix(bd.X, "+86"), strings.TrimPrefix(a, "+86"), c})
	}
	cn, err := e164.NewParser("CN")
	if err != nil {
		b.Fatal(err)
	}
	svc := New(e.rdb, pool.New(e.rdb, cn), cn, Config{Quarantine: time.Hour})
	ctx := context.Background()
	svc.Resolve(ctx, calls[0].x, calls[0].caller) // the connection, the virtual number's parse
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		c := calls[1+i%(n-1)]
		r, err := svc.Resolve(ctx, c.x, c.caller)
		if err != nil || r.Target != c.want {
			b.Fatalf("Resolve(%s, %s) = %+v, %v; want %s", c.x, c.caller, r, err, c.want)
		}
	}
}
