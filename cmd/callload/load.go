package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/privnum/privnum/ari"
	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/call"
	"github.com/privnum/privnum/cdr"
	"github.com/privnum/privnum/e164"
	"github.com/privnum/privnum/internal/store"
	"github.com/privnum/privnum/pool"
)

// Config configures a run.
type Config struct {
	// Calls is how many concurrent calls to hold.
	Calls int
	// Warmup calls are made, bridged and hung up before the baseline;
	// negative means min(Calls, 200).
	Warmup int
	// Concurrency is how many workers inject and hang up calls.
	Concurrency int
	// Rate paces the injection, in calls per second; 0 does not pace.
	Rate float64
	// RedisURL is the Redis to use; empty starts a throwaway redis-server.
	RedisURL string
	// PoolSize is the number of virtual numbers.
	PoolSize int
	// AnswerAfter is how long callees ring before answering.
	AnswerAfter time.Duration
	// MaxDuration is the bindings' maximum call duration (0: none).
	MaxDuration time.Duration
	// ARIIdlePerHost, when positive, gives the ARI client an HTTP transport
	// keeping that many idle connections; 0 keeps the ari client's default
	// HTTP client, as privnum serve does.
	ARIIdlePerHost int
	// LeakCycle repeats the calls after the teardown, to check that the
	// heap does not grow per call made.
	LeakCycle bool
	// PhaseTimeout bounds each phase; 0 means 30s + 5ms per call.
	PhaseTimeout time.Duration
	// Check makes a missed target fail the command.
	Check bool
	// Targets are checked into the report.
	Targets Targets
	// MemProfile, if set, receives a heap profile with every call up;
	// CPUProfile a CPU profile of the ramp.
	MemProfile, CPUProfile string
	// Progress receives progress lines; nil discards them.
	Progress io.Writer
	// AppLog receives the app's warnings; nil only counts them.
	AppLog io.Writer
}

// Targets are the acceptance targets.
type Targets struct {
	// MinCalls is the number of concurrent calls to hold.
	MinCalls int
	// MaxKiBPerCall bounds the app's memory per live call.
	MaxKiBPerCall float64
	// RoutingP99 bounds the p99 routing decision.
	RoutingP99 time.Duration
}

func defaultConfig() Config {
	return Config{
		Calls: 2000, Warmup: -1, Concurrency: 32, PoolSize: 16,
		Rate: 100, AnswerAfter: 50 * time.Millisecond, MaxDuration: time.Hour, Check: true, LeakCycle: true,
		Targets: Targets{MinCalls: 2000, MaxKiBPerCall: 16, RoutingP99: 2 * time.Millisecond},
	}
}

const (
	simUser     = "callload"
	simPassword = "callload"
	appName     = "privnum"
	// goroutineSlack is how many goroutines above the baseline the
	// teardown check tolerates (timers' and connections' stragglers).
	goroutineSlack = 2
)

// party is one binding: A calls X and reaches B.
type party struct {
	a, b, x, exten string
	// name is the caller name the call carries: the party's index, so that
	// a bridge can be matched to its binding (the app masks the caller's
	// number on its own leg).
	name string
}

// legs is one bridged call as the simulator shows it.
type legs struct{ in, out string }

type load struct {
	cfg      Config
	rep      *Report
	progress io.Writer
	sim      *simProc
	app      *call.App
	reg      *prometheus.Registry
	// closeIdle closes the idle connections of the ARI client's transport.
	closeIdle func()
	// dials counts the connections the ARI client's transport opened.
	dials *atomic.Int64
	// resolves times the app's Resolve calls during the ramp.
	resolves *timedRouter
	parties  []party
	warns    *warnWriter
	// redisPid is the throwaway redis-server's (0: a Redis of the user's).
	redisPid int
}

