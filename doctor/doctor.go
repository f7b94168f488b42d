// Package doctor checks a privnum deployment: Redis and its persistence,
// ARI and its credentials, the Asterisk version and modules, the Stasis
// application, the identity and qualify options of the trunk endpoints (read
// over ARI's dynamic configuration), the recording directory and the pool's
// headroom. Each check yields findings: a status, what was found and, when
// something is wrong, how to fix it.
//
// Every request it makes is a read: it never opens the application's
// WebSocket (that would take the application away from a running serve) and
// never changes Asterisk's or Redis's configuration.
package doctor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/privnum/privnum/ari"
	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/internal/store"
)

// Status is a finding's verdict.
type Status string

// Finding statuses.
const (
	// OK: nothing to do.
	OK Status = "ok"
	// Warn: works, but risks a leak, an outage or lost data.
	Warn Status = "warn"
	// Fail: calls (or the check itself) cannot work like this.
	Fail Status = "fail"
	// Skip: not checked (not configured, or what it needs failed).
	Skip Status = "skip"
)

// Finding is one result of a check.
type Finding struct {
	// Check names what was checked, e.g. "redis persistence" or
	// "endpoint carrier send_pai".
	Check  string `json:"check"`
	Status Status `json:"status"`
	// Found says what the check saw.
	Found string `json:"found"`
	// Fix says what to change; empty when Status is OK or Skip.
	Fix string `json:"fix,omitempty"`
}

// Report is every finding of a run, in check order.
type Report struct {
	Findings []Finding `json:"findings"`
}

// Failed reports whether any finding failed, or, with strict, warned.
func (r Report) Failed(strict bool) bool {
	for _, f := range r.Findings {
		if f.Status == Fail || strict && f.Status == Warn {
			return true
		}
	}
	return false
}

// ARI is what the checks read from Asterisk; *ari.Client provides it.
type ARI interface {
	Info(ctx context.Context) (ari.AsteriskInfo, error)
	Modules(ctx context.Context) ([]ari.Module, error)
	Application(ctx context.Context, name string) (ari.Application, error)
	DynamicConfig(ctx context.Context, class, objectType, id string) ([]ari.ConfigTuple, error)
	Endpoints(ctx context.Context, tech string) ([]ari.Endpoint, error)
}

// Forecaster gives the pool forecast; *binding.Service provides it.
type Forecaster interface {
	Forecast(ctx context.Context) (binding.Forecast, error)
}

// Config says what to check and where.
type Config struct {
	// Redis is privnum's Redis; nil skips the Redis checks.
	Redis redis.UniversalClient
	// ARI reads Asterisk; nil skips every Asterisk check. ARIURL and
	// ARIUser appear in the findings.
	ARI             ARI
	ARIURL, ARIUser string
	// App is the Stasis application name (serve's --ari-app).
	App string
	// InboundEndpoints are the PJSIP endpoints calls to virtual numbers
	// arrive on ("trunk-in", from serve's --trunk-endpoint);
	// OutboundEndpoint the one the hidden party is dialed through
	// ("carrier", from serve's --endpoint-template). Empty skips them.
	InboundEndpoints []string
	OutboundEndpoint string
	// SMSRelay says text messages are relayed (serve's
	// --message-to-template is set): res_pjsip_messaging is then required
	// and the inbound endpoint needs a message_context.
	SMSRelay bool
	// RecordingDir is where Asterisk writes recordings, checked on this
	// host; empty skips the check (Asterisk runs elsewhere).
	RecordingDir string
	// Forecast gives the pool headroom; nil skips the check. MinHeadroom
	// is the headroom below which an area (or the whole pool) warns.
	Forecast    Forecaster
	MinHeadroom int
}

// Run runs every check and returns the findings.
func Run(ctx context.Context, cfg Config) Report {
	var r Report
	add := func(fs ...Finding) { r.Findings = append(r.Findings, fs...) }
	if cfg.Redis != nil {
		add(checkRedis(ctx, cfg.Redis)...)
	}
	if cfg.ARI != nil {
		add(checkAsterisk(ctx, cfg)...)
	}
	if cfg.RecordingDir != "" {
		add(checkRecordingDir(cfg.RecordingDir))
	}
	if cfg.Forecast != nil {
		add(checkHeadroom(ctx, cfg.Forecast, cfg.MinHeadroom)...)
	}
	return r
}

