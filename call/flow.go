package call

import (
	"context"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/privnum/privnum/ari"
	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/cdr"
	"github.com/privnum/privnum/e164"
)

// phase is where a call is.
type phase int

const (
	dialingFirst phase = iota // a callback's first party is being dialed
	routing                   // resolving the binding
	collecting                // AXE: the caller keys the extension (ivr.go)
	rejecting                 // playing an announcement before hanging up
	ringing                   // the hidden leg is being dialed
	answering                 // the hidden leg answered; bridging
	bridged                   // both parties talk
	ending                    // one leg is gone; tearing down
)

// call is one call: the inbound leg (a callback's first leg) and the hidden
// leg. Its fields belong to its owner, q: only functions run through c.do
// read or change them.
type call struct {
	a *App
	q serial
	// ctx is the call's lifetime: every request made for the call uses it,
	// and it is cancelled as soon as the call starts tearing down, so a
	// hang-up cancels an originate or a playback still in flight.
	ctx    context.Context
	cancel context.CancelFunc

	id        string
	inbound   string
	outbound  string
	bridge    string
	x, caller string // E.164; masked before they leave the process
	callee    string
	route     binding.Route
	phase     phase
	// ivr is the extension entry of an AXE call (nil for others): the
	// caller was answered before the hidden leg is dialed, so ringback is
	// a tone (ringState), and a bridge waits for its play request
	// (bridgeWaiting).
	ivr           *ivr
	ringState     ringState
	bridgeWaiting bool

	start, answer time.Time
	inGone        bool
	outGone       bool
	rang          bool      // the hidden leg was reported ringing
	cause         ari.Cause // hang-up cause of the first leg to end
	hangupBy      string    // caller, callee or system
	disposition   cdr.Disposition
	reason        string
	recording     string
	maxTimer      *time.Timer
	guardTimer    *time.Timer
	// prepared: the caller's leg was made to ring and its identity hidden
	// (prepareCaller); prepTimer does it if Asterisk does not report the
	// hidden leg dialing in time.
	prepared  bool
	prepTimer *time.Timer
	// prepDone: prepareCaller's requests are back; until then an answered
	// callee waits (prepWaiting) so the legs meet only with the caller's
	// identity hidden.
	prepDone, prepWaiting bool

	// here: the owner is the goroutine that delivered the call's
	// StasisStart (App.routeHere), which must not wait: the originate
	// request is sent without waiting for its answer.
	here bool

	// callback marks a call privnum placed to both parties; report
	// receives its state changes, in order, from the owner.
	callback bool
	report   func(state CallbackState, reason string)
}

// newCall returns a call with its owner and lifetime context.
func (a *App) newCall(id string) *call {
	ctx, cancel := context.WithCancel(a.ctx)
	c := &call{a: a, id: id, ctx: ctx, cancel: cancel, start: time.Now()}
	c.q.a = a
	return c
}

// do hands f to the call's owner.
func (c *call) do(f func()) { c.q.do(f) }

// async runs req in a goroutine of its own with the call's lifetime context
// and hands its error to then, on the owner.
func (c *call) async(req func(ctx context.Context) error, then func(error)) {
	c.a.spawn(func() {
		err := req(c.ctx)
		if then != nil {
			c.do(func() { then(err) })
		}
	})
}

// tail runs req like async, but on the goroutine of the owner calling it,
// which hands the owner role over first (see serial.handOff): the request
// goes out without waiting for another goroutine to start, and the owner
// stays free to take events (a hang-up cancels the request through the
// call's context). It must be the last thing the owner's function does:
// the call's fields are not the caller's any more once it is called.
func (c *call) tail(req func(ctx context.Context) error, then func(error)) {
	c.q.handOff()
	err := req(c.ctx)
	if then != nil {
		c.do(func() { then(err) })
	}
}

func (c *call) stopTimers() {
	if c.prepTimer != nil {
		c.prepTimer.Stop()
	}
	if c.maxTimer != nil {
		c.maxTimer.Stop()
	}
	if c.guardTimer != nil {
		c.guardTimer.Stop()
	}
	if c.ivr != nil && c.ivr.timer != nil {
		c.ivr.timer.Stop()
	}
}

// after runs f on the owner in d; the timer is returned for stopping.
func (c *call) after(d time.Duration, f func()) *time.Timer {
	return time.AfterFunc(d, func() { c.do(f) })
}

// legsGone reports whether every leg of the call has left.
func (c *call) legsGone() bool {
	return c.inGone && (c.outbound == "" || c.outGone)
}

// gone tells whether a REST error means the channel, bridge or playback is
// no longer there, or the request was cancelled because the call ended.
func gone(err error) bool {
	return errors.Is(err, ari.ErrNotFound) || errors.Is(err, context.Canceled)
}

