package binding

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/privnum/privnum/internal/store"
)

// Action is what a call on a virtual number should do.
type Action string

// Route actions.
const (
	// Connect: dial Target, showing CallerID.
	Connect Action = "connect"
	// Reject: refuse the call with the announcement for Reason.
	Reject Action = "reject"
	// Collect: answer the call and collect an extension of Digits digits
	// (DTMF) before routing it (AXE). The extension's binding is resolved
	// in a second step once the digits are in (Service.ResolveExtension);
	// Target is empty.
	Collect Action = "collect"
)

// Reasons a call is rejected.
const (
	// ReasonNoBinding: the caller holds no binding on the dialed number.
	ReasonNoBinding = "no_binding"
	// ReasonExpired: the caller's binding was released or expired and is in quarantine.
	ReasonExpired = "expired"
	// ReasonDirection: the binding does not allow this caller to call.
	ReasonDirection = "direction_not_allowed"
	// ReasonNotInGroup: the number is an AXG binding's and the caller is
	// not a member of its group.
	ReasonNotInGroup = "not_in_group"
	// ReasonNoLastCaller: the owner of an AXN or AXG binding without a
	// fixed B called X, and nobody called them within the reply window.
	ReasonNoLastCaller = "no_last_caller"
	// ReasonBadExtension: the extension entered on an AXE number is not
	// one of its live extensions (unknown, released or expired).
	ReasonBadExtension = "bad_extension"
)

// Route is the answer to "caller dialed X: what happens?".
type Route struct {
	Action    Action `json:"action"`
	Reason    string `json:"reason,omitempty"`
	Target    string `json:"target,omitempty"`
	BindingID string `json:"binding_id,omitempty"`
	// Mode is the mode of the binding that decided (empty when none did).
	Mode   Mode   `json:"mode,omitempty"`
	X      string `json:"x"`
	Caller string `json:"caller"`
	// CallerID is the number to show Target: X, or with an AXN or AXG
	// binding's show-caller option the caller's own number when the call
	// reaches the owner.
	CallerID string `json:"caller_id,omitempty"`
	// Digits is how many digits to collect (Action Collect).
	Digits int `json:"digits,omitempty"`
	// Extension is the AXE extension the call concerns: the one entered
	// (ResolveExtension), or the owner's own on the reply path.
	Extension string `json:"extension,omitempty"`
	// Record, MaxDuration and RingTimeout are the binding's call options.
	Record      bool          `json:"record,omitempty"`
	MaxDuration time.Duration `json:"-"`
	RingTimeout time.Duration `json:"-"`
}

// ReplyWindow returns how long an owner's call on X reaches the last
// caller.
func (s *Service) ReplyWindow() time.Duration { return s.cfg.ReplyWindow }

// Resolve says where a call from caller to virtual number x goes, in every
// mode. An AXB call is one HGETALL of the caller's route; an AXN or AXG
// call one script run (reading the caller's route on x, else x's mode
// record and, for AXG, the group copy, all in x's slot), which also
// records the caller as the last caller when it reaches the owner; see
// modalSet for how the two are told apart (the first call on an AXN or
// AXG number in a process, and a stranger's call on an AXB number, take
// both). Unparsable numbers are an error wrapping e164.ErrInvalid.
//
// A text message resolves the same way, so it relays where a call would
// connect.
func (s *Service) Resolve(ctx context.Context, x, caller string) (Route, error) {
	return s.resolve(ctx, x, caller, true)
}

// Peek says where a call from caller to x would go, as Resolve, without
// recording the caller as anyone's last caller: for operators and API
// clients asking, not for calls.
func (s *Service) Peek(ctx context.Context, x, caller string) (Route, error) {
	return s.resolve(ctx, x, caller, false)
}

// CachedRoute says where a call from caller to x goes, as Resolve would,
// if the route cache (CacheRoutes) can tell without a Redis round trip;
// ok is false otherwise. It never waits.
func (s *Service) CachedRoute(x, caller string) (r Route, ok bool) {
	r, _, ok = s.cachedRoute(s.routes.Load(), x, caller, time.Now())
	return r, ok
}

// cachedRoute is CachedRoute with the cache c (nil: none); tried is the
// route key it looked up, if any.
func (s *Service) cachedRoute(c *routeCache, x, caller string, now time.Time) (r Route, tried string, ok bool) {
	if c == nil {
		return Route{}, "", false
	}
	// The route cache holds routes under numbers privnum parsed when it
	// stored them: a route found under the numbers' candidates proves
	// them valid, and so what Parse would make of them.
	xc, xok := s.parser.Candidate(x)
	cc, cok := s.parser.Candidate(caller)
	if !xok || !cok || s.modal.has(xc) {
		return Route{}, "", false
	}
	tried = store.RouteKey(xc, cc)
	if h, hit := c.get(tried, now); hit && h.last != "1" {
		return route(h, xc, cc, now), tried, true
	}
	return Route{}, tried, false
}

