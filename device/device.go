// Package device binds a phone number to one device and SIM: after the
// number is verified by a flash call, the app registers its device id, the
// chip serial, the SIM's ICCID and IMSI, and receives a device token. Later
// requests present them again; a different SIM or chip means the number may
// have moved (a SIM swap), so the registration must be verified afresh.
//
// Only keyed hashes are stored: HMAC-SHA256 with a server secret, in hex,
// one per identifier and one for the token, each under its own label. The
// raw ICCID, IMSI, chip serial, device id and token are never written to
// Redis, logs, errors or the Device returned to API clients (the device id
// at most as a four-character hint). A keyed hash, unlike a plain digest,
// keeps a leaked database from confirming a guessed ICCID or IMSI, which
// have little entropy.
//
// Redis layout (one key per number, so every step is atomic on one slot):
//
//	pn:device:{<number>}  hash: dev, chip, iccid, imsi, tok (HMAC hex),
//	                      reg (ms), hint, st (ok|reverify), why, changed (ms)
package device

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/privnum/privnum/e164"
	"github.com/privnum/privnum/reject"
	"github.com/privnum/privnum/verify"
)

// Sentinel errors callers branch on.
var (
	// ErrInvalid means a field is missing or malformed. The error is a
	// *reject.FieldError naming the field in snake_case ("device_id",
	// "chip_serial", "iccid", "imsi", "number", "verification_id"), never
	// its value.
	// Nothing was stored.
	ErrInvalid = errors.New("invalid device request")
	// ErrNotVerified means the verification id does not prove the number
	// (unknown, not verified, for another number or already used). It is
	// verify.ErrNotVerified, so a Verifier other than verify.Service
	// signals it by returning (a wrap of) this error.
	ErrNotVerified = verify.ErrNotVerified
	// ErrNotRegistered means no device is registered for the number.
	ErrNotRegistered = errors.New("no device registered for number")
	// ErrTokenInvalid means the device token is not the registration's.
	ErrTokenInvalid = errors.New("device token invalid")
	// ErrSIMChanged means the ICCID or IMSI differs from the registration's;
	// the registration now needs re-verification.
	ErrSIMChanged = errors.New("SIM changed since registration")
	// ErrChipChanged means the chip serial differs from the registration's;
	// the registration now needs re-verification.
	ErrChipChanged = errors.New("chip changed since registration")
	// ErrReverify means the registration saw a SIM or chip change and must
	// be renewed with Register and a fresh verification.
	ErrReverify = errors.New("device registration needs re-verification")
)

// Verifier spends a flash-call verification of a number; verify.Service
// implements it. Consume fails with an error matching ErrNotVerified when
// the verification does not prove the number.
type Verifier interface {
	Consume(ctx context.Context, verificationID, number string) error
}

// Registration binds a verified number to a device and SIM.
type Registration struct {
	// DeviceID identifies the handset: 1 to 128 printable characters.
	DeviceID string
	// ChipSerial is the SIM chip's serial (e.g. the eUICC EID): 1 to 128
	// printable characters.
	ChipSerial string
	// ICCID is the SIM card number: 19 or 20 digits.
	ICCID string
	// IMSI is the subscriber identity: 14 or 15 digits.
	IMSI string
	// Number is the phone number, national or E.164.
	Number string
	// VerificationID is a verified, unused flash-call verification of Number.
	VerificationID string
}

// Presented is what a device presents on each request.
type Presented struct {
	Number      string
	DeviceToken string
	ChipSerial  string
	ICCID       string
	IMSI        string
}

// Device is what API clients see of a registration: no raw identifiers and
// no hashes.
type Device struct {
	// Number is masked.
	Number       string    `json:"number"`
	RegisteredAt time.Time `json:"registered_at"`
	// DeviceIDHint is the last four characters of the device id, when it
	// has at least eight, to tell devices apart.
	DeviceIDHint string `json:"device_id_hint,omitempty"`
}