// ---- Redis

func checkRedis(ctx context.Context, rdb redis.UniversalClient) []Finding {
	if err := rdb.Ping(ctx).Err(); err != nil {
		return []Finding{{Check: "redis", Status: Fail, Found: "cannot reach Redis: " + err.Error(),
			Fix: "check --redis (PRIVNUM_REDIS_URL) and that the Redis server runs and accepts this host"}}
	}
	nodes := 1
	var aofOff, noSave []string
	var readErr error
	persist := func(ctx context.Context, c *redis.Client) error {
		vals, err := c.ConfigGet(ctx, "*").Result()
		if err != nil {
			return err
		}
		if vals["appendonly"] != "yes" {
			aofOff = append(aofOff, c.Options().Addr)
		}
		if strings.TrimSpace(vals["save"]) == "" {
			noSave = append(noSave, c.Options().Addr)
		}
		return nil
	}
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		nodes = 0
		var masters []*redis.Client
		var mu sync.Mutex
		readErr = c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			mu.Lock() // called at once on every master
			defer mu.Unlock()
			masters = append(masters, m)
			return nil
		})
		if readErr == nil {
			for _, m := range masters {
				nodes++
				if readErr = persist(ctx, m); readErr != nil {
					break
				}
			}
		}
	case *redis.Client:
		readErr = persist(ctx, c)
	default:
		readErr = fmt.Errorf("cannot read the configuration through a %T", rdb)
	}
	out := []Finding{{Check: "redis", Status: OK, Found: fmt.Sprintf("reachable (%d master%s)", nodes, plural(nodes))}}
	p := Finding{Check: "redis persistence"}
	switch {
	case readErr != nil:
		p.Status, p.Found = Warn, "could not read the persistence settings (CONFIG GET): "+readErr.Error()
		p.Fix = "make sure AOF is on (appendonly yes) where CONFIG is not available, e.g. in the managed service's settings"
	case len(aofOff) > 0 && len(noSave) > 0:
		p.Status = Warn
		p.Found = "AOF off and no RDB snapshots on " + strings.Join(aofOff, ", ") + ": a restart loses every binding, quarantine and queued callback"
		p.Fix = "set appendonly yes and appendfsync everysec in redis.conf (or CONFIG SET appendonly yes, then CONFIG REWRITE)"
	case len(aofOff) > 0:
		p.Status = Warn
		p.Found = "AOF off (appendonly no) on " + strings.Join(aofOff, ", ") + ": a restart loses what was written since the last RDB snapshot"
		p.Fix = "set appendonly yes and appendfsync everysec in redis.conf (or CONFIG SET appendonly yes, then CONFIG REWRITE)"
	default:
		p.Status, p.Found = OK, "AOF on"
	}
	tr := Finding{Check: "redis client tracking", Status: OK, Found: "available: serve routes calls from memory (--route-cache)"}
	if err := store.CheckTracking(ctx, rdb, []string{store.NumberKeysPrefix}); err != nil {
		tr.Status = Warn
		tr.Found = "serve cannot keep its route cache (" + err.Error() + "): every call waits for a Redis round trip"
		tr.Fix = "use Redis 6 or later, and let privnum's ACL user run HELLO and CLIENT (TRACKING)"
	}
	return append(out, p, tr)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// ---- Asterisk

func checkAsterisk(ctx context.Context, cfg Config) []Finding {
	info, err := cfg.ARI.Info(ctx)
	if err != nil {
		f := Finding{Check: "ari", Status: Fail}
		var ae *ari.Error
		switch {
		case errors.As(err, &ae) && ae.Status == http.StatusUnauthorized:
			f.Found = fmt.Sprintf("ARI at %s refused user %q (401)", cfg.ARIURL, cfg.ARIUser)
			f.Fix = "give --ari-user and --ari-password (PRIVNUM_ARI_USER, PRIVNUM_ARI_PASSWORD) the user and password of ari.conf (privnum-ari.conf)"
		case errors.As(err, &ae):
			f.Found = fmt.Sprintf("ARI at %s answered %d %s", cfg.ARIURL, ae.Status, ae.Message)
			f.Fix = "set enabled=yes in ari.conf and http.conf, and give --ari-url the HTTP server's base URL with its prefix, without /ari"
		default:
			f.Found = fmt.Sprintf("cannot reach ARI at %s: %v", cfg.ARIURL, err)
			f.Fix = "check --ari-url (PRIVNUM_ARI_URL) against http.conf's bindaddr and bindport, and that Asterisk runs"
		}
		return []Finding{f}
	}
	out := []Finding{{Check: "ari", Status: OK, Found: fmt.Sprintf("reachable at %s as %q", cfg.ARIURL, cfg.ARIUser)}, checkVersion(info.System.Version)}
	out = append(out, checkModules(ctx, cfg)...)
	out = append(out, checkApp(ctx, cfg))
	out = append(out, checkEndpoints(ctx, cfg)...)
	return out
}

