// Package call is privnum's call control: every call that enters the Stasis
// application on a virtual number is resolved through the binding service
// and either connected to the bound party, masked behind the virtual number
// on both legs, or refused with an announcement.
package call

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/privnum/privnum/ari"
	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/cdr"
)

// Switch is the part of the Asterisk REST Interface call control drives.
// *ari.Client implements it; another ARI transport can stand in.
type Switch interface {
	Originate(ctx context.Context, r ari.OriginateRequest) (ari.Channel, error)
	Answer(ctx context.Context, channelID string) error
	Ring(ctx context.Context, channelID string) error
	Hangup(ctx context.Context, channelID, reason string) error
	SetVar(ctx context.Context, channelID, name, value string) error
	Play(ctx context.Context, channelID, playbackID string, media ...string) (ari.Playback, error)
	StopPlayback(ctx context.Context, playbackID string) error
	CreateBridge(ctx context.Context, bridgeID, types, name string) (ari.Bridge, error)
	AddChannel(ctx context.Context, bridgeID string, opts ari.AddChannelOptions, channelIDs ...string) error
	DestroyBridge(ctx context.Context, bridgeID string) error
	GetBridge(ctx context.Context, bridgeID string) (ari.Bridge, error)
	RecordBridge(ctx context.Context, bridgeID string, r ari.RecordRequest) (ari.LiveRecording, error)
	Application(ctx context.Context, name string) (ari.Application, error)
	Subscribe(ctx context.Context, app, eventSource string) (ari.Application, error)
	SetEventFilter(ctx context.Context, app string, allowed, disallowed []string) (ari.Application, error)
	SendMessage(ctx context.Context, to, from, body string) error
	Continue(ctx context.Context, channelID string) error
}

// errDuplicate means a call id is already in progress.
var errDuplicate = errors.New("call id already in progress")

// Router says where a call goes. *binding.Service implements it.
type Router interface {
	Resolve(ctx context.Context, x, caller string) (binding.Route, error)
}

// CachedRouter is a Router that may know a route without waiting (from
// memory); *binding.Service is one while its route cache runs.
type CachedRouter interface {
	Router
	// CachedRoute returns the route Resolve would, if it is known
	// without waiting.
	CachedRoute(x, caller string) (binding.Route, bool)
}

// startOriginator is a Switch that can send an originate request at once,
// on the calling goroutine, and leave the wait for its answer to another;
// *ari.Client does while its ready connections last (ari.Client.Warm).
// Call control then dials the hidden party of a call routed from memory
// straight from its StasisStart (see App.routeHere).
type startOriginator interface {
	StartOriginate(ctx context.Context, r ari.OriginateRequest) (wait func() (ari.Channel, error), ok bool)
}

// Recorder keeps call detail records. *cdr.Store implements it.
type Recorder interface {
	Add(ctx context.Context, r cdr.Record) error
}

// Announcements are the media played to refused callers (ARI media URIs,
// e.g. "sound:ss-noservice").
type Announcements struct {
	// NoBinding is played when the caller holds no binding on the number.
	NoBinding string
	// Expired is played when the caller's binding ended (quarantine).
	Expired string
	// NotInGroup is played to a caller who is not in an AXG binding's
	// group. Default "sound:ss-noservice", as for a number with no
	// binding, so that a stranger learns nothing about the whitelist.
	NotInGroup string
	// NoLastCaller is played to the owner of an AXN or AXG binding without
	// a fixed B who calls X when nobody called within the reply window.
	// Default "sound:vm-nobodyavail".
	NoLastCaller string
	// Connecting is played to a callback's first party while the second
	// is dialed; ringback follows it.
	Connecting string
	// ExtensionPrompt asks a caller on an AXE number for the extension
	// (media URIs, comma-separated). Default "sound:vm-enter-num-to-call"
	// ("Please enter the number you wish to call").
	ExtensionPrompt string
	// ExtensionInvalid is played before the prompt again after a wrong or
	// missing extension. Default "sound:pbx-invalid" ("I'm sorry, that's
	// not a valid extension. Please try again.").
	ExtensionInvalid string
	// ExtensionFailed is played before hanging up after the last wrong
	// try. Default "sound:sorry-youre-having-problems,sound:goodbye".
	ExtensionFailed string
}

