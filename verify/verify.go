// Package verify proves that a caller holds a phone number by a flash call:
// privnum rings the number from a caller ID drawn at random from a
// dedicated pool and hangs up at once; the app (or the user) reports the
// number that called, and a match verifies the number.
//
// The expected caller ID is the secret of a verification. It is written
// only to the verification's own Redis hash: never to the Verification
// returned to API clients, the audit stream, logs or error messages.
//
// Redis layout. A verification lives in its number's slot, so that picking
// a caller ID that the number has not seen within the reuse window is one
// script; a small index maps the verification id to the number.
//
//	pn:{verify}:callerids          set: the verification caller-ID pool (E.164)
//	pn:{verify}:log                stream: audit log (masked number, requester, result)
//	pn:verify:id:{<id>}            string: the verification's number (E.164)
//	pn:verify:{<number>}:v:<id>    hash: num, cid, req, st, att, max, created, exp, ver, cexp, used
//	pn:verify:{<number>}:used      sorted set: the number's verification ids by start (ms)
//	pn:verify:{<number>}:rl        sorted set: per-number rate-limit window
//	pn:verify:{prefix:<digits>}:rl sorted set: per-prefix rate-limit window
//	pn:verify:{req:<requester>}:rl sorted set: per-requester rate-limit window
package verify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/privnum/privnum/e164"
	"github.com/privnum/privnum/reject"
)

// Sentinel errors callers branch on.
var (
	// ErrInvalid means a request field is malformed; nothing was stored.
	// The error is a *reject.FieldError naming the field.
	ErrInvalid = errors.New("invalid verification request")
	// ErrRateLimited means a rate limit refused the start; the error is a
	// *reject.RateLimitError naming the limit (a LimitScope).
	ErrRateLimited = errors.New("verification rate limited")
	// ErrPoolExhausted means every caller ID in the pool was used for this
	// number within the reuse window (or the pool is empty).
	ErrPoolExhausted = errors.New("verification caller-ID pool exhausted")
	// ErrNotFound means no verification has that id.
	ErrNotFound = errors.New("verification not found")
	// ErrExpired means the verification ran out of time before a match.
	ErrExpired = errors.New("verification expired")
	// ErrLocked means the verification used up its checks.
	ErrLocked = errors.New("verification locked: too many checks")
	// ErrMismatch means the reported number is not the one that called.
	ErrMismatch = errors.New("reported number does not match")
	// ErrFailed means the flash call could not be placed; start again.
	ErrFailed = errors.New("verification failed: flash call not placed")
	// ErrNotVerified means Consume found no verified, unconsumed
	// verification for that id and number.
	ErrNotVerified = errors.New("number not verified")
	// ErrCallerIDNotFound means the caller ID is not in the pool.
	ErrCallerIDNotFound = errors.New("caller ID not in verification pool")
)

// Flasher places flash calls. Call control implements it by ringing number
// from callerID and hanging up as soon as it rings (or after a short
// timeout); a process without call control queues verification id for the
// one that has it (QueueFlasher), which places it with FlashJobs. Flash
// returns once the call is placed or queued.
type Flasher interface {
	Flash(ctx context.Context, id, number, callerID string) error
}

// Status is a verification's lifecycle state.
type Status string

// Verification states.
const (
	Pending  Status = "pending"
	Verified Status = "verified"
	Failed   Status = "failed"
	Expired  Status = "expired"
	Locked   Status = "locked"
)

// Verification is what API clients see of a verification. It never holds
// the expected caller ID, and its number is masked.
type Verification struct {
	ID           string    `json:"id"`
	Number       string    `json:"number"`
	Status       Status    `json:"status"`
	ExpiresAt    time.Time `json:"expires_at"`
	AttemptsLeft int       `json:"attempts_left"`
}

// StartRequest asks for a flash-call verification.
type StartRequest struct {
	// Number is the number to verify, national or E.164.
	Number string
	// Requester identifies who asked (an API key id), for rate limits and
	// the audit log: 1 to 128 printable characters, no spaces.
	Requester string
}

