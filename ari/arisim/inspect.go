package arisim

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"time"
)

// IdentityKind says how an identity reached a channel's far end.
type IdentityKind string

const (
	// IdentityFrom is the identity in the INVITE that dialed an outbound
	// leg: the leg's connected line when it was dialed.
	IdentityFrom IdentityKind = "From"
	// IdentityUpdate is a connected-line update sent to the far end: an
	// UPDATE / re-INVITE with P-Asserted-Identity on an outbound leg, a
	// provisional or in-dialog PAI toward an inbound caller. The simulator
	// records them as if send_pai=yes, the worst case.
	IdentityUpdate IdentityKind = "P-Asserted-Identity"
)

// Identity is one identity sent to a channel's far party.
type Identity struct {
	Kind   IdentityKind `json:"kind"`
	Name   string       `json:"name,omitempty"`
	Number string       `json:"number"`
	At     time.Time    `json:"at"`
}

// HangupParty says who ended a channel.
type HangupParty string

const (
	// HangupByApp: the application (DELETE /channels/{id}).
	HangupByApp HangupParty = "app"
	// HangupByPeer: the far party (BYE, CANCEL, rejection).
	HangupByPeer HangupParty = "peer"
	// HangupByTimeout: the dial timeout expired.
	HangupByTimeout HangupParty = "timeout"
	// HangupBySystem: the simulated dialplan (Stasis() failed, continue).
	HangupBySystem HangupParty = "system"
)

// Party is a caller id or connected line.
type Party struct {
	Name   string `json:"name"`
	Number string `json:"number"`
}

// ChannelInfo is a snapshot of a channel for tests.
type ChannelInfo struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// State is Down, Ring, Ringing or Up.
	State string `json:"state"`
	// Inbound is true for calls placed with InboundCall.
	Inbound bool `json:"inbound"`
	// Endpoint is the dialed ARI endpoint of an outbound leg.
	Endpoint string `json:"endpoint,omitempty"`
	// FarNumber is the far party's number: the caller of an inbound call,
	// the dialed number of an outbound leg.
	FarNumber string `json:"far_number"`
	Caller    Party  `json:"caller"`
	Connected Party  `json:"connected"`
	// App is the application whose Stasis() the channel is in ("" if none).
	App        string            `json:"app,omitempty"`
	BridgeID   string            `json:"bridge_id,omitempty"`
	Dialed     bool              `json:"dialed"`
	Answered   bool              `json:"answered"`
	Rang       bool              `json:"rang"`        // a 180 reached the caller (POST /ring, early bridge)
	EarlyMedia bool              `json:"early_media"` // a 183: media played before answer
	Variables  map[string]string `json:"variables,omitempty"`
	// DTMFReceived are the digits the far party sent (SendDTMF) that
	// reached the channel, in order; DTMFSent those POST
	// /channels/{id}/dtmf played to the far party.
	DTMFReceived string      `json:"dtmf_received,omitempty"`
	DTMFSent     string      `json:"dtmf_sent,omitempty"`
	Identities   []Identity  `json:"identities,omitempty"`
	Created      time.Time   `json:"created"`
	AnsweredAt   time.Time   `json:"answered_at,omitzero"`
	Destroyed    bool        `json:"destroyed"`
	DestroyedAt  time.Time   `json:"destroyed_at,omitzero"`
	HangupCause  int         `json:"hangup_cause,omitempty"`
	HangupBy     HangupParty `json:"hangup_by,omitempty"`
	// SIPResponse is the final response an unanswered inbound caller got
	// when Asterisk ended the call (486 for reason=busy ...); 0 otherwise.
	SIPResponse int `json:"sip_response,omitempty"`
	// StasisStatus is STASISSTATUS: "" while in Stasis, SUCCESS after,
	// FAILED when Stasis() could not start (no WebSocket).
	StasisStatus string `json:"stasis_status,omitempty"`
}

