package ari

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// The events every call carries are decoded without reflection.
//
// StasisStart lies between a caller's INVITE and the hidden leg's: the
// time spent decoding it is call setup. encoding/json takes about 9 µs for
// a StasisStart here (reflection over some twenty fields, two times), more
// with cold caches, when a call arrives after a quiet spell. scanEvent
// reads StasisStart, StasisEnd, ChannelStateChange, ChannelDestroyed and
// ChannelHangupRequest as Asterisk writes them, in one pass, in a fraction
// of that.
//
// It reads only what it can read exactly as json.Unmarshal would: plain
// strings (no escapes, valid UTF-8), integers, true and false, and the
// members of the structs by their exact names. Anything else (an escape,
// null, a number with a fraction, a member named like a field but in
// another case, which encoding/json would match) makes it give up, and
// DecodeEvent hands the message to json.Unmarshal, which decodes it or
// reports the error. Members it does not know are skipped once
// json.Valid accepts them. FuzzScanEvent checks that what scanEvent
// accepts, json.Unmarshal decodes alike.

// scanEvent decodes data, an event of type typ, without reflection. ok is
// false when typ is not one it reads or the message is not plain (see
// above); the caller then unmarshals it.
func scanEvent(typ string, data []byte) (ev Event, ok bool) {
	s := scanner{data: data}
	switch typ {
	case "StasisStart":
		e := &StasisStart{}
		ev, ok = e, s.object(func(k []byte) bool {
			switch string(k) {
			case "args":
				return s.strings(&e.Args)
			case "channel":
				return s.channel(&e.Channel)
			case "replace_channel":
				if e.ReplaceChannel == nil {
					e.ReplaceChannel = &Channel{}
				}
				return s.channel(e.ReplaceChannel)
			}
			return s.base(k, &e.EventBase, stasisStartMembers)
		})
	case "StasisEnd", "ChannelStateChange":
		var b *EventBase
		var c *Channel
		if typ == "StasisEnd" {
			e := &StasisEnd{}
			ev, b, c = e, &e.EventBase, &e.Channel
		} else {
			e := &ChannelStateChange{}
			ev, b, c = e, &e.EventBase, &e.Channel
		}
		ok = s.object(func(k []byte) bool {
			if string(k) == "channel" {
				return s.channel(c)
			}
			return s.base(k, b, channelEventMembers)
		})
	case "ChannelDestroyed":
		e := &ChannelDestroyed{}
		ev, ok = e, s.object(func(k []byte) bool {
			switch string(k) {
			case "cause":
				return s.int((*int)(&e.Cause))
			case "cause_txt":
				return s.str(&e.CauseTxt)
			case "tech_cause":
				return s.int(&e.TechCause)
			case "channel":
				return s.channel(&e.Channel)
			}
			return s.base(k, &e.EventBase, channelDestroyedMembers)
		})
	case "ChannelHangupRequest":
		e := &ChannelHangupRequest{}
		ev, ok = e, s.object(func(k []byte) bool {
			switch string(k) {
			case "cause":
				return s.int((*int)(&e.Cause))
			case "tech_cause":
				return s.int(&e.TechCause)
			case "soft":
				return s.bool(&e.Soft)
			case "channel":
				return s.channel(&e.Channel)
			}
			return s.base(k, &e.EventBase, hangupRequestMembers)
		})
	default:
		return nil, false
	}
	if !ok || !s.end() {
		return nil, false
	}
	return ev, true
}

// The members of each struct scanEvent reads, separated by spaces, for
// telling a member it skips from one encoding/json would match in another
// case.
const (
	baseMembers             = "type application timestamp asterisk_id"
	stasisStartMembers      = "args channel replace_channel " + baseMembers
	channelEventMembers     = "channel " + baseMembers
	channelDestroyedMembers = "cause cause_txt tech_cause channel " + baseMembers
	hangupRequestMembers    = "cause tech_cause soft channel " + baseMembers
	channelMembers          = "id name state protocol_id caller connected accountcode dialplan creationtime language channelvars"
	callerIDMembers         = "name number"
	dialplanMembers         = "context exten priority app_name app_data"
)

