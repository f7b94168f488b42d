package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
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
	"github.com/privnum/privnum/callback"
	"github.com/privnum/privnum/cdr"
	"github.com/privnum/privnum/dialq"
	"github.com/privnum/privnum/e164"
	"github.com/privnum/privnum/internal/store"
	"github.com/privnum/privnum/pool"
	"github.com/privnum/privnum/verify"
)

// SoakConfig configures a soak run (-soak): Calls concurrent callers, each
// calling its bound party, holding the call about Hold and calling again,
// for Duration, beside a churn of bindings, callbacks and flash calls.
type SoakConfig struct {
	// Duration is how long the load runs.
	Duration time.Duration
	// Sample is the interval between samples.
	Sample time.Duration
	// Calls is how many calls are held at once (-concurrency).
	Calls int
	// Hold is the mean time a call is held before one side hangs up
	// (uniform in [Hold/2, 3·Hold/2]); Calls/Hold calls end and start per
	// second.
	Hold time.Duration
	// Churn is how many bindings are created per second through the
	// binding service; each is released after 1 to 5 s.
	Churn float64
	// Callbacks and Flashes are how many callbacks and verification flash
	// calls are queued per second.
	Callbacks, Flashes float64
	// Window is the span at the end of the run whose samples the trend
	// test reads (the last 20 minutes); Warmup is left out of it in any
	// case.
	Window, Warmup time.Duration
	// MaxGrowth is the largest growth over the window, relative to the
	// mean, that the least-squares line of heap or goroutines may show.
	MaxGrowth float64
	// Drain bounds the wait, after the load stopped, for the Redis keys
	// to come back to their baseline.
	Drain time.Duration
	// RedisURL is the Redis to use; empty starts a throwaway redis-server.
	RedisURL string
	// PoolSize is the number of virtual numbers.
	PoolSize int
	// MemProfile, if set, receives a heap profile at every sample
	// (MemProfile.<minutes>), to compare with pprof -diff_base.
	MemProfile string
	// Progress receives progress lines; nil discards them.
	Progress io.Writer
	// AppLog receives the app's warnings; nil only counts them.
	AppLog io.Writer
}

func defaultSoakConfig() SoakConfig {
	return SoakConfig{
		Duration: 30 * time.Minute, Sample: time.Minute, Calls: 500, Hold: 10 * time.Second,
		Churn: 50, Callbacks: 2, Flashes: 2, Window: 20 * time.Minute, Warmup: 5 * time.Minute,
		MaxGrowth: 0.10, Drain: 3 * time.Minute, PoolSize: 32,
	}
}

// The soak's short lifetimes, so that the run sees every key it made
// expire: nothing it creates lives longer than soakMaxTTL.
const (
	soakChurnTTL      = 30 * time.Second // churn bindings (released well before)
	soakQuarantine    = 20 * time.Second // released and expired pairs
	soakCallbackTTL   = 20 * time.Second // a callback's binding
	soakCallbackKeep  = 30 * time.Second // a callback's state
	soakDialqMaxAge   = 30 * time.Second // placed markers live MaxAge + 1m
	soakVerifyTTL     = 20 * time.Second
	soakVerifyWindows = 30 * time.Second // reuse, consume and rate-limit windows
	soakCallbackHold  = 2 * time.Second  // callback parties hang up after this
	soakCodes         = 50               // callback codes mapped at set-up
	soakFlashNumbers  = 200              // numbers verified in turn
	soakCallerIDs     = 20               // flash caller IDs
)

// soakPersistent are the keys a soak may leave beyond its baseline: the
// capped append-only logs, one key each, created on first use.
var soakPersistent = []string{store.CallsKey, dialq.Stream, verify.LogKey}

// SoakSample is one reading.
type SoakSample struct {
	// At is the time since the load started.
	At time.Duration
	// HeapAlloc and HeapInuse are read right after a garbage collection.
	HeapAlloc, HeapInuse uint64
	// Goroutines leaves out HTTP keep-alive connections' (HTTPConns).
	Goroutines, HTTPConns int
	// FDs counts this process's open files (Linux; -1 elsewhere): every
	// socket to the simulator and Redis.
	FDs int
	// RedisConns and RedisIdle are the Redis client's pool.
	RedisConns, RedisIdle uint32
	// SimConns is the simulator's WebSocket count.
	SimConns int
	// Keys is DBSIZE.
	Keys int64
	// Live is the app's live calls.
	Live int
	// Counters since the start.
	Placed, Completed, Misrouted, Failed          int64
	BindingsMade, BindingsReleased                int64
	CallbacksQueued, CallbacksDone, CallbacksFail int64
	FlashesQueued, FlashesPlaced                  int64
}

// csvHeader and csvRow write samples as CSV: the plot data.
const csvHeader = "minute,heap_alloc_mib,heap_inuse_mib,goroutines,http_conns,fds,redis_conns,redis_idle,sim_ws,redis_keys,live_calls," +
	"calls_placed,calls_completed,calls_misrouted,calls_failed,bindings_made,bindings_released,callbacks_queued,callbacks_done,callbacks_failed,flashes_queued,flashes_placed"