func (s *Sim) info(ch *channel) ChannelInfo {
	ci := ChannelInfo{
		ID:           ch.id,
		Name:         ch.name,
		State:        ch.state,
		Inbound:      ch.dir == dirInbound,
		FarNumber:    ch.farNumber(),
		Caller:       Party{Name: ch.caller.name, Number: ch.caller.number},
		Connected:    Party{Name: ch.connected.name, Number: ch.connected.number},
		App:          ch.stasisApp,
		Dialed:       ch.dialing,
		Answered:     ch.answered,
		Rang:         ch.rang,
		EarlyMedia:   ch.earlyMedia,
		Variables:    maps.Clone(ch.vars),
		DTMFReceived: ch.dtmfReceived,
		DTMFSent:     ch.dtmfSent,
		Identities:   append([]Identity(nil), ch.identities...),
		Created:      ch.created,
		AnsweredAt:   ch.answeredAt,
		Destroyed:    ch.destroyed,
		DestroyedAt:  ch.destroyedAt,
		HangupCause:  ch.hangupCause,
		HangupBy:     ch.hangupBy,
		SIPResponse:  ch.sipResponse,
		StasisStatus: ch.stasisStatus,
	}
	if ch.dir != dirInbound {
		ci.Endpoint = ch.target.endpoint
	}
	if ch.bridge != nil {
		ci.BridgeID = ch.bridge.id
	}
	return ci
}

// Channel returns a live channel, or a destroyed one still in the history.
func (s *Sim) Channel(id string) (ChannelInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch := s.channels[id]; ch != nil {
		return s.info(ch), true
	}
	return s.history.get(id)
}

// Channels returns the live channels, oldest first.
func (s *Sim) Channels() []ChannelInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.liveInfos()
}

func (s *Sim) liveChannels() []*channel {
	out := make([]*channel, 0, len(s.channels))
	for _, ch := range s.channels {
		out = append(out, ch)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	return out
}

func (s *Sim) liveInfos() []ChannelInfo {
	chans := s.liveChannels()
	out := make([]ChannelInfo, len(chans))
	for i, ch := range chans {
		out[i] = s.info(ch)
	}
	return out
}

// History returns the destroyed channels kept (Options.HistoryLimit), oldest
// first.
func (s *Sim) History() []ChannelInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.history.all()
}

// IdentitiesSeen returns the numbers a channel's far party was sent, in
// order (From of the INVITE, then connected-line updates), live or
// destroyed. It is the privacy oracle: party B must never be sent party A's
// real number.
func (s *Sim) IdentitiesSeen(channelID string) []string {
	ci, ok := s.Channel(channelID)
	if !ok {
		return nil
	}
	return identityNumbers(nil, ci.Identities)
}

// IdentitiesSeenBy returns every number sent to the party with the given
// number, over all its calls (as the caller of inbound calls and as the
// dialed number of outbound legs), live and in the history, without
// duplicates.
func (s *Sim) IdentitiesSeenBy(number string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, ci := range s.history.all() {
		if ci.FarNumber == number {
			out = identityNumbers(out, ci.Identities)
		}
	}
	for _, ch := range s.liveChannels() {
		if ch.farNumber() == number {
			out = identityNumbers(out, ch.identities)
		}
	}
	return out
}

func identityNumbers(out []string, ids []Identity) []string {
	for _, id := range ids {
		if id.Number != "" && !containsString(out, id.Number) {
			out = append(out, id.Number)
		}
	}
	return out
}

// WaitChannelDestroyed waits until the channel is gone and returns its final
// state.
func (s *Sim) WaitChannelDestroyed(ctx context.Context, channelID string) (ChannelInfo, error) {
	var ci ChannelInfo
	err := s.WaitFor(ctx, func(s *Sim) bool {
		var ok bool
		ci, ok = s.Channel(channelID)
		return ok && ci.Destroyed
	})
	if err != nil {
		return ci, fmt.Errorf("arisim: channel %s not destroyed: %w", channelID, err)
	}
	return ci, nil
}

// BridgeInfo is a snapshot of a bridge.
type BridgeInfo struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Type       string    `json:"type"`
	Technology string    `json:"technology"`
	Channels   []string  `json:"channels"`
	Created    time.Time `json:"created"`
}

