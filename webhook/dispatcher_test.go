package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/cdr"
	"github.com/privnum/privnum/internal/redistest"
)

// hit is one request a receiver got.
type hit struct {
	at       time.Time
	body     []byte
	sig      string
	event    string
	delivery string
	attempt  int
}

// receiver is an httptest webhook endpoint that answers the first fail
// requests with 500 and records every request.
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	hits []hit
	fail int
	got  chan struct{}
}

func newReceiver(t *testing.T, fail int) *receiver {
	r := &receiver{fail: fail, got: make(chan struct{}, 100)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		n, _ := strconv.Atoi(req.Header.Get("Privnum-Attempt"))
		r.mu.Lock()
		r.hits = append(r.hits, hit{at: time.Now(), body: body, sig: req.Header.Get(SignatureHeader),
			event: req.Header.Get("Privnum-Event"), delivery: req.Header.Get("Privnum-Delivery"), attempt: n})
		failing := len(r.hits) <= r.fail
		r.mu.Unlock()
		if failing {
			http.Error(w, "not yet", http.StatusInternalServerError)
		} else {
			w.WriteHeader(http.StatusNoContent)
		}
		r.got <- struct{}{}
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) wait(t *testing.T, n int) []hit {
	t.Helper()
	for range n {
		select {
		case <-r.got:
		case <-time.After(10 * time.Second):
			t.Fatalf("receiver got %d requests, want %d", len(r.snapshot()), n)
		}
	}
	return r.snapshot()
}

func (r *receiver) snapshot() []hit {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hit(nil), r.hits...)
}

func testConfig() Config {
	return Config{Backoff: 100 * time.Millisecond, MaxBackoff: time.Second, PollInterval: 10 * time.Millisecond,
		MaxAttempts: 4, Logger: slog.New(slog.DiscardHandler)}
}

func run(t *testing.T, d *Dispatcher) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func bindingEvent(t *testing.T) Event {
	ev, err := BindingEvent(BindingCreated, binding.Binding{ID: "8617000000000.0123456789abcdef", A: "+8613800000001", B: "+8613900000002", X: "+8617000000000", State: binding.Active})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestRetryWithBackoffThenDeliver(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	s := NewStore(rdb)
	rcv := newReceiver(t, 2)
	_, secret, err := s.Add(ctx, rcv.URL+"/hook", []string{BindingCreated})
	if err != nil {
		t.Fatal(err)
	}
	d := NewDispatcher(s, testConfig())
	run(t, d)
	ev := bindingEvent(t)
	if err := d.Publish(ctx, ev); err != nil {
		t.Fatal(err)
	}
	hits := rcv.wait(t, 3)
	for i, h := range hits {
		if err := Verify(secret, h.sig, h.body, time.Minute); err != nil {
			t.Errorf("attempt %d: %v", i+1, err)
		}
		if h.attempt != i+1 || h.event != BindingCreated || h.delivery != hits[0].delivery || string(h.body) != string(hits[0].body) {
			t.Errorf("attempt %d: %+v", i+1, h)
		}
	}
	// Backoff: 100ms, then 200ms (each plus up to 10% jitter).
	if gap := hits[1].at.Sub(hits[0].at); gap < 100*time.Millisecond {
		t.Errorf("first retry after %s, want >= 100ms", gap)
	}
	if gap := hits[2].at.Sub(hits[1].at); gap < 200*time.Millisecond {
		t.Errorf("second retry after %s, want >= 200ms", gap)
	}
	var got Event
	if err := json.Unmarshal(hits[0].body, &got); err != nil || got.ID != ev.ID || got.Type != BindingCreated {
		t.Fatalf("body = %s (%v)", hits[0].body, err)
	}
	var b binding.Binding
	json.Unmarshal(got.Data, &b)
	if b.A != "+86138****0001" || b.B != "+86139****0002" || b.X != "+8617000000000" {
		t.Fatalf("binding event data = %+v: want masked parties", b)
	}
	waitEmpty(t, rdb)
	time.Sleep(300 * time.Millisecond)
	if n := len(rcv.snapshot()); n != 3 {
		t.Fatalf("%d requests after success, want 3", n)
	}
}

// waitEmpty waits until no delivery is queued.
func waitEmpty(t *testing.T, rdb redis.UniversalClient) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for rdb.ZCard(context.Background(), dueKey).Val() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("deliveries still queued")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAttemptsAreBounded(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	s := NewStore(rdb)
	rcv := newReceiver(t, 1000)
	if _, _, err := s.Add(ctx, rcv.URL, nil); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Backoff, cfg.MaxAttempts = 10*time.Millisecond, 3
	d := NewDispatcher(s, cfg)
	run(t, d)
	ev := bindingEvent(t)
	d.Publish(ctx, ev)
	rcv.wait(t, 3)
	waitEmpty(t, rdb)
	time.Sleep(100 * time.Millisecond)
	if n := len(rcv.snapshot()); n != 3 {
		t.Fatalf("%d attempts, want 3", n)
	}
	dead, err := d.Dead(ctx, 10)
	if err != nil || len(dead) != 1 || dead[0].ID != ev.ID {
		t.Fatalf("Dead = %+v, %v", dead, err)
	}
}

func TestFilterAndFanOut(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	s := NewStore(rdb)
	all, calls, none := newReceiver(t, 0), newReceiver(t, 0), newReceiver(t, 0)
	s.Add(ctx, all.URL, []string{"*"})
	s.Add(ctx, calls.URL, []string{CallCompleted})
	s.Add(ctx, none.URL, []string{BindingReleased})
	d := NewDispatcher(s, testConfig())
	run(t, d)

	rec := &memRecorder{}
	cr := d.CallRecorder(rec)
	if err := cr.Add(ctx, cdr.Record{CallID: "c1", X: "+8617000000000", Caller: "+86138****0001", Disposition: cdr.Answered}); err != nil {
		t.Fatal(err)
	}
	d.Publish(ctx, bindingEvent(t))
	all.wait(t, 2)
	got := calls.wait(t, 1)
	if got[0].event != CallCompleted || len(rec.recs) != 1 {
		t.Fatalf("call event: %+v, recorded %d", got[0], len(rec.recs))
	}
	waitEmpty(t, rdb)
	if n := len(none.snapshot()); n != 0 {
		t.Fatalf("unsubscribed hook got %d requests", n)
	}
	// A failing recorder is not published.
	rec.err = errors.New("disk full")
	if err := cr.Add(ctx, cdr.Record{CallID: "c2"}); err == nil {
		t.Fatal("recorder error swallowed")
	}
}

type memRecorder struct {
	recs []cdr.Record
	err  error
}

func (m *memRecorder) Add(_ context.Context, r cdr.Record) error {
	if m.err != nil {
		return m.err
	}
	m.recs = append(m.recs, r)
	return nil
}

func TestQueueSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	s := NewStore(rdb)
	rcv := newReceiver(t, 0)
	_, secret, _ := s.Add(ctx, rcv.URL, nil)

	// Published while no dispatcher runs (the process is down).
	ev := bindingEvent(t)
	if err := NewDispatcher(s, testConfig()).Publish(ctx, ev); err != nil {
		t.Fatal(err)
	}
	// A delivery claimed by a dispatcher that died mid-flight comes back
	// after its lease.
	ev2 := bindingEvent(t)
	NewDispatcher(s, testConfig()).Publish(ctx, ev2)
	now := time.Now()
	claimed, err := claimScript.Run(ctx, rdb, []string{dueKey}, ms(now), ms(now.Add(300*time.Millisecond)), 1).StringSlice()
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim: %v %v", claimed, err)
	}

	d := NewDispatcher(NewStore(rdb), testConfig())
	run(t, d)
	first := rcv.wait(t, 1)
	if time.Since(now) > 250*time.Millisecond {
		t.Fatalf("unclaimed delivery took %s", time.Since(now))
	}
	hits := rcv.wait(t, 1)
	if time.Since(now) < 300*time.Millisecond {
		t.Fatalf("leased delivery sent after %s, before its lease ended", time.Since(now))
	}
	seen := map[string]bool{}
	for _, h := range append(first[:1], hits[1]) {
		if err := Verify(secret, h.sig, h.body, 0); err != nil {
			t.Fatal(err)
		}
		var e Event
		json.Unmarshal(h.body, &e)
		seen[e.ID] = true
	}
	if !seen[ev.ID] || !seen[ev2.ID] {
		t.Fatalf("delivered %v, want %s and %s", seen, ev.ID, ev2.ID)
	}
}

