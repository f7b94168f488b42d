// Package callback places click-to-call callbacks: from an identification
// code (a QR token, an order id, or a code the operator mapped to two
// parties) it calls both parties on a virtual number and bridges them, and
// if that fails it sends a preset message to the second party.
package callback

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/call"
	"github.com/privnum/privnum/cdr"
	"github.com/privnum/privnum/e164"
	"github.com/privnum/privnum/order"
	"github.com/privnum/privnum/reject"
)

// Sentinel errors callers branch on.
var (
	// ErrNotFound means no callback has that id.
	ErrNotFound = errors.New("callback not found")
	// ErrUnknownCode means the identification code names no parties.
	ErrUnknownCode = errors.New("unknown identification code")
	// ErrInvalid means a request field is missing or malformed. The error
	// is a *reject.FieldError naming the field ("code", "caller", "first",
	// "second") when there is one.
	ErrInvalid = errors.New("invalid callback request")
)

// Dialer places the calls. *call.App implements it.
type Dialer interface {
	Callback(ctx context.Context, r call.CallbackRequest) error
}

// Queue hands a callback to the process holding the ARI connection.
// *dialq.Queue implements it.
type Queue interface {
	Enqueue(ctx context.Context, kind, id string) error
}

// JobKind is the dial-queue kind of callback jobs.
const JobKind = "callback"

// Owners finds the owner behind a QR token. *qr.Service implements it.
type Owners interface {
	Owner(ctx context.Context, token string) (string, error)
}

// Sender delivers the preset message to the second party when a callback
// fails.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// Message is the preset message for a failed callback.
type Message struct {
	CallbackID string `json:"callback_id"`
	// To is the second party's real number.
	To     string `json:"to"`
	Text   string `json:"text"`
	Reason string `json:"reason"`
	// X is the virtual number the second party can call back.
	X string `json:"x"`
}

// Publisher receives callback state events (webhooks). Optional.
type Publisher interface {
	PublishCallback(ctx context.Context, cb Callback) error
}

// Callback is a callback's state as the API shows it; parties are masked.
type Callback struct {
	ID          string             `json:"id"`
	State       call.CallbackState `json:"state"`
	Reason      string             `json:"reason,omitempty"`
	X           string             `json:"x"`
	BindingID   string             `json:"binding_id,omitempty"`
	First       string             `json:"first"`
	Second      string             `json:"second"`
	CreatedAt   time.Time          `json:"created_at"`
	UpdatedAt   time.Time          `json:"updated_at"`
	MessageSent bool               `json:"message_sent"`
}

// Request starts a callback.
type Request struct {
	// Code is the identification code: a code mapped with MapCode, an
	// order id, or a QR token.
	Code string
	// Caller is the requester's number; required for QR tokens, where it
	// is the first party called.
	Caller string
	// PartyOnly refuses a mapped code or an order unless Caller is one of
	// its parties, who is then called first (a key that requires a
	// verified device: the device's number must be a party). The refusal
	// reads as an unknown code, so it tells nothing about the code.
	PartyOnly bool
}