func (s SoakSample) csvRow() string {
	mib := func(b uint64) string { return strconv.FormatFloat(float64(b)/(1<<20), 'f', 2, 64) }
	f := []string{
		strconv.FormatFloat(s.At.Minutes(), 'f', 2, 64), mib(s.HeapAlloc), mib(s.HeapInuse),
		strconv.Itoa(s.Goroutines), strconv.Itoa(s.HTTPConns), strconv.Itoa(s.FDs),
		strconv.Itoa(int(s.RedisConns)), strconv.Itoa(int(s.RedisIdle)), strconv.Itoa(s.SimConns),
		strconv.FormatInt(s.Keys, 10), strconv.Itoa(s.Live),
	}
	for _, n := range []int64{s.Placed, s.Completed, s.Misrouted, s.Failed, s.BindingsMade, s.BindingsReleased,
		s.CallbacksQueued, s.CallbacksDone, s.CallbacksFail, s.FlashesQueued, s.FlashesPlaced} {
		f = append(f, strconv.FormatInt(n, 10))
	}
	return strings.Join(f, ",")
}

// Trend is the least-squares line through one quantity's samples.
type Trend struct {
	Name string
	// Samples is how many samples the line is fitted to.
	Samples int
	// From and To bound the samples' times.
	From, To time.Duration
	// Mean is the samples' mean; SlopePerMin the line's slope per minute.
	Mean, SlopePerMin float64
	// Growth is the line's rise from From to To relative to Mean.
	Growth float64
	// Max is the largest Growth that passes.
	Max float64
	OK  bool
	// Note says why a trend fails without a slope (too few samples).
	Note string
}

// minTrendSamples is the fewest samples a trend is judged on.
const minTrendSamples = 5

// fitTrend fits the least-squares line v = a + b·t to the points and judges
// it: an upward growth over the span above max fails; flat or falling
// passes.
func fitTrend(name string, at []time.Duration, v []float64, max float64) Trend {
	t := Trend{Name: name, Samples: len(v), Max: max}
	if len(v) < minTrendSamples || len(at) != len(v) {
		t.Note = fmt.Sprintf("%d samples, need %d", len(v), minTrendSamples)
		return t
	}
	t.From, t.To = at[0], at[len(at)-1]
	n := float64(len(v))
	var st, sv float64
	for i := range v {
		st += at[i].Minutes()
		sv += v[i]
	}
	mt, mv := st/n, sv/n
	var sxy, sxx float64
	for i := range v {
		dx := at[i].Minutes() - mt
		sxy += dx * (v[i] - mv)
		sxx += dx * dx
	}
	t.Mean = mv
	if sxx == 0 || mv == 0 {
		t.OK = sxx != 0
		if !t.OK {
			t.Note = "all samples at one time"
		}
		return t
	}
	t.SlopePerMin = sxy / sxx
	t.Growth = t.SlopePerMin * (t.To - t.From).Minutes() / mv
	t.OK = t.Growth <= max
	return t
}

// window returns the samples the trend test reads: those in the last
// window of the run and after warmup.
func window(samples []SoakSample, end, window, warmup time.Duration) []SoakSample {
	from := max(end-window, warmup)
	var out []SoakSample
	for _, s := range samples {
		if s.At >= from {
			out = append(out, s)
		}
	}
	return out
}

// trends judges heap and goroutines over the samples.
func trends(samples []SoakSample, maxGrowth float64) []Trend {
	at := make([]time.Duration, len(samples))
	heap := make([]float64, len(samples))
	g := make([]float64, len(samples))
	for i, s := range samples {
		at[i], heap[i], g[i] = s.At, float64(s.HeapAlloc), float64(s.Goroutines)
	}
	return []Trend{fitTrend("heap_alloc", at, heap, maxGrowth), fitTrend("goroutines", at, g, maxGrowth)}
}

// keyFamily names a key's family: hash tags become {…} and every
// segment (between colons) holding a digit becomes N, so that leftovers
// can be counted by kind.
func keyFamily(k string) string {
	var b strings.Builder
	inTag := false
	for _, r := range k {
		switch {
		case r == '{':
			inTag = true
			b.WriteString("{…")
		case r == '}':
			inTag = false
			b.WriteRune(r)
		case !inTag:
			b.WriteRune(r)
		}
	}
	segs := strings.Split(b.String(), ":")
	for i, sg := range segs {
		if strings.ContainsAny(sg, "0123456789") && !strings.Contains(sg, "{") {
			segs[i] = "N"
		}
	}
	return strings.Join(segs, ":")
}

// SoakReport is what a soak measured.
type SoakReport struct {
	Config  SoakConfig
	Redis   string
	Started time.Time
	Samples []SoakSample
	Trends  []Trend
	// BaselineKeys is DBSIZE before the load; FinalKeys after the drain,
	// of which Persistent are soakPersistent's.
	BaselineKeys, FinalKeys, Persistent int64
	// Leftover counts the keys beyond the baseline and soakPersistent,
	// by family; DrainTook is how long the keys took to come back.
	Leftover  map[string]int
	DrainTook time.Duration
	// End state: the app's live calls and the simulator's channels and
	// bridges once everything was hung up.
	LiveAfter, ChannelsAfter, BridgesAfter int
	// IdentitiesLive counts the identities sent to far parties that the
	// monitor checked on live channels during the run (checkSent);
	// Identities those the simulator still knew per party at the end
	// (live channels and its last 1000 destroyed ones, checkIdentities).
	IdentitiesLive int64
	Identities     int
	// Totals.
	Last SoakSample
	// CallbackReasons counts failed callbacks by reason.
	CallbackReasons map[string]int
	Errors          []string
	AppWarnings     int
	AppWarningEx    []string
}

