package call

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/privnum/privnum/ari"
	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/cdr"
	"github.com/privnum/privnum/e164"
)

// Extension entry (AXE).
//
// A call whose route is binding.Collect is answered and hears the prompt;
// the caller keys the extension (ChannelDtmfReceived). Entry ends at "#",
// when the route's Digits digits are in, or when no digit came within
// Config.DigitTimeout (Config.FirstDigitTimeout while the prompt still
// plays: the first digit has the prompt's length and then DigitTimeout).
// Digits count from the answer on, whether they come before, during or
// after the prompt, and the first one stops the prompt; "*" starts the
// entry over. A complete entry is resolved (ExtensionRouter); a right
// extension dials its party with caller ID X while the caller hears a
// ringing tone (the caller is answered: ringing the channel would do
// nothing); a wrong or missing one is answered with the invalid prompt and
// the prompt again, up to Config.ExtensionTries tries, then the final
// announcement and a hang-up (record: rejected, bad_extension or
// no_extension). Everything lives on the call's owner; the timer is
// c.after's.

// ExtensionRouter resolves the extension a caller keyed on an AXE number.
// *binding.Service implements it; a Router without it has such calls
// refused as with no binding.
type ExtensionRouter interface {
	ResolveExtension(ctx context.Context, x, caller, ext string) (binding.Route, error)
}

// reasonNoExtension is the record reason of an AXE call whose caller
// keyed no extension on the last try (a text message to an AXE number
// from someone not bound on it, too: it cannot carry one).
const reasonNoExtension = "no_extension"

// ivr is the extension entry of a call, owned by the call's owner.
type ivr struct {
	digits int    // how many digits make an extension
	buf    string // digits keyed in this try
	tries  int    // tries that ended (wrong or missing)
	timer  *time.Timer
	// prompt is the id of the current prompt playback; promptUp tells it
	// may still play (requested and not finished or stopped); stopWanted
	// that a digit came while the play request was in flight.
	prompt     string
	promptUp   bool
	requesting bool
	stopWanted bool
	resolving  bool
	// last and lastAt are the last digit taken and when it came (see
	// dtmf: Asterisk's second report of one key).
	last   string
	lastAt time.Time
}

// echoMargin is how far apart, by Asterisk's timestamps (millisecond
// resolution), two reports of one digit may be and still be one key.
const echoMargin = 2 * time.Millisecond

// collect answers the call and starts extension entry.
func (c *call) collect(r binding.Route) {
	if _, ok := c.a.router.(ExtensionRouter); !ok {
		c.reject(binding.Route{Action: binding.Reject, Reason: binding.ReasonNoBinding, X: r.X, Caller: r.Caller, Mode: r.Mode})
		return
	}
	c.phase, c.route = collecting, r
	if r.X != "" {
		c.x = r.X
	}
	d := r.Digits
	if d <= 0 {
		d = 4
	}
	c.ivr = &ivr{digits: d}
	c.playPrompt(true, mediaList(c.a.cfg.Announcements.ExtensionPrompt))
}

// mediaList splits a comma-separated list of media URIs.
func mediaList(s string) []string {
	var out []string
	for _, m := range strings.Split(s, ",") {
		if m = strings.TrimSpace(m); m != "" {
			out = append(out, m)
		}
	}
	return out
}

// playPrompt plays media to the caller as the try's prompt (answering
// the caller first on the first try), and arms the first-digit timer.
func (c *call) playPrompt(answer bool, media []string) {
	v := c.ivr
	v.buf = ""
	v.prompt = c.playbackID("ivr" + strconv.Itoa(v.tries+1))
	v.promptUp, v.requesting, v.stopWanted = true, true, false
	c.arm(c.a.cfg.FirstDigitTimeout)
	in, pb := c.inbound, v.prompt
	c.async(func(ctx context.Context) error {
		if answer {
			if err := c.a.sw.Answer(ctx, in); err != nil {
				return fmt.Errorf("answer: %w", err)
			}
		}
		_, err := c.a.sw.Play(ctx, in, pb, media...)
		return err
	}, func(err error) {
		if v.prompt != pb {
			return
		}
		v.requesting = false
		switch {
		case err != nil && answer && !gone(err):
			c.a.log.Warn("answering with the extension prompt failed; hanging up", "call", c.id, "err", err)
			c.teardown(endBy{by: "system", cause: ari.CauseNormalClearing})
		case err != nil && !gone(err):
			c.a.log.Warn("extension prompt failed", "call", c.id, "err", err)
			v.promptUp = false
		case err != nil:
			v.promptUp = false
		case v.stopWanted:
			c.stopPrompt()
		}
	})
}

// arm (re)starts the entry timer.
func (c *call) arm(d time.Duration) {
	v := c.ivr
	if v.timer != nil {
		v.timer.Stop()
	}
	v.timer = c.after(d, func() {
		if c.phase != collecting || c.ivr != v || v.resolving {
			return
		}
		c.enter()
	})
}

