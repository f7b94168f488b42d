package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/privnum/privnum/e164"
)

// QRService mints QR codes that let whoever scans one reach the code's
// owner through a virtual number, without either side learning the
// other's number. Setting Config.QR serves it under /v1/qr-codes.
// *qr.Service provides it through a thin adapter that converts its types
// and errors.
//
// Errors should wrap ErrQRNotFound, ErrQRRevoked, ErrQRInvalid or
// ErrQRModeUnavailable, be a *QRRateLimited, or wrap the services' own
// sentinels (e164.ErrInvalid, binding.ErrPoolExhausted, ...), which map to
// the same problems as elsewhere in the API.
type QRService interface {
	// Mint creates a code.
	Mint(ctx context.Context, req QRMintRequest) (QRCode, error)
	// Get returns a code by its token. For a revoked code it returns the
	// code (Revoked set) along with an error wrapping ErrQRRevoked.
	Get(ctx context.Context, token string) (QRCode, error)
	// Revoke stops a code from working.
	Revoke(ctx context.Context, token string) error
	// Scan connects scanner to the code's owner and says what to dial.
	Scan(ctx context.Context, token, scanner string) (QRScanResult, error)
}

// Errors a QRService wraps so that the API can tell what went wrong.
var (
	// ErrQRNotFound means no code has that token (404).
	ErrQRNotFound = errors.New("QR code not found")
	// ErrQRRevoked means the code was revoked (410).
	ErrQRRevoked = errors.New("QR code revoked")
	// ErrQRInvalid means a mint or scan request is malformed (422).
	ErrQRInvalid = errors.New("invalid QR code request")
	// ErrQRModeUnavailable means the code's mode is not served yet (501).
	ErrQRModeUnavailable = errors.New("QR code mode not available")
)

// QRRateLimited is the error for a tripped scan rate limit: 429 with a
// Retry-After header.
type QRRateLimited struct {
	// RetryAfter is how long until the limit's window ends.
	RetryAfter time.Duration
}

// Error says when to retry.
func (e *QRRateLimited) Error() string {
	return fmt.Sprintf("too many scans; retry in %s", e.RetryAfter.Round(time.Second))
}

// QRMintRequest asks for a new code.
type QRMintRequest struct {
	// Owner is the real number scanners reach.
	Owner string `json:"owner"`
	// Label is free text for the operator and the printed label.
	Label string `json:"label"`
	// Mode is what a scan does ("middle-number", "callback"); empty means
	// the QR service's default.
	Mode string `json:"mode"`
}

// QRCode is a minted code. The owner's number is masked: the real number
// never leaves the QR service.
type QRCode struct {
	Token     string    `json:"token"`
	URL       string    `json:"url"`
	Label     string    `json:"label,omitempty"`
	Mode      string    `json:"mode"`
	Owner     string    `json:"owner"`
	CreatedAt time.Time `json:"created_at"`
	Revoked   bool      `json:"revoked"`
}

// QRScanResult tells a scanner how to reach the owner.
type QRScanResult struct {
	Mode string `json:"mode"`
	// VirtualNumber is the number to dial.
	VirtualNumber string `json:"virtual_number,omitempty"`
	// ExpiresAt is when dialing VirtualNumber stops reaching the owner.
	ExpiresAt time.Time `json:"expires_at"`
	// BindingID is the binding that connects scanner and owner.
	BindingID string `json:"binding_id,omitempty"`
}

func checkOpaque(field, v string, required bool) error {
	switch {
	case required && v == "":
		return fieldProblem(kInvalidField, field, field+" is required")
	case len(v) > maxOpaqueFieldSize:
		return fieldProblem(kInvalidField, field, fmt.Sprintf("%s: longer than %d bytes", field, maxOpaqueFieldSize))
	}
	return nil
}

// qrErr names the field an invalid number came from.
func qrErr(err error, field, input string) error {
	if !errors.Is(err, e164.ErrInvalid) {
		return err
	}
	p := fieldProblem(kInvalidNumber, field, err.Error())
	p.Input = input
	return p
}

func (s *Server) mintQR(ctx context.Context, rq *request) (reply, error) {
	var in QRMintRequest
	if err := decode(rq.body, &in); err != nil {
		return reply{}, err
	}
	for _, f := range []struct {
		name, v  string
		required bool
	}{{"owner", in.Owner, true}, {"label", in.Label, false}, {"mode", in.Mode, false}} {
		// Only a bound on size: the QR service owns the rules.
		if err := checkOpaque(f.name, f.v, f.required); err != nil {
			return reply{}, err
		}
	}
	c, err := s.cfg.QR.Mint(ctx, in)
	if err != nil {
		return reply{}, qrErr(err, "owner", in.Owner)
	}
	return reply{status: http.StatusCreated, body: c, location: "/v1/qr-codes/" + url.PathEscape(c.Token)}, nil
}

func (s *Server) getQR(ctx context.Context, rq *request) (reply, error) {
	c, err := s.cfg.QR.Get(ctx, rq.PathValue("token"))
	if errors.Is(err, ErrQRRevoked) && c.Token != "" {
		err = nil // the operator sees a revoked code, marked revoked
	}
	if err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusOK, body: c}, nil
}

func (s *Server) revokeQR(ctx context.Context, rq *request) (reply, error) {
	if err := s.cfg.QR.Revoke(ctx, rq.PathValue("token")); err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusNoContent}, nil
}

type scanRequest struct {
	Scanner string `json:"scanner"`
}

func (s *Server) scanQR(ctx context.Context, rq *request) (reply, error) {
	var in scanRequest
	if err := decode(rq.body, &in); err != nil {
		return reply{}, err
	}
	if err := checkOpaque("scanner", in.Scanner, true); err != nil {
		return reply{}, err
	}
	if rq.key.RequireDevice {
		n, err := s.number("scanner", in.Scanner)
		if err != nil {
			return reply{}, err
		}
		if err := s.requireDevice(ctx, rq, n); err != nil {
			return reply{}, err
		}
	}
	res, err := s.cfg.QR.Scan(ctx, rq.PathValue("token"), in.Scanner)
	if err != nil {
		return reply{}, qrErr(err, "scanner", in.Scanner)
	}
	return reply{status: http.StatusOK, body: res}, nil
}
