package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/privnum/privnum/api"
	"github.com/privnum/privnum/callback"
	"github.com/privnum/privnum/device"
	"github.com/privnum/privnum/dialq"
	"github.com/privnum/privnum/reject"
	"github.com/privnum/privnum/verify"
)

// deviceSecretEnv names the secret that keys the device service's hashes.
const deviceSecretEnv = "PRIVNUM_DEVICE_SECRET"

// deviceSecret returns the device secret from the environment: nil when it
// is unset, an error when it is too short.
func deviceSecret() ([]byte, error) {
	s := os.Getenv(deviceSecretEnv)
	if s == "" {
		return nil, nil
	}
	if len(s) < device.MinSecretLen {
		return nil, fmt.Errorf("%s: %d bytes, want at least %d (e.g. openssl rand -hex 32)", deviceSecretEnv, len(s), device.MinSecretLen)
	}
	return []byte(s), nil
}

// apiFlows builds the API's callback, verification and device services.
// Calls are queued for privnum serve. Without a device secret devices is
// nil: the device routes are not served.
func (a *app) apiFlows(log *slog.Logger) (callbacks callbackAPI, verifications api.VerificationService, devices api.DeviceService, err error) {
	cbs, vs, _, err := a.dialServices(log, nil, dialq.Config{})
	if err != nil {
		return callbackAPI{}, nil, nil, err
	}
	secret, err := deviceSecret()
	if err != nil {
		return callbackAPI{}, nil, nil, usageError{err}
	}
	if secret != nil {
		ds, err := device.New(a.rdb, a.parser, secret, vs, device.Config{Logger: log})
		if err != nil {
			return callbackAPI{}, nil, nil, usageError{err}
		}
		devices = deviceAPI{ds}
	}
	return callbackAPI{cbs}, verifyAPI{vs}, devices, nil
}

// apiErr keeps a service's error and adds the API's sentinel for it.
type apiErr struct{ kind, err error }

func (e apiErr) Error() string   { return e.err.Error() }
func (e apiErr) Unwrap() []error { return []error{e.kind, e.err} }

// mapErr wraps err with the API sentinel of the first service sentinel it
// matches, and returns other errors unchanged.
func mapErr(err error, m [][2]error) error {
	for _, p := range m {
		if errors.Is(err, p[0]) {
			return apiErr{p[1], err}
		}
	}
	return err
}

// callbackAPI serves the API's callback routes from the callback service.
type callbackAPI struct{ s *callback.Service }

func (c callbackAPI) Start(ctx context.Context, r api.CallbackRequest) (api.Callback, error) {
	cb, err := c.s.Start(ctx, callback.Request{Code: r.Code, Caller: r.Caller})
	return apiCallback(cb), apiCallbackErr(err)
}

func (c callbackAPI) Get(ctx context.Context, id string) (api.Callback, error) {
	cb, err := c.s.Get(ctx, id)
	return apiCallback(cb), apiCallbackErr(err)
}

func apiCallback(c callback.Callback) api.Callback {
	return api.Callback{ID: c.ID, State: string(c.State), Reason: c.Reason, X: c.X, BindingID: c.BindingID,
		First: c.First, Second: c.Second, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt, MessageSent: c.MessageSent}
}

func apiCallbackErr(err error) error {
	return mapErr(err, [][2]error{
		{callback.ErrNotFound, api.ErrCallbackNotFound},
		{callback.ErrUnknownCode, api.ErrCallbackCodeUnknown},
		{callback.ErrInvalid, api.ErrCallbackInvalid},
	})
}

// verifyAPI serves the API's verification routes from the verify service.
type verifyAPI struct{ s *verify.Service }

func (v verifyAPI) Start(ctx context.Context, number, requester string) (api.Verification, error) {
	r, err := v.s.Start(ctx, verify.StartRequest{Number: number, Requester: requester})
	return apiVerification(r), apiVerifyErr(err)
}

