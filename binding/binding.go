// Package binding keeps bindings of parties to virtual numbers, in the
// modes of Mode: AXB (parties A and B bound to a virtual number X, so that
// A calling X reaches B and B calling X reaches A), AXN (X reaches A from
// anyone), AXG (X reaches A from the members of a group) and AXE (X
// carries up to 10^n - 1 extensions; a caller keys one to reach its
// party).
//
// One X carries many AXB bindings at once as long as no party appears
// twice on it, so the pool needed is set by the busiest party, not by the
// number of bindings. AXN and AXG hold their X alone; AXE holds its X for
// AXE extensions alone. Released and expired
// (X, party) pairs stay quarantined for a cool-down so that nobody who
// kept the number reaches a stranger.
package binding

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/privnum/privnum/e164"
	"github.com/privnum/privnum/internal/store"
	"github.com/privnum/privnum/pool"
	"github.com/privnum/privnum/reject"
)

// Sentinel errors callers branch on.
var (
	// ErrPoolExhausted means no virtual number can carry the binding.
	ErrPoolExhausted = errors.New("pool exhausted")
	// ErrNotFound means no binding has that id (or its quarantine ended).
	ErrNotFound = errors.New("binding not found")
	// ErrNumberUnavailable means the requested X is not an active pool number.
	ErrNumberUnavailable = errors.New("virtual number unavailable")
	// ErrPartyBusy means a party already holds the requested X (active or quarantined).
	ErrPartyBusy = errors.New("party already bound on this virtual number")
	// ErrEnded means the binding was released or has expired.
	ErrEnded = errors.New("binding has ended")
	// ErrInvalid means a request field is out of range.
	ErrInvalid = errors.New("invalid binding request")
	// ErrExtensionTaken means the requested AXE extension is in use (or
	// quarantined) on the virtual number; it comes inside a
	// *reject.FieldError naming "extension".
	ErrExtensionTaken = errors.New("extension taken")
)

// State is a binding's lifecycle state.
type State string

// Binding states.
const (
	Active   State = "active"
	Expired  State = "expired"
	Released State = "released"
)

// Directions says which party may call the other through X.
type Directions string

// Allowed call directions.
const (
	Both Directions = "both"
	AToB Directions = "a_to_b"
	BToA Directions = "b_to_a"
)

// ParseDirections accepts "both", "a_to_b"/"a->b" and "b_to_a"/"b->a";
// empty means both.
func ParseDirections(s string) (Directions, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "both":
		return Both, nil
	case "a_to_b", "a->b", "atob":
		return AToB, nil
	case "b_to_a", "b->a", "btoa":
		return BToA, nil
	}
	return "", fmt.Errorf("%w: directions %q: want both, a_to_b or b_to_a", ErrInvalid, s)
}

// Options are what call control honours on a binding's calls.
type Options struct {
	// Record records the bridged call.
	Record bool
	// MaxDuration ends a call after this long; 0 means no limit.
	MaxDuration time.Duration
	// RingTimeout bounds how long the called party rings; 0 means the
	// call-control default.
	RingTimeout time.Duration
	// Directions limits who may call whom; empty means both.
	Directions Directions
}

// Request asks for a binding.
type Request struct {
	// Mode is the binding's mode; empty means AXB.
	Mode Mode
	// A is the owner in AXN and AXG; B is optional there (the fixed party
	// A reaches by calling X).
	A, B string
	// X asks for a specific virtual number; empty lets the allocator choose.
	X string
	// Area prefers virtual numbers tagged with this area (B's area).
	Area string
	// TTL is how long the binding lives.
	TTL time.Duration
	// OrderID ties the binding to an e-commerce order.
	OrderID string
	// Quarantine, when set, replaces the service's quarantine for this
	// binding's pairs (a short one for QR scans, say, so that a popular
	// code does not hold numbers for a day per scanner). At most the
	// service's.
	Quarantine time.Duration
	// ShowCaller (AXN, AXG) shows the owner the caller's real number
	// instead of X. Off by default: the owner sees X.
	ShowCaller bool
	// Group (AXG) names the group whose members may call.
	Group string
	// Extension (AXE) asks for this extension (Config.ExtensionDigits
	// digits, not all zeros); empty lets the allocator choose.
	Extension string
	Options
}

