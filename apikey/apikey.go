// Package apikey issues, checks and revokes the API keys that authenticate
// callers of privnum's HTTP API.
//
// A key is 32 random bytes (256 bits) written as "pnk_" followed by 43
// base64url characters. Only its SHA-256 digest is stored. A keyed hash
// (HMAC with a server secret) or a slow password hash buys nothing here:
// those defend low-entropy secrets against guessing once the database
// leaks, and a 256-bit random key cannot be guessed from its digest. A
// plain digest also needs no second secret to distribute to every API
// server and CLI, whose loss would invalidate every key.
//
// The digest is the lookup key: authenticating a request is one HGETALL of
// the record named by the digest of the presented key, so no stored secret
// is ever compared byte by byte with attacker input. The record's digest is
// then compared with subtle.ConstantTimeCompare as a second check.
//
// Redis layout (one hash tag, so the scripts run on Cluster too):
//
//	pn:{apikeys}:k:<sha256 hex>  hash: id, name, scopes, created, hint, digest,
//	                             reqdev ("1": RequireDevice), limits
//	                             ("qr=60/60000,..." : N/window ms per scope;
//	                             absent: DefaultLimit for every scope)
//	pn:{apikeys}:ids             hash: id -> sha256 hex
//	pn:{apikeys}:names           hash: name -> sha256 hex
package apikey

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Sentinel errors callers branch on.
var (
	// ErrUnknownKey means the presented key is not an issued, unrevoked key.
	ErrUnknownKey = errors.New("unknown or revoked API key")
	// ErrNotFound means no key has that name or id.
	ErrNotFound = errors.New("API key not found")
	// ErrExists means a key with that name already exists.
	ErrExists = errors.New("API key name already in use")
	// ErrInvalid means a name or scope is malformed.
	ErrInvalid = errors.New("invalid API key request")
)

// Scope grants access to one part of the API.
type Scope string

// Scopes. Admin grants every other scope.
const (
	Numbers       Scope = "numbers"
	Bindings      Scope = "bindings"
	Orders        Scope = "orders"
	Calls         Scope = "calls"
	QR            Scope = "qr"
	Callbacks     Scope = "callbacks"
	Verifications Scope = "verifications"
	Devices       Scope = "devices"
	Webhooks      Scope = "webhooks"
	Admin         Scope = "admin"
)

// AllScopes lists every scope, in display order.
var AllScopes = []Scope{Numbers, Bindings, Orders, Calls, QR, Callbacks, Verifications, Devices, Webhooks, Admin}

