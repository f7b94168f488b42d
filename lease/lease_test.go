package lease_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/privnum/privnum/internal/redistest"
	"github.com/privnum/privnum/lease"
)

func TestOneHolderAtATime(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	const ttl = 300 * time.Millisecond
	a := lease.New(rdb, "pn:lease:test", "a", ttl)
	b := lease.New(rdb, "pn:lease:test", "b", ttl)

	if ok, err := a.TryAcquire(ctx); !ok || err != nil {
		t.Fatalf("a on a free lease: %v %v", ok, err)
	}
	if ok, err := b.TryAcquire(ctx); ok || err != nil {
		t.Fatalf("b while a holds: %v %v", ok, err)
	}
	// a renews: b still cannot take it after several lease times.
	hctx, stopA := context.WithCancel(ctx)
	held := make(chan error, 1)
	go func() { held <- a.Hold(hctx) }()
	time.Sleep(3 * ttl)
	if ok, _ := b.TryAcquire(ctx); ok {
		t.Fatal("b took a lease a was renewing")
	}
	// a dies (stops renewing): b takes over within about a lease time.
	stopA()
	if err := <-held; err != nil {
		t.Fatalf("Hold after cancel = %v", err)
	}
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	waited, err := b.Acquire(wctx)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*ttl {
		t.Errorf("takeover took %v; want within about %v", took, ttl)
	}
	if waited != "a" {
		t.Errorf("Acquire waited for %q, want a", waited)
	}
	// a, back, finds it lost.
	if err := a.Hold(ctx); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("a's Hold after b took over = %v; want ErrLost", err)
	}
	// Release lets the other in at once; releasing a lease one does not
	// hold changes nothing.
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if h, _ := b.Holder(ctx); h != "b" {
		t.Fatalf("holder after a's release = %q", h)
	}
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, _ := a.TryAcquire(ctx); !ok {
		t.Fatal("a could not take a released lease")
	}
}
