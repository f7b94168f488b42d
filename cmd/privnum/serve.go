package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/privnum/privnum/ari"
	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/call"
	"github.com/privnum/privnum/callback"
	"github.com/privnum/privnum/cdr"
	"github.com/privnum/privnum/dialq"
	"github.com/privnum/privnum/lease"
	"github.com/privnum/privnum/ratelimit"
	"github.com/privnum/privnum/recording"
	"github.com/privnum/privnum/verify"
	"github.com/privnum/privnum/webhook"
)

// serveConfig is what `privnum serve` needs beyond the global flags.
type serveConfig struct {
	ariURL, ariUser, ariPassword, app string
	endpoint, callerID                string
	ringTimeout, drainTimeout         time.Duration
	noBinding, expired                string
	notInGroup, noLastCaller          string
	// extPrompt, extInvalid and extFailed are the axe extension entry's
	// media; digitTimeout, firstDigitTimeout and extTries its limits.
	extPrompt, extInvalid, extFailed string
	digitTimeout, firstDigitTimeout  time.Duration
	extTries                         int
	metricsAddr                      string
	instance, leaseName              string
	leaseTTL, reclaimAfter           time.Duration
	trunks                           []string
	msgTo, msgFrom                   string
	msgLimit                         int
	msgWindow                        time.Duration
	headroomEvery                    time.Duration
	routeCache                       int
	// pruneAfter, when > 0, deletes recordings older than it daily.
	pruneAfter age
	// quiet logs only warnings and errors (the demo).
	quiet bool
}

func (a *app) serveCmd() *cobra.Command {
	var sc serveConfig
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run call control: connect to Asterisk over ARI and bridge masked calls",
		Args:  exactArgs(0),
		RunE: a.withServices(func(cmd *cobra.Command, _ []string) error {
			return a.serve(cmd.Context(), sc, nil)
		}),
	}
	f := cmd.Flags()
	a.addAsteriskFlags(f, &sc)
	f.StringVar(&sc.callerID, "caller-id-template", "{number}", "how the virtual number is shown to the called party; env PRIVNUM_CALLER_ID_TEMPLATE")
	a.envFlag(f, "caller-id-template", "PRIVNUM_CALLER_ID_TEMPLATE")
	f.DurationVar(&sc.ringTimeout, "ring-timeout", 30*time.Second, "how long the called party rings when the binding sets no limit")
	f.DurationVar(&sc.drainTimeout, "drain-timeout", 5*time.Minute, "on SIGTERM, how long live calls may go on before they are cut")
	f.StringVar(&sc.noBinding, "announce-no-binding", "sound:ss-noservice", "media played when the caller has no binding")
	f.StringVar(&sc.expired, "announce-expired", "sound:cannot-complete-as-dialed", "media played when the caller's binding has ended")
	f.StringVar(&sc.notInGroup, "announce-not-in-group", "sound:ss-noservice", "media played to a caller outside an axg binding's group")
	f.StringVar(&sc.noLastCaller, "announce-no-last-caller", "sound:vm-nobodyavail", "media played to the owner of an axn or axg binding without a fixed B, or an axe extension's party, when nobody called within --reply-window")
	f.StringVar(&sc.extPrompt, "announce-extension-prompt", "sound:vm-enter-num-to-call", "media (comma-separated) asking a caller on an axe number for the extension")
	f.StringVar(&sc.extInvalid, "announce-extension-invalid", "sound:pbx-invalid", "media played before the prompt again after a wrong or missing extension")
	f.StringVar(&sc.extFailed, "announce-extension-failed", "sound:sorry-youre-having-problems,sound:goodbye", "media played before hanging up after the last wrong extension")
	f.DurationVar(&sc.digitTimeout, "digit-timeout", 5*time.Second, "extension entry ends when no digit came for this long (after the prompt)")
	f.DurationVar(&sc.firstDigitTimeout, "first-digit-timeout", 30*time.Second, "the longest wait for the first digit while the prompt plays")
	f.IntVar(&sc.extTries, "extension-tries", 3, "wrong or missing extensions a caller may key before the final announcement")
	f.StringVar(&sc.metricsAddr, "metrics-listen", "127.0.0.1:9464", "address serving /metrics and /healthz (empty: off); env PRIVNUM_METRICS_LISTEN")
	a.envFlag(f, "metrics-listen", "PRIVNUM_METRICS_LISTEN")
	f.StringVar(&sc.instance, "instance", defaultInstance(), "this process's name in the fleet (lease holder, dial-queue consumer); env PRIVNUM_INSTANCE")
	a.envFlag(f, "instance", "PRIVNUM_INSTANCE")
	f.StringVar(&sc.leaseName, "lease-name", "", "name of the lease the active and standby processes for one Asterisk share (default: the application name and the ARI host); env PRIVNUM_LEASE_NAME")
	a.envFlag(f, "lease-name", "PRIVNUM_LEASE_NAME")
	f.DurationVar(&sc.leaseTTL, "lease-ttl", 2*time.Second, "a standby takes over about this long after the active process stops renewing its lease (0: no lease, no standby)")
	f.StringVar(&sc.msgFrom, "message-from-template", "", "the sender of a relayed text message, with the virtual number as {number} (default '<sip:{number}@ARI host>'); env PRIVNUM_MESSAGE_FROM_TEMPLATE")
	a.envFlag(f, "message-from-template", "PRIVNUM_MESSAGE_FROM_TEMPLATE")
	f.IntVar(&sc.msgLimit, "message-limit", 20, "text messages one sender may have relayed per --message-limit-window (0: no limit)")
	f.DurationVar(&sc.msgWindow, "message-limit-window", time.Hour, "the window of --message-limit")
	f.Var(&sc.pruneAfter, "prune-recordings-older-than", "delete call recordings (through ARI) older than this, e.g. 14d, once a day while active (0: keep them); env PRIVNUM_PRUNE_RECORDINGS_OLDER_THAN")
	a.envFlag(f, "prune-recordings-older-than", "PRIVNUM_PRUNE_RECORDINGS_OLDER_THAN")
	f.DurationVar(&sc.headroomEvery, "headroom-every", time.Minute, "how often the privnum_pool_headroom gauge is computed from the party index (0: never)")
	f.IntVar(&sc.routeCache, "route-cache", 100000, "how many call routes to keep in memory (about 0.5 KiB each), kept coherent with Redis by client tracking, so that a call is routed without a Redis round trip (0: read Redis for every call); env PRIVNUM_ROUTE_CACHE")
	a.envFlag(f, "route-cache", "PRIVNUM_ROUTE_CACHE")
	f.DurationVar(&sc.reclaimAfter, "dialq-reclaim-after", 10*time.Second, "a queued callback or flash call that another serve took but did not place (it died) is taken over after this long")
	return cmd
}

