package binding

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/privnum/privnum/internal/store"
	"github.com/privnum/privnum/reject"
)

// AXE: one X carries up to 10^n - 1 extension bindings (n =
// Config.ExtensionDigits), each of one party, each party at most once per
// X. The allocator fills one X before it opens the next: it tries the
// number its last AXE binding went to first, then the numbers reserved
// for axe, then unreserved numbers it knows to carry extensions, then
// free unreserved ones (area-tagged first within each). A number found
// full is stepped over for axeFullFor, or until its first quarantined
// extension frees up if sooner. As for the other exclusive modes,
// a failed try makes the next candidates' marks be read in one pipeline
// before they are tried.

// axeFullFor is how long the allocator steps over a number that answered
// that it has no free extension (or uses another length).
const axeFullFor = time.Minute

// ExtensionDigits returns the length of the AXE extensions this service
// hands out.
func (s *Service) ExtensionDigits() int { return s.cfg.ExtensionDigits }

// maxExtensions is how many extensions one number carries: 10^n - 1.
func (s *Service) maxExtensions() int {
	m := 1
	for range s.cfg.ExtensionDigits {
		m *= 10
	}
	return m - 1
}

// validExtension tells whether ext has n digits and is not all zeros.
func validExtension(ext string, n int) bool {
	if len(ext) != n {
		return false
	}
	zero := true
	for _, r := range ext {
		if r < '0' || r > '9' {
			return false
		}
		zero = zero && r == '0'
	}
	return !zero
}

// checkExtension refuses a requested extension that is not of the
// configured length or not digits, naming the field.
func (s *Service) checkExtension(ext string) error {
	if validExtension(ext, s.cfg.ExtensionDigits) {
		return nil
	}
	return &reject.FieldError{Field: "extension", Err: ErrInvalid,
		Reason: fmt.Sprintf("extension %q: want %d digits, not all zeros", ext, s.cfg.ExtensionDigits)}
}

// createExt creates an AXE binding: on req.X, or on the first candidate
// whose script accepts it.
func (s *Service) createExt(ctx context.Context, req Request, now time.Time) (Binding, error) {
	taken := func() error {
		return &reject.FieldError{Field: "extension", Err: ErrExtensionTaken,
			Reason: fmt.Sprintf("extension %s is taken (or quarantined) on the virtual number", req.Extension)}
	}
	if req.X != "" {
		b, res, detail, err := s.tryExt(ctx, req, req.X, now)
		if err != nil {
			return Binding{}, err
		}
		switch res {
		case "ok":
			return b, nil
		case "taken":
			return Binding{}, taken()
		case "busy_a":
			return Binding{}, fmt.Errorf("%w: %s", ErrPartyBusy, req.X)
		case "full":
			return Binding{}, fmt.Errorf("%w: %s has no free extension", ErrNumberUnavailable, req.X)
		case "digits":
			return Binding{}, fmt.Errorf("%w: %s carries %s-digit extensions", ErrNumberUnavailable, req.X, detail)
		default:
			return Binding{}, fmt.Errorf("%w: %s is %s", ErrNumberUnavailable, req.X, unavailable(res))
		}
	}
	cands, err := s.extCandidates(ctx, req, now)
	if err != nil {
		return Binding{}, err
	}
	sawTaken, probe := false, false
	for start := 0; start < len(cands); start += probeBatch {
		batch := cands[start:min(start+probeBatch, len(cands))]
		if probe {
			if batch, err = s.probeExt(ctx, batch, now); err != nil {
				return Binding{}, err
			}
		}
		for _, x := range batch {
			b, res, _, err := s.tryExt(ctx, req, x, now)
			if err != nil {
				return Binding{}, err
			}
			switch res {
			case "ok":
				return b, nil
			case "taken":
				sawTaken = true
			case "busy_a":
			default:
				probe = true
			}
		}
	}
	if sawTaken {
		return Binding{}, taken()
	}
	return Binding{}, ErrPoolExhausted
}

