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
	rejecting                 // playing an announcement before hanging up
	ringing                   // the hidden leg is being dialed
	answering                 // the hidden leg answered; bridging
	bridged                   // both parties talk
	ending                    // one leg is gone; tearing down
)

// call is one inbound call and its hidden leg. Its fields are guarded by
// App.mu.
type call struct {
	id        string
	inbound   string
	outbound  string
	bridge    string
	x, caller string // E.164; masked before they leave the process
	callee    string
	route     binding.Route
	phase     phase

	start, answer time.Time
	inGone        bool
	outGone       bool
	cause         int    // hang-up cause of the first leg to end
	hangupBy      string // caller, callee or system
	disposition   cdr.Disposition
	reason        string
	recording     string
	maxTimer      *time.Timer
	guardTimer    *time.Timer

	// callback marks a call privnum placed to both parties; report
	// receives its state changes.
	callback bool
	report   func(state CallbackState, reason string)
}

func (c *call) stopTimers() {
	if c.maxTimer != nil {
		c.maxTimer.Stop()
	}
	if c.guardTimer != nil {
		c.guardTimer.Stop()
	}
}

// legsGone reports whether every leg of the call has left.
func (c *call) legsGone() bool {
	return c.inGone && (c.outbound == "" || c.outGone)
}

// leg names one leg of a call.
type leg struct {
	c  *call
	id string
}

// Connected resynchronises with Asterisk after each (re)connection: legs
// that ended while no connection was up are torn down, bridged calls left
// by an earlier run are taken up again, and channels nobody owns are ended.
func (a *App) Connected(ctx context.Context) {
	a.cfg.Metrics.connected()
	app, err := a.sw.Application(ctx, a.cfg.Application)
	if err != nil {
		a.log.Error("resync after connect", "err", err)
		return
	}
	present := map[string]bool{}
	for _, id := range app.ChannelIDs {
		present[id] = true
	}
	a.mu.Lock()
	var gone []leg
	for _, c := range a.calls {
		// A ringing leg joins the app only when it answers: a callback's
		// first leg while it rings, the hidden leg until it answers.
		if !c.inGone && c.phase != dialingFirst && !present[c.inbound] {
			gone = append(gone, leg{c, c.inbound})
		}
		if c.outbound != "" && !c.outGone && c.phase >= answering && !present[c.outbound] {
			gone = append(gone, leg{c, c.outbound})
		}
	}
	var unknownBridges []string
	for _, b := range app.BridgeIDs {
		if _, ok := a.byChannel[b]; !ok && strings.HasPrefix(b, bridgePrefix) {
			unknownBridges = append(unknownBridges, b)
		}
	}
	a.mu.Unlock()
	for _, g := range gone {
		a.legGone(g.c, g.id, 0)
	}
	for _, b := range unknownBridges {
		a.adopt(ctx, b, present)
	}
	// Channels still unknown are orphans of an earlier run, or new calls
	// whose StasisStart is queued behind this resync: give those a moment.
	var orphans []string
	a.mu.Lock()
	for id := range present {
		if _, ok := a.byChannel[id]; !ok {
			orphans = append(orphans, id)
		}
	}
	a.mu.Unlock()
	if len(orphans) == 0 {
		return
	}
	time.AfterFunc(orphanGrace, func() {
		for _, id := range orphans {
			a.mu.Lock()
			_, ok := a.byChannel[id]
			a.mu.Unlock()
			if !ok {
				a.log.Info("ending channel left without call state", "channel", id)
				a.hangup(id, "normal")
			}
		}
	})
}

// orphanGrace is how long a channel found in the app after a reconnect may
// stay unclaimed before it is ended.
const orphanGrace = 2 * time.Second

// HandleEvent advances the calls an event concerns. It does no I/O itself.
func (a *App) HandleEvent(ev ari.Event) {
	if a.flashEvent(ev) {
		return
	}
	switch e := ev.(type) {
	case *ari.StasisStart:
		a.stasisStart(e)
	case *ari.StasisEnd:
		a.channelGone(e.Channel.ID, 0)
	case *ari.ChannelDestroyed:
		a.channelGone(e.Channel.ID, e.Cause)
	case *ari.ChannelHangupRequest:
		if e.Cause > 0 {
			a.mu.Lock()
			if c := a.byChannel[e.Channel.ID]; c != nil && c.cause == 0 && c.phase != ending {
				c.cause = e.Cause
			}
			a.mu.Unlock()
		}
	case *ari.PlaybackFinished:
		id, ok := strings.CutSuffix(e.Playback.ID, "-announce")
		if !ok {
			return
		}
		a.mu.Lock()
		c := a.calls[id]
		a.mu.Unlock()
		if c != nil {
			a.goTrack(func() { a.systemHangup(c, "normal", 16) })
		}
	}
}

