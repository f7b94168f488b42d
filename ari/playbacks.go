package ari

import (
	"context"
	"net/http"
	"net/url"
	"strings"
)

// Play starts playing media on a channel, one URI after the other (e.g.
// "sound:ss-noservice", "tone:ring"). On an unanswered channel it sends
// early media (SIP 183), not an answer. PlaybackStarted and
// PlaybackFinished events report progress.
func (c *Client) Play(ctx context.Context, channelID, playbackID string, media ...string) (Playback, error) {
	return c.play(ctx, channelPath(channelID, "/play/"+url.PathEscape(playbackID)), media)
}

// PlayBridge starts playing media to every channel of a bridge. A third
// party in a two-party bridge turns it into softmix, which drops control
// frames.
func (c *Client) PlayBridge(ctx context.Context, bridgeID, playbackID string, media ...string) (Playback, error) {
	return c.play(ctx, bridgePath(bridgeID, "/play/"+url.PathEscape(playbackID)), media)
}

func (c *Client) play(ctx context.Context, path string, media []string) (Playback, error) {
	var p Playback
	err := c.do(ctx, http.MethodPost, path, url.Values{"media": {strings.Join(media, ",")}}, nil, &p)
	return p, err
}

// StopPlayback stops a playback. A playback already finished yields
// ErrNotFound.
func (c *Client) StopPlayback(ctx context.Context, playbackID string) error {
	return c.do(ctx, http.MethodDelete, "/playbacks/"+url.PathEscape(playbackID), nil, nil, nil)
}
