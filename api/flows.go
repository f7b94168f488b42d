package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/verify"
)

// This file serves the flows that reach or prove a real number: callbacks
// (privnum calls both parties), flash-call verifications and device/SIM
// binding. As for QR codes, the API declares the small interfaces it needs
// and its own wire types; adapt.go adapts package callback, verify and
// device to them. Errors pass through unchanged: problemFor maps the
// services' own errors.

// --- callbacks ---

// CallbackService starts click-to-call callbacks: privnum calls the two
// parties an identification code names and bridges them. Setting
// Config.Callbacks serves /v1/callbacks; NewCallbackService adapts
// *callback.Service. Errors are package callback's (callback.ErrNotFound,
// callback.ErrUnknownCode, a *reject.FieldError wrapping
// callback.ErrInvalid) or the services' below it (e164.ErrInvalid,
// binding.ErrPoolExhausted, ...).
type CallbackService interface {
	// Start resolves the code and queues the calls.
	Start(ctx context.Context, req CallbackRequest) (Callback, error)
	// Get returns a callback's state.
	Get(ctx context.Context, id string) (Callback, error)
}

// CallbackRequest asks for a callback.
type CallbackRequest struct {
	// Code is a mapped identification code, an order id or a QR token.
	Code string `json:"code"`
	// Caller is the requester's number, called first; required for a QR
	// token, and for any code when the API key requires a device.
	Caller string `json:"caller"`
	// partyOnly: the API key requires a device, so the caller must be a
	// party of a mapped code or an order.
	partyOnly bool
}