func checkVersion(v string) Finding {
	f := Finding{Check: "asterisk version", Found: "Asterisk " + v}
	major, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(v, "certified/"), ".", 2)[0])
	switch {
	case err != nil:
		f.Status, f.Found = Warn, fmt.Sprintf("version %q not understood", v)
		f.Fix = "privnum is built and tested on Asterisk 22"
	case major < 22:
		f.Status, f.Fix = Warn, "privnum is built and tested on Asterisk 22 (ARI and PJSIP behave differently before it): upgrade"
	default:
		f.Status = OK
	}
	return f
}

// module is a module privnum needs and what for.
type module struct{ name, why string }

// requiredModules returns the modules of asterisk-conf/privnum-modules.conf
// that serve cannot do without; with sms, also the one relaying text
// messages.
func requiredModules(sms bool) []module {
	mods := []module{
		{"res_http_websocket.so", "the ARI events WebSocket"},
		{"res_websocket_client.so", "res_ari depends on it on Asterisk 22"},
		{"res_ari.so", "ARI"},
		{"res_ari_model.so", "ARI"},
		{"res_ari_applications.so", "ARI applications (reconnect, endpoint subscriptions)"},
		{"res_ari_asterisk.so", "ARI asterisk resources"},
		{"res_ari_bridges.so", "bridging the two parties"},
		{"res_ari_channels.so", "answering, dialing and hanging up"},
		{"res_ari_events.so", "the events WebSocket"},
		{"res_ari_playbacks.so", "announcements"},
		{"res_ari_recordings.so", "call recording"},
		{"app_stasis.so", "Stasis() in the dialplan"},
		{"res_stasis.so", "Stasis applications"},
		{"res_stasis_answer.so", "answering in Stasis"},
		{"res_stasis_playback.so", "announcements"},
		{"res_stasis_recording.so", "call recording"},
		{"func_callerid.so", "masking: CALLERID() and CONNECTEDLINE() set to the virtual number"},
		{"pbx_config.so", "the dialplan (privnum-extensions.conf)"},
		{"res_pjsip.so", "SIP"},
		{"res_pjsip_session.so", "SIP calls"},
		{"chan_pjsip.so", "SIP channels"},
		{"res_pjsip_caller_id.so", "PAI/RPID handling (send_pai, trust_id_*)"},
		{"res_pjsip_endpoint_identifier_ip.so", "identifying the carrier by IP (type=identify)"},
		{"res_pjsip_sdp_rtp.so", "media"},
		{"res_rtp_asterisk.so", "media"},
		{"bridge_simple.so", "two-party bridges"},
		{"bridge_softmix.so", "recorded bridges"},
	}
	if sms {
		mods = append(mods, module{"res_pjsip_messaging.so", "relaying text messages (--message-to-template)"})
	}
	return mods
}

