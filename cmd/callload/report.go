package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Report is what a run measured.
type Report struct {
	Calls       int     `json:"calls"`
	Warmup      int     `json:"warmup"`
	Concurrency int     `json:"concurrency"`
	Rate        float64 `json:"rate,omitempty"`
	Redis       string  `json:"redis"`
	SimPid      int     `json:"sim_pid"`
	ARIIdle     string  `json:"ari_http_idle_conns"`

	// Injected counts inbound calls the simulator accepted; Held the live
	// calls of the app once the ramp settled; Bridged the calls the
	// simulator showed bridged, caller to the bound party.
	Injected int `json:"injected"`
	Held     int `json:"held"`
	Bridged  int `json:"bridged"`
	// Misrouted counts bridges that do not join A_i with B_i, or that show
	// the callee something else than the virtual number.
	Misrouted int `json:"misrouted"`
	// RampSeconds is from the first injection to every call bridged.
	RampSeconds float64 `json:"ramp_seconds"`
	// InjectSeconds is how long the injection took.
	InjectSeconds float64 `json:"inject_seconds"`
	// ARIDialsRamp counts the TCP connections the ARI client opened during
	// the ramp (a transport keeping too few idle connections redials); -1
	// when callload cannot see them.
	ARIDialsRamp int64 `json:"ari_dials_ramp"`
	// CPUPerCall is the CPU time (user + system) this process spent per
	// call during the ramp, in µs: the app, plus the driver's requests.
	CPUPerCall float64 `json:"cpu_us_per_call"`
	// SimCPUPerCall and RedisCPUPerCall are the same for the simulator and
	// the throwaway redis-server, which share the machine with the app.
	SimCPUPerCall   float64 `json:"sim_cpu_us_per_call"`
	RedisCPUPerCall float64 `json:"redis_cpu_us_per_call"`

	Base   MemSample `json:"baseline"`
	Loaded MemSample `json:"loaded"`
	After  MemSample `json:"after_teardown"`
	// After2 is read after a second cycle of the same calls (LeakCycle).
	After2 MemSample `json:"after_second_cycle"`

	// BytesPerCall is the growth of HeapAlloc, plus that of StackInuse if
	// it grew, over the baseline, per call; the memory target applies to it.
	BytesPerCall      float64 `json:"bytes_per_call"`
	HeapPerCall       float64 `json:"heap_alloc_per_call"`
	StackPerCall      float64 `json:"stack_per_call"`
	HeapInusePerCall  float64 `json:"heap_inuse_per_call"`
	GoroutinesPerCall float64 `json:"goroutines_per_call"`

	Routing Histogram `json:"routing"`
	E2E     Exact     `json:"end_to_end"`
	// Resolve times the app's binding lookups (number parsing and the
	// Redis read) during the ramp: the bulk of the routing span.
	Resolve Exact `json:"resolve"`
	// GCRamp and GCPauseRamp are this process's collections during the
	// ramp and their stop-the-world pauses.
	GCRamp      uint32        `json:"gc_ramp"`
	GCPauseRamp time.Duration `json:"gc_pause_ramp_ns"`
	// EventsPerCall is how many ARI events the simulator sent per call
	// during the ramp.
	EventsPerCall float64 `json:"events_per_call"`

	// Teardown: what is left once every call was hung up.
	LiveAfter        int     `json:"live_calls_after"`
	SimChannelsAfter int     `json:"sim_channels_after"`
	SimBridgesAfter  int     `json:"sim_bridges_after"`
	TeardownSeconds  float64 `json:"teardown_seconds"`
	// HeapRetained is the heap over the baseline after the teardown (the
	// maps' capacity, among others); HeapGrowthCycle what a second cycle of
	// the same calls added, checked against HeapGrowthLimit.
	HeapRetained       int64    `json:"heap_retained"`
	HeapGrowthCycle    int64    `json:"heap_growth_second_cycle"`
	HeapGrowthLimit    int64    `json:"heap_growth_limit"`
	AppWarnings        int      `json:"app_warnings"`
	AppWarningExamples []string `json:"app_warning_examples,omitempty"`
	Errors             []string `json:"errors,omitempty"`

	Checks []Check `json:"checks"`
}

// MemSample is one reading of the app process after runtime.GC.
type MemSample struct {
	HeapAlloc  uint64 `json:"heap_alloc"`
	HeapInuse  uint64 `json:"heap_inuse"`
	StackInuse uint64 `json:"stack_inuse"`
	// Goroutines leaves out HTTP keep-alive connections' two goroutines;
	// HTTPConns counts those connections.
	Goroutines int `json:"goroutines"`
	HTTPConns  int `json:"http_keepalive_conns"`
}

// Check is one target.
type Check struct {
	Name   string `json:"name"`
	Target string `json:"target"`
	Value  string `json:"value"`
	OK     bool   `json:"ok"`
}

// Pass reports whether every check passed and nothing went wrong.
func (r *Report) Pass() bool {
	if len(r.Errors) > 0 || len(r.Checks) == 0 {
		return false
	}
	for _, c := range r.Checks {
		if !c.OK {
			return false
		}
	}
	return true
}

