package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/e164"
	"github.com/privnum/privnum/order"
	"github.com/privnum/privnum/pool"
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
	// Scope is the API key scope the operation needs (403).
	Scope string `json:"scope,omitempty"`
	// MaxBytes is the request body limit (413).
	MaxBytes int64 `json:"max_bytes,omitempty"`
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
	kMalformed      = kind{"malformed-request", "Malformed request", http.StatusBadRequest}
	kUnknownField   = kind{"unknown-field", "Unknown field in request body", http.StatusBadRequest}
	kBadIdemKey     = kind{"invalid-idempotency-key", "Invalid Idempotency-Key header", http.StatusBadRequest}
	kUnauthorized   = kind{"unauthorized", "Missing or invalid API key", http.StatusUnauthorized}
	kForbidden      = kind{"insufficient-scope", "API key lacks the required scope", http.StatusForbidden}
	kNumberNotFound = kind{"number-not-found", "Number not in the pool", http.StatusNotFound}
	kBindingMissing = kind{"binding-not-found", "Binding not found", http.StatusNotFound}
	kOrderNotFound  = kind{"order-not-found", "Order not found", http.StatusNotFound}
	kWebhookMissing = kind{"webhook-not-found", "Webhook not found", http.StatusNotFound}
	kQRNotFound     = kind{"qr-code-not-found", "QR code not found", http.StatusNotFound}
	kPoolExhausted  = kind{"pool-exhausted", "Pool exhausted", http.StatusConflict}
	kNumberUnavail  = kind{"number-unavailable", "Virtual number unavailable", http.StatusConflict}
	kPartyBusy      = kind{"party-busy", "Party already bound on this virtual number", http.StatusConflict}
	kBindingEnded   = kind{"binding-ended", "Binding has ended", http.StatusConflict}
	kOrderConflict  = kind{"order-conflict", "Order exists with different parties", http.StatusConflict}
	kOrderClosed    = kind{"order-closed", "Order is closed", http.StatusConflict}
	kQRRevoked      = kind{"qr-code-revoked", "QR code revoked", http.StatusGone}
	kQRRateLimited  = kind{"rate-limited", "Too many requests", http.StatusTooManyRequests}
	kQRMode         = kind{"qr-mode-unavailable", "QR code mode not available", http.StatusNotImplemented}
	kIdemInFlight   = kind{"idempotency-key-in-use", "A request with this Idempotency-Key is in progress", http.StatusConflict}
	kTooLarge       = kind{"body-too-large", "Request body too large", http.StatusRequestEntityTooLarge}
	kMediaType      = kind{"unsupported-media-type", "Unsupported Content-Type", http.StatusUnsupportedMediaType}
	kInvalidNumber  = kind{"invalid-number", "Invalid phone number", http.StatusUnprocessableEntity}
	kInvalidField   = kind{"invalid-field", "Invalid field value", http.StatusUnprocessableEntity}
	kIdemReused     = kind{"idempotency-key-reused", "Idempotency-Key reused with a different request", http.StatusUnprocessableEntity}
	kInternal       = kind{"internal-error", "Internal server error", http.StatusInternalServerError}
	kUnavailable    = kind{"unavailable", "Service unavailable", http.StatusServiceUnavailable}
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

// problemFor maps an error from a service to its Problem. Errors it does
// not know are internal: their text goes to the log, not the client.
func problemFor(err error) (p *Problem, internal bool) {
	if errors.As(err, &p) {
		return p, false
	}
	var rl *QRRateLimited
	if errors.As(err, &rl) {
		return problem(kQRRateLimited, err.Error()), false
	}
	k, ok := kindOf(err)
	if !ok {
		if errors.Is(err, context.DeadlineExceeded) {
			return problem(kUnavailable, "the request timed out"), true
		}
		return problem(kInternal, "the server could not complete the request; the instance member identifies it in the server log"), true
	}
	p = problem(k, err.Error())
	switch {
	case errors.Is(err, pool.ErrInvalidArea):
		p.Field = "area"
	case errors.Is(err, order.ErrInvalidID):
		p.Field = "id"
	case errors.Is(err, binding.ErrNumberUnavailable):
		p.Field = "x"
	}
	return p, false
}

// kindOf classifies the services' sentinel errors.
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
		{order.ErrNotFound, kOrderNotFound},
		{order.ErrConflict, kOrderConflict},
		{order.ErrClosed, kOrderClosed},
		{order.ErrInvalidID, kInvalidField},
		{webhook.ErrNotFound, kWebhookMissing},
		{webhook.ErrInvalid, kInvalidField},
		{ErrQRNotFound, kQRNotFound},
		{ErrQRRevoked, kQRRevoked},
		{ErrQRInvalid, kInvalidField},
		{ErrQRModeUnavailable, kQRMode},
	} {
		if errors.Is(err, m.err) {
			return m.k, true
		}
	}
	return kind{}, false
}
