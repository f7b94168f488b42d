package call_test

// Benchmarks of call control alone: a switch that answers every request at
// once stands in for Asterisk and the calls' events are handed to
// HandleEvent directly, so that neither HTTP, the ARI client nor a
// simulator is measured; routing resolves on a real Redis. They complement
// cmd/callload, which runs the whole path in a real deployment's shape and
// checks the targets of the issue "Calls":
//
//	go test -run '^$' -bench . -benchtime 2000x ./call/

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/privnum/privnum/ari"
	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/call"
	"github.com/privnum/privnum/cdr"
	"github.com/privnum/privnum/e164"
	"github.com/privnum/privnum/internal/redistest"
	"github.com/privnum/privnum/pool"
)

// instantSwitch answers every request at once. It reports each originate
// and each bridge join on channels the benchmark reads. (The embedded
// interface only keeps it compiling when Switch grows; its methods are
// never reached.)
type instantSwitch struct {
	call.Switch
	originated chan ari.OriginateRequest
	joined     chan string // bridge ids
}

func (s *instantSwitch) Originate(_ context.Context, r ari.OriginateRequest) (ari.Channel, error) {
	s.originated <- r
	return ari.Channel{ID: r.ChannelID, State: "Down"}, nil
}
func (s *instantSwitch) Answer(context.Context, string) error                 { return nil }
func (s *instantSwitch) Ring(context.Context, string) error                   { return nil }
func (s *instantSwitch) Hangup(context.Context, string, string) error         { return nil }
func (s *instantSwitch) SetVar(context.Context, string, string, string) error { return nil }
func (s *instantSwitch) Play(context.Context, string, string, ...string) (ari.Playback, error) {
	return ari.Playback{}, nil
}
func (s *instantSwitch) StopPlayback(context.Context, string) error { return nil }
func (s *instantSwitch) CreateBridge(_ context.Context, id, _, _ string) (ari.Bridge, error) {
	return ari.Bridge{ID: id}, nil
}
func (s *instantSwitch) AddChannel(_ context.Context, bridgeID string, _ ari.AddChannelOptions, _ ...string) error {
	s.joined <- bridgeID
	return nil
}
func (s *instantSwitch) DestroyBridge(context.Context, string) error { return nil }
func (s *instantSwitch) GetBridge(_ context.Context, id string) (ari.Bridge, error) {
	return ari.Bridge{ID: id}, nil
}
func (s *instantSwitch) RecordBridge(context.Context, string, ari.RecordRequest) (ari.LiveRecording, error) {
	return ari.LiveRecording{}, nil
}
func (s *instantSwitch) Application(_ context.Context, name string) (ari.Application, error) {
	return ari.Application{Name: name}, nil
}

// discardRecords drops call records.
type discardRecords struct{}

func (discardRecords) Add(context.Context, cdr.Record) error { return nil }

// benchApp is an App on instantSwitch with n bindings whose callers are
// callers[i], all on virtual numbers of a real Redis.
type benchApp struct {
	app     *call.App
	sw      *instantSwitch
	reg     *prometheus.Registry
	callers []string
	xs      []string
	svc     *binding.Service
}

func newBenchApp(b *testing.B, n int) *benchApp { return newBenchAppCache(b, n, false) }

// newBenchAppCache is newBenchApp, with the binding service's route cache
// running when cached is set (the bindings are made once it is up, and
// read ahead, as serve's are).
func newBenchAppCache(b *testing.B, n int, cached bool) *benchApp {
	b.Helper()
	rdb := redistest.Client(b)
	cn, _ := e164.NewParser("CN")
	p := pool.New(rdb, cn)
	ctx := context.Background()
	entries := make([]pool.Entry, 16)
	for i := range entries {
		entries[i] = pool.Entry{Number: fmt.Sprintf("+86170%08d", i)}
	}
	if _, err := p.Add(ctx, entries); err != nil {
		b.Fatal(err)
	}
	svc := binding.New(rdb, p, cn, binding.Config{Quarantine: time.Hour})
	if cached {
		cctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); svc.CacheRoutes(cctx, 2*n, nil) }()
		b.Cleanup(func() { stop(); <-done })
		for !svc.RouteCacheStats().Live {
			time.Sleep(time.Millisecond)
		}
	}
	ba := &benchApp{
		sw:      &instantSwitch{originated: make(chan ari.OriginateRequest, 1), joined: make(chan string, 1)},
		reg:     prometheus.NewRegistry(),
		callers: make([]string, n),
		xs:      make([]string, n),
		svc:     svc,
	}
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	const workers = 16
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				a, c := fmt.Sprintf("+86138%08d", i), fmt.Sprintf("+86139%08d", i)
				bd, err := svc.Create(ctx, binding.Request{A: a, B: c, TTL: time.Hour, Options: binding.Options{MaxDuration: time.Hour}})
				if err != nil {
					select {
					case errs <- err:
					default:
					}
					return
				}
				ba.callers[i], ba.xs[i] = a, bd.X
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	ba.app = call.New(ba.sw, svc, discardRecords{}, call.Config{
		Application: "privnum", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: call.NewMetrics(ba.reg),
	})
	b.Cleanup(ba.app.Close)
	return ba
}

