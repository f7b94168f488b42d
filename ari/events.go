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

// ChannelCreated is sent when a channel is created. An application sees
// it for the channels it originates, and for every channel of an endpoint
// it subscribed to (POST /applications/{app}/subscription?eventSource=
// endpoint:PJSIP/trunk-in), before the channel reaches Stasis: Channel
// then holds the caller and the dialed extension.
type ChannelCreated struct {
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

// PlaybackContinuing is sent when a playback of several media finishes one
// of them and goes on with the next (Playback.NextMediaURI). Each media
// then starts with its own PlaybackStarted; PlaybackFinished comes once, at
// the end of the list or when the playback is stopped.
type PlaybackContinuing struct {
	EventBase
	Playback Playback `json:"playback"`
}

// PlaybackFinished is sent when a playback ends (State done or failed):
// after its last media, when stopped (State done; MediaURI is the media
// that was playing) or when its channel hangs up.
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

// ChannelDtmfReceived is sent when a DTMF digit received on a channel ends
// (there is no event for its start): Digit is one of 0-9, A-D, * and #, and
// DurationMs how long it was held. Asterisk reports digits the channel's
// far party sends (RFC 4733, SIP INFO), only once media flows (after answer
// or early media), and never digits sent to the channel with SendDTMF. A
// playback on the channel goes on while digits arrive: stop it with
// StopPlayback.
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

// DecodeEvent decodes one event message as sent on the WebSocket. The
// message is decoded once: its type is read by a scan that stops at the
// "type" member (Asterisk writes it first) and the message is read into
// that type's struct: by scanEvent for the events every call carries, by
// json.Unmarshal for the others and for what scanEvent does not read
// plainly. What the type scan cannot read plainly (no "type"
// member spelt so, an escaped or non-string value, malformed JSON) takes
// the slow path of decoding the envelope first, which also produces the
// errors.
func DecodeEvent(data []byte) (Event, error) {
	typ, ok := scanType(data)
	if !ok || typ == "" {
		return decodeEventSlow(data)
	}
	if ev, ok := scanEvent(typ, data); ok && ev.EventType() == typ {
		return ev, nil
	}
	ev := newEvent(typ)
	if ev == nil {
		u := &Unknown{}
		if err := json.Unmarshal(data, &u.EventBase); err != nil {
			return nil, fmt.Errorf("ari: decode event: %w", err)
		}
		if u.Type != typ {
			return decodeEventSlow(data) // "type" given twice
		}
		u.Raw = bytes.Clone(data)
		return u, nil
	}
	if err := json.Unmarshal(data, ev); err != nil {
		return nil, fmt.Errorf("ari: decode %s event: %w", typ, err)
	}
	if ev.EventType() != typ {
		return decodeEventSlow(data) // "type" given twice
	}
	return ev, nil
}

// decodeEventSlow decodes the envelope to learn the type, then the message
// into the type's struct.
func decodeEventSlow(data []byte) (Event, error) {
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

// scanType returns the value of the top-level "type" member of a JSON
// object without decoding the rest: it skips the members before it. ok is
// false when the scan cannot tell (no such member, a value that is not a
// plain string, malformed input); the message is fully validated by the
// unmarshal that follows in any case.
func scanType(data []byte) (typ string, ok bool) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return "", false
	}
	i++
	for {
		i = skipSpace(data, i)
		if i >= len(data) || data[i] != '"' {
			return "", false
		}
		keyStart := i + 1
		if i = skipString(data, i); i < 0 {
			return "", false
		}
		key := data[keyStart : i-1]
		i = skipSpace(data, i)
		if i >= len(data) || data[i] != ':' {
			return "", false
		}
		i = skipSpace(data, i+1)
		if string(key) == "type" {
			if i >= len(data) || data[i] != '"' {
				return "", false
			}
			end := skipString(data, i)
			if end < 0 {
				return "", false
			}
			v := data[i+1 : end-1]
			if bytes.IndexByte(v, '\\') >= 0 {
				return "", false
			}
			return intern(v), true
		}
		if i = skipValue(data, i); i < 0 {
			return "", false
		}
		i = skipSpace(data, i)
		if i >= len(data) || data[i] != ',' {
			return "", false
		}
		i++
	}
}

// intern returns b as a string without allocating for the event types
// this package knows and the values every channel repeats.
func intern(b []byte) string {
	switch string(b) { // no allocation: the compiler compares in place
	case "StasisStart":
		return "StasisStart"
	case "StasisEnd":
		return "StasisEnd"
	case "ChannelStateChange":
		return "ChannelStateChange"
	case "ChannelDestroyed":
		return "ChannelDestroyed"
	case "ChannelCreated":
		return "ChannelCreated"
	case "ChannelHangupRequest":
		return "ChannelHangupRequest"
	case "Dial":
		return "Dial"
	case "ChannelVarset":
		return "ChannelVarset"
	case "ChannelDtmfReceived":
		return "ChannelDtmfReceived"
	case "":
		return ""
	case "Ring":
		return "Ring"
	case "Ringing":
		return "Ringing"
	case "Up":
		return "Up"
	case "Down":
		return "Down"
	case "en":
		return "en"
	case "Stasis":
		return "Stasis"
	}
	return string(b)
}

func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index after the string starting at data[i] (a
// quote), or -1.
func skipString(data []byte, i int) int {
	for i++; i < len(data); i++ {
		switch data[i] {
		case '"':
			return i + 1
		case '\\':
			i++
		}
	}
	return -1
}

// skipValue returns the index after the JSON value starting at data[i], or
// -1. Objects and arrays are skipped by depth, minding strings; literals and
// numbers up to the next delimiter. Validity is left to the unmarshal.
func skipValue(data []byte, i int) int {
	if i >= len(data) {
		return -1
	}
	switch data[i] {
	case '"':
		return skipString(data, i)
	case '{', '[':
		depth := 0
		for ; i < len(data); i++ {
			switch data[i] {
			case '"':
				if i = skipString(data, i); i < 0 {
					return -1
				}
				i--
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return -1
	}
	for ; i < len(data); i++ {
		switch data[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
	}
	return i
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
	case "ChannelCreated":
		return &ChannelCreated{}
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
	case "PlaybackContinuing":
		return &PlaybackContinuing{}
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
