package ari

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// RecordRequest describes a recording. Zero fields are left out.
type RecordRequest struct {
	// Name of the recording, unique among live recordings. Required.
	Name string
	// Format is the file format, e.g. "wav". Required.
	Format string
	// MaxDurationSeconds stops the recording after this long; 0 means no
	// limit.
	MaxDurationSeconds int
	// IfExists says what to do when the file exists: fail (default),
	// overwrite or append.
	IfExists string
	// Beep plays a beep before recording.
	Beep bool
	// TerminateOn is the DTMF key that stops recording: none (default), any,
	// *, #.
	TerminateOn string
}

// RecordBridge starts recording a bridge. Start it only once the call is
// answered: the recorder joins the bridge as a third party and turns it into
// softmix.
func (c *Client) RecordBridge(ctx context.Context, bridgeID string, r RecordRequest) (LiveRecording, error) {
	q := url.Values{"name": {r.Name}, "format": {r.Format}}
	if r.MaxDurationSeconds > 0 {
		q.Set("maxDurationSeconds", strconv.Itoa(r.MaxDurationSeconds))
	}
	setNonEmpty(q, "ifExists", r.IfExists)
	if r.Beep {
		q.Set("beep", "true")
	}
	setNonEmpty(q, "terminateOn", r.TerminateOn)
	var rec LiveRecording
	err := c.do(ctx, http.MethodPost, bridgePath(bridgeID, "/record"), q, nil, &rec)
	return rec, err
}

// StopRecording stops a live recording and keeps the file.
func (c *Client) StopRecording(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodPost, "/recordings/live/"+url.PathEscape(name)+"/stop", nil, nil, nil)
}
