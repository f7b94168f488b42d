package arisim

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// direction says how a channel came to be.
type direction int

const (
	dirInbound   direction = iota // a call from a trunk into Stasis
	dirOriginate                  // POST /channels: dialed at once, Stasis on answer
	dirCreate                     // POST /channels/create: Stasis at once, /dial later
)

// Channel states as ARI names them.
const (
	stateDown    = "Down"
	stateRing    = "Ring"
	stateRinging = "Ringing"
	stateUp      = "Up"
)

// party is a caller id / connected line.
type party struct {
	name, number string
}

func (p party) wire() wireCallerID { return wireCallerID{Name: p.name, Number: p.number} }

// channel is the simulator's state for one channel. Guarded by Sim.mu.
type channel struct {
	seq        uint64
	id         string
	name       string
	protocolID string
	dir        direction
	target     dialTarget // outbound legs
	state      string
	caller     party
	connected  party
	context    string
	exten      string
	priority   int64
	appName    string
	appData    string
	created    time.Time

	stasisApp string   // application whose Stasis() the channel is in
	subs      []string // explicit subscriptions (originate, create, originator)
	targetApp string   // originate: application entered on answer
	appArgs   string
	bridge    *bridge
	inhibit   bool // added to its bridge with inhibitConnectedLineUpdates
	vars      map[string]string

	behavior     Behavior
	timeout      time.Duration // dial timeout, 0 = none
	dialing      bool
	answered     bool
	rang         bool
	earlyMedia   bool
	timers       []*time.Timer
	identities   []Identity
	playbacks    []*playback // the first one is playing
	recording    *recording
	dtmfReceived string // digits the far party sent, reported
	dtmfSent     string // digits POST /dtmf played to the far party
	destroyed    bool
	hangupCause  int
	hangupBy     HangupParty
	sipResponse  int
	stasisStatus string
	answeredAt   time.Time
	destroyedAt  time.Time
}

func (ch *channel) stopTimers() {
	for _, t := range ch.timers {
		t.Stop()
	}
	ch.timers = nil
}

// live reports whether the far end of the channel exists, i.e. whether an
// identity set on the channel would be sent to someone.
func (ch *channel) live() bool {
	return ch.dir == dirInbound || ch.dialing || ch.answered
}

// farNumber is the number of the party at the far end of the channel.
func (ch *channel) farNumber() string {
	if ch.dir == dirInbound {
		return ch.caller.number
	}
	return ch.target.number
}

// afterCh runs fn under the lock after d (scaled) unless the channel is gone
// by then. Called with the lock held.
func (s *Sim) afterCh(ch *channel, d time.Duration, fn func()) {
	var t *time.Timer
	t = time.AfterFunc(s.scale(d), func() {
		s.mu.Lock()
		defer s.unlockNotify()
		for i, x := range ch.timers {
			if x == t {
				ch.timers = append(ch.timers[:i], ch.timers[i+1:]...)
				break
			}
		}
		if s.closed || ch.destroyed {
			return
		}
		fn()
	})
	ch.timers = append(ch.timers, t)
}

// chanApps are the applications that receive the channel's events.
func (s *Sim) chanApps(ch *channel) []string {
	if ch.stasisApp == "" {
		return ch.subs
	}
	if containsString(ch.subs, ch.stasisApp) {
		return ch.subs
	}
	return append([]string{ch.stasisApp}, ch.subs...)
}

func (s *Sim) snap(ch *channel) wireChannel {
	return wireChannel{
		ID:         ch.id,
		Name:       ch.name,
		State:      ch.state,
		ProtocolID: ch.protocolID,
		Caller:     ch.caller.wire(),
		Connected:  ch.connected.wire(),
		Dialplan: wireDialplan{
			Context:  ch.context,
			Exten:    ch.exten,
			Priority: ch.priority,
			AppName:  ch.appName,
			AppData:  ch.appData,
		},
		CreationTime: ch.created.Format(asteriskTimeLayout),
		Language:     "en",
	}
}

func (s *Sim) emitChan(ch *channel, typ string) {
	s.emit(s.chanApps(ch), &evChannel{Type: typ, Timestamp: s.ts(), Channel: s.snap(ch)})
}

