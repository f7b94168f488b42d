package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/callback"
	"github.com/privnum/privnum/device"
	"github.com/privnum/privnum/e164"
	"github.com/privnum/privnum/group"
	"github.com/privnum/privnum/order"
	"github.com/privnum/privnum/pool"
	"github.com/privnum/privnum/qr"
	"github.com/privnum/privnum/recording"
	"github.com/privnum/privnum/reject"
	"github.com/privnum/privnum/verify"
	"github.com/privnum/privnum/webhook"
)

// ProblemTypeBase prefixes the type URI of every privnum problem. The
// types are tag URIs (RFC 4151), which RFC 9457 suggests for types that are
// identifiers rather than documentation links; openapi.json lists them.
const ProblemTypeBase = "tag:privnum.github.io,2026:problem/"

// Problem is an RFC 9457 problem details object, the body of every error
// response (Content-Type application/problem+json). Besides the standard
// members it carries extension members that name what was wrong.
type Problem struct {
	// Type identifies the kind of problem: ProblemTypeBase + a slug such as
	// "pool-exhausted", or "about:blank" when the status code says it all.
	Type string `json:"type"`
	// Title is the same for every problem of a type.
	Title string `json:"title"`
	// Status is the HTTP status code.
	Status int `json:"status"`
	// Detail explains this occurrence.
	Detail string `json:"detail,omitempty"`
	// Instance identifies this occurrence: "urn:uuid:" + the request id,
	// which is also in the X-Request-Id header and the access log.
	Instance string `json:"instance,omitempty"`
	// Field names the offending request field ("a", "numbers[2].number",
	// "ttl_seconds") or path parameter.
	Field string `json:"field,omitempty"`
	// Input is the offending value as it was sent (for an invalid number).
	Input string `json:"input,omitempty"`
	// Number is the normalised (E.164) number the problem is about.
	Number string `json:"number,omitempty"`
	// Scope is the API key scope the operation needs (403), or whose
	// rate limit refused the request (429 with limit "api_key").
	Scope string `json:"scope,omitempty"`
	// MaxBytes is the request body limit (413).
	MaxBytes int64 `json:"max_bytes,omitempty"`
	// Reason says why a device is not trusted for a number (403
	// device-rejected): one of the Reason constants.
	Reason string `json:"reason,omitempty"`
	// AttemptsLeft is how many checks a verification has left (422
	// verification-mismatch); 0 means it is now locked.
	AttemptsLeft *int `json:"attempts_left,omitempty"`
	// Limit names the rate limit that refused the request (429), e.g.
	// "number", "prefix" or "api_key" for verifications, "api_key" for
	// the API key's own limit on the scope named by Scope.
	Limit string `json:"limit,omitempty"`
}

// Error makes a Problem an error, so handlers can return one.
func (p *Problem) Error() string {
	if p.Detail == "" {
		return p.Title
	}
	return p.Title + ": " + p.Detail
}

// kind is a problem type: its slug, title and status.
type kind struct {
	slug   string
	title  string
	status int
}

