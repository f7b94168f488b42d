package api

import (
	"context"

	"github.com/privnum/privnum/callback"
	"github.com/privnum/privnum/device"
	"github.com/privnum/privnum/qr"
	"github.com/privnum/privnum/verify"
)

// The adapters below serve the API's service interfaces from the real
// services: they convert the API's wire types to the services' and back.
// Errors pass through unchanged; problemFor maps them.

// NewQRService serves QRService from the qr service.
func NewQRService(s *qr.Service) QRService { return qrService{s} }

type qrService struct{ s *qr.Service }

func (q qrService) Mint(ctx context.Context, r QRMintRequest) (QRCode, error) {
	c, err := q.s.Mint(ctx, qr.MintRequest{Owner: r.Owner, Label: r.Label, Mode: qr.Mode(r.Mode)})
	return qrCode(c), err
}

func (q qrService) Get(ctx context.Context, token string) (QRCode, error) {
	c, err := q.s.Get(ctx, token)
	return qrCode(c), err
}

func (q qrService) Revoke(ctx context.Context, token string) error { return q.s.Revoke(ctx, token) }

func (q qrService) Scan(ctx context.Context, token, scanner string) (QRScanResult, error) {
	r, err := q.s.Scan(ctx, token, scanner)
	return QRScanResult{Mode: string(r.Mode), VirtualNumber: r.VirtualNumber, ExpiresAt: r.ExpiresAt, BindingID: r.BindingID}, err
}

func qrCode(c qr.Code) QRCode {
	return QRCode{Token: c.Token, URL: c.URL, Label: c.Label, Mode: string(c.Mode), Owner: c.OwnerMasked, CreatedAt: c.CreatedAt, Revoked: c.Revoked}
}

// NewCallbackService serves CallbackService from the callback service.
func NewCallbackService(s *callback.Service) CallbackService { return callbackService{s} }

type callbackService struct{ s *callback.Service }

func (c callbackService) Start(ctx context.Context, r CallbackRequest) (Callback, error) {
	cb, err := c.s.Start(ctx, callback.Request{Code: r.Code, Caller: r.Caller, PartyOnly: r.partyOnly})
	return apiCallback(cb), err
}

func (c callbackService) Get(ctx context.Context, id string) (Callback, error) {
	cb, err := c.s.Get(ctx, id)
	return apiCallback(cb), err
}

func apiCallback(c callback.Callback) Callback {
	return Callback{ID: c.ID, State: string(c.State), Reason: c.Reason, X: c.X, BindingID: c.BindingID,
		First: c.First, Second: c.Second, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt, MessageSent: c.MessageSent}
}

// NewVerificationService serves VerificationService from the verify
// service.
func NewVerificationService(s *verify.Service) VerificationService { return verificationService{s} }

type verificationService struct{ s *verify.Service }

func (v verificationService) Start(ctx context.Context, number, requester string) (Verification, error) {
	r, err := v.s.Start(ctx, verify.StartRequest{Number: number, Requester: requester})
	return apiVerification(r), err
}

func (v verificationService) Check(ctx context.Context, id, reported string) (Verification, error) {
	r, err := v.s.Check(ctx, id, reported)
	return apiVerification(r), err
}

func (v verificationService) Get(ctx context.Context, id string) (Verification, error) {
	r, err := v.s.Get(ctx, id)
	return apiVerification(r), err
}

func apiVerification(v verify.Verification) Verification {
	return Verification{ID: v.ID, Number: v.Number, Status: string(v.Status), ExpiresAt: v.ExpiresAt, AttemptsLeft: v.AttemptsLeft}
}

// NewDeviceService serves DeviceService from the device service.
func NewDeviceService(s *device.Service) DeviceService { return deviceService{s} }

type deviceService struct{ s *device.Service }

func (d deviceService) Register(ctx context.Context, r DeviceRegistration) (Device, string, error) {
	dev, token, err := d.s.Register(ctx, device.Registration{DeviceID: r.DeviceID, ChipSerial: r.ChipSerial,
		ICCID: r.ICCID, IMSI: r.IMSI, Number: r.Number, VerificationID: r.VerificationID})
	return Device{Number: dev.Number, RegisteredAt: dev.RegisteredAt, DeviceIDHint: dev.DeviceIDHint}, token, err
}

func (d deviceService) Verify(ctx context.Context, p DevicePresented) error {
	return d.s.Verify(ctx, device.Presented{Number: p.Number, DeviceToken: p.DeviceToken,
		ChipSerial: p.ChipSerial, ICCID: p.ICCID, IMSI: p.IMSI})
}

func (d deviceService) CheckToken(ctx context.Context, number, token string) error {
	return d.s.CheckToken(ctx, number, token)
}