func (s *Sim) varset(ch *channel, name, value string) {
	if s.opts.NoVarsetNoise {
		return
	}
	s.emit(s.chanApps(ch), &evVarset{Variable: name, Value: value, Type: "ChannelVarset", Timestamp: s.ts(), Channel: s.snap(ch)})
}

func (s *Sim) setState(ch *channel, state string) {
	if ch.state == state {
		return
	}
	ch.state = state
	s.emitChan(ch, "ChannelStateChange")
}

// stasisArgs splits appArgs as Stasis() splits its arguments.
func stasisArgs(appArgs string) []string {
	if appArgs == "" {
		return []string{}
	}
	return strings.Split(appArgs, ",")
}

func stasisData(app, appArgs string) string {
	if appArgs == "" {
		return app
	}
	return app + "," + appArgs
}

// enterStasis puts the channel into app's Stasis(). It fails (STASISSTATUS=
// FAILED) when no WebSocket is connected for app.
func (s *Sim) enterStasis(ch *channel, app, appArgs string) bool {
	if s.conns[app] == nil {
		ch.stasisStatus = "FAILED"
		return false
	}
	ch.appName, ch.appData = "Stasis", stasisData(app, appArgs)
	if ch.dir == dirCreate || (ch.dir == dirInbound && len(ch.subs) > 0) {
		s.emit(s.chanApps(ch), &evDialplan{Type: "ChannelDialplan", Timestamp: s.ts(), DialplanApp: ch.appName, DialplanAppData: ch.appData, Channel: s.snap(ch)})
	}
	s.varset(ch, "STASISSTATUS", "")
	ch.stasisApp = app
	ch.stasisStatus = ""
	s.emit(s.chanApps(ch), &evStasisStart{Type: "StasisStart", Timestamp: s.ts(), Args: stasisArgs(appArgs), Channel: s.snap(ch)})
	return true
}

// leaveStasis ends Stasis(): StasisEnd goes to the application, after which
// only explicit subscribers see the channel.
func (s *Sim) leaveStasis(ch *channel) {
	if ch.stasisApp == "" {
		return
	}
	s.emitChan(ch, "StasisEnd")
	ch.stasisApp = ""
	ch.stasisStatus = "SUCCESS"
	s.varset(ch, "STASISSTATUS", "SUCCESS")
}

// newOutbound allocates an outbound leg (locked).
func (s *Sim) newOutbound(t dialTarget, id string, dir direction, b Behavior) *channel {
	seq := s.nextSeq()
	if id == "" {
		id = s.channelID(seq)
	}
	ch := &channel{
		seq:        seq,
		id:         id,
		name:       fmt.Sprintf("%s%08x%s", t.prefix, seq, t.suffix),
		protocolID: newUUID(),
		dir:        dir,
		target:     t,
		state:      stateDown,
		context:    t.context,
		exten:      "s",
		priority:   1,
		created:    s.now(),
		behavior:   b,
	}
	if dir == dirOriginate {
		ch.appName, ch.appData = "AppDial2", "(Outgoing Line)"
	}
	s.channels[id] = ch
	s.stats.OutboundLegs++
	return ch
}

// recordIdentity notes an identity the far end of ch was sent.
func (s *Sim) recordIdentity(ch *channel, kind IdentityKind, p party) {
	if p.number == "" && p.name == "" {
		return
	}
	ch.identities = append(ch.identities, Identity{Kind: kind, Name: p.name, Number: p.number, At: s.now()})
}

// setCaller changes the caller id (CALLERID()) and reports it.
func (s *Sim) setCaller(ch *channel, p party, report bool) {
	if ch.caller == p {
		return
	}
	ch.caller = p
	if report {
		s.emit(s.chanApps(ch), &evCallerID{Type: "ChannelCallerId", Timestamp: s.ts(), CallerPresentation: 0, CallerPresentationTxt: "Presentation Allowed, Not Screened", Channel: s.snap(ch)})
	}
}

// setConnected changes the connected line. When send is set and the far end
// exists, the update is what a connected-line UPDATE / re-INVITE with
// P-Asserted-Identity would carry, and it is recorded as seen.
func (s *Sim) setConnected(ch *channel, p party, report, send bool) {
	if ch.connected == p {
		return
	}
	ch.connected = p
	if report {
		s.emitChan(ch, "ChannelConnectedLine")
	}
	if send && ch.live() {
		s.recordIdentity(ch, IdentityUpdate, p)
	}
}