// maxSkipDepth bounds the nesting of a member scanEvent skips: json.Valid
// counts a value's depth from the value, json.Unmarshal (which refuses
// more than 10000) from the message. Asterisk nests two or three deep.
const maxSkipDepth = 64

// scanner reads one JSON message from data[i:].
type scanner struct {
	data []byte
	i    int
}

// space skips white space.
func (s *scanner) space() { s.i = skipSpace(s.data, s.i) }

// byte consumes c, after white space, if it comes next.
func (s *scanner) byte(c byte) bool {
	s.space()
	if s.i < len(s.data) && s.data[s.i] == c {
		s.i++
		return true
	}
	return false
}

// end reports whether nothing but white space is left.
func (s *scanner) end() bool {
	s.space()
	return s.i == len(s.data)
}

// plain consumes a plain string (no escape, no control character, valid
// UTF-8) and returns its bytes, which are then its value, with its quotes
// (raw).
func (s *scanner) plain() (v, raw []byte, ok bool) {
	s.space()
	if s.i >= len(s.data) || s.data[s.i] != '"' {
		return nil, nil, false
	}
	start, ascii := s.i+1, true
	for j := start; j < len(s.data); j++ {
		switch c := s.data[j]; {
		case c == '"':
			v := s.data[start:j]
			if !ascii && !utf8.Valid(v) {
				return nil, nil, false
			}
			raw := s.data[start-1 : j+1]
			s.i = j + 1
			return v, raw, true
		case c == '\\' || c < 0x20:
			return nil, nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, nil, false
}

// str consumes a plain string into dst.
func (s *scanner) str(dst *string) bool {
	v, _, ok := s.plain()
	if ok {
		*dst = intern(v)
	}
	return ok
}

// int consumes an integer of at most nine digits (an int on any platform)
// into dst. A fraction, an exponent or more digits are left to
// encoding/json.
func (s *scanner) int(dst *int) bool {
	s.space()
	j, neg := s.i, false
	if j < len(s.data) && s.data[j] == '-' {
		j, neg = j+1, true
	}
	first, n := j, 0
	for ; j < len(s.data) && '0' <= s.data[j] && s.data[j] <= '9'; j++ {
		n = n*10 + int(s.data[j]-'0')
	}
	digits := j - first
	if digits == 0 || digits > 9 || (s.data[first] == '0' && digits > 1) {
		return false
	}
	if j < len(s.data) && (s.data[j] == '.' || s.data[j] == 'e' || s.data[j] == 'E') {
		return false
	}
	if neg {
		n = -n
	}
	s.i, *dst = j, n
	return true
}

// bool consumes true or false into dst.
func (s *scanner) bool(dst *bool) bool {
	s.space()
	switch {
	case bytes.HasPrefix(s.data[s.i:], []byte("true")):
		s.i, *dst = s.i+4, true
	case bytes.HasPrefix(s.data[s.i:], []byte("false")):
		s.i, *dst = s.i+5, false
	default:
		return false
	}
	return true
}

// object consumes an object, calling member with each key once the
// scanner is at its value; member consumes the value and reports whether
// it could.
func (s *scanner) object(member func(key []byte) bool) bool {
	if !s.byte('{') {
		return false
	}
	if s.byte('}') {
		return true
	}
	for {
		k, _, ok := s.plain()
		if !ok || !s.byte(':') || !member(k) {
			return false
		}
		if !s.byte(',') {
			return s.byte('}')
		}
	}
}

// skip consumes the value of member k, which is none of known: only if no
// member of known matches k in another case (encoding/json would decode
// it into that field) and the value is valid JSON nested no deeper than
// maxSkipDepth.
func (s *scanner) skip(k []byte, known string) bool {
	for known != "" {
		var name string
		name, known, _ = strings.Cut(known, " ")
		if bytes.EqualFold(k, []byte(name)) {
			return false
		}
	}
	s.space()
	end := skipValue(s.data, s.i)
	if end < 0 || nesting(s.data[s.i:end]) > maxSkipDepth || !json.Valid(s.data[s.i:end]) {
		return false
	}
	s.i = end
	return true
}

// nesting returns how deep objects and arrays nest in the JSON value v,
// minding strings.
func nesting(v []byte) int {
	depth, deepest := 0, 0
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '"':
			if i = skipString(v, i); i < 0 {
				return deepest
			}
			i--
		case '{', '[':
			depth++
			deepest = max(deepest, depth)
		case '}', ']':
			depth--
		}
	}
	return deepest
}