// extCandidates lists, in order of preference, the numbers an AXE binding
// of req could go to, by what the process knows.
func (s *Service) extCandidates(ctx context.Context, req Request, now time.Time) ([]string, error) {
	if err := s.currentSnapshot(ctx); err != nil {
		return nil, err
	}
	nowMs := now.UnixMilli()
	c := &s.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	// last; reserved+area, reserved; known axe; unreserved+area, unreserved.
	var tiers [6][]string
	for i, e := range c.snap.Numbers {
		x := e.Number
		if x == req.A || c.axeFull[x] > nowMs {
			continue
		}
		t := 0
		switch {
		case x == c.axeLast:
		case e.Mode == string(AXE):
			t = 1
		case e.Mode != "":
			continue
		case c.axeKnown[x] > nowMs:
			t = 3
		case c.holds[i] > nowMs || c.shared[i] > nowMs || c.loads[i] > 0:
			continue
		default:
			t = 4
		}
		if (t == 1 || t == 4) && (req.Area == "" || e.Area != req.Area) {
			t++
		}
		tiers[t] = append(tiers[t], x)
	}
	var out []string
	for _, t := range tiers {
		out = append(out, t...)
	}
	return out, nil
}

// probeExt reads the marks of candidates in one pipeline and returns those
// that may take an AXE binding: active, unreserved or reserved for axe,
// and held by axe or by nobody and free of AXB pairs.
func (s *Service) probeExt(ctx context.Context, cands []string, now time.Time) ([]string, error) {
	marks := make([]*redis.SliceCmd, len(cands))
	active := make([]*redis.IntCmd, len(cands))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, x := range cands {
			marks[i] = p.HMGet(ctx, store.NumberKey(x), "state", "mode", "held", "shared", "holder")
			active[i] = p.Exists(ctx, store.ActiveKey(x))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read number marks: %w", err)
	}
	nowMs := now.UnixMilli()
	str := func(v any) string { s, _ := v.(string); return s }
	num := func(v any) int64 { n, _ := strconv.ParseInt(str(v), 10, 64); return n }
	var free []string
	c := &s.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range cands {
		v := marks[i].Val()
		held, shared, holder := num(v[2]), num(v[3]), str(v[4])
		switch m := str(v[1]); {
		case str(v[0]) != "active" || (m != "" && m != string(AXE)):
		case held > nowMs && holder == string(AXE):
			c.noteAXE(x, held)
			free = append(free, x)
		case held > nowMs:
			c.markHeld(x, held, nowMs, false)
		case shared > nowMs:
			c.markShared(x, shared)
		case active[i].Val() == 1:
			c.markShared(x, now.Add(time.Minute).UnixMilli())
		default:
			free = append(free, x)
		}
	}
	return free, nil
}

// noteAXE records that x carries AXE extensions until untilMs; c.mu must
// be held.
func (c *candidates) noteAXE(x string, untilMs int64) {
	if c.axeKnown == nil || len(c.axeKnown) >= heldMax {
		c.axeKnown = map[string]int64{}
	}
	c.axeKnown[x] = max(c.axeKnown[x], untilMs)
}

// tryExt runs the AXE create script on one candidate X. detail is the
// script's second answer (the extension for "ok").
func (s *Service) tryExt(ctx context.Context, req Request, x string, now time.Time) (Binding, string, string, error) {
	id := newID(x)
	exp := now.Add(req.TTL)
	maxe := s.maxExtensions()
	r, err := s.run(ctx, createExtScript,
		[]string{store.NumberKey(x), store.ModeKey(x), store.RouteKey(x, req.A), store.BindingKey(x, id),
			store.ActiveKey(x), store.ExtensionsKey(x), store.ExtensionLastKey(x)},
		ms(now), ms(exp), req.Quarantine.Milliseconds(), id, req.A, x,
		boolArg(req.Record), int64(req.MaxDuration/time.Second), int64(req.RingTimeout/time.Second),
		req.OrderID, req.Area, s.cfg.ExtensionDigits, req.Extension, rand.IntN(maxe)+1, maxe).Slice()
	if err != nil {
		return Binding{}, "", "", fmt.Errorf("bind on %s: %w", x, err)
	}
	res, _ := r[0].(string)
	detail, _ := r[1].(string)
	nowMs := now.UnixMilli()
	untilq := exp.Add(req.Quarantine).UnixMilli()
	c := &s.cache
	c.mu.Lock()
	switch res {
	case "held":
		n, _ := strconv.ParseInt(detail, 10, 64)
		c.markHeld(x, n, nowMs, false)
	case "shared":
		n, _ := strconv.ParseInt(detail, 10, 64)
		c.markShared(x, n)
	case "full", "digits":
		if c.axeFull == nil || len(c.axeFull) >= heldMax {
			c.axeFull = map[string]int64{}
		}
		c.axeFull[x] = nowMs + axeFullFor.Milliseconds()
		if n, err := strconv.ParseInt(detail, 10, 64); err == nil && res == "full" {
			c.axeFull[x] = min(c.axeFull[x], n) // an extension frees up then
		}
		if c.axeLast == x {
			c.axeLast = ""
		}
	case "ok":
		c.markHeld(x, untilq, nowMs, false)
		c.noteAXE(x, untilq)
		c.axeLast = x
	}
	c.mu.Unlock()
	if res != "ok" {
		return Binding{}, res, detail, nil
	}
	b := Binding{
		ID: id, Mode: AXE, A: req.A, X: x, Area: req.Area, State: Active,
		CreatedAt: time.UnixMilli(nowMs).UTC(), ExpiresAt: time.UnixMilli(exp.UnixMilli()).UTC(),
		Record: req.Record, MaxDurationSec: int(req.MaxDuration / time.Second),
		RingTimeoutSec: int(req.RingTimeout / time.Second), Directions: Both, OrderID: req.OrderID,
		Extension: detail,
	}
	b.QuarantineUntil = b.ExpiresAt.Add(req.Quarantine)
	return b, "ok", detail, nil
}

