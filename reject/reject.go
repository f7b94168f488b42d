// Package reject provides the errors a service returns when it refuses a
// request for a reason its caller can act on, whichever service refused
// it: a request field that is invalid (*FieldError) and a rate limit that
// tripped (*RateLimitError).
//
// The types carry what a caller needs to answer without reading error
// text: the HTTP API turns a *FieldError into a problem naming the field
// and a *RateLimitError into 429 with Retry-After; the scan page shows a
// retry time. Each wraps the refusing service's own sentinel (Err), so
// errors.Is(err, qr.ErrInvalid) and the like keep working.
//
// Neither type carries the value that was refused: services must not echo
// numbers, device identifiers or tokens into errors.
package reject

import (
	"errors"
	"time"
)

// ErrRateLimited is the sentinel a *RateLimitError wraps when its service
// has none of its own.
var ErrRateLimited = errors.New("rate limited")

// FieldError says that one field of a request is invalid.
type FieldError struct {
	// Field names the field as the service's caller knows it ("number",
	// "iccid", "scanner"), in snake_case.
	Field string
	// Reason says what is wrong with it ("want 14 to 15 digits"). It may
	// quote a harmless value (a mode name), never a number, a device
	// identifier or a token. Empty when Err says it all.
	Reason string
	// Err is the kind of invalid: the service's sentinel (verify.ErrInvalid,
	// device.ErrInvalid, e164.ErrInvalid...). Wrap the FieldError when a
	// deeper cause should stay in the chain too:
	// fmt.Errorf("%w: %w", &FieldError{...}, cause).
	Err error
}

// Error reads "<Err>: <Field>: <Reason>", leaving out what is empty.
func (e *FieldError) Error() string {
	s := e.Field
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	if e.Err != nil {
		s = e.Err.Error() + ": " + s
	}
	return s
}

// Unwrap returns Err.
func (e *FieldError) Unwrap() error { return e.Err }

// RateLimitError says that a rate limit refused a request.
type RateLimitError struct {
	// Limit names the limit that tripped, as its service documents it:
	// "number", "prefix", "requester" (verify), "token", "scanner" (qr).
	Limit string
	// RetryAfter is how long until the limit lets a request through.
	RetryAfter time.Duration
	// Err is the service's sentinel (verify.ErrRateLimited,
	// qr.ErrRateLimited); nil means ErrRateLimited.
	Err error
}

// Error names the limit and says when to retry.
func (e *RateLimitError) Error() string {
	return e.Unwrap().Error() + ": per-" + e.Limit + " limit; retry in " + e.RetryAfter.Round(time.Second).String()
}

// Unwrap returns Err, or ErrRateLimited if Err is nil.
func (e *RateLimitError) Unwrap() error {
	if e.Err == nil {
		return ErrRateLimited
	}
	return e.Err
}