// startDial sends the INVITE of an outbound leg and plays its behavior.
func (s *Sim) startDial(ch *channel) {
	if ch.dialing || ch.answered {
		return
	}
	ch.dialing = true
	s.recordIdentity(ch, IdentityFrom, ch.connected)
	s.emitDial(ch, "", true)
	if ch.timeout > 0 {
		s.afterCh(ch, ch.timeout, func() { s.dialTimeout(ch) })
	}
	b := ch.behavior
	outcome := func() {
		switch b.Outcome {
		case OutcomeAnswer:
			s.answerOutbound(ch)
		case OutcomeBusy, OutcomeFail:
			s.failOutbound(ch, b.failCause())
		}
	}
	if b.NoRinging {
		s.afterCh(ch, b.After, outcome)
		return
	}
	s.afterCh(ch, b.RingAfter, func() {
		s.ringOutbound(ch)
		if b.Outcome != OutcomeNoAnswer {
			s.afterCh(ch, b.After, outcome)
		}
	})
}

// emitDial publishes a Dial event for an outbound leg. Originated legs carry
// the dialstring on every Dial event; create+dial legs only on the first.
func (s *Sim) emitDial(ch *channel, status string, first bool) {
	ds := ch.target.resource
	if ch.dir == dirCreate && !first {
		ds = ""
	}
	s.emit(s.chanApps(ch), &evDial{Type: "Dial", Timestamp: s.ts(), DialStatus: status, DialString: ds, Peer: s.snap(ch)})
}

func (s *Sim) ringOutbound(ch *channel) {
	if !ch.dialing || ch.answered {
		return
	}
	s.setState(ch, stateRinging)
	s.emitDial(ch, "RINGING", false)
	if ch.bridge != nil { // early bridging: the ringing reaches the caller
		for _, o := range ch.bridge.chans {
			if o != ch && o.dir == dirInbound && o.state == stateRing {
				o.rang = true
			}
		}
	}
}

// answerOutbound: the far party answers the leg.
func (s *Sim) answerOutbound(ch *channel) {
	if !ch.dialing || ch.answered {
		return
	}
	ch.answered, ch.answeredAt = true, s.now()
	s.setState(ch, stateUp)
	s.emitDial(ch, "ANSWER", false)
	ch.stopTimers() // the dial timeout and pending steps
	if ch.dir == dirOriginate && ch.targetApp != "" {
		if !s.enterStasis(ch, ch.targetApp, ch.appArgs) {
			s.terminate(ch, hangupSpec{cause: CauseNormal, by: HangupBySystem})
			return
		}
	}
	if b := ch.bridge; b != nil {
		// Early bridging: the caller is answered when the callee answers.
		for _, o := range b.chans {
			if o != ch && o.dir == dirInbound && o.state == stateRing {
				s.answerChannel(o)
			}
		}
		s.retech(b)
	}
	if ch.behavior.HangupAfter > 0 {
		s.afterCh(ch, ch.behavior.HangupAfter, func() { s.peerHangup(ch, CauseNormal) })
	}
}

// answerChannel answers an inbound channel (POST /answer).
func (s *Sim) answerChannel(ch *channel) {
	if ch.state == stateUp {
		return
	}
	ch.answered, ch.answeredAt = true, s.now()
	s.setState(ch, stateUp)
	if ch.bridge != nil {
		s.retech(ch.bridge)
	}
}

// failOutbound: the far party rejects the leg (or hangs up before answer).
func (s *Sim) failOutbound(ch *channel, cause int) {
	tech := sipForPeerCause(cause)
	h := hangupSpec{request: true, reqCause: cause, reqTech: tech, cause: cause, tech: tech, by: HangupByPeer}
	if ch.dir == dirOriginate {
		h.dialStatus = dialStatusForCause(cause)
	}
	s.terminate(ch, h)
}

// dialTimeout: nobody answered within the dial timeout.
func (s *Sim) dialTimeout(ch *channel) {
	if ch.answered {
		return
	}
	h := hangupSpec{cause: CauseNoAnswer, tech: 480, by: HangupByTimeout}
	if ch.dir == dirCreate {
		h.request, h.soft, h.reqCause = true, true, softhangupExplicit
	}
	s.terminate(ch, h)
}

