package order_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/e164"
	"github.com/privnum/privnum/internal/redistest"
	"github.com/privnum/privnum/order"
	"github.com/privnum/privnum/pool"
)

func newService(t *testing.T, n int) (*order.Service, *binding.Service) {
	t.Helper()
	rdb := redistest.Client(t)
	cn := e164.Parser{Region: "CN"}
	p := pool.New(rdb, cn)
	var entries []pool.Entry
	for i := 0; i < n; i++ {
		entries = append(entries, pool.Entry{Number: "+861700000000" + string(rune('0'+i))})
	}
	if _, err := p.Add(context.Background(), entries); err != nil {
		t.Fatal(err)
	}
	b := binding.New(rdb, p, cn, binding.Config{Quarantine: time.Hour})
	return order.New(rdb, b), b
}

func TestOrderLifecycle(t *testing.T) {
	ctx := context.Background()
	s, bs := newService(t, 2)
	o, err := s.Open(ctx, order.Request{ID: "SO-1001", Buyer: "13800000001", Courier: "13900000002", TTL: 72 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if o.Status != order.Open || o.Binding == nil || o.Binding.OrderID != "SO-1001" {
		t.Fatalf("order = %+v", o)
	}
	again, err := s.Open(ctx, order.Request{ID: "SO-1001", Buyer: "+8613800000001", Courier: "13900000002", TTL: 72 * time.Hour})
	if err != nil || again.Binding.ID != o.Binding.ID {
		t.Fatalf("reopen = %+v, %v; want the same binding", again, err)
	}
	if _, err := s.Open(ctx, order.Request{ID: "SO-1001", Buyer: "13800000001", Courier: "13900000003", TTL: time.Hour}); !errors.Is(err, order.ErrConflict) {
		t.Fatalf("conflicting reopen: %v", err)
	}
	r, _ := bs.Resolve(ctx, o.Binding.X, "13900000002")
	if r.Target != "+8613800000001" {
		t.Fatalf("courier reaches %q", r.Target)
	}
	done, err := s.Complete(ctx, "SO-1001")
	if err != nil || done.Status != order.Completed || done.ClosedAt == nil || done.Binding.State != binding.Released {
		t.Fatalf("Complete = %+v, %v", done, err)
	}
	r, _ = bs.Resolve(ctx, o.Binding.X, "13900000002")
	if r.Reason != binding.ReasonExpired {
		t.Fatalf("after complete courier gets %+v", r)
	}
	if _, err := s.Complete(ctx, "SO-1001"); err != nil {
		t.Fatalf("second Complete: %v", err)
	}
	if _, err := s.Open(ctx, order.Request{ID: "SO-1001", Buyer: "13800000001", Courier: "13900000002", TTL: time.Hour}); !errors.Is(err, order.ErrClosed) {
		t.Fatalf("open closed order: %v", err)
	}
}

func TestOrderErrors(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t, 1)
	if _, err := s.Get(ctx, "nope"); !errors.Is(err, order.ErrNotFound) {
		t.Fatalf("Get unknown: %v", err)
	}
	if _, err := s.Open(ctx, order.Request{ID: "", Buyer: "13800000001", Courier: "13900000002", TTL: time.Hour}); !errors.Is(err, order.ErrInvalidID) {
		t.Fatalf("empty id: %v", err)
	}
	if _, err := s.Open(ctx, order.Request{ID: "A1", Buyer: "junk", Courier: "13900000002", TTL: time.Hour}); !errors.Is(err, e164.ErrInvalid) {
		t.Fatalf("bad buyer: %v", err)
	}
	if _, err := s.Get(ctx, "A1"); !errors.Is(err, order.ErrNotFound) {
		t.Fatalf("bad input stored an order: %v", err)
	}
}

// TestConcurrentOpen: racing opens of one order give one binding.
func TestConcurrentOpen(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t, 3)
	var wg sync.WaitGroup
	ids := make([]string, 8)
	for i := range ids {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			o, err := s.Open(ctx, order.Request{ID: "race", Buyer: "13800000001", Courier: "13900000002", TTL: time.Hour})
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = o.Binding.ID
		}(i)
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("racing opens gave different bindings: %v", ids)
		}
	}
}
