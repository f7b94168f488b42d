package arisim

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"sort"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Errors returned by the scripting API.
var (
	// ErrNoApplication: no WebSocket is connected for the Stasis application,
	// so Stasis() fails (STASISSTATUS=FAILED) and the call never enters it.
	ErrNoApplication = errors.New("arisim: no WebSocket connected for the Stasis application")
	// ErrChannelNotFound: no live channel has the id.
	ErrChannelNotFound = errors.New("arisim: channel not found")
	// ErrInvalidState: the channel is not in a state the operation needs.
	ErrInvalidState = errors.New("arisim: channel in invalid state")
	// ErrClosed: the simulator is closed.
	ErrClosed = errors.New("arisim: simulator closed")
)

// Options configure a Sim. The zero value is usable.
type Options struct {
	// Addr is the listen address; default "127.0.0.1:0".
	Addr string
	// Username and Password, when either is set, are required on every
	// request, as HTTP Basic auth or as api_key=user:pass; otherwise 401.
	Username string
	Password string
	// AsteriskVersion is reported by /asterisk/info; default "22.10.1".
	AsteriskVersion string
	// AsteriskID is the events' asterisk_id and the entity id; default
	// "02:fc:00:00:00:01".
	AsteriskID string
	// App is the Stasis application inbound calls enter (the dialplan's
	// Stasis(privnum)); default "privnum".
	App string
	// InboundTrunk is the PJSIP endpoint inbound calls arrive on; default
	// "trunk-in" (context "from-trunk").
	InboundTrunk string
	// Trunks maps the known PJSIP endpoints to their dialplan context.
	// Default {"carrier": "from-carrier", "trunk-in": "from-trunk"}.
	// Dialing PJSIP/NUMBER@UNKNOWN answers 500 Allocation failed.
	Trunks map[string]string
	// TimeScale multiplies every simulated duration (dial timeouts, ringing,
	// playbacks, recording limits): 0.01 runs an 8 s dial timeout in 80 ms.
	// Default 1.
	TimeScale float64
	// Now is the clock for timestamps; default time.Now.
	Now func() time.Time
	// DefaultBehavior is the far party of unscripted endpoints; default
	// Answer(200 ms).
	DefaultBehavior *Behavior
	// PlaybackDuration is how long a played file lasts; default 300 ms.
	// "tone:" media play until stopped unless MediaDurations lists them.
	PlaybackDuration time.Duration
	// MediaDurations overrides PlaybackDuration per media URI.
	MediaDurations map[string]time.Duration
	// DTMFDuration is how long the far party holds each key it presses
	// with SendDTMF, reported as duration_ms; default 120 ms.
	DTMFDuration time.Duration
	// DTMFEndOnly makes SendDTMF digits arrive as Asterisk 22 reports
	// DTMF that comes with no begin (SIP INFO, an RFC 4733 event whose
	// first packets were lost): its core reports the end it received, then
	// emulates the digit and reports that end too — two
	// ChannelDtmfReceived for one key, under a millisecond apart (seen on
	// Asterisk 22.10.1 with INFO application/dtmf-relay).
	DTMFEndOnly bool
	// HistoryLimit bounds the destroyed channels (and finished playbacks and
	// recordings) kept for inspection; default 10000.
	HistoryLimit int
	// WriteTimeout is the WebSocket write timeout after which a slow reader
	// is disconnected; default 1 s (Asterisk's default is 100 ms).
	WriteTimeout time.Duration
	// MaxQueuedEvents bounds the events queued for one WebSocket; a reader
	// that falls further behind is disconnected. Default 100000.
	MaxQueuedEvents int
	// NoVarsetNoise suppresses the ChannelVarset events (STASISSTATUS,
	// BRIDGEPEER ...) real Asterisk sends.
	NoVarsetNoise bool
	// Control mounts the /_sim/ control endpoints (see the package doc).
	Control bool
	// Logger receives connection-level logs; default discards.
	Logger *slog.Logger
}

// Sim is a fake Asterisk 22 speaking ARI over HTTP and WebSocket.
// All methods are safe for concurrent use.
type Sim struct {
	opts       Options
	log        *slog.Logger
	startUnix  int64
	startedAt  time.Time
	asteriskID string

	mu         sync.Mutex
	changed    chan struct{}
	closed     bool
	started    bool
	url        string
	srv        *http.Server
	seq        uint64
	channels   map[string]*channel
	bridges    map[string]*bridge
	playbacks  map[string]*playback
	recordings map[string]*recording
	conns      map[string]*wsConn
	allConns   map[*wsConn]struct{}
	// replaced counts ApplicationReplaced events sent, per application.
	replaced map[string]int
	// msgContexts holds the trunks' message_context; endpointSubs the
	// endpoints each application subscribed to; sent the messages sent.
	msgContexts  map[string]string
	endpointSubs map[string]map[string]bool
	// filters are the applications' event filters.
	filters map[string]*eventFilter
	sent    []SentMessage
	trunks  map[string]string
	// cfg is what a configuration check reads (config.go).
	cfg             pjsipConfig
	rules           []endpointRule
	defaultBehavior Behavior
	history         *boundedMap[ChannelInfo]
	donePlaybacks   *boundedMap[PlaybackInfo]
	doneRecordings  *boundedMap[RecordingInfo]
	// stored are the finished recordings (GET /recordings/stored).
	stored map[string]*storedRecording
	stats  Stats
	wsWG   sync.WaitGroup
}

