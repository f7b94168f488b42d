// Package webhook tells an operator's systems what happened: binding and
// call events are POSTed as JSON to registered URLs, signed with a
// per-webhook secret, retried with exponential backoff, and queued in Redis
// so that they survive a restart.
//
// Delivery is at least once: a receiver may see an event twice (the same
// event id) and should deduplicate on it. Every request carries
//
//	Privnum-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
//	Privnum-Event: <event type>
//	Privnum-Delivery: <delivery id, the same on every attempt>
//	Privnum-Attempt: <1, 2, ...>
//
// and a receiver checks it with Verify.
//
// Event payloads carry no real phone numbers: the parties of a binding are
// masked (e164.Mask) as they are in call records. A receiver that needs
// them fetches the binding from the API.
//
// Redis layout (one hash tag):
//
//	pn:{webhooks}:hooks     set of webhook ids
//	pn:{webhooks}:h:<id>    hash: url, events, secret, created
//	pn:{webhooks}:due       sorted set of pending deliveries scored by when they are due (ms)
//	pn:{webhooks}:dead      list of deliveries that ran out of attempts (newest first, capped)
package webhook

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/cdr"
	"github.com/privnum/privnum/e164"
)

// Sentinel errors callers branch on.
var (
	// ErrNotFound means no webhook has that id.
	ErrNotFound = errors.New("webhook not found")
	// ErrInvalid means a webhook's URL or event list is malformed.
	ErrInvalid = errors.New("invalid webhook")
	// ErrInvalidSignature means a delivery's signature header is missing,
	// malformed or does not match the body.
	ErrInvalidSignature = errors.New("invalid webhook signature")
	// ErrStaleSignature means a delivery's signature timestamp is outside
	// the tolerance (a replay, or a clock far off).
	ErrStaleSignature = errors.New("webhook signature timestamp outside tolerance")
)

// Event types.
const (
	// BindingCreated: a binding was created (directly or by opening an order).
	BindingCreated = "binding.created"
	// BindingExtended: a binding's expiry was pushed back.
	BindingExtended = "binding.extended"
	// BindingReleased: a binding was released (directly or by closing an order).
	BindingReleased = "binding.released"
	// CallCompleted: a call on a virtual number ended; data is its call record.
	CallCompleted = "call.completed"
	// CallbackUpdated: a callback changed state; data is the callback with
	// its parties masked.
	CallbackUpdated = "callback.updated"
	// CallRinging: the hidden party of a call is ringing; data has the call
	// id, binding id, mode and masked numbers.
	CallRinging = "call.ringing"
	// CallAnswered: the hidden party answered and the call is bridged; data
	// as CallRinging.
	CallAnswered = "call.answered"
	// MessageRelayed: a text message through a virtual number was passed on
	// to the other party; data is its record (masked numbers, length, never
	// the body).
	MessageRelayed = "message.relayed"
	// AllEvents subscribes a webhook to every event type, present and future.
	AllEvents = "*"
)

// EventTypes lists every event type a webhook can subscribe to.
var EventTypes = []string{BindingCreated, BindingExtended, BindingReleased, CallRinging, CallAnswered, CallCompleted, CallbackUpdated, MessageRelayed}

// Event is one thing that happened, as delivered to webhooks.
type Event struct {
	// ID is unique per event and the same on every delivery attempt.
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	CreatedAt time.Time       `json:"created_at"`
	Data      json.RawMessage `json:"data"`
}

func randomID(prefix string, n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// NewEvent returns an event of type typ carrying data as JSON.
func NewEvent(typ string, data any) (Event, error) {
	if !slices.Contains(EventTypes, typ) {
		return Event{}, fmt.Errorf("%w: event type %q", ErrInvalid, typ)
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return Event{}, fmt.Errorf("encode %s event: %w", typ, err)
	}
	return Event{ID: randomID("evt_", 12), Type: typ, CreatedAt: time.Now().UTC(), Data: raw}, nil
}

// BindingEvent returns a binding event (BindingCreated, BindingExtended or
// BindingReleased) for b, with the parties' numbers masked.
func BindingEvent(typ string, b binding.Binding) (Event, error) {
	b.A, b.B = e164.Mask(b.A), e164.Mask(b.B)
	return NewEvent(typ, b)
}

// CallEvent returns the event for a call record (whose parties are already
// masked): CallCompleted for a call, MessageRelayed for a relayed text
// message. A text message that was not relayed has no event (ok false).
func CallEvent(r cdr.Record) (ev Event, ok bool, err error) {
	typ := CallCompleted
	if r.Kind == messageKind {
		if r.Disposition != cdr.Relayed {
			return Event{}, false, nil
		}
		typ = MessageRelayed
	}
	ev, err = NewEvent(typ, r)
	return ev, err == nil, err
}

// messageKind is the record kind of text messages (call.MessageKind).
const messageKind = "sms"