// Run performs one benchmark run. The report is returned even with an
// error when something was measured.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Warmup < 0 {
		cfg.Warmup = min(cfg.Calls, 200)
	}
	cfg.Warmup = min(cfg.Warmup, cfg.Calls)
	if cfg.PhaseTimeout <= 0 {
		cfg.PhaseTimeout = 30*time.Second + time.Duration(cfg.Calls)*5*time.Millisecond
	}
	l := &load{cfg: cfg, progress: cfg.Progress, warns: &warnWriter{tee: cfg.AppLog}}
	if l.progress == nil {
		l.progress = io.Discard
	}
	l.rep = &Report{Calls: cfg.Calls, Warmup: cfg.Warmup, Concurrency: cfg.Concurrency, Rate: cfg.Rate, ARIIdle: "the ari client's default HTTP client"}
	if cfg.ARIIdlePerHost > 0 {
		l.rep.ARIIdle = fmt.Sprintf("%d per host", cfg.ARIIdlePerHost)
	}
	err := l.run(ctx)
	l.rep.AppWarnings, l.rep.AppWarningExamples = l.warns.counts()
	if err != nil {
		return l.rep, err
	}
	l.check()
	return l.rep, nil
}

func (l *load) logf(format string, args ...any) {
	fmt.Fprintf(l.progress, "callload: "+format+"\n", args...)
}