// Binding is A and B bound to X until ExpiresAt.
type Binding struct {
	ID              string     `json:"id"`
	Mode            Mode       `json:"mode"`
	A               string     `json:"a"`
	B               string     `json:"b"`
	X               string     `json:"x"`
	Area            string     `json:"area,omitempty"`
	State           State      `json:"state"`
	CreatedAt       time.Time  `json:"created_at"`
	ExpiresAt       time.Time  `json:"expires_at"`
	QuarantineUntil time.Time  `json:"quarantine_until"`
	Record          bool       `json:"record"`
	MaxDurationSec  int        `json:"max_duration_seconds,omitempty"`
	RingTimeoutSec  int        `json:"ring_timeout_seconds,omitempty"`
	Directions      Directions `json:"directions"`
	OrderID         string     `json:"order_id,omitempty"`
	ShowCaller      bool       `json:"show_caller,omitempty"`
	Group           string     `json:"group,omitempty"`
	// Extension is an AXE binding's extension on X (not personal data).
	Extension string `json:"extension,omitempty"`
}

// Config tunes a Service.
type Config struct {
	// Quarantine is how long a released or expired (X, party) pair stays
	// reserved. Default 24h.
	Quarantine time.Duration
	// MaxTTL caps a binding's lifetime. Default 365 days.
	MaxTTL time.Duration
	// AutoPipeline sends Create's commands through a go-redis
	// autopipeliner, so that concurrent creates share round trips (fewer
	// syscalls on both sides). For single-server and cluster clients.
	AutoPipeline bool
	// WaitReplicas, when above 0, makes Create, Release and Extend return
	// only after that many replicas of the number's master confirmed the
	// change (Redis WAIT), so that a master dying right after cannot lose
	// it; if they do not confirm within ReplicaTimeout the call fails with
	// store.ErrNotReplicated (the change may still have been applied).
	// 0 (the default) trusts the master's acknowledgement alone.
	WaitReplicas int
	// ReplicaTimeout bounds the wait for replicas. Default 1s, at most 2s.
	ReplicaTimeout time.Duration
	// ReplyWindow is how long after a stranger's call the owner of an AXN
	// or AXG binding without a fixed B reaches that caller by calling X.
	// Default 24h.
	ReplyWindow time.Duration
	// Groups serves AXG bindings their group; without it AXG bindings are
	// refused.
	Groups Groups
	// ExtensionDigits is the length of AXE extensions, 1 to 6: a number
	// carries the extensions 1 to 10^n - 1 (0001 to 9999 for 4). Default
	// 4. A number keeps the length its first extension was made with
	// while it is held.
	ExtensionDigits int
}

// defaultDigits is the default length of AXE extensions.
const defaultDigits = 4

// Groups is what the binding service needs from the AXG groups.
// *group.Service implements it.
type Groups interface {
	// Members returns a group's members and its membership version; an
	// unknown group is an error wrapping ErrInvalid naming "group".
	Members(ctx context.Context, name string) ([]string, int64, error)
	// Attach records that binding id uses the group, so that membership
	// changes reach its copy, and brings the copy up to date.
	Attach(ctx context.Context, name, id string) error
}

// Service creates, resolves and ends bindings.
type Service struct {
	rdb    redis.UniversalClient
	pool   *pool.Pool
	parser e164.Parser
	cfg    Config
	cache  candidates
	// modal remembers the numbers held by a mode with a mode record.
	modal modalSet
	// routes is the route cache while CacheRoutes runs.
	routes atomic.Pointer[routeCache]
	// ap, when set, carries Create's commands (see Config.AutoPipeline).
	ap *redis.AutoPipeliner
}

// New returns a Service on rdb drawing virtual numbers from p.
func New(rdb redis.UniversalClient, p *pool.Pool, parser e164.Parser, cfg Config) *Service {
	if cfg.Quarantine <= 0 {
		cfg.Quarantine = 24 * time.Hour
	}
	if cfg.MaxTTL <= 0 {
		cfg.MaxTTL = 365 * 24 * time.Hour
	}
	if cfg.ReplicaTimeout <= 0 {
		cfg.ReplicaTimeout = time.Second
	}
	if cfg.ReplyWindow <= 0 {
		cfg.ReplyWindow = 24 * time.Hour
	}
	if cfg.ExtensionDigits <= 0 {
		cfg.ExtensionDigits = defaultDigits
	}
	cfg.ExtensionDigits = min(cfg.ExtensionDigits, 6)
	if cfg.WaitReplicas > 0 {
		cfg.AutoPipeline = false // WAIT must follow the script on its own connection
	}
	s := &Service{rdb: rdb, pool: p, parser: parser, cfg: cfg, cache: candidates{load: map[string]int{}}}
	if cfg.AutoPipeline {
		var ap *redis.AutoPipeliner
		var err error
		switch c := rdb.(type) {
		case *redis.Client:
			ap, err = c.AsyncAutoPipeline()
		case *redis.ClusterClient:
			ap, err = c.AsyncAutoPipeline()
		}
		if err == nil {
			s.ap = ap
		}
	}
	return s
}