// ParseScopes parses a comma-separated scope list such as "bindings,qr".
// It refuses unknown and empty lists and drops duplicates.
func ParseScopes(s string) ([]Scope, error) {
	var out []Scope
	for _, part := range strings.Split(s, ",") {
		sc := Scope(strings.ToLower(strings.TrimSpace(part)))
		if sc == "" {
			continue
		}
		if !slices.Contains(AllScopes, sc) {
			return nil, fmt.Errorf("%w: scope %q: want one of %s", ErrInvalid, sc, scopeList(AllScopes))
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no scopes: want one or more of %s", ErrInvalid, scopeList(AllScopes))
	}
	return out, nil
}

func scopeList(scopes []Scope) string {
	s := make([]string, len(scopes))
	for i, sc := range scopes {
		s[i] = string(sc)
	}
	return strings.Join(s, ",")
}

// Limit is a rate limit: N requests per Window, in bursts of up to N (a
// token bucket, see package ratelimit). N = 0 means unlimited.
type Limit struct {
	N      int
	Window time.Duration
}

// DefaultLimit applies to every scope for which a key sets no limit,
// including keys created before keys carried limits.
var DefaultLimit = Limit{N: 600, Window: time.Minute}

// Unlimited reports whether l lets everything through.
func (l Limit) Unlimited() bool { return l.N <= 0 }

// String writes l as "N/WINDOW" ("60/1m", "600/1h"), or "unlimited".
func (l Limit) String() string {
	if l.Unlimited() {
		return "unlimited"
	}
	return strconv.Itoa(l.N) + "/" + formatWindow(l.Window)
}

func formatWindow(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return d.String()
}

// MarshalText writes l as String does.
func (l Limit) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText reads what MarshalText writes.
func (l *Limit) UnmarshalText(b []byte) error {
	v, err := parseLimitValue(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// Bounds of a limit.
const (
	maxLimitN      = 1_000_000
	maxLimitWindow = 24 * time.Hour
)

// parseLimitValue parses "N/WINDOW" (WINDOW a Go duration such as 1m or
// 1h30m, at least 1s and at most 24h), "0" or "unlimited".
func parseLimitValue(s string) (Limit, error) {
	s = strings.TrimSpace(s)
	if s == "0" || strings.EqualFold(s, "unlimited") {
		return Limit{}, nil
	}
	ns, ws, ok := strings.Cut(s, "/")
	if !ok {
		return Limit{}, fmt.Errorf("%w: limit %q: want N/WINDOW such as 60/1m, or 0 for unlimited", ErrInvalid, s)
	}
	n, err := strconv.Atoi(strings.TrimSpace(ns))
	if err != nil || n < 0 || n > maxLimitN {
		return Limit{}, fmt.Errorf("%w: limit %q: N must be 0 to %d", ErrInvalid, s, maxLimitN)
	}
	w, err := time.ParseDuration(strings.TrimSpace(ws))
	if err != nil || w < time.Second || w > maxLimitWindow {
		return Limit{}, fmt.Errorf("%w: limit %q: WINDOW must be a duration from 1s to 24h, such as 1m", ErrInvalid, s)
	}
	if n == 0 {
		return Limit{}, nil
	}
	return Limit{N: n, Window: w}, nil
}

// ParseLimit parses "SCOPE=N/WINDOW" such as "qr=60/1m"; "SCOPE=0" means
// unlimited. The scope may be any scope but admin, which no operation
// needs (an admin key is limited per scope of the operation it calls).
func ParseLimit(s string) (Scope, Limit, error) {
	name, val, ok := strings.Cut(s, "=")
	if !ok {
		return "", Limit{}, fmt.Errorf("%w: limit %q: want SCOPE=N/WINDOW such as qr=60/1m", ErrInvalid, s)
	}
	sc := Scope(strings.ToLower(strings.TrimSpace(name)))
	if sc == Admin || !slices.Contains(AllScopes, sc) {
		return "", Limit{}, fmt.Errorf("%w: limit %q: scope %q: want one of %s", ErrInvalid, s, sc, scopeList(AllScopes[:len(AllScopes)-1]))
	}
	l, err := parseLimitValue(val)
	if err != nil {
		return "", Limit{}, err
	}
	return sc, l, nil
}

// encodeLimits writes limits as "qr=60/60000,..." (window in ms), sorted
// by scope.
func encodeLimits(limits map[Scope]Limit) string {
	parts := make([]string, 0, len(limits))
	for sc, l := range limits {
		if l.Unlimited() {
			parts = append(parts, string(sc)+"=0")
			continue
		}
		parts = append(parts, fmt.Sprintf("%s=%d/%d", sc, l.N, l.Window.Milliseconds()))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// decodeLimits reads what encodeLimits writes, skipping malformed entries
// (their scopes get DefaultLimit).
func decodeLimits(s string) map[Scope]Limit {
	if s == "" {
		return nil
	}
	out := map[Scope]Limit{}
	for _, part := range strings.Split(s, ",") {
		name, val, _ := strings.Cut(part, "=")
		if val == "0" {
			out[Scope(name)] = Limit{}
			continue
		}
		ns, ms, _ := strings.Cut(val, "/")
		n, err1 := strconv.Atoi(ns)
		w, err2 := strconv.ParseInt(ms, 10, 64)
		if err1 != nil || err2 != nil || n <= 0 || w <= 0 {
			continue
		}
		out[Scope(name)] = Limit{N: n, Window: time.Duration(w) * time.Millisecond}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// Key describes an issued API key. It never holds the secret.
type Key struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Scopes    []Scope   `json:"scopes"`
	CreatedAt time.Time `json:"created_at"`
	// Hint is the last four characters of the secret, to tell keys apart.
	Hint string `json:"hint"`
	// RequireDevice makes the API demand a verified device token
	// (Privnum-Device-Token) for the scanner's or caller's number on
	// scan-to-call and callback requests made with this key.
	RequireDevice bool `json:"require_device"`
	// Limits are the key's rate limits by scope of the operation called;
	// scopes absent here get DefaultLimit. See LimitFor.
	Limits map[Scope]Limit `json:"limits,omitempty"`
}

// LimitFor returns the rate limit of requests with the key to operations
// that need scope s: the key's own, or DefaultLimit.
func (k Key) LimitFor(s Scope) Limit {
	if l, ok := k.Limits[s]; ok {
		return l
	}
	return DefaultLimit
}

// Policy is what a key demands of the requests made with it, beyond its
// scopes. The zero Policy demands nothing more.
type Policy struct {
	// RequireDevice: see Key.RequireDevice.
	RequireDevice bool
	// Limits: see Key.Limits. Nil gives every scope DefaultLimit.
	Limits map[Scope]Limit
}

// Allows reports whether the key grants scope s (directly or through admin).
func (k Key) Allows(s Scope) bool {
	return slices.Contains(k.Scopes, s) || slices.Contains(k.Scopes, Admin)
}

// Store keeps API keys in Redis.
type Store struct {
	rdb redis.UniversalClient
	now func() time.Time
}

// New returns a Store on rdb.
func New(rdb redis.UniversalClient) *Store {
	return &Store{rdb: rdb, now: time.Now}
}

const (
	idsKey    = "pn:{apikeys}:ids"
	namesKey  = "pn:{apikeys}:names"
	secretPfx = "pnk_"
)

func recordKey(digest string) string { return "pn:{apikeys}:k:" + digest }

func digestOf(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// checkName accepts 1 to 64 characters from [A-Za-z0-9._-], not starting
// with "ak_" (the id prefix), so that revoke NAME|ID is unambiguous.
func checkName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("%w: name %q: want 1 to 64 characters", ErrInvalid, name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("%w: name %q: use letters, digits, '.', '-' and '_'", ErrInvalid, name)
		}
	}
	if strings.HasPrefix(name, "ak_") {
		return fmt.Errorf("%w: name %q: the prefix ak_ is reserved for key ids", ErrInvalid, name)
	}
	return nil
}

// createScript stores a key unless its name or id is taken.
//
// KEYS: 1 names, 2 ids, 3 record. ARGV: 1 name, 2 id, 3 digest, 4 scopes,
// 5 created ms, 6 hint, 7 reqdev ("1" or "0"), 8 limits ("" for none).
var createScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 'name' end
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return 'id' end
redis.call('HSET', KEYS[3], 'id', ARGV[2], 'name', ARGV[1], 'scopes', ARGV[4], 'created', ARGV[5], 'hint', ARGV[6], 'digest', ARGV[3], 'reqdev', ARGV[7])
if ARGV[8] ~= '' then redis.call('HSET', KEYS[3], 'limits', ARGV[8]) end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 'ok'`)

// Create issues a key called name with the given scopes. It returns the
// key's description and the secret, which is not stored and cannot be shown
// again.
func (s *Store) Create(ctx context.Context, name string, scopes []Scope) (Key, string, error) {
	return s.CreateWithPolicy(ctx, name, scopes, Policy{})
}

// CreateWithPolicy is Create for a key with policy p.
func (s *Store) CreateWithPolicy(ctx context.Context, name string, scopes []Scope, p Policy) (Key, string, error) {
	if err := checkName(name); err != nil {
		return Key{}, "", err
	}
	scopes, err := ParseScopes(scopeList(scopes))
	if err != nil {
		return Key{}, "", err
	}
	var limits map[Scope]Limit
	for sc, l := range p.Limits {
		if sc == Admin || !slices.Contains(AllScopes, sc) {
			return Key{}, "", fmt.Errorf("%w: limit for scope %q", ErrInvalid, sc)
		}
		if l.N < 0 || l.N > maxLimitN || !l.Unlimited() && (l.Window < time.Second || l.Window > maxLimitWindow) {
			return Key{}, "", fmt.Errorf("%w: limit %s=%d/%s: N must be 0 to %d, the window 1s to 24h", ErrInvalid, sc, l.N, l.Window, maxLimitN)
		}
		if l.Unlimited() {
			l = Limit{}
		}
		if limits == nil {
			limits = map[Scope]Limit{}
		}
		limits[sc] = l
	}
	for {
		var raw [32]byte
		var idb [6]byte
		rand.Read(raw[:])
		rand.Read(idb[:])
		secret := secretPfx + base64.RawURLEncoding.EncodeToString(raw[:])
		k := Key{
			ID: "ak_" + hex.EncodeToString(idb[:]), Name: name, Scopes: scopes,
			CreatedAt: time.UnixMilli(s.now().UnixMilli()).UTC(), Hint: secret[len(secret)-4:],
			RequireDevice: p.RequireDevice, Limits: limits,
		}
		reqdev := "0"
		if p.RequireDevice {
			reqdev = "1"
		}
		digest := digestOf(secret)
		res, err := createScript.Run(ctx, s.rdb, []string{namesKey, idsKey, recordKey(digest)},
			name, k.ID, digest, scopeList(scopes), k.CreatedAt.UnixMilli(), k.Hint, reqdev, encodeLimits(limits)).Text()
		if err != nil {
			return Key{}, "", fmt.Errorf("create API key %s: %w", name, err)
		}
		switch res {
		case "ok":
			return k, secret, nil
		case "name":
			return Key{}, "", fmt.Errorf("%w: %s", ErrExists, name)
		}
		// An id collision (48 random bits): draw again.
	}
}

func fromHash(h map[string]string) Key {
	created, _ := strconv.ParseInt(h["created"], 10, 64)
	var scopes []Scope
	for _, sc := range strings.Split(h["scopes"], ",") {
		if sc != "" {
			scopes = append(scopes, Scope(sc))
		}
	}
	return Key{ID: h["id"], Name: h["name"], Scopes: scopes, CreatedAt: time.UnixMilli(created).UTC(), Hint: h["hint"],
		RequireDevice: h["reqdev"] == "1", Limits: decodeLimits(h["limits"])}
}

// Authenticate returns the key whose secret is secret, or ErrUnknownKey.
func (s *Store) Authenticate(ctx context.Context, secret string) (Key, error) {
	if !strings.HasPrefix(secret, secretPfx) || len(secret) > 128 {
		return Key{}, ErrUnknownKey
	}
	digest := digestOf(secret)
	h, err := s.rdb.HGetAll(ctx, recordKey(digest)).Result()
	if err != nil {
		return Key{}, fmt.Errorf("look up API key: %w", err)
	}
	if len(h) == 0 {
		return Key{}, ErrUnknownKey
	}
	// The record was found by digest; compare the digest it holds in
	// constant time anyway, so a mangled record never lets a key in.
	if subtle.ConstantTimeCompare([]byte(h["digest"]), []byte(digest)) != 1 {
		return Key{}, ErrUnknownKey
	}
	return fromHash(h), nil
}

// List returns every key, sorted by name. No secret is returned.
func (s *Store) List(ctx context.Context) ([]Key, error) {
	ids, err := s.rdb.HGetAll(ctx, idsKey).Result()
	if err != nil {
		return nil, fmt.Errorf("list API keys: %w", err)
	}
	cmds := make([]*redis.MapStringStringCmd, 0, len(ids))
	_, err = s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for _, digest := range ids {
			cmds = append(cmds, pipe.HGetAll(ctx, recordKey(digest)))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list API keys: %w", err)
	}
	out := make([]Key, 0, len(cmds))
	for _, c := range cmds {
		if h := c.Val(); len(h) > 0 {
			out = append(out, fromHash(h))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// revokeScript deletes a key and its index entries if the record exists.
//
// KEYS: 1 names, 2 ids, 3 record.
var revokeScript = redis.NewScript(`
local h = redis.call('HMGET', KEYS[3], 'id', 'name')
if not h[1] then return 0 end
redis.call('HDEL', KEYS[2], h[1])
redis.call('HDEL', KEYS[1], h[2])
redis.call('DEL', KEYS[3])
return 1`)

// Revoke deletes the key named ref, which is a key id ("ak_...") or a
// name. Requests with the key are refused from then on.
func (s *Store) Revoke(ctx context.Context, ref string) (Key, error) {
	index := namesKey
	if strings.HasPrefix(ref, "ak_") {
		index = idsKey
	}
	digest, err := s.rdb.HGet(ctx, index, ref).Result()
	if errors.Is(err, redis.Nil) {
		return Key{}, fmt.Errorf("%w: %q", ErrNotFound, ref)
	}
	if err != nil {
		return Key{}, fmt.Errorf("revoke API key %s: %w", ref, err)
	}
	h, err := s.rdb.HGetAll(ctx, recordKey(digest)).Result()
	if err != nil {
		return Key{}, fmt.Errorf("revoke API key %s: %w", ref, err)
	}
	ok, err := revokeScript.Run(ctx, s.rdb, []string{namesKey, idsKey, recordKey(digest)}).Int()
	if err != nil {
		return Key{}, fmt.Errorf("revoke API key %s: %w", ref, err)
	}
	if ok == 0 || len(h) == 0 {
		return Key{}, fmt.Errorf("%w: %q", ErrNotFound, ref)
	}
	return fromHash(h), nil
}