// peerHangup: the far party ends an established (or inbound) channel.
func (s *Sim) peerHangup(ch *channel, cause int) {
	h := hangupSpec{request: true, cause: cause, by: HangupByPeer}
	if cause != CauseNormal {
		h.reqCause = cause
		h.reqTech = sipForPeerCause(cause)
		h.tech = h.reqTech
	}
	s.terminate(ch, h)
}

// appHangup: DELETE /channels/{id}.
func (s *Sim) appHangup(ch *channel, cause int) {
	s.terminate(ch, hangupSpec{request: true, soft: true, reqCause: softhangupExplicit, cause: cause, by: HangupByApp})
}

// hangupSpec describes how a channel ends.
type hangupSpec struct {
	request    bool // publish ChannelHangupRequest
	reqCause   int  // its cause (0: omitted, as for a BYE)
	reqTech    int  // its tech_cause (0: omitted)
	soft       bool // a soft hangup (REST, timeouts)
	cause      int  // ChannelDestroyed cause
	tech       int  // ChannelDestroyed tech_cause (0: omitted)
	by         HangupParty
	dialStatus string // originated legs still dialing: the final Dial status
}

// terminate runs a channel's hangup: the events in the order the traces show,
// then the removal.
func (s *Sim) terminate(ch *channel, h hangupSpec) {
	if ch.destroyed {
		return
	}
	ch.stopTimers()
	if h.request {
		ev := &evHangupRequest{Type: "ChannelHangupRequest", Timestamp: s.ts(), Channel: s.snap(ch)}
		if h.reqCause != 0 {
			ev.Cause = intPtr(h.reqCause)
		}
		if h.reqTech != 0 {
			ev.TechCause = intPtr(h.reqTech)
		}
		if h.soft {
			ev.Soft = boolPtr(true)
		}
		s.emit(s.chanApps(ch), ev)
	}
	if h.dialStatus != "" && ch.dialing && !ch.answered {
		s.emitDial(ch, h.dialStatus, false)
	}
	s.stopChannelMedia(ch)
	if ch.bridge != nil {
		s.bridgeLeave(ch.bridge, ch)
	}
	wasInStasis := ch.stasisApp != ""
	s.leaveStasis(ch)
	if wasInStasis && ch.dir == dirInbound {
		// The dialplan goes on after Stasis() and ends: the PBX hangs up.
		s.emit(s.chanApps(ch), &evHangupRequest{Cause: intPtr(softhangupAppUnload), Soft: boolPtr(true), Type: "ChannelHangupRequest", Timestamp: s.ts(), Channel: s.snap(ch)})
	}
	if ch.dir == dirOriginate {
		ch.appName, ch.appData = "AppDial2", "(Outgoing Line)"
	} else {
		ch.appName, ch.appData = "", ""
	}
	ev := &evDestroyed{Type: "ChannelDestroyed", Timestamp: s.ts(), Cause: h.cause, CauseTxt: CauseText(h.cause), Channel: s.snap(ch)}
	if h.tech != 0 {
		ev.TechCause = intPtr(h.tech)
	}
	s.emit(s.chanApps(ch), ev)

	ch.destroyed = true
	ch.destroyedAt = s.now()
	ch.hangupCause = h.cause
	ch.hangupBy = h.by
	if ch.dir == dirInbound && !ch.answered && h.by != HangupByPeer {
		ch.sipResponse = sipForHangupCause(h.cause)
	}
	delete(s.channels, ch.id)
	s.history.put(ch.id, s.info(ch))
}