func (a *App) stasisStart(e *ari.StasisStart) {
	ch := e.Channel
	if len(e.Args) > 0 && e.Args[0] == flashTag {
		a.goTrack(func() { a.hangup(ch.ID, "normal") }) // answered: end it at once
		return
	}
	if len(e.Args) > 0 && e.Args[0] == callbackTag {
		a.firstAnswered(ch.ID)
		return
	}
	if len(e.Args) > 0 && e.Args[0] == outboundTag {
		a.mu.Lock()
		c := a.byChannel[ch.ID]
		if c != nil && c.phase == ringing {
			c.phase = answering
			c.answer = time.Now()
			a.mu.Unlock()
			a.goTrack(func() { a.connect(c) })
			return
		}
		a.mu.Unlock()
		if c == nil {
			// Our leg, but its call is gone (e.g. restarted while ringing).
			a.goTrack(func() { a.hangup(ch.ID, "normal") })
		}
		return
	}
	c := &call{
		id: newID(), inbound: ch.ID, start: time.Now(), phase: routing,
		x: ch.Dialplan.Exten, caller: ch.Caller.Number,
	}
	if len(e.Args) > 0 && e.Args[0] != "" {
		c.x = e.Args[0] // Stasis(privnum,${EXTEN}) names the dialed number
	}
	a.mu.Lock()
	if a.draining {
		a.mu.Unlock()
		a.goTrack(func() { a.hangup(ch.ID, "congestion") })
		return
	}
	a.calls[c.id] = c
	a.byChannel[ch.ID] = c
	a.mu.Unlock()
	a.cfg.Metrics.setLive(a.LiveCalls())
	a.goTrack(func() { a.route(c) })
}

// route resolves the call and dials the hidden party or refuses the call.
func (a *App) route(c *call) {
	ctx := a.ctx
	r, err := a.router.Resolve(ctx, c.x, c.caller)
	switch {
	case errors.Is(err, e164.ErrInvalid):
		r = binding.Route{Action: binding.Reject, Reason: binding.ReasonNoBinding}
	case err != nil:
		a.log.Error("resolve failed", "call", c.id, "x", c.x, "caller", e164.Mask(c.caller), "err", err)
		a.fail(c, "internal_error", "congestion")
		return
	}
	if r.Action != binding.Connect {
		a.reject(c, r)
		return
	}
	a.dialSecond(c, r)
}

// dialSecond dials the hidden party of c as r says, with the virtual number
// as caller ID.
func (a *App) dialSecond(c *call, r binding.Route) {
	ctx := a.ctx
	a.mu.Lock()
	if c.phase != routing {
		a.mu.Unlock()
		return // the caller hung up meanwhile
	}
	c.route, c.callee, c.x = r, r.Target, r.X
	c.outbound = "privnum-" + c.id + "-b"
	c.phase = ringing
	a.byChannel[c.outbound] = c
	a.mu.Unlock()

	ring := r.RingTimeout
	if ring <= 0 {
		ring = a.cfg.RingTimeout
	}
	if !c.callback {
		a.cfg.Metrics.observeRouting(time.Since(c.start))
	}
	_, err := a.sw.Originate(ctx, ari.OriginateRequest{
		Endpoint:   expand(a.cfg.EndpointTemplate, r.Target),
		ChannelID:  c.outbound,
		CallerID:   expand(a.cfg.CallerIDTemplate, r.X),
		Timeout:    ring,
		App:        a.cfg.Application,
		AppArgs:    outboundTag + "," + c.id,
		Originator: c.inbound,
	})
	if err != nil {
		a.log.Warn("originate failed", "call", c.id, "callee", e164.Mask(r.Target), "err", err)
		a.mu.Lock()
		c.reason = "originate_failed"
		a.mu.Unlock()
		a.legGone(c, c.outbound, 34)
		return
	}
	a.mu.Lock()
	ended := c.phase == ending
	a.mu.Unlock()
	if ended {
		a.hangup(c.outbound, "normal") // the caller left while we dialed
		return
	}
	if c.callback {
		return // the first party was dialed with the virtual number already
	}
	// The caller hears ringing; its own channel shows the virtual number
	// both as connected line and as caller ID, so that no identity exchange
	// can carry the real number to the other side.
	x := expand(a.cfg.CallerIDTemplate, r.X)
	for _, step := range []func() error{
		func() error { return a.sw.Ring(ctx, c.inbound) },
		func() error { return a.sw.SetVar(ctx, c.inbound, "CONNECTEDLINE(num)", x) },
		func() error { return a.sw.SetVar(ctx, c.inbound, "CALLERID(num)", x) },
	} {
		if err := step(); err != nil {
			if !errors.Is(err, ari.ErrNotFound) {
				a.log.Warn("preparing caller leg", "call", c.id, "err", err)
			}
			return
		}
	}
}

