// Package qr mints QR codes that reach an owner without showing their number.
//
// A code stands for an owner (a merchant, a user, an order: a real phone
// number kept server-side only) and a mode. Its payload is a URL on a
// configurable public base, BASE/q/TOKEN, where TOKEN is 128 bits from
// crypto/rand written as 26 lowercase base32 characters (a-z, 2-7, no
// padding). The payload carries no phone number, and a wrong guess reveals
// nothing: to a scanner, unknown and revoked tokens look the same.
//
// Scanning a middle-number code binds the scanner and the owner on a virtual
// number for a short while (Config.ScanTTL), so the scanner can call the
// owner without either seeing the other's number.
//
// Keys carry the token as a hash tag ("pn:qr:{TOKEN}…"), so every script
// stays within one Redis Cluster slot.
package qr

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/e164"
	"github.com/privnum/privnum/reject"
)

// Sentinel errors callers branch on.
var (
	// ErrNotFound means no code has that token. Scan also answers it for
	// revoked and malformed tokens, so a scanner cannot tell them apart.
	ErrNotFound = errors.New("qr code not found")
	// ErrRevoked means the code was revoked (operator API only; see Get).
	ErrRevoked = errors.New("qr code revoked")
	// ErrInvalid means a request or configuration field is out of range.
	// A request field that is refused comes as a *reject.FieldError naming
	// it ("owner", "label", "mode", "scanner").
	ErrInvalid = errors.New("invalid qr request")
	// ErrRateLimited means too many scans of one code or by one scanner in
	// the current window. The error is a *reject.RateLimitError.
	ErrRateLimited = errors.New("too many scans, try again later")
	// ErrCallbackUnavailable means the code is in callback mode, which is
	// not served yet.
	ErrCallbackUnavailable = errors.New("callback mode is not available yet")
)

// Mode says what scanning a code does.
type Mode string

// Code modes.
const (
	// MiddleNumber gives the scanner a short-lived virtual number that
	// reaches the owner.
	MiddleNumber Mode = "middle-number"
	// Callback has the platform call the scanner back and connect the
	// owner (a later issue; Scan answers ErrCallbackUnavailable).
	Callback Mode = "callback"
)

// ParseMode accepts "middle-number" (or "middle") and "callback"; empty
// means MiddleNumber.
func ParseMode(s string) (Mode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "middle-number", "middle_number", "middle":
		return MiddleNumber, nil
	case "callback":
		return Callback, nil
	}
	return "", invalid("mode", fmt.Sprintf("%q: want middle-number or callback", s))
}

// MaxLabelLen is the longest label, in characters.
const MaxLabelLen = 100

// TokenLen is the length of a token: 128 random bits in base32.
const TokenLen = 26

// tokenBytes is the randomness in a token.
const tokenBytes = 16

var tokenEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newToken returns 128 bits from crypto/rand in lowercase base32.
func newToken() string {
	var b [tokenBytes]byte
	rand.Read(b[:])
	return tokenEncoding.EncodeToString(b[:])
}

// normToken lowercases a token and reports whether it is well formed.
func normToken(t string) (string, bool) {
	t = strings.ToLower(strings.TrimSpace(t))
	if len(t) != TokenLen {
		return "", false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return "", false
		}
	}
	return t, true
}

// ShortCode is the human-readable reference printed under a code: the first
// 8 characters of the token, upper-cased, in two groups ("ABCD-EFGH"). It
// holds 40 of the token's 128 bits, far too few to guess the rest.
func ShortCode(token string) string {
	if len(token) < 8 {
		return strings.ToUpper(token)
	}
	u := strings.ToUpper(token[:8])
	return u[:4] + "-" + u[4:]
}

// Key layout: every key of one code carries its token as the hash tag.

// codeKey is the hash of a code: owner, label, mode, created, rev, revoked.
func codeKey(token string) string { return "pn:qr:{" + token + "}" }

// scanKey holds the binding id (or a pending claim) of scanner's binding
// from scanning token; it lives as long as the binding.
func scanKey(token, scanner string) string { return "pn:qr:{" + token + "}:s:" + scanner }

// scansKey is the sorted set of the binding ids made by scanning token,
// scored by expiry (ms), so that revoking the code can end them.
func scansKey(token string) string { return "pn:qr:{" + token + "}:scans" }

// tokenLimitKey counts scans of token in the current window.
func tokenLimitKey(token string) string { return "pn:qr:{" + token + "}:rl" }

// scannerLimitKey counts scans by scanner in the current window.
func scannerLimitKey(scanner string) string { return "pn:qrs:{" + scanner + "}:rl" }

// Code is a minted QR code. OwnerMasked is the owner's number masked with
// e164.Mask; the real number never leaves the service.
type Code struct {
	Token       string    `json:"token"`
	URL         string    `json:"url"`
	Label       string    `json:"label,omitempty"`
	Mode        Mode      `json:"mode"`
	OwnerMasked string    `json:"owner"`
	CreatedAt   time.Time `json:"created_at"`
	Revoked     bool      `json:"revoked"`
	owner       string
}

