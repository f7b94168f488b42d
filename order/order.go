// Package order ties e-commerce orders to bindings: opening an order binds
// the buyer and the courier or merchant on a virtual number, completing or
// cancelling it releases the number into quarantine.
package order

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/internal/store"
)

// Sentinel errors callers branch on.
var (
	// ErrNotFound means no order has that id.
	ErrNotFound = errors.New("order not found")
	// ErrConflict means the order exists with other parties.
	ErrConflict = errors.New("order exists with different parties")
	// ErrClosed means the order was completed or cancelled.
	ErrClosed = errors.New("order is closed")
	// ErrInvalidID means the order id is empty or too long.
	ErrInvalidID = errors.New("invalid order id")
)

// Status is an order's lifecycle state.
type Status string

// Order states.
const (
	Open      Status = "open"
	Completed Status = "completed"
	Cancelled Status = "cancelled"
)

// Order is an e-commerce order and its binding.
type Order struct {
	ID       string           `json:"id"`
	Buyer    string           `json:"buyer"`
	Courier  string           `json:"courier"`
	Status   Status           `json:"status"`
	OpenedAt time.Time        `json:"opened_at"`
	ClosedAt *time.Time       `json:"closed_at,omitempty"`
	Binding  *binding.Binding `json:"binding,omitempty"`
}

// Request opens an order.
type Request struct {
	ID, Buyer, Courier string
	// Area prefers virtual numbers tagged with this area.
	Area string
	TTL  time.Duration
	binding.Options
}

// Service opens, shows and closes orders.
type Service struct {
	rdb      redis.UniversalClient
	bindings *binding.Service
}

// New returns an order Service that binds through bindings.
func New(rdb redis.UniversalClient, bindings *binding.Service) *Service {
	return &Service{rdb: rdb, bindings: bindings}
}

func checkID(id string) error {
	if id == "" || len(id) > 128 {
		return fmt.Errorf("%w %q: want 1 to 128 characters", ErrInvalidID, id)
	}
	for _, r := range id {
		if r < 0x21 || r == 0x7f {
			return fmt.Errorf("%w %q: no spaces or control characters", ErrInvalidID, id)
		}
	}
	return nil
}

// claim reserves an order id for the caller that will bind it. It returns 1
// if this caller won, 0 if the order already exists.
var claim = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'buyer', ARGV[1], 'courier', ARGV[2], 'status', 'opening')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1`)

// settle turns a claimed order into an open one with its binding, or drops
// the claim when binding failed (empty binding id).
var settle = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'status') ~= 'opening' then return 0 end
if ARGV[1] == '' then redis.call('DEL', KEYS[1]) return 1 end
redis.call('HSET', KEYS[1], 'binding', ARGV[1], 'status', 'open', 'opened', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1`)

// opening is the status of an order whose binding is being made.
const opening Status = "opening"