func (v verifyAPI) Check(ctx context.Context, id, reported string) (api.Verification, error) {
	r, err := v.s.Check(ctx, id, reported)
	return apiVerification(r), apiVerifyErr(err)
}

func (v verifyAPI) Get(ctx context.Context, id string) (api.Verification, error) {
	r, err := v.s.Get(ctx, id)
	return apiVerification(r), apiVerifyErr(err)
}

func apiVerification(v verify.Verification) api.Verification {
	return api.Verification{ID: v.ID, Number: v.Number, Status: string(v.Status), ExpiresAt: v.ExpiresAt, AttemptsLeft: v.AttemptsLeft}
}

func apiVerifyErr(err error) error {
	var rl *reject.RateLimitError
	if errors.As(err, &rl) {
		limit := rl.Limit
		if rl.Limit == string(verify.ScopeRequester) {
			limit = "api_key" // the API's requester is the API key
		}
		return &api.RateLimited{Limit: limit, RetryAfter: rl.RetryAfter}
	}
	// A check that uses up the last attempt matches ErrMismatch and
	// ErrLocked: it is reported as the mismatch it is.
	return mapErr(err, [][2]error{
		{verify.ErrMismatch, api.ErrVerificationMismatch},
		{verify.ErrNotFound, api.ErrVerificationNotFound},
		{verify.ErrExpired, api.ErrVerificationExpired},
		{verify.ErrLocked, api.ErrVerificationLocked},
		{verify.ErrFailed, api.ErrVerificationFailed},
		{verify.ErrPoolExhausted, api.ErrVerificationPoolExhausted},
		{verify.ErrInvalid, api.ErrVerificationInvalid},
	})
}

// deviceAPI serves the API's device routes and device-token checks from
// the device service.
type deviceAPI struct{ s *device.Service }

func (d deviceAPI) Register(ctx context.Context, r api.DeviceRegistration) (api.Device, string, error) {
	dev, token, err := d.s.Register(ctx, device.Registration{DeviceID: r.DeviceID, ChipSerial: r.ChipSerial,
		ICCID: r.ICCID, IMSI: r.IMSI, Number: r.Number, VerificationID: r.VerificationID})
	return api.Device{Number: dev.Number, RegisteredAt: dev.RegisteredAt, DeviceIDHint: dev.DeviceIDHint}, token, apiDeviceErr(err)
}

func (d deviceAPI) Verify(ctx context.Context, p api.DevicePresented) error {
	return apiDeviceErr(d.s.Verify(ctx, device.Presented{Number: p.Number, DeviceToken: p.DeviceToken,
		ChipSerial: p.ChipSerial, ICCID: p.ICCID, IMSI: p.IMSI}))
}

func (d deviceAPI) CheckToken(ctx context.Context, number, token string) error {
	return apiDeviceErr(d.s.CheckToken(ctx, number, token))
}

// deviceReasons maps the device service's refusals to the API's reasons.
var deviceReasons = []struct {
	err    error
	reason string
}{
	{device.ErrNotVerified, api.ReasonNotVerified},
	{device.ErrNotRegistered, api.ReasonNotRegistered},
	{device.ErrTokenInvalid, api.ReasonTokenInvalid},
	{device.ErrSIMChanged, api.ReasonSIMChanged},
	{device.ErrChipChanged, api.ReasonChipChanged},
	{device.ErrReverify, api.ReasonReverifyRequired},
}

func apiDeviceErr(err error) error {
	if err == nil {
		return nil
	}
	for _, m := range deviceReasons {
		if errors.Is(err, m.err) {
			return &api.DeviceRejected{Reason: m.reason}
		}
	}
	if errors.Is(err, device.ErrInvalid) {
		e := apiErr{api.ErrDeviceInvalid, err}
		if fe := (*reject.FieldError)(nil); errors.As(err, &fe) {
			return &api.FieldError{Field: fe.Field, Err: e}
		}
		return e
	}
	return err
}