// reject refuses a call: an announcement for no or an expired binding, a
// plain refusal for a direction the binding does not allow.
func (a *App) reject(c *call, r binding.Route) {
	a.mu.Lock()
	if c.phase != routing {
		a.mu.Unlock()
		return
	}
	c.phase, c.disposition, c.reason, c.route = rejecting, cdr.Rejected, r.Reason, r
	if r.X != "" {
		c.x = r.X
	}
	a.mu.Unlock()
	if r.Reason == binding.ReasonDirection {
		a.systemHangup(c, "rejected", 21)
		return
	}
	media := a.cfg.Announcements.NoBinding
	if r.Reason == binding.ReasonExpired {
		media = a.cfg.Announcements.Expired
	}
	a.mu.Lock()
	c.guardTimer = time.AfterFunc(60*time.Second, func() { a.systemHangup(c, "normal", 16) })
	a.mu.Unlock()
	if err := a.sw.Answer(a.ctx, c.inbound); err != nil {
		a.hangupAfter(c, err)
		return
	}
	if _, err := a.sw.Play(a.ctx, c.inbound, c.id+"-announce", media); err != nil {
		a.hangupAfter(c, err)
	}
}

// fail ends a call that cannot be routed, with a hang-up reason the
// caller's network understands.
func (a *App) fail(c *call, reason, hangupReason string) {
	a.mu.Lock()
	c.disposition, c.reason = cdr.Failed, reason
	a.mu.Unlock()
	a.systemHangup(c, hangupReason, 34)
}

// systemHangup ends the caller's leg of a call that never reached the other
// party, recording that privnum hung up and with which cause.
func (a *App) systemHangup(c *call, reason string, cause int) {
	a.mu.Lock()
	if c.phase == ending {
		a.mu.Unlock()
		return
	}
	c.phase, c.hangupBy, c.cause = ending, "system", cause
	a.mu.Unlock()
	a.hangupLeg(c, c.inbound, reason)
}

// hangupAfter ends a refused call after a failed step, unless its caller
// is already gone.
func (a *App) hangupAfter(c *call, err error) {
	if errors.Is(err, ari.ErrNotFound) {
		return
	}
	a.log.Warn("call step failed; hanging up", "call", c.id, "err", err)
	a.systemHangup(c, "normal", 16)
}