// addAsteriskFlags registers the flags that say which Asterisk, application
// and trunks serve works with (doctor checks the same ones).
func (a *app) addAsteriskFlags(f *pflag.FlagSet, sc *serveConfig) {
	f.StringVar(&sc.ariURL, "ari-url", "http://127.0.0.1:8088", "Asterisk HTTP base URL (without /ari); env PRIVNUM_ARI_URL")
	a.envFlag(f, "ari-url", "PRIVNUM_ARI_URL")
	f.StringVar(&sc.ariUser, "ari-user", "privnum", "ARI user; env PRIVNUM_ARI_USER")
	a.envFlag(f, "ari-user", "PRIVNUM_ARI_USER")
	f.StringVar(&sc.ariPassword, "ari-password", "", "ARI password; env PRIVNUM_ARI_PASSWORD")
	a.envFlag(f, "ari-password", "PRIVNUM_ARI_PASSWORD")
	f.StringVar(&sc.app, "ari-app", "privnum", "Stasis application name; env PRIVNUM_ARI_APP")
	a.envFlag(f, "ari-app", "PRIVNUM_ARI_APP")
	f.StringVar(&sc.endpoint, "endpoint-template", "PJSIP/{number}@carrier", "how to dial the hidden party ({number} E.164, {digits} without +); env PRIVNUM_ENDPOINT_TEMPLATE")
	a.envFlag(f, "endpoint-template", "PRIVNUM_ENDPOINT_TEMPLATE")
	// The old name first: registering a flag sets its variable to the
	// flag's default. The environment is read in the same order: the new
	// variable wins.
	f.StringSliceVar(&sc.trunks, "message-endpoint", nil, "the old name of --trunk-endpoint; env PRIVNUM_MESSAGE_ENDPOINT")
	f.MarkDeprecated("message-endpoint", "use --trunk-endpoint")
	f.StringSliceVar(&sc.trunks, "trunk-endpoint", []string{"PJSIP/trunk-in"},
		"the inbound trunks' endpoints (comma separated, or repeat the flag), whose text messages (SIP MESSAGE) are relayed; env PRIVNUM_TRUNK_ENDPOINT")
	a.envFlag(f, "message-endpoint", "PRIVNUM_MESSAGE_ENDPOINT")
	a.envFlag(f, "trunk-endpoint", "PRIVNUM_TRUNK_ENDPOINT")
	f.StringVar(&sc.msgTo, "message-to-template", "", "where a relayed text message goes, as ARI sendMessage takes it, e.g. 'pjsip:carrier/sip:{number}@203.0.113.5' (empty: text messages are not relayed); env PRIVNUM_MESSAGE_TO_TEMPLATE")
	a.envFlag(f, "message-to-template", "PRIVNUM_MESSAGE_TO_TEMPLATE")
}