// Config tunes a Service.
type Config struct {
	// PublicBase is the absolute http(s) URL codes point under:
	// PublicBase + "/q/" + token. Required.
	PublicBase string
	// ScanTTL is how long the binding made by a scan lives. Default 15m.
	ScanTTL time.Duration
	// ScanQuarantine is how long a scan binding's pairs stay reserved after
	// it ends: shorter than the bindings' usual day, so that a popular code
	// (thousands of scanners) does not hold a number per scanner for a day.
	// Default 1h, capped at the binding service's quarantine.
	ScanQuarantine time.Duration
	// PerTokenLimit caps the scans of one code per LimitWindow; default
	// 60, negative for no limit.
	PerTokenLimit int
	// PerScannerLimit caps the scans by one scanner number per
	// LimitWindow; default 10, negative for no limit.
	PerScannerLimit int
	// LimitWindow is the fixed rate-limit window. Default 1m.
	LimitWindow time.Duration
}

// Service mints, looks up, revokes and scans codes.
type Service struct {
	rdb      redis.UniversalClient
	parser   e164.Parser
	bindings *binding.Service
	cfg      Config
	base     string
}

// New returns a Service on rdb. It refuses (ErrInvalid) a PublicBase that is
// not an absolute http or https URL without query or fragment.
func New(rdb redis.UniversalClient, parser e164.Parser, bindings *binding.Service, cfg Config) (*Service, error) {
	if rdb == nil || bindings == nil {
		return nil, fmt.Errorf("%w: qr.New needs a Redis client and a binding service", ErrInvalid)
	}
	base, err := checkBase(cfg.PublicBase)
	if err != nil {
		return nil, err
	}
	if cfg.ScanTTL < 0 || cfg.LimitWindow < 0 || cfg.ScanQuarantine < 0 {
		return nil, fmt.Errorf("%w: durations must not be negative", ErrInvalid)
	}
	if cfg.ScanTTL == 0 {
		cfg.ScanTTL = 15 * time.Minute
	}
	if cfg.ScanQuarantine == 0 {
		cfg.ScanQuarantine = time.Hour
	}
	cfg.ScanQuarantine = min(cfg.ScanQuarantine, bindings.Quarantine())
	if cfg.LimitWindow == 0 {
		cfg.LimitWindow = time.Minute
	}
	if cfg.PerTokenLimit == 0 {
		cfg.PerTokenLimit = 60
	}
	if cfg.PerScannerLimit == 0 {
		cfg.PerScannerLimit = 10
	}
	return &Service{rdb: rdb, parser: parser, bindings: bindings, cfg: cfg, base: base}, nil
}

func checkBase(s string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return "", fmt.Errorf("%w: public base %q: %v", ErrInvalid, s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", fmt.Errorf("%w: public base %q: want an absolute http(s) URL such as https://example.com", ErrInvalid, s)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// Config returns the configuration in force, defaults filled in.
func (s *Service) Config() Config {
	c := s.cfg
	c.PublicBase = s.base
	return c
}

// URL returns the payload of the code with token: PublicBase/q/token.
func (s *Service) URL(token string) string { return s.base + "/q/" + token }

// MintRequest asks for a code.
type MintRequest struct {
	// Owner is the real number the code reaches.
	Owner string
	// Label is a free text for the operator and the printed label, at most
	// MaxLabelLen characters; it may not contain the owner's number.
	Label string
	// Mode defaults to MiddleNumber.
	Mode Mode
}

// normalize checks and normalises a request in place.
func (s *Service) normalize(req *MintRequest) error {
	var err error
	if req.Owner, err = s.parser.Parse(req.Owner); err != nil {
		return fmt.Errorf("%w: %w", invalid("owner", ""), err)
	}
	if req.Mode, err = ParseMode(string(req.Mode)); err != nil {
		return err
	}
	req.Label = strings.TrimSpace(req.Label)
	return checkLabel(req.Label, req.Owner)
}

func checkLabel(label, owner string) error {
	if !utf8.ValidString(label) {
		return invalid("label", "not valid UTF-8")
	}
	if n := utf8.RuneCountInString(label); n > MaxLabelLen {
		return invalid("label", fmt.Sprintf("%d characters, at most %d allowed", n, MaxLabelLen))
	}
	var digits strings.Builder
	for _, r := range label {
		if unicode.IsControl(r) {
			return invalid("label", "has a control character")
		}
		if r >= '0' && r <= '9' {
			digits.WriteRune(r)
		}
	}
	// The label is shown and printed: refuse one that spells out the
	// owner's subscriber number (its last 8 digits).
	if tail := owner[max(1, len(owner)-8):]; strings.Contains(digits.String(), tail) {
		return invalid("label", "contains the owner's number")
	}
	return nil
}

// invalid is the error for a malformed request field.
func invalid(field, reason string) error {
	return &reject.FieldError{Field: field, Reason: reason, Err: ErrInvalid}
}

// Mint stores a new code for an owner and returns it.
func (s *Service) Mint(ctx context.Context, req MintRequest) (Code, error) {
	codes, err := s.MintAll(ctx, []MintRequest{req}, nil)
	if err != nil {
		return Code{}, err
	}
	return codes[0], nil
}

// mintChunk is how many codes MintAll stores per round trip.
const mintChunk = 256

// MintAll checks every request first and stores nothing if any is invalid
// (the error names the request's index); then it stores one code per
// request, calling progress (if not nil) as chunks are stored. If storing
// fails part-way, the codes already stored are deleted (best effort).
func (s *Service) MintAll(ctx context.Context, reqs []MintRequest, progress func(done, total int)) ([]Code, error) {
	if len(reqs) == 0 {
		return nil, fmt.Errorf("%w: nothing to mint", ErrInvalid)
	}
	norm := make([]MintRequest, len(reqs))
	for i, r := range reqs {
		if err := s.normalize(&r); err != nil {
			if len(reqs) == 1 {
				return nil, err
			}
			return nil, fmt.Errorf("request %d: %w", i+1, err)
		}
		norm[i] = r
	}
	now := time.UnixMilli(time.Now().UnixMilli()).UTC()
	codes := make([]Code, len(norm))
	for i, r := range norm {
		t := newToken()
		codes[i] = Code{Token: t, URL: s.URL(t), Label: r.Label, Mode: r.Mode, OwnerMasked: e164.Mask(r.Owner), CreatedAt: now, owner: r.Owner}
	}
	created := strconv.FormatInt(now.UnixMilli(), 10)
	for lo := 0; lo < len(codes); lo += mintChunk {
		hi := min(lo+mintChunk, len(codes))
		_, err := s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for _, c := range codes[lo:hi] {
				pipe.HSet(ctx, codeKey(c.Token), "owner", c.owner, "label", c.Label, "mode", string(c.Mode), "created", created, "rev", "0")
			}
			return nil
		})
		if err != nil {
			// Nobody has seen these tokens: drop the ones already stored.
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			s.rdb.Pipelined(dctx, func(pipe redis.Pipeliner) error {
				for _, c := range codes[:hi] {
					pipe.Del(dctx, codeKey(c.Token))
				}
				return nil
			})
			cancel()
			return nil, fmt.Errorf("mint codes: %w", err)
		}
		if progress != nil {
			progress(hi, len(codes))
		}
	}
	return codes, nil
}