// Pass reports whether the soak passed.
func (r *SoakReport) Pass() bool {
	for _, t := range r.Trends {
		if !t.OK {
			return false
		}
	}
	return len(r.Trends) > 0 && len(r.Errors) == 0 && len(r.Leftover) == 0 &&
		r.Last.Misrouted == 0 && r.Last.Failed == 0 && r.Last.Completed > 0 &&
		r.LiveAfter == 0 && r.ChannelsAfter == 0 && r.BridgesAfter == 0
}

func (r *SoakReport) errorf(format string, args ...any) {
	r.Errors = append(r.Errors, fmt.Sprintf(format, args...))
}

// Print writes the report: configuration, samples as CSV, trends, key
// count, verdict.
func (r *SoakReport) Print(w io.Writer) {
	c := r.Config
	fmt.Fprintf(w, "soak: %s, %d concurrent calls held ~%s each, %g bindings/s, %g callbacks/s, %g flash calls/s; sample every %s\n",
		c.Duration, c.Calls, c.Hold, c.Churn, c.Callbacks, c.Flashes, c.Sample)
	fmt.Fprintf(w, "machine: %s/%s, %d CPUs, %s; redis %s\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), r.Redis)
	fmt.Fprintln(w, "\nsamples (CSV):")
	fmt.Fprintln(w, csvHeader)
	for _, s := range r.Samples {
		fmt.Fprintln(w, s.csvRow())
	}
	l := r.Last
	fmt.Fprintf(w, "\ncalls: %d placed, %d completed (bridged to the bound party, then hung up), %d misrouted, %d failed\n",
		l.Placed, l.Completed, l.Misrouted, l.Failed)
	fmt.Fprintf(w, "identities sent to far parties: %d checked on live channels during the run, %d more per party at the end (the simulator's recent history)\n",
		r.IdentitiesLive, r.Identities)
	fmt.Fprintf(w, "bindings: %d created, %d released; callbacks: %d queued, %d completed, %d failed %v; flash calls: %d queued, %d placed\n",
		l.BindingsMade, l.BindingsReleased, l.CallbacksQueued, l.CallbacksDone, l.CallbacksFail, r.CallbackReasons, l.FlashesQueued, l.FlashesPlaced)
	fmt.Fprintln(w, "\ntrend (least squares over the window; growth = slope × span / mean):")
	for _, t := range r.Trends {
		verdict := "ok"
		if !t.OK {
			verdict = "FAIL"
		}
		if t.Note != "" {
			fmt.Fprintf(w, "  %-10s %s: %s\n", t.Name, verdict, t.Note)
			continue
		}
		fmt.Fprintf(w, "  %-10s %s: %d samples %s–%s, mean %.0f, slope %+.1f/min, growth %+.2f %% (limit +%.0f %%)\n",
			t.Name, verdict, t.Samples, minutes(t.From), minutes(t.To), t.Mean, t.SlopePerMin, 100*t.Growth, 100*t.Max)
	}
	fmt.Fprintf(w, "\nredis keys: %d baseline, %d after the drain (%s) of which %d the capped logs %v; leftover %v\n",
		r.BaselineKeys, r.FinalKeys, r.DrainTook.Round(time.Second), r.Persistent, soakPersistent, r.Leftover)
	fmt.Fprintf(w, "after hanging up: %d live calls, %d channels, %d bridges\n", r.LiveAfter, r.ChannelsAfter, r.BridgesAfter)
	if r.AppWarnings > 0 {
		fmt.Fprintf(w, "app warnings: %d, first %q\n", r.AppWarnings, r.AppWarningEx)
	}
	for _, e := range r.Errors {
		fmt.Fprintln(w, "error:", e)
	}
	if r.Pass() {
		fmt.Fprintln(w, "verdict: PASS")
	} else {
		fmt.Fprintln(w, "verdict: FAIL")
	}
}

func minutes(d time.Duration) string { return strconv.FormatFloat(d.Minutes(), 'f', 1, 64) + "m" }

// soak is one soak run's state.
type soak struct {
	cfg      SoakConfig
	rep      *SoakReport
	progress io.Writer
	rdb      redis.UniversalClient
	sim      *simProc
	app      *call.App
	client   *ari.Client
	bindings *binding.Service
	parties  []party
	warns    *warnWriter

	// seen maps a live inbound channel to what the monitor saw of it.
	mu   sync.Mutex
	seen map[string]seenCall
	// codes maps a callback's first party to its second.
	codes map[string]string
	// xOf maps each caller's and callee's number to their virtual number.
	xOf map[string]string
	// identities counts the identities checked (checkSent).
	identities atomic.Int64

	placed, completed, misrouted, failed atomic.Int64
	bindingsMade, bindingsReleased       atomic.Int64
	cbQueued, cbDone, cbFail             atomic.Int64
	flashQueued, flashPlaced             atomic.Int64
	cbMisrouted                          atomic.Int64
	cbReasons                            sync.Map // reason → *atomic.Int64
	errMu                                sync.Mutex
	firstErrs                            map[string]string
}

// seenCall is a bridged call as the monitor saw it.
type seenCall struct {
	// judged is set once the monitor saw the call bridged; until then
	// the entry only says a caller placed it.
	judged bool
	out    string
	ok     bool
	party  int // the caller name's party index
}

// Soak runs the soak. The report is returned even with an error when
// something was measured.
func Soak(ctx context.Context, cfg SoakConfig) (*SoakReport, error) {
	s := &soak{cfg: cfg, progress: cfg.Progress, warns: &warnWriter{tee: cfg.AppLog},
		seen: make(map[string]seenCall), codes: make(map[string]string), xOf: make(map[string]string), firstErrs: make(map[string]string)}
	if s.progress == nil {
		s.progress = io.Discard
	}
	s.rep = &SoakReport{Config: cfg, Started: time.Now(), Leftover: map[string]int{}, CallbackReasons: map[string]int{}}
	err := s.run(ctx)
	s.rep.AppWarnings, s.rep.AppWarningEx = s.warns.counts()
	s.errMu.Lock()
	for what, e := range s.firstErrs {
		s.rep.errorf("%s: %s", what, e)
	}
	s.errMu.Unlock()
	s.cbReasons.Range(func(k, v any) bool {
		s.rep.CallbackReasons[k.(string)] = int(v.(*atomic.Int64).Load())
		return true
	})
	return s.rep, err
}

func (s *soak) logf(format string, args ...any) {
	fmt.Fprintf(s.progress, "callload soak: "+format+"\n", args...)
}

// fail counts a failure of kind what, keeping its first error.
func (s *soak) fail(what string, err error) {
	s.errMu.Lock()
	if _, ok := s.firstErrs[what]; !ok {
		s.firstErrs[what] = err.Error()
	}
	s.errMu.Unlock()
}

func (s *soak) run(ctx context.Context) error {
	cfg := s.cfg
	redisURL := cfg.RedisURL
	if redisURL == "" {
		srv, err := startRedis(ctx)
		if err != nil {
			return err
		}
		defer srv.stop()
		redisURL = srv.URL
	}
	s.rep.Redis = redisURL
	rdb, err := store.Open(redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	s.rdb = rdb
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis %s: %w", redisURL, err)
	}
	// The driver keeps a connection per caller to the simulator, so that
	// its own connections do not churn in the samples.
	s.sim, err = startSim(ctx, simUser, simPassword, cfg.Calls+16)
	if err != nil {
		return err
	}
	defer s.sim.stop()
	s.logf("redis %s, simulator %s (pid %d)", redisURL, s.sim.URL, s.sim.Pid)

	if err := s.setup(ctx); err != nil {
		return err
	}
	stopApp, err := s.startApp(ctx)
	if err != nil {
		return err
	}
	defer stopApp()

	// Services as serve wires them: callbacks and flash calls go through
	// the dial queue to this process's call.App.
	log := slog.New(slog.NewTextHandler(s.warns, &slog.HandlerOptions{Level: slog.LevelWarn}))
	q := dialq.NewWithConfig(rdb, dialq.Config{MaxAge: soakDialqMaxAge, Logger: log})
	cbs := callback.New(rdb, callback.Deps{Bindings: s.bindings, Queue: q, Dialer: s.app, Sender: countingSender{}, Publisher: s},
		callback.Config{BindingTTL: soakCallbackTTL, Keep: soakCallbackKeep, Logger: log})
	w := soakVerifyWindows
	vs := verify.New(rdb, s.bindings.Parser(), verify.QueueFlasher{Queue: q}, verify.Config{
		TTL: soakVerifyTTL, ReuseWindow: w, ConsumeWindow: w,
		PerNumber: verify.Limit{Max: 1000, Window: w}, PerPrefix: verify.Limit{Max: 100_000, Window: w},
		PerRequester: verify.Limit{Max: 100_000, Window: w}, Logger: log,
	})
	if _, err := vs.AddCallerIDs(ctx, callerIDs()...); err != nil {
		return fmt.Errorf("flash caller IDs: %w", err)
	}
	for i := range soakCodes {
		first, second := fmt.Sprintf("+8613500000%03d", i), fmt.Sprintf("+8613400000%03d", i)
		if err := cbs.MapCode(ctx, soakCode(i), first, second); err != nil {
			return fmt.Errorf("map callback code: %w", err)
		}
		s.codes[first] = second
	}
	// The parties of callbacks answer and hang up after a while; flash
	// targets ring (the app hangs up as soon as they do).
	for _, p := range []string{"+86135*", "+86134*"} {
		if err := s.sim.do(ctx, http.MethodPost, "/_sim/endpoints", map[string]any{"pattern": p, "outcome": "answer",
			"after_ms": 50, "hangup_after_ms": soakCallbackHold.Milliseconds()}, nil); err != nil {
			return err
		}
	}

	bg, stopBg := context.WithCancel(context.WithoutCancel(ctx))
	var workers sync.WaitGroup
	workers.Go(func() { cbs.Run(bg) })
	workers.Go(func() {
		q.Run(bg, "soak", dialq.Router{
			callback.JobKind:    cbs.Dial,
			verify.FlashJobKind: verify.FlashJobs{Service: vs, Dialer: countingFlasher{s.app, &s.flashPlaced}}.Place,
		}.Place)
	})
	defer func() { stopBg(); workers.Wait() }()

	// The baseline: every long-lived key made, nothing of the load yet.
	baseKeys, err := scanKeys(ctx, rdb)
	if err != nil {
		return err
	}
	s.rep.BaselineKeys = int64(len(baseKeys))
	s.logf("baseline: %d keys", len(baseKeys))

	// The load.
	start := time.Now()
	load, stopLoad := context.WithTimeout(ctx, cfg.Duration)
	defer stopLoad()
	var lw, callers sync.WaitGroup
	mon, stopMon := context.WithCancel(ctx)
	lw.Go(func() { s.monitor(mon) })
	for i := range s.parties {
		callers.Go(func() { s.caller(load, i) })
	}
	lw.Go(func() { callers.Wait(); stopMon() })
	lw.Go(func() { s.churn(load) })
	lw.Go(func() { s.every(load, cfg.Callbacks, func(n int) { s.startCallback(load, cbs, n) }) })
	lw.Go(func() { s.every(load, cfg.Flashes, func(n int) { s.startFlash(load, vs, n) }) })

	tick := time.NewTicker(cfg.Sample)
	defer tick.Stop()
	s.logf("load running for %s", cfg.Duration)
sampling:
	for {
		select {
		case <-load.Done():
			break sampling
		case <-tick.C:
			sm := s.sample(ctx, time.Since(start))
			if load.Err() != nil {
				break sampling // taken while the callers were hanging up
			}
			s.rep.Samples = append(s.rep.Samples, sm)
			if cfg.MemProfile != "" {
				if err := writeHeapProfile(cfg.MemProfile + "." + strconv.FormatFloat(sm.At.Minutes(), 'f', 0, 64)); err != nil {
					s.fail("heap profile", err)
				}
			}
			s.logf("%s: heap %.1f MiB, %d goroutines, %d fds, %d keys, %d live calls, %d completed, %d misrouted, %d failed",
				minutes(sm.At), float64(sm.HeapAlloc)/(1<<20), sm.Goroutines, sm.FDs, sm.Keys, sm.Live, sm.Completed, sm.Misrouted, sm.Failed)
		}
	}
	lw.Wait()
	end := time.Since(start)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	s.rep.Trends = trends(window(s.rep.Samples, end, cfg.Window, cfg.Warmup), cfg.MaxGrowth)

	// Every caller hung its last call up; wait for the callbacks' and
	// flash calls' to end too.
	_ = pollUntil(ctx, time.Minute, func() bool {
		st, err := s.sim.stats(ctx)
		return err == nil && s.app.LiveCalls() == 0 && st.ActiveChannels == 0 && st.ActiveBridges == 0
	})
	st, err := s.sim.stats(ctx)
	if err != nil {
		return err
	}
	s.rep.LiveAfter, s.rep.ChannelsAfter, s.rep.BridgesAfter = s.app.LiveCalls(), st.ActiveChannels, st.ActiveBridges

	// The keys: everything the load made expires within soakMaxTTL.
	s.logf("load stopped after %s; waiting up to %s for the keys to expire", end.Round(time.Second), cfg.Drain)
	t := time.Now()
	var left map[string]int
	var final, persistent int64
	_ = pollUntil(ctx, cfg.Drain, func() bool {
		keys, err := scanKeys(ctx, rdb) // SCAN also drops keys that expired and were not yet collected
		if err != nil {
			return false
		}
		left, final, persistent = leftover(keys, baseKeys)
		return len(left) == 0
	})
	s.rep.DrainTook = time.Since(t)
	s.rep.FinalKeys, s.rep.Persistent, s.rep.Leftover = final, persistent, left
	s.rep.Last = s.sample(ctx, time.Since(start))
	if err := s.checkIdentities(ctx); err != nil {
		s.rep.errorf("identities: %v", err)
	}
	s.rep.IdentitiesLive = s.identities.Load()
	if n := s.cbMisrouted.Load(); n > 0 {
		s.rep.errorf("%d callback bridges joined parties that are no code's pair", n)
	}
	return nil
}

// checkIdentities asks the simulator what every caller, callee and
// callback party was ever sent as an identity (the From of an INVITE,
// connected-line updates): a caller and its callee only their virtual
// number, a callback party only numbers of the pool.
func (s *soak) checkIdentities(ctx context.Context) error {
	pooled := func(n string) bool {
		return strings.HasPrefix(n, "+86170") || strings.HasPrefix(n, "86170") || strings.HasPrefix(n, "170")
	}
	check := func(number string, ok func(string) bool) error {
		var res struct {
			Seen []string `json:"seen"`
		}
		if err := s.sim.do(ctx, http.MethodGet, "/_sim/identities?number="+url.QueryEscape(number), nil, &res); err != nil {
			return err
		}
		s.rep.Identities += len(res.Seen)
		for _, id := range res.Seen {
			if !ok(id) {
				s.misrouted.Add(1)
				return fmt.Errorf("%s was sent %q", e164.Mask(number), id)
			}
		}
		return nil
	}
	var errs []error
	for _, p := range s.parties {
		x := p.x
		is := func(n string) bool { return n == x || "+86"+strings.TrimPrefix(n, "86") == x || "+86"+n == x }
		errs = append(errs, check(p.a, is), check(p.b, is))
	}
	for a, b := range s.codes {
		errs = append(errs, check(a, pooled), check(b, pooled))
	}
	return errors.Join(errs...)
}

// leftover counts, by family, the keys not in base nor soakPersistent.
func leftover(keys, base map[string]bool) (left map[string]int, total, persistent int64) {
	left = map[string]int{}
	for k := range keys {
		switch {
		case base[k]:
		case slices.Contains(soakPersistent, k):
			persistent++
		default:
			left[keyFamily(k)]++
		}
	}
	return left, int64(len(keys)), persistent
}

// scanKeys lists every key (on every master of a cluster).
func scanKeys(ctx context.Context, rdb redis.UniversalClient) (map[string]bool, error) {
	keys := map[string]bool{}
	var mu sync.Mutex
	scan := func(ctx context.Context, c *redis.Client) error {
		it := c.Scan(ctx, 0, "*", 1000).Iterator()
		for it.Next(ctx) {
			mu.Lock()
			keys[it.Val()] = true
			mu.Unlock()
		}
		return it.Err()
	}
	var err error
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, scan)
	case *redis.Client:
		err = scan(ctx, c)
	default:
		err = errors.New("scan keys: unsupported Redis client")
	}
	return keys, err
}