func (l *load) run(ctx context.Context) error {
	cfg := l.cfg
	redisURL := cfg.RedisURL
	if redisURL == "" {
		srv, err := startRedis(ctx)
		if err != nil {
			return err
		}
		defer srv.stop()
		redisURL = srv.URL
		l.redisPid = srv.cmd.Process.Pid
	}
	l.rep.Redis = redisURL
	rdb, err := store.Open(redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis %s: %w", redisURL, err)
	}

	l.sim, err = startSim(ctx, simUser, simPassword, cfg.Concurrency)
	if err != nil {
		return err
	}
	defer l.sim.stop()
	l.rep.SimPid = l.sim.Pid
	l.logf("redis %s, simulator %s (pid %d)", redisURL, l.sim.URL, l.sim.Pid)

	svc, err := l.createBindings(ctx, rdb)
	if err != nil {
		return err
	}

	stopApp, err := l.startApp(ctx, svc, cdr.New(rdb, 0))
	if err != nil {
		return err
	}
	defer stopApp()
	if err := l.sim.answerAllAfter(ctx, cfg.AnswerAfter); err != nil {
		return err
	}

	// Warm-up: the same cycle on the first bindings, not measured.
	if cfg.Warmup > 0 {
		t := time.Now()
		if _, err := l.inject(ctx, l.parties[:cfg.Warmup]); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
		if _, err := l.waitHeld(ctx, cfg.Warmup); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
		if err := l.teardown(ctx); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
		l.logf("warm-up: %d calls bridged and hung up in %s", cfg.Warmup, time.Since(t).Round(time.Millisecond))
	}

	fillRedisPool(ctx, rdb)
	before, err := gatherHistogram(l.reg, "privnum_routing_seconds")
	if err != nil {
		return err
	}
	l.rep.Base = l.sample()
	l.heapProfile(".base")
	dials0 := l.dials.Load()
	cpu0, simCPU0, redisCPU0 := cpuTime(), procCPU(l.sim.Pid), procCPU(l.redisPid)
	st0, err := l.sim.stats(ctx)
	if err != nil {
		return err
	}
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	l.resolves.on.Store(true)

	// Ramp.
	stopCPU := func() {}
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		stopCPU = func() { pprof.StopCPUProfile(); f.Close() }
	}
	l.logf("ramp: injecting %d calls with %d workers", cfg.Calls, cfg.Concurrency)
	start := time.Now()
	injected, injErr := l.inject(ctx, l.parties)
	l.rep.InjectSeconds = time.Since(start).Seconds()
	l.rep.Injected = injected
	if injErr != nil {
		l.rep.errorf("injecting calls: %v", injErr)
	}
	v, heldErr := l.waitHeld(ctx, cfg.Calls)
	l.rep.RampSeconds = time.Since(start).Seconds()
	stopCPU()
	l.rep.ARIDialsRamp = l.dials.Load() - dials0
	if dials0 == 0 {
		// The warm-up dialed nothing that callload sees: the ari client's
		// default client does not use http.DefaultTransport.
		l.rep.ARIDialsRamp = -1
	}
	perCall := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(cfg.Calls) }
	l.rep.CPUPerCall = perCall(cpuTime() - cpu0)
	l.rep.SimCPUPerCall = perCall(procCPU(l.sim.Pid) - simCPU0)
	if l.redisPid != 0 {
		l.rep.RedisCPUPerCall = perCall(procCPU(l.redisPid) - redisCPU0)
	}
	l.resolves.on.Store(false)
	l.rep.Resolve = exact(l.resolves.durations())
	var ms1 runtime.MemStats
	runtime.ReadMemStats(&ms1)
	l.rep.GCRamp = ms1.NumGC - ms0.NumGC
	l.rep.GCPauseRamp = time.Duration(ms1.PauseTotalNs - ms0.PauseTotalNs)
	if st1, err := l.sim.stats(ctx); err == nil {
		l.rep.EventsPerCall = float64(st1.EventsSent-st0.EventsSent) / float64(cfg.Calls)
	}
	l.rep.Held = l.app.LiveCalls()
	l.rep.Bridged, l.rep.Misrouted = v.bridged, v.misrouted
	l.rep.E2E = exact(v.e2e)
	if v.misrouted > 0 {
		l.rep.errorf("%d bridges do not join the caller with its bound party behind the virtual number", v.misrouted)
	}
	if heldErr != nil {
		l.rep.errorf("ramp: %v", heldErr)
	} else {
		l.logf("ramp: %d calls bridged after %.2fs", cfg.Calls, l.rep.RampSeconds)
	}
	// Nothing of the snapshots stays alive for the reading.

	// Loaded reading.
	l.rep.Loaded = l.sample()
	l.heapProfile("")
	after, err := gatherHistogram(l.reg, "privnum_routing_seconds")
	if err != nil {
		return err
	}
	l.rep.Routing = after.minus(before)
	l.rep.Routing.summarize(cfg.Targets.RoutingP99)
	n := float64(cfg.Calls)
	d := func(a, b uint64) float64 { return float64(int64(a) - int64(b)) }
	base, loaded := l.rep.Base, l.rep.Loaded
	l.rep.HeapPerCall = d(loaded.HeapAlloc, base.HeapAlloc) / n
	l.rep.StackPerCall = d(loaded.StackInuse, base.StackInuse) / n
	// StackInuse moves by hundreds of KiB with cached stack spans even
	// when no goroutine is added (see GoroutinesPerCall): only growth
	// counts, so that the noise cannot hide heap.
	l.rep.BytesPerCall = l.rep.HeapPerCall + max(0, l.rep.StackPerCall)
	l.rep.HeapInusePerCall = d(loaded.HeapInuse, base.HeapInuse) / n
	l.rep.GoroutinesPerCall = float64(loaded.Goroutines-base.Goroutines) / n

	// Teardown from the far ends.
	t := time.Now()
	l.logf("teardown: hanging up every call from the far end")
	if err := l.teardown(ctx); err != nil {
		l.rep.errorf("teardown: %v", err)
	}
	l.rep.TeardownSeconds = time.Since(t).Seconds()
	l.leftovers(ctx)
	l.rep.After = l.settle(base.Goroutines)
	l.heapProfile(".after")
	l.rep.HeapRetained = int64(l.rep.After.HeapAlloc) - int64(base.HeapAlloc)

	// Go maps keep the capacity they grew to, so the heap need not come
	// all the way back after the first teardown. What must not happen is
	// growth per call made: the same calls once more must leave the heap
	// where the first teardown left it.
	if cfg.LeakCycle {
		l.logf("leak check: the same %d calls again", cfg.Calls)
		if _, err := l.inject(ctx, l.parties); err != nil {
			l.rep.errorf("leak cycle: %v", err)
		} else if _, err := l.waitHeld(ctx, cfg.Calls); err != nil {
			l.rep.errorf("leak cycle: %v", err)
		}
		if err := l.teardown(ctx); err != nil {
			l.rep.errorf("leak cycle teardown: %v", err)
		}
		l.leftovers(ctx)
		l.rep.After2 = l.settle(base.Goroutines)
		l.heapProfile(".after2")
		l.rep.HeapGrowthCycle = int64(l.rep.After2.HeapAlloc) - int64(l.rep.After.HeapAlloc)
		l.rep.HeapGrowthLimit = max(512<<10, int64(d(loaded.HeapAlloc, base.HeapAlloc))/4)
	}
	runtime.KeepAlive(l.parties)
	return nil
}

// leftovers records the calls, channels and bridges left after a
// teardown (the worst of the teardowns).
func (l *load) leftovers(ctx context.Context) {
	l.rep.LiveAfter = max(l.rep.LiveAfter, l.app.LiveCalls())
	st, err := l.sim.stats(ctx)
	if err != nil {
		l.rep.errorf("simulator stats: %v", err)
		return
	}
	l.rep.SimChannelsAfter = max(l.rep.SimChannelsAfter, st.ActiveChannels)
	l.rep.SimBridgesAfter = max(l.rep.SimBridgesAfter, st.ActiveBridges)
}