func (r *Report) errorf(format string, args ...any) {
	if len(r.Errors) < 20 {
		r.Errors = append(r.Errors, fmt.Sprintf(format, args...))
	}
}

func kib(b float64) string { return fmt.Sprintf("%.2f KiB", b/1024) }

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond)) }

func secMS(s float64) string { return ms(time.Duration(s * float64(time.Second))) }

// Print writes the report as a table.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "\ncallload: %d concurrent bridged calls on one call.App\n", r.Calls)
	fmt.Fprintf(w, "  simulator in a separate process (pid %d); Redis %s; ARI HTTP idle conns: %s\n", r.SimPid, r.Redis, r.ARIIdle)
	pace := "unpaced"
	if r.Rate > 0 {
		pace = fmt.Sprintf("paced to %.0f calls/s", r.Rate)
	}
	fmt.Fprintf(w, "  %d workers, %s; %d warm-up calls before the baseline\n\n", r.Concurrency, pace, r.Warmup)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(cols ...string) { fmt.Fprintln(tw, strings.Join(cols, "\t")) }
	row("measure", "value", "target", "")
	row("-------", "-----", "------", "")
	check := func(name string) (string, string) {
		for _, c := range r.Checks {
			if c.Name == name {
				if c.OK {
					return c.Target, "ok"
				}
				return c.Target, "MISSED"
			}
		}
		return "", ""
	}
	t, ok := check("calls")
	row("concurrent calls held (app) / bridged (sim)", fmt.Sprintf("%d / %d of %d", r.Held, r.Bridged, r.Calls), t, ok)
	row("ramp: injected / all bridged after", fmt.Sprintf("%.2f s / %.2f s (%.0f calls/s)", r.InjectSeconds, r.RampSeconds, float64(r.Calls)/math.Max(r.RampSeconds, 1e-9)), "", "")
	dials := fmt.Sprintf("%d", r.ARIDialsRamp)
	if r.ARIDialsRamp < 0 {
		dials = "n/a (the ari client's transport is its own)"
	}
	row("  ARI connections opened during the ramp", dials, "", "")
	row("  CPU per call: this process (app + driver) / sim / redis", fmt.Sprintf("%.0f / %.0f / %.0f µs", r.CPUPerCall, r.SimCPUPerCall, r.RedisCPUPerCall), "", "")
	row("  ARI events per call; GCs (pauses) during the ramp", fmt.Sprintf("%.1f; %d (%s)", r.EventsPerCall, r.GCRamp, ms(r.GCPauseRamp)), "", "")
	t, ok = check("memory")
	row("app memory per live call (heap + stacks)", kib(r.BytesPerCall), t, ok)
	row("  live heap (HeapAlloc) per call", kib(r.HeapPerCall), "", "")
	row("  StackInuse per call (growth only counts)", kib(r.StackPerCall), "", "")
	row("  HeapInuse per call", kib(r.HeapInusePerCall), "", "")
	row("goroutines per live call", fmt.Sprintf("%.3f (%d → %d)", r.GoroutinesPerCall, r.Base.Goroutines, r.Loaded.Goroutines), "", "")
	h := r.Routing
	t, ok = check("routing")
	row("routing (app histogram), observations", fmt.Sprintf("%d", h.Count), "", "")
	row("  p50 (interpolated)", secMS(h.P50), "", "")
	row("  p99 (interpolated)", secMS(h.P99), "", "")
	row(fmt.Sprintf("  share ≤ %s (exact, bucket bound)", secMS(h.Bound)), fmt.Sprintf("%.2f %%", 100*h.FracLE), t, ok)
	row("  mean", secMS(h.Mean), "", "")
	row("  of which Resolve (parse + Redis) p50 / p99 / max", fmt.Sprintf("%s / %s / %s (exact)", ms(r.Resolve.P50), ms(r.Resolve.P99), ms(r.Resolve.Max)), "", "")
	row("end-to-end (sim: inbound → outbound created)", fmt.Sprintf("%d calls", r.E2E.Count), "", "")
	row("  p50 / p99 / max (exact)", fmt.Sprintf("%s / %s / %s", ms(r.E2E.P50), ms(r.E2E.P99), ms(r.E2E.Max)), "", "")
	t, ok = check("teardown")
	row("teardown: live calls / sim channels / bridges", fmt.Sprintf("%d / %d / %d (in %.2f s)", r.LiveAfter, r.SimChannelsAfter, r.SimBridgesAfter, r.TeardownSeconds), t, ok)
	row("  goroutines baseline → loaded → after (→ 2nd cycle)", fmt.Sprintf("%d → %d → %d (→ %d)", r.Base.Goroutines, r.Loaded.Goroutines, r.After.Goroutines, r.After2.Goroutines), "", "")
	row("  HTTP keep-alive conns (not counted above)", fmt.Sprintf("%d → %d → %d (→ %d)", r.Base.HTTPConns, r.Loaded.HTTPConns, r.After.HTTPConns, r.After2.HTTPConns), "", "")
	row("  heap over baseline after teardown (grown maps)", kib(float64(r.HeapRetained)), "", "")
	row("  heap added by a second cycle of the calls", fmt.Sprintf("%s (limit %s)", kib(float64(r.HeapGrowthCycle)), kib(float64(r.HeapGrowthLimit))), "", "")
	row("app warnings and errors logged", fmt.Sprintf("%d", r.AppWarnings), "", "")
	tw.Flush()
	for _, e := range r.AppWarningExamples {
		fmt.Fprintf(w, "  app: %s\n", e)
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "error: %s\n", e)
	}
	if r.Pass() {
		fmt.Fprintln(w, "\nresult: PASS")
	} else {
		fmt.Fprintln(w, "\nresult: FAIL")
	}
}