// Get returns the code with token. An unknown or malformed token is an
// error wrapping ErrNotFound; for a revoked code Get returns the code
// (Revoked set) together with an error wrapping ErrRevoked, so the operator
// can still see it.
func (s *Service) Get(ctx context.Context, token string) (Code, error) {
	t, ok := normToken(token)
	if !ok {
		return Code{}, fmt.Errorf("%w: %q is not a qr token", ErrNotFound, token)
	}
	c, err := s.load(ctx, t)
	if err != nil {
		return Code{}, err
	}
	if c.Revoked {
		return c, fmt.Errorf("%w: %s", ErrRevoked, t)
	}
	return c, nil
}

// Owner returns the real number behind a live code, for services that must
// call its owner (callbacks). Unknown and revoked codes give ErrNotFound
// alike. The number must never leave the server.
func (s *Service) Owner(ctx context.Context, token string) (string, error) {
	c, err := s.Get(ctx, token)
	if err != nil {
		return "", fmt.Errorf("%w: qr code", ErrNotFound)
	}
	return c.owner, nil
}

// load reads a well-formed token's code, revoked or not.
func (s *Service) load(ctx context.Context, t string) (Code, error) {
	h, err := s.rdb.HGetAll(ctx, codeKey(t)).Result()
	if err != nil {
		return Code{}, fmt.Errorf("get qr code: %w", err)
	}
	if len(h) == 0 || h["owner"] == "" {
		return Code{}, fmt.Errorf("%w: %s", ErrNotFound, t)
	}
	created, _ := strconv.ParseInt(h["created"], 10, 64)
	return Code{
		Token: t, URL: s.URL(t), Label: h["label"], Mode: Mode(h["mode"]),
		OwnerMasked: e164.Mask(h["owner"]), CreatedAt: time.UnixMilli(created).UTC(),
		Revoked: h["rev"] == "1", owner: h["owner"],
	}, nil
}

// Revoke ends a code for good: later scans answer as for an unknown token,
// and the bindings made by earlier scans that are still active are released.
// Revoking a revoked code is not an error; an unknown token is ErrNotFound.
func (s *Service) Revoke(ctx context.Context, token string) error {
	t, ok := normToken(token)
	if !ok {
		return fmt.Errorf("%w: %q is not a qr token", ErrNotFound, token)
	}
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	r, err := revokeScript.Run(ctx, s.rdb, []string{codeKey(t), scansKey(t)}, now).StringSlice()
	if err != nil {
		return fmt.Errorf("revoke %s: %w", t, err)
	}
	if len(r) == 0 || r[0] != "ok" {
		return fmt.Errorf("%w: %s", ErrNotFound, t)
	}
	var errs []error
	for _, id := range r[1:] {
		if _, err := s.bindings.Release(ctx, id); err != nil && !errors.Is(err, binding.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("revoke %s: release scan bindings: %w", t, err)
	}
	return nil
}