// settle waits (up to 10s) for the goroutines to come back to base, then
// samples.
func (l *load) settle(base int) MemSample {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		l.closeIdle()
		l.sim.transport.CloseIdleConnections()
		if n, _ := goroutines(); n <= base+goroutineSlack {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return l.sample()
}

// fillRedisPool opens every connection the Redis client may hold, so that
// the pool's size (a fixed cost: go-redis gives each connection 64 KiB of
// buffers) is in the baseline instead of being charged to the calls when
// the ramp needs more connections than the warm-up did.
func fillRedisPool(ctx context.Context, rdb redis.UniversalClient) {
	c, ok := rdb.(*redis.Client)
	if !ok {
		return
	}
	conns := make([]*redis.Conn, c.Options().PoolSize)
	for i := range conns {
		conns[i] = c.Conn()
		conns[i].Ping(ctx) // takes a connection from the pool and keeps it
	}
	for _, cn := range conns {
		cn.Close() // back to the pool
	}
}

// createBindings fills the pool and binds Calls pairs of fresh parties.
func (l *load) createBindings(ctx context.Context, rdb redis.UniversalClient) (*binding.Service, error) {
	t := time.Now()
	parser, err := e164.NewParser("CN") // as privnum serve builds it
	if err != nil {
		return nil, err
	}
	p := pool.New(rdb, parser)
	entries := make([]pool.Entry, l.cfg.PoolSize)
	for i := range entries {
		entries[i] = pool.Entry{Number: fmt.Sprintf("+86170%08d", i)}
	}
	if _, err := p.Add(ctx, entries); err != nil {
		return nil, fmt.Errorf("pool: %w", err)
	}
	svc := binding.New(rdb, p, parser, binding.Config{Quarantine: time.Minute})
	// Parties never seen before, also on a Redis that kept earlier runs.
	base := rand.IntN(100_000_000 - l.cfg.Calls)
	l.parties = make([]party, l.cfg.Calls)
	var next atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range min(l.cfg.Concurrency, 32) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(l.parties) || ctx.Err() != nil {
					return
				}
				a, b := fmt.Sprintf("+86138%08d", base+i), fmt.Sprintf("+86139%08d", base+i)
				bd, err := svc.Create(ctx, binding.Request{A: a, B: b, TTL: time.Hour, Options: binding.Options{MaxDuration: l.cfg.MaxDuration}})
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("create binding %d: %w", i, err)
					}
					mu.Unlock()
					return
				}
				l.parties[i] = party{a: a, b: b, x: bd.X, exten: strings.TrimPrefix(bd.X, "+86"), name: strconv.Itoa(i)}
			}
		})
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		return nil, firstErr
	}
	l.logf("%d bindings on %d virtual numbers created in %s", len(l.parties), l.cfg.PoolSize, time.Since(t).Round(time.Millisecond))
	return svc, nil
}

// startApp runs the ARI client and call.App as privnum serve does, and
// waits until the simulator has their event connection.
func (l *load) startApp(ctx context.Context, svc *binding.Service, cdrs *cdr.Store) (stop func(), err error) {
	var hc *http.Client
	tr := http.DefaultTransport.(*http.Transport)
	if n := l.cfg.ARIIdlePerHost; n > 0 {
		tr = tr.Clone()
		tr.MaxIdleConnsPerHost, tr.MaxIdleConns = n, max(n, tr.MaxIdleConns)
		hc = &http.Client{Timeout: 10 * time.Second, Transport: tr}
	} else {
		// The ari client's default HTTP client uses http.DefaultTransport,
		// which nothing else in this process uses: count its dials too.
		defaultDials.Do(func() { countDials(tr, &defaultTransportDials) })
	}
	l.closeIdle = tr.CloseIdleConnections
	l.dials = &defaultTransportDials
	if hc != nil {
		l.dials = new(atomic.Int64)
		countDials(tr, l.dials)
	}
	log := slog.New(slog.NewTextHandler(l.warns, &slog.HandlerOptions{Level: slog.LevelWarn}))
	client, err := ari.New(ari.Config{URL: l.sim.URL, Username: simUser, Password: simPassword, Application: appName, HTTPClient: hc, Logger: log})
	if err != nil {
		return nil, err
	}
	// An ari client that can close its idle connections itself (its
	// default transport may be its own) is asked to as well.
	if ci, ok := any(client).(interface{ CloseIdleConnections() }); ok {
		closeTransport := l.closeIdle
		l.closeIdle = func() { closeTransport(); ci.CloseIdleConnections() }
	}
	l.reg = prometheus.NewRegistry()
	l.resolves = &timedRouter{r: svc, ds: make([]time.Duration, l.cfg.Calls)}
	l.app = call.New(client, l.resolves, cdrs, call.Config{Application: appName, Logger: log, Metrics: call.NewMetrics(l.reg)})
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		client.Run(runCtx, l.app)
	}()
	stop = func() {
		cancel()
		<-done
		l.app.Close()
	}
	err = l.poll(ctx, 10*time.Second, func() (bool, error) {
		if !client.Connected() {
			return false, nil
		}
		st, err := l.sim.stats(ctx)
		return err == nil && st.Connections > 0, nil
	})
	if err != nil {
		stop()
		return nil, fmt.Errorf("app did not connect to the simulator: %w", err)
	}
	return stop, nil
}

