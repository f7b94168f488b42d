package call

import (
	"context"
	"time"

	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/e164"
)

// Call event types, as webhooks carry them.
const (
	// EventRinging: the hidden party's phone is ringing.
	EventRinging = "call.ringing"
	// EventAnswered: the hidden party answered and the two are bridged.
	EventAnswered = "call.answered"
)

// CallEvent is a step of a call, with its parties masked.
type CallEvent struct {
	Type      string `json:"-"`
	CallID    string `json:"call_id"`
	BindingID string `json:"binding_id,omitempty"`
	// Mode is the binding's mode ("axb", "axn", "axg", "axe"), or "callback" for
	// a call privnum placed to both parties.
	Mode string `json:"mode"`
	// Extension is the AXE extension dialed (axe calls only).
	Extension string    `json:"extension,omitempty"`
	X         string    `json:"x"`
	Caller    string    `json:"caller"`
	Callee    string    `json:"callee"`
	At        time.Time `json:"at"`
}

// Events receives call events, one at a time and in the order the calls
// went through them. It may take its time: calls do not wait for it.
type Events interface {
	CallEvent(ctx context.Context, e CallEvent)
}

// emit sends a call event of c through the App's ordered event queue.
func (c *call) emit(typ string) {
	if c.a.cfg.Events == nil {
		return
	}
	mode := string(c.route.Mode)
	if mode == "" {
		mode = string(binding.AXB)
	}
	if c.callback {
		mode = "callback"
	}
	e := CallEvent{Type: typ, CallID: c.id, BindingID: c.route.BindingID, Mode: mode, Extension: c.route.Extension, X: c.x,
		Caller: e164.Mask(c.caller), Callee: e164.Mask(c.callee), At: time.Now().UTC()}
	a := c.a
	a.events.do(func() { a.cfg.Events.CallEvent(a.ctx, e) })
}

// calleeRinging notes that the hidden leg rings, once.
func (c *call) calleeRinging(id string) {
	if id != c.outbound || c.phase != ringing || c.rang {
		return
	}
	c.rang = true
	c.emit(EventRinging)
}

// ringingState tells whether a channel state or Dial status means ringing.
func ringingState(s string) bool { return s == "Ringing" || s == "RINGING" }