// Config tunes a Service.
type Config struct {
	// Message is the preset text sent to the second party on failure.
	Message string
	// BindingTTL is the life of the binding made for a callback when the
	// parties have none. Default 15 min.
	BindingTTL time.Duration
	// Keep is how long a callback's state stays queryable. Default 7 days.
	Keep time.Duration
	// RingTimeout is how long a stand-in callback (a QR code's owner
	// asking for a callback from their own code, see Start) seems to ring
	// the first party before it fails as unanswered; set it to call
	// control's ring timeout. Default 30s, call control's default.
	RingTimeout time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Service starts callbacks and tracks their state.
type Service struct {
	rdb      redis.UniversalClient
	parser   e164.Parser
	bindings *binding.Service
	orders   *order.Service
	owners   Owners
	queue    Queue
	dialer   Dialer
	sender   Sender
	pub      Publisher
	cfg      Config
	updates  updates
}

// updates is the ordered queue of state changes between call control,
// which must never wait on it, and Run, which applies them.
type updates struct {
	mu   sync.Mutex
	q    []update
	wake chan struct{} // holds a token while q may be non-empty
}

// add queues u without blocking.
func (u *updates) add(x update) {
	u.mu.Lock()
	u.q = append(u.q, x)
	u.mu.Unlock()
	select {
	case u.wake <- struct{}{}:
	default:
	}
}

// take returns and clears what is queued.
func (u *updates) take() []update {
	u.mu.Lock()
	defer u.mu.Unlock()
	q := u.q
	u.q = nil
	return q
}

// update is one reported state change, applied in order by Run.
type update struct {
	id     string
	state  call.CallbackState
	reason string
}

// Deps are the services a callback Service works with. Owners, Queue,
// Dialer and Publisher may be nil: without a Queue, Start dials at once
// through Dialer (one process holding the ARI connection); without a
// Dialer, the Service only starts callbacks and queues them for the process
// that has one.
type Deps struct {
	Bindings  *binding.Service
	Orders    *order.Service
	Owners    Owners
	Queue     Queue
	Dialer    Dialer
	Sender    Sender
	Publisher Publisher
}

// New returns a callback Service.
func New(rdb redis.UniversalClient, d Deps, cfg Config) *Service {
	if cfg.Message == "" {
		cfg.Message = "We tried to connect you with your contact but could not reach them. Call back on the number this message comes from."
	}
	if cfg.BindingTTL <= 0 {
		cfg.BindingTTL = 15 * time.Minute
	}
	if cfg.Keep <= 0 {
		cfg.Keep = 7 * 24 * time.Hour
	}
	if cfg.RingTimeout <= 0 {
		cfg.RingTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Service{rdb: rdb, parser: d.Bindings.Parser(), bindings: d.Bindings, orders: d.Orders, owners: d.Owners,
		queue: d.Queue, dialer: d.Dialer, sender: d.Sender, pub: d.Publisher, cfg: cfg, updates: updates{wake: make(chan struct{}, 1)}}
}

// invalid is the error for a malformed request field.
func invalid(field, reason string) error {
	return &reject.FieldError{Field: field, Reason: reason, Err: ErrInvalid}
}

func key(id string) string    { return "pn:callback:{" + id + "}" }
func codeKey(c string) string { return "pn:cbcode:{" + c + "}" }
func checkCode(c string) error {
	if c == "" || len(c) > 128 {
		return invalid("code", "want 1 to 128 characters")
	}
	for _, r := range c {
		if r <= ' ' || r == 0x7f {
			return invalid("code", "no spaces or control characters")
		}
	}
	return nil
}

// MapCode makes code stand for a callback from first to second.
func (s *Service) MapCode(ctx context.Context, code, first, second string) error {
	if err := checkCode(code); err != nil {
		return err
	}
	f, err := s.parser.Parse(first)
	if err != nil {
		return fmt.Errorf("%w: %w", invalid("first", ""), err)
	}
	sec, err := s.parser.Parse(second)
	if err != nil {
		return fmt.Errorf("%w: %w", invalid("second", ""), err)
	}
	if f == sec {
		return fmt.Errorf("%w: the parties are the same number", ErrInvalid)
	}
	if err := s.rdb.HSet(ctx, codeKey(code), "first", f, "second", sec).Err(); err != nil {
		return fmt.Errorf("map code: %w", err)
	}
	return nil
}

// UnmapCode removes a mapped code.
func (s *Service) UnmapCode(ctx context.Context, code string) error {
	n, err := s.rdb.Del(ctx, codeKey(code)).Result()
	if err != nil {
		return fmt.Errorf("unmap code: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %s", ErrUnknownCode, code)
	}
	return nil
}

// parties resolves an identification code to the two parties and, where
// the code has one, their active binding.
func (s *Service) parties(ctx context.Context, r Request) (first, second string, b *binding.Binding, err error) {
	if err := checkCode(r.Code); err != nil {
		return "", "", nil, err
	}
	m, err := s.rdb.HGetAll(ctx, codeKey(r.Code)).Result()
	if err != nil {
		return "", "", nil, fmt.Errorf("look up code: %w", err)
	}
	if len(m) > 0 {
		first, second, err := s.requester(r, m["first"], m["second"])
		return first, second, nil, err
	}
	if s.orders != nil {
		o, err := s.orders.Get(ctx, r.Code)
		switch {
		case err == nil && o.Status == order.Open && o.Binding != nil && o.Binding.State == binding.Active:
			// The courier asks to reach the buyer.
			first, second, err := s.requester(r, o.Courier, o.Buyer)
			return first, second, o.Binding, err
		case err == nil:
			return "", "", nil, fmt.Errorf("%w: order %s is %s", ErrUnknownCode, r.Code, o.Status)
		case !errors.Is(err, order.ErrNotFound) && !errors.Is(err, order.ErrInvalidID):
			return "", "", nil, err
		}
	}
	if s.owners != nil {
		owner, err := s.owners.Owner(ctx, r.Code)
		if err == nil {
			if r.Caller == "" {
				return "", "", nil, invalid("caller", "a QR code callback needs the caller's number")
			}
			caller, err := s.parser.Parse(r.Caller)
			if err != nil {
				return "", "", nil, fmt.Errorf("%w: %w", invalid("caller", ""), err)
			}
			if caller == owner {
				return caller, owner, nil, errOwnCode
			}
			return caller, owner, nil, nil
		}
	}
	return "", "", nil, ErrUnknownCode
}

// errOwnCode is parties' answer for a QR code's owner asking for a
// callback from their own code.
var errOwnCode = errors.New("the caller is the QR code's owner")

// requester orders a code's parties for r: with PartyOnly, the caller
// must be one of them and is called first.
func (s *Service) requester(r Request, first, second string) (string, string, error) {
	if !r.PartyOnly {
		return first, second, nil
	}
	caller, err := s.parser.Parse(r.Caller)
	switch {
	case err == nil && caller == first:
		return first, second, nil
	case err == nil && caller == second:
		return second, first, nil
	}
	s.log().Warn("callback refused: the requester is not a party of the code", "caller", e164.Mask(r.Caller))
	return "", "", fmt.Errorf("%w: %s", ErrUnknownCode, r.Code)
}

// Start resolves the code, makes sure the parties share a virtual number,
// and starts calling. The returned Callback is in state requested when it
// is queued, else calling-first (or failed if the first call could not
// even be placed).
//
// A QR code's owner asking for a callback from their own code (on the
// scan page, or through the API) must learn nothing a stranger would not:
// whoever types a number there sees only the answer, and it must not tell
// whether the number is the owner's. So the owner gets a stand-in
// callback, the same answer as anyone's: a callback id, a virtual number
// the owner holds nothing on (binding.Service.Spare), a binding id that
// names no binding, queued like any other. Nothing connects the owner to
// themselves: no binding is made and no call is placed. The stand-in then
// goes through the states of a callback whose first party did not answer:
// calling-first when dialed, failed with reason first_no_answer after
// Config.RingTimeout. The owner's phone does not ring and gets no message
// (ringing it would hand anyone who knows the number a way to call it,
// and the message would offer a number that reaches no one); the prober,
// who is not the owner, sees only the page or the API answer, and those
// are a stranger's.
func (s *Service) Start(ctx context.Context, r Request) (Callback, error) {
	first, second, b, err := s.parties(ctx, r)
	standIn := errors.Is(err, errOwnCode)
	if err != nil && !standIn {
		return Callback{}, err
	}
	switch {
	case standIn:
		x, err := s.bindings.Spare(ctx, second)
		if err != nil {
			return Callback{}, fmt.Errorf("virtual number for the callback: %w", err)
		}
		b = &binding.Binding{X: x, ID: binding.UnboundID(x)}
	case b == nil:
		nb, err := s.bindings.Create(ctx, binding.Request{A: first, B: second, TTL: s.cfg.BindingTTL})
		if err != nil {
			return Callback{}, fmt.Errorf("virtual number for the callback: %w", err)
		}
		b = &nb
	}
	id := newID()
	now := time.Now()
	fields := []any{"state", string(call.CallbackRequested), "first", first, "second", second,
		"x", b.X, "binding", b.ID, "created", now.UnixMilli(), "updated", now.UnixMilli()}
	if standIn {
		fields = append(fields, "standin", "1")
	}
	err = s.rdb.HSet(ctx, key(id), fields...).Err()
	if err == nil {
		err = s.rdb.PExpire(ctx, key(id), s.cfg.Keep).Err()
	}
	if err != nil {
		return Callback{}, fmt.Errorf("store callback: %w", err)
	}
	if standIn {
		s.log().Info("callback requested by the QR code's owner: a stand-in, nothing will be dialed", "callback", id, "owner", e164.Mask(second), "x", b.X)
	} else {
		s.log().Info("callback requested", "callback", id, "first", e164.Mask(first), "second", e164.Mask(second), "x", b.X)
	}
	if s.queue != nil {
		if err := s.queue.Enqueue(ctx, JobKind, id); err != nil {
			s.rdb.HSet(context.WithoutCancel(ctx), key(id), "state", string(call.CallbackFailed), "reason", "not_queued")
			return Callback{}, err
		}
	} else if err := s.Dial(ctx, id); err != nil {
		s.log().Warn("callback could not start", "callback", id, "err", err)
	}
	return s.Get(ctx, id)
}

// Dial places a requested callback's calls; the outcome arrives through
// the state updates that Run applies. It needs the Dialer.
func (s *Service) Dial(ctx context.Context, id string) error {
	if s.dialer == nil {
		return fmt.Errorf("callback %s: no call control in this process", id)
	}
	h, err := s.rdb.HGetAll(ctx, key(id)).Result()
	if err != nil {
		return fmt.Errorf("callback %s: %w", id, err)
	}
	if len(h) == 0 {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	// Take the callback atomically, so that a job delivered twice dials once.
	taken, err := takeScript.Run(ctx, s.rdb, []string{key(id)}, string(call.CallbackRequested), string(call.CallbackCallingFirst)).Int()
	if err != nil {
		return fmt.Errorf("callback %s: %w", id, err)
	}
	if taken == 0 {
		return fmt.Errorf("callback %s is %s, not requested", id, h["state"])
	}
	if h["standin"] == "1" {
		// The owner's own callback (see Start): nothing is dialed; it
		// fails unanswered after the ring timeout, as a callback whose
		// first party does not pick up.
		s.updates.add(update{id, call.CallbackCallingFirst, ""})
		time.AfterFunc(s.cfg.RingTimeout, func() {
			s.updates.add(update{id, call.CallbackFailed, "first_" + string(cdr.NoAnswer)})
		})
		return nil
	}
	err = s.dialer.Callback(ctx, call.CallbackRequest{
		ID: id, First: h["first"], Second: h["second"], X: h["x"], BindingID: h["binding"],
		Report: func(st call.CallbackState, reason string) { s.updates.add(update{id, st, reason}) },
	})
	if err != nil {
		return fmt.Errorf("callback %s: %w", id, err)
	}
	return nil
}

// takeScript moves a callback from ARGV[1] to ARGV[2] if it is in ARGV[1].
var takeScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'state') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[2])
return 1`)

// Run applies reported state changes in order until ctx is done; run it
// once beside the Service. Reporting never waits for Run: changes reported
// while it is not running are applied when it runs.
func (s *Service) Run(ctx context.Context) {
	for {
		for _, u := range s.updates.take() {
			s.apply(ctx, u)
		}
		select {
		case <-ctx.Done():
			return
		case <-s.updates.wake:
		}
	}
}

// apply stores a state change, publishes it and, on failure, sends the
// preset message to the second party.
func (s *Service) apply(ctx context.Context, u update) {
	err := s.rdb.HSet(ctx, key(u.id), "state", string(u.state), "reason", u.reason, "updated", time.Now().UnixMilli()).Err()
	if err != nil {
		s.log().Error("callback state lost", "callback", u.id, "state", u.state, "err", err)
	}
	cb, err := s.Get(ctx, u.id)
	if err != nil {
		return
	}
	if s.pub != nil {
		if err := s.pub.PublishCallback(ctx, cb); err != nil {
			s.log().Warn("callback event not published", "callback", u.id, "err", err)
		}
	}
	if u.state != call.CallbackFailed || u.reason == "cancelled" {
		return
	}
	h, err := s.rdb.HMGet(ctx, key(u.id), "second", "standin").Result()
	if err != nil || len(h) != 2 {
		return
	}
	second, _ := h[0].(string)
	if second == "" || h[1] == "1" { // a stand-in sends the owner nothing (see Start)
		return
	}
	err = s.sender.Send(ctx, Message{CallbackID: u.id, To: second, Text: s.cfg.Message, Reason: u.reason, X: cb.X})
	if err != nil {
		s.log().Error("callback message not sent", "callback", u.id, "to", e164.Mask(second), "err", err)
		return
	}
	s.rdb.HSet(ctx, key(u.id), "message_sent", "1")
	s.log().Info("callback message sent", "callback", u.id, "to", e164.Mask(second), "reason", u.reason)
}

// Get returns a callback's state.
func (s *Service) Get(ctx context.Context, id string) (Callback, error) {
	h, err := s.rdb.HGetAll(ctx, key(id)).Result()
	if err != nil {
		return Callback{}, fmt.Errorf("get callback %s: %w", id, err)
	}
	if len(h) == 0 {
		return Callback{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	ms := func(k string) time.Time { n, _ := strconv.ParseInt(h[k], 10, 64); return time.UnixMilli(n).UTC() }
	return Callback{
		ID: id, State: call.CallbackState(h["state"]), Reason: h["reason"], X: h["x"], BindingID: h["binding"],
		First: e164.Mask(h["first"]), Second: e164.Mask(h["second"]),
		CreatedAt: ms("created"), UpdatedAt: ms("updated"), MessageSent: h["message_sent"] == "1",
	}, nil
}

func (s *Service) log() *slog.Logger { return s.cfg.Logger }

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