var (
	defaultDials          sync.Once
	defaultTransportDials atomic.Int64
)

// countDials makes tr count the connections it opens in n.
func countDials(tr *http.Transport, n *atomic.Int64) {
	dial := tr.DialContext
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		n.Add(1)
		return dial(ctx, network, addr)
	}
}

// timedRouter times the app's Resolve calls (parse and Redis read) while
// on, into a slice allocated beforehand.
type timedRouter struct {
	r  call.Router
	on atomic.Bool
	n  atomic.Int64
	ds []time.Duration
}

func (t *timedRouter) Resolve(ctx context.Context, x, caller string) (binding.Route, error) {
	start := time.Now()
	r, err := t.r.Resolve(ctx, x, caller)
	if t.on.Load() {
		if i := t.n.Add(1) - 1; i < int64(len(t.ds)) {
			t.ds[i] = time.Since(start)
		}
	}
	return r, err
}

// durations returns what was timed.
func (t *timedRouter) durations() []time.Duration {
	return t.ds[:min(int(t.n.Load()), len(t.ds))]
}

// poll calls cond every 20ms until it is true, fails, or timeout passes.
func (l *load) poll(ctx context.Context, timeout time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// inject places a call A → X for each party with Concurrency workers,
// paced to Rate if set, and returns how many the simulator accepted.
func (l *load) inject(ctx context.Context, parties []party) (int, error) {
	var interval time.Duration
	if l.cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) / l.cfg.Rate)
	}
	start := time.Now()
	var next, ok, failed atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	for range l.cfg.Concurrency {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(parties) {
					return
				}
				if interval > 0 {
					if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
						time.Sleep(d)
					}
				}
				if err := l.sim.call(ctx, parties[i].a, parties[i].name, parties[i].exten); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, &err)
					continue
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return int(ok.Load()), err
	}
	if p := firstErr.Load(); p != nil {
		return int(ok.Load()), fmt.Errorf("%d calls refused, first: %w", failed.Load(), *p)
	}
	return int(ok.Load()), nil
}

// verdict is what a channel snapshot shows of the calls.
type verdict struct {
	bridged, misrouted int
	e2e                []time.Duration
	calls              []legs
}

// waitHeld waits until the app holds n calls and the simulator shows all of
// them bridged, and returns the last snapshot's verdict.
func (l *load) waitHeld(ctx context.Context, n int) (verdict, error) {
	var v verdict
	err := l.poll(ctx, l.cfg.PhaseTimeout, func() (bool, error) {
		if l.app.LiveCalls() != n {
			return false, nil
		}
		st, err := l.sim.stats(ctx)
		if err != nil {
			return false, err
		}
		if st.ActiveBridges != n || st.ActiveChannels != 2*n {
			return false, nil
		}
		v, err = l.snapshot(ctx)
		return err == nil && v.bridged == n, err
	})
	if err != nil {
		st, _ := l.sim.stats(ctx)
		return v, fmt.Errorf("waiting for %d bridged calls: %w (app holds %d; simulator: %d channels, %d bridges, last snapshot %d bridged)",
			n, err, l.app.LiveCalls(), st.ActiveChannels, st.ActiveBridges, v.bridged)
	}
	return v, nil
}

