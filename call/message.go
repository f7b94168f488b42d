package call

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/privnum/privnum/ari"
	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/cdr"
	"github.com/privnum/privnum/e164"
)

// MessageKind is the call-record kind of a relayed text message.
const MessageKind = "sms"

// Messages configures the relay of text messages (SIP MESSAGE) through
// virtual numbers: a bound party texting X reaches the other party from X,
// as a call would.
type Messages struct {
	// ToTemplate is where a message to the hidden party goes, as ARI's
	// sendMessage takes it, with the placeholders of EndpointTemplate:
	// e.g. "pjsip:carrier/sip:{number}@203.0.113.5". Empty: no relay.
	ToTemplate string
	// FromTemplate is the sender shown, with the virtual number as
	// {number}: e.g. "<sip:{number}@198.51.100.7>".
	FromTemplate string
	// Limiter, when set, bounds how many messages one sender may have
	// relayed.
	Limiter Limiter
}

// Limiter says whether a sender may send one more message now.
type Limiter interface {
	Allow(ctx context.Context, key string) (bool, error)
}

// relaying tells whether text messages are relayed: they come from the
// trunks the App subscribes to (Config.Trunks).
func (m Messages) relaying() bool { return m.ToTemplate != "" }

// messageChannel handles a text message that entered Stasis as a
// Message/ pseudo-channel: it is no call, so it is sent on in the dialplan
// (which ends it) and nothing is recorded.
func (a *App) messageChannel(ch ari.Channel) {
	a.log.Warn("a text message entered the Stasis application as a channel: give the trunk endpoint message_context=privnum-messages (asterisk-conf/privnum-pjsip.conf)",
		"channel", ch.ID, "x", ch.Dialplan.Exten)
	a.spawn(func() {
		err := a.teardownReq(func(ctx context.Context) error { return a.sw.Continue(ctx, ch.ID) })
		if err != nil && !gone(err) {
			a.hangup(ch.ID, "normal")
		}
	})
}

// relayMessage sends a text message from a bound party on to the other
// party, from the virtual number, as a call would be connected. Bodies
// never reach the log.
func (a *App) relayMessage(e *ari.TextMessageReceived) {
	ctx, cancel := context.WithTimeout(a.ctx, 10*time.Second)
	defer cancel()
	sender, x := uriUser(e.Message.From), uriUser(e.Message.To)
	rec := cdr.Record{
		CallID: "msg-" + newID(), Kind: MessageKind, X: x, Caller: e164.Mask(sender),
		Start: time.Now().UTC(), Length: len([]rune(e.Message.Body)), HangupBy: "system",
	}
	done := func(d cdr.Disposition, reason string) {
		rec.Disposition, rec.Reason, rec.End = d, reason, time.Now().UTC()
		if err := a.cdrs.Add(a.ctx, rec); err != nil {
			a.log.Error("message record lost", "message", rec.CallID, "err", err)
		}
		a.log.Info("text message", "message", rec.CallID, "x", rec.X, "from", rec.Caller, "to", rec.Callee,
			"disposition", d, "reason", reason, "length", rec.Length)
	}
	if !a.cfg.Messages.relaying() {
		done(cdr.Rejected, "relay_off")
		return
	}
	if l := a.cfg.Messages.Limiter; l != nil {
		ok, err := l.Allow(ctx, sender)
		if err != nil {
			a.log.Warn("message rate limit unavailable", "err", err)
			done(cdr.Failed, "internal_error")
			return
		}
		if !ok {
			a.log.Warn("text message refused: sender over its rate limit", "from", rec.Caller, "x", x)
			done(cdr.Rejected, "rate_limited")
			return
		}
	}
	r, err := a.router.Resolve(ctx, x, sender)
	switch {
	case errors.Is(err, e164.ErrInvalid):
		done(cdr.Rejected, binding.ReasonNoBinding)
		return
	case err != nil:
		a.log.Error("resolve failed", "message", rec.CallID, "x", x, "from", rec.Caller, "err", err)
		done(cdr.Failed, "internal_error")
		return
	case r.Action == binding.Collect:
		// A stranger texting an AXE number: a message carries no
		// extension, so it reaches nobody.
		rec.Mode = string(r.Mode)
		a.log.Debug("text message to an extension number from someone not bound on it: not relayed", "message", rec.CallID, "x", x, "from", rec.Caller)
		done(cdr.Rejected, reasonNoExtension)
		return
	case r.Action != binding.Connect:
		rec.Mode = string(r.Mode)
		done(cdr.Rejected, r.Reason)
		return
	}
	rec.X, rec.BindingID, rec.Mode, rec.Extension, rec.Callee = r.X, r.BindingID, string(r.Mode), r.Extension, e164.Mask(r.Target)
	from := a.cfg.Messages.FromTemplate
	if from == "" {
		from = "sip:{number}"
	}
	err = a.sw.SendMessage(ctx, expand(a.cfg.Messages.ToTemplate, r.Target), expand(from, callerID(r)), e.Message.Body)
	if err != nil {
		a.log.Warn("text message not relayed", "message", rec.CallID, "to", rec.Callee, "err", err)
		done(cdr.Failed, "send_failed")
		return
	}
	done(cdr.Relayed, "")
}

// uriUser returns the user part of a SIP or technology URI such as
// "<sip:13800000001@192.0.2.1>;tag=x" or "pjsip:17000000000@192.0.2.10".
func uriUser(uri string) string {
	s := strings.TrimSpace(uri)
	if i := strings.IndexByte(s, '<'); i >= 0 {
		s = s[i+1:]
		if j := strings.IndexByte(s, '>'); j >= 0 {
			s = s[:j]
		}
	}
	if _, rest, ok := strings.Cut(s, ":"); ok {
		s = rest
	}
	if i := strings.IndexAny(s, "@;"); i >= 0 {
		s = s[:i]
	}
	return s
}
