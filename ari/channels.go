package ari

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// OriginateRequest describes a channel for Originate. Zero fields are left out.
type OriginateRequest struct {
	// Endpoint to dial, e.g. "PJSIP/13900000002@carrier". Required.
	Endpoint string
	// ChannelID is the id of the new channel; set it so that its events can
	// be matched before Originate returns.
	ChannelID string
	// CallerID sets the caller ID and the connected line of the new channel,
	// e.g. `"Name" <17000000000>` or `17000000000`.
	CallerID string
	// Timeout is how long the endpoint may ring, rounded up to whole
	// seconds. Zero means Asterisk's default of 30 s, negative means no limit.
	Timeout time.Duration
	// App is the Stasis application the channel enters when answered; empty
	// means the client's Application unless Extension is set.
	App string
	// AppArgs is the comma-separated argument string of the application; it
	// arrives split in StasisStart.Args. Tag the client's own legs here.
	AppArgs string
	// Originator is the id of the channel this one is made for; it gives
	// codecs and the linked id, not identity.
	Originator string
	// Variables are set on the channel before dialing.
	Variables map[string]string
	// Context, Extension and Priority send the channel to the dialplan
	// instead of an application.
	Context   string
	Extension string
	Priority  int
}

// Originate creates a channel and dials it in the background. It returns at
// once with the channel in state Down; Dial, ChannelStateChange and
// ChannelDestroyed events follow, and StasisStart only when the endpoint
// answers.
func (c *Client) Originate(ctx context.Context, r OriginateRequest) (Channel, error) {
	var ch Channel
	err := c.do(ctx, http.MethodPost, "/channels", c.originateQuery(r), withVariables(r.Variables), &ch)
	return ch, err
}

// originateQuery is the query of r's originate request.
func (c *Client) originateQuery(r OriginateRequest) url.Values {
	q := url.Values{"endpoint": {r.Endpoint}}
	app := r.App
	if app == "" && r.Extension == "" {
		app = c.cfg.Application
	}
	setNonEmpty(q, "app", app)
	setNonEmpty(q, "appArgs", r.AppArgs)
	setNonEmpty(q, "channelId", r.ChannelID)
	setNonEmpty(q, "callerId", r.CallerID)
	setNonEmpty(q, "originator", r.Originator)
	setNonEmpty(q, "context", r.Context)
	setNonEmpty(q, "extension", r.Extension)
	if r.Priority != 0 {
		q.Set("priority", strconv.Itoa(r.Priority))
	}
	switch {
	case r.Timeout < 0:
		q.Set("timeout", "-1")
	case r.Timeout > 0:
		q.Set("timeout", strconv.Itoa(seconds(r.Timeout)))
	}
	return q
}

// CreateRequest describes a channel for CreateChannel. Zero fields are left
// out.
type CreateRequest struct {
	// Endpoint to dial later, e.g. "PJSIP/13900000002@carrier". Required.
	Endpoint string
	// App is the Stasis application the channel enters at once; empty means
	// the client's Application.
	App string
	// AppArgs is the comma-separated argument string of the application.
	AppArgs string
	// ChannelID is the id of the new channel.
	ChannelID string
	// Originator is the id of the channel this one is made for.
	Originator string
	// Variables are set on the channel. Create takes no caller ID: set the
	// identity with "CALLERID(num)" and "CONNECTEDLINE(num,i)".
	Variables map[string]string
}

// CreateChannel creates a channel without dialing it; it enters Stasis at
// once (StasisStart in state Down, possibly before this returns). Dial it
// with Dial.
func (c *Client) CreateChannel(ctx context.Context, r CreateRequest) (Channel, error) {
	app := r.App
	if app == "" {
		app = c.cfg.Application
	}
	q := url.Values{"endpoint": {r.Endpoint}, "app": {app}}
	setNonEmpty(q, "appArgs", r.AppArgs)
	setNonEmpty(q, "channelId", r.ChannelID)
	setNonEmpty(q, "originator", r.Originator)
	var ch Channel
	err := c.do(ctx, http.MethodPost, "/channels/create", q, withVariables(r.Variables), &ch)
	return ch, err
}

// Dial dials a channel made by CreateChannel, ringing for at most timeout
// (rounded up to whole seconds; it must be positive, as Asterisk would
// otherwise ring forever). The outcome arrives as events; on failure the
// cause is in ChannelDestroyed, not in a Dial event.
//
// Dial never names a caller channel: Asterisk would copy the caller's
// identity into the callee's connected line.
func (c *Client) Dial(ctx context.Context, channelID string, timeout time.Duration) error {
	path := channelPath(channelID, "/dial")
	if timeout <= 0 {
		return fmt.Errorf("ari: POST %s: timeout %v is not positive", path, timeout)
	}
	q := url.Values{"timeout": {strconv.Itoa(seconds(timeout))}}
	return c.do(ctx, http.MethodPost, path, q, nil, nil)
}

// Answer answers a channel in Stasis.
func (c *Client) Answer(ctx context.Context, channelID string) error {
	return c.do(ctx, http.MethodPost, channelPath(channelID, "/answer"), nil, nil, nil)
}

// Ring indicates ringing to an unanswered channel (SIP 180).
func (c *Client) Ring(ctx context.Context, channelID string) error {
	return c.do(ctx, http.MethodPost, channelPath(channelID, "/ring"), nil, nil, nil)
}