// Config configures an App.
type Config struct {
	// Application is the Stasis application name.
	Application string
	// EndpointTemplate dials the hidden party; {number} is its E.164
	// number, {digits} the same without "+". Default "PJSIP/{number}@carrier".
	EndpointTemplate string
	// CallerIDTemplate formats the virtual number shown to the called
	// party, with the same placeholders. Default "{number}".
	CallerIDTemplate string
	// RingTimeout bounds how long the called party rings when the binding
	// sets none. Default 30s.
	RingTimeout time.Duration
	// Announcements default to stock Asterisk sounds.
	Announcements Announcements
	// FlashTimeout ends a verification flash call that has not rung by
	// then. Default 15s.
	FlashTimeout time.Duration
	// RecordFormat is the bridge recording format. Default "wav".
	RecordFormat string
	// Trunks are the inbound trunks' endpoints as ARI event sources, e.g.
	// "PJSIP/trunk-in". The application subscribes to them, so that their
	// text messages are relayed when Messages says where to.
	Trunks []string
	// Messages configures the relay of text messages; off by default.
	Messages Messages
	// DigitTimeout ends extension entry (AXE) when no digit came for this
	// long. Default 5s.
	DigitTimeout time.Duration
	// FirstDigitTimeout bounds the wait for the first digit while the
	// prompt plays; once it ends, DigitTimeout applies. Default 30s.
	FirstDigitTimeout time.Duration
	// ExtensionTries is how many wrong or missing extensions a caller may
	// key before the final announcement. Default 3.
	ExtensionTries int
	// Events, when set, receives call.ringing and call.answered events.
	Events Events
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Metrics may be nil.
	Metrics *Metrics
}

func (c *Config) defaults() {
	if c.Application == "" {
		c.Application = "privnum"
	}
	if c.EndpointTemplate == "" {
		c.EndpointTemplate = "PJSIP/{number}@carrier"
	}
	if c.CallerIDTemplate == "" {
		c.CallerIDTemplate = "{number}"
	}
	if c.RingTimeout <= 0 {
		c.RingTimeout = 30 * time.Second
	}
	if c.Announcements.NoBinding == "" {
		c.Announcements.NoBinding = "sound:ss-noservice"
	}
	if c.Announcements.Connecting == "" {
		c.Announcements.Connecting = "sound:pls-hold-while-try"
	}
	if c.FlashTimeout <= 0 {
		c.FlashTimeout = 15 * time.Second
	}
	if c.Announcements.NotInGroup == "" {
		c.Announcements.NotInGroup = "sound:ss-noservice"
	}
	if c.Announcements.NoLastCaller == "" {
		c.Announcements.NoLastCaller = "sound:vm-nobodyavail"
	}
	if c.Announcements.Expired == "" {
		c.Announcements.Expired = "sound:cannot-complete-as-dialed"
	}
	if c.Announcements.ExtensionPrompt == "" {
		c.Announcements.ExtensionPrompt = "sound:vm-enter-num-to-call"
	}
	if c.Announcements.ExtensionInvalid == "" {
		c.Announcements.ExtensionInvalid = "sound:pbx-invalid"
	}
	if c.Announcements.ExtensionFailed == "" {
		c.Announcements.ExtensionFailed = "sound:sorry-youre-having-problems,sound:goodbye"
	}
	if c.DigitTimeout <= 0 {
		c.DigitTimeout = 5 * time.Second
	}
	if c.FirstDigitTimeout <= 0 {
		c.FirstDigitTimeout = 30 * time.Second
	}
	if c.ExtensionTries <= 0 {
		c.ExtensionTries = 3
	}
	if c.RecordFormat == "" {
		c.RecordFormat = "wav"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// expand fills a template's {number} and {digits} placeholders.
func expand(tmpl, number string) string {
	// Not strings.NewReplacer: building one costs more than the two
	// replacements, on every call's routing path.
	s := strings.ReplaceAll(tmpl, "{number}", number)
	if strings.Contains(s, "{digits}") {
		s = strings.ReplaceAll(s, "{digits}", strings.TrimPrefix(number, "+"))
	}
	return s
}

// outboundTag marks the legs privnum originates, in their StasisStart args.
const outboundTag = "privnum-out"

// bridgePrefix marks privnum's bridges; their names carry what a restarted
// app needs to take the call up again.
const bridgePrefix = "privnum-"

// Our ids in Asterisk, all derived from the call id.
func (c *call) legID(side string) string { return "privnum-" + c.id + "-" + side }
func (c *call) bridgeID() string         { return bridgePrefix + c.id }
func (c *call) playbackID(what string) string {
	return c.id + "-" + what
}

func newID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// App runs call control for one Stasis application. It implements
// ari.Handler.
//
// Every call has one owner: a serial queue (see serial) that runs, one at a
// time and in order, everything that may change the call — its ARI events,
// the results of its REST requests, its timers, and requests from outside
// (Drain, resync). REST requests run in goroutines of their own with the
// call's lifetime context, cancelled when the call starts tearing down, and
// send their results back to the owner. The App's lock guards only the
// registry that finds a call by id, channel or bridge.
type App struct {
	sw     Switch
	router Router
	cdrs   Recorder
	cfg    Config
	log    *slog.Logger

	// ctx bounds the REST calls made on calls' behalf; cancelled by Close.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// events carries call events to Config.Events in order.
	events serial

	mu        sync.Mutex // guards the fields below: the registry, not calls
	closed    bool
	calls     map[string]*call       // by call id
	byChannel map[string]*call       // by leg and bridge id
	flashes   map[string]*time.Timer // verification flash calls by channel
	draining  bool
	idle      chan struct{} // closed when draining and no call is left
}

// New returns an App that drives sw, resolves through router and writes
// call records to cdrs.
func New(sw Switch, router Router, cdrs Recorder, cfg Config) *App {
	cfg.defaults()
	ctx, cancel := context.WithCancel(context.Background())
	a := &App{
		sw: sw, router: router, cdrs: cdrs, cfg: cfg, log: cfg.Logger,
		ctx: ctx, cancel: cancel,
		calls: map[string]*call{}, byChannel: map[string]*call{}, flashes: map[string]*time.Timer{},
	}
	a.events.a = a
	return a
}

// LiveCalls returns how many calls are in progress.
func (a *App) LiveCalls() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.calls)
}