// Histogram is the part of a Prometheus histogram that a run added.
type Histogram struct {
	Bounds []float64 `json:"bounds"`
	Cum    []uint64  `json:"cumulative"`
	Count  uint64    `json:"count"`
	Sum    float64   `json:"sum"`
	Mean   float64   `json:"mean_seconds"`
	P50    float64   `json:"p50_seconds"`
	P99    float64   `json:"p99_seconds"`
	// Bound is the target bound and FracLE the exact share of observations
	// at or under it (Bound must be a bucket bound, else FracLE is -1).
	Bound  float64 `json:"bound_seconds"`
	FracLE float64 `json:"share_le_bound"`
}

// gatherHistogram reads a histogram from a registry.
func gatherHistogram(g prometheus.Gatherer, name string) (Histogram, error) {
	mfs, err := g.Gather()
	if err != nil {
		return Histogram{}, err
	}
	for _, mf := range mfs {
		if mf.GetName() != name || len(mf.GetMetric()) != 1 {
			continue
		}
		ph := mf.GetMetric()[0].GetHistogram()
		if ph == nil {
			break
		}
		var h Histogram
		for _, b := range ph.GetBucket() {
			if math.IsInf(b.GetUpperBound(), +1) {
				continue
			}
			h.Bounds = append(h.Bounds, b.GetUpperBound())
			h.Cum = append(h.Cum, b.GetCumulativeCount())
		}
		h.Count, h.Sum = ph.GetSampleCount(), ph.GetSampleSum()
		return h, nil
	}
	return Histogram{}, fmt.Errorf("no histogram %s", name)
}

// minus returns what h added since before.
func (h Histogram) minus(before Histogram) Histogram {
	out := Histogram{Bounds: h.Bounds, Cum: slices.Clone(h.Cum), Count: h.Count - before.Count, Sum: h.Sum - before.Sum}
	if len(before.Cum) == len(h.Cum) {
		for i := range out.Cum {
			out.Cum[i] -= before.Cum[i]
		}
	}
	return out
}

// summarize fills in the mean, p50, p99 and the share under bound.
func (h *Histogram) summarize(bound time.Duration) {
	if h.Count > 0 {
		h.Mean = h.Sum / float64(h.Count)
	}
	h.P50, h.P99 = h.quantile(0.5), h.quantile(0.99)
	h.Bound, h.FracLE = bound.Seconds(), -1
	for i, b := range h.Bounds {
		if math.Abs(b-h.Bound) < 1e-12 && h.Count > 0 {
			h.FracLE = float64(h.Cum[i]) / float64(h.Count)
		}
	}
}

// quantile interpolates linearly within the bucket holding the q-th
// observation, as Prometheus' histogram_quantile does; past the last bound
// it returns the last bound.
func (h Histogram) quantile(q float64) float64 {
	if h.Count == 0 || len(h.Bounds) == 0 {
		return math.NaN()
	}
	rank := q * float64(h.Count)
	for i, c := range h.Cum {
		if float64(c) >= rank {
			lo, prev := 0.0, uint64(0)
			if i > 0 {
				lo, prev = h.Bounds[i-1], h.Cum[i-1]
			}
			if c == prev {
				return h.Bounds[i]
			}
			return lo + (h.Bounds[i]-lo)*(rank-float64(prev))/float64(c-prev)
		}
	}
	return h.Bounds[len(h.Bounds)-1]
}

// Exact holds exact order statistics of durations.
type Exact struct {
	Count int           `json:"count"`
	P50   time.Duration `json:"p50_ns"`
	P99   time.Duration `json:"p99_ns"`
	Max   time.Duration `json:"max_ns"`
}

// exact returns nearest-rank percentiles of ds (sorted in place).
func exact(ds []time.Duration) Exact {
	if len(ds) == 0 {
		return Exact{}
	}
	slices.Sort(ds)
	rank := func(q float64) time.Duration {
		i := int(math.Ceil(q*float64(len(ds)))) - 1
		return ds[max(0, min(i, len(ds)-1))]
	}
	return Exact{Count: len(ds), P50: rank(0.5), P99: rank(0.99), Max: ds[len(ds)-1]}
}