// RingStop stops indicating ringing.
func (c *Client) RingStop(ctx context.Context, channelID string) error {
	return c.do(ctx, http.MethodDelete, channelPath(channelID, "/ring"), nil, nil, nil)
}

// Hangup hangs up a channel. reason is one of normal, busy, congestion,
// no_answer, timeout, rejected, unallocated, normal_unspecified,
// number_incomplete, codec_mismatch, interworking, failure,
// answered_elsewhere; empty sends none. An unanswered SIP caller then gets
// e.g. 486 for busy, 480 for no_answer, 503 for congestion, 404 for
// unallocated, 403 for rejected. A channel already gone yields ErrNotFound.
func (c *Client) Hangup(ctx context.Context, channelID, reason string) error {
	q := url.Values{}
	setNonEmpty(q, "reason", reason)
	return c.do(ctx, http.MethodDelete, channelPath(channelID, ""), q, nil, nil)
}

// HangupCode hangs up a channel with a Q.850 cause code (e.g. 17 busy,
// 21 rejected). A channel already gone yields ErrNotFound.
func (c *Client) HangupCode(ctx context.Context, channelID string, code int) error {
	q := url.Values{"reason_code": {strconv.Itoa(code)}}
	return c.do(ctx, http.MethodDelete, channelPath(channelID, ""), q, nil, nil)
}

// DTMFRequest describes the digits SendDTMF sends. Zero durations leave
// Asterisk's defaults: no wait before or after, 100 ms between digits and
// 100 ms per digit.
type DTMFRequest struct {
	// Digits are sent one after the other: 0-9, A-D (or a-d), * and #; "w"
	// waits 500 ms and "W" 1 s; "f" or "F" is a hook flash. Required.
	Digits string
	// Before is the wait before the first digit.
	Before time.Duration
	// Between is the pause after each digit.
	Between time.Duration
	// Duration is how long each digit lasts.
	Duration time.Duration
	// After is the wait after the last digit.
	After time.Duration
}

// dtmfChars are the characters Asterisk's DTMF stream plays; it skips any
// other with only a warning in its log.
const dtmfChars = "0123456789*#ABCDabcdwWfF"

// SendDTMF sends DTMF digits to the far party of a channel in Stasis (e.g.
// to answer a remote IVR on an outbound leg). It returns once Asterisk has
// queued them; they take Before + len(Digits) × (Duration + Between) +
// After to play, during which the channel runs no other ARI command. No
// ChannelDtmfReceived reports them: that event is for digits the channel
// receives. Digits Asterisk would skip are refused here, as are negative
// durations; a channel not answered yet (outbound, Down or Ringing) yields
// ErrPreconditionFailed.
func (c *Client) SendDTMF(ctx context.Context, channelID string, r DTMFRequest) error {
	path := channelPath(channelID, "/dtmf")
	if r.Digits == "" {
		return fmt.Errorf("ari: POST %s: no digits", path)
	}
	for _, d := range r.Digits {
		if !strings.ContainsRune(dtmfChars, d) {
			return fmt.Errorf("ari: POST %s: %q is not a DTMF digit", path, d)
		}
	}
	q := url.Values{"dtmf": {r.Digits}}
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"before", r.Before}, {"between", r.Between}, {"duration", r.Duration}, {"after", r.After}} {
		switch {
		case f.d < 0:
			return fmt.Errorf("ari: POST %s: %s %v is negative", path, f.name, f.d)
		case f.d > 0:
			q.Set(f.name, strconv.FormatInt(f.d.Milliseconds(), 10))
		}
	}
	return c.do(ctx, http.MethodPost, path, q, nil, nil)
}

// GetChannel returns a channel's current snapshot.
func (c *Client) GetChannel(ctx context.Context, channelID string) (Channel, error) {
	var ch Channel
	err := c.do(ctx, http.MethodGet, channelPath(channelID, ""), nil, nil, &ch)
	return ch, err
}

// ListChannels returns all channels of the Asterisk instance.
func (c *Client) ListChannels(ctx context.Context) ([]Channel, error) {
	var chs []Channel
	err := c.do(ctx, http.MethodGet, "/channels", nil, nil, &chs)
	return chs, err
}

// SetVar sets a channel variable or function, e.g. "CALLERID(num)".
func (c *Client) SetVar(ctx context.Context, channelID, name, value string) error {
	q := url.Values{"variable": {name}, "value": {value}}
	return c.do(ctx, http.MethodPost, channelPath(channelID, "/variable"), q, nil, nil)
}

// GetVar returns the value of a channel variable or function.
func (c *Client) GetVar(ctx context.Context, channelID, name string) (string, error) {
	var v struct {
		Value string `json:"value"`
	}
	err := c.do(ctx, http.MethodGet, channelPath(channelID, "/variable"), url.Values{"variable": {name}}, nil, &v)
	return v.Value, err
}

// channelPath is the path of a channel's resource with suffix appended.
func channelPath(channelID, suffix string) string {
	return "/channels/" + url.PathEscape(channelID) + suffix
}

// seconds is d in whole seconds, rounded up.
func seconds(d time.Duration) int {
	return int((d + time.Second - 1) / time.Second)
}
