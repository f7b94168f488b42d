package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/privnum/privnum/apikey"
	"github.com/privnum/privnum/recording"
)

// fakeRecordings holds recordings by call id; a call it does not hold has
// none.
type fakeRecordings map[string]struct{ format, data string }

func (f fakeRecordings) Open(_ context.Context, callID string) (recording.File, error) {
	r, ok := f[callID]
	if !ok {
		return recording.File{}, fmt.Errorf("call %s: %w", callID, recording.ErrNoRecording)
	}
	return recording.File{Name: "privnum-" + callID, Format: r.format, ContentType: recording.ContentType(r.format),
		Body: io.NopCloser(strings.NewReader(r.data))}, nil
}

// TestCallRecording: the recording streams with its format's content
// type, scope calls; a call without one is 404 recording-not-found.
func TestCallRecording(t *testing.T) {
	e := newEnv(t)
	r := e.do(call{method: "GET", path: "/v1/calls/c-rec/recording", key: e.keys[apikey.Calls]})
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "audio/wav" || string(r.body) != "RIFF\x00\x00\x00\x00WAVE" {
		t.Errorf("recording: %d %q %q", r.status, r.header.Get("Content-Type"), r.body)
	}
	r = e.do(call{method: "GET", path: "/v1/calls/c-none/recording", key: e.keys[apikey.Calls]})
	if p := r.problem(t); r.status != http.StatusNotFound || p.Type != ProblemTypeBase+"recording-not-found" {
		t.Errorf("no recording: %d %+v", r.status, p)
	}
	r = e.do(call{method: "GET", path: "/v1/calls/c-rec/recording", key: e.keys[apikey.Bindings]})
	if p := r.problem(t); r.status != http.StatusForbidden || p.Scope != "calls" {
		t.Errorf("wrong scope: %d %+v", r.status, p)
	}
}