// Connected resynchronises with Asterisk after each (re)connection: legs
// that ended while no connection was up are torn down, bridged calls left
// by an earlier run are taken up again, and channels nobody owns are ended.
func (a *App) Connected(ctx context.Context) {
	a.cfg.Metrics.connected()
	a.filterEvents(ctx)
	a.subscribeTrunks(ctx)
	app, err := a.sw.Application(ctx, a.cfg.Application)
	if err != nil {
		a.log.Error("resync after connect", "err", err)
		return
	}
	present := map[string]bool{}
	for _, id := range app.ChannelIDs {
		present[id] = true
	}
	for _, c := range a.liveCalls() {
		c.do(func() { c.resync(present) })
	}
	for _, b := range app.BridgeIDs {
		if a.lookup(b) == nil && strings.HasPrefix(b, bridgePrefix) {
			a.adopt(ctx, b, present)
		}
	}
	// Channels still unknown are orphans of an earlier run, or new calls
	// whose StasisStart is queued behind this resync: give those a moment.
	var orphans []string
	for id := range present {
		if a.lookup(id) == nil {
			orphans = append(orphans, id)
		}
	}
	if len(orphans) == 0 {
		return
	}
	time.AfterFunc(orphanGrace, func() {
		a.spawn(func() {
			for _, id := range orphans {
				if a.lookup(id) == nil {
					a.log.Info("ending channel left without call state", "channel", id)
					a.hangup(id, "normal")
				}
			}
		})
	})
}

// orphanGrace is how long a channel found in the app after a reconnect may
// stay unclaimed before it is ended.
const orphanGrace = 2 * time.Second

// resync ends the legs that left the application while no connection was
// up. A ringing leg joins the app only when it answers: a callback's first
// leg while it rings, the hidden leg until it answers.
func (c *call) resync(present map[string]bool) {
	inLost := !c.inGone && c.phase != dialingFirst && !present[c.inbound]
	outLost := c.outbound != "" && !c.outGone && c.phase >= answering && c.phase != ending && !present[c.outbound]
	if inLost {
		c.legGone(c.inbound, ari.CauseUnknown)
	}
	if outLost {
		c.legGone(c.outbound, ari.CauseUnknown)
	}
}

// HandleEvent hands each event to the owner of the call it concerns. It
// does no I/O itself but for one write that does not wait: the originate
// request of a call routed from memory (routeHere).
func (a *App) HandleEvent(ev ari.Event) {
	if a.flashEvent(ev) {
		return
	}
	switch e := ev.(type) {
	case *ari.StasisStart:
		a.stasisStart(e)
	case *ari.StasisEnd:
		id := e.Channel.ID
		a.toCall(id, func(c *call) { c.legGone(id, ari.CauseUnknown) })
	case *ari.ChannelDestroyed:
		id, cause := e.Channel.ID, e.Cause
		a.toCall(id, func(c *call) { c.legGone(id, cause) })
	case *ari.ChannelHangupRequest:
		if cause := e.Cause; cause > 0 {
			a.toCall(e.Channel.ID, func(c *call) {
				if c.cause == 0 && c.phase != ending {
					c.cause = cause
				}
			})
		}
	case *ari.TextMessageReceived:
		a.spawn(func() { a.relayMessage(e) })
	case *ari.ChannelStateChange:
		if id := e.Channel.ID; ringingState(e.Channel.State) {
			a.toCall(id, func(c *call) {
				if id == c.outbound {
					c.prepareCaller()
				}
				c.calleeRinging(id)
			})
		}
		a.strayLeg(e.Channel.ID)
	case *ari.Dial:
		id := e.Peer.ID
		if st := e.DialStatus; ringingState(st) || st == "PROGRESS" {
			a.toCall(id, func(c *call) {
				if id == c.outbound {
					c.prepareCaller()
				}
				if ringingState(st) {
					c.calleeRinging(id)
				}
			})
		}
		a.strayLeg(e.Peer.ID)
	case *ari.ChannelDtmfReceived:
		d, at := e.Digit, e.Timestamp.Time
		a.toCall(e.Channel.ID, func(c *call) { c.dtmf(d, at) })
	case *ari.PlaybackFinished:
		if id, _, ok := strings.Cut(e.Playback.ID, "-ivr"); ok {
			pb := e.Playback.ID
			a.mu.Lock()
			c := a.calls[id]
			a.mu.Unlock()
			if c != nil {
				c.do(func() { c.promptFinished(pb) })
			}
			return
		}
		id, ok := strings.CutSuffix(e.Playback.ID, "-announce")
		if !ok {
			return
		}
		a.mu.Lock()
		c := a.calls[id]
		a.mu.Unlock()
		if c != nil {
			c.do(func() { c.teardown(endBy{by: "system", cause: ari.CauseNormalClearing}) })
		}
	}
}

