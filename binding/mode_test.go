package binding_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/e164"
	"github.com/privnum/privnum/internal/redistest"
	"github.com/privnum/privnum/pool"
	"github.com/privnum/privnum/reject"
)

func TestParseMode(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want binding.Mode
		ok   bool
	}{
		{"", binding.AXB, true}, {"axb", binding.AXB, true}, {"AXN", binding.AXN, true},
		{" axg ", binding.AXG, true}, {"axe", binding.AXE, true}, {"ax", "", false}, {"axbx", "", false},
	} {
		got, err := binding.ParseMode(tt.in)
		if tt.ok != (err == nil) || got != tt.want {
			t.Errorf("ParseMode(%q) = %q, %v", tt.in, got, err)
		}
		var fe *reject.FieldError
		if err != nil && (!errors.As(err, &fe) || fe.Field != "mode" || !errors.Is(err, binding.ErrInvalid)) {
			t.Errorf("ParseMode(%q) error %v: want a field error naming mode", tt.in, err)
		}
		// Every mode is also a pool reservation.
		if err == nil && tt.in != "" {
			if perr := pool.CheckMode(string(got)); perr != nil {
				t.Errorf("pool.CheckMode(%q): %v", got, perr)
			}
		}
	}
}

func modeEnv(t *testing.T, quarantine time.Duration, groups binding.Groups, numbers ...pool.Entry) env {
	t.Helper()
	rdb := redistest.Client(t)
	p := pool.New(rdb, cn)
	if len(numbers) > 0 {
		if _, err := p.Add(context.Background(), numbers); err != nil {
			t.Fatal(err)
		}
	}
	return env{rdb: rdb, pool: p, svc: binding.New(rdb, p, cn, binding.Config{Quarantine: quarantine, Groups: groups})}
}

func TestModeRequestsRefusedStoreNothing(t *testing.T) {
	ctx := context.Background()
	e := modeEnv(t, time.Hour, binding.FakeGroups{"g": {"+8613600000001"}}, xs(2)...)
	for _, tt := range []struct {
		name  string
		req   binding.Request
		field string
		want  error
	}{
		{"unknown mode", binding.Request{Mode: "axz", A: party(1), B: party(2), TTL: time.Hour}, "mode", binding.ErrInvalid},
		{"axe with b", binding.Request{Mode: binding.AXE, A: party(1), B: party(2), TTL: time.Hour}, "b", binding.ErrInvalid},
		{"axe extension not digits", binding.Request{Mode: binding.AXE, A: party(1), Extension: "12a4", TTL: time.Hour}, "extension", binding.ErrInvalid},
		{"axe extension too short", binding.Request{Mode: binding.AXE, A: party(1), Extension: "123", TTL: time.Hour}, "extension", binding.ErrInvalid},
		{"axe extension zero", binding.Request{Mode: binding.AXE, A: party(1), Extension: "0000", TTL: time.Hour}, "extension", binding.ErrInvalid},
		{"axn with extension", binding.Request{Mode: binding.AXN, A: party(1), Extension: "1234", TTL: time.Hour}, "extension", binding.ErrInvalid},
		{"axe show caller", binding.Request{Mode: binding.AXE, A: party(1), ShowCaller: true, TTL: time.Hour}, "show_caller", binding.ErrInvalid},
		{"axb without b", binding.Request{A: party(1), TTL: time.Hour}, "", e164.ErrInvalid},
		{"axb show caller", binding.Request{A: party(1), B: party(2), ShowCaller: true, TTL: time.Hour}, "show_caller", binding.ErrInvalid},
		{"axn with group", binding.Request{Mode: binding.AXN, A: party(1), Group: "g", TTL: time.Hour}, "group", binding.ErrInvalid},
		{"axg without group", binding.Request{Mode: binding.AXG, A: party(1), TTL: time.Hour}, "group", binding.ErrInvalid},
		{"axg unknown group", binding.Request{Mode: binding.AXG, A: party(1), Group: "nope", TTL: time.Hour}, "group", binding.ErrInvalid},
		{"axn one way", binding.Request{Mode: binding.AXN, A: party(1), TTL: time.Hour, Options: binding.Options{Directions: binding.AToB}}, "directions", binding.ErrInvalid},
	} {
		_, err := e.svc.Create(ctx, tt.req)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
			continue
		}
		var fe *reject.FieldError
		if tt.field != "" && (!errors.As(err, &fe) || fe.Field != tt.field) {
			t.Errorf("%s: %v, want a field error naming %s", tt.name, err, tt.field)
		}
	}
	if keys, _ := e.rdb.Keys(ctx, "pn:{*}:[rbm]*").Result(); len(keys) != 0 && !isCluster(e) {
		t.Errorf("refused requests stored %v", keys)
	}
	list, _ := e.pool.List(ctx)
	for _, n := range list {
		if n.ActiveBindings != 0 || n.HeldBy != "" {
			t.Errorf("refused requests left %+v", n)
		}
	}
}