// Problem types. The slugs are part of the API: openapi.json lists them.
var (
	kMalformed        = kind{"malformed-request", "Malformed request", http.StatusBadRequest}
	kUnknownField     = kind{"unknown-field", "Unknown field in request body", http.StatusBadRequest}
	kBadIdemKey       = kind{"invalid-idempotency-key", "Invalid Idempotency-Key header", http.StatusBadRequest}
	kUnauthorized     = kind{"unauthorized", "Missing or invalid API key", http.StatusUnauthorized}
	kForbidden        = kind{"insufficient-scope", "API key lacks the required scope", http.StatusForbidden}
	kNumberNotFound   = kind{"number-not-found", "Number not in the pool", http.StatusNotFound}
	kBindingMissing   = kind{"binding-not-found", "Binding not found", http.StatusNotFound}
	kOrderNotFound    = kind{"order-not-found", "Order not found", http.StatusNotFound}
	kWebhookMissing   = kind{"webhook-not-found", "Webhook not found", http.StatusNotFound}
	kQRNotFound       = kind{"qr-code-not-found", "QR code not found", http.StatusNotFound}
	kCallbackMissing  = kind{"callback-not-found", "Callback not found", http.StatusNotFound}
	kCodeUnknown      = kind{"callback-code-unknown", "Unknown identification code", http.StatusNotFound}
	kVerifMissing     = kind{"verification-not-found", "Verification not found", http.StatusNotFound}
	kRecordingMissing = kind{"recording-not-found", "Recording not found", http.StatusNotFound}
	kGroupMissing     = kind{"group-not-found", "Group not found", http.StatusNotFound}
	kGroupExists      = kind{"group-exists", "A group with this name exists", http.StatusConflict}
	kGroupInUse       = kind{"group-in-use", "Bindings use the group", http.StatusConflict}
	kDeviceRejected   = kind{"device-rejected", "Device not trusted for this number", http.StatusForbidden}
	kPoolExhausted    = kind{"pool-exhausted", "Pool exhausted", http.StatusConflict}
	kNumberUnavail    = kind{"number-unavailable", "Virtual number unavailable", http.StatusConflict}
	kPartyBusy        = kind{"party-busy", "Party already bound on this virtual number", http.StatusConflict}
	kBindingEnded     = kind{"binding-ended", "Binding has ended", http.StatusConflict}
	kOrderConflict    = kind{"order-conflict", "Order exists with different parties", http.StatusConflict}
	kOrderClosed      = kind{"order-closed", "Order is closed", http.StatusConflict}
	kVerifFailed      = kind{"verification-failed", "Verification failed: the flash call was not placed", http.StatusConflict}
	kQRRevoked        = kind{"qr-code-revoked", "QR code revoked", http.StatusGone}
	kVerifExpired     = kind{"verification-expired", "Verification expired", http.StatusGone}
	kVerifLocked      = kind{"verification-locked", "Verification locked: no checks left", http.StatusLocked}
	kVerifMismatch    = kind{"verification-mismatch", "Reported number does not match", http.StatusUnprocessableEntity}
	kRateLimited      = kind{"rate-limited", "Too many requests", http.StatusTooManyRequests}
	kQRMode           = kind{"qr-mode-unavailable", "QR code mode not available", http.StatusNotImplemented}
	kIdemInFlight     = kind{"idempotency-key-in-use", "A request with this Idempotency-Key is in progress", http.StatusConflict}
	kTooLarge         = kind{"body-too-large", "Request body too large", http.StatusRequestEntityTooLarge}
	kMediaType        = kind{"unsupported-media-type", "Unsupported Content-Type", http.StatusUnsupportedMediaType}
	kInvalidNumber    = kind{"invalid-number", "Invalid phone number", http.StatusUnprocessableEntity}
	kInvalidField     = kind{"invalid-field", "Invalid field value", http.StatusUnprocessableEntity}
	kIdemReused       = kind{"idempotency-key-reused", "Idempotency-Key reused with a different request", http.StatusUnprocessableEntity}
	kInternal         = kind{"internal-error", "Internal server error", http.StatusInternalServerError}
	kUnavailable      = kind{"unavailable", "Service unavailable", http.StatusServiceUnavailable}
	// kNotFound and kMethod are plain HTTP problems: type about:blank.
	kNotFound = kind{"", "Not Found", http.StatusNotFound}
	kMethod   = kind{"", "Method Not Allowed", http.StatusMethodNotAllowed}
)

// problem returns a Problem of kind k.
func problem(k kind, detail string) *Problem {
	t := "about:blank"
	if k.slug != "" {
		t = ProblemTypeBase + k.slug
	}
	return &Problem{Type: t, Title: k.title, Status: k.status, Detail: detail}
}

// fieldProblem is a Problem about one request field.
func fieldProblem(k kind, field, detail string) *Problem {
	p := problem(k, detail)
	p.Field = field
	return p
}

