package binding

import (
	"context"
	"fmt"
	"strconv"
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
	// in a second step once the digits are in; Target is empty. Filled in
	// by the AXE implementation: this package does not return it yet.
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
	// Record, MaxDuration and RingTimeout are the binding's call options.
	Record      bool          `json:"record,omitempty"`
	MaxDuration time.Duration `json:"-"`
	RingTimeout time.Duration `json:"-"`
}

// ReplyWindow returns how long an owner's call on X reaches the last
// caller.
func (s *Service) ReplyWindow() time.Duration { return s.cfg.ReplyWindow }

// Resolve says where a call from caller to virtual number x goes, in every
// mode. It is one Redis round trip (a script reading the caller's route
// on x, else x's mode record and, for AXG, the group copy, all in x's
// slot), which also records the caller as the last caller when it reaches
// an AXN or AXG owner. Unparsable numbers are an error wrapping
// e164.ErrInvalid.
//
// A text message resolves the same way, so it relays where a call would
// connect.
func (s *Service) Resolve(ctx context.Context, x, caller string) (Route, error) {
	var err error
	if x, err = s.parser.Parse(x); err != nil {
		return Route{}, fmt.Errorf("dialed number: %w", err)
	}
	if caller, err = s.parser.Parse(caller); err != nil {
		return Route{}, fmt.Errorf("caller: %w", err)
	}
	now := time.Now()
	vals, err := resolveScript.Run(ctx, s.rdb,
		[]string{store.RouteKey(x, caller), store.ModeKey(x), store.LastCallerKey(x), store.MembersKey(x)},
		ms(now), caller, s.cfg.ReplyWindow.Milliseconds()).StringSlice()
	if err != nil {
		return Route{}, fmt.Errorf("resolve %s: %w", x, err)
	}
	r := Route{Action: Reject, X: x, Caller: caller}
	if len(vals) == 0 {
		r.Reason = ReasonNoBinding
		return r, nil
	}
	h := make(map[string]string, len(vals)/2)
	for i := 0; i+1 < len(vals); i += 2 {
		h[vals[i]] = vals[i+1] // a later field wins (the last caller's "peer")
	}
	r.BindingID, r.Mode = h["id"], modeOf(h["mode"])
	exp, _ := strconv.ParseInt(h["exp"], 10, 64)
	stranger := h["stranger"] == "1"
	switch {
	case h["rel"] == "1" || exp <= now.UnixMilli():
		r.Reason = ReasonExpired
		return r, nil
	case stranger && r.Mode == AXE:
		r.Action, r.Digits = Collect, 4
		if d, err := strconv.Atoi(h["digits"]); err == nil && d > 0 {
			r.Digits = d
		}
		return r, nil
	case stranger && r.Mode == AXG && h["member"] != "1":
		r.Reason = ReasonNotInGroup
		return r, nil
	case stranger && r.Mode != AXN && r.Mode != AXG:
		r.Reason = ReasonNoBinding
		return r, nil
	case stranger:
		r.Target = h["a"]
	case h["allow"] != "1":
		r.Reason = ReasonDirection
		return r, nil
	case h["peer"] == "":
		r.Reason = ReasonNoLastCaller
		return r, nil
	default:
		r.Target = h["peer"]
	}
	r.Action = Connect
	r.CallerID = x
	if h["show"] == "1" {
		r.CallerID = caller
	}
	r.Record = h["rec"] == "1"
	maxS, _ := strconv.Atoi(h["max"])
	ringS, _ := strconv.Atoi(h["ring"])
	r.MaxDuration = time.Duration(maxS) * time.Second
	r.RingTimeout = time.Duration(ringS) * time.Second
	return r, nil
}