func pollUntil(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(250 * time.Millisecond)
	}
	return true
}

func soakCode(i int) string { return "SOAK-" + strconv.Itoa(i) }

func callerIDs() []string {
	ids := make([]string, soakCallerIDs)
	for i := range ids {
		ids[i] = fmt.Sprintf("+8617100000%03d", i)
	}
	return ids
}

// setup fills the pool and binds one pair per caller for the whole run.
func (s *soak) setup(ctx context.Context) error {
	parser, err := e164.NewParser("CN")
	if err != nil {
		return err
	}
	p := pool.New(s.rdb, parser)
	entries := make([]pool.Entry, s.cfg.PoolSize)
	for i := range entries {
		entries[i] = pool.Entry{Number: fmt.Sprintf("+86170%08d", i)}
	}
	if _, err := p.Add(ctx, entries); err != nil {
		return fmt.Errorf("pool: %w", err)
	}
	s.bindings = binding.New(s.rdb, p, parser, binding.Config{Quarantine: soakQuarantine})
	base := rand.IntN(100_000_000 - s.cfg.Calls)
	ttl := s.cfg.Duration + s.cfg.Drain + time.Hour
	s.parties = make([]party, s.cfg.Calls)
	for i := range s.parties {
		a, b := fmt.Sprintf("+86138%08d", base+i), fmt.Sprintf("+86139%08d", base+i)
		bd, err := s.bindings.Create(ctx, binding.Request{A: a, B: b, TTL: ttl})
		if err != nil {
			return fmt.Errorf("create binding %d: %w", i, err)
		}
		s.parties[i] = party{a: a, b: b, x: bd.X, exten: strings.TrimPrefix(bd.X, "+86"), name: strconv.Itoa(i)}
		s.xOf[a], s.xOf[b] = bd.X, bd.X
	}
	return nil
}

