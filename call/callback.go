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
	// failed (with a reason such as "first_busy" or "second_no_answer"),
	// one at a time and in the order the call went through them. It must
	// not block: the call waits for it.
	Report func(state CallbackState, reason string)
}

// Callback calls the first party; when it answers it hears a short prompt
// while the second party is called; when the second answers both are
// bridged. It returns once the first leg is being dialed (or could not
// be); the outcome arrives through Report.
func (a *App) Callback(ctx context.Context, r CallbackRequest) error {
	if r.ID == "" {
		r.ID = newID()
	}
	if r.Report == nil {
		r.Report = func(CallbackState, string) {}
	}
	c := a.newCall(r.ID)
	c.callback, c.report, c.phase = true, r.Report, dialingFirst
	c.x, c.caller, c.callee = r.X, r.First, r.Second
	c.route = binding.Route{Action: binding.Connect, Target: r.Second, X: r.X, BindingID: r.BindingID,
		RingTimeout: r.RingTimeout, MaxDuration: r.MaxDuration, Record: r.Record}
	c.inbound = c.legID("a")
	if err := a.register(c, c.inbound); err != nil {
		c.cancel()
		if errors.Is(err, errDuplicate) {
			return fmt.Errorf("callback %s is already in progress", c.id)
		}
		return err
	}

	ring := r.RingTimeout
	if ring <= 0 {
		ring = a.cfg.RingTimeout
	}
	req := ari.OriginateRequest{
		Endpoint:  expand(a.cfg.EndpointTemplate, r.First),
		ChannelID: c.inbound,
		CallerID:  expand(a.cfg.CallerIDTemplate, r.X),
		Timeout:   ring,
		App:       a.cfg.Application,
		AppArgs:   callbackTag + "," + c.id,
	}
	result := make(chan error, 1)
	c.do(func() {
		c.report(CallbackCallingFirst, "")
		c.async(func(ctx context.Context) error {
			_, err := a.sw.Originate(ctx, req)
			return err
		}, func(err error) {
			if errors.Is(err, context.Canceled) && c.phase == ending {
				// The callback ended (the first party was busy, say) before
				// the answer to the request came: it was placed, and its
				// outcome is reported.
				err = nil
			}
			result <- err
			c.firstOriginated(err)
		})
	})
	select {
	case err := <-result:
		if err != nil {
			return fmt.Errorf("callback %s: calling the first party: %w", c.id, err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-a.ctx.Done():
		return ErrDraining // closed
	}
}

// firstOriginated continues once Asterisk answered the request to call a
// callback's first party.
func (c *call) firstOriginated(err error) {
	if c.inGone {
		return
	}
	if err != nil {
		c.a.log.Warn("callback: originate failed", "call", c.id, "first", e164.Mask(c.caller), "err", err)
		if c.phase != ending {
			c.reason = "first_failed"
		}
		c.legGone(c.inbound, ari.CauseCongestion)
		return
	}
	if c.phase == ending {
		c.hangupLeg(c.inbound, "normal")
	}
}

// firstAnswered continues a callback once its first party answered: the
// prompt, then the second party.
func (c *call) firstAnswered() {
	if c.phase != dialingFirst {
		return
	}
	c.phase = routing
	in, pb, media := c.inbound, c.playbackID("prompt"), c.a.cfg.Announcements.Connecting
	c.async(func(ctx context.Context) error {
		_, err := c.a.sw.Play(ctx, in, pb, media, "tone:ring")
		return err
	}, func(err error) {
		if err != nil && !gone(err) {
			c.a.log.Warn("callback: prompt failed", "call", c.id, "err", err)
		}
		if c.phase != routing {
			return // the first party hung up meanwhile
		}
		c.report(CallbackCallingSecond, "")
		c.dialSecond(c.route)
	})
}

// Flash rings number from callerID and hangs up as soon as it rings (or
// after the FlashTimeout); the call is never answered by privnum, and if
// the phone answers it is ended at once. It returns once the call is
// placed.
func (a *App) Flash(ctx context.Context, number, callerID string) error {
	id := "privnum-flash-" + newID()
	a.mu.Lock()
	if a.draining || a.closed {
		a.mu.Unlock()
		return ErrDraining
	}
	a.flashes[id] = time.AfterFunc(a.cfg.FlashTimeout, func() { a.spawn(func() { a.hangup(id, "normal") }) })
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
		a.spawn(func() { a.hangup(id, "normal") })
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
