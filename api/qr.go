package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/privnum/privnum/e164"
	"github.com/privnum/privnum/qr"
)

// QRService mints QR codes that let whoever scans one reach the code's
// owner through a virtual number, without either side learning the
// other's number. Setting Config.QR serves it under /v1/qr-codes;
// NewQRService adapts *qr.Service.
//
// Errors are package qr's (qr.ErrNotFound, qr.ErrRevoked,
// qr.ErrCallbackUnavailable, a *reject.FieldError wrapping qr.ErrInvalid
// or e164.ErrInvalid, a *reject.RateLimitError) or the services' below it
// (binding.ErrPoolExhausted, ...), which map to the same problems as
// elsewhere in the API.
type QRService interface {
	// Mint creates a code.
	Mint(ctx context.Context, req QRMintRequest) (QRCode, error)
	// Get returns a code by its token. For a revoked code it returns the
	// code (Revoked set) along with an error wrapping qr.ErrRevoked.
	Get(ctx context.Context, token string) (QRCode, error)
	// Revoke stops a code from working.
	Revoke(ctx context.Context, token string) error
	// Scan connects scanner to the code's owner and says what to dial.
	Scan(ctx context.Context, token, scanner string) (QRScanResult, error)
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

// withInput adds the input to the problem of an invalid number (the
// service's error names the field, never the value).
func withInput(err error, input string) error {
	if !errors.Is(err, e164.ErrInvalid) {
		return err
	}
	p, _ := problemFor(err)
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
		return reply{}, withInput(err, in.Owner)
	}
	return reply{status: http.StatusCreated, body: c, location: "/v1/qr-codes/" + url.PathEscape(c.Token)}, nil
}

func (s *Server) getQR(ctx context.Context, rq *request) (reply, error) {
	c, err := s.cfg.QR.Get(ctx, rq.PathValue("token"))
	if errors.Is(err, qr.ErrRevoked) && c.Token != "" {
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
		return reply{}, withInput(err, in.Scanner)
	}
	return reply{status: http.StatusOK, body: res}, nil
}