// InlineEvents makes the App an ari.InlineHandler: HandleEvent never blocks
// (it takes the registry's lock and queues work), so the event read loop
// may call it itself and a StasisStart reaches its call without a
// goroutine hand-off.
func (a *App) InlineEvents() {}

// strayLeg hangs up a leg privnum originated whose call is gone: an
// originate that reached Asterisk after its call ended (the request was
// cancelled on our side, not on the wire).
func (a *App) strayLeg(id string) {
	if !strings.HasPrefix(id, "privnum-") || !(strings.HasSuffix(id, "-a") || strings.HasSuffix(id, "-b")) {
		return
	}
	if a.lookup(id) != nil {
		return
	}
	a.log.Info("ending a leg whose call is gone", "channel", id)
	a.spawn(func() { a.hangup(id, "normal") })
}

// toCall runs f on the owner of the call that channel id belongs to.
func (a *App) toCall(id string, f func(*call)) {
	if c := a.lookup(id); c != nil {
		c.do(func() { f(c) })
	}
}

func (a *App) stasisStart(e *ari.StasisStart) {
	ch := e.Channel
	if strings.HasPrefix(ch.Name, "Message/") {
		a.messageChannel(ch)
		return
	}
	tag := ""
	if len(e.Args) > 0 {
		tag = e.Args[0]
	}
	switch tag {
	case flashTag:
		a.spawn(func() { a.hangup(ch.ID, "normal") }) // answered: end it at once
		return
	case callbackTag, outboundTag:
		c := a.lookup(ch.ID)
		if c == nil {
			// Our leg, but its call is gone (e.g. restarted while ringing).
			a.spawn(func() { a.hangup(ch.ID, "normal") })
			return
		}
		if tag == callbackTag {
			c.do(c.firstAnswered)
		} else {
			c.do(c.calleeAnswered)
		}
		return
	}
	c := a.newCall(newID())
	c.inbound, c.phase = ch.ID, routing
	c.x, c.caller = ch.Dialplan.Exten, ch.Caller.Number
	if tag != "" {
		c.x = tag // Stasis(privnum,${EXTEN}) names the dialed number
	}
	if err := a.register(c, ch.ID); err != nil {
		c.cancel()
		a.spawn(func() { a.hangup(ch.ID, "congestion") })
		return
	}
	if !a.routeHere(c) {
		c.do(c.routeCall)
	}
}

// routeHere routes the new call c and dials its hidden party on the
// goroutine delivering its StasisStart, as the call's owner, when its
// route is known in memory (CachedRouter) and the switch can send the
// originate request at once (startOriginator): the request then leaves
// without a goroutine hand-off (see ari.StartOriginate for what that
// saves). A route that does not simply connect takes requests that wait:
// routeHere hands it to the call's owner. It reports false, having done
// nothing, when the route is not known in memory or the switch cannot
// send at once.
func (a *App) routeHere(c *call) bool {
	cr, ok := a.router.(CachedRouter)
	if !ok {
		return false
	}
	if _, ok := a.sw.(startOriginator); !ok || !c.q.claim() {
		return false
	}
	r, ok := cr.CachedRoute(c.x, c.caller)
	if !ok {
		c.q.handOff()
		return false
	}
	if r.Action != binding.Connect {
		// A refusal or extension entry makes requests that wait: the
		// owner goes on with the route found (counted once as a hit).
		c.q.handOff()
		c.do(func() { c.routed(r, nil) })
		return true
	}
	c.here = true
	// A new call in phase routing with a Connect route always reaches
	// dialSecond, which hands the call off: c is not ours after this.
	c.routed(r, nil)
	return true
}

// routeCall resolves the call and dials the hidden party or refuses the
// call. A route known in memory (CachedRouter) is used at once: nothing
// but that lookup lies between StasisStart and the originate request.
// Otherwise the route is read with the owner handed over (see tail), so
// that a hang-up meanwhile is taken at once and cancels the read.
func (c *call) routeCall() {
	if c.phase != routing {
		return // the caller hung up before we started
	}
	if cr, ok := c.a.router.(CachedRouter); ok {
		if r, ok := cr.CachedRoute(c.x, c.caller); ok {
			c.routed(r, nil)
			return
		}
	}
	router, x, caller := c.a.router, c.x, c.caller
	var r binding.Route
	c.tail(func(ctx context.Context) error {
		var err error
		r, err = router.Resolve(ctx, x, caller)
		return err
	}, func(err error) { c.routed(r, err) })
}

