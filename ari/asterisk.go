package ari

import (
	"context"
	"net/http"
	"net/url"
)

// Info returns the Asterisk version, build, configuration and start time.
func (c *Client) Info(ctx context.Context) (AsteriskInfo, error) {
	var info AsteriskInfo
	err := c.do(ctx, http.MethodGet, "/asterisk/info", nil, nil, &info)
	return info, err
}

// Application returns what a Stasis application holds: after a reconnect,
// ChannelIDs and BridgeIDs tell which calls are still in it.
func (c *Client) Application(ctx context.Context, name string) (Application, error) {
	var app Application
	err := c.do(ctx, http.MethodGet, "/applications/"+url.PathEscape(name), nil, nil, &app)
	return app, err
}

// SetEventFilter sets which event types Asterisk sends application app:
// none of disallowed, and when allowed is not empty only those (PUT
// /applications/{app}/eventFilter). Both empty resets the filter. Events
// an application never reads cost the switch their delivery and the
// application their decoding.
func (c *Client) SetEventFilter(ctx context.Context, app string, allowed, disallowed []string) (Application, error) {
	type typ struct {
		Type string `json:"type"`
	}
	list := func(types []string) []typ {
		out := make([]typ, len(types))
		for i, t := range types {
			out[i] = typ{t}
		}
		return out
	}
	body := map[string][]typ{}
	if len(allowed) > 0 || len(disallowed) > 0 {
		body["allowed"], body["disallowed"] = list(allowed), list(disallowed)
	}
	var a Application
	err := c.do(ctx, http.MethodPut, "/applications/"+url.PathEscape(app)+"/eventFilter", nil, body, &a)
	return a, err
}

// Ping checks that Asterisk answers ARI requests (GET /asterisk/ping).
func (c *Client) Ping(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/asterisk/ping", nil, nil, nil)
}

// Warm makes n pings at once, so that n keep-alive REST connections to
// Asterisk are open (the default client keeps them for 10 s after their
// last use): the first requests of the next calls then do not wait for a
// TCP connection and an Asterisk HTTP session to be set up. It also keeps
// the connections StartOriginate sends on ready: it pings over each, and
// opens more when there are fewer than two. Call it more often than every
// 10 s to keep them. It returns the first error.
func (c *Client) Warm(ctx context.Context, n int) error {
	errs := make(chan error, n)
	for range n {
		go func() { errs <- c.Ping(ctx) }()
	}
	var first error
	for range n {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	if err := c.warmDirect(ctx); err != nil && first == nil {
		first = err
	}
	return first
}