// Config tunes a Service.
type Config struct {
	// CheckICCIDLuhn also requires an ICCID's last digit to be its Luhn
	// check digit.
	CheckICCIDLuhn bool
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Service registers devices and checks what they present.
type Service struct {
	rdb      redis.UniversalClient
	parser   e164.Parser
	secret   []byte
	verifier Verifier
	cfg      Config
	log      *slog.Logger
}

// MinSecretLen is the shortest HMAC secret New accepts, in bytes.
const MinSecretLen = 32

// New returns a Service on rdb. secret keys the stored hashes: at least
// MinSecretLen random bytes, the same on every server, and kept: a new
// secret invalidates every registration and device token.
func New(rdb redis.UniversalClient, parser e164.Parser, secret []byte, verifier Verifier, cfg Config) (*Service, error) {
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("device secret: %d bytes, want at least %d", len(secret), MinSecretLen)
	}
	if verifier == nil {
		return nil, errors.New("device: no verifier")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Service{rdb: rdb, parser: parser, secret: append([]byte(nil), secret...), verifier: verifier, cfg: cfg, log: cfg.Logger}, nil
}

func deviceKey(number string) string { return "pn:device:{" + number + "}" }

// Hash labels, so equal values of different kinds never hash alike.
const (
	labelDevice = "device-id"
	labelChip   = "chip-serial"
	labelICCID  = "iccid"
	labelIMSI   = "imsi"
	labelToken  = "device-token"
)

// mac returns the keyed hash of a labelled value, in hex.
func (s *Service) mac(label, value string) string {
	h := hmac.New(sha256.New, s.secret)
	h.Write([]byte(label))
	h.Write([]byte{0})
	h.Write([]byte(value))
	return hex.EncodeToString(h.Sum(nil))
}

// same compares a stored hash with the hash of a presented value in
// constant time.
func (s *Service) same(stored, label, value string) bool {
	return subtle.ConstantTimeCompare([]byte(stored), []byte(s.mac(label, value))) == 1
}

// invalid is the error for a malformed request field.
func invalid(field, why string) error {
	return &reject.FieldError{Field: field, Reason: why, Err: ErrInvalid}
}

// checkText accepts 1 to 128 printable characters, not all blank.
func checkText(field, v string) error {
	if strings.TrimSpace(v) == "" {
		return invalid(field, "required")
	}
	if !utf8.ValidString(v) || utf8.RuneCountInString(v) > 128 {
		return invalid(field, "want at most 128 characters of UTF-8")
	}
	for _, r := range v {
		if !unicode.IsPrint(r) {
			return invalid(field, "want printable characters only")
		}
	}
	return nil
}

// checkDigits accepts min to max ASCII digits.
func checkDigits(field, v string, lo, hi int) error {
	if v == "" {
		return invalid(field, "required")
	}
	if len(v) < lo || len(v) > hi {
		return invalid(field, fmt.Sprintf("want %d to %d digits", lo, hi))
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return invalid(field, fmt.Sprintf("want %d to %d digits", lo, hi))
		}
	}
	return nil
}

// luhn reports whether the last digit of d is its Luhn check digit.
func luhn(d string) bool {
	sum := 0
	for i := 0; i < len(d); i++ {
		n := int(d[len(d)-1-i] - '0')
		if i%2 == 1 {
			n *= 2
			if n > 9 {
				n -= 9
			}
		}
		sum += n
	}
	return sum%10 == 0
}

func (s *Service) checkSIM(chip, iccid, imsi string) error {
	if err := checkText("chip_serial", chip); err != nil {
		return err
	}
	if err := checkDigits("iccid", iccid, 19, 20); err != nil {
		return err
	}
	if s.cfg.CheckICCIDLuhn && !luhn(iccid) {
		return invalid("iccid", "bad check digit")
	}
	return checkDigits("imsi", imsi, 14, 15)
}

func (s *Service) number(n string) (string, error) {
	e, err := s.parser.Parse(n)
	if err != nil {
		return "", fmt.Errorf("%w: %w", invalid("number", ""), err)
	}
	return e, nil
}

func hint(deviceID string) string {
	r := []rune(deviceID)
	if len(r) < 8 {
		return ""
	}
	return string(r[len(r)-4:])
}

// Register checks every identifier, spends the number's flash-call
// verification and binds the number to the device and SIM, replacing any
// earlier registration of the number. It returns the device token, which
// is not stored and cannot be shown again. The verification is spent
// before anything is stored: if storing fails, verify the number again.
func (s *Service) Register(ctx context.Context, r Registration) (Device, string, error) {
	number, err := s.number(r.Number)
	if err != nil {
		return Device{}, "", err
	}
	if err := checkText("device_id", r.DeviceID); err != nil {
		return Device{}, "", err
	}
	if err := s.checkSIM(r.ChipSerial, r.ICCID, r.IMSI); err != nil {
		return Device{}, "", err
	}
	if err := checkText("verification_id", r.VerificationID); err != nil {
		return Device{}, "", err
	}
	if err := s.verifier.Consume(ctx, r.VerificationID, number); err != nil {
		return Device{}, "", fmt.Errorf("register device for %s: %w", e164.Mask(number), err)
	}
	var raw [32]byte
	rand.Read(raw[:])
	token := "pnd_" + base64.RawURLEncoding.EncodeToString(raw[:])
	now := time.Now()
	d := Device{Number: e164.Mask(number), RegisteredAt: time.UnixMilli(now.UnixMilli()).UTC(), DeviceIDHint: hint(r.DeviceID)}
	key := deviceKey(number)
	_, err = s.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.Del(ctx, key)
		pipe.HSet(ctx, key,
			"dev", s.mac(labelDevice, r.DeviceID), "chip", s.mac(labelChip, r.ChipSerial),
			"iccid", s.mac(labelICCID, r.ICCID), "imsi", s.mac(labelIMSI, r.IMSI),
			"tok", s.mac(labelToken, token), "reg", strconv.FormatInt(now.UnixMilli(), 10),
			"hint", d.DeviceIDHint, "st", "ok")
		return nil
	})
	if err != nil {
		return Device{}, "", fmt.Errorf("register device for %s: %w", e164.Mask(number), err)
	}
	s.log.InfoContext(ctx, "device registered", "number", e164.Mask(number), "device_id_hint", d.DeviceIDHint)
	return d, token, nil
}