// inbound is the StasisStart of caller i's call to its virtual number.
func (ba *benchApp) inbound(i, seq int) *ari.StasisStart {
	return &ari.StasisStart{Channel: ari.Channel{
		ID: fmt.Sprintf("1795400000.%d", seq), State: "Ring",
		Caller:   ari.CallerID{Number: ba.callers[i]},
		Dialplan: ari.Dialplan{Context: "from-trunk", Exten: strings.TrimPrefix(ba.xs[i], "+86")},
	}}
}

// answered is the StasisStart of an originated leg that was answered.
func answered(r ari.OriginateRequest) *ari.StasisStart {
	return &ari.StasisStart{Args: strings.Split(r.AppArgs, ","), Channel: ari.Channel{ID: r.ChannelID, State: "Up"}}
}

// bridge drives call i to the bridged state and returns its legs.
func (ba *benchApp) bridge(i, seq int) (in, out string) {
	ev := ba.inbound(i, seq)
	ba.app.HandleEvent(ev)
	r := <-ba.sw.originated
	ba.app.HandleEvent(answered(r))
	<-ba.sw.joined
	return ev.Channel.ID, r.ChannelID
}

// hangup ends both legs of a call as Asterisk reports it.
func (ba *benchApp) hangup(in, out string) {
	ba.app.HandleEvent(&ari.StasisEnd{Channel: ari.Channel{ID: in}})
	ba.app.HandleEvent(&ari.ChannelDestroyed{Cause: 16, Channel: ari.Channel{ID: in}})
	ba.app.HandleEvent(&ari.StasisEnd{Channel: ari.Channel{ID: out}})
	ba.app.HandleEvent(&ari.ChannelDestroyed{Cause: 16, Channel: ari.Channel{ID: out}})
}

func (ba *benchApp) waitIdle(b *testing.B) {
	deadline := time.Now().Add(10 * time.Second)
	for ba.app.LiveCalls() != 0 {
		if time.Now().After(deadline) {
			b.Fatalf("%d calls still live", ba.app.LiveCalls())
		}
		time.Sleep(time.Millisecond)
	}
}

func heapAndGoroutines() (uint64, int) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc, runtime.NumGoroutine()
}

// BenchmarkBridgedCallMemory holds b.N bridged calls at once (use
// -benchtime 2000x) and reports the App's live heap and goroutines per
// call: the call-control state alone, without the ARI client.
func BenchmarkBridgedCallMemory(b *testing.B) {
	const warm = 100
	ba := newBenchApp(b, max(b.N, warm))
	type legs struct{ in, out string }
	held := make([]legs, b.N)
	// Warm the Redis connection, the script cache and the maps' first
	// buckets outside the measure.
	for i := range warm {
		in, out := ba.bridge(i, i)
		ba.hangup(in, out)
	}
	ba.waitIdle(b)
	heap0, g0 := heapAndGoroutines()
	b.ResetTimer()
	for i := range b.N {
		held[i].in, held[i].out = ba.bridge(i, warm+i)
	}
	b.StopTimer()
	if got := ba.app.LiveCalls(); got != b.N {
		b.Fatalf("%d live calls, want %d", got, b.N)
	}
	heap1, g1 := heapAndGoroutines()
	b.ReportMetric(float64(int64(heap1)-int64(heap0))/float64(b.N), "heap-B/call")
	b.ReportMetric(float64(g1-g0)/float64(b.N), "goroutines/call")
	for _, l := range held {
		ba.hangup(l.in, l.out)
	}
	ba.waitIdle(b)
}

// BenchmarkRouting times one call at a time from its StasisStart being
// handled to the outbound originate (the privnum_routing_seconds span plus
// the event hand-off), with the Resolve on a real Redis; each call is then
// torn down. It reports the exact p50 and p99 besides the mean.
func BenchmarkRouting(b *testing.B) { benchRouting(b, newBenchApp(b, 1000)) }

// BenchmarkRoutingCached is BenchmarkRouting with the route cache running,
// as in serve: the routes were read ahead when the bindings were made, so
// no call waits for Redis.
func BenchmarkRoutingCached(b *testing.B) {
	ba := newBenchAppCache(b, 1000, true)
	svc := ba.svc
	for svc.RouteCacheStats().Routes < 2*len(ba.callers) {
		time.Sleep(time.Millisecond)
	}
	before := svc.RouteCacheStats()
	benchRouting(b, ba)
	if st := svc.RouteCacheStats(); st.Misses != before.Misses {
		b.Fatalf("%d calls read Redis", st.Misses-before.Misses)
	}
}

func benchRouting(b *testing.B, ba *benchApp) {
	n := len(ba.callers)
	for i := range 50 { // warm-up
		ba.app.HandleEvent(ba.inbound(i, i))
		r := <-ba.sw.originated
		ba.hangup(fmt.Sprintf("1795400000.%d", i), r.ChannelID)
	}
	ba.waitIdle(b)
	ds := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		ev := ba.inbound(i%n, 50+i)
		t := time.Now()
		ba.app.HandleEvent(ev)
		r := <-ba.sw.originated
		ds = append(ds, time.Since(t))
		b.StopTimer()
		ba.hangup(ev.Channel.ID, r.ChannelID)
		ba.waitIdle(b)
		b.StartTimer()
	}
	b.StopTimer()
	slices.Sort(ds)
	q := func(p float64) float64 { return float64(ds[min(len(ds)-1, int(p*float64(len(ds))))].Nanoseconds()) }
	b.ReportMetric(q(0.5), "p50-ns")
	b.ReportMetric(q(0.99), "p99-ns")
}
