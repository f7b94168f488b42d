package qr

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/e164"
	"github.com/privnum/privnum/reject"
)

// ScanResult is what a scan gives the scanner.
type ScanResult struct {
	Mode Mode `json:"mode"`
	// VirtualNumber is the number the scanner dials to reach the owner.
	VirtualNumber string `json:"virtual_number,omitempty"`
	// ExpiresAt is when VirtualNumber stops reaching the owner.
	ExpiresAt time.Time `json:"expires_at"`
	// BindingID is the binding between scanner and owner.
	BindingID string `json:"binding_id,omitempty"`
}

// pendingTTL bounds how long a crashed scan can hold a scanner's claim.
const pendingTTL = 30 * time.Second

// Scan is a scanner calling up the code with token.
//
// The scanner's number is normalised first (an error wrapping
// e164.ErrInvalid, without echoing the input, and nothing stored). An
// unknown, revoked or malformed token is an error wrapping ErrNotFound with
// the same message in every case. Scans are rate limited per scanner and
// per code (*reject.RateLimitError, Limit "scanner" or "token", wrapping
// ErrRateLimited). A scanner equal to the owner is refused (a
// *reject.FieldError naming "scanner", wrapping ErrInvalid).
//
// A middle-number code binds scanner and owner on a virtual number for
// Config.ScanTTL; scanning again while that binding is active returns the
// same binding. A callback code answers ErrCallbackUnavailable.
func (s *Service) Scan(ctx context.Context, token, scanner string) (ScanResult, error) {
	return s.scan(ctx, token, scanner, false)
}

// scan is Scan; public gives the owner of a middle-number code a stand-in
// answer (see ScanPublic) instead of the refusal.
func (s *Service) scan(ctx context.Context, token, scanner string, public bool) (ScanResult, error) {
	scanner, err := s.parser.Parse(scanner)
	if err != nil {
		return ScanResult{}, &reject.FieldError{Field: "scanner", Err: e164.ErrInvalid}
	}
	gone := fmt.Errorf("scan: %w", ErrNotFound)
	t, ok := normToken(token)
	if !ok {
		return ScanResult{}, gone
	}
	if err := s.limit(ctx, "scanner", scannerLimitKey(scanner), s.cfg.PerScannerLimit); err != nil {
		return ScanResult{}, err
	}
	c, err := s.load(ctx, t)
	if errors.Is(err, ErrNotFound) || err == nil && c.Revoked {
		return ScanResult{}, gone
	}
	if err != nil {
		return ScanResult{}, err
	}
	if err := s.limit(ctx, "token", tokenLimitKey(t), s.cfg.PerTokenLimit); err != nil {
		return ScanResult{}, err
	}
	if scanner == c.owner {
		switch {
		case public && c.Mode == MiddleNumber:
			return s.decoy(ctx, c)
		case public && c.Mode == Callback:
			// The same answer as any scanner's: the callback service
			// gives the owner a stand-in (callback.Service.Start).
			return ScanResult{}, fmt.Errorf("scan: %w", ErrCallbackUnavailable)
		}
		return ScanResult{}, invalid("scanner", "the scanner is the code's owner")
	}
	switch c.Mode {
	case MiddleNumber:
		return s.middleNumber(ctx, c, scanner)
	case Callback:
		return ScanResult{}, fmt.Errorf("scan: %w", ErrCallbackUnavailable)
	}
	return ScanResult{}, fmt.Errorf("scan: code has unknown mode %q", c.Mode)
}

// limit counts one event in key's fixed window and fails once the count
// passes n (n < 0: no limit).
func (s *Service) limit(ctx context.Context, scope, key string, n int) error {
	if n < 0 {
		return nil
	}
	r, err := limitScript.Run(ctx, s.rdb, []string{key}, s.cfg.LimitWindow.Milliseconds()).Int64Slice()
	if err != nil {
		return fmt.Errorf("rate limit: %w", err)
	}
	if r[0] > int64(n) {
		return &reject.RateLimitError{Limit: scope, RetryAfter: time.Duration(max(r[1], 0)) * time.Millisecond, Err: ErrRateLimited}
	}
	return nil
}

