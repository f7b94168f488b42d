package main

import (
	"context"
	"errors"

	"github.com/privnum/privnum/api"
	"github.com/privnum/privnum/qr"
	"github.com/privnum/privnum/reject"
)

// qrAPI serves the API's QR routes from the qr service.
type qrAPI struct{ s *qr.Service }

func (q qrAPI) Mint(ctx context.Context, r api.QRMintRequest) (api.QRCode, error) {
	c, err := q.s.Mint(ctx, qr.MintRequest{Owner: r.Owner, Label: r.Label, Mode: qr.Mode(r.Mode)})
	return apiCode(c), apiQRErr(err)
}

func (q qrAPI) Get(ctx context.Context, t string) (api.QRCode, error) {
	c, err := q.s.Get(ctx, t)
	return apiCode(c), apiQRErr(err)
}

func (q qrAPI) Revoke(ctx context.Context, t string) error { return apiQRErr(q.s.Revoke(ctx, t)) }

func (q qrAPI) Scan(ctx context.Context, t, scanner string) (api.QRScanResult, error) {
	r, err := q.s.Scan(ctx, t, scanner)
	return api.QRScanResult{Mode: string(r.Mode), VirtualNumber: r.VirtualNumber, ExpiresAt: r.ExpiresAt, BindingID: r.BindingID}, apiQRErr(err)
}

func apiCode(c qr.Code) api.QRCode {
	return api.QRCode{Token: c.Token, URL: c.URL, Label: c.Label, Mode: string(c.Mode), Owner: c.OwnerMasked, CreatedAt: c.CreatedAt, Revoked: c.Revoked}
}

// qrError keeps the qr error and adds the API's sentinel for it.
type qrError struct{ kind, err error }

func (e qrError) Error() string   { return e.err.Error() }
func (e qrError) Unwrap() []error { return []error{e.kind, e.err} }

func apiQRErr(err error) error {
	var rl *reject.RateLimitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &rl):
		return &api.QRRateLimited{RetryAfter: rl.RetryAfter}
	case errors.Is(err, qr.ErrNotFound):
		return qrError{api.ErrQRNotFound, err}
	case errors.Is(err, qr.ErrRevoked):
		return qrError{api.ErrQRRevoked, err}
	case errors.Is(err, qr.ErrCallbackUnavailable):
		return qrError{api.ErrQRModeUnavailable, err}
	case errors.Is(err, qr.ErrInvalid):
		return qrError{api.ErrQRInvalid, err}
	}
	return err
}