// startApp runs the ARI client and call.App as privnum serve does.
func (s *soak) startApp(ctx context.Context) (stop func(), err error) {
	log := slog.New(slog.NewTextHandler(s.warns, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s.client, err = ari.New(ari.Config{URL: s.sim.URL, Username: simUser, Password: simPassword, Application: appName, Logger: log})
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	s.app = call.New(s.client, s.bindings, cdr.New(s.rdb, 0), call.Config{Application: appName, Logger: log, Metrics: call.NewMetrics(reg)})
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.client.Run(runCtx, s.app)
	}()
	stop = func() {
		cancel()
		<-done
		s.app.Close()
	}
	if !pollUntil(ctx, 10*time.Second, func() bool {
		st, err := s.sim.stats(ctx)
		return s.client.Connected() && err == nil && st.Connections > 0
	}) {
		stop()
		return nil, errors.New("app did not connect to the simulator")
	}
	if err := s.sim.answerAllAfter(ctx, 50*time.Millisecond); err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}

// caller is one of the concurrent callers: it calls its bound party,
// waits for the monitor to see the call bridged (and judge where to),
// holds it and has one side hang up, again and again.
func (s *soak) caller(ctx context.Context, i int) {
	p := &s.parties[i]
	// Spread the first calls over one hold time.
	if !sleepCtx(ctx, time.Duration(rand.Int64N(int64(s.cfg.Hold)))) {
		return
	}
	for n := 0; ctx.Err() == nil; n++ {
		var res struct {
			ID string `json:"channel_id"`
		}
		cctx := context.WithoutCancel(ctx) // a call placed is always ended
		if err := s.sim.do(cctx, http.MethodPost, "/_sim/calls", map[string]string{"from": p.a, "caller_name": p.name, "exten": p.exten}, &res); err != nil {
			s.failed.Add(1)
			s.fail("place call", err)
			sleepCtx(ctx, time.Second)
			continue
		}
		s.placed.Add(1)
		s.mu.Lock()
		s.seen[res.ID] = seenCall{}
		s.mu.Unlock()
		seen, ok := s.waitSeen(cctx, res.ID, 15*time.Second)
		if !ok {
			s.mu.Lock()
			delete(s.seen, res.ID)
			s.mu.Unlock()
			s.failed.Add(1)
			s.fail("call not bridged", fmt.Errorf("call %s from party %d not seen bridged within 15s", res.ID, i))
			s.hangup(cctx, res.ID)
			continue
		}
		if seen.party != i { // the call this caller placed is some other party's
			seen.ok = false
			s.fail("misrouted", fmt.Errorf("party %d's call %s carries party %d's name", i, res.ID, seen.party))
		}
		if !seen.ok {
			s.misrouted.Add(1)
		}
		hold := s.cfg.Hold/2 + time.Duration(rand.Int64N(int64(s.cfg.Hold)+1))
		sleepCtx(ctx, hold) // the load's end ends the hold early
		id := res.ID
		if n%2 == 1 {
			id = seen.out // the callee hangs up
		}
		s.hangup(cctx, id)
		s.mu.Lock()
		delete(s.seen, res.ID)
		s.mu.Unlock()
		if seen.ok {
			s.completed.Add(1)
		}
	}
}

func (s *soak) hangup(ctx context.Context, id string) {
	if err := s.sim.hangup(ctx, id); err != nil {
		s.fail("hang up", err)
	}
}

// waitSeen waits until the monitor saw the inbound channel id bridged.
func (s *soak) waitSeen(ctx context.Context, id string, timeout time.Duration) (seenCall, bool) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		sc := s.seen[id]
		s.mu.Unlock()
		if sc.judged {
			return sc, true
		}
		if !sleepCtx(ctx, 100*time.Millisecond) {
			return seenCall{}, false
		}
	}
	return seenCall{}, false
}