func (s *Sim) bridgeInfo(b *bridge) BridgeInfo {
	w := s.bridgeSnap(b)
	return BridgeInfo{ID: b.id, Name: b.name, Type: b.typ, Technology: b.tech, Channels: w.Channels, Created: b.created}
}

// Bridge returns a live bridge.
func (s *Sim) Bridge(id string) (BridgeInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bridges[id]
	if b == nil {
		return BridgeInfo{}, false
	}
	return s.bridgeInfo(b), true
}

// Bridges returns the live bridges sorted by creation.
func (s *Sim) Bridges() []BridgeInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bridgeInfos()
}

func (s *Sim) bridgeInfos() []BridgeInfo {
	out := make([]BridgeInfo, 0, len(s.bridges))
	for _, b := range s.bridges {
		out = append(out, s.bridgeInfo(b))
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Created.Equal(out[j].Created) {
			return out[i].ID < out[j].ID
		}
		return out[i].Created.Before(out[j].Created)
	})
	return out
}

// PlaybackInfo is a snapshot of a playback.
type PlaybackInfo struct {
	ID       string    `json:"id"`
	Media    []string  `json:"media"`
	Target   string    `json:"target"` // channel:ID or bridge:ID
	State    string    `json:"state"`  // queued, playing, done
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
}

func (pb *playback) info() PlaybackInfo {
	return PlaybackInfo{ID: pb.id, Media: append([]string(nil), pb.media...), Target: pb.targetURI(), State: pb.state, Started: pb.started, Finished: pb.finished}
}

// Playback returns a queued, playing or recently finished playback.
func (s *Sim) Playback(id string) (PlaybackInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pb := s.playbacks[id]; pb != nil {
		return pb.info(), true
	}
	return s.donePlaybacks.get(id)
}

// Playbacks returns the queued and playing playbacks.
func (s *Sim) Playbacks() []PlaybackInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]PlaybackInfo, 0, len(s.playbacks))
	for _, k := range sortedKeys(s.playbacks) {
		out = append(out, s.playbacks[k].info())
	}
	return out
}

// RecordingInfo is a snapshot of a recording.
type RecordingInfo struct {
	Name     string    `json:"name"`
	Format   string    `json:"format"`
	Target   string    `json:"target"` // channel:ID or bridge:ID
	State    string    `json:"state"`  // queued, recording, done, canceled
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
}

func (rec *recording) info() RecordingInfo {
	return RecordingInfo{Name: rec.name, Format: rec.format, Target: rec.targetURI(), State: rec.state, Started: rec.started, Finished: rec.finished}
}

// Recording returns a live or recently finished recording.
func (s *Sim) Recording(name string) (RecordingInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rec := s.recordings[name]; rec != nil {
		return rec.info(), true
	}
	return s.doneRecordings.get(name)
}

// LiveRecordings returns the recordings in progress.
func (s *Sim) LiveRecordings() []RecordingInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]RecordingInfo, 0, len(s.recordings))
	for _, k := range sortedKeys(s.recordings) {
		out = append(out, s.recordings[k].info())
	}
	return out
}

// Connected reports whether a WebSocket is registered for the application.
func (s *Sim) Connected(app string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns[app] != nil
}

// Replacements returns how many times a WebSocket took app over from
// another still registered (each sent the old one ApplicationReplaced): two
// live processes fighting over one application show up here.
func (s *Sim) Replacements(app string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.replaced[app]
}

// DropConnections closes every WebSocket from the server side, as a network
// drop or an Asterisk restart would, without touching channels or bridges.
// When it returns no application is registered any more.
func (s *Sim) DropConnections() {
	s.mu.Lock()
	conns := make([]*wsConn, 0, len(s.allConns))
	for c := range s.allConns {
		conns = append(conns, c)
	}
	clear(s.conns)
	s.unlockNotify()
	for _, c := range conns {
		c.closeNow()
	}
}