// connect answers the caller and bridges both legs once the hidden party
// answered.
func (a *App) connect(c *call) {
	ctx := a.ctx
	name := a.bridgeName(c)
	bridgeID := bridgePrefix + c.id
	answer := func() error { return a.sw.Answer(ctx, c.inbound) }
	if c.callback {
		// The first party is up and hears the prompt: stop it.
		answer = func() error {
			if err := a.sw.StopPlayback(ctx, c.id+"-prompt"); err != nil && !errors.Is(err, ari.ErrNotFound) {
				return err
			}
			return nil
		}
	}
	steps := []func() error{
		answer,
		func() error { _, err := a.sw.CreateBridge(ctx, bridgeID, "mixing", name); return err },
		func() error {
			a.mu.Lock()
			c.bridge = bridgeID
			a.byChannel[bridgeID] = c
			a.mu.Unlock()
			return a.sw.AddChannel(ctx, bridgeID, ari.AddChannelOptions{InhibitConnectedLineUpdates: true}, c.inbound, c.outbound)
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			if errors.Is(err, ari.ErrNotFound) || errors.Is(err, ari.ErrBadRequest) {
				return // a leg hung up meanwhile: its events end the call
			}
			a.log.Warn("bridging failed", "call", c.id, "err", err)
			a.endCall(c, "system")
			return
		}
	}
	a.mu.Lock()
	if c.phase != answering {
		a.mu.Unlock()
		return // a leg left while we bridged; legGone tears down
	}
	c.phase = bridged
	c.disposition = cdr.Answered
	if c.route.MaxDuration > 0 {
		c.maxTimer = time.AfterFunc(c.route.MaxDuration-time.Since(c.answer), func() { a.endCall(c, "system") })
	}
	record := c.route.Record
	a.mu.Unlock()
	if c.report != nil {
		c.report(CallbackBridged, "")
	}
	if record {
		name := "privnum-" + c.id
		if _, err := a.sw.RecordBridge(ctx, bridgeID, ari.RecordRequest{Name: name, Format: a.cfg.RecordFormat, IfExists: "overwrite"}); err != nil {
			a.log.Warn("recording failed to start", "call", c.id, "err", err)
			return
		}
		a.mu.Lock()
		c.recording = name
		a.mu.Unlock()
	}
}

// endCall tears a call down from our side (max duration, drain, failure).
func (a *App) endCall(c *call, by string) {
	a.mu.Lock()
	if c.phase == ending {
		a.mu.Unlock()
		return
	}
	if c.hangupBy == "" {
		c.hangupBy = by
	}
	if c.disposition == "" {
		c.disposition = cdr.Failed
	}
	c.phase = ending
	legs := []string{}
	if !c.inGone {
		legs = append(legs, c.inbound)
	}
	if c.outbound != "" && !c.outGone {
		legs = append(legs, c.outbound)
	}
	bridge := c.bridge
	a.mu.Unlock()
	for _, id := range legs {
		a.hangupLeg(c, id, "normal")
	}
	if bridge != "" {
		a.destroyBridge(bridge)
	}
}

// channelGone handles a channel leaving the app or being destroyed.
func (a *App) channelGone(id string, cause int) {
	a.mu.Lock()
	c := a.byChannel[id]
	a.mu.Unlock()
	if c != nil {
		a.legGone(c, id, cause)
	}
}

// legGone records that a leg ended and tears the call down: the first leg
// to go decides the outcome; the call is finished when both are gone.
func (a *App) legGone(c *call, id string, cause int) {
	a.mu.Lock()
	isIn := id == c.inbound
	if (isIn && c.inGone) || (!isIn && c.outGone) {
		a.mu.Unlock()
		return
	}
	if isIn {
		c.inGone = true
	} else {
		c.outGone = true
	}
	delete(a.byChannel, id)
	var hangIn, hangOut, bridge string
	reason := "normal"
	if c.phase != ending {
		if c.cause == 0 {
			c.cause = cause
		}
		switch {
		case isIn && c.phase == dialingFirst:
			c.disposition, _ = outcome(c.cause)
			c.reason, c.hangupBy = "first_"+string(c.disposition), "caller"
		case isIn && (c.phase == routing || c.phase == ringing):
			c.disposition, c.hangupBy = cdr.Cancelled, "caller"
			hangOut = c.outbound
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
				hangOut = c.outbound
			} else {
				c.hangupBy = "callee"
				hangIn = c.inbound
			}
		}
		c.phase = ending
		bridge = c.bridge
	}
	if isIn && c.phase == ending && c.outbound != "" && !c.outGone {
		hangOut = c.outbound
	}
	done := c.legsGone()
	if done {
		c.stopTimers()
		delete(a.calls, c.id)
		if c.bridge != "" {
			delete(a.byChannel, c.bridge)
		}
		if c.outbound != "" {
			delete(a.byChannel, c.outbound)
		}
		delete(a.byChannel, c.inbound)
		if a.draining && len(a.calls) == 0 && a.idle != nil {
			select {
			case <-a.idle:
			default:
				close(a.idle)
			}
		}
	}
	var rec cdr.Record
	if done {
		rec = a.record(c)
	}
	a.mu.Unlock()

	if hangIn != "" {
		a.goTrack(func() { a.hangupLeg(c, hangIn, reason) })
	}
	if hangOut != "" {
		a.goTrack(func() { a.hangupLeg(c, hangOut, "normal") })
	}
	if bridge != "" {
		a.goTrack(func() { a.destroyBridge(bridge) })
	}
	if done {
		a.cfg.Metrics.setLive(a.LiveCalls())
		a.cfg.Metrics.countCall(rec.Disposition)
		a.goTrack(func() {
			if err := a.cdrs.Add(a.ctx, rec); err != nil {
				a.log.Error("call record lost", "call", rec.CallID, "err", err)
			}
		})
		a.log.Info("call ended", "call", c.id, "x", rec.X, "caller", rec.Caller, "callee", rec.Callee,
			"disposition", rec.Disposition, "cause", rec.HangupCause, "by", rec.HangupBy)
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
}