func defaultInstance() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}

// leaseKey names the Redis key of the lease for sc's Asterisk and
// application.
func (sc serveConfig) leaseKey() string {
	name := sc.leaseName
	if name == "" {
		host := sc.ariURL
		if u, err := url.Parse(sc.ariURL); err == nil && u.Host != "" {
			host = u.Host
		}
		name = sc.app + "@" + host
	}
	return "pn:serve:lease:" + name
}

// serve runs call control until ctx is done, then drains. ready, if not
// nil, receives the App once it is running (the demo uses it).
func (a *app) serve(ctx context.Context, sc serveConfig, ready chan<- *call.App) error {
	level, err := a.level()
	if err != nil {
		return err
	}
	if sc.quiet {
		level = slog.LevelWarn
	}
	log := slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level}))
	client, err := ari.New(ari.Config{URL: sc.ariURL, Username: sc.ariUser, Password: sc.ariPassword, Application: sc.app, Logger: log})
	if err != nil {
		return usageError{err}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "privnum_ari_connected", Help: "1 while the ARI event connection is up.",
	}, func() float64 {
		if client.Connected() {
			return 1
		}
		return 0
	}))
	// Call records also go out as call.completed webhooks (delivered by privnum api).
	hooks := webhook.NewDispatcher(webhook.NewStore(a.rdb), webhook.Config{Logger: log})
	calls := hooks.CallRecorder(cdr.New(a.rdb, 0))
	msgs := call.Messages{ToTemplate: sc.msgTo, FromTemplate: sc.msgFrom}
	if msgs.FromTemplate == "" {
		host := "localhost"
		if u, err := url.Parse(sc.ariURL); err == nil && u.Hostname() != "" {
			host = u.Hostname()
		}
		msgs.FromTemplate = "<sip:{number}@" + host + ">"
	}
	if sc.msgLimit > 0 {
		msgs.Limiter = ratelimit.New(a.rdb, "pn:rl:sms", sc.msgLimit, sc.msgWindow)
	}
	app := call.New(client, a.bindings, calls, call.Config{
		Application: sc.app, EndpointTemplate: sc.endpoint, CallerIDTemplate: sc.callerID,
		Trunks: trunkList(sc.trunks), Messages: msgs,
		Events:      callEvents{hooks, log},
		RingTimeout: sc.ringTimeout, Logger: log, Metrics: call.NewMetrics(reg),
		Announcements: call.Announcements{NoBinding: sc.noBinding, Expired: sc.expired, NotInGroup: sc.notInGroup, NoLastCaller: sc.noLastCaller,
			ExtensionPrompt: sc.extPrompt, ExtensionInvalid: sc.extInvalid, ExtensionFailed: sc.extFailed},
		DigitTimeout: sc.digitTimeout, FirstDigitTimeout: sc.firstDigitTimeout, ExtensionTries: sc.extTries,
	})
	defer app.Close()

	var ls *lease.Lease
	var leaseHeld atomic.Bool
	failovers := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "privnum_failovers_total", Help: "Times this instance took the ARI application over from another that stopped renewing its lease.",
	})
	reg.MustRegister(failovers, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "privnum_lease_held", Help: "1 while this instance holds the lease for its Asterisk application (active), 0 while it waits (standby).",
		ConstLabels: prometheus.Labels{"serve": sc.instance},
	}, func() float64 {
		if leaseHeld.Load() {
			return 1
		}
		return 0
	}))
	if sc.headroomEvery > 0 {
		headroom := prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "privnum_pool_headroom",
			Help: `Active pool numbers the busiest party does not hold yet, per area tag ("(untagged)": numbers without one; "(all)": the whole pool, 0 means that party's next binding fails with pool exhausted).`,
		}, []string{"area"})
		reg.MustRegister(headroom)
		// The first reading is taken before /metrics is served.
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		updateHeadroom(fctx, a.bindings, headroom, log)
		cancel()
		go func() {
			t := time.NewTicker(sc.headroomEvery)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					updateHeadroom(ctx, a.bindings, headroom, log)
				}
			}
		}()
	}
	if sc.leaseTTL > 0 {
		ls = lease.New(a.rdb, sc.leaseKey(), sc.instance, sc.leaseTTL)
	}

	if sc.metricsAddr != "" {
		l, err := net.Listen("tcp", sc.metricsAddr)
		if err != nil {
			return fmt.Errorf("metrics listener: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
			if ls != nil && !leaseHeld.Load() {
				fmt.Fprintln(w, "standby")
				return
			}
			if !client.Connected() {
				http.Error(w, "ARI not connected", http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(w, "ok")
		})
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(l)
		defer srv.Close()
		log.Info("metrics listening", "addr", l.Addr().String())
	}

	leaseLost := make(chan error, 1)
	if ls != nil {
		log.Info("standby: waiting for the lease", "lease", ls.Key(), "instance", sc.instance)
		waited, err := ls.Acquire(ctx)
		if err != nil {
			log.Info("stopped while standby")
			return nil
		}
		leaseHeld.Store(true)
		if waited != "" {
			failovers.Inc()
			log.Warn("took over from an instance that stopped renewing its lease", "previous", waited, "lease", ls.Key())
		}
		hctx, stopHold := context.WithCancel(context.WithoutCancel(ctx))
		defer func() {
			stopHold()
			leaseHeld.Store(false)
			rctx, cancel := context.WithTimeout(context.Background(), time.Second)
			ls.Release(rctx)
			cancel()
		}()
		go func() {
			if err := ls.Hold(hctx); err != nil {
				leaseLost <- err
			}
		}()
	}

	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRun()
	var workers sync.WaitGroup
	defer workers.Wait()
	defer stopRun()
	if sc.routeCache > 0 {
		registerRouteCache(reg, a.bindings)
		workers.Go(func() {
			if err := a.bindings.CacheRoutes(runCtx, sc.routeCache, log); err != nil && !errors.Is(err, context.Canceled) {
				log.Warn("no route cache: every call reads its route from Redis", "err", err)
			}
		})
	}
	runErr := make(chan error, 1)
	go func() { runErr <- client.Run(runCtx, app) }()
	go keepWarm(runCtx, client, a.rdb)

	// Callbacks and flash calls requested through the API or the CLI.
	cbs, vs, q, err := a.dialServices(log, app, sc.ringTimeout, dialq.Config{MinIdle: sc.reclaimAfter})
	if err != nil {
		return err
	}
	for _, c := range []struct {
		name, help string
		val        func(dialq.Stats) uint64
	}{
		{"privnum_dialq_jobs_placed_total", "Queued callbacks and flash calls this instance committed to place.", func(s dialq.Stats) uint64 { return s.Placed }},
		{"privnum_dialq_jobs_failed_total", "Placed jobs whose call could not be started.", func(s dialq.Stats) uint64 { return s.Failed }},
		{"privnum_dialq_jobs_reclaimed_total", "Jobs this instance took over from another that had taken them and not placed them (usually dead).", func(s dialq.Stats) uint64 { return s.Reclaimed }},
		{"privnum_dialq_jobs_lost_total", "Jobs this instance had taken but found taken over by another before it could place them.", func(s dialq.Stats) uint64 { return s.Lost }},
		{"privnum_dialq_jobs_dropped_total", "Jobs dropped because they were too old to place or unreadable.", func(s dialq.Stats) uint64 { return s.Dropped }},
	} {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help}, func() float64 { return float64(c.val(q.Stats())) }))
	}
	workers.Add(2)
	go func() { defer workers.Done(); cbs.Run(runCtx) }()
	go func() {
		defer workers.Done()
		// ctx, not runCtx: a draining process takes no more jobs (another
		// serve takes them over).
		q.Run(ctx, sc.instance, dialq.Router{
			callback.JobKind:    cbs.Dial,
			verify.FlashJobKind: verify.FlashJobs{Service: vs, Dialer: app}.Place,
		}.Place)
	}()
	if sc.pruneAfter > 0 {
		workers.Add(1)
		pruner := recording.New(client, cdr.New(a.rdb, 0), log)
		go func() { defer workers.Done(); pruner.RunDaily(runCtx, time.Duration(sc.pruneAfter)) }()
	}
	log.Info("call control running", "ari", sc.ariURL, "app", sc.app)
	if ready != nil {
		ready <- app
	}

	select {
	case err := <-runErr:
		if errors.Is(err, ari.ErrApplicationReplaced) {
			return fmt.Errorf("another privnum took over application %q on this Asterisk: %w", sc.app, err)
		}
		return err
	case err := <-leaseLost:
		// Another instance holds the application now: stop at once, without
		// draining (its calls are the other instance's to finish).
		log.Error("lease lost: stopping", "lease", ls.Key(), "err", err)
		stopRun()
		<-runErr
		return fmt.Errorf("instance %s: %w", sc.instance, err)
	case <-ctx.Done():
	}
	log.Info("draining: no new calls", "live", app.LiveCalls(), "timeout", sc.drainTimeout)
	dctx, cancel := context.WithTimeout(context.Background(), sc.drainTimeout)
	cut := app.Drain(dctx)
	cancel()
	if cut > 0 {
		log.Warn("drain timeout: calls cut", "calls", cut)
		time.Sleep(200 * time.Millisecond) // let the hang-ups' events arrive
	}
	stopRun()
	<-runErr
	log.Info("stopped")
	return nil
}