// Limit allows at most Max starts in any sliding Window. The zero Limit
// takes the default; Max < 0 turns the limit off.
type Limit struct {
	Max    int
	Window time.Duration
}

// Config tunes a Service. Zero fields take their defaults.
type Config struct {
	// TTL is how long a verification can be checked. Default 60s.
	TTL time.Duration
	// MaxChecks is how many checks a verification allows before it is
	// locked. Default 3.
	MaxChecks int
	// ReuseWindow keeps a caller ID from being used twice for the same
	// number within it. Default 24h.
	ReuseWindow time.Duration
	// MatchLastDigits, when more than 0, compares only the last N digits of
	// the reported and expected numbers, and lets the user report just
	// those digits. 0 compares the whole E.164 number.
	MatchLastDigits int
	// ConsumeWindow is how long after its match a verification can be
	// consumed (by device binding). Default 10m.
	ConsumeWindow time.Duration
	// PrefixDigits is how many leading digits of the E.164 number (without
	// the "+") make the prefix for the per-prefix limit, which catches toll
	// fraud pumping a number range. Default 9.
	PrefixDigits int
	// PerNumber limits starts per number. Default 5 per hour.
	PerNumber Limit
	// PerPrefix limits starts per number prefix. Default 50 per hour.
	PerPrefix Limit
	// PerRequester limits starts per requester. Default 1000 per hour.
	PerRequester Limit
	// LogMaxLen caps the audit stream (approximately). Default 100,000.
	LogMaxLen int64
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

func (l Limit) withDefault(d Limit) Limit {
	if l.Max == 0 {
		return d
	}
	if l.Window <= 0 {
		l.Window = d.Window
	}
	return l
}

// Service starts and checks flash-call verifications.
type Service struct {
	rdb     redis.UniversalClient
	parser  e164.Parser
	flasher Flasher
	cfg     Config
	log     *slog.Logger
}

// New returns a Service on rdb that normalises numbers with parser and
// places calls with flasher.
func New(rdb redis.UniversalClient, parser e164.Parser, flasher Flasher, cfg Config) *Service {
	if cfg.TTL <= 0 {
		cfg.TTL = 60 * time.Second
	}
	if cfg.MaxChecks <= 0 {
		cfg.MaxChecks = 3
	}
	if cfg.ReuseWindow <= 0 {
		cfg.ReuseWindow = 24 * time.Hour
	}
	if cfg.MatchLastDigits < 0 {
		cfg.MatchLastDigits = 0
	}
	if cfg.ConsumeWindow <= 0 {
		cfg.ConsumeWindow = 10 * time.Minute
	}
	if cfg.PrefixDigits <= 0 {
		cfg.PrefixDigits = 9
	}
	cfg.PerNumber = cfg.PerNumber.withDefault(Limit{Max: 5, Window: time.Hour})
	cfg.PerPrefix = cfg.PerPrefix.withDefault(Limit{Max: 50, Window: time.Hour})
	cfg.PerRequester = cfg.PerRequester.withDefault(Limit{Max: 1000, Window: time.Hour})
	if cfg.LogMaxLen <= 0 {
		cfg.LogMaxLen = 100_000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Service{rdb: rdb, parser: parser, flasher: flasher, cfg: cfg, log: cfg.Logger}
}

// Key layout; see the package comment.
const (
	// PoolKey is the set of verification caller IDs.
	PoolKey = "pn:{verify}:callerids"
	// LogKey is the capped audit stream of starts, checks and consumptions.
	LogKey = "pn:{verify}:log"
)

func indexKey(id string) string           { return "pn:verify:id:{" + id + "}" }
func verificationKey(n, id string) string { return "pn:verify:{" + n + "}:v:" + id }
func usedKey(n string) string             { return "pn:verify:{" + n + "}:used" }
func numberLimitKey(n string) string      { return "pn:verify:{" + n + "}:rl" }
func prefixLimitKey(p string) string      { return "pn:verify:{prefix:" + p + "}:rl" }
func requesterLimitKey(r string) string   { return "pn:verify:{req:" + r + "}:rl" }

// newID returns a 128-bit random verification id in hex.
func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func validID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for _, r := range id {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

// invalid is the error for a malformed request field.
func invalid(field, reason string) error {
	return &reject.FieldError{Field: field, Reason: reason, Err: ErrInvalid}
}

func checkRequester(r string) error {
	if r == "" || len(r) > 128 {
		return invalid("requester", "want 1 to 128 characters")
	}
	for _, c := range r {
		if c < 0x21 || c == 0x7f {
			return invalid("requester", "no spaces or control characters")
		}
	}
	return nil
}

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// keep is how long a verification's hash and index live: long enough to
// exclude its caller ID for the reuse window and to report ErrExpired and
// serve Consume after its deadline.
func (s *Service) keep() time.Duration {
	return max(s.cfg.ReuseWindow, s.cfg.TTL+s.cfg.ConsumeWindow) + time.Minute
}

// Start rate-limits the request, picks an unused caller ID, stores the
// verification and places the flash call. If the call cannot be placed the
// verification is marked failed and the error (matching ErrFailed and the
// Flasher's error) is returned with it.
func (s *Service) Start(ctx context.Context, req StartRequest) (Verification, error) {
	number, err := s.parser.Parse(req.Number)
	if err != nil {
		return Verification{}, fmt.Errorf("%w: %w", invalid("number", ""), err)
	}
	if err := checkRequester(req.Requester); err != nil {
		return Verification{}, err
	}
	id := newID()
	now := time.Now()
	ev := event{kind: "start", number: number, requester: req.Requester}
	taken, err := s.takeLimits(ctx, id, number, req.Requester, now)
	if err != nil {
		if rl := (*reject.RateLimitError)(nil); errors.As(err, &rl) {
			ev.result = "rate_limited:" + rl.Limit
			s.record(ctx, ev)
			s.log.InfoContext(ctx, "verification rate limited", "number", e164.Mask(number), "requester", req.Requester, "limit", rl.Limit)
		}
		return Verification{}, err
	}
	v, cid, err := s.create(ctx, id, number, req.Requester, now)
	if err != nil {
		s.refund(context.WithoutCancel(ctx), id, taken)
		if errors.Is(err, ErrPoolExhausted) {
			ev.result = "pool_exhausted"
			s.record(ctx, ev)
			s.log.WarnContext(ctx, "verification pool exhausted", "number", e164.Mask(number), "requester", req.Requester)
		}
		return Verification{}, err
	}
	ev.id = id
	if ferr := s.flasher.Flash(ctx, id, number, cid); ferr != nil {
		ferr = &flashError{number: number, cause: ferr, cid: cid}
		if err := failScript.Run(context.WithoutCancel(ctx), s.rdb, []string{verificationKey(number, id)}).Err(); err != nil {
			return Verification{}, fmt.Errorf("mark verification %s failed: %w (after %w)", id, err, ferr)
		}
		ev.result = "flash_failed"
		s.record(ctx, ev)
		s.log.WarnContext(ctx, "flash call failed", "id", id, "number", e164.Mask(number), "requester", req.Requester, "err", ferr.Error())
		v.Status, v.AttemptsLeft = Failed, 0
		return v, ferr
	}
	ev.result, ev.attemptsLeft = "call_placed", strconv.Itoa(v.AttemptsLeft)
	s.record(ctx, ev)
	s.log.InfoContext(ctx, "verification started", "id", id, "number", e164.Mask(number), "requester", req.Requester)
	return v, nil
}

// create stores a pending verification with a caller ID not used for
// number within the reuse window, and returns it with that caller ID.
func (s *Service) create(ctx context.Context, id, number, requester string, now time.Time) (Verification, string, error) {
	pool, err := s.rdb.SMembers(ctx, PoolKey).Result()
	if err != nil {
		return Verification{}, "", fmt.Errorf("read verification pool: %w", err)
	}
	cands := make([]string, 0, len(pool))
	for _, c := range pool {
		if c != number {
			cands = append(cands, c)
		}
	}
	if len(cands) == 0 {
		return Verification{}, "", fmt.Errorf("%w: no caller IDs for %s", ErrPoolExhausted, e164.Mask(number))
	}
	shuffle(cands)
	keep := s.keep()
	ok, err := s.rdb.SetNX(ctx, indexKey(id), number, keep).Result()
	if err != nil {
		return Verification{}, "", fmt.Errorf("store verification: %w", err)
	}
	if !ok {
		return Verification{}, "", fmt.Errorf("store verification: id collision")
	}
	exp := now.Add(s.cfg.TTL)
	for range 10 {
		var live []string
		live, err = s.rdb.ZRangeByScore(ctx, usedKey(number), &redis.ZRangeBy{
			Min: "(" + strconv.FormatInt(now.Add(-s.cfg.ReuseWindow).UnixMilli(), 10), Max: "+inf",
		}).Result()
		if err != nil {
			break
		}
		keys := []string{verificationKey(number, id), usedKey(number)}
		args := []any{ms(now), s.cfg.ReuseWindow.Milliseconds(), keep.Milliseconds(), id, number, requester,
			ms(exp), s.cfg.MaxChecks, len(live)}
		for _, l := range live {
			keys = append(keys, verificationKey(number, l))
			args = append(args, l)
		}
		for _, c := range cands {
			args = append(args, c)
		}
		var r []string
		r, err = startScript.Run(ctx, s.rdb, keys, args...).StringSlice()
		if err != nil {
			break
		}
		switch r[0] {
		case "ok":
			v := Verification{ID: id, Number: e164.Mask(number), Status: Pending,
				ExpiresAt: time.UnixMilli(exp.UnixMilli()).UTC(), AttemptsLeft: s.cfg.MaxChecks}
			return v, r[1], nil
		case "exhausted":
			s.rdb.Del(context.WithoutCancel(ctx), indexKey(id))
			return Verification{}, "", fmt.Errorf("%w: every caller ID was used for %s within %s", ErrPoolExhausted, e164.Mask(number), s.cfg.ReuseWindow)
		}
		// "retry": the number's verifications changed under us.
		err = errors.New("too much contention on the number")
	}
	s.rdb.Del(context.WithoutCancel(ctx), indexKey(id))
	return Verification{}, "", fmt.Errorf("store verification for %s: %w", e164.Mask(number), err)
}

// flashError is a failed flash call. Its message never holds the caller
// ID, in case the Flasher's error names it.
type flashError struct {
	number, cid string
	cause       error
}

func (e *flashError) Error() string {
	// Replacing a number's last 8 digits covers its E.164, national and
	// "+"-less forms. The number keeps the last 4 digits, as e164.Mask does;
	// the caller ID keeps nothing.
	msg := e.cause.Error()
	if t := tail(e.cid); t != "" {
		msg = strings.ReplaceAll(msg, t, "****")
	}
	if t := tail(e.number); t != "" {
		msg = strings.ReplaceAll(msg, t, "****"+t[len(t)-4:])
	}
	return fmt.Sprintf("%v: flash call to %s: %s", ErrFailed, e164.Mask(e.number), msg)
}

// tail returns the last 8 digits of an E.164 number, or "" if it is shorter.
func tail(n string) string {
	if len(n) < 9 {
		return ""
	}
	return n[len(n)-8:]
}

func (e *flashError) Unwrap() []error { return []error{ErrFailed, e.cause} }

// reported normalises a reported caller ID. With MatchLastDigits N it also
// accepts just digits (at least N), as a user reads them off a missed call.
func (s *Service) reported(r string) (string, error) {
	n, err := s.parser.Parse(r)
	if err == nil {
		return n, nil
	}
	if s.cfg.MatchLastDigits > 0 {
		var d strings.Builder
		for _, c := range strings.TrimSpace(r) {
			switch {
			case c >= '0' && c <= '9':
				d.WriteRune(c)
			case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')' || c == '+':
			default:
				return "", fmt.Errorf("%w: %w", invalid("reported", ""), err)
			}
		}
		if d.Len() >= s.cfg.MatchLastDigits {
			return d.String(), nil
		}
		return "", invalid("reported", fmt.Sprintf("want a phone number or its last %d digits", s.cfg.MatchLastDigits))
	}
	return "", fmt.Errorf("%w: %w", invalid("reported", ""), err)
}

// lookup returns the number of verification id.
func (s *Service) lookup(ctx context.Context, id string) (string, error) {
	if !validID(id) {
		return "", fmt.Errorf("%w: malformed id", ErrNotFound)
	}
	n, err := s.rdb.Get(ctx, indexKey(id)).Result()
	if errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return "", fmt.Errorf("look up verification %s: %w", id, err)
	}
	return n, nil
}

// Check compares the number the user saw calling with the expected caller
// ID. It returns the verification (verified on a match) or ErrMismatch with
// the attempts left; the check that uses up the last attempt fails with
// ErrMismatch and ErrLocked, and later checks with ErrLocked. It fails with
// ErrExpired past the deadline, ErrFailed after a failed flash call and
// ErrNotFound for an unknown id. Checking a verified verification again
// returns it unchanged.
func (s *Service) Check(ctx context.Context, id, reported string) (Verification, error) {
	got, err := s.reported(reported)
	if err != nil {
		return Verification{}, err
	}
	number, err := s.lookup(ctx, id)
	if err != nil {
		return Verification{}, err
	}
	now := time.Now()
	r, err := checkScript.Run(ctx, s.rdb, []string{verificationKey(number, id)},
		ms(now), got, s.cfg.MatchLastDigits, ms(now.Add(s.cfg.ConsumeWindow))).Slice()
	if err != nil {
		return Verification{}, fmt.Errorf("check verification %s: %w", id, err)
	}
	res, st := r[0].(string), r[1].(string)
	att, _ := r[2].(int64)
	maxc, _ := r[3].(int64)
	exp, _ := r[4].(int64)
	requester, _ := r[5].(string)
	if res == "not_found" {
		return Verification{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	v := Verification{ID: id, Number: e164.Mask(number), Status: Status(st), ExpiresAt: time.UnixMilli(exp).UTC()}
	if v.Status == Pending || v.Status == Verified {
		v.AttemptsLeft = int(max(maxc-att, 0))
	}
	s.record(ctx, event{kind: "check", id: id, number: number, requester: requester, result: res, attemptsLeft: strconv.Itoa(v.AttemptsLeft)})
	s.log.InfoContext(ctx, "verification check", "id", id, "number", e164.Mask(number), "requester", requester, "result", res)
	switch res {
	case "verified":
		return v, nil
	case "mismatch":
		if v.Status == Locked {
			return v, fmt.Errorf("%w: %w: no attempts left", ErrMismatch, ErrLocked)
		}
		return v, fmt.Errorf("%w: %d attempts left", ErrMismatch, v.AttemptsLeft)
	case "expired":
		return v, fmt.Errorf("%w: %s", ErrExpired, id)
	case "locked":
		return v, fmt.Errorf("%w: %s", ErrLocked, id)
	case "failed":
		return v, fmt.Errorf("%w: %s", ErrFailed, id)
	}
	return v, fmt.Errorf("check verification %s: unexpected result %q", id, res)
}

// Get returns a verification by id.
func (s *Service) Get(ctx context.Context, id string) (Verification, error) {
	number, err := s.lookup(ctx, id)
	if err != nil {
		return Verification{}, err
	}
	h, err := s.rdb.HMGet(ctx, verificationKey(number, id), "st", "att", "max", "exp").Result()
	if err != nil {
		return Verification{}, fmt.Errorf("get verification %s: %w", id, err)
	}
	if h[0] == nil {
		return Verification{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	num := func(i int) int64 { s, _ := h[i].(string); v, _ := strconv.ParseInt(s, 10, 64); return v }
	st, _ := h[0].(string)
	v := Verification{ID: id, Number: e164.Mask(number), Status: Status(st), ExpiresAt: time.UnixMilli(num(3)).UTC()}
	if v.Status == Pending && time.Now().UnixMilli() >= num(3) {
		v.Status = Expired
	}
	if v.Status == Pending || v.Status == Verified {
		v.AttemptsLeft = int(max(num(2)-num(1), 0))
	}
	return v, nil
}

// FlashTarget returns the number to ring and the caller ID to ring it from
// for a pending, unexpired verification: what call control needs to place a
// queued flash call. Anything else is ErrNotFound or ErrExpired.
func (s *Service) FlashTarget(ctx context.Context, id string) (number, callerID string, err error) {
	number, err = s.lookup(ctx, id)
	if err != nil {
		return "", "", err
	}
	h, err := s.rdb.HMGet(ctx, verificationKey(number, id), "st", "cid", "exp").Result()
	if err != nil {
		return "", "", fmt.Errorf("verification %s: %w", id, err)
	}
	st, _ := h[0].(string)
	cid, _ := h[1].(string)
	expS, _ := h[2].(string)
	exp, _ := strconv.ParseInt(expS, 10, 64)
	if Status(st) != Pending || cid == "" {
		return "", "", fmt.Errorf("%w: %s is not pending", ErrNotFound, id)
	}
	if time.Now().UnixMilli() >= exp {
		return "", "", fmt.Errorf("%w: %s", ErrExpired, id)
	}
	return number, cid, nil
}

// Consume spends a verified verification of number, once: device binding
// calls it before trusting the number. It fails with ErrNotVerified unless
// id is verified for that same number, within the consume window, and not
// consumed yet.
func (s *Service) Consume(ctx context.Context, id, number string) error {
	n, err := s.parser.Parse(number)
	if err != nil {
		return fmt.Errorf("%w: %w", invalid("number", ""), err)
	}
	owner, err := s.lookup(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%w: no verification %s", ErrNotVerified, id)
	}
	if err != nil {
		return err
	}
	ev := event{kind: "consume", id: id, number: n}
	if owner != n {
		ev.result = "other_number"
		s.record(ctx, ev)
		return fmt.Errorf("%w: verification %s is not for %s", ErrNotVerified, id, e164.Mask(n))
	}
	r, err := consumeScript.Run(ctx, s.rdb, []string{verificationKey(n, id)}, ms(time.Now()), n).StringSlice()
	if err != nil {
		return fmt.Errorf("consume verification %s: %w", id, err)
	}
	ev.result, ev.requester = r[0], r[1]
	s.record(ctx, ev)
	switch r[0] {
	case "ok":
		return nil
	case "consumed":
		return fmt.Errorf("%w: verification %s was already used", ErrNotVerified, id)
	case "stale":
		return fmt.Errorf("%w: verification %s is older than %s", ErrNotVerified, id, s.cfg.ConsumeWindow)
	case "not_found":
		return fmt.Errorf("%w: no verification %s", ErrNotVerified, id)
	}
	return fmt.Errorf("%w: verification %s is %s", ErrNotVerified, id, r[0])
}

// event is one audit-log entry. It has no field for a caller ID.
type event struct {
	kind, id, number, requester, result, attemptsLeft string
}

// record appends ev to the audit stream with the number masked. A lost
// entry is logged, never fails the request.
func (s *Service) record(ctx context.Context, ev event) {
	vals := []any{"ev", ev.kind, "number", e164.Mask(ev.number), "requester", ev.requester, "result", ev.result}
	if ev.id != "" {
		vals = append(vals, "id", ev.id)
	}
	if ev.attemptsLeft != "" {
		vals = append(vals, "attempts_left", ev.attemptsLeft)
	}
	err := s.rdb.XAdd(context.WithoutCancel(ctx), &redis.XAddArgs{
		Stream: LogKey, MaxLen: s.cfg.LogMaxLen, Approx: true, Values: vals,
	}).Err()
	if err != nil {
		s.log.WarnContext(ctx, "verification audit log", "ev", ev.kind, "number", e164.Mask(ev.number), "err", err)
	}
}