// problemFor maps an error from a service to its Problem: this function
// and kindOf's table are the one place that does. Errors it does not know
// are internal: their text goes to the log, not the client.
//
//   - a *Problem is itself;
//   - an API key's rate limit (keyRateLimited) is 429 rate-limited with
//     limit "api_key" and the scope;
//   - a *reject.RateLimitError is 429 rate-limited (Retry-After is set by
//     problemOutput); for verifications, the limit member names the limit,
//     the verify service's requester being the API key ("api_key");
//   - a device service refusal (device.ErrNotRegistered, ...) is 403
//     device-rejected with its reason member;
//   - the services' sentinels map through kindOf;
//   - a *reject.FieldError names the field, and is 422 invalid-field when
//     no sentinel in its chain says more.
func problemFor(err error) (p *Problem, internal bool) {
	if errors.As(err, &p) {
		return p, false
	}
	var kl *keyRateLimited
	if errors.As(err, &kl) {
		p = problem(kRateLimited, fmt.Sprintf("too many requests with this API key for scope %s (limit %s); retry in %s",
			kl.scope, kl.limit, kl.err.RetryAfter.Round(time.Second)))
		p.Limit = "api_key"
		p.Scope = string(kl.scope)
		return p, false
	}
	var rl *reject.RateLimitError
	if errors.As(err, &rl) {
		if !errors.Is(err, verify.ErrRateLimited) {
			return problem(kRateLimited, "too many requests; retry in "+rl.RetryAfter.Round(time.Second).String()), false
		}
		p = problem(kRateLimited, "")
		p.Limit = rl.Limit
		if rl.Limit == string(verify.ScopeRequester) {
			p.Limit = "api_key" // the API's requester is the API key
		}
		p.Detail = fmt.Sprintf("too many requests (per-%s limit); retry in %s", p.Limit, rl.RetryAfter.Round(time.Second))
		return p, false
	}
	var dr *deviceRejected
	if errors.As(err, &dr) {
		p = problem(kDeviceRejected, deviceDetails[dr.reason])
		p.Reason = dr.reason
		return p, false
	}
	if reason, ok := deviceReason(err); ok {
		p = problem(kDeviceRejected, deviceDetails[reason])
		p.Reason = reason
		return p, false
	}
	var fe *reject.FieldError
	isField := errors.As(err, &fe)
	k, ok := kindOf(err)
	switch {
	case !ok && isField:
		k = kInvalidField
	case !ok && errors.Is(err, context.DeadlineExceeded):
		return problem(kUnavailable, "the request timed out"), true
	case !ok:
		return problem(kInternal, "the server could not complete the request; the instance member identifies it in the server log"), true
	}
	p = problem(k, err.Error())
	switch {
	case isField:
		p.Field = fe.Field
	case errors.Is(err, pool.ErrInvalidArea):
		p.Field = "area"
	case errors.Is(err, order.ErrInvalidID):
		p.Field = "id"
	case errors.Is(err, binding.ErrNumberUnavailable):
		p.Field = "x"
	}
	return p, false
}

// kindOf classifies the services' sentinel errors; the first that err
// matches decides.
func kindOf(err error) (kind, bool) {
	for _, m := range []struct {
		err error
		k   kind
	}{
		{e164.ErrInvalid, kInvalidNumber},
		{pool.ErrInvalidArea, kInvalidField},
		{pool.ErrNotFound, kNumberNotFound},
		{binding.ErrPoolExhausted, kPoolExhausted},
		{binding.ErrNotFound, kBindingMissing},
		{binding.ErrNumberUnavailable, kNumberUnavail},
		{binding.ErrPartyBusy, kPartyBusy},
		{binding.ErrEnded, kBindingEnded},
		{binding.ErrInvalid, kInvalidField},
		{group.ErrNotFound, kGroupMissing},
		{group.ErrExists, kGroupExists},
		{group.ErrInUse, kGroupInUse},
		{group.ErrInvalid, kInvalidField},
		{order.ErrNotFound, kOrderNotFound},
		{order.ErrConflict, kOrderConflict},
		{order.ErrClosed, kOrderClosed},
		{order.ErrInvalidID, kInvalidField},
		{webhook.ErrNotFound, kWebhookMissing},
		{webhook.ErrInvalid, kInvalidField},
		{qr.ErrNotFound, kQRNotFound},
		{qr.ErrRevoked, kQRRevoked},
		{qr.ErrInvalid, kInvalidField},
		{qr.ErrCallbackUnavailable, kQRMode},
		{callback.ErrNotFound, kCallbackMissing},
		{callback.ErrUnknownCode, kCodeUnknown},
		{callback.ErrInvalid, kInvalidField},
		// A check that uses up the last attempt is a mismatch first.
		{verify.ErrMismatch, kVerifMismatch},
		{verify.ErrNotFound, kVerifMissing},
		{verify.ErrExpired, kVerifExpired},
		{verify.ErrLocked, kVerifLocked},
		{verify.ErrFailed, kVerifFailed},
		{verify.ErrPoolExhausted, kPoolExhausted},
		{verify.ErrInvalid, kInvalidField},
		{device.ErrInvalid, kInvalidField},
		{recording.ErrNoRecording, kRecordingMissing},
		{recording.ErrPruned, kRecordingMissing},
	} {
		if errors.Is(err, m.err) {
			return m.k, true
		}
	}
	return kind{}, false
}

// deviceReason is the reason member for a device service's refusal.
func deviceReason(err error) (string, bool) {
	for _, m := range []struct {
		err    error
		reason string
	}{
		{device.ErrNotVerified, ReasonNotVerified},
		{device.ErrNotRegistered, ReasonNotRegistered},
		{device.ErrTokenInvalid, ReasonTokenInvalid},
		{device.ErrSIMChanged, ReasonSIMChanged},
		{device.ErrChipChanged, ReasonChipChanged},
		{device.ErrReverify, ReasonReverifyRequired},
	} {
		if errors.Is(err, m.err) {
			return m.reason, true
		}
	}
	return "", false
}