// routed goes on with the call once its route r (or err) is known.
func (c *call) routed(r binding.Route, err error) {
	switch {
	case c.phase != routing:
		return // the caller hung up meanwhile
	case errors.Is(err, e164.ErrInvalid):
		r = binding.Route{Action: binding.Reject, Reason: binding.ReasonNoBinding}
	case err != nil:
		c.resolveFailed("resolve failed", err)
		return
	}
	switch r.Action {
	case binding.Connect:
		c.dialSecond(r)
	case binding.Collect:
		c.collect(r)
	default:
		c.reject(r)
	}
}

// resolveFailed ends a call whose route could not be read (Redis down,
// say): the caller gets congestion, the record says internal_error.
func (c *call) resolveFailed(what string, err error) {
	c.a.log.Error(what, "call", c.id, "x", c.x, "caller", e164.Mask(c.caller), "err", err)
	c.teardown(endBy{by: "system", disposition: cdr.Failed, reason: "internal_error", cause: ari.CauseCongestion, hangup: "congestion"})
}

// dialSecond dials the hidden party as r says, with the virtual number as
// caller ID. It sends the originate request on the owner's goroutine, which
// it hands over (see tail; without waiting for the answer when the owner
// must not wait, see routeHere): it must be the last thing its caller does.
// The request goes over a connection the switch keeps ready when it has
// one (startOriginator), which spares net/http's goroutine hand-offs.
func (c *call) dialSecond(r binding.Route) {
	c.route, c.callee, c.x = r, r.Target, r.X
	c.outbound = c.legID("b")
	c.phase = ringing
	c.a.index(c, c.outbound)
	ring := r.RingTimeout
	if ring <= 0 {
		ring = c.a.cfg.RingTimeout
	}
	if !c.callback && c.ivr == nil {
		c.a.cfg.Metrics.observeRouting(time.Since(c.start))
	}
	req := ari.OriginateRequest{
		Endpoint:   expand(c.a.cfg.EndpointTemplate, r.Target),
		ChannelID:  c.outbound,
		CallerID:   expand(c.a.cfg.CallerIDTemplate, callerID(r)),
		Timeout:    ring,
		App:        c.a.cfg.Application,
		AppArgs:    outboundTag + "," + c.id,
		Originator: c.inbound,
	}
	sw := c.a.sw
	if c.here {
		c.here = false
		c.startOriginate(req)
		return
	}
	c.tail(func(ctx context.Context) error {
		if so, ok := sw.(startOriginator); ok {
			if wait, ok := so.StartOriginate(ctx, req); ok {
				_, err := wait()
				return err
			}
		}
		_, err := sw.Originate(ctx, req)
		return err
	}, c.originated)
}

// startOriginate sends req without waiting, for an owner that must not
// wait (routeHere), and hands the call off: the answer reaches originated
// on the owner. The request is written at once when the switch can
// (startOriginator), else from a goroutine of its own.
func (c *call) startOriginate(req ari.OriginateRequest) {
	sw := c.a.sw
	if so, ok := sw.(startOriginator); ok {
		if wait, ok := so.StartOriginate(c.ctx, req); ok {
			c.q.handOff()
			waited := c.a.spawn(func() {
				_, err := wait()
				c.do(func() { c.originated(err) })
			})
			if !waited {
				// The App closed meanwhile (its calls' contexts are
				// cancelled): the wait ends at once and frees the
				// connection.
				go wait()
			}
			return
		}
	}
	c.q.handOff()
	c.async(func(ctx context.Context) error {
		_, err := sw.Originate(ctx, req)
		return err
	}, c.originated)
}

// callerID is the number the hidden party is shown: the route's caller ID
// (X, or the caller's own number with a show-caller binding), X when the
// route names none.
func callerID(r binding.Route) string {
	if r.CallerID != "" {
		return r.CallerID
	}
	return r.X
}

// originated continues once Asterisk answered the originate request.
func (c *call) originated(err error) {
	if c.phase == ending {
		// The call ended while we dialed: whatever became of the request,
		// end the leg (a leg that was never created answers not found). A
		// leg Asterisk creates later still is caught by strayLeg.
		if !c.outGone {
			c.hangupLeg(c.outbound, "normal")
		} else if err == nil || errors.Is(err, context.Canceled) {
			id := c.outbound
			c.a.spawn(func() { c.a.hangup(id, "normal") })
		}
		return
	}
	if c.outGone {
		return
	}
	if err != nil {
		c.a.log.Warn("originate failed", "call", c.id, "callee", e164.Mask(c.callee), "err", err)
		c.reason = "originate_failed"
		c.legGone(c.outbound, ari.CauseCongestion)
		return
	}
	if c.callback || c.prepared {
		return
	}
	c.prepTimer = c.after(prepareAfter, c.prepareCaller)
}

