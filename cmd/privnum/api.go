package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/privnum/privnum/api"
	"github.com/privnum/privnum/apikey"
	"github.com/privnum/privnum/cdr"
	"github.com/privnum/privnum/device"
	"github.com/privnum/privnum/qr"
	"github.com/privnum/privnum/scanpage"
	"github.com/privnum/privnum/webhook"
)

// apiConfig is what `privnum api` needs beyond the global flags.
type apiConfig struct {
	listen          string
	shutdownTimeout time.Duration
	maxBody         int64
	// scanIPLimit per scanIPWindow is the scan page's per-source-IP limit.
	scanIPLimit    int
	scanIPWindow   time.Duration
	trustedProxies []string
	// ari, when its URL is set, serves call recordings from Asterisk.
	ari ariLogin
}

func (a *app) apiCmd() *cobra.Command {
	var ac apiConfig
	cmd := &cobra.Command{
		Use:   "api",
		Short: "Serve the HTTP API (JSON under /v1, OpenAPI at /openapi.json) and deliver webhooks",
		Long: "Serve the HTTP API (JSON under /v1, OpenAPI at /openapi.json) and deliver webhooks.\n" +
			"Callbacks and flash calls requested through it are placed by `privnum serve`.\n" +
			"Device binding (/v1/devices, and API keys created with --require-device) needs " + deviceSecretEnv + ":\n" +
			"at least 32 random bytes, the same for every API server; changing it invalidates every device token.",
		Args: exactArgs(0),
		RunE: a.withServices(func(cmd *cobra.Command, _ []string) error {
			return a.serveAPI(cmd.Context(), ac)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&ac.listen, "listen", "127.0.0.1:8080", "address to serve the API on; env PRIVNUM_API_LISTEN")
	a.envFlag(f, "listen", "PRIVNUM_API_LISTEN")
	f.DurationVar(&ac.shutdownTimeout, "shutdown-timeout", 15*time.Second, "on SIGTERM, how long requests under way may take to finish")
	f.Int64Var(&ac.maxBody, "max-body", 64<<10, "largest request body in bytes")
	f.IntVar(&ac.scanIPLimit, "scan-ip-limit", scanpage.DefaultIPLimit, "requests to the QR scan page per source IP per --scan-ip-window; negative: no limit")
	f.DurationVar(&ac.scanIPWindow, "scan-ip-window", scanpage.DefaultIPWindow, "window of --scan-ip-limit")
	f.StringSliceVar(&ac.trustedProxies, "trusted-proxy", nil,
		"reverse proxy address or CIDR whose X-Forwarded-For the scan page believes (repeatable); env PRIVNUM_TRUSTED_PROXIES (comma-separated)")
	a.envFlag(f, "trusted-proxy", "PRIVNUM_TRUSTED_PROXIES")
	a.ariFlags(f, &ac.ari, "")
	f.Lookup("ari-url").Usage = "Asterisk HTTP base URL (without /ari) for GET /v1/calls/{id}/recording (empty: not served); env PRIVNUM_ARI_URL"
	return cmd
}

// serveAPI serves the API until ctx is done, then stops taking requests,
// lets those under way finish and stops the webhook dispatcher.
func (a *app) serveAPI(ctx context.Context, ac apiConfig) error {
	level, err := a.level()
	if err != nil {
		return err
	}
	logh := slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level})
	log := slog.New(logh)
	hooks := webhook.NewStore(a.rdb)
	dispatcher := webhook.NewDispatcher(hooks, webhook.Config{Logger: log})
	codes, err := qr.New(a.rdb, a.parser, a.bindings, qr.Config{PublicBase: a.publicBase()})
	if err != nil {
		return usageError{err}
	}
	callbacks, verifications, devices, err := a.apiFlows(log)
	if err != nil {
		return err
	}
	if devices == nil {
		log.Warn("device binding is off: " + deviceSecretEnv + " is not set; /v1/devices is not served, and scans and callbacks with keys that require a device fail (503)")
	}
	var recs api.RecordingService
	if ac.ari.url != "" {
		svc, err := a.recordings(ac.ari)
		if err != nil {
			return err
		}
		recs = svc
	} else {
		log.Info("call recordings are not served: no --ari-url (PRIVNUM_ARI_URL)")
	}
	srv, err := api.New(api.Config{
		Recordings: recs,
		Redis:      a.rdb, Keys: apikey.New(a.rdb),
		Pool: a.pool, Bindings: a.bindings, Orders: a.orders, Calls: cdr.New(a.rdb, 0), Groups: a.groups,
		Webhooks: hooks, Events: dispatcher, Logger: log, MaxBodyBytes: ac.maxBody,
		QR: api.NewQRService(codes), Callbacks: api.NewCallbackService(callbacks), Verifications: api.NewVerificationService(verifications), Devices: devices,
	})
	if err != nil {
		return err
	}
	proxies, err := parseProxies(ac.trustedProxies)
	if err != nil {
		return usageError{err}
	}
	// The public page a QR code opens (no API key), beside the API.
	mux := http.NewServeMux()
	mux.Handle(scanpage.PathPrefix, scanpage.New(scanpage.Config{
		Codes: codes, Callbacks: callbacks, Logger: log,
		Redis: a.rdb, IPLimit: ac.scanIPLimit, IPWindow: ac.scanIPWindow, TrustedProxies: proxies,
	}))
	mux.Handle("/", srv)
	l, err := net.Listen("tcp", ac.listen)
	if err != nil {
		return fmt.Errorf("API listener: %w", err)
	}
	hs := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logh, slog.LevelWarn),
	}
	dctx, stopDispatcher := context.WithCancel(context.WithoutCancel(ctx))
	defer stopDispatcher()
	dispatched := make(chan error, 1)
	go func() { dispatched <- dispatcher.Run(dctx) }()
	served := make(chan error, 1)
	go func() { served <- hs.Serve(l) }()
	log.Info("API listening", "addr", l.Addr().String())

	select {
	case err := <-served:
		stopDispatcher()
		<-dispatched
		return fmt.Errorf("API server: %w", err)
	case <-ctx.Done():
	}
	log.Info("API shutting down", "timeout", ac.shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), ac.shutdownTimeout)
	defer cancel()
	err = hs.Shutdown(sctx)
	if err != nil {
		log.Warn("API shutdown timeout: connections cut", "err", err)
		hs.Close()
	}
	<-served
	stopDispatcher()
	<-dispatched
	log.Info("API stopped")
	return nil
}