// Parser returns the number parser the service normalises with.
func (s *Service) Parser() e164.Parser { return s.parser }

// Quarantine returns the configured quarantine.
func (s *Service) Quarantine() time.Duration { return s.cfg.Quarantine }

// UnboundID returns an id shaped like the ids of bindings on x that names
// no binding (Get answers ErrNotFound): for an answer that must look as if
// a binding had been made when none was (a QR code's owner asking for a
// callback from their own code).
func UnboundID(x string) string { return newID(x) }

func newID(x string) string {
	var b [8]byte
	rand.Read(b[:])
	return strings.TrimPrefix(x, "+") + "." + hex.EncodeToString(b[:])
}

// XOf returns the virtual number a binding id belongs to.
func XOf(id string) (string, bool) { return xOf(id) }

// xOf returns the virtual number a binding id belongs to.
func xOf(id string) (string, bool) {
	digits, rnd, ok := strings.Cut(id, ".")
	if !ok || len(rnd) != 16 || digits == "" || len(digits) > 15 {
		return "", false
	}
	for _, r := range digits {
		if r < '0' || r > '9' {
			return "", false
		}
	}
	if _, err := hex.DecodeString(rnd); err != nil {
		return "", false
	}
	return "+" + digits, true
}

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

func boolArg(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// normalize checks and normalises a request in place.
func (s *Service) normalize(req *Request) error {
	var err error
	if req.Mode, err = ParseMode(string(req.Mode)); err != nil {
		return err
	}
	if req.A, err = s.parser.Parse(req.A); err != nil {
		return fmt.Errorf("party a: %w", err)
	}
	if req.B != "" || !req.Mode.Exclusive() {
		if req.B, err = s.parser.Parse(req.B); err != nil {
			return fmt.Errorf("party b: %w", err)
		}
	}
	switch {
	case (req.Mode == AXB || req.Mode == AXE) && req.ShowCaller:
		return &reject.FieldError{Field: "show_caller", Reason: "only axn and axg bindings show the caller", Err: ErrInvalid}
	case req.Mode == AXE && req.B != "":
		return &reject.FieldError{Field: "b", Reason: "an axe binding has one party, a", Err: ErrInvalid}
	case req.Mode != AXE && req.Extension != "":
		return &reject.FieldError{Field: "extension", Reason: "only axe bindings have an extension", Err: ErrInvalid}
	case req.Mode == AXE && req.Extension != "":
		if err := s.checkExtension(req.Extension); err != nil {
			return err
		}
	case req.Mode != AXG && req.Group != "":
		return &reject.FieldError{Field: "group", Reason: "only axg bindings have a group", Err: ErrInvalid}
	case req.Mode == AXG && req.Group == "":
		return &reject.FieldError{Field: "group", Reason: "an axg binding needs a group", Err: ErrInvalid}
	case req.Mode.Exclusive() && req.Directions != "" && req.Directions != Both:
		return &reject.FieldError{Field: "directions", Reason: "axn, axg and axe bindings take calls both ways", Err: ErrInvalid}
	}
	if req.A == req.B {
		return fmt.Errorf("%w: parties a and b are the same number", ErrInvalid)
	}
	if req.X != "" {
		if req.X, err = s.parser.Parse(req.X); err != nil {
			return fmt.Errorf("virtual number: %w", err)
		}
		if req.X == req.A || req.X == req.B {
			return fmt.Errorf("%w: the virtual number cannot be a party", ErrInvalid)
		}
	}
	if req.TTL <= 0 || req.TTL > s.cfg.MaxTTL {
		return fmt.Errorf("%w: ttl %s: want more than 0 and at most %s", ErrInvalid, req.TTL, s.cfg.MaxTTL)
	}
	switch {
	case req.Quarantine == 0:
		req.Quarantine = s.cfg.Quarantine
	case req.Quarantine < 0 || req.Quarantine > s.cfg.Quarantine:
		return fmt.Errorf("%w: quarantine %s: want more than 0 and at most %s", ErrInvalid, req.Quarantine, s.cfg.Quarantine)
	}
	if req.MaxDuration < 0 || req.RingTimeout < 0 {
		return fmt.Errorf("%w: durations must not be negative", ErrInvalid)
	}
	if req.Directions, err = ParseDirections(string(req.Directions)); err != nil {
		return err
	}
	return nil
}

// Create binds A and B to a virtual number. With X set it uses that number
// or fails (ErrNumberUnavailable, ErrPartyBusy); otherwise it picks one that
// neither party holds, preferring numbers tagged with Area, and fails with
// ErrPoolExhausted when none is left.
func (s *Service) Create(ctx context.Context, req Request) (Binding, error) {
	if err := s.normalize(&req); err != nil {
		return Binding{}, err
	}
	now := time.Now()
	if req.Mode == AXE {
		return s.createExt(ctx, req, now)
	}
	if req.Mode.Exclusive() {
		return s.createHeld(ctx, req, now)
	}
	if req.X != "" {
		b, res, err := s.try(ctx, req, req.X, now)
		if err != nil {
			return Binding{}, err
		}
		switch res {
		case "ok":
			return b, s.hint(ctx, b)
		case "unknown", "retired", "reserved", "held":
			return Binding{}, fmt.Errorf("%w: %s is %s", ErrNumberUnavailable, req.X, unavailable(res))
		default:
			return Binding{}, fmt.Errorf("%w: %s", ErrPartyBusy, req.X)
		}
	}
	guess := s.speculate(req, now)
	if guess != "" {
		b, res, err := s.try(ctx, req, guess, now)
		if err != nil {
			return Binding{}, err
		}
		if res == "ok" {
			return b, s.hint(ctx, b)
		}
	}
	best, rest, err := s.freeCandidates(ctx, req, now)
	if err != nil {
		return Binding{}, err
	}
	if best == "" {
		return Binding{}, ErrPoolExhausted
	}
	if best != guess {
		b, res, err := s.try(ctx, req, best, now)
		if err != nil {
			return Binding{}, err
		}
		if res == "ok" {
			return b, s.hint(ctx, b)
		}
	}
	for x := range rest {
		if x == guess {
			continue
		}
		b, res, err := s.try(ctx, req, x, now)
		if err != nil {
			return Binding{}, err
		}
		if res == "ok" {
			return b, s.hint(ctx, b)
		}
	}
	return Binding{}, ErrPoolExhausted
}

// unavailable says why a create script refused a number.
func unavailable(res string) string {
	switch res {
	case "unknown":
		return "not in the pool"
	case "retired":
		return "retired"
	case "reserved":
		return "reserved for another mode"
	case "held":
		return "held by an axn, axg or axe binding"
	case "shared":
		return "in use by axb bindings (or their quarantine)"
	}
	return res
}

// try runs the create script on one candidate X.
func (s *Service) try(ctx context.Context, req Request, x string, now time.Time) (Binding, string, error) {
	id := newID(x)
	exp := now.Add(req.TTL)
	allowAB := req.Directions == Both || req.Directions == AToB
	allowBA := req.Directions == Both || req.Directions == BToA
	r, err := s.run(ctx, createScript,
		[]string{store.NumberKey(x), store.RouteKey(x, req.A), store.RouteKey(x, req.B), store.BindingKey(x, id), store.ActiveKey(x)},
		ms(now), ms(exp), req.Quarantine.Milliseconds(), id, req.A, req.B, x,
		boolArg(allowAB), boolArg(allowBA), boolArg(req.Record),
		int64(req.MaxDuration/time.Second), int64(req.RingTimeout/time.Second),
		string(req.Directions), req.OrderID, req.Area).Slice()
	if err != nil {
		return Binding{}, "", fmt.Errorf("bind on %s: %w", x, err)
	}
	res, _ := r[0].(string)
	load, _ := r[1].(int64)
	s.cache.mu.Lock()
	switch res {
	case "held":
		s.cache.markHeld(x, load, now.UnixMilli(), false)
	case "busy_a":
		s.cache.remember(req.A, x, now.Add(time.Minute).UnixMilli())
	case "busy_b":
		s.cache.remember(req.B, x, now.Add(time.Minute).UnixMilli())
	case "ok":
		until := exp.Add(req.Quarantine).UnixMilli()
		s.cache.remember(req.A, x, until)
		s.cache.remember(req.B, x, until)
		s.cache.markShared(x, until)
	}
	s.cache.mu.Unlock()
	if res != "ok" {
		return Binding{}, res, nil
	}
	s.cache.setLoad(x, int(load))
	b := Binding{
		ID: id, Mode: AXB, A: req.A, B: req.B, X: x, Area: req.Area, State: Active,
		CreatedAt: time.UnixMilli(now.UnixMilli()).UTC(), ExpiresAt: time.UnixMilli(exp.UnixMilli()).UTC(),
		Record: req.Record, MaxDurationSec: int(req.MaxDuration / time.Second),
		RingTimeoutSec: int(req.RingTimeout / time.Second), Directions: req.Directions, OrderID: req.OrderID,
	}
	b.QuarantineUntil = b.ExpiresAt.Add(req.Quarantine)
	return b, "ok", nil
}

// run runs a script that changes a binding: through the autopipeliner when
// there is one, and followed by a WAIT for replicas when the service is
// configured to wait.
func (s *Service) run(ctx context.Context, sc *redis.Script, keys []string, args ...any) *redis.Cmd {
	if s.cfg.WaitReplicas > 0 {
		return store.RunDurable(ctx, s.rdb, sc, s.cfg.WaitReplicas, s.cfg.ReplicaTimeout, keys, args...)
	}
	if s.ap != nil {
		return sc.Run(ctx, s.ap, keys, args...)
	}
	return sc.Run(ctx, s.rdb, keys, args...)
}

// hint records in each party's index that it holds X until the end of the
// quarantine. The index only narrows the allocator's search; the per-number
// script is the authority, so a lost hint costs a retry, never a wrong call.
func (s *Service) hint(ctx context.Context, b Binding) error {
	until := b.QuarantineUntil
	err := s.batch(ctx, func(pipe redis.Cmdable) []redis.Cmder {
		var cmds []redis.Cmder
		for _, p := range []string{b.A, b.B} {
			k := store.PartyKey(p)
			keep := time.Until(until) + time.Second
			cmds = append(cmds,
				pipe.ZAdd(ctx, k, redis.Z{Score: float64(until.UnixMilli()), Member: b.X}),
				pipe.ZRemRangeByScore(ctx, k, "-inf", ms(time.Now())),
				pipe.ExpireNX(ctx, k, keep),
				pipe.ExpireGT(ctx, k, keep))
		}
		return cmds
	})
	if err != nil {
		return fmt.Errorf("index binding %s: %w", b.ID, err)
	}
	return nil
}

// batch runs the commands fn issues (and returns) as one pipeline, or
// through the autopipeliner, sharing round trips with concurrent callers.
// It returns the first error other than redis.Nil.
func (s *Service) batch(ctx context.Context, fn func(redis.Cmdable) []redis.Cmder) error {
	if s.ap == nil {
		_, err := s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error { fn(pipe); return nil })
		if errors.Is(err, redis.Nil) {
			return nil
		}
		return err
	}
	for _, c := range fn(s.ap) {
		if err := c.Err(); err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
	}
	return nil
}