// updateHeadroom sets the privnum_pool_headroom gauge from a forecast.
func updateHeadroom(ctx context.Context, svc *binding.Service, g *prometheus.GaugeVec, log *slog.Logger) {
	f, err := svc.Forecast(ctx)
	if err != nil {
		log.Warn("pool headroom not updated", "err", err)
		return
	}
	g.Reset() // areas that left the pool
	for _, a := range f.Areas {
		g.WithLabelValues(areaLabel(a.Area)).Set(float64(a.Headroom))
	}
	g.WithLabelValues("(all)").Set(float64(f.Total.Headroom))
}

// areaLabel is an area tag as a label value; area tags never hold
// parentheses, so "(untagged)" and "(all)" cannot clash with one.
func areaLabel(area string) string {
	if area == "" {
		return "(untagged)"
	}
	return area
}

// Warm connections: a call's path from StasisStart to the originate
// request is one Redis read and one ARI request, and neither should wait for
// a TCP connection (nor Asterisk for a new HTTP session thread) to be set
// up.
const (
	// warmConns connections to each of Asterisk and Redis are kept open.
	warmConns = 4
	// warmEvery is under the ARI client's 10 s idle timeout, so that the
	// warm connections are never dropped as idle.
	warmEvery = 5 * time.Second
)