// base consumes the member k of an event's EventBase, or skips it.
func (s *scanner) base(k []byte, b *EventBase, known string) bool {
	switch string(k) {
	case "type":
		return s.str(&b.Type)
	case "application":
		return s.str(&b.Application)
	case "timestamp":
		return s.time(&b.Timestamp)
	case "asterisk_id":
		return s.str(&b.AsteriskID)
	}
	return s.skip(k, known)
}

// time consumes a plain string into t as Time.UnmarshalJSON reads it.
func (s *scanner) time(t *Time) bool {
	_, raw, ok := s.plain()
	return ok && t.UnmarshalJSON(raw) == nil
}

// strings consumes an array of plain strings into dst.
func (s *scanner) strings(dst *[]string) bool {
	if !s.byte('[') {
		return false
	}
	out := []string{} // encoding/json's too: [] is empty, not nil
	if s.byte(']') {
		*dst = out
		return true
	}
	for {
		var v string
		if !s.str(&v) {
			return false
		}
		out = append(out, v)
		if !s.byte(',') {
			break
		}
	}
	*dst = out
	return s.byte(']')
}

// channel consumes a Channel into c.
func (s *scanner) channel(c *Channel) bool {
	return s.object(func(k []byte) bool {
		switch string(k) {
		case "id":
			return s.str(&c.ID)
		case "name":
			return s.str(&c.Name)
		case "state":
			return s.str(&c.State)
		case "protocol_id":
			return s.str(&c.ProtocolID)
		case "caller":
			return s.callerID(&c.Caller)
		case "connected":
			return s.callerID(&c.Connected)
		case "accountcode":
			return s.str(&c.Accountcode)
		case "dialplan":
			return s.dialplan(&c.Dialplan)
		case "creationtime":
			return s.time(&c.CreationTime)
		case "language":
			return s.str(&c.Language)
		case "channelvars":
			if c.ChannelVars == nil {
				c.ChannelVars = map[string]string{}
			}
			m := c.ChannelVars
			return s.object(func(k []byte) bool {
				var v string
				if !s.str(&v) {
					return false
				}
				m[string(k)] = v
				return true
			})
		}
		return s.skip(k, channelMembers)
	})
}

// callerID consumes a CallerID into c.
func (s *scanner) callerID(c *CallerID) bool {
	return s.object(func(k []byte) bool {
		switch string(k) {
		case "name":
			return s.str(&c.Name)
		case "number":
			return s.str(&c.Number)
		}
		return s.skip(k, callerIDMembers)
	})
}

// dialplan consumes a Dialplan into d.
func (s *scanner) dialplan(d *Dialplan) bool {
	return s.object(func(k []byte) bool {
		switch string(k) {
		case "context":
			return s.str(&d.Context)
		case "exten":
			return s.str(&d.Exten)
		case "priority":
			var n int
			if !s.int(&n) {
				return false
			}
			d.Priority = int64(n)
			return true
		case "app_name":
			return s.str(&d.AppName)
		case "app_data":
			return s.str(&d.AppData)
		}
		return s.skip(k, dialplanMembers)
	})
}