// prepareAfter is how long after the originate request the caller's leg is
// prepared (prepareCaller) when the hidden leg has not rung by then: the
// caller hears ringing at the latest then, even from a far end that never
// reports ringing.
const prepareAfter = time.Second

// prepareCaller makes the caller hear ringing, and shows the virtual number
// on the caller's own channel both as connected line and as caller ID, so
// that no identity exchange can carry the real number to the other side.
// It runs when the hidden leg rings (or reports progress), as a dialplan
// Dial() passes ringing back, not as soon as the originate request
// returns: these requests would compete with the switch sending the hidden
// leg's INVITE. The legs are not bridged before the callee answers, so no
// identity can cross before then (calleeAnswered hides it itself when the
// callee answers without ringing first).
func (c *call) prepareCaller() {
	if c.prepared || c.callback || c.phase != ringing {
		return
	}
	c.prepared = true
	if c.prepTimer != nil {
		c.prepTimer.Stop()
	}
	in, x := c.inbound, expand(c.a.cfg.CallerIDTemplate, c.x)
	ring := func(ctx context.Context) error { return c.a.sw.Ring(ctx, in) }
	if c.ivr != nil {
		// Answered for extension entry: ringing the channel would do
		// nothing the caller hears.
		c.ringback()
		ring = func(context.Context) error { return nil }
	}
	c.async(func(ctx context.Context) error {
		if err := ring(ctx); err != nil {
			return err
		}
		return c.hideIdentity(ctx, in, x)
	}, func(err error) {
		if err != nil && !gone(err) {
			c.a.log.Warn("preparing caller leg", "call", c.id, "err", err)
		}
		c.prepDone = true
		if c.prepWaiting {
			c.prepWaiting = false
			c.calleeAnswered()
		}
	})
}

// hideIdentity sets the virtual number x as the connected line and the
// caller ID of the caller's channel.
func (c *call) hideIdentity(ctx context.Context, in, x string) error {
	if err := c.a.sw.SetVar(ctx, in, "CONNECTEDLINE(num)", x); err != nil {
		return err
	}
	return c.a.sw.SetVar(ctx, in, "CALLERID(num)", x)
}

// reject refuses a call: the announcement for its reason (no binding, an
// expired binding, not in an AXG group, no last caller to reply to), or a
// plain refusal for a direction the binding does not allow.
func (c *call) reject(r binding.Route) {
	c.phase, c.disposition, c.reason, c.route = rejecting, cdr.Rejected, r.Reason, r
	if r.X != "" {
		c.x = r.X
	}
	if r.Reason == binding.ReasonDirection {
		c.teardown(endBy{by: "system", cause: ari.CauseCallRejected, hangup: "rejected"})
		return
	}
	media := c.a.cfg.Announcements.NoBinding
	switch r.Reason {
	case binding.ReasonExpired:
		media = c.a.cfg.Announcements.Expired
	case binding.ReasonNotInGroup:
		media = c.a.cfg.Announcements.NotInGroup
	case binding.ReasonNoLastCaller:
		media = c.a.cfg.Announcements.NoLastCaller
	}
	c.announce(cdr.Rejected, r.Reason, mediaList(media))
}

// announce plays media to the caller (answering first) and hangs up when
// it ends: the call ends with disposition d for reason.
func (c *call) announce(d cdr.Disposition, reason string, media []string) {
	c.phase, c.disposition, c.reason = rejecting, d, reason
	c.guardTimer = c.after(60*time.Second, func() { c.teardown(endBy{by: "system", cause: ari.CauseNormalClearing}) })
	in, pb := c.inbound, c.playbackID("announce")
	c.async(func(ctx context.Context) error {
		if err := c.a.sw.Answer(ctx, in); err != nil {
			return err
		}
		_, err := c.a.sw.Play(ctx, in, pb, media...)
		return err
	}, func(err error) {
		if err == nil || gone(err) {
			return
		}
		c.a.log.Warn("call step failed; hanging up", "call", c.id, "err", err)
		c.teardown(endBy{by: "system", cause: ari.CauseNormalClearing})
	})
}