// isCluster tells whether KEYS can see every key (it cannot on a cluster).
func isCluster(e env) bool { _, ok := e.rdb.(*redis.ClusterClient); return ok }

// TestExclusiveNumbers: an AXN binding holds X alone; AXB never takes a
// held number, an exclusive mode never takes a number with AXB pairs, and
// the hold ends with the quarantine.
func TestExclusiveNumbers(t *testing.T) {
	ctx := context.Background()
	const q = 300 * time.Millisecond
	e := modeEnv(t, q, nil, xs(2)...)
	axn, err := e.svc.Create(ctx, binding.Request{Mode: binding.AXN, A: party(1), TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if axn.Mode != binding.AXN || axn.B != "" {
		t.Fatalf("AXN binding = %+v", axn)
	}
	// AXB bindings of one party: one fits on the other number, the second
	// would need the held one.
	axb, err := e.svc.Create(ctx, binding.Request{A: party(2), B: party(3), TTL: time.Hour})
	if err != nil || axb.X == axn.X {
		t.Fatalf("AXB create = %+v, %v; want the number AXN does not hold", axb, err)
	}
	if _, err := e.svc.Create(ctx, binding.Request{A: party(2), B: party(4), TTL: time.Hour}); !errors.Is(err, binding.ErrPoolExhausted) {
		t.Fatalf("second AXB for party 2: %v, want ErrPoolExhausted (the other number is held)", err)
	}
	if _, err := e.svc.Create(ctx, binding.Request{A: party(5), B: party(6), X: axn.X, TTL: time.Hour}); !errors.Is(err, binding.ErrNumberUnavailable) {
		t.Fatalf("AXB on the held number: %v, want ErrNumberUnavailable", err)
	}
	// Another AXN: the held number is taken, the other carries AXB.
	if _, err := e.svc.Create(ctx, binding.Request{Mode: binding.AXN, A: party(7), TTL: time.Hour}); !errors.Is(err, binding.ErrPoolExhausted) {
		t.Fatalf("second AXN: %v, want ErrPoolExhausted", err)
	}
	if _, err := e.svc.Create(ctx, binding.Request{Mode: binding.AXN, A: party(7), X: axb.X, TTL: time.Hour}); !errors.Is(err, binding.ErrNumberUnavailable) {
		t.Fatalf("AXN on an AXB number: %v, want ErrNumberUnavailable", err)
	}
	n, _ := e.pool.Get(ctx, axn.X)
	if n.HeldBy != "axn" || n.HeldUntil == nil || n.ActiveBindings != 1 {
		t.Errorf("pool shows the held number as %+v", n)
	}
	// Released: quarantined (strangers hear "expired"), then free for AXB.
	if _, err := e.svc.Release(ctx, axn.ID); err != nil {
		t.Fatal(err)
	}
	if r, _ := e.svc.Resolve(ctx, axn.X, party(9)); r.Action != binding.Reject || r.Reason != binding.ReasonExpired {
		t.Errorf("stranger during quarantine: %+v", r)
	}
	if _, err := e.svc.Create(ctx, binding.Request{A: party(2), B: party(4), TTL: time.Hour}); !errors.Is(err, binding.ErrPoolExhausted) {
		t.Fatalf("AXB during the AXN quarantine: %v, want ErrPoolExhausted", err)
	}
	time.Sleep(q + 50*time.Millisecond)
	got, err := e.svc.Create(ctx, binding.Request{A: party(2), B: party(4), TTL: time.Hour})
	if err != nil || got.X != axn.X {
		t.Fatalf("AXB after the quarantine: %+v, %v; want the freed number", got, err)
	}
}

// TestReservedNumbers: numbers reserved for a mode serve that mode only,
// and an exclusive mode prefers its reserved numbers.
func TestReservedNumbers(t *testing.T) {
	ctx := context.Background()
	nums := xs(3)
	nums[2].Mode = "axn"
	e := modeEnv(t, time.Hour, nil, nums...)
	for i := range 2 {
		if b, err := e.svc.Create(ctx, binding.Request{A: party(1), B: party(10 + i), TTL: time.Hour}); err != nil || b.X == "+8617000000002" {
			t.Fatalf("AXB %d: %+v, %v", i, b, err)
		}
	}
	if _, err := e.svc.Create(ctx, binding.Request{A: party(1), B: party(20), TTL: time.Hour}); !errors.Is(err, binding.ErrPoolExhausted) {
		t.Fatalf("AXB with only the reserved number left: %v, want ErrPoolExhausted", err)
	}
	if _, err := e.svc.Create(ctx, binding.Request{A: party(5), B: party(6), X: "+8617000000002", TTL: time.Hour}); !errors.Is(err, binding.ErrNumberUnavailable) {
		t.Fatalf("AXB on the reserved number: %v, want ErrNumberUnavailable", err)
	}
	b, err := e.svc.Create(ctx, binding.Request{Mode: binding.AXN, A: party(30), TTL: time.Hour})
	if err != nil || b.X != "+8617000000002" {
		t.Fatalf("AXN: %+v, %v; want the reserved number", b, err)
	}
	// Reserved for AXN: an AXG binding may not take it (and the others carry AXB).
	g := modeEnv(t, time.Hour, binding.FakeGroups{"g": nil}, pool.Entry{Number: "17100000000", Mode: "axn"})
	if _, err := g.svc.Create(ctx, binding.Request{Mode: binding.AXG, A: party(1), Group: "g", TTL: time.Hour}); !errors.Is(err, binding.ErrPoolExhausted) {
		t.Fatalf("AXG on a pool reserved for AXN: %v, want ErrPoolExhausted", err)
	}
	// An unreserved number serves an exclusive mode once no AXB pair is on it.
	u := modeEnv(t, time.Hour, nil, xs(1)...)
	if _, err := u.svc.Create(ctx, binding.Request{Mode: binding.AXN, A: party(1), TTL: time.Hour}); err != nil {
		t.Fatalf("AXN on an unreserved number: %v", err)
	}
}

// TestExclusiveAllocatorLearns: a process whose pool snapshot is stale
// (another process bound AXB pairs since) still finds the free number.
func TestExclusiveAllocatorLearns(t *testing.T) {
	ctx := context.Background()
	e := modeEnv(t, time.Hour, nil, xs(40)...)
	other := binding.New(e.rdb, e.pool, cn, binding.Config{Quarantine: time.Hour})
	// This process loads the snapshot while every number is free.
	if _, err := e.svc.Create(ctx, binding.Request{A: party(900), B: party(901), TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	// Another process spreads AXB pairs over every number but one.
	free := map[string]bool{}
	for _, n := range xs(40) {
		x, _ := cn.Parse(n.Number)
		free[x] = true
	}
	for i := 0; len(free) > 1; i++ {
		b, err := other.Create(ctx, binding.Request{A: party(1000 + i), B: party(2000 + i), TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		delete(free, b.X)
	}
	var last string
	for x := range free {
		last = x
	}
	b, err := e.svc.Create(ctx, binding.Request{Mode: binding.AXN, A: party(1), TTL: time.Hour})
	if err != nil || b.X != last {
		t.Fatalf("AXN = %+v, %v; want the one free number %s", b, err, last)
	}
}
