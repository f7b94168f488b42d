package ari

import (
	"context"
	"net/http"
	"net/url"
	"strings"
)

// CreateBridge creates a bridge with the given id. types is a
// comma-separated list such as "mixing" (empty: Asterisk's default); name is
// optional.
func (c *Client) CreateBridge(ctx context.Context, bridgeID, types, name string) (Bridge, error) {
	q := url.Values{}
	setNonEmpty(q, "type", types)
	setNonEmpty(q, "name", name)
	var b Bridge
	err := c.do(ctx, http.MethodPost, bridgePath(bridgeID, ""), q, nil, &b)
	return b, err
}

// AddChannelOptions tunes AddChannel.
type AddChannelOptions struct {
	// InhibitConnectedLineUpdates stops the bridge from giving each side the
	// other's caller ID as connected line (sent as SIP UPDATE/re-INVITE and
	// P-Asserted-Identity). Set it whenever identities must stay hidden.
	InhibitConnectedLineUpdates bool
	// Role is the channels' role in the bridge; empty means none.
	Role string
}

// AddChannel adds channels to a bridge. An unknown bridge yields
// ErrNotFound, an unknown channel ErrBadRequest.
func (c *Client) AddChannel(ctx context.Context, bridgeID string, opts AddChannelOptions, channelIDs ...string) error {
	q := url.Values{"channel": {strings.Join(channelIDs, ",")}}
	setNonEmpty(q, "role", opts.Role)
	if opts.InhibitConnectedLineUpdates {
		q.Set("inhibitConnectedLineUpdates", "true")
	}
	return c.do(ctx, http.MethodPost, bridgePath(bridgeID, "/addChannel"), q, nil, nil)
}

// RemoveChannel removes channels from a bridge.
func (c *Client) RemoveChannel(ctx context.Context, bridgeID string, channelIDs ...string) error {
	q := url.Values{"channel": {strings.Join(channelIDs, ",")}}
	return c.do(ctx, http.MethodPost, bridgePath(bridgeID, "/removeChannel"), q, nil, nil)
}

// DestroyBridge destroys a bridge; its channels stay up. A bridge already
// gone yields ErrNotFound.
func (c *Client) DestroyBridge(ctx context.Context, bridgeID string) error {
	return c.do(ctx, http.MethodDelete, bridgePath(bridgeID, ""), nil, nil, nil)
}

// GetBridge returns a bridge's current snapshot.
func (c *Client) GetBridge(ctx context.Context, bridgeID string) (Bridge, error) {
	var b Bridge
	err := c.do(ctx, http.MethodGet, bridgePath(bridgeID, ""), nil, nil, &b)
	return b, err
}

// bridgePath is the path of a bridge's resource with suffix appended.
func bridgePath(bridgeID, suffix string) string {
	return "/bridges/" + url.PathEscape(bridgeID) + suffix
}