// monitor reads the simulator's channels every half second and judges
// every bridge it has not judged yet: a caller's call must join A_i with
// B_i, both seeing X_i; a callback must join a code's two parties, both
// seeing the same number.
func (s *soak) monitor(ctx context.Context) {
	judged := map[string]bool{} // callback bridges already judged
	checked := map[string]int{} // identities of a live channel checked so far
	for sleepCtx(ctx, 500*time.Millisecond) {
		var chans []soakChannel
		if err := s.sim.do(ctx, http.MethodGet, "/_sim/channels", nil, &chans); err != nil {
			if ctx.Err() == nil {
				s.fail("simulator channels", err)
			}
			continue
		}
		s.checkSent(chans, checked)
		type pair struct{ in, out, out2 *soakChannel }
		bridges := map[string]*pair{}
		for i := range chans {
			ch := &chans[i]
			if ch.BridgeID == "" || !ch.Answered {
				continue
			}
			p := bridges[ch.BridgeID]
			if p == nil {
				p = &pair{}
				bridges[ch.BridgeID] = p
			}
			switch {
			case ch.Inbound:
				p.in = ch
			case p.out == nil:
				p.out = ch
			default:
				p.out2 = ch
			}
		}
		live := map[string]bool{}
		s.mu.Lock()
		for id, p := range bridges {
			switch {
			case p.in != nil && p.out != nil:
				if sc, ok := s.seen[p.in.ID]; !ok || sc.judged {
					continue // not a live call of a caller's, or judged
				}
				i, err := strconv.Atoi(p.in.Caller.Name)
				ok := err == nil && i >= 0 && i < len(s.parties)
				if ok {
					// The caller's own leg is given the virtual number as
					// caller ID asynchronously (it may still show A
					// here); what each party is sent is checked at the
					// end (identities).
					want := &s.parties[i]
					ok = p.out.FarNumber == want.b && p.out.Caller.Number == want.x
				}
				if !ok {
					s.fail("misrouted", fmt.Errorf("party %s: outbound to %s, the parties seeing %q and %q", p.in.Caller.Name, e164.Mask(p.out.FarNumber), p.in.Caller.Number, p.out.Caller.Number))
				}
				s.seen[p.in.ID] = seenCall{out: p.out.ID, ok: ok, party: i, judged: true}
			case p.out != nil && p.out2 != nil:
				live[id] = true
				if judged[id] {
					continue
				}
				judged[id] = true
				a, b := p.out.FarNumber, p.out2.FarNumber
				if s.codes[a] != b && s.codes[b] != a || p.out.Caller.Number != p.out2.Caller.Number {
					s.cbMisrouted.Add(1)
				}
			}
		}
		s.mu.Unlock()
		for id := range judged {
			if !live[id] {
				delete(judged, id)
			}
		}
	}
}

