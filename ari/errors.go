package ari

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Sentinel errors matched by *Error through errors.Is, by HTTP status.
var (
	// ErrBadRequest matches 400: a missing or invalid parameter, or a channel
	// given to a bridge that does not exist.
	ErrBadRequest = errors.New("ari: bad request")
	// ErrNotFound matches 404: the channel, bridge, playback or recording
	// does not exist (any more). Hanging up or destroying something already
	// gone yields ErrNotFound; callers may treat that as done.
	ErrNotFound = errors.New("ari: not found")
	// ErrConflict matches 409: a duplicate id, or a channel in the wrong
	// state (not in Stasis, not Down for dial, bridged for channel recording).
	ErrConflict = errors.New("ari: conflict")
	// ErrPreconditionFailed matches 412: e.g. answer or ring on an outbound
	// channel that has not been answered yet.
	ErrPreconditionFailed = errors.New("ari: precondition failed")
)

// Error is a non-2xx answer from Asterisk.
type Error struct {
	Status  int    // HTTP status code
	Method  string // request method
	Path    string // request path below /ari, without the query
	Message string // Asterisk's explanation, e.g. "Channel not found"
}

// Error reports the request, the status and Asterisk's message.
func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("ari: %s %s: %d %s", e.Method, e.Path, e.Status, msg)
}

// Is reports whether target is the sentinel error for e's status.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrBadRequest:
		return e.Status == http.StatusBadRequest
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrConflict:
		return e.Status == http.StatusConflict
	case ErrPreconditionFailed:
		return e.Status == http.StatusPreconditionFailed
	}
	return false
}

// newError reads resp's body into an *Error. Asterisk answers
// {"message": "..."}, except for some failures such as
// {"error": "Allocation failed"}.
func newError(resp *http.Response, method, path string) *Error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	var body struct {
		Message string `json:"message"`
		Error   string `json:"error"`
	}
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &body) == nil {
		msg = body.Message
		if msg == "" {
			msg = body.Error
		}
	}
	return &Error{Status: resp.StatusCode, Method: method, Path: path, Message: msg}
}