// snapshot reads the simulator's live channels and pairs them by bridge.
func (l *load) snapshot(ctx context.Context) (verdict, error) {
	chans, err := l.sim.channels(ctx)
	if err != nil {
		return verdict{}, err
	}
	type pair struct{ in, out *simChannel }
	bridges := make(map[string]*pair, len(chans)/2)
	var v verdict
	for i := range chans {
		ch := &chans[i]
		if ch.BridgeID == "" {
			continue
		}
		p := bridges[ch.BridgeID]
		if p == nil {
			p = &pair{}
			bridges[ch.BridgeID] = p
		}
		if ch.Inbound {
			p.in = ch
		} else {
			p.out = ch
		}
	}
	for _, p := range bridges {
		if p.in == nil || p.out == nil || !p.in.Answered || !p.out.Answered {
			continue
		}
		v.bridged++
		// The caller's name is its party's index; both legs must show the
		// virtual number, and the callee must be the bound party.
		i, err := strconv.Atoi(p.in.Caller.Name)
		if err != nil || i < 0 || i >= len(l.parties) {
			v.misrouted++
		} else if want := &l.parties[i]; p.out.FarNumber != want.b || p.out.Caller.Number != want.x || p.in.Caller.Number != want.x {
			v.misrouted++
		}
		v.e2e = append(v.e2e, p.out.Created.Sub(p.in.Created))
		v.calls = append(v.calls, legs{p.in.ID, p.out.ID})
	}
	return v, nil
}

// teardown hangs up every live call from the far end, callers and callees
// alternately, and waits until the app and the simulator hold nothing.
func (l *load) teardown(ctx context.Context) error {
	v, err := l.snapshot(ctx)
	if err != nil {
		return err
	}
	if v.bridged != l.app.LiveCalls() {
		// Calls not bridged (a failed ramp): hang up their callers too.
		chans, err := l.sim.channels(ctx)
		if err != nil {
			return err
		}
		for _, ch := range chans {
			if ch.Inbound && ch.BridgeID == "" {
				v.calls = append(v.calls, legs{in: ch.ID})
			}
		}
	}
	var next atomic.Int64
	var failed atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	for range l.cfg.Concurrency {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(v.calls) {
					return
				}
				id := v.calls[i].in
				if i%2 == 1 && v.calls[i].out != "" {
					id = v.calls[i].out
				}
				if err := l.sim.hangup(ctx, id); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, &err)
				}
			}
		})
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return fmt.Errorf("%d hang-ups failed, first: %w", failed.Load(), *p)
	}
	err = l.poll(ctx, l.cfg.PhaseTimeout, func() (bool, error) {
		if l.app.LiveCalls() != 0 {
			return false, nil
		}
		st, err := l.sim.stats(ctx)
		return err == nil && st.ActiveChannels == 0 && st.ActiveBridges == 0, err
	})
	if err != nil {
		st, _ := l.sim.stats(ctx)
		return fmt.Errorf("waiting for every call to end: %w (app holds %d; simulator: %d channels, %d bridges)",
			err, l.app.LiveCalls(), st.ActiveChannels, st.ActiveBridges)
	}
	return nil
}

// sample reads the process's memory after closing the idle HTTP
// connections it can reach (a pool's size is no call state) and letting
// the goroutine count settle.
// The garbage collections run on a helper goroutine while the caller
// waits, so that the caller's stack, grown while decoding snapshots, can
// be shrunk like every other parked goroutine's.
func (l *load) sample() MemSample {
	l.closeIdle()
	l.sim.transport.CloseIdleConnections()
	prev := -1
	for range 40 {
		time.Sleep(25 * time.Millisecond)
		n := runtime.NumGoroutine()
		if n == prev {
			break
		}
		prev = n
	}
	done := make(chan MemSample)
	go func() {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		g, conns := goroutines()
		done <- MemSample{HeapAlloc: m.HeapAlloc, HeapInuse: m.HeapInuse, StackInuse: m.StackInuse,
			Goroutines: g - 1, HTTPConns: conns} // not this goroutine
	}()
	return <-done
}

