package arisim

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// DTMF, as Asterisk 22 handles it:
//
//   - Digits a channel's far party sends (RFC 4733 on the trunks) are read by
//     the channel and published as ChannelDtmfReceived when each digit ends
//     (stasis_channels.c dtmf_end_to_json: "digit", "duration_ms",
//     "channel"; no event for a digit's start). They travel in the media
//     stream, so a caller's phone can send them only once it has Asterisk's
//     SDP: after answer or early media (183, e.g. a play before answer),
//     never while the call only rings.
//   - POST /channels/{id}/dtmf plays digits to the far party
//     (stasis_app_control_dtmf, ast_dtmf_stream); dtmf_end_to_json drops
//     sent digits, so the application gets no event for them.
//   - Neither stops a playback on the channel: the application does.

// validDTMF are the digits a far party can send (RFC 4733 events 0-15).
const validDTMF = "0123456789*#ABCD"

// SendDTMF plays the channel's far party pressing keys: each digit of digits
// (0-9, A-D, * and #) is held for Options.DTMFDuration, with gap between
// two digits, and reaches the application as one ChannelDtmfReceived when
// the digit ends, with duration_ms the time held. Times are scaled by
// Options.TimeScale; duration_ms is not. The channel must be in Stasis and
// have media: answered, or early media on an inbound call (ErrInvalidState
// otherwise). Digits still to come when the channel is hung up are lost.
// SendDTMF returns at once.
func (s *Sim) SendDTMF(channelID, digits string, gap time.Duration) error {
	digits = strings.ToUpper(digits)
	if digits == "" {
		return fmt.Errorf("arisim: send DTMF to %s: no digits", channelID)
	}
	for _, d := range digits {
		if !strings.ContainsRune(validDTMF, d) {
			return fmt.Errorf("arisim: send DTMF to %s: %q is not a DTMF digit", channelID, d)
		}
	}
	if gap < 0 {
		gap = 0
	}
	s.mu.Lock()
	defer s.unlockNotify()
	if s.closed {
		return ErrClosed
	}
	ch := s.channels[channelID]
	if ch == nil {
		return fmt.Errorf("arisim: send DTMF to %s: %w", channelID, ErrChannelNotFound)
	}
	if ch.stasisApp == "" {
		return fmt.Errorf("arisim: send DTMF to %s: not in Stasis: %w", channelID, ErrInvalidState)
	}
	if ch.state != stateUp && !(ch.dir == dirInbound && ch.earlyMedia) {
		return fmt.Errorf("arisim: send DTMF to %s: no media yet (state %s): %w", channelID, ch.state, ErrInvalidState)
	}
	s.pressKeys(ch, digits, s.opts.DTMFDuration, gap, s.opts.DTMFDuration)
	return nil
}

// pressKeys reports digits[0] after wait, then the rest one after the other,
// each timer set by the previous one so that timers firing close together
// cannot reorder them.
func (s *Sim) pressKeys(ch *channel, digits string, held, gap, wait time.Duration) {
	s.afterCh(ch, wait, func() {
		ch.dtmfReceived += digits[:1]
		d := digits[:1]
		s.emit(s.chanApps(ch), &evDtmf{Type: "ChannelDtmfReceived", Timestamp: s.ts(), Digit: d,
			DurationMs: int(held / time.Millisecond), Channel: s.snap(ch)})
		if s.opts.DTMFEndOnly {
			// The core's emulated end of the same key, reported at once.
			s.emit(s.chanApps(ch), &evDtmf{Type: "ChannelDtmfReceived", Timestamp: s.ts(), Digit: d,
				DurationMs: int(held / time.Millisecond), Channel: s.snap(ch)})
		}
		if len(digits) > 1 {
			s.pressKeys(ch, digits[1:], held, gap, gap+held)
		}
	})
}

// sendDTMF is POST /channels/{id}/dtmf (ast_ari_channels_send_dtmf): 400
// without dtmf (checked first), 404 / 409 from find_control, 412 for an
// outbound leg not answered yet. The digits reach the far party over time
// as ast_dtmf_stream plays them: before, then each digit for duration and
// a pause of between ("w" waits 500 ms, "W" 1 s, "f" flashes; other
// characters are skipped). No event reports them.
func (s *Sim) sendDTMF(r *http.Request, p *params) *reply {
	if _, ok := p.values["dtmf"]; !ok {
		return errReply(http.StatusBadRequest, "DTMF is required")
	}
	ch, rep := s.controlInValidState(r.PathValue("channelId"))
	if rep != nil {
		return rep
	}
	ms := func(name string, def int) time.Duration {
		n := p.integer(name, def)
		if n < 0 {
			n = 0
		}
		return time.Duration(n) * time.Millisecond
	}
	between, duration := ms("between", 100), ms("duration", 100)
	if duration == 0 {
		duration = 100 * time.Millisecond // ast_senddigit_external's default
	}
	// Each digit's end is a step after the pause before it; the steps run
	// one after the other, as ast_dtmf_stream does.
	type step struct {
		after time.Duration
		digit string
	}
	var steps []step
	pause := ms("before", 0)
	for _, c := range p.str("dtmf") {
		switch {
		case c == 'w':
			pause += 500 * time.Millisecond
		case c == 'W':
			pause += time.Second
		case c == 'f' || c == 'F':
			pause += between
		case strings.ContainsRune(validDTMF, c) || strings.ContainsRune("abcd", c):
			steps = append(steps, step{pause + duration, strings.ToUpper(string(c))})
			pause = between
		}
	}
	var run func(i int)
	run = func(i int) {
		if i == len(steps) {
			return
		}
		s.afterCh(ch, steps[i].after, func() {
			if ch.state == stateUp || ch.earlyMedia { // else no media carries it
				ch.dtmfSent += steps[i].digit
			}
			run(i + 1)
		})
	}
	run(0)
	return noContent()
}
