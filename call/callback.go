package call

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/privnum/privnum/ari"
	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/e164"
)

// CallbackState is where a callback is.
type CallbackState string

// Callback states, in order; a callback ends completed or failed.
const (
	CallbackRequested     CallbackState = "requested"
	CallbackCallingFirst  CallbackState = "calling-first"
	CallbackCallingSecond CallbackState = "calling-second"
	CallbackBridged       CallbackState = "bridged"
	CallbackCompleted     CallbackState = "completed"
	CallbackFailed        CallbackState = "failed"
)

// ErrDraining means the App is shutting down and takes no new calls.
var ErrDraining = errors.New("call control is draining")

// callbackTag and flashTag mark privnum's callback first legs and
// verification flash calls in their StasisStart args.
const (
	callbackTag = "privnum-cb"
	flashTag    = "privnum-flash"
)

// CallbackRequest asks call control to call two parties and bridge them,
// each seeing only the virtual number.
type CallbackRequest struct {
	// ID names the callback; empty means a random one.
	ID string
	// First is called first; Second is called once First answered.
	First, Second string
	// X is the virtual number both parties see.
	X string
	// BindingID goes into the call record.
	BindingID string
	// RingTimeout bounds each leg's ringing; 0 means the App's default.
	RingTimeout time.Duration
	// MaxDuration ends the bridged call after this long; 0 means no limit.
	MaxDuration time.Duration
	// Record records the bridged call.
	Record bool
	// Report receives the state changes from calling-first to completed or
	// failed (with a reason such as "first_busy" or "second_no_answer"). It
	// is called from the App's goroutines and must not block.
	Report func(state CallbackState, reason string)
}

// Callback calls the first party; when it answers it hears a short prompt
// while the second party is called; when the second answers both are
// bridged. It returns once the first leg is being dialed; the outcome
// arrives through Report.
func (a *App) Callback(ctx context.Context, r CallbackRequest) error {
	if r.ID == "" {
		r.ID = newID()
	}
	if r.Report == nil {
		r.Report = func(CallbackState, string) {}
	}
	c := &call{
		id: r.ID, callback: true, report: r.Report, phase: dialingFirst, start: time.Now(),
		x: r.X, caller: r.First, callee: r.Second,
		route: binding.Route{Action: binding.Connect, Target: r.Second, X: r.X, BindingID: r.BindingID,
			RingTimeout: r.RingTimeout, MaxDuration: r.MaxDuration, Record: r.Record},
	}
	c.inbound = "privnum-" + c.id + "-a"
	a.mu.Lock()
	if a.draining {
		a.mu.Unlock()
		return ErrDraining
	}
	if _, dup := a.calls[c.id]; dup {
		a.mu.Unlock()
		return fmt.Errorf("callback %s is already in progress", c.id)
	}
	a.calls[c.id] = c
	a.byChannel[c.inbound] = c
	a.mu.Unlock()
	a.cfg.Metrics.setLive(a.LiveCalls())
	c.report(CallbackCallingFirst, "")

	ring := r.RingTimeout
	if ring <= 0 {
		ring = a.cfg.RingTimeout
	}
	_, err := a.sw.Originate(ctx, ari.OriginateRequest{
		Endpoint:  expand(a.cfg.EndpointTemplate, r.First),
		ChannelID: c.inbound,
		CallerID:  expand(a.cfg.CallerIDTemplate, r.X),
		Timeout:   ring,
		App:       a.cfg.Application,
		AppArgs:   callbackTag + "," + c.id,
	})
	if err != nil {
		a.log.Warn("callback: originate failed", "call", c.id, "first", e164.Mask(r.First), "err", err)
		a.mu.Lock()
		c.reason = "first_failed"
		a.mu.Unlock()
		a.legGone(c, c.inbound, 34)
		return fmt.Errorf("callback %s: calling the first party: %w", c.id, err)
	}
	return nil
}

// firstAnswered continues a callback once its first party answered.
func (a *App) firstAnswered(channelID string) {
	a.mu.Lock()
	c := a.byChannel[channelID]
	if c == nil || c.phase != dialingFirst {
		a.mu.Unlock()
		if c == nil {
			a.goTrack(func() { a.hangup(channelID, "normal") })
		}
		return
	}
	c.phase = routing
	a.mu.Unlock()
	a.goTrack(func() {
		if _, err := a.sw.Play(a.ctx, c.inbound, c.id+"-prompt", a.cfg.Announcements.Connecting, "tone:ring"); err != nil && !errors.Is(err, ari.ErrNotFound) {
			a.log.Warn("callback: prompt failed", "call", c.id, "err", err)
		}
		c.report(CallbackCallingSecond, "")
		a.dialSecond(c, c.route)
	})
}

// Flash rings number from callerID and hangs up as soon as it rings (or
// after the FlashTimeout); the call is never answered by privnum, and if
// the phone answers it is ended at once. It returns once the call is
// placed.
func (a *App) Flash(ctx context.Context, number, callerID string) error {
	id := "privnum-flash-" + newID()
	a.mu.Lock()
	if a.draining {
		a.mu.Unlock()
		return ErrDraining
	}
	a.flashes[id] = time.AfterFunc(a.cfg.FlashTimeout, func() { a.hangup(id, "normal") })
	a.mu.Unlock()
	_, err := a.sw.Originate(ctx, ari.OriginateRequest{
		Endpoint:  expand(a.cfg.EndpointTemplate, number),
		ChannelID: id,
		CallerID:  expand(a.cfg.CallerIDTemplate, callerID),
		Timeout:   a.cfg.FlashTimeout,
		App:       a.cfg.Application,
		AppArgs:   flashTag,
	})
	if err != nil {
		a.endFlash(id)
		return fmt.Errorf("flash call to %s: %w", e164.Mask(number), err)
	}
	return nil
}

// flashEvent handles an event on a flash call; it reports whether the
// channel is one.
func (a *App) flashEvent(ev ari.Event) bool {
	var id string
	var hangup bool
	switch e := ev.(type) {
	case *ari.ChannelStateChange:
		id, hangup = e.Channel.ID, e.Channel.State == "Ringing" || e.Channel.State == "Up"
	case *ari.Dial:
		id, hangup = e.Peer.ID, e.DialStatus == "RINGING" || e.DialStatus == "ANSWER"
	case *ari.ChannelDestroyed:
		id = e.Channel.ID
		a.mu.Lock()
		_, ok := a.flashes[id]
		a.mu.Unlock()
		if ok {
			a.endFlash(id)
		}
		return ok
	default:
		return false
	}
	a.mu.Lock()
	_, ok := a.flashes[id]
	a.mu.Unlock()
	if ok && hangup {
		a.goTrack(func() { a.hangup(id, "normal") })
	}
	return ok
}

func (a *App) endFlash(id string) {
	a.mu.Lock()
	if t := a.flashes[id]; t != nil {
		t.Stop()
	}
	delete(a.flashes, id)
	a.mu.Unlock()
}