// calleeAnswered bridges both legs once the hidden party answered.
func (c *call) calleeAnswered() {
	if c.phase != ringing {
		return
	}
	if c.ivr != nil && c.ringState == ringRequested {
		// The ringing tone's play request is still out: bridge once it is
		// back (ringback), so that the tone can be stopped first.
		c.bridgeWaiting = true
		return
	}
	if c.prepared && !c.prepDone && !c.callback {
		// The caller's leg is still being prepared: bridge once its
		// identity is hidden.
		c.prepWaiting = true
		return
	}
	c.phase = answering
	c.answer = time.Now()
	c.bridge = c.bridgeID()
	c.a.index(c, c.bridge)
	name := c.bridgeName()
	in, out, bridge := c.inbound, c.outbound, c.bridge
	answer := func(ctx context.Context) error { return c.a.sw.Answer(ctx, in) }
	if !c.prepared && !c.callback {
		// Answered before the callee rang: no ringing, but the caller's
		// identity is hidden before the legs meet.
		c.prepared, c.prepDone = true, true
		if c.prepTimer != nil {
			c.prepTimer.Stop()
		}
		x := expand(c.a.cfg.CallerIDTemplate, c.x)
		answer = func(ctx context.Context) error {
			if err := c.hideIdentity(ctx, in, x); err != nil {
				return err
			}
			return c.a.sw.Answer(ctx, in)
		}
	}
	if c.ivr != nil {
		// The caller was answered for extension entry: the ringing tone
		// stops before the legs meet (answering again does nothing).
		stop, then := c.ringState == ringPlaying, answer
		tone := c.playbackID("ringback")
		c.ringState = ringNone
		answer = func(ctx context.Context) error {
			if stop {
				if err := c.a.sw.StopPlayback(ctx, tone); err != nil && !errors.Is(err, ari.ErrNotFound) {
					return err
				}
			}
			return then(ctx)
		}
	}
	if c.callback {
		// The first party is up and hears the prompt: stop it.
		prompt := c.playbackID("prompt")
		answer = func(ctx context.Context) error {
			if err := c.a.sw.StopPlayback(ctx, prompt); err != nil && !errors.Is(err, ari.ErrNotFound) {
				return err
			}
			return nil
		}
	}
	c.async(func(ctx context.Context) error {
		if err := answer(ctx); err != nil {
			return err
		}
		if _, err := c.a.sw.CreateBridge(ctx, bridge, "mixing", name); err != nil {
			return err
		}
		return c.a.sw.AddChannel(ctx, bridge, ari.AddChannelOptions{InhibitConnectedLineUpdates: true}, in, out)
	}, c.connected)
}

// connected continues once both legs are in the bridge (or bridging
// failed).
func (c *call) connected(err error) {
	if err != nil {
		if gone(err) || errors.Is(err, ari.ErrBadRequest) {
			return // a leg hung up meanwhile: its events end the call
		}
		c.a.log.Warn("bridging failed", "call", c.id, "err", err)
		c.teardown(endBy{by: "system"})
		return
	}
	if c.phase != answering {
		return // a leg left while we bridged
	}
	c.phase = bridged
	c.disposition = cdr.Answered
	if c.route.MaxDuration > 0 {
		c.maxTimer = c.after(c.route.MaxDuration-time.Since(c.answer), func() { c.teardown(endBy{by: "system"}) })
	}
	if c.report != nil {
		c.report(CallbackBridged, "")
	}
	c.emit(EventAnswered)
	if c.route.Record {
		name, bridge := "privnum-"+c.id, c.bridge
		c.async(func(ctx context.Context) error {
			_, err := c.a.sw.RecordBridge(ctx, bridge, ari.RecordRequest{Name: name, Format: c.a.cfg.RecordFormat, IfExists: "overwrite"})
			return err
		}, func(err error) {
			if err != nil {
				if !gone(err) {
					c.a.log.Warn("recording failed to start", "call", c.id, "err", err)
				}
				return
			}
			c.recording = name
		})
	}
}

// endBy says how privnum ends a call: who ended it, and for a call that did
// not connect the disposition, the reason, the cause recorded and the
// reason the caller's leg is hung up with.
type endBy struct {
	by          string
	disposition cdr.Disposition // default: keep what the call has, else failed
	reason      string
	cause       ari.Cause
	hangup      string // ARI hang-up reason for the caller's leg; default "normal"
}

// teardown is the one way privnum ends a call from its side (refusal,
// failure, max duration, drain): it cancels the call's requests in flight
// and hangs up every leg still there; the legs' events finish the call.
func (c *call) teardown(e endBy) {
	if c.phase == ending {
		return
	}
	c.phase = ending
	c.cancel()
	if c.hangupBy == "" {
		c.hangupBy = e.by
	}
	if e.disposition != "" {
		c.disposition = e.disposition
	} else if c.disposition == "" {
		c.disposition = cdr.Failed
	}
	if e.reason != "" {
		c.reason = e.reason
	}
	if e.cause != 0 {
		c.cause = e.cause
	}
	reason := e.hangup
	if reason == "" {
		reason = "normal"
	}
	if !c.inGone {
		c.hangupLeg(c.inbound, reason)
	}
	if c.outbound != "" && !c.outGone {
		c.hangupLeg(c.outbound, "normal")
	}
	if c.bridge != "" {
		c.destroyBridge()
	}
}

