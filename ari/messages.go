package ari

import (
	"context"
	"net/http"
	"net/url"
)

// Endpoint is an endpoint as ARI describes it (e.g. PJSIP/trunk-in).
type Endpoint struct {
	Technology string   `json:"technology"`
	Resource   string   `json:"resource"`
	State      string   `json:"state"`
	ChannelIDs []string `json:"channel_ids"`
}

// TextMessage is a text message (a SIP MESSAGE) as ARI carries it. From and
// To are technology URIs, e.g. "<sip:13800000001@192.0.2.1>" and
// "pjsip:17000000000@192.0.2.10".
type TextMessage struct {
	From      string            `json:"from"`
	To        string            `json:"to"`
	Body      string            `json:"body"`
	Variables map[string]string `json:"variables,omitempty"`
}

// TextMessageReceived is sent when an endpoint the application is
// subscribed to receives a text message.
type TextMessageReceived struct {
	EventBase
	Endpoint Endpoint    `json:"endpoint"`
	Message  TextMessage `json:"message"`
}

// Subscribe subscribes application app to the events of eventSource (e.g.
// "endpoint:PJSIP/trunk-in", whose text messages then arrive as
// TextMessageReceived) and returns the application's new state.
func (c *Client) Subscribe(ctx context.Context, app, eventSource string) (Application, error) {
	var a Application
	err := c.do(ctx, http.MethodPost, "/applications/"+url.PathEscape(app)+"/subscription",
		url.Values{"eventSource": {eventSource}}, nil, &a)
	return a, err
}

// SendMessage sends a text message to the technology URI to (e.g.
// "pjsip:carrier/sip:+8613900000002@192.0.2.1") from the URI from. Asterisk
// accepts it for delivery (202); an unknown endpoint yields ErrNotFound.
func (c *Client) SendMessage(ctx context.Context, to, from, body string) error {
	q := url.Values{"to": {to}, "body": {body}}
	setNonEmpty(q, "from", from)
	return c.do(ctx, http.MethodPut, "/endpoints/sendMessage", q, nil, nil)
}

// Continue makes a channel leave the application and go on in the
// dialplan where Stasis() was called.
func (c *Client) Continue(ctx context.Context, channelID string) error {
	return c.do(ctx, http.MethodPost, channelPath(channelID, "/continue"), nil, nil, nil)
}