// Callback is a callback's state. The parties are masked.
type Callback struct {
	ID string `json:"id"`
	// State is requested, calling-first, calling-second, bridged,
	// completed or failed.
	State string `json:"state"`
	// Reason says why a callback failed.
	Reason string `json:"reason,omitempty"`
	// X is the virtual number the parties see.
	X           string    `json:"x"`
	BindingID   string    `json:"binding_id,omitempty"`
	First       string    `json:"first"`
	Second      string    `json:"second"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	MessageSent bool      `json:"message_sent"`
}

// maxCodeLen bounds an identification code, as package callback does.
const maxCodeLen = 128

func checkCode(code string) error {
	if code == "" || len(code) > maxCodeLen {
		return fieldProblem(kInvalidField, "code", fmt.Sprintf("code: want 1 to %d characters", maxCodeLen))
	}
	for _, r := range code {
		if r <= ' ' || r == 0x7f {
			return fieldProblem(kInvalidField, "code", "code: no spaces or control characters")
		}
	}
	return nil
}

func (s *Server) startCallback(ctx context.Context, rq *request) (reply, error) {
	var in CallbackRequest
	if err := decode(rq.body, &in); err != nil {
		return reply{}, err
	}
	if err := checkCode(in.Code); err != nil {
		return reply{}, err
	}
	if in.Caller != "" {
		n, err := s.number("caller", in.Caller)
		if err != nil {
			return reply{}, err
		}
		in.Caller = n
	}
	if rq.key.RequireDevice {
		if in.Caller == "" {
			return reply{}, fieldProblem(kInvalidField, "caller", "caller is required: this API key requires a verified device, and caller is the device's number")
		}
		if err := s.requireDevice(ctx, rq, in.Caller); err != nil {
			return reply{}, err
		}
		in.partyOnly = true
	}
	cb, err := s.cfg.Callbacks.Start(ctx, in)
	switch {
	case errors.Is(err, binding.ErrInvalid):
		// The only party the request names is the caller. (Not the QR
		// code's owner calling themselves: the callback service answers
		// that with a stand-in like any caller's, see callback.Service.Start.)
		return reply{}, withField(err, binding.ErrInvalid, "caller")
	case errors.Is(err, binding.ErrPoolExhausted):
		return reply{}, fmt.Errorf("%w: no virtual number is free for these parties; add numbers to the pool or release bindings", err)
	case err != nil:
		return reply{}, err
	}
	return reply{status: http.StatusAccepted, body: cb, location: "/v1/callbacks/" + url.PathEscape(cb.ID)}, nil
}

func (s *Server) getCallback(ctx context.Context, rq *request) (reply, error) {
	cb, err := s.cfg.Callbacks.Get(ctx, rq.PathValue("id"))
	if err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusOK, body: cb}, nil
}

// --- verifications ---

// VerificationService verifies that a caller holds a number by a flash
// call from a caller ID that only the number's phone sees. Setting
// Config.Verifications serves /v1/verifications. The expected caller ID
// never leaves the service: not in a Verification, not in an error.
// NewVerificationService adapts *verify.Service.
//
// Errors are package verify's: its sentinels (verify.ErrNotFound, ...), a
// *reject.FieldError wrapping verify.ErrInvalid, or a
// *reject.RateLimitError wrapping verify.ErrRateLimited whose Limit is a
// verify.LimitScope.
type VerificationService interface {
	// Start rate-limits the request (per number, per number prefix and per
	// requester) and has the number rung.
	Start(ctx context.Context, number, requester string) (Verification, error)
	// Check compares the number the phone showed with the caller ID. On a
	// mismatch it returns the verification (with the attempts left) along
	// with an error wrapping verify.ErrMismatch.
	Check(ctx context.Context, id, reported string) (Verification, error)
	// Get returns a verification.
	Get(ctx context.Context, id string) (Verification, error)
}

// Verification is a flash-call verification. Its number is masked; the
// expected caller ID is never part of it.
type Verification struct {
	ID     string `json:"id"`
	Number string `json:"number"`
	// Status is pending, verified, failed, expired or locked.
	Status       string    `json:"status"`
	ExpiresAt    time.Time `json:"expires_at"`
	AttemptsLeft int       `json:"attempts_left"`
}

type startVerificationRequest struct {
	Number string `json:"number"`
}

type checkVerificationRequest struct {
	Reported string `json:"reported"`
}

func (s *Server) startVerification(ctx context.Context, rq *request) (reply, error) {
	var in startVerificationRequest
	if err := decode(rq.body, &in); err != nil {
		return reply{}, err
	}
	n, err := s.number("number", in.Number)
	if err != nil {
		return reply{}, err
	}
	// The requester is the API key: its per-requester limit is a per-key
	// limit.
	v, err := s.cfg.Verifications.Start(ctx, n, rq.key.ID)
	switch {
	case errors.Is(err, verify.ErrFailed):
		s.log.Error("flash call not placed", "request_id", infoOf(ctx).id, "verification", v.ID, "err", err)
		return reply{}, problem(kUnavailable, "the flash call could not be placed; start a new verification later")
	case err != nil:
		return reply{}, err
	}
	return reply{status: http.StatusAccepted, body: v, location: "/v1/verifications/" + url.PathEscape(v.ID)}, nil
}

func (s *Server) checkVerification(ctx context.Context, rq *request) (reply, error) {
	var in checkVerificationRequest
	if err := decode(rq.body, &in); err != nil {
		return reply{}, err
	}
	if err := checkOpaque("reported", in.Reported, true); err != nil {
		return reply{}, err
	}
	v, err := s.cfg.Verifications.Check(ctx, rq.PathValue("id"), in.Reported)
	switch {
	case errors.Is(err, verify.ErrMismatch):
		p, _ := problemFor(err)
		left := v.AttemptsLeft
		p.AttemptsLeft = &left
		if left == 0 {
			p.Detail = "the reported number does not match, and no checks are left: start a new verification"
		}
		return reply{}, p
	case err != nil:
		return reply{}, err
	}
	return reply{status: http.StatusOK, body: v}, nil
}

func (s *Server) getVerification(ctx context.Context, rq *request) (reply, error) {
	v, err := s.cfg.Verifications.Get(ctx, rq.PathValue("id"))
	if err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusOK, body: v}, nil
}

// --- devices ---

// DeviceService binds a verified number to a device and SIM, and checks
// what devices present. Setting Config.Devices serves /v1/devices and
// enables the require-device policy of API keys. NewDeviceService adapts
// *device.Service.
//
// Errors are package device's: a *reject.FieldError wrapping
// device.ErrInvalid, or one of its refusals (device.ErrNotRegistered,
// device.ErrTokenInvalid, device.ErrSIMChanged, device.ErrChipChanged,
// device.ErrReverify, device.ErrNotVerified), each 403 device-rejected
// with its reason. No error may carry a raw device id, chip serial, ICCID,
// IMSI or device token.
type DeviceService interface {
	// Register spends the verification and returns the device token,
	// which is not stored.
	Register(ctx context.Context, r DeviceRegistration) (Device, string, error)
	// Verify checks what a device presents against the registration.
	Verify(ctx context.Context, p DevicePresented) error
	// CheckToken checks that token is the device token of a registration
	// of number in good standing.
	CheckToken(ctx context.Context, number, token string) error
}

// Reasons a device is not trusted for a number: the reason member of a
// 403 device-rejected problem.
const (
	// ReasonDeviceTokenRequired: the API key requires a device token and
	// the request has no Privnum-Device-Token header.
	ReasonDeviceTokenRequired = "device_token_required"
	// ReasonNotRegistered: no device is registered for the number.
	ReasonNotRegistered = "not_registered"
	// ReasonTokenInvalid: the device token is not the registration's.
	ReasonTokenInvalid = "token_invalid"
	// ReasonSIMChanged: the ICCID or IMSI differ from the registration's.
	ReasonSIMChanged = "sim_changed"
	// ReasonChipChanged: the chip serial differs from the registration's.
	ReasonChipChanged = "chip_changed"
	// ReasonReverifyRequired: a SIM or chip change was seen; verify the
	// number again and register anew.
	ReasonReverifyRequired = "reverify_required"
	// ReasonNotVerified: the verification does not prove the number
	// (unknown, not verified, for another number, stale or already used).
	ReasonNotVerified = "not_verified"
)

// deviceDetails are the problem details of the reasons: fixed texts, so
// that nothing a device sent can reach a response.
var deviceDetails = map[string]string{
	ReasonDeviceTokenRequired: "this API key requires a verified device: send its device token in the " + DeviceTokenHeader + " header",
	ReasonNotRegistered:       "no device is registered for the number: verify the number and register the device",
	ReasonTokenInvalid:        "the device token is not valid for the number",
	ReasonSIMChanged:          "the SIM (ICCID or IMSI) differs from the registered one: verify the number again and register the device anew",
	ReasonChipChanged:         "the chip serial differs from the registered one: verify the number again and register the device anew",
	ReasonReverifyRequired:    "the device's SIM or chip changed since registration: verify the number again and register the device anew",
	ReasonNotVerified:         "the verification does not prove the number: it is unknown, not verified, for another number, too old or already used",
}

// deviceRejected is the API's own refusal of a device (the require-device
// policy): 403 device-rejected, with reason (one of the Reason constants)
// in the problem's reason member.
type deviceRejected struct{ reason string }

func (e *deviceRejected) Error() string { return "device rejected: " + e.reason }

// DeviceRegistration binds a verified number to a device and SIM.
type DeviceRegistration struct {
	DeviceID       string `json:"device_id"`
	ChipSerial     string `json:"chip_serial"`
	ICCID          string `json:"iccid"`
	IMSI           string `json:"imsi"`
	Number         string `json:"number"`
	VerificationID string `json:"verification_id"`
}

// DevicePresented is what a device presents to be checked.
type DevicePresented struct {
	Number      string `json:"number"`
	DeviceToken string `json:"device_token"`
	ChipSerial  string `json:"chip_serial"`
	ICCID       string `json:"iccid"`
	IMSI        string `json:"imsi"`
}

// Device is a registration as clients see it: the number masked, no
// identifiers.
type Device struct {
	Number       string    `json:"number"`
	RegisteredAt time.Time `json:"registered_at"`
	// DeviceIDHint is the last four characters of a device id of at least
	// eight.
	DeviceIDHint string `json:"device_id_hint,omitempty"`
}

// deviceRegistered is a new registration with its device token, shown
// only in this response.
type deviceRegistered struct {
	Device
	DeviceToken string `json:"device_token"`
}

type deviceStatus struct {
	Status string `json:"status"`
}

// required names the first of fields that is missing; the device service
// owns the rest of the rules (and names the field it refuses).
func required(fields ...[2]string) error {
	for _, f := range fields {
		if f[1] == "" {
			return fieldProblem(kInvalidField, f[0], f[0]+" is required")
		}
	}
	return nil
}

func (s *Server) registerDevice(ctx context.Context, rq *request) (reply, error) {
	var in DeviceRegistration
	if err := decode(rq.body, &in); err != nil {
		return reply{}, err
	}
	err := required([2]string{"device_id", in.DeviceID}, [2]string{"chip_serial", in.ChipSerial},
		[2]string{"iccid", in.ICCID}, [2]string{"imsi", in.IMSI}, [2]string{"verification_id", in.VerificationID})
	if err != nil {
		return reply{}, err
	}
	if in.Number, err = s.number("number", in.Number); err != nil {
		return reply{}, err
	}
	d, token, err := s.cfg.Devices.Register(ctx, in)
	if err != nil {
		return reply{}, err
	}
	// No Idempotency-Key: the response holds the token, which must not be
	// stored for a replay.
	return reply{status: http.StatusCreated, body: deviceRegistered{d, token}}, nil
}

func (s *Server) verifyDevice(ctx context.Context, rq *request) (reply, error) {
	var in DevicePresented
	if err := decode(rq.body, &in); err != nil {
		return reply{}, err
	}
	err := required([2]string{"device_token", in.DeviceToken}, [2]string{"chip_serial", in.ChipSerial},
		[2]string{"iccid", in.ICCID}, [2]string{"imsi", in.IMSI})
	if err != nil {
		return reply{}, err
	}
	if in.Number, err = s.number("number", in.Number); err != nil {
		return reply{}, err
	}
	if err := s.cfg.Devices.Verify(ctx, in); err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusOK, body: deviceStatus{"ok"}}, nil
}

// DeviceTokenHeader carries the device token on scan-to-call and callback
// requests made with an API key that requires a verified device.
const DeviceTokenHeader = "Privnum-Device-Token"

// requireDevice enforces the require-device policy of the request's API
// key: the request must carry the device token of number's registration,
// in good standing. It fails closed: without a device service (no device
// secret configured) such keys get 503.
func (s *Server) requireDevice(ctx context.Context, rq *request, number string) error {
	if s.cfg.Devices == nil {
		s.log.Error("API key requires a verified device, but device binding is not configured", "request_id", infoOf(ctx).id, "key", rq.key.ID)
		return problem(kUnavailable, "this API key requires a verified device, but device binding is not enabled on this server")
	}
	token := rq.Header.Get(DeviceTokenHeader)
	if token == "" {
		return &deviceRejected{ReasonDeviceTokenRequired}
	}
	err := s.cfg.Devices.CheckToken(ctx, number, token)
	if reason, ok := deviceReason(err); ok && reason != ReasonReverifyRequired {
		// An unregistered number has no valid token either.
		return &deviceRejected{ReasonTokenInvalid}
	}
	return err
}