// Get returns a binding by id, active, expired or released, until its
// quarantine ends.
func (s *Service) Get(ctx context.Context, id string) (Binding, error) {
	x, ok := xOf(id)
	if !ok {
		return Binding{}, fmt.Errorf("%w: %q is not a binding id", ErrNotFound, id)
	}
	h, err := s.rdb.HGetAll(ctx, store.BindingKey(x, id)).Result()
	if err != nil {
		return Binding{}, fmt.Errorf("get binding %s: %w", id, err)
	}
	if len(h) == 0 {
		return Binding{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return s.fromHash(id, h, time.Now()), nil
}

func (s *Service) fromHash(id string, h map[string]string, now time.Time) Binding {
	num := func(k string) int64 { v, _ := strconv.ParseInt(h[k], 10, 64); return v }
	b := Binding{
		ID: id, A: h["a"], B: h["b"], X: h["x"], Area: h["area"],
		CreatedAt: time.UnixMilli(num("created")).UTC(), ExpiresAt: time.UnixMilli(num("exp")).UTC(),
		Record: h["rec"] == "1", MaxDurationSec: int(num("max")), RingTimeoutSec: int(num("ring")),
		Directions: Directions(h["dir"]), OrderID: h["order"],
		Mode: modeOf(h["mode"]), ShowCaller: h["show"] == "1", Group: h["group"], Extension: h["ext"],
	}
	q := s.cfg.Quarantine
	if v := num("q"); v > 0 {
		q = time.Duration(v) * time.Millisecond
	}
	b.QuarantineUntil = b.ExpiresAt.Add(q)
	switch {
	case h["rel"] == "1":
		b.State = Released
	case num("exp") <= now.UnixMilli():
		b.State = Expired
	default:
		b.State = Active
	}
	return b
}

func (s *Service) keysOf(ctx context.Context, id string) (Binding, []string, error) {
	b, err := s.Get(ctx, id)
	if err != nil {
		return Binding{}, nil, err
	}
	routeB := store.RouteKey(b.X, b.B)
	if b.B == "" {
		routeB = store.RouteKey(b.X, b.A) // an owner without a fixed B
	}
	return b, []string{store.BindingKey(b.X, id), store.RouteKey(b.X, b.A), routeB, store.ActiveKey(b.X),
		store.NumberKey(b.X), store.ModeKey(b.X), store.MembersKey(b.X), store.LastCallerKey(b.X)}, nil
}

// Release ends a binding now; its pairs go into quarantine. Releasing a
// binding that already ended is not an error.
func (s *Service) Release(ctx context.Context, id string) (Binding, error) {
	b, keys, err := s.keysOf(ctx, id)
	if err != nil {
		return Binding{}, err
	}
	now := time.Now()
	if b.Mode == AXE {
		return s.releaseExt(ctx, b, now)
	}
	sc := releaseScript
	if b.Mode.Exclusive() {
		sc = releaseHeldScript
	} else {
		keys = keys[:4]
	}
	res, err := s.run(ctx, sc, keys, ms(now), b.QuarantineUntil.Sub(b.ExpiresAt).Milliseconds(), id).Text()
	if err != nil {
		return Binding{}, fmt.Errorf("release %s: %w", id, err)
	}
	if res == "not_found" {
		return Binding{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	b, err = s.Get(ctx, id)
	if err != nil {
		return Binding{}, err
	}
	if res == "ok" && b.Mode.Exclusive() {
		s.cache.mu.Lock()
		s.cache.markHeld(b.X, b.QuarantineUntil.UnixMilli(), now.UnixMilli(), true)
		s.cache.mu.Unlock()
	}
	if res == "ok" && !b.Mode.Exclusive() {
		if err := s.hint(ctx, b); err != nil {
			return b, err
		}
	}
	return b, nil
}

// Extend pushes an active binding's expiry back by ttl. An ended binding
// cannot be extended (ErrEnded).
func (s *Service) Extend(ctx context.Context, id string, ttl time.Duration) (Binding, error) {
	b, keys, err := s.keysOf(ctx, id)
	if err != nil {
		return Binding{}, err
	}
	now := time.Now()
	exp := b.ExpiresAt.Add(ttl)
	if ttl <= 0 || exp.Sub(now) > s.cfg.MaxTTL {
		return Binding{}, fmt.Errorf("%w: extending by %s: want more than 0 and a lifetime of at most %s", ErrInvalid, ttl, s.cfg.MaxTTL)
	}
	sc, args := extendScript, []any{ms(now), ms(exp), b.QuarantineUntil.Sub(b.ExpiresAt).Milliseconds(), id, boolArg(b.Mode.Exclusive())}
	keys = keys[:7]
	if b.Mode == AXE {
		sc, args[4] = extendExtScript, b.Extension
		keys = []string{store.BindingKey(b.X, id), store.RouteKey(b.X, b.A), store.ActiveKey(b.X),
			store.NumberKey(b.X), store.ModeKey(b.X), store.ExtensionsKey(b.X)}
	}
	res, err := s.run(ctx, sc, keys, args...).Text()
	if err != nil {
		return Binding{}, fmt.Errorf("extend %s: %w", id, err)
	}
	switch res {
	case "not_found":
		return Binding{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	case "released", "expired":
		return Binding{}, fmt.Errorf("%w: %s is %s", ErrEnded, id, res)
	}
	b, err = s.Get(ctx, id)
	if err != nil {
		return Binding{}, err
	}
	if b.Mode.Exclusive() {
		return b, nil
	}
	return b, s.hint(ctx, b)
}