func (a *app) apikeyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "apikey", Short: "Create, list and revoke API keys"}

	var name, scopes string
	var limitFlags []string
	var createJSON, requireDevice bool
	create := &cobra.Command{
		Use:   "create --name NAME --scope SCOPE[,SCOPE...] [--limit SCOPE=N/WINDOW]...",
		Short: "Create an API key; the key is printed once and stored only hashed",
		Long: "Create an API key. Scopes: " + scopeNames() + " (admin grants all).\n" +
			"The key is printed once: store it now, it cannot be shown again.\n" +
			"With --require-device, QR scans and callbacks made with the key must carry the\n" +
			"Privnum-Device-Token of the scanner's or caller's number (needs " + deviceSecretEnv + ").\n" +
			"--limit SCOPE=N/WINDOW (repeatable) sets the key's rate limit for operations of\n" +
			"SCOPE, e.g. --limit qr=60/1m; SCOPE=0 is unlimited. Scopes without --limit get\n" +
			apikey.DefaultLimit.String() + ". An admin key is limited per scope of the operation it calls.",
		Args: exactArgs(0),
		RunE: a.withServices(func(cmd *cobra.Command, _ []string) error {
			sc, err := apikey.ParseScopes(scopes)
			if err != nil {
				return usageError{err}
			}
			limits, err := parseLimits(limitFlags)
			if err != nil {
				return usageError{err}
			}
			if requireDevice {
				// Without device binding the API could never check the
				// tokens such a key must present.
				secret, err := a.deviceSecret()
				if err != nil {
					return usageError{err}
				}
				if secret == nil {
					return usageError{fmt.Errorf("--require-device: device binding is off: set %s (at least %d bytes, the same as for privnum api)", deviceSecretEnv, device.MinSecretLen)}
				}
			}
			k, secret, err := apikey.New(a.rdb).CreateWithPolicy(cmd.Context(), name, sc, apikey.Policy{RequireDevice: requireDevice, Limits: limits})
			if err != nil {
				return err
			}
			if createJSON {
				return a.printJSON(struct {
					apikey.Key
					Secret string `json:"secret"`
				}{k, secret})
			}
			policy := ""
			if k.RequireDevice {
				policy = ", requires a verified device"
			}
			fmt.Fprintf(a.stdout, "API key %s (%s), scopes %s%s, limits %s:\n\n  %s\n\nStore it now: it cannot be shown again.\n", k.ID, k.Name, joinScopes(k.Scopes), policy, formatLimits(k), secret)
			return nil
		}),
	}
	create.Flags().StringVar(&name, "name", "", "a name for the key, e.g. shop-1 (required)")
	create.Flags().StringVar(&scopes, "scope", "", "comma-separated scopes: "+scopeNames()+" (required)")
	create.Flags().BoolVar(&createJSON, "json", false, "print JSON")
	create.Flags().BoolVar(&requireDevice, "require-device", false, "QR scans and callbacks with this key need a verified device token (Privnum-Device-Token)")
	create.Flags().StringArrayVar(&limitFlags, "limit", nil, "rate limit SCOPE=N/WINDOW, e.g. qr=60/1m (repeatable; default "+apikey.DefaultLimit.String()+" per scope)")
	create.MarkFlagRequired("name")
	create.MarkFlagRequired("scope")

	var listJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List API keys (never their secrets)",
		Args:  exactArgs(0),
		RunE: a.withServices(func(cmd *cobra.Command, _ []string) error {
			keys, err := apikey.New(a.rdb).List(cmd.Context())
			if err != nil {
				return err
			}
			if listJSON {
				return a.printJSON(map[string]any{"keys": keys})
			}
			w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tNAME\tSCOPES\tDEVICE\tLIMITS\tCREATED\tENDS WITH")
			for _, k := range keys {
				dev := "-"
				if k.RequireDevice {
					dev = "required"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t…%s\n", k.ID, k.Name, joinScopes(k.Scopes), dev, formatLimits(k), k.CreatedAt.Local().Format(time.RFC3339), k.Hint)
			}
			return w.Flush()
		}),
	}
	list.Flags().BoolVar(&listJSON, "json", false, "print JSON")

	revoke := &cobra.Command{
		Use:   "revoke NAME|ID",
		Short: "Revoke an API key; requests with it are refused from now on",
		Args:  exactArgs(1),
		RunE: a.withServices(func(cmd *cobra.Command, args []string) error {
			k, err := apikey.New(a.rdb).Revoke(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "revoked %s (%s)\n", k.ID, k.Name)
			return nil
		}),
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

// parseProxies parses --trusted-proxy values: addresses or CIDR prefixes.
func parseProxies(vals []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range vals {
		// From PRIVNUM_TRUSTED_PROXIES "a, b": a CSV list, spaces allowed.
		if v = strings.TrimSpace(v); v == "" {
			continue
		}
		if p, err := netip.ParsePrefix(v); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(v)
		if err != nil {
			return nil, fmt.Errorf("--trusted-proxy %q: want an IP address or CIDR prefix: %w", v, err)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// parseLimits parses --limit flags; a scope given twice is an error.
func parseLimits(flags []string) (map[apikey.Scope]apikey.Limit, error) {
	var out map[apikey.Scope]apikey.Limit
	for _, f := range flags {
		sc, l, err := apikey.ParseLimit(f)
		if err != nil {
			return nil, fmt.Errorf("--limit: %w", err)
		}
		if _, dup := out[sc]; dup {
			return nil, fmt.Errorf("--limit: scope %s given twice", sc)
		}
		if out == nil {
			out = map[apikey.Scope]apikey.Limit{}
		}
		out[sc] = l
	}
	return out, nil
}

// formatLimits shows a key's explicit limits, "bindings=unlimited,qr=60/1m",
// in scope display order, then the default for the other scopes.
func formatLimits(k apikey.Key) string {
	var parts []string
	for _, sc := range apikey.AllScopes {
		if l, ok := k.Limits[sc]; ok {
			parts = append(parts, string(sc)+"="+l.String())
		}
	}
	def := "default " + apikey.DefaultLimit.String()
	if len(parts) == 0 {
		return def
	}
	return strings.Join(parts, ",") + " (else " + def + ")"
}

func scopeNames() string { return joinScopes(apikey.AllScopes) }

func joinScopes(s []apikey.Scope) string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = string(v)
	}
	return strings.Join(out, ",")
}

func (a *app) webhookCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "webhook",
		Short: "Register the URLs that receive binding and call events",
		Long: "Webhooks receive events as signed JSON POSTs, delivered by `privnum api`.\n" +
			"Events: " + strings.Join(webhook.EventTypes, ", ") + ".",
	}

	var events string
	var addJSON bool
	add := &cobra.Command{
		Use:   "add URL [--events TYPE,...]",
		Short: "Register a webhook; its signing secret is printed once",
		Args:  exactArgs(1),
		RunE: a.withServices(func(cmd *cobra.Command, args []string) error {
			var evs []string
			if events != "" {
				evs = strings.Split(events, ",")
			}
			h, secret, err := webhook.NewStore(a.rdb).Add(cmd.Context(), args[0], evs)
			if errors.Is(err, webhook.ErrInvalid) {
				return usageError{err}
			}
			if err != nil {
				return err
			}
			if addJSON {
				return a.printJSON(struct {
					webhook.Hook
					Secret string `json:"secret"`
				}{h, secret})
			}
			fmt.Fprintf(a.stdout, "webhook %s -> %s (events %s)\nsigning secret (shown once): %s\n", h.ID, h.URL, strings.Join(h.Events, ","), secret)
			return nil
		}),
	}
	add.Flags().StringVar(&events, "events", "", "comma-separated event types (default: all)")
	add.Flags().BoolVar(&addJSON, "json", false, "print JSON")

	var listJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List webhooks (never their secrets)",
		Args:  exactArgs(0),
		RunE: a.withServices(func(cmd *cobra.Command, _ []string) error {
			hooks, err := webhook.NewStore(a.rdb).List(cmd.Context())
			if err != nil {
				return err
			}
			if listJSON {
				return a.printJSON(map[string]any{"webhooks": hooks})
			}
			w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tURL\tEVENTS")
			for _, h := range hooks {
				fmt.Fprintf(w, "%s\t%s\t%s\n", h.ID, h.URL, strings.Join(h.Events, ","))
			}
			return w.Flush()
		}),
	}
	list.Flags().BoolVar(&listJSON, "json", false, "print JSON")

	remove := &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a webhook; its pending deliveries are dropped",
		Args:  exactArgs(1),
		RunE: a.withServices(func(cmd *cobra.Command, args []string) error {
			if err := webhook.NewStore(a.rdb).Remove(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, "removed")
			return nil
		}),
	}
	cmd.AddCommand(add, list, remove)
	return cmd
}