// legGone records that a leg ended and tears the call down: the first leg
// to go decides the outcome; the call is finished when both are gone.
func (c *call) legGone(id string, cause ari.Cause) {
	isIn := id == c.inbound
	if !isIn && id != c.outbound {
		return
	}
	if (isIn && c.inGone) || (!isIn && c.outGone) {
		return
	}
	if isIn {
		c.inGone = true
	} else {
		c.outGone = true
	}
	var hangIn, hangOut string
	reason := "normal"
	if c.phase != ending {
		if c.cause == 0 {
			c.cause = cause
		}
		switch {
		case isIn && c.phase == dialingFirst:
			c.disposition, _ = outcome(c.cause)
			c.reason, c.hangupBy = "first_"+string(c.disposition), "caller"
		case isIn && (c.phase == routing || c.phase == collecting || c.phase == ringing):
			c.disposition, c.hangupBy = cdr.Cancelled, "caller"
		case isIn && c.phase == rejecting:
			if c.hangupBy == "" {
				c.hangupBy = "caller"
			}
		case !isIn && c.phase == ringing:
			c.disposition, reason = outcome(c.cause)
			switch {
			case c.callback:
				c.reason = "second_" + string(c.disposition)
			case c.reason == "" && c.disposition != cdr.Busy && c.disposition != cdr.NoAnswer:
				c.reason = causeReason(c.cause)
			}
			c.hangupBy = "callee"
			hangIn = c.inbound
		default: // answering or bridged
			c.disposition = cdr.Answered
			if isIn {
				c.hangupBy = "caller"
			} else {
				c.hangupBy = "callee"
				hangIn = c.inbound
			}
		}
		c.phase = ending
		c.cancel()
		if c.bridge != "" {
			c.destroyBridge()
		}
	}
	if isIn && c.outbound != "" && !c.outGone {
		hangOut = c.outbound
	}
	if hangIn != "" {
		c.hangupLeg(hangIn, reason)
	}
	if hangOut != "" {
		c.hangupLeg(hangOut, "normal")
	}
	if c.legsGone() {
		c.finish()
	}
}

// finish removes an ended call and reports it: metrics, the call record,
// the log line and, for a callback, its final state.
func (c *call) finish() {
	c.stopTimers()
	c.cancel()
	c.a.unregister(c, c.inbound, c.outbound, c.bridge)
	rec := c.record()
	c.a.cfg.Metrics.countCall(rec.Disposition)
	a := c.a
	a.spawn(func() {
		if err := a.cdrs.Add(a.ctx, rec); err != nil {
			a.log.Error("call record lost", "call", rec.CallID, "err", err)
		}
	})
	a.log.Info("call ended", "call", c.id, "x", rec.X, "caller", rec.Caller, "callee", rec.Callee,
		"disposition", rec.Disposition, "cause", int(rec.HangupCause), "by", rec.HangupBy)
	if c.report != nil {
		if rec.Disposition == cdr.Answered {
			c.report(CallbackCompleted, "")
		} else {
			reason := rec.Reason
			if reason == "" {
				reason = string(rec.Disposition)
			}
			c.report(CallbackFailed, reason)
		}
	}
}

// outcome maps the hidden leg's hang-up cause to a disposition and the
// reason to hang up the caller with.
func outcome(cause ari.Cause) (cdr.Disposition, string) {
	switch cause {
	case ari.CauseUserBusy:
		return cdr.Busy, "busy"
	case ari.CauseNoUserResponse, ari.CauseNoAnswer, ari.CauseUnknown:
		return cdr.NoAnswer, "no_answer"
	default:
		return cdr.Failed, "congestion"
	}
}

func causeReason(cause ari.Cause) string {
	switch cause {
	case ari.CauseUnallocated, ari.CauseInvalidNumber:
		return "unallocated"
	case ari.CauseCallRejected:
		return "rejected"
	}
	return "congestion"
}

// record builds the call's detail record.
func (c *call) record() cdr.Record {
	r := cdr.Record{
		CallID: c.id, BindingID: c.route.BindingID, Mode: string(c.route.Mode), Extension: c.route.Extension, X: c.x,
		Caller: e164.Mask(c.caller), Start: c.start.UTC(), End: time.Now().UTC(),
		Disposition: c.disposition, Reason: c.reason, HangupCause: int(c.cause),
		HangupBy: c.hangupBy, Recording: c.recording,
	}
	if c.callback {
		r.Kind = "callback"
	}
	if c.callee != "" {
		r.Callee = e164.Mask(c.callee)
	}
	if !c.answer.IsZero() && (c.disposition == cdr.Answered) {
		t := c.answer.UTC()
		r.Answer = &t
	}
	if r.HangupCause == 0 && r.Disposition == cdr.Answered {
		r.HangupCause = int(ari.CauseNormalClearing)
	}
	return r
}