// releaseExt ends an AXE binding now; its extension stays quarantined.
func (s *Service) releaseExt(ctx context.Context, b Binding, now time.Time) (Binding, error) {
	res, err := s.run(ctx, releaseExtScript,
		[]string{store.BindingKey(b.X, b.ID), store.RouteKey(b.X, b.A), store.ActiveKey(b.X),
			store.ExtensionsKey(b.X), store.ExtensionLastKey(b.X)},
		ms(now), b.QuarantineUntil.Sub(b.ExpiresAt).Milliseconds(), b.ID, b.Extension).Text()
	if err != nil {
		return Binding{}, fmt.Errorf("release %s: %w", b.ID, err)
	}
	if res == "not_found" {
		return Binding{}, fmt.Errorf("%w: %s", ErrNotFound, b.ID)
	}
	return s.Get(ctx, b.ID)
}

// ResolveExtension says where a call from caller to the AXE number x goes
// once the caller entered ext (the second step after Resolve answered
// Collect): Connect to the extension's party with caller ID x, recording
// the caller as the extension's last caller (so the party reaches them by
// calling x), or Reject with ReasonBadExtension for an extension that is
// not live on x (unknown, released, expired, or not Digits digits). One
// script run, one round trip; an ext of the wrong shape costs none.
// Unparsable numbers are an error wrapping e164.ErrInvalid.
func (s *Service) ResolveExtension(ctx context.Context, x, caller, ext string) (Route, error) {
	return s.resolveExt(ctx, x, caller, ext, true)
}

// PeekExtension answers as ResolveExtension without recording the caller
// as the extension's last caller.
func (s *Service) PeekExtension(ctx context.Context, x, caller, ext string) (Route, error) {
	return s.resolveExt(ctx, x, caller, ext, false)
}

func (s *Service) resolveExt(ctx context.Context, x, caller, ext string, record bool) (Route, error) {
	var err error
	if x, err = s.parser.Parse(x); err != nil {
		return Route{}, fmt.Errorf("dialed number: %w", err)
	}
	if caller, err = s.parser.Parse(caller); err != nil {
		return Route{}, fmt.Errorf("caller: %w", err)
	}
	r := Route{Action: Reject, Reason: ReasonBadExtension, Mode: AXE, X: x, Caller: caller, Extension: ext}
	if !validExtension(ext, len(ext)) || len(ext) > 6 {
		r.Extension = ""
		return r, nil
	}
	vals, err := resolveExtScript.Run(ctx, s.rdb, []string{store.ExtensionsKey(x), store.ExtensionLastKey(x)},
		ms(time.Now()), ext, caller, s.cfg.ReplyWindow.Milliseconds(), boolArg(record)).StringSlice()
	if err != nil && !errors.Is(err, redis.Nil) {
		return Route{}, fmt.Errorf("resolve extension on %s: %w", x, err)
	}
	var h routeFields
	ended := false
	for i := 0; i+1 < len(vals); i += 2 {
		if vals[i] == "ended" {
			ended = true
		}
		h.set(vals[i], vals[i+1])
	}
	r.BindingID = h.id
	if h.a == "" || ended {
		return r, nil
	}
	r.Action, r.Reason, r.Target, r.CallerID = Connect, "", h.a, x
	r.Record = h.rec == "1"
	maxS, _ := strconv.Atoi(h.max)
	ringS, _ := strconv.Atoi(h.ring)
	r.MaxDuration = time.Duration(maxS) * time.Second
	r.RingTimeout = time.Duration(ringS) * time.Second
	return r, nil
}