func TestRemovedHookDropsDeliveries(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	s := NewStore(rdb)
	rcv := newReceiver(t, 0)
	h, _, _ := s.Add(ctx, rcv.URL, nil)
	d := NewDispatcher(s, testConfig())
	d.Publish(ctx, bindingEvent(t))
	if err := s.Remove(ctx, h.ID); err != nil {
		t.Fatal(err)
	}
	run(t, d)
	waitEmpty(t, rdb)
	if n := len(rcv.snapshot()); n != 0 {
		t.Fatalf("removed hook got %d requests", n)
	}
}

func TestStore(t *testing.T) {
	ctx := context.Background()
	s := NewStore(redistest.Client(t))
	bad := []struct {
		url    string
		events []string
	}{
		{"ftp://example.com/x", nil},
		{"/relative", nil},
		{"https://", nil},
		{"https://example.com/#frag", nil},
		{"mailto:ops@example.com", nil},
		{"https://example.com/x", []string{"binding.deleted"}},
		{"https://example.com/" + string(make([]byte, 2048)), nil},
	}
	for _, b := range bad {
		if _, _, err := s.Add(ctx, b.url, b.events); !errors.Is(err, ErrInvalid) {
			t.Errorf("Add(%q, %v) = %v, want ErrInvalid", b.url, b.events, err)
		}
	}
	h1, sec1, err := s.Add(ctx, "https://example.com/a", []string{BindingCreated, BindingCreated, CallCompleted})
	if err != nil || len(sec1) < 40 || len(h1.Events) != 2 {
		t.Fatalf("Add = %+v %q %v", h1, sec1, err)
	}
	h2, sec2, _ := s.Add(ctx, "http://127.0.0.1:9/b", []string{BindingReleased, "*"})
	if sec1 == sec2 || len(h2.Events) != 1 || h2.Events[0] != "*" {
		t.Fatalf("second hook %+v", h2)
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 2 || list[0].ID != h1.ID {
		t.Fatalf("List = %+v %v", list, err)
	}
	got, err := s.Get(ctx, h2.ID)
	if err != nil || got.URL != "http://127.0.0.1:9/b" {
		t.Fatalf("Get = %+v %v", got, err)
	}
	if err := s.Remove(ctx, h1.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, h1.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Remove = %v", err)
	}
	if _, err := s.Get(ctx, h1.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get removed = %v", err)
	}
}

func TestBackoff(t *testing.T) {
	d := NewDispatcher(nil, Config{Backoff: time.Second, MaxBackoff: 10 * time.Second})
	for attempt, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 40: 10 * time.Second} {
		got := d.backoff(attempt)
		if got < want || got > want+want/10 {
			t.Errorf("backoff(%d) = %s, want %s plus at most 10%%", attempt, got, want)
		}
	}
}
