package ari

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
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

// storedPath is the path of a stored recording; its name may hold slashes
// (subdirectories of the recording directory), each segment escaped.
func storedPath(name, suffix string) string {
	segs := strings.Split(name, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return "/recordings/stored/" + strings.Join(segs, "/") + suffix
}

// StoredRecordings lists the finished recordings Asterisk keeps.
func (c *Client) StoredRecordings(ctx context.Context) ([]StoredRecording, error) {
	var out []StoredRecording
	err := c.do(ctx, http.MethodGet, "/recordings/stored", nil, nil, &out)
	return out, err
}

// StoredRecording returns a stored recording; ErrNotFound when there is
// none of that name.
func (c *Client) StoredRecording(ctx context.Context, name string) (StoredRecording, error) {
	var out StoredRecording
	err := c.do(ctx, http.MethodGet, storedPath(name, ""), nil, nil, &out)
	return out, err
}

// DeleteStoredRecording deletes a stored recording and its file;
// ErrNotFound when there is none of that name.
func (c *Client) DeleteStoredRecording(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, storedPath(name, ""), nil, nil, nil)
}

// StoredRecordingFile opens the file of a stored recording (GET
// /recordings/stored/{name}/file). The caller reads the body and closes
// it. ErrNotFound when there is no such recording; a *Error with status 403
// when Asterisk cannot open the file. Only ctx bounds the download (not the
// client's request timeout).
func (c *Client) StoredRecordingFile(ctx context.Context, name string) (io.ReadCloser, error) {
	const method = http.MethodGet
	path := storedPath(name, "/file")
	if name == "" || strings.Contains(path, "//") {
		return nil, fmt.Errorf("ari: %s %s: empty id", method, path)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		return nil, fmt.Errorf("ari: %s %s: %w", method, path, err)
	}
	req.Header["Authorization"] = []string{c.auth}
	// The client's whole-request timeout would cut a long recording off
	// mid-stream: the download is bounded by ctx alone.
	dl := *c.cfg.HTTPClient
	dl.Timeout = 0
	resp, err := dl.Do(req)
	if err != nil {
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("ari: %s %s: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		return nil, newError(resp, method, path)
	}
	return resp.Body, nil
}