func (s *Service) resolve(ctx context.Context, x, caller string, record bool) (Route, error) {
	now := time.Now()
	c := s.routes.Load()
	r, tried, ok := s.cachedRoute(c, x, caller, now)
	if ok {
		return r, nil
	}
	var err error
	if x, err = s.parser.Parse(x); err != nil {
		return Route{}, fmt.Errorf("dialed number: %w", err)
	}
	if caller, err = s.parser.Parse(caller); err != nil {
		return Route{}, fmt.Errorf("caller: %w", err)
	}
	var h routeFields
	found := false
	if !s.modal.has(x) {
		// The caller's route answers alone unless it is an owner's that
		// needs the last caller: one HGETALL, as before modes.
		key := store.RouteKey(x, caller)
		if c != nil && key != tried {
			h, found = c.get(key, now)
		}
		if !found {
			var err error
			if h, found, err = s.readRoute(ctx, c, key, true); err != nil {
				return Route{}, fmt.Errorf("resolve %s: %w", x, err)
			}
		}
		found = found && h.last != "1"
	}
	if !found {
		h = routeFields{}
		vals, err := resolveScript.Run(ctx, s.rdb,
			[]string{store.RouteKey(x, caller), store.ModeKey(x), store.LastCallerKey(x), store.MembersKey(x), store.ExtensionLastKey(x)},
			ms(now), caller, s.cfg.ReplyWindow.Milliseconds(), boolArg(record)).StringSlice()
		if err != nil {
			return Route{}, fmt.Errorf("resolve %s: %w", x, err)
		}
		for i := 0; i+1 < len(vals); i += 2 {
			h.set(vals[i], vals[i+1]) // a later field wins (the last caller's "peer")
		}
		s.modal.note(x, h.mode != "" && h.mode != string(AXB))
	}
	return route(h, x, caller, now), nil
}

// route is where a call from caller to x goes, as its route fields h say
// at now.
func route(h routeFields, x, caller string, now time.Time) Route {
	r := Route{Action: Reject, X: x, Caller: caller}
	stranger := h.stranger == "1"
	// X's AXE mode record names no binding: the extension entered picks one.
	if h.id == "" && !(stranger && h.mode == string(AXE)) {
		r.Reason = ReasonNoBinding
		return r
	}
	r.BindingID, r.Mode, r.Extension = h.id, modeOf(h.mode), h.ext
	exp, _ := strconv.ParseInt(h.exp, 10, 64)
	switch {
	case h.rel == "1" || exp <= now.UnixMilli():
		r.Reason = ReasonExpired
		return r
	case stranger && r.Mode == AXE:
		r.Action, r.Digits = Collect, defaultDigits
		if d, err := strconv.Atoi(h.digits); err == nil && d > 0 {
			r.Digits = d
		}
		return r
	case stranger && r.Mode == AXG && h.member != "1":
		r.Reason = ReasonNotInGroup
		return r
	case stranger && r.Mode != AXN && r.Mode != AXG:
		r.Reason = ReasonNoBinding
		return r
	case stranger:
		r.Target = h.a
	case h.allow != "1":
		r.Reason = ReasonDirection
		return r
	case h.peer == "":
		r.Reason = ReasonNoLastCaller
		return r
	default:
		r.Target = h.peer
	}
	r.Action = Connect
	r.CallerID = x
	if h.show == "1" {
		r.CallerID = caller
	}
	r.Record = h.rec == "1"
	maxS, _ := strconv.Atoi(h.max)
	ringS, _ := strconv.Atoi(h.ring)
	r.MaxDuration = time.Duration(maxS) * time.Second
	r.RingTimeout = time.Duration(ringS) * time.Second
	return r
}

// routeFields are the fields of the resolve script's answer that routing
// reads: a caller's route, or X's mode record with the script's marks.
type routeFields struct {
	id, mode, exp, rel, allow, peer, a, show, rec, max, ring, stranger, member, digits, last, ext string
}

// setAll sets the fields of a route hash.
func (f *routeFields) setAll(m map[string]string) {
	for k, v := range m {
		f.set(k, v)
	}
}

func (f *routeFields) set(k, v string) {
	switch k {
	case "id":
		f.id = v
	case "mode":
		f.mode = v
	case "exp":
		f.exp = v
	case "rel":
		f.rel = v
	case "allow":
		f.allow = v
	case "peer":
		f.peer = v
	case "a":
		f.a = v
	case "show":
		f.show = v
	case "rec":
		f.rec = v
	case "max":
		f.max = v
	case "ring":
		f.ring = v
	case "stranger":
		f.stranger = v
	case "member":
		f.member = v
	case "digits":
		f.digits = v
	case "last":
		f.last = v
	case "ext":
		f.ext = v
	}
}

// modalMax bounds modalSet; past it the memory starts over.
const modalMax = 1 << 17

// modalSet is what a Service remembers of the numbers that answered with
// a mode record (an AXN, AXG or AXE binding holds them): calls to those
// go straight to the resolve script, one round trip. Other numbers are
// resolved with one HGETALL of the caller's route first, the AXB path,
// and go to the script (a second round trip) only when that does not
// answer: no route (a stranger), or an owner's route that needs the last
// caller. So an AXB call costs what it did before modes, and an AXN or
// AXG call one round trip once this process has seen its number.
type modalSet struct {
	mu sync.Mutex
	m  map[string]struct{}
}

func (s *modalSet) has(x string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[x]
	return ok
}

// note records whether x answered with a mode record.
func (s *modalSet) note(x string, modal bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case modal && (s.m == nil || len(s.m) >= modalMax):
		s.m = map[string]struct{}{x: {}}
	case modal:
		s.m[x] = struct{}{}
	default:
		delete(s.m, x)
	}
}