// registerRouteCache exports the route cache's counters.
func registerRouteCache(reg prometheus.Registerer, b *binding.Service) {
	for _, c := range []struct {
		name, help string
		counter    bool
		val        func(binding.RouteCacheStats) float64
	}{
		{"privnum_route_cache_hits_total", "Calls routed from the route cache, without a Redis round trip.", true, func(s binding.RouteCacheStats) float64 { return float64(s.Hits) }},
		{"privnum_route_cache_misses_total", "Calls whose route was read from Redis while the route cache was served.", true, func(s binding.RouteCacheStats) float64 { return float64(s.Misses) }},
		{"privnum_route_cache_prefetched_total", "Routes read ahead of their first call after Redis reported them created or changed.", true, func(s binding.RouteCacheStats) float64 { return float64(s.Prefetched) }},
		{"privnum_route_cache_invalidations_total", "Route changes Redis reported to the route cache.", true, func(s binding.RouteCacheStats) float64 { return float64(s.Invalidations) }},
		{"privnum_route_cache_tracking_ups_total", "How often client tracking came up; more than once means it was lost and the route cache emptied.", true, func(s binding.RouteCacheStats) float64 { return float64(s.Ups) }},
		{"privnum_route_cache_routes", "Routes held in the route cache.", false, func(s binding.RouteCacheStats) float64 { return float64(s.Routes) }},
		{"privnum_route_cache_live", "1 while the route cache is served (client tracking up on every Redis primary).", false, func(s binding.RouteCacheStats) float64 {
			if s.Live {
				return 1
			}
			return 0
		}},
	} {
		f := func() float64 { return c.val(b.RouteCacheStats()) }
		if c.counter {
			reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help}, f))
		} else {
			reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: c.name, Help: c.help}, f))
		}
	}
}