// InboundCall places a call from the number from to the number exten on the
// inbound trunk. Like the dialplan's Stasis(app), the channel enters the
// application at once: StasisStart, state Ring, context "from-trunk",
// caller.number = from. If no WebSocket is connected for the application
// Stasis() fails: the call never enters it, is hung up (cause 34, the
// caller gets 503) and InboundCall returns its id with ErrNoApplication.
func (s *Sim) InboundCall(ctx context.Context, from, exten string, opts ...CallOption) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("arisim: inbound call: %w", err)
	}
	cfg := callConfig{app: s.opts.App, trunk: s.opts.InboundTrunk}
	for _, o := range opts {
		o(&cfg)
	}
	s.mu.Lock()
	defer s.unlockNotify()
	if s.closed {
		return "", ErrClosed
	}
	context, ok := s.trunks[cfg.trunk]
	if !ok {
		return "", fmt.Errorf("arisim: inbound call: unknown trunk %q", cfg.trunk)
	}
	if cfg.context != "" {
		context = cfg.context
	}
	seq := s.nextSeq()
	ch := &channel{
		seq:        seq,
		id:         s.channelID(seq),
		name:       fmt.Sprintf("PJSIP/%s-%08x", cfg.trunk, seq),
		protocolID: fmt.Sprintf("%d-%d@127.0.0.2", seq+1, 9000+seq),
		dir:        dirInbound,
		state:      stateRing,
		caller:     party{name: cfg.callerName, number: from},
		context:    context,
		exten:      exten,
		priority:   1,
		created:    s.now(),
	}
	s.stats.InboundCalls++
	s.channels[ch.id] = ch
	// Applications subscribed to the trunk endpoint see the channel from
	// its creation on, before it reaches Stasis, as on a real Asterisk
	// (ChannelCreated with the caller and the dialed extension, then the
	// dialplan's ChannelDialplan).
	if apps := s.endpointApps("PJSIP/" + cfg.trunk); len(apps) > 0 {
		for _, a := range apps {
			ch.subs = addUnique(ch.subs, a)
		}
		s.emitChan(ch, "ChannelCreated")
	}
	if !s.enterStasis(ch, cfg.app, cfg.appArgs) {
		s.stats.FailedInbound++
		ch.appName, ch.appData = "Stasis", stasisData(cfg.app, cfg.appArgs)
		s.terminate(ch, hangupSpec{cause: CauseCongestion, by: HangupBySystem})
		return ch.id, fmt.Errorf("arisim: inbound call %s to app %q: %w", ch.id, cfg.app, ErrNoApplication)
	}
	return ch.id, nil
}

// CallOption configures InboundCall.
type CallOption func(*callConfig)

type callConfig struct {
	app, appArgs, trunk, context, callerName string
}

// WithApp sends the call to another Stasis application than Options.App.
func WithApp(app string) CallOption { return func(c *callConfig) { c.app = app } }

// WithAppArgs gives Stasis() arguments (StasisStart args, comma separated).
func WithAppArgs(args string) CallOption { return func(c *callConfig) { c.appArgs = args } }

// WithTrunk makes the call arrive on another known PJSIP endpoint.
func WithTrunk(trunk string) CallOption { return func(c *callConfig) { c.trunk = trunk } }

// WithContext overrides the dialplan context of the inbound channel.
func WithContext(context string) CallOption { return func(c *callConfig) { c.context = context } }

// WithCallerName sets the caller id name.
func WithCallerName(name string) CallOption { return func(c *callConfig) { c.callerName = name } }

// HangupFromPeer hangs a channel up as its far party would: a BYE (cause 16)
// on an answered channel, a CANCEL (cause 127) from a ringing caller, or a
// rejection (17 busy, 19 no answer, 34 congestion ...) of an outbound leg
// that has not answered yet. cause 0 means 16. A bridged peer stays up: only
// the application hangs it up.
func (s *Sim) HangupFromPeer(channelID string, cause int) error {
	s.mu.Lock()
	defer s.unlockNotify()
	ch := s.channels[channelID]
	if ch == nil {
		return fmt.Errorf("arisim: hangup %s: %w", channelID, ErrChannelNotFound)
	}
	if cause <= 0 {
		cause = CauseNormal
	}
	if ch.dir != dirInbound && !ch.answered {
		if !ch.dialing {
			return fmt.Errorf("arisim: hangup %s: not dialed yet: %w", channelID, ErrInvalidState)
		}
		s.failOutbound(ch, cause)
		return nil
	}
	s.peerHangup(ch, cause)
	return nil
}

// AnswerFromPeer makes the far party of a ringing outbound leg answer now,
// whatever its behavior.
func (s *Sim) AnswerFromPeer(channelID string) error {
	s.mu.Lock()
	defer s.unlockNotify()
	ch := s.channels[channelID]
	if ch == nil {
		return fmt.Errorf("arisim: answer %s: %w", channelID, ErrChannelNotFound)
	}
	if ch.dir == dirInbound || !ch.dialing || ch.answered {
		return fmt.Errorf("arisim: answer %s: %w", channelID, ErrInvalidState)
	}
	s.answerOutbound(ch)
	return nil
}