// heapProfile writes a heap profile to MemProfile+suffix, if set.
func (l *load) heapProfile(suffix string) {
	if l.cfg.MemProfile == "" {
		return
	}
	if err := writeHeapProfile(l.cfg.MemProfile + suffix); err != nil {
		l.rep.errorf("heap profile: %v", err)
	}
}

// goroutines counts the goroutines, leaving out the two of each HTTP
// keep-alive connection (callload cannot close the idle connections of the
// ari client's own default transport, which keeps a few for a while), and
// returns those connections apart.
func goroutines() (n, httpConns int) {
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 1); err != nil {
		return runtime.NumGoroutine(), 0
	}
	// Records are "COUNT @ PCS" followed by "#\tPC\tFUNC+OFF\tFILE:LINE"
	// lines, separated by blank lines.
	_, recs, _ := strings.Cut(buf.String(), "\n") // "goroutine profile: total N"
	for _, rec := range strings.Split(recs, "\n\n") {
		head, frames, _ := strings.Cut(rec, "\n")
		countStr, _, ok := strings.Cut(head, " @ ")
		if !ok {
			continue
		}
		c, err := strconv.Atoi(strings.TrimSpace(countStr))
		if err != nil {
			continue
		}
		switch {
		case strings.Contains(frames, "net/http.(*persistConn).readLoop"):
			httpConns += c
		case strings.Contains(frames, "net/http.(*persistConn).writeLoop"):
		default:
			n += c
		}
	}
	return n, httpConns
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// check records the targets into the report.
func (l *load) check() {
	r, t := l.rep, l.cfg.Targets
	add := func(name, target, value string, ok bool) {
		r.Checks = append(r.Checks, Check{Name: name, Target: target, Value: value, OK: ok})
	}
	add("calls", fmt.Sprintf("≥ %d, all %d", t.MinCalls, r.Calls),
		fmt.Sprintf("%d held, %d bridged", r.Held, r.Bridged),
		r.Held == r.Calls && r.Bridged == r.Calls && r.Held >= t.MinCalls && r.Misrouted == 0)
	add("memory", fmt.Sprintf("< %g KiB", t.MaxKiBPerCall), kib(r.BytesPerCall),
		r.BytesPerCall < t.MaxKiBPerCall*1024)
	h := r.Routing
	if h.FracLE >= 0 {
		add("routing", fmt.Sprintf("p99 < %s: ≥ 99 %% within", ms(t.RoutingP99)), fmt.Sprintf("%.2f %%", 100*h.FracLE),
			h.Count >= uint64(r.Calls) && h.FracLE >= 0.99)
	} else {
		add("routing", fmt.Sprintf("p99 < %s (interpolated)", ms(t.RoutingP99)), secMS(h.P99),
			h.Count >= uint64(r.Calls) && h.P99 < t.RoutingP99.Seconds())
	}
	leak := fmt.Sprintf("%d calls, %d channels, %d bridges; goroutines %d → %d", r.LiveAfter, r.SimChannelsAfter, r.SimBridgesAfter, r.Base.Goroutines, r.After.Goroutines)
	ok := r.LiveAfter == 0 && r.SimChannelsAfter == 0 && r.SimBridgesAfter == 0 && r.After.Goroutines <= r.Base.Goroutines+goroutineSlack
	target := fmt.Sprintf("nothing left, goroutines ≤ baseline+%d", goroutineSlack)
	if l.cfg.LeakCycle {
		leak += fmt.Sprintf(" → %d; heap %+.0f KiB over a second cycle", r.After2.Goroutines, float64(r.HeapGrowthCycle)/1024)
		ok = ok && r.After2.Goroutines <= r.Base.Goroutines+goroutineSlack && r.HeapGrowthCycle <= r.HeapGrowthLimit
		target += fmt.Sprintf(", second cycle adds ≤ %.0f KiB", float64(r.HeapGrowthLimit)/1024)
	}
	add("teardown", target, leak, ok)
}

// warnWriter counts the app's log lines (warnings and errors) and keeps
// the first few.
type warnWriter struct {
	tee   io.Writer
	mu    sync.Mutex
	n     int
	first []string
}

func (w *warnWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n += bytes.Count(p, []byte("\n"))
	if len(w.first) < 5 {
		w.first = append(w.first, strings.TrimSpace(string(p)))
	}
	if w.tee != nil {
		w.tee.Write(p)
	}
	return len(p), nil
}

func (w *warnWriter) counts() (int, []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n, append([]string(nil), w.first...)
}