func checkModules(ctx context.Context, cfg Config) []Finding {
	mods, err := cfg.ARI.Modules(ctx)
	if err != nil {
		return []Finding{{Check: "modules", Status: Fail, Found: "cannot list modules: " + err.Error(),
			Fix: "load res_ari_asterisk.so (GET /asterisk/modules)"}}
	}
	status := make(map[string]string, len(mods))
	for _, m := range mods {
		status[m.Name] = m.Status
	}
	need := requiredModules(cfg.SMSRelay)
	var out []Finding
	for _, m := range need {
		switch st := status[m.name]; st {
		case "Running":
		case "":
			out = append(out, Finding{Check: "module " + m.name, Status: Fail, Found: m.name + " is not loaded (" + m.why + ")",
				Fix: "add load = " + m.name + " to modules.conf (asterisk-conf/privnum-modules.conf) and remove any noload of it, then restart Asterisk"})
		default:
			out = append(out, Finding{Check: "module " + m.name, Status: Fail, Found: m.name + " is loaded but " + st + " (" + m.why + ")",
				Fix: "see why it declined to start in Asterisk's log (module load " + m.name + "), usually a missing dependency or configuration"})
		}
	}
	if out == nil {
		out = []Finding{{Check: "modules", Status: OK, Found: fmt.Sprintf("all %d required modules running", len(need))}}
	}
	return out
}

func checkApp(ctx context.Context, cfg Config) Finding {
	f := Finding{Check: "stasis application"}
	app, err := cfg.ARI.Application(ctx, cfg.App)
	switch {
	case errors.Is(err, ari.ErrNotFound):
		f.Status = Fail
		f.Found = fmt.Sprintf("application %q is not registered: no privnum serve is connected, calls to virtual numbers get SIP 503", cfg.App)
		f.Fix = fmt.Sprintf("start privnum serve with --ari-app %s against this Asterisk, and check Stasis(%s,...) in privnum-extensions.conf", cfg.App, cfg.App)
	case err != nil:
		f.Status, f.Found = Fail, "cannot read the application: "+err.Error()
		f.Fix = "load res_ari_applications.so"
	default:
		f.Status = OK
		f.Found = fmt.Sprintf("application %q registered, %d channel%s in it", app.Name, len(app.ChannelIDs), plural(len(app.ChannelIDs)))
	}
	return f
}

// ---- recording directory

func checkRecordingDir(dir string) Finding {
	f := Finding{Check: "recording directory"}
	st, err := os.Stat(dir)
	switch {
	case err != nil:
		f.Status, f.Found = Warn, dir+" does not exist on this host: recorded bindings (--record) would fail to record"
		f.Fix = "create it, owned by the user Asterisk runs as (it is astspooldir/recording of asterisk.conf), or point --recording-dir at it; --recording-dir '' when Asterisk runs on another host"
	case !st.IsDir():
		f.Status, f.Found = Fail, dir+" is not a directory"
		f.Fix = "remove it and create the directory, owned by the user Asterisk runs as"
	default:
		f.Status, f.Found = OK, dir+" exists"
	}
	return f
}

// ---- pool headroom

func checkHeadroom(ctx context.Context, fc Forecaster, min int) []Finding {
	fo, err := fc.Forecast(ctx)
	if err != nil {
		return []Finding{{Check: "pool headroom", Status: Fail, Found: "cannot forecast: " + err.Error(), Fix: "check Redis (above)"}}
	}
	t := fo.Total
	f := Finding{Check: "pool headroom", Found: fmt.Sprintf("%d of %d numbers left for the busiest party (needed now: %d)", t.Headroom, t.Pool, t.Needed)}
	switch {
	case t.Pool == 0:
		f.Status, f.Found, f.Fix = Fail, "the pool has no active numbers: every binding fails with pool exhausted", "add numbers: privnum pool add NUMBER... [--area TAG]"
	case t.Headroom <= 0:
		f.Status, f.Fix = Fail, fmt.Sprintf("the busiest party (%s) holds every number: its next binding fails with pool exhausted; add numbers (privnum pool add)", t.Busiest)
	case t.Headroom < min:
		f.Status, f.Fix = Warn, fmt.Sprintf("below %d: add numbers (privnum pool add) before the busiest party (%s) exhausts the pool", min, t.Busiest)
	default:
		f.Status = OK
	}
	out := []Finding{f}
	for _, a := range fo.Areas {
		if a.Area == "" || a.Headroom >= min {
			continue
		}
		out = append(out, Finding{Check: "pool headroom area " + a.Area, Status: Warn,
			Found: fmt.Sprintf("%d of %d numbers tagged %s left for the busiest party %s (needed now: %d); its further bindings take numbers of other areas", a.Headroom, a.Pool, a.Area, a.Busiest, a.Needed),
			Fix:   fmt.Sprintf("add numbers tagged %s: privnum pool add NUMBER... --area %s", a.Area, a.Area)})
	}
	return out
}