// middleNumber returns the scanner's active binding to the owner, making
// one if there is none. A claim key makes concurrent scans by the same
// scanner share one binding.
func (s *Service) middleNumber(ctx context.Context, c Code, scanner string) (ScanResult, error) {
	key := scanKey(c.Token, scanner)
	var nonce [8]byte
	rand.Read(nonce[:])
	claim := "pending:" + hex.EncodeToString(nonce[:])
	for {
		v, err := claimScript.Run(ctx, s.rdb, []string{key}, claim, pendingTTL.Milliseconds()).Text()
		if err != nil {
			return ScanResult{}, fmt.Errorf("scan: %w", err)
		}
		switch {
		case v == "":
			return s.bind(ctx, c, scanner, key, claim)
		case strings.HasPrefix(v, "pending:"):
			select {
			case <-ctx.Done():
				return ScanResult{}, ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		default:
			b, err := s.bindings.Get(ctx, v)
			if err == nil && b.State == binding.Active {
				return ScanResult{Mode: MiddleNumber, VirtualNumber: b.X, ExpiresAt: b.ExpiresAt, BindingID: b.ID}, nil
			}
			if err != nil && !errors.Is(err, binding.ErrNotFound) {
				return ScanResult{}, fmt.Errorf("scan: %w", err)
			}
			// The binding ended early (released by an operator): drop it
			// and make a new one.
			if err := dropScript.Run(ctx, s.rdb, []string{key}, v).Err(); err != nil {
				return ScanResult{}, fmt.Errorf("scan: %w", err)
			}
		}
	}
}

// bind makes the binding for a claim this scan won.
func (s *Service) bind(ctx context.Context, c Code, scanner, key, claim string) (ScanResult, error) {
	b, err := s.bindings.Create(ctx, binding.Request{A: scanner, B: c.owner, TTL: s.cfg.ScanTTL, Quarantine: s.cfg.ScanQuarantine})
	if err != nil {
		dropScript.Run(context.WithoutCancel(ctx), s.rdb, []string{key}, claim)
		return ScanResult{}, fmt.Errorf("scan: %w", err)
	}
	now := time.Now()
	keep := max(b.ExpiresAt.Sub(now), time.Millisecond)
	res, err := settleScript.Run(ctx, s.rdb, []string{key, scansKey(c.Token), codeKey(c.Token)},
		claim, b.ID, keep.Milliseconds(), b.ExpiresAt.UnixMilli(), now.UnixMilli()).Text()
	if err != nil || res != "ok" {
		s.bindings.Release(context.WithoutCancel(ctx), b.ID)
		if err != nil {
			return ScanResult{}, fmt.Errorf("scan: %w", err)
		}
		if res == "revoked" {
			return ScanResult{}, fmt.Errorf("scan: %w", ErrNotFound)
		}
		return ScanResult{}, fmt.Errorf("scan: lost the claim on the scanner's binding, try again")
	}
	return ScanResult{Mode: MiddleNumber, VirtualNumber: b.X, ExpiresAt: b.ExpiresAt, BindingID: b.ID}, nil
}

// limitScript counts one event in a fixed window: INCR, and PEXPIRE when
// the window opens (or the key somehow lost its expiry).
//
// KEYS: 1 counter. ARGV: 1 window ms. Returns {count, ms left}.
var limitScript = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
local left = redis.call('PTTL', KEYS[1])
if n == 1 or left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
return {n, left}
`)

// claimScript returns the scanner's binding id or pending claim, or takes
// the claim and returns "".
//
// KEYS: 1 scan key. ARGV: 1 claim, 2 claim ttl ms.
var claimScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then return v end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return ''
`)

// settleScript turns a claim into the binding id, unless the claim was lost
// or the code revoked meanwhile, and records the binding for Revoke.
//
// KEYS: 1 scan key, 2 scans set, 3 code. ARGV: 1 claim, 2 binding id,
// 3 ttl ms, 4 expiry ms, 5 now ms.
var settleScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 'lost' end
if redis.call('HGET', KEYS[3], 'rev') ~= '0' then
  redis.call('DEL', KEYS[1])
  return 'revoked'
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[2])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
return 'ok'
`)

// dropScript deletes the scan key if it still holds ARGV[1].
var dropScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
`)

// revokeScript marks a code revoked and returns "ok" and the ids of the
// scan bindings still active, or {"not_found"}.
//
// KEYS: 1 code, 2 scans set. ARGV: 1 now ms.
var revokeScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], 'owner') == 0 then return {'not_found'} end
if redis.call('HGET', KEYS[1], 'rev') ~= '1' then
  redis.call('HSET', KEYS[1], 'rev', '1', 'revoked', ARGV[1])
end
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[1], '+inf')
redis.call('DEL', KEYS[2])
local out = {'ok'}
for _, id in ipairs(ids) do out[#out + 1] = id end
return out
`)

// ScanPublic is Scan for the public scan page, which must not tell anyone
// whether the number entered is the code's owner's. The owner scanning
// their own middle-number code gets an answer shaped like any scanner's: a
// virtual number the owner holds nothing on, the same on every scan for
// ScanTTL, and nothing is bound (calling it from the owner's phone reaches
// no one through this code). The owner scanning their own callback-mode
// code gets ErrCallbackUnavailable like any scanner, and the callback
// service then makes a stand-in callback that dials no one (see
// callback.Service.Start). Every other case is Scan's.
func (s *Service) ScanPublic(ctx context.Context, token, scanner string) (ScanResult, error) {
	return s.scan(ctx, token, scanner, true)
}

// decoy returns the owner's stand-in scan of their own code, made once per
// ScanTTL.
func (s *Service) decoy(ctx context.Context, c Code) (ScanResult, error) {
	key := scanKey(c.Token, c.owner) + ":decoy"
	if v, err := s.rdb.Get(ctx, key).Result(); err == nil {
		if x, exp, ok := strings.Cut(v, "|"); ok {
			if ms, err := strconv.ParseInt(exp, 10, 64); err == nil {
				return ScanResult{Mode: MiddleNumber, VirtualNumber: x, ExpiresAt: time.UnixMilli(ms).UTC()}, nil
			}
		}
	} else if !errors.Is(err, redis.Nil) {
		return ScanResult{}, fmt.Errorf("scan: %w", err)
	}
	x, err := s.bindings.Spare(ctx, c.owner)
	if err != nil {
		return ScanResult{}, fmt.Errorf("scan: %w", err)
	}
	exp := time.UnixMilli(time.Now().Add(s.cfg.ScanTTL).UnixMilli()).UTC()
	ok, err := s.rdb.SetNX(ctx, key, x+"|"+strconv.FormatInt(exp.UnixMilli(), 10), s.cfg.ScanTTL).Result()
	if err != nil {
		return ScanResult{}, fmt.Errorf("scan: %w", err)
	}
	if !ok { // a concurrent scan made it first
		return s.decoy(ctx, c)
	}
	return ScanResult{Mode: MiddleNumber, VirtualNumber: x, ExpiresAt: exp}, nil
}
