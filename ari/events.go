package ari

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Event is a message from the application's event stream. Its concrete
// types are pointers to this package's event structs, e.g. *StasisStart;
// event types without a struct arrive as *Unknown.
type Event interface {
	// EventType is the ARI type name, e.g. "StasisStart".
	EventType() string
	// Base returns the fields common to all events.
	Base() EventBase
}

// EventBase holds the fields common to all events.
type EventBase struct {
	Type        string `json:"type"`
	Application string `json:"application"`
	Timestamp   Time   `json:"timestamp"`
	AsteriskID  string `json:"asterisk_id"`
}

// EventType returns e.Type.
func (e *EventBase) EventType() string { return e.Type }

// Base returns a copy of e.
func (e *EventBase) Base() EventBase { return *e }

// StasisStart is sent when a channel enters the application. A channel made
// with Originate enters it only when answered.
type StasisStart struct {
	EventBase
	Args           []string `json:"args"`
	Channel        Channel  `json:"channel"`
	ReplaceChannel *Channel `json:"replace_channel,omitempty"`
}

// StasisEnd is sent when a channel leaves the application.
type StasisEnd struct {
	EventBase
	Channel Channel `json:"channel"`
}

// ChannelStateChange is sent when a channel's state changes (e.g. to Ringing
// or Up).
type ChannelStateChange struct {
	EventBase
	Channel Channel `json:"channel"`
}

// ChannelDestroyed is sent when a channel is gone. Cause is the Q.850 hang-up
// cause and the reliable outcome of a call leg: 16 normal, 17 busy, 18/19 no answer,
// 1 unallocated, 21 rejected, 34/38/27/3/20 congestion or unavailable.
type ChannelDestroyed struct {
	EventBase
	Cause     Cause   `json:"cause"`
	CauseTxt  string  `json:"cause_txt"`
	TechCause int     `json:"tech_cause,omitempty"` // e.g. the SIP status
	Channel   Channel `json:"channel"`
}

// ChannelHangupRequest is sent when a hang-up is requested on a channel, e.g.
// when the caller hangs up (cause 127 on a SIP CANCEL).
type ChannelHangupRequest struct {
	EventBase
	Cause     Cause   `json:"cause,omitempty"`
	TechCause int     `json:"tech_cause,omitempty"`
	Soft      bool    `json:"soft,omitempty"`
	Channel   Channel `json:"channel"`
}

// Dial reports the progress of dialing Peer. DialStatus is "", RINGING, ANSWER, BUSY,
// ...; a timed-out or failed dial may send no final status, so take the
// outcome from ChannelDestroyed.
type Dial struct {
	EventBase
	Caller     *Channel `json:"caller,omitempty"`
	Peer       Channel  `json:"peer"`
	Forwarded  *Channel `json:"forwarded,omitempty"`
	Forward    string   `json:"forward"`
	DialString string   `json:"dialstring"`
	DialStatus string   `json:"dialstatus"`
}

// ChannelEnteredBridge is sent when a channel joins a bridge.
type ChannelEnteredBridge struct {
	EventBase
	Bridge  Bridge  `json:"bridge"`
	Channel Channel `json:"channel"`
}

// ChannelLeftBridge is sent when a channel leaves a bridge.
type ChannelLeftBridge struct {
	EventBase
	Bridge  Bridge  `json:"bridge"`
	Channel Channel `json:"channel"`
}

// BridgeCreated is sent when a bridge is created.
type BridgeCreated struct {
	EventBase
	Bridge Bridge `json:"bridge"`
}

// BridgeDestroyed is sent when a bridge is destroyed.
type BridgeDestroyed struct {
	EventBase
	Bridge Bridge `json:"bridge"`
}

// PlaybackStarted is sent when a playback begins.
type PlaybackStarted struct {
	EventBase
	Playback Playback `json:"playback"`
}

// PlaybackFinished is sent when a playback ends (State done or failed).
type PlaybackFinished struct {
	EventBase
	Playback Playback `json:"playback"`
}