// keepWarm opens warmConns keep-alive connections to Asterisk's REST API and
// to Redis before the first call, and keeps the ARI ones open while no
// call uses them, until ctx is done. Failures are left to the calls to
// report.
func keepWarm(ctx context.Context, client *ari.Client, rdb redis.UniversalClient) {
	warmRedis(ctx, rdb, warmConns)
	t := time.NewTicker(warmEvery)
	defer t.Stop()
	for {
		wctx, cancel := context.WithTimeout(ctx, warmEvery)
		_ = client.Warm(wctx, warmConns)
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// warmRedis pings Redis n times at once, so that its client's pool holds n
// open connections (to every shard of a cluster); go-redis keeps idle
// connections for 30 minutes.
func warmRedis(ctx context.Context, rdb redis.UniversalClient, n int) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if cc, ok := rdb.(*redis.ClusterClient); ok {
				_ = cc.ForEachShard(ctx, func(ctx context.Context, shard *redis.Client) error {
					return shard.Ping(ctx).Err()
				})
				return
			}
			_ = rdb.Ping(ctx).Err()
		})
	}
	wg.Wait()
}

func (a *app) callsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "calls", Short: "Inspect call detail records"}
	var asJSON bool
	var limit int64
	list := &cobra.Command{
		Use:   "list",
		Short: "List call records, newest first",
		Args:  exactArgs(0),
		RunE: a.withServices(func(cmd *cobra.Command, _ []string) error {
			recs, err := cdr.New(a.rdb, 0).List(cmd.Context(), limit)
			if err != nil {
				return err
			}
			if asJSON {
				return a.printJSON(map[string]any{"calls": recs})
			}
			printCalls(a, recs)
			return nil
		}),
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	list.Flags().Int64Var(&limit, "limit", 50, "how many records")
	cmd.AddCommand(list, a.callRecordingCmd())
	return cmd
}

func printCalls(a *app, recs []cdr.Record) {
	if len(recs) == 0 {
		fmt.Fprintln(a.stdout, "no calls")
		return
	}
	for _, r := range recs {
		callee := r.Callee
		if callee == "" {
			callee = "-"
		}
		fmt.Fprintf(a.stdout, "%s  %s -> %s via %s  %-9s cause %-3d by %-6s talk %s",
			r.Start.Local().Format("15:04:05"), r.Caller, callee, r.X, r.Disposition, r.HangupCause, r.HangupBy, r.Duration().Round(time.Millisecond))
		if r.Reason != "" {
			fmt.Fprintf(a.stdout, "  (%s)", r.Reason)
		}
		if r.Mode != "" && r.Extension != "" {
			fmt.Fprintf(a.stdout, "  [%s ext %s]", r.Mode, r.Extension)
		} else if r.Mode != "" {
			fmt.Fprintf(a.stdout, "  [%s]", r.Mode)
		}
		fmt.Fprintln(a.stdout)
	}
}

// callEvents publishes call.ringing and call.answered as webhooks
// (delivered by privnum api).
type callEvents struct {
	d   *webhook.Dispatcher
	log *slog.Logger
}

func (e callEvents) CallEvent(ctx context.Context, ev call.CallEvent) {
	wev, err := webhook.NewEvent(ev.Type, ev)
	if err == nil {
		err = e.d.Publish(ctx, wev)
	}
	if err != nil {
		e.log.Warn("call event not published", "call", ev.CallID, "event", ev.Type, "err", err)
	}
}

// trunkList drops the empty entries of --trunk-endpoint ("" turns the
// message relay off).
func trunkList(in []string) []string {
	var out []string
	for _, t := range in {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}