// New returns a simulator configured by opts; Start makes it listen.
func New(opts Options) *Sim {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.AsteriskVersion == "" {
		opts.AsteriskVersion = "22.10.1"
	}
	if opts.AsteriskID == "" {
		opts.AsteriskID = "02:fc:00:00:00:01"
	}
	if opts.App == "" {
		opts.App = "privnum"
	}
	if opts.InboundTrunk == "" {
		opts.InboundTrunk = "trunk-in"
	}
	if opts.TimeScale <= 0 {
		opts.TimeScale = 1
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.PlaybackDuration <= 0 {
		opts.PlaybackDuration = 300 * time.Millisecond
	}
	if opts.DTMFDuration <= 0 {
		opts.DTMFDuration = 120 * time.Millisecond
	}
	if opts.HistoryLimit <= 0 {
		opts.HistoryLimit = 10000
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = time.Second
	}
	if opts.MaxQueuedEvents <= 0 {
		opts.MaxQueuedEvents = 100000
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	trunks := map[string]string{"carrier": "from-carrier", "trunk-in": "from-trunk"}
	if opts.Trunks != nil {
		trunks = make(map[string]string, len(opts.Trunks))
		for k, v := range opts.Trunks {
			trunks[k] = v
		}
	}
	if _, ok := trunks[opts.InboundTrunk]; !ok {
		trunks[opts.InboundTrunk] = "from-" + opts.InboundTrunk
	}
	def := Answer(200 * time.Millisecond)
	if opts.DefaultBehavior != nil {
		def = *opts.DefaultBehavior
	}
	start := opts.Now()
	return &Sim{
		opts:            opts,
		log:             log,
		startUnix:       start.Unix(),
		startedAt:       start,
		asteriskID:      opts.AsteriskID,
		changed:         make(chan struct{}),
		channels:        make(map[string]*channel),
		bridges:         make(map[string]*bridge),
		playbacks:       make(map[string]*playback),
		recordings:      make(map[string]*recording),
		conns:           make(map[string]*wsConn),
		allConns:        make(map[*wsConn]struct{}),
		replaced:        make(map[string]int),
		msgContexts:     make(map[string]string),
		endpointSubs:    make(map[string]map[string]bool),
		filters:         make(map[string]*eventFilter),
		trunks:          trunks,
		cfg:             newPJSIPConfig(),
		defaultBehavior: def,
		history:         newBoundedMap[ChannelInfo](opts.HistoryLimit),
		donePlaybacks:   newBoundedMap[PlaybackInfo](opts.HistoryLimit),
		doneRecordings:  newBoundedMap[RecordingInfo](opts.HistoryLimit),
		stored:          make(map[string]*storedRecording),
	}
}

// Start listens on Options.Addr and serves ARI in the background.
func (s *Sim) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.started {
		return errors.New("arisim: already started")
	}
	ln, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("arisim: listen %s: %w", s.opts.Addr, err)
	}
	s.started = true
	s.url = "http://" + ln.Addr().String()
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	srv := s.srv
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("arisim: serve", "err", err)
		}
	}()
	s.log.Info("arisim: listening", "url", s.url)
	return nil
}

// URL returns the base URL, http://127.0.0.1:PORT (clients append /ari).
func (s *Sim) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url
}

// Close stops the server, closes every WebSocket and cancels every pending
// timer. Channels are left as they are for inspection.
func (s *Sim) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	for _, ch := range s.channels {
		ch.stopTimers()
	}
	for _, pb := range s.playbacks {
		pb.stopTimer()
	}
	for _, rec := range s.recordings {
		rec.stopTimer()
	}
	conns := make([]*wsConn, 0, len(s.allConns))
	for c := range s.allConns {
		conns = append(conns, c)
	}
	clear(s.conns)
	srv := s.srv
	s.notifyLocked()
	s.mu.Unlock()

	for _, c := range conns {
		c.closeNow()
	}
	if srv != nil {
		_ = srv.Close()
	}
	s.wsWG.Wait()
}

// unlockNotify wakes WaitFor callers and releases the lock. Every locked
// operation that may change state ends with it.
func (s *Sim) unlockNotify() {
	s.notifyLocked()
	s.mu.Unlock()
}

func (s *Sim) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// WaitFor blocks until cond returns true or ctx ends. cond is called without
// the simulator's lock held (it may call any Sim method) once at first and
// again after every state change.
func (s *Sim) WaitFor(ctx context.Context, cond func(*Sim) bool) error {
	for {
		s.mu.Lock()
		changed := s.changed
		s.mu.Unlock()
		if cond(s) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("arisim: wait: %w", ctx.Err())
		}
	}
}

