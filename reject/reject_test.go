package reject_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/privnum/privnum/reject"
)

var errKind = errors.New("invalid thing request")

func TestFieldError(t *testing.T) {
	cause := errors.New("invalid phone number")
	for _, tt := range []struct {
		name string
		err  error
		msg  string
		is   []error
	}{
		{"reason", &reject.FieldError{Field: "iccid", Reason: "bad check digit", Err: errKind},
			"invalid thing request: iccid: bad check digit", []error{errKind}},
		{"no reason", &reject.FieldError{Field: "scanner", Err: errKind}, "invalid thing request: scanner", []error{errKind}},
		{"no kind", &reject.FieldError{Field: "code", Reason: "required"}, "code: required", nil},
		{"with cause", fmt.Errorf("%w: %w", &reject.FieldError{Field: "number", Err: errKind}, cause),
			"invalid thing request: number: invalid phone number", []error{errKind, cause}},
		{"wrapped", fmt.Errorf("mint: %w", &reject.FieldError{Field: "label", Reason: "too long", Err: errKind}),
			"mint: invalid thing request: label: too long", []error{errKind}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.msg {
				t.Errorf("Error() = %q, want %q", got, tt.msg)
			}
			for _, want := range tt.is {
				if !errors.Is(tt.err, want) {
					t.Errorf("errors.Is(%v, %v) = false", tt.err, want)
				}
			}
			var fe *reject.FieldError
			if !errors.As(tt.err, &fe) || fe.Field == "" {
				t.Errorf("errors.As: %v", fe)
			}
		})
	}
}

func TestRateLimitError(t *testing.T) {
	errOwn := errors.New("too many scans")
	for _, tt := range []struct {
		name string
		err  *reject.RateLimitError
		msg  string
		is   error
	}{
		{"own sentinel", &reject.RateLimitError{Limit: "scanner", RetryAfter: 1500 * time.Millisecond, Err: errOwn},
			"too many scans: per-scanner limit; retry in 2s", errOwn},
		{"default sentinel", &reject.RateLimitError{Limit: "number", RetryAfter: time.Minute},
			"rate limited: per-number limit; retry in 1m0s", reject.ErrRateLimited},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := fmt.Errorf("start: %w", tt.err)
			if got := tt.err.Error(); got != tt.msg {
				t.Errorf("Error() = %q, want %q", got, tt.msg)
			}
			var rl *reject.RateLimitError
			if !errors.Is(err, tt.is) || !errors.As(err, &rl) || rl != tt.err {
				t.Errorf("%v: Is %v, As %v", err, errors.Is(err, tt.is), rl)
			}
		})
	}
}
