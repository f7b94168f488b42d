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