// Open creates the order's binding, or returns the order as it is if it is
// already open with the same parties (so a retried or concurrent request
// is harmless).
func (s *Service) Open(ctx context.Context, req Request) (Order, error) {
	if err := checkID(req.ID); err != nil {
		return Order{}, err
	}
	p := s.bindings.Parser()
	buyer, err := p.Parse(req.Buyer)
	if err != nil {
		return Order{}, fmt.Errorf("buyer: %w", err)
	}
	courier, err := p.Parse(req.Courier)
	if err != nil {
		return Order{}, fmt.Errorf("courier: %w", err)
	}
	key := store.OrderKey(req.ID)
	for {
		won, err := claim.Run(ctx, s.rdb, []string{key}, buyer, courier, claimTTL.Milliseconds()).Int()
		if err != nil {
			return Order{}, fmt.Errorf("open order %s: %w", req.ID, err)
		}
		if won == 1 {
			break
		}
		o, err := s.Get(ctx, req.ID)
		if errors.Is(err, ErrNotFound) {
			continue // the claim was dropped: try to win it
		}
		if err != nil {
			return Order{}, err
		}
		if o.Status != opening {
			return s.reopen(o, buyer, courier)
		}
		select {
		case <-ctx.Done():
			return Order{}, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	b, err := s.bindings.Create(ctx, binding.Request{A: buyer, B: courier, Area: req.Area, TTL: req.TTL, OrderID: req.ID, Options: req.Options})
	if err != nil {
		settle.Run(context.WithoutCancel(ctx), s.rdb, []string{key}, "", 0, 0)
		return Order{}, err
	}
	keep := time.Until(b.QuarantineUntil)
	if err := settle.Run(ctx, s.rdb, []string{key}, b.ID, b.CreatedAt.UnixMilli(), keep.Milliseconds()).Err(); err != nil {
		s.bindings.Release(context.WithoutCancel(ctx), b.ID)
		return Order{}, fmt.Errorf("open order %s: %w", req.ID, err)
	}
	return Order{ID: req.ID, Buyer: buyer, Courier: courier, Status: Open, OpenedAt: b.CreatedAt, Binding: &b}, nil
}

// claimTTL bounds how long a crashed opener can hold an order id.
const claimTTL = 30 * time.Second

func (s *Service) reopen(o Order, buyer, courier string) (Order, error) {
	if o.Buyer != buyer || o.Courier != courier {
		return Order{}, fmt.Errorf("%w: %s", ErrConflict, o.ID)
	}
	if o.Status != Open {
		return Order{}, fmt.Errorf("%w: %s is %s", ErrClosed, o.ID, o.Status)
	}
	return o, nil
}

// Get returns an order with its binding.
func (s *Service) Get(ctx context.Context, id string) (Order, error) {
	if err := checkID(id); err != nil {
		return Order{}, err
	}
	h, err := s.rdb.HGetAll(ctx, store.OrderKey(id)).Result()
	if err != nil {
		return Order{}, fmt.Errorf("get order %s: %w", id, err)
	}
	if len(h) == 0 {
		return Order{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	opened, _ := strconv.ParseInt(h["opened"], 10, 64)
	o := Order{ID: id, Buyer: h["buyer"], Courier: h["courier"], Status: Status(h["status"]), OpenedAt: time.UnixMilli(opened).UTC()}
	if c, err := strconv.ParseInt(h["closed"], 10, 64); err == nil {
		t := time.UnixMilli(c).UTC()
		o.ClosedAt = &t
	}
	b, err := s.bindings.Get(ctx, h["binding"])
	switch {
	case err == nil:
		o.Binding = &b
	case !errors.Is(err, binding.ErrNotFound):
		return Order{}, err
	}
	return o, nil
}

// close marks an open order closed; it reports whether this call closed it.
var closeOrder = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'status') ~= 'open' then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'closed', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1`)

// Complete closes the order and releases its number into quarantine.
// Completing a closed order returns it unchanged.
func (s *Service) Complete(ctx context.Context, id string) (Order, error) {
	return s.close(ctx, id, Completed)
}

// Cancel is Complete for an order that did not go through.
func (s *Service) Cancel(ctx context.Context, id string) (Order, error) {
	return s.close(ctx, id, Cancelled)
}

func (s *Service) close(ctx context.Context, id string, st Status) (Order, error) {
	o, err := s.Get(ctx, id)
	if err != nil {
		return Order{}, err
	}
	if o.Status != Open {
		return o, nil
	}
	now := time.Now()
	keep := s.bindings.Quarantine() + time.Minute
	if _, err := closeOrder.Run(ctx, s.rdb, []string{store.OrderKey(id)}, string(st), now.UnixMilli(), keep.Milliseconds()).Int(); err != nil {
		return Order{}, fmt.Errorf("close order %s: %w", id, err)
	}
	if o.Binding != nil {
		if _, err := s.bindings.Release(ctx, o.Binding.ID); err != nil && !errors.Is(err, binding.ErrNotFound) {
			return Order{}, fmt.Errorf("close order %s: %w", id, err)
		}
	}
	return s.Get(ctx, id)
}
