package arisim

import "time"

// bridge is the simulator's state for one Stasis bridge. Guarded by Sim.mu.
type bridge struct {
	id         string
	name       string
	typ        string // "mixing" or "holding"
	created    time.Time
	chans      []*channel
	subs       []string // applications that saw one of their channels enter
	tech       string
	playbacks  []*playback
	recordings []*recording
}

func (s *Sim) bridgeSnap(b *bridge) wireBridge {
	ids := make([]string, len(b.chans))
	for i, c := range b.chans {
		ids[i] = c.id
	}
	return wireBridge{
		ID:           b.id,
		Technology:   b.tech,
		BridgeType:   b.typ,
		BridgeClass:  "stasis",
		Creator:      "Stasis",
		Name:         b.name,
		Channels:     ids,
		CreationTime: b.created.Format(asteriskTimeLayout),
		VideoMode:    "talker",
	}
}

// technology is the bridge technology Asterisk would pick: two answered
// PJSIP channels go native_rtp, a third participant (or a recorder or
// announcer) makes it softmix.
func (s *Sim) technology(b *bridge) string {
	if b.typ == "holding" {
		return "holding_bridge"
	}
	if len(b.recordings) > 0 || len(b.playbacks) > 0 || len(b.chans) > 2 {
		return "softmix"
	}
	if len(b.chans) == 2 {
		native := true
		for _, c := range b.chans {
			if c.state != stateUp || (c.dir != dirInbound && c.target.tech != "PJSIP") {
				native = false
			}
		}
		if native {
			return "native_rtp"
		}
	}
	return "simple_bridge"
}

func (s *Sim) retech(b *bridge) { b.tech = s.technology(b) }

func (s *Sim) emitBridge(typ string, b *bridge, ch *channel) {
	ev := &evBridge{Type: typ, Timestamp: s.ts(), Bridge: s.bridgeSnap(b)}
	apps := b.subs
	if ch != nil {
		snap := s.snap(ch)
		ev.Channel = &snap
		apps = unionApps(s.chanApps(ch), b.subs)
	}
	s.emit(apps, ev)
}

// bridgeJoin adds a channel (POST /bridges/{id}/addChannel), moving it out
// of another bridge first.
func (s *Sim) bridgeJoin(b *bridge, ch *channel, inhibit bool) {
	if ch.bridge == b {
		ch.inhibit = inhibit
		return
	}
	if ch.bridge != nil {
		s.bridgeLeave(ch.bridge, ch)
	}
	b.chans = append(b.chans, ch)
	ch.bridge, ch.inhibit = b, inhibit
	for _, a := range s.chanApps(ch) {
		b.subs = addUnique(b.subs, a)
	}
	s.emitBridge("ChannelEnteredBridge", b, ch)
	s.reconfigured(b, !inhibit)
}

// bridgeLeave removes a channel from its bridge (removeChannel, hangup,
// bridge destruction).
func (s *Sim) bridgeLeave(b *bridge, ch *channel) {
	for i, c := range b.chans {
		if c == ch {
			b.chans = append(b.chans[:i], b.chans[i+1:]...)
			break
		}
	}
	ch.bridge = nil
	s.varset(ch, "BRIDGEPEER", "")
	s.varset(ch, "BRIDGEPVTCALLID", "")
	s.emitBridge("ChannelLeftBridge", b, ch) // snapshot before the reconfiguration
	s.reconfigured(b, !ch.inhibit)
	ch.inhibit = false
}

// reconfigured is bridge_reconfigured(): pick the technology and, for a
// two-party bridge, exchange identities unless the join that triggered it
// inhibited connected-line updates.
func (s *Sim) reconfigured(b *bridge, colp bool) {
	s.retech(b)
	if len(b.chans) != 2 {
		return
	}
	a, c := b.chans[0], b.chans[1]
	s.varset(c, "BRIDGEPEER", a.name)
	s.varset(c, "BRIDGEPVTCALLID", a.protocolID)
	s.varset(a, "BRIDGEPEER", c.name)
	s.varset(a, "BRIDGEPVTCALLID", c.protocolID)
	if !colp {
		return
	}
	// Each side's connected line becomes the other side's caller id, and is
	// sent to the far end (UPDATE / re-INVITE with P-Asserted-Identity).
	s.setConnected(a, c.caller, true, true)
	s.setConnected(c, a.caller, true, true)
}

// bridgeDestroy is DELETE /bridges/{id}: everyone leaves, then
// BridgeDestroyed.
func (s *Sim) bridgeDestroy(b *bridge) {
	s.dropPlaybacks(b.playbacks)
	b.playbacks = nil
	for _, rec := range append([]*recording(nil), b.recordings...) {
		s.finishRecording(rec, "done")
	}
	for len(b.chans) > 0 {
		s.bridgeLeave(b, b.chans[0])
	}
	s.emitBridge("BridgeDestroyed", b, nil)
	delete(s.bridges, b.id)
}