// RecordingStarted is sent when a recording begins.
type RecordingStarted struct {
	EventBase
	Recording LiveRecording `json:"recording"`
}

// RecordingFinished is sent when a recording ends and its file is stored.
type RecordingFinished struct {
	EventBase
	Recording LiveRecording `json:"recording"`
}

// RecordingFailed is sent when a recording fails; Recording.Cause tells why.
type RecordingFailed struct {
	EventBase
	Recording LiveRecording `json:"recording"`
}

// ChannelVarset is sent when a variable is set; Channel is nil for a global
// variable.
type ChannelVarset struct {
	EventBase
	Variable string   `json:"variable"`
	Value    string   `json:"value"`
	Channel  *Channel `json:"channel,omitempty"`
}

// ChannelDtmfReceived is sent when a channel receives a DTMF digit.
type ChannelDtmfReceived struct {
	EventBase
	Digit      string  `json:"digit"`
	DurationMs int     `json:"duration_ms"`
	Channel    Channel `json:"channel"`
}

// ChannelConnectedLine is sent when a channel's connected line changes.
type ChannelConnectedLine struct {
	EventBase
	Channel Channel `json:"channel"`
}

// ChannelCallerId is sent when a channel's caller ID changes.
type ChannelCallerId struct {
	EventBase
	CallerPresentation    int     `json:"caller_presentation"`
	CallerPresentationTxt string  `json:"caller_presentation_txt"`
	Channel               Channel `json:"channel"`
}

// ApplicationReplaced is sent when another connection takes over the
// application name; this connection receives nothing more.
type ApplicationReplaced struct {
	EventBase
}

// Unknown is an event of a type without a struct of its own (e.g.
// ChannelDialplan, RESTResponse).
type Unknown struct {
	EventBase
	Raw json.RawMessage // the whole event
}

// DecodeEvent decodes one event message as sent on the WebSocket.
func DecodeEvent(data []byte) (Event, error) {
	var base EventBase
	if err := json.Unmarshal(data, &base); err != nil {
		return nil, fmt.Errorf("ari: decode event: %w", err)
	}
	if base.Type == "" {
		return nil, errors.New("ari: decode event: no type")
	}
	ev := newEvent(base.Type)
	if ev == nil {
		return &Unknown{EventBase: base, Raw: bytes.Clone(data)}, nil
	}
	if err := json.Unmarshal(data, ev); err != nil {
		return nil, fmt.Errorf("ari: decode %s event: %w", base.Type, err)
	}
	return ev, nil
}

// newEvent returns a zero event of the given type, or nil if it has no
// struct.
func newEvent(typ string) Event {
	switch typ {
	case "StasisStart":
		return &StasisStart{}
	case "StasisEnd":
		return &StasisEnd{}
	case "ChannelStateChange":
		return &ChannelStateChange{}
	case "ChannelDestroyed":
		return &ChannelDestroyed{}
	case "ChannelHangupRequest":
		return &ChannelHangupRequest{}
	case "Dial":
		return &Dial{}
	case "ChannelEnteredBridge":
		return &ChannelEnteredBridge{}
	case "ChannelLeftBridge":
		return &ChannelLeftBridge{}
	case "BridgeCreated":
		return &BridgeCreated{}
	case "BridgeDestroyed":
		return &BridgeDestroyed{}
	case "PlaybackStarted":
		return &PlaybackStarted{}
	case "PlaybackFinished":
		return &PlaybackFinished{}
	case "RecordingStarted":
		return &RecordingStarted{}
	case "RecordingFinished":
		return &RecordingFinished{}
	case "RecordingFailed":
		return &RecordingFailed{}
	case "ChannelVarset":
		return &ChannelVarset{}
	case "ChannelDtmfReceived":
		return &ChannelDtmfReceived{}
	case "ChannelConnectedLine":
		return &ChannelConnectedLine{}
	case "ChannelCallerId":
		return &ChannelCallerId{}
	case "ApplicationReplaced":
		return &ApplicationReplaced{}
	case "TextMessageReceived":
		return &TextMessageReceived{}
	}
	return nil
}
