package arisim

import (
	"fmt"
	"path"
	"strings"
	"time"
)

// Outcome is how a dialed far party ends the ringing phase.
type Outcome int

const (
	// OutcomeAnswer: the far party answers (200 OK).
	OutcomeAnswer Outcome = iota
	// OutcomeBusy: the far party rejects with 486 (cause 17 "User busy").
	OutcomeBusy
	// OutcomeNoAnswer: the far party rings until the dial timeout, the app or
	// the test (AnswerFromPeer, HangupFromPeer) ends it.
	OutcomeNoAnswer
	// OutcomeFail: the far party or the network rejects the call with
	// Behavior.Cause (default 34, a 503).
	OutcomeFail
	// OutcomeAllocFail: the channel cannot even be created: originate and
	// create answer 500 {"error":"Allocation failed"}.
	OutcomeAllocFail
)

// String returns the outcome's name as used by the control endpoint.
func (o Outcome) String() string {
	switch o {
	case OutcomeAnswer:
		return "answer"
	case OutcomeBusy:
		return "busy"
	case OutcomeNoAnswer:
		return "noanswer"
	case OutcomeFail:
		return "fail"
	case OutcomeAllocFail:
		return "allocfail"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// ParseOutcome parses the names String returns.
func ParseOutcome(s string) (Outcome, error) {
	for o := OutcomeAnswer; o <= OutcomeAllocFail; o++ {
		if strings.EqualFold(s, o.String()) {
			return o, nil
		}
	}
	return 0, fmt.Errorf("arisim: unknown outcome %q", s)
}

// Behavior scripts the far party of an outbound leg. All durations are scaled
// by Options.TimeScale.
type Behavior struct {
	// Outcome is what ends the ringing phase.
	Outcome Outcome
	// RingAfter is the delay between the INVITE and the 180 Ringing.
	RingAfter time.Duration
	// After is how long the far party rings before the outcome (counted from
	// the 180, or from the INVITE when NoRinging is set).
	After time.Duration
	// NoRinging skips the 180: the outcome comes straight after the INVITE
	// (an immediate 486 as in the originate-busy trace).
	NoRinging bool
	// Cause is the hangup cause of OutcomeFail (default 34).
	Cause int
	// HangupAfter, when positive, makes the far party hang up (BYE, cause
	// 16) this long after answering.
	HangupAfter time.Duration
}

// Answer returns a behavior that rings, then answers after the given time.
func Answer(after time.Duration) Behavior {
	return Behavior{Outcome: OutcomeAnswer, After: after}
}

// Busy returns a behavior that rejects the INVITE at once with 486, without
// ringing, as the carrier in the originate-busy trace does.
func Busy() Behavior {
	return Behavior{Outcome: OutcomeBusy, NoRinging: true}
}

// RingThenBusy returns a behavior that rings for the given time, then
// answers 486.
func RingThenBusy(after time.Duration) Behavior {
	return Behavior{Outcome: OutcomeBusy, After: after}
}

// NoAnswer returns a behavior that rings until something else ends the leg.
func NoAnswer() Behavior {
	return Behavior{Outcome: OutcomeNoAnswer}
}

// Fail returns a behavior that rejects the INVITE at once with the SIP
// response matching cause (34 → 503, 1 → 404, 21 → 603, 38 → 500 ...).
func Fail(cause int) Behavior {
	return Behavior{Outcome: OutcomeFail, Cause: cause, NoRinging: true}
}

// AllocationFailure returns a behavior under which the channel cannot be
// created at all (500 Allocation failed).
func AllocationFailure() Behavior {
	return Behavior{Outcome: OutcomeAllocFail}
}

func (b Behavior) failCause() int {
	switch b.Outcome {
	case OutcomeBusy:
		return CauseBusy
	case OutcomeFail:
		if b.Cause > 0 {
			return b.Cause
		}
		return CauseCongestion
	}
	return 0
}

// endpointRule is one SetEndpoint entry.
type endpointRule struct {
	pattern  string
	behavior Behavior
}

// matches reports whether the rule applies to a dialed number / endpoint.
// A pattern matches when it equals the dialed number or the full endpoint, or
// when it is a path.Match glob matching either.
func (r endpointRule) matches(number, endpoint string) bool {
	if r.pattern == number || r.pattern == endpoint {
		return true
	}
	if ok, _ := path.Match(r.pattern, number); ok {
		return true
	}
	ok, _ := path.Match(r.pattern, endpoint)
	return ok
}

// dialTarget is a parsed ARI endpoint ("PJSIP/13900000002@carrier").
type dialTarget struct {
	endpoint string // as given
	tech     string // canonical technology name
	resource string // what follows the slash: the Dial event's dialstring
	number   string // the dialed number
	trunk    string // PJSIP/SIP endpoint the call goes out through
	context  string // dialplan context of the new channel
	prefix   string // channel name before the sequence number
	suffix   string // channel name after the sequence number
}

// splitEndpoint splits "TECH/resource"; ok is false when either part is empty.
func splitEndpoint(endpoint string) (tech, resource string, ok bool) {
	tech, resource, found := strings.Cut(endpoint, "/")
	if !found || tech == "" || resource == "" {
		return "", "", false
	}
	return tech, resource, true
}

// resolveTarget resolves an endpoint against the known technologies and
// trunks; ok is false where Asterisk could not allocate the channel.
func (s *Sim) resolveTarget(endpoint string) (dialTarget, bool) {
	tech, resource, ok := splitEndpoint(endpoint)
	if !ok {
		return dialTarget{}, false
	}
	t := dialTarget{endpoint: endpoint, resource: resource}
	switch strings.ToUpper(tech) {
	case "PJSIP", "SIP":
		t.tech = strings.ToUpper(tech)
		number, trunk, found := strings.Cut(resource, "@")
		if !found {
			trunk, number = resource, resource
		}
		ctx, known := s.trunks[trunk]
		if !known || number == "" {
			return dialTarget{}, false
		}
		t.number, t.trunk, t.context = number, trunk, ctx
		t.prefix = t.tech + "/" + trunk + "-"
	case "LOCAL":
		t.tech = "Local"
		base, _, _ := strings.Cut(resource, "/") // drop Local options (/n)
		number, ctx, found := strings.Cut(base, "@")
		if !found {
			ctx = "default"
		}
		if number == "" {
			return dialTarget{}, false
		}
		t.number, t.context = number, ctx
		t.prefix, t.suffix = "Local/"+base+"-", ";1"
	case "TEST":
		t.tech = "Test"
		t.number, t.context = resource, "default"
		t.prefix = "Test/" + resource + "-"
	default:
		return dialTarget{}, false
	}
	return t, true
}

// behaviorFor returns the behavior scripted for a target (last matching
// SetEndpoint wins), or the default.
func (s *Sim) behaviorFor(t dialTarget) Behavior {
	for i := len(s.rules) - 1; i >= 0; i-- {
		if s.rules[i].matches(t.number, t.endpoint) {
			return s.rules[i].behavior
		}
	}
	return s.defaultBehavior
}

// SetEndpoint scripts the far party for outbound calls whose dialed number
// or endpoint matches pattern: an exact number ("13900000002"), an exact
// endpoint ("PJSIP/13900000002@carrier") or a path.Match glob of either
// ("139*", "PJSIP/*@carrier"). The most recently set matching rule wins.
// A leg takes its behavior when it is created (originate, create).
func (s *Sim) SetEndpoint(pattern string, b Behavior) {
	s.mu.Lock()
	defer s.unlockNotify()
	for i, r := range s.rules {
		if r.pattern == pattern {
			s.rules = append(s.rules[:i], s.rules[i+1:]...)
			break
		}
	}
	s.rules = append(s.rules, endpointRule{pattern: pattern, behavior: b})
}

// SetDefaultBehavior sets the behavior of endpoints no SetEndpoint matches.
func (s *Sim) SetDefaultBehavior(b Behavior) {
	s.mu.Lock()
	defer s.unlockNotify()
	s.defaultBehavior = b
}

// AddTrunk makes a PJSIP endpoint known (dialable as PJSIP/NUMBER@name and
// usable as an inbound trunk); context is the dialplan context of its
// channels ("from-" + name when empty).
func (s *Sim) AddTrunk(name, context string) {
	if context == "" {
		context = "from-" + name
	}
	s.mu.Lock()
	defer s.unlockNotify()
	s.trunks[name] = context
}