// outcome maps the hidden leg's hang-up cause to a disposition and the
// reason to hang up the caller with.
func outcome(cause int) (cdr.Disposition, string) {
	switch cause {
	case 17:
		return cdr.Busy, "busy"
	case 18, 19, 0:
		return cdr.NoAnswer, "no_answer"
	default:
		return cdr.Failed, "congestion"
	}
}

func causeReason(cause int) string {
	switch cause {
	case 1, 28:
		return "unallocated"
	case 21:
		return "rejected"
	}
	return "congestion"
}

// record builds the call's detail record; caller holds a.mu.
func (a *App) record(c *call) cdr.Record {
	r := cdr.Record{
		CallID: c.id, BindingID: c.route.BindingID, X: c.x,
		Caller: e164.Mask(c.caller), Start: c.start.UTC(), End: time.Now().UTC(),
		Disposition: c.disposition, Reason: c.reason, HangupCause: c.cause,
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
		r.HangupCause = 16
	}
	return r
}

// hangupLeg ends a leg of c; a leg already gone counts as gone.
func (a *App) hangupLeg(c *call, id, reason string) {
	err := a.sw.Hangup(a.ctx, id, reason)
	if errors.Is(err, ari.ErrNotFound) {
		a.legGone(c, id, 0)
		return
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		a.log.Warn("hangup failed", "call", c.id, "channel", id, "err", err)
	}
}

// hangup ends a channel; one already gone is fine.
func (a *App) hangup(id, reason string) {
	err := a.sw.Hangup(a.ctx, id, reason)
	if err != nil && !errors.Is(err, ari.ErrNotFound) && !errors.Is(err, context.Canceled) {
		a.log.Warn("hangup failed", "channel", id, "err", err)
	}
}

func (a *App) destroyBridge(id string) {
	err := a.sw.DestroyBridge(a.ctx, id)
	if err != nil && !errors.Is(err, ari.ErrNotFound) && !errors.Is(err, context.Canceled) {
		a.log.Warn("bridge destroy failed", "bridge", id, "err", err)
	}
}

// bridgeName carries what a restarted app needs to take a bridged call up
// again (only masked numbers).
func (a *App) bridgeName(c *call) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	v := url.Values{}
	v.Set("call", c.id)
	v.Set("in", c.inbound)
	v.Set("out", c.outbound)
	v.Set("binding", c.route.BindingID)
	v.Set("x", c.x)
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
	c := &call{
		id: v.Get("call"), inbound: v.Get("in"), outbound: v.Get("out"), bridge: bridgeID,
		x: v.Get("x"), caller: v.Get("caller"), callee: v.Get("callee"),
		route: binding.Route{BindingID: v.Get("binding"), MaxDuration: time.Duration(maxS) * time.Second, Record: v.Get("rec") != ""},
		phase: bridged, start: ms("start"), answer: ms("answer"),
		disposition: cdr.Answered, recording: v.Get("rec"),
	}
	a.mu.Lock()
	a.calls[c.id] = c
	a.byChannel[c.inbound] = c
	a.byChannel[c.outbound] = c
	a.byChannel[bridgeID] = c
	if c.route.MaxDuration > 0 {
		c.maxTimer = time.AfterFunc(c.route.MaxDuration-time.Since(c.answer), func() { a.endCall(c, "system") })
	}
	a.mu.Unlock()
	a.log.Info("took up bridged call", "call", c.id, "bridge", bridgeID)
	for _, id := range []string{c.inbound, c.outbound} {
		if !present[id] {
			a.legGone(c, id, 0)
		}
	}
}
