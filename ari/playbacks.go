package ari

import (
	"context"
	"net/http"
	"net/url"
	"strings"
)

// Play starts playing media on a channel, one URI after the other (e.g.
// "sound:ss-noservice", "tone:ring"). On an unanswered channel it sends
// early media (SIP 183), not an answer. Each media starts with a
// PlaybackStarted; between two media comes a PlaybackContinuing, and
// PlaybackFinished once at the end. A playback queued behind another on
// the channel starts when that one ends. DTMF received meanwhile does not
// stop it: call StopPlayback.
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

// StopPlayback stops a playback: PlaybackFinished follows with State done
// and the media that was playing, and the rest of its media list is
// skipped. A playback still queued is cancelled; it reports
// PlaybackFinished when its turn comes. A playback already finished yields
// ErrNotFound.
func (c *Client) StopPlayback(ctx context.Context, playbackID string) error {
	return c.do(ctx, http.MethodDelete, "/playbacks/"+url.PathEscape(playbackID), nil, nil, nil)
}