// promptFinished notes that a prompt playback ended: the caller has
// DigitTimeout for the next digit.
func (c *call) promptFinished(id string) {
	v := c.ivr
	if v == nil || c.phase != collecting || id != v.prompt || !v.promptUp {
		return
	}
	v.promptUp = false
	if !v.resolving {
		c.arm(c.a.cfg.DigitTimeout)
	}
}

// stopPrompt stops the prompt playing (or still to start).
func (c *call) stopPrompt() {
	v := c.ivr
	if !v.promptUp {
		return
	}
	if v.requesting {
		v.stopWanted = true
		return
	}
	v.promptUp = false
	pb := v.prompt
	c.async(func(ctx context.Context) error { return c.a.sw.StopPlayback(ctx, pb) }, func(err error) {
		if err != nil && !gone(err) {
			c.a.log.Warn("stopping the extension prompt failed", "call", c.id, "err", err)
		}
	})
}

// dtmf takes a digit the caller keyed, as Asterisk stamped its report.
// Asterisk 22 reports a key that came with no begin (SIP INFO, an RFC 4733
// event whose first packets were lost) twice, in the same instant: the end
// it received and the end it emulates (seen on 22.10.1 with INFO: the two
// reports under a millisecond apart, same digit, same duration). The second
// is dropped; a real second press of a key comes at least a key's
// duration and Asterisk's minimum gap (45 ms) later.
func (c *call) dtmf(d string, at time.Time) {
	v := c.ivr
	if v == nil || c.phase != collecting || v.resolving {
		return
	}
	if gap := at.Sub(v.lastAt); d == v.last && gap >= -echoMargin && gap <= echoMargin {
		v.last = "" // one echo per key
		return
	}
	v.last, v.lastAt = d, at
	c.stopPrompt()
	switch {
	case d == "#":
		c.enter()
		return
	case d == "*":
		v.buf = ""
	case len(d) == 1 && d[0] >= '0' && d[0] <= '9':
		v.buf += d
		if len(v.buf) >= v.digits {
			c.enter()
			return
		}
	}
	c.arm(c.a.cfg.DigitTimeout)
}

// enter ends the try: a complete entry is resolved, anything else is a
// wrong try.
func (c *call) enter() {
	v := c.ivr
	if v.timer != nil {
		v.timer.Stop()
	}
	c.stopPrompt()
	ext := v.buf
	if len(ext) != v.digits {
		c.wrongTry(ext == "", binding.Route{})
		return
	}
	v.resolving = true
	er := c.a.router.(ExtensionRouter)
	x, caller := c.x, c.caller
	var r binding.Route
	c.async(func(ctx context.Context) error {
		var err error
		r, err = er.ResolveExtension(ctx, x, caller, ext)
		return err
	}, func(err error) {
		v.resolving = false
		switch {
		case c.phase != collecting:
			return
		case errors.Is(err, e164.ErrInvalid):
			r = binding.Route{Action: binding.Reject, Reason: binding.ReasonBadExtension}
		case err != nil:
			c.resolveFailed("resolve extension failed", err)
			return
		}
		if r.Action != binding.Connect {
			c.wrongTry(false, r)
			return
		}
		c.a.log.Debug("extension entered", "call", c.id, "x", c.x, "extension", ext)
		c.dialSecond(r)
	})
}

// wrongTry answers a wrong or missing extension: the invalid prompt and
// the prompt again, or after the last try the final announcement.
func (c *call) wrongTry(missing bool, r binding.Route) {
	v := c.ivr
	v.tries++
	c.a.log.Debug("extension not accepted", "call", c.id, "x", c.x, "entered", v.buf, "digits", v.digits, "reason", r.Reason, "try", v.tries)
	if r.Extension != "" {
		c.route.Extension = r.Extension
	}
	ann := c.a.cfg.Announcements
	if v.tries < c.a.cfg.ExtensionTries {
		c.playPrompt(false, append(mediaList(ann.ExtensionInvalid), mediaList(ann.ExtensionPrompt)...))
		return
	}
	reason := binding.ReasonBadExtension
	if missing {
		reason = reasonNoExtension
	}
	c.announce(cdr.Rejected, reason, mediaList(ann.ExtensionFailed))
}

// ringback plays a ringing tone to a caller who was answered for extension
// entry, while the extension's party is dialed. calleeAnswered waits for
// the play request to return, then stops the tone before bridging.
func (c *call) ringback() {
	in, pb := c.inbound, c.playbackID("ringback")
	c.ringState = ringRequested
	c.async(func(ctx context.Context) error {
		_, err := c.a.sw.Play(ctx, in, pb, "tone:ring")
		return err
	}, func(err error) {
		if err != nil && !gone(err) {
			c.a.log.Warn("ringback tone failed", "call", c.id, "err", err)
		}
		c.ringState = ringPlaying
		if err != nil {
			c.ringState = ringNone
		}
		if c.bridgeWaiting {
			c.bridgeWaiting = false
			c.calleeAnswered()
		}
	})
}

// ringState tracks the ringing tone of an answered caller.
type ringState int

const (
	ringNone      ringState = iota
	ringRequested           // the play request is in flight
	ringPlaying             // playing until stopped
)
