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
	Connect Action = "connect"
	Reject  Action = "reject"
)

// Reasons a call is rejected.
const (
	// ReasonNoBinding: the caller holds no binding on the dialed number.
	ReasonNoBinding = "no_binding"
	// ReasonExpired: the caller's binding was released or expired and is in quarantine.
	ReasonExpired = "expired"
	// ReasonDirection: the binding does not allow this caller to call.
	ReasonDirection = "direction_not_allowed"
)

// Route is the answer to "caller dialed X: what happens?".
type Route struct {
	Action    Action `json:"action"`
	Reason    string `json:"reason,omitempty"`
	Target    string `json:"target,omitempty"`
	BindingID string `json:"binding_id,omitempty"`
	X         string `json:"x"`
	Caller    string `json:"caller"`
	// Record, MaxDuration and RingTimeout are the binding's call options.
	Record      bool          `json:"record,omitempty"`
	MaxDuration time.Duration `json:"-"`
	RingTimeout time.Duration `json:"-"`
}

// Resolve says where a call from caller to virtual number x goes. It reads
// one Redis key. Unparsable numbers are an error wrapping e164.ErrInvalid.
func (s *Service) Resolve(ctx context.Context, x, caller string) (Route, error) {
	var err error
	if x, err = s.parser.Parse(x); err != nil {
		return Route{}, fmt.Errorf("dialed number: %w", err)
	}
	if caller, err = s.parser.Parse(caller); err != nil {
		return Route{}, fmt.Errorf("caller: %w", err)
	}
	h, err := s.rdb.HGetAll(ctx, store.RouteKey(x, caller)).Result()
	if err != nil {
		return Route{}, fmt.Errorf("resolve %s: %w", x, err)
	}
	r := Route{Action: Reject, X: x, Caller: caller}
	if len(h) == 0 {
		r.Reason = ReasonNoBinding
		return r, nil
	}
	r.BindingID = h["id"]
	exp, _ := strconv.ParseInt(h["exp"], 10, 64)
	switch {
	case h["rel"] == "1" || exp <= time.Now().UnixMilli():
		r.Reason = ReasonExpired
	case h["allow"] != "1":
		r.Reason = ReasonDirection
	default:
		r.Action = Connect
		r.Target = h["peer"]
		r.Record = h["rec"] == "1"
		maxS, _ := strconv.Atoi(h["max"])
		ringS, _ := strconv.Atoi(h["ring"])
		r.MaxDuration = time.Duration(maxS) * time.Second
		r.RingTimeout = time.Duration(ringS) * time.Second
	}
	return r, nil
}