// soakChannel is a simulator channel with what its far party was sent.
type soakChannel struct {
	simChannel
	Identities []struct {
		Number string `json:"number"`
	} `json:"identities"`
}

// checkSent checks what the far party of every live channel has been sent
// since the last look (checked: channel → identities already checked):
// a caller and its callee only their virtual number, a callback party
// only pool numbers, a flash call's target only a verification caller ID.
// A far party that is none of these must not be sent any party's number.
func (s *soak) checkSent(chans []soakChannel, checked map[string]int) {
	live := make(map[string]bool, len(chans))
	for i := range chans {
		ch := &chans[i]
		live[ch.ID] = true
		ok := s.allowed(ch.FarNumber)
		for _, id := range ch.Identities[min(checked[ch.ID], len(ch.Identities)):] {
			s.identities.Add(1)
			if !ok(id.Number) {
				s.misrouted.Add(1)
				s.fail("identity", fmt.Errorf("%s was sent %s", e164.Mask(ch.FarNumber), e164.Mask(id.Number)))
			}
		}
		checked[ch.ID] = len(ch.Identities)
	}
	for id := range checked {
		if !live[id] {
			delete(checked, id)
		}
	}
}

// allowed returns what the party far may be sent.
func (s *soak) allowed(far string) func(string) bool {
	if x, ok := s.xOf[far]; ok {
		return func(n string) bool { return n == x }
	}
	switch {
	case strings.HasPrefix(far, "+86134") || strings.HasPrefix(far, "+86135"):
		return func(n string) bool { return strings.HasPrefix(n, "+86170") }
	case strings.HasPrefix(far, "+86133"):
		return func(n string) bool { return strings.HasPrefix(n, "+86171") }
	}
	return func(n string) bool { return strings.HasPrefix(n, "+86170") || strings.HasPrefix(n, "+86171") }
}