// hangupLeg asks Asterisk to end leg id of the call; a leg already gone
// counts as gone. It uses the App's context: the call's own is cancelled
// by the time legs are hung up.
func (c *call) hangupLeg(id, reason string) {
	a := c.a
	a.spawn(func() {
		err := a.teardownReq(func(ctx context.Context) error { return a.sw.Hangup(ctx, id, reason) })
		switch {
		case errors.Is(err, ari.ErrNotFound):
			c.do(func() { c.legGone(id, ari.CauseUnknown) })
		case err != nil && !errors.Is(err, context.Canceled):
			a.log.Warn("hangup failed", "call", c.id, "channel", id, "err", err)
		}
	})
}

func (c *call) destroyBridge() {
	a, id := c.a, c.bridge
	a.spawn(func() {
		err := a.teardownReq(func(ctx context.Context) error { return a.sw.DestroyBridge(ctx, id) })
		if err != nil && !gone(err) {
			a.log.Warn("bridge destroy failed", "bridge", id, "err", err)
		}
	})
}

// hangup ends a channel no call owns; one already gone is fine.
func (a *App) hangup(id, reason string) {
	err := a.teardownReq(func(ctx context.Context) error { return a.sw.Hangup(ctx, id, reason) })
	if err != nil && !gone(err) {
		a.log.Warn("hangup failed", "channel", id, "err", err)
	}
}

// teardownReq sends a request that ends something (a hang-up, a bridge
// destruction) with the App's context. Such a request must not be lost: if
// it fails as cancelled although the App's context is not (net/http can
// hand a request the cancellation of another that shared its connection
// attempt), it is sent again.
func (a *App) teardownReq(req func(context.Context) error) error {
	var err error
	for range 3 {
		err = req(a.ctx)
		if !errors.Is(err, context.Canceled) || a.ctx.Err() != nil {
			return err
		}
	}
	return err
}

// bridgeName carries what a restarted app needs to take a bridged call up
// again (only masked numbers).
func (c *call) bridgeName() string {
	v := url.Values{}
	v.Set("call", c.id)
	v.Set("in", c.inbound)
	v.Set("out", c.outbound)
	v.Set("binding", c.route.BindingID)
	if c.route.Mode != "" {
		v.Set("mode", string(c.route.Mode))
	}
	v.Set("x", c.x)
	if c.route.Extension != "" {
		v.Set("ext", c.route.Extension)
	}
	v.Set("caller", e164.Mask(c.caller))
	v.Set("callee", e164.Mask(c.callee))
	v.Set("start", strconv.FormatInt(c.start.UnixMilli(), 10))
	v.Set("answer", strconv.FormatInt(c.answer.UnixMilli(), 10))
	v.Set("max", strconv.FormatInt(int64(c.route.MaxDuration/time.Second), 10))
	if c.route.Record {
		v.Set("rec", "privnum-"+c.id)
	}
	return v.Encode()
}

// adopt takes up a bridged call an earlier run of the app left in Asterisk.
func (a *App) adopt(ctx context.Context, bridgeID string, present map[string]bool) {
	b, err := a.sw.GetBridge(ctx, bridgeID)
	if err != nil {
		return
	}
	v, err := url.ParseQuery(b.Name)
	if err != nil || v.Get("call") == "" || bridgePrefix+v.Get("call") != bridgeID {
		return
	}
	ms := func(k string) time.Time { n, _ := strconv.ParseInt(v.Get(k), 10, 64); return time.UnixMilli(n) }
	maxS, _ := strconv.Atoi(v.Get("max"))
	c := a.newCall(v.Get("call"))
	c.inbound, c.outbound, c.bridge = v.Get("in"), v.Get("out"), bridgeID
	c.x, c.caller, c.callee = v.Get("x"), v.Get("caller"), v.Get("callee")
	c.route = binding.Route{BindingID: v.Get("binding"), Mode: binding.Mode(v.Get("mode")), Extension: v.Get("ext"), MaxDuration: time.Duration(maxS) * time.Second, Record: v.Get("rec") != ""}
	c.phase, c.start, c.answer = bridged, ms("start"), ms("answer")
	c.disposition, c.recording = cdr.Answered, v.Get("rec")
	if err := a.register(c, c.inbound, c.outbound, bridgeID); err != nil {
		c.cancel()
		return
	}
	a.log.Info("took up bridged call", "call", c.id, "bridge", bridgeID)
	c.do(func() {
		if c.route.MaxDuration > 0 {
			c.maxTimer = c.after(c.route.MaxDuration-time.Since(c.answer), func() { c.teardown(endBy{by: "system"}) })
		}
		for _, id := range []string{c.inbound, c.outbound} {
			if !present[id] {
				c.legGone(id, ari.CauseUnknown)
			}
		}
	})
}