// spawn runs f in a goroutine that Close waits for, and reports whether
// it did: after Close it does nothing.
func (a *App) spawn(f func()) bool {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return false
	}
	a.wg.Add(1)
	a.mu.Unlock()
	go func() {
		defer a.wg.Done()
		f()
	}()
	return true
}

// lookup returns the call that owns a channel or bridge id.
func (a *App) lookup(id string) *call {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.byChannel[id]
}

// index makes ids find c.
func (a *App) index(c *call, ids ...string) {
	a.mu.Lock()
	for _, id := range ids {
		a.byChannel[id] = c
	}
	a.mu.Unlock()
}

// register adds a new call to the registry; it fails while draining or
// when the id is taken.
func (a *App) register(c *call, ids ...string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.draining || a.closed {
		return ErrDraining
	}
	if _, dup := a.calls[c.id]; dup {
		return errDuplicate
	}
	a.calls[c.id] = c
	for _, id := range ids {
		a.byChannel[id] = c
	}
	a.cfg.Metrics.setLive(len(a.calls)) // under the lock: gauge updates stay in order
	return nil
}

// unregister removes a finished call and tells Drain when the last is gone.
func (a *App) unregister(c *call, ids ...string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.calls, c.id)
	for _, id := range ids {
		if a.byChannel[id] == c {
			delete(a.byChannel, id)
		}
	}
	a.cfg.Metrics.setLive(len(a.calls))
	if a.draining && len(a.calls) == 0 && a.idle != nil {
		select {
		case <-a.idle:
		default:
			close(a.idle)
		}
	}
}

// liveCalls returns the registered calls.
func (a *App) liveCalls() []*call {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]*call, 0, len(a.calls))
	for _, c := range a.calls {
		out = append(out, c)
	}
	return out
}

// Drain stops taking new calls (they are refused with congestion, so the
// carrier or dialplan can try elsewhere) and waits until the live calls end
// or ctx is done; then it hangs up what is left. It returns how many calls
// were cut.
func (a *App) Drain(ctx context.Context) int {
	a.mu.Lock()
	a.draining = true
	if a.idle == nil {
		a.idle = make(chan struct{})
		if len(a.calls) == 0 {
			close(a.idle)
		}
	}
	idle := a.idle
	a.mu.Unlock()
	select {
	case <-idle:
		return 0
	case <-ctx.Done():
	}
	cut := a.liveCalls()
	for _, c := range cut {
		c.do(func() { c.teardown(endBy{by: "system"}) })
	}
	return len(cut)
}

// Close cancels outstanding REST calls, stops the calls' timers and waits
// for the App's goroutines. Nothing runs for a call after it returns.
func (a *App) Close() {
	a.mu.Lock()
	a.closed = true
	for _, t := range a.flashes {
		t.Stop()
	}
	calls := make([]*call, 0, len(a.calls))
	for _, c := range a.calls {
		calls = append(calls, c)
	}
	a.mu.Unlock()
	a.cancel()
	for _, c := range calls {
		c.cancel()
		c.q.stop()
	}
	a.wg.Wait()
}