// churn creates Churn bindings per second between fresh parties and
// releases each after 1 to 5 s.
func (s *soak) churn(ctx context.Context) {
	var rel sync.WaitGroup
	defer rel.Wait()
	s.every(ctx, s.cfg.Churn, func(n int) {
		a, b := fmt.Sprintf("+86136%08d", n%100_000_000), fmt.Sprintf("+86137%08d", n%100_000_000)
		bd, err := s.bindings.Create(ctx, binding.Request{A: a, B: b, TTL: soakChurnTTL})
		if err != nil {
			if ctx.Err() == nil {
				s.fail("create binding", err)
			}
			return
		}
		s.bindingsMade.Add(1)
		rel.Go(func() {
			sleepCtx(ctx, time.Second+time.Duration(rand.Int64N(int64(4*time.Second))))
			if _, err := s.bindings.Release(context.WithoutCancel(ctx), bd.ID); err != nil {
				s.fail("release binding", err)
				return
			}
			s.bindingsReleased.Add(1)
		})
	})
}

func (s *soak) startCallback(ctx context.Context, cbs *callback.Service, n int) {
	if _, err := cbs.Start(ctx, callback.Request{Code: soakCode(n % soakCodes)}); err != nil {
		if ctx.Err() == nil {
			s.fail("start callback", err)
		}
		return
	}
	s.cbQueued.Add(1)
}

func (s *soak) startFlash(ctx context.Context, vs *verify.Service, n int) {
	number := fmt.Sprintf("+8613300000%03d", n%soakFlashNumbers)
	if _, err := vs.Start(ctx, verify.StartRequest{Number: number, Requester: "soak"}); err != nil {
		if ctx.Err() == nil {
			s.fail("start verification", err)
		}
		return
	}
	s.flashQueued.Add(1)
}

// every calls f(0), f(1), … at rate per second until ctx is done, each in
// its own goroutine (waited for before every returns).
func (s *soak) every(ctx context.Context, rate float64, f func(n int)) {
	if rate <= 0 {
		return
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	for n := 0; ; n++ {
		if !sleepCtx(ctx, time.Until(start.Add(time.Duration(n)*interval))) {
			return
		}
		wg.Go(func() { f(n) })
	}
}

// PublishCallback counts callbacks' final states.
func (s *soak) PublishCallback(_ context.Context, cb callback.Callback) error {
	switch cb.State {
	case call.CallbackCompleted:
		s.cbDone.Add(1)
	case call.CallbackFailed:
		s.cbFail.Add(1)
		v, _ := s.cbReasons.LoadOrStore(cb.Reason, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	}
	return nil
}

// countingSender drops the failure messages.
type countingSender struct{}

func (countingSender) Send(context.Context, callback.Message) error { return nil }

// countingFlasher counts the flash calls placed.
type countingFlasher struct {
	d verify.FlashDialer
	n *atomic.Int64
}

func (f countingFlasher) Flash(ctx context.Context, number, callerID string) error {
	err := f.d.Flash(ctx, number, callerID)
	if err == nil {
		f.n.Add(1)
	}
	return err
}

// sample takes one reading.
func (s *soak) sample(ctx context.Context, at time.Duration) SoakSample {
	done := make(chan SoakSample)
	go func() {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		g, conns := goroutines()
		done <- SoakSample{HeapAlloc: m.HeapAlloc, HeapInuse: m.HeapInuse, Goroutines: g - 1, HTTPConns: conns}
	}()
	sm := <-done
	sm.At = at
	sm.FDs = openFDs()
	if ps := s.rdb.PoolStats(); ps != nil {
		sm.RedisConns, sm.RedisIdle = ps.TotalConns, ps.IdleConns
	}
	if st, err := s.sim.stats(ctx); err == nil {
		sm.SimConns = st.Connections
	}
	sm.Keys, _ = dbSize(ctx, s.rdb)
	sm.Live = s.app.LiveCalls()
	sm.Placed, sm.Completed, sm.Misrouted, sm.Failed = s.placed.Load(), s.completed.Load(), s.misrouted.Load(), s.failed.Load()
	sm.BindingsMade, sm.BindingsReleased = s.bindingsMade.Load(), s.bindingsReleased.Load()
	sm.CallbacksQueued, sm.CallbacksDone, sm.CallbacksFail = s.cbQueued.Load(), s.cbDone.Load(), s.cbFail.Load()
	sm.FlashesQueued, sm.FlashesPlaced = s.flashQueued.Load(), s.flashPlaced.Load()
	return sm
}

// dbSize is DBSIZE, summed over the masters of a cluster.
func dbSize(ctx context.Context, rdb redis.UniversalClient) (int64, error) {
	if c, ok := rdb.(*redis.ClusterClient); ok {
		var n atomic.Int64
		err := c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			k, err := m.DBSize(ctx).Result()
			n.Add(k)
			return err
		})
		return n.Load(), err
	}
	return rdb.DBSize(ctx).Result()
}

// openFDs counts this process's open files; -1 where /proc is missing.
func openFDs() int {
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(es) - 1 // the directory being read
}

// sleepCtx sleeps d, or less if ctx ends first; it reports whether ctx is
// still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