// markScript flags a registration for re-verification, unless it was
// replaced (a new token) in the meantime.
//
// KEYS: 1 device. ARGV: 1 token hash, 2 reason, 3 now ms.
var markScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'tok') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'st', 'reverify', 'why', ARGV[2], 'changed', ARGV[3])
return 1`)

// Verify checks what a device presents against the number's registration.
// It returns nil when everything matches, ErrNotRegistered, ErrTokenInvalid,
// ErrSIMChanged (ICCID or IMSI differ), ErrChipChanged, or ErrReverify once
// a change was seen: a SIM or chip change presented with a valid token
// marks the registration, and it keeps failing until a new Register.
// A request with an invalid token changes nothing.
func (s *Service) Verify(ctx context.Context, p Presented) error {
	number, err := s.number(p.Number)
	if err != nil {
		return err
	}
	if err := s.checkSIM(p.ChipSerial, p.ICCID, p.IMSI); err != nil {
		return err
	}
	h, err := s.registration(ctx, number, p.DeviceToken)
	if err != nil {
		return err
	}
	simOK := s.same(h["iccid"], labelICCID, p.ICCID)
	simOK = s.same(h["imsi"], labelIMSI, p.IMSI) && simOK
	chipOK := s.same(h["chip"], labelChip, p.ChipSerial)
	var change error
	var why string
	switch {
	case !simOK && !chipOK:
		change, why = fmt.Errorf("%w (the chip changed too): %s", ErrSIMChanged, e164.Mask(number)), "sim+chip"
	case !simOK:
		change, why = fmt.Errorf("%w: %s", ErrSIMChanged, e164.Mask(number)), "sim"
	case !chipOK:
		change, why = fmt.Errorf("%w: %s", ErrChipChanged, e164.Mask(number)), "chip"
	default:
		return nil
	}
	if err := markScript.Run(ctx, s.rdb, []string{deviceKey(number)}, h["tok"], why, strconv.FormatInt(time.Now().UnixMilli(), 10)).Err(); err != nil {
		return fmt.Errorf("flag device of %s: %w (after %w)", e164.Mask(number), err, change)
	}
	s.log.WarnContext(ctx, "device change: re-verification required", "number", e164.Mask(number), "change", why)
	return change
}

// CheckToken is the cheap check that token is the device token of a
// registration of number in good standing: ErrNotRegistered,
// ErrTokenInvalid or ErrReverify otherwise.
func (s *Service) CheckToken(ctx context.Context, number, token string) error {
	n, err := s.number(number)
	if err != nil {
		return err
	}
	_, err = s.registration(ctx, n, token)
	return err
}

// registration reads the registration of number and checks token against
// it, then its standing.
func (s *Service) registration(ctx context.Context, number, token string) (map[string]string, error) {
	h, err := s.rdb.HGetAll(ctx, deviceKey(number)).Result()
	if err != nil {
		return nil, fmt.Errorf("read device of %s: %w", e164.Mask(number), err)
	}
	if len(h) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNotRegistered, e164.Mask(number))
	}
	if token == "" || len(token) > 256 || !s.same(h["tok"], labelToken, token) {
		return nil, fmt.Errorf("%w for %s", ErrTokenInvalid, e164.Mask(number))
	}
	if h["st"] != "ok" {
		return nil, fmt.Errorf("%w: %s (%s changed)", ErrReverify, e164.Mask(number), strings.ReplaceAll(h["why"], "+", " and "))
	}
	return h, nil
}

// Unregister removes the number's registration (ErrNotRegistered if there
// is none).
func (s *Service) Unregister(ctx context.Context, number string) error {
	n, err := s.number(number)
	if err != nil {
		return err
	}
	removed, err := s.rdb.Del(ctx, deviceKey(n)).Result()
	if err != nil {
		return fmt.Errorf("unregister device of %s: %w", e164.Mask(n), err)
	}
	if removed == 0 {
		return fmt.Errorf("%w: %s", ErrNotRegistered, e164.Mask(n))
	}
	s.log.InfoContext(ctx, "device unregistered", "number", e164.Mask(n))
	return nil
}