func (s *Sim) now() time.Time { return s.opts.Now() }

func (s *Sim) ts() string { return s.now().Format(asteriskTimeLayout) }

func (s *Sim) scale(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(float64(d) * s.opts.TimeScale)
}

// nextSeq returns the next channel sequence number (locked).
func (s *Sim) nextSeq() uint64 {
	n := s.seq
	s.seq++
	return n
}

// channelID returns an Asterisk-style unique id, "1795413473.0".
func (s *Sim) channelID(seq uint64) string {
	return fmt.Sprintf("%d.%d", s.startUnix, seq)
}

// newUUID returns a random RFC 4122 version 4 UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// emit sends an event to each application in apps that has a WebSocket.
// Events for applications without one are dropped, as Asterisk drops them.
func (s *Sim) emit(apps []string, ev event) {
	t := ev.tail()
	t.AsteriskID = s.asteriskID
	typ := reflect.ValueOf(ev).Elem().FieldByName("Type").String()
	for _, name := range apps {
		c := s.conns[name]
		if c == nil {
			s.stats.EventsDropped++
			continue
		}
		if !s.filters[name].passes(typ) {
			continue
		}
		t.Application = name
		b, err := json.Marshal(ev)
		if err != nil {
			s.log.Error("arisim: marshal event", "err", err)
			continue
		}
		if c.enqueue(b) {
			s.stats.EventsSent++
		} else {
			s.stats.EventsDropped++
		}
	}
}

// unionApps merges application lists, keeping order and dropping duplicates.
func unionApps(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		for _, a := range l {
			if !containsString(out, a) {
				out = append(out, a)
			}
		}
	}
	return out
}

func containsString(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func addUnique(list []string, v string) []string {
	if v == "" || containsString(list, v) {
		return list
	}
	return append(list, v)
}

// Stats counts what the simulator did; see Sim.Stats.
type Stats struct {
	InboundCalls int `json:"inbound_calls"`
	// InboundMessages counts SIP MESSAGEs delivered with InboundMessage.
	InboundMessages int `json:"inbound_messages"`
	FailedInbound   int `json:"failed_inbound"`
	OutboundLegs    int `json:"outbound_legs"`
	EventsSent      int `json:"events_sent"`
	EventsDropped   int `json:"events_dropped"`
	ActiveChannels  int `json:"active_channels"`
	ActiveBridges   int `json:"active_bridges"`
	Connections     int `json:"connections"`
}

// Stats returns counters and current sizes.
func (s *Sim) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.ActiveChannels = len(s.channels)
	st.ActiveBridges = len(s.bridges)
	st.Connections = len(s.allConns)
	return st
}

// boundedMap keeps the most recently added entries by key, up to a limit.
type boundedMap[T any] struct {
	limit int
	m     map[string]T
	order []string // keys, oldest first
}

func newBoundedMap[T any](limit int) *boundedMap[T] {
	return &boundedMap[T]{limit: limit, m: make(map[string]T)}
}

func (b *boundedMap[T]) put(k string, v T) {
	if _, ok := b.m[k]; !ok {
		b.order = append(b.order, k)
	}
	b.m[k] = v
	for len(b.order) > b.limit {
		delete(b.m, b.order[0])
		b.order = b.order[1:]
	}
}

func (b *boundedMap[T]) get(k string) (T, bool) {
	v, ok := b.m[k]
	return v, ok
}

// all returns the entries oldest first.
func (b *boundedMap[T]) all() []T {
	out := make([]T, len(b.order))
	for i, k := range b.order {
		out[i] = b.m[k]
	}
	return out
}

// sortedKeys returns a map's keys sorted.
func sortedKeys[T any](m map[string]T) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// wsConn is one /ari/events WebSocket.
type wsConn struct {
	c        *websocket.Conn
	apps     []string
	maxQueue int

	mu     sync.Mutex
	queue  [][]byte
	signal chan struct{}
	closed bool
}

// enqueue queues a message; false when the connection is closed or its
// reader fell too far behind (the connection is then closed).
func (w *wsConn) enqueue(b []byte) bool {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return false
	}
	if len(w.queue) >= w.maxQueue {
		w.closed = true
		c := w.c
		w.mu.Unlock()
		if c != nil {
			c.CloseNow()
		}
		return false
	}
	w.queue = append(w.queue, b)
	w.mu.Unlock()
	select {
	case w.signal <- struct{}{}:
	default:
	}
	return true
}

func (w *wsConn) take() [][]byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	q := w.queue
	w.queue = nil
	return q
}

// attach sets the upgraded connection; false if the wsConn was closed
// (dropped or overflowed) before the upgrade finished.
func (w *wsConn) attach(c *websocket.Conn) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.c = c
	return !w.closed
}

func (w *wsConn) closeNow() {
	w.mu.Lock()
	w.closed = true
	c := w.c
	w.mu.Unlock()
	if c != nil {
		c.CloseNow()
	}
}
