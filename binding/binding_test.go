package binding_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/e164"
	"github.com/privnum/privnum/internal/redistest"
	"github.com/privnum/privnum/internal/store"
	"github.com/privnum/privnum/pool"
)

var cn = e164.Parser{Region: "CN"}

type env struct {
	rdb  redis.UniversalClient
	pool *pool.Pool
	svc  *binding.Service
}

func newEnv(t *testing.T, quarantine time.Duration, numbers ...pool.Entry) env {
	t.Helper()
	rdb := redistest.Client(t)
	p := pool.New(rdb, cn)
	if len(numbers) > 0 {
		if _, err := p.Add(context.Background(), numbers); err != nil {
			t.Fatal(err)
		}
	}
	return env{rdb: rdb, pool: p, svc: binding.New(rdb, p, cn, binding.Config{Quarantine: quarantine})}
}

func xs(n int) []pool.Entry {
	out := make([]pool.Entry, n)
	for i := range out {
		out[i] = pool.Entry{Number: fmt.Sprintf("1700000%04d", i)}
	}
	return out
}

func party(i int) string { return fmt.Sprintf("+86138%08d", i) }

func TestCreateAndResolve(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, time.Hour, xs(1)...)
	b, err := e.svc.Create(ctx, binding.Request{A: "13800000001", B: "+86 139 0000 0002", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if b.X != "+8617000000000" || b.A != "+8613800000001" || b.B != "+8613900000002" || b.State != binding.Active {
		t.Fatalf("binding = %+v", b)
	}
	tests := []struct {
		caller, action, target, reason string
	}{
		{"13800000001", "connect", "+8613900000002", ""},
		{"+8613900000002", "connect", "+8613800000001", ""},
		{"13700000009", "reject", "", binding.ReasonNoBinding},
	}
	for _, tt := range tests {
		r, err := e.svc.Resolve(ctx, "17000000000", tt.caller)
		if err != nil {
			t.Fatal(err)
		}
		if string(r.Action) != tt.action || r.Target != tt.target || r.Reason != tt.reason {
			t.Errorf("Resolve(X, %s) = %+v; want %s %s %s", tt.caller, r, tt.action, tt.target, tt.reason)
		}
		if tt.action == "connect" && r.BindingID != b.ID {
			t.Errorf("route binding %q, want %q", r.BindingID, b.ID)
		}
	}
	got, err := e.svc.Get(ctx, b.ID)
	if err != nil || got.A != b.A || got.B != b.B || got.X != b.X || got.State != binding.Active {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	if _, err := e.svc.Resolve(ctx, "17000000000", "not-a-number"); !errors.Is(err, e164.ErrInvalid) {
		t.Fatalf("Resolve with bad caller: %v", err)
	}
}

func TestCreateRejectsBadInput(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, time.Hour, xs(2)...)
	tests := []struct {
		name string
		req  binding.Request
		want error
	}{
		{"bad a", binding.Request{A: "abc", B: "13900000002", TTL: time.Hour}, e164.ErrInvalid},
		{"bad b", binding.Request{A: "13800000001", B: "12", TTL: time.Hour}, e164.ErrInvalid},
		{"bad x", binding.Request{A: "13800000001", B: "13900000002", X: "x", TTL: time.Hour}, e164.ErrInvalid},
		{"same party", binding.Request{A: "13800000001", B: "+8613800000001", TTL: time.Hour}, binding.ErrInvalid},
		{"zero ttl", binding.Request{A: "13800000001", B: "13900000002"}, binding.ErrInvalid},
		{"bad directions", binding.Request{A: "13800000001", B: "13900000002", TTL: time.Hour, Options: binding.Options{Directions: "sideways"}}, binding.ErrInvalid},
		{"x not in pool", binding.Request{A: "13800000001", B: "13900000002", X: "17100000000", TTL: time.Hour}, binding.ErrNumberUnavailable},
		{"x is a party", binding.Request{A: "17000000000", B: "13900000002", X: "17000000000", TTL: time.Hour}, binding.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := e.svc.Create(ctx, tt.req); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	if n := redistest.Keys(t, e.rdb, "pn:{*}:b:*"); len(n) != 0 {
		t.Fatalf("bad input stored bindings: %v", n)
	}
}

func TestOneNumberCarriesManyPairs(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, time.Hour, xs(1)...)
	// Ten disjoint pairs all fit on one X.
	for i := 0; i < 10; i++ {
		b, err := e.svc.Create(ctx, binding.Request{A: party(2 * i), B: party(2*i + 1), TTL: time.Hour})
		if err != nil {
			t.Fatalf("pair %d: %v", i, err)
		}
		if b.X != "+8617000000000" {
			t.Fatalf("pair %d on %s", i, b.X)
		}
	}
	for i := 0; i < 10; i++ {
		r, _ := e.svc.Resolve(ctx, "+8617000000000", party(2*i))
		if r.Target != party(2*i+1) {
			t.Fatalf("pair %d resolves to %q", i, r.Target)
		}
	}
	// A party seen already cannot get a second binding on the only X.
	_, err := e.svc.Create(ctx, binding.Request{A: party(0), B: party(99), TTL: time.Hour})
	if !errors.Is(err, binding.ErrPoolExhausted) {
		t.Fatalf("err = %v, want ErrPoolExhausted", err)
	}
	nums, err := e.pool.List(ctx)
	if err != nil || len(nums) != 1 || nums[0].ActiveBindings != 10 {
		t.Fatalf("pool list = %+v, %v", nums, err)
	}
}

func TestBusyPartyGetsAnotherNumber(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, time.Hour, xs(3)...)
	seen := map[string]bool{}
	for i := 0; i < 3; i++ {
		b, err := e.svc.Create(ctx, binding.Request{A: party(0), B: party(i + 1), TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if seen[b.X] {
			t.Fatalf("party 0 got %s twice", b.X)
		}
		seen[b.X] = true
	}
	if _, err := e.svc.Create(ctx, binding.Request{A: party(0), B: party(9), TTL: time.Hour}); !errors.Is(err, binding.ErrPoolExhausted) {
		t.Fatalf("err = %v, want ErrPoolExhausted", err)
	}
	// B-side conflicts count too.
	if _, err := e.svc.Create(ctx, binding.Request{A: party(8), B: party(0), TTL: time.Hour}); !errors.Is(err, binding.ErrPoolExhausted) {
		t.Fatalf("err = %v, want ErrPoolExhausted", err)
	}
}

func TestSpecificNumber(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, time.Hour, xs(2)...)
	b, err := e.svc.Create(ctx, binding.Request{A: party(1), B: party(2), X: "17000000001", TTL: time.Hour})
	if err != nil || b.X != "+8617000000001" {
		t.Fatalf("Create = %+v, %v", b, err)
	}
	if _, err := e.svc.Create(ctx, binding.Request{A: party(1), B: party(3), X: "17000000001", TTL: time.Hour}); !errors.Is(err, binding.ErrPartyBusy) {
		t.Fatalf("err = %v, want ErrPartyBusy", err)
	}
	if err := e.pool.Retire(ctx, "17000000000"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Create(ctx, binding.Request{A: party(4), B: party(5), X: "17000000000", TTL: time.Hour}); !errors.Is(err, binding.ErrNumberUnavailable) {
		t.Fatalf("err = %v, want ErrNumberUnavailable", err)
	}
}

func TestRetiredNumbersTakeNoNewBindings(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, time.Hour, xs(2)...)
	old, err := e.svc.Create(ctx, binding.Request{A: party(1), B: party(2), X: "17000000000", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.pool.Retire(ctx, "17000000000"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		b, err := e.svc.Create(ctx, binding.Request{A: party(10 + 2*i), B: party(11 + 2*i), TTL: time.Hour})
		if err != nil || b.X != "+8617000000001" {
			t.Fatalf("Create after retire = %+v, %v", b, err)
		}
	}
	// The existing binding still routes.
	if r, _ := e.svc.Resolve(ctx, old.X, party(1)); r.Target != party(2) {
		t.Fatalf("retired number stopped routing: %+v", r)
	}
	if err := e.pool.Restore(ctx, "17000000000"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Create(ctx, binding.Request{A: party(30), B: party(31), X: "17000000000", TTL: time.Hour}); err != nil {
		t.Fatalf("Create after restore: %v", err)
	}
}

func TestAreaPreference(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, time.Hour,
		pool.Entry{Number: "17000000000", Area: "bj"},
		pool.Entry{Number: "17000000001", Area: "sh"},
		pool.Entry{Number: "17000000002", Area: "sh"})
	for i := 0; i < 4; i++ {
		b, err := e.svc.Create(ctx, binding.Request{A: party(0), B: party(i + 1), Area: "sh", TTL: time.Hour})
		if i < 2 {
			if err != nil || (b.X != "+8617000000001" && b.X != "+8617000000002") {
				t.Fatalf("binding %d = %+v, %v; want an sh number", i, b, err)
			}
			continue
		}
		if i == 2 && (err != nil || b.X != "+8617000000000") {
			t.Fatalf("binding %d = %+v, %v; want fallback to bj", i, b, err)
		}
		if i == 3 && !errors.Is(err, binding.ErrPoolExhausted) {
			t.Fatalf("binding %d err = %v", i, err)
		}
	}
}

func TestSpreadsLoad(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, time.Hour, xs(4)...)
	count := map[string]int{}
	for i := 0; i < 40; i++ {
		b, err := e.svc.Create(ctx, binding.Request{A: party(2 * i), B: party(2*i + 1), TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		count[b.X]++
	}
	for x, n := range count {
		if n != 10 {
			t.Fatalf("load on %s = %d, want 10 each: %v", x, n, count)
		}
	}
}

func TestDirections(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, time.Hour, xs(1)...)
	b, err := e.svc.Create(ctx, binding.Request{A: party(1), B: party(2), TTL: time.Hour, Options: binding.Options{Directions: binding.AToB, Record: true, MaxDuration: 30 * time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := e.svc.Resolve(ctx, b.X, party(1))
	if r.Action != binding.Connect || !r.Record || r.MaxDuration != 30*time.Minute {
		t.Fatalf("A→B = %+v", r)
	}
	r, _ = e.svc.Resolve(ctx, b.X, party(2))
	if r.Action != binding.Reject || r.Reason != binding.ReasonDirection {
		t.Fatalf("B→A = %+v", r)
	}
}

func TestReleaseQuarantinesPairs(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 600*time.Millisecond, xs(1)...)
	b, err := e.svc.Create(ctx, binding.Request{A: party(1), B: party(2), TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	rel, err := e.svc.Release(ctx, b.ID)
	if err != nil || rel.State != binding.Released {
		t.Fatalf("Release = %+v, %v", rel, err)
	}
	if _, err := e.svc.Release(ctx, b.ID); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	for _, p := range []string{party(1), party(2)} {
		r, _ := e.svc.Resolve(ctx, b.X, p)
		if r.Action != binding.Reject || r.Reason != binding.ReasonExpired {
			t.Fatalf("after release %s: %+v", p, r)
		}
	}
	// Neither party can be put back on X while quarantined, with anyone.
	if _, err := e.svc.Create(ctx, binding.Request{A: party(1), B: party(3), TTL: time.Hour}); !errors.Is(err, binding.ErrPoolExhausted) {
		t.Fatalf("quarantined A re-bound: %v", err)
	}
	if _, err := e.svc.Create(ctx, binding.Request{A: party(4), B: party(2), X: b.X, TTL: time.Hour}); !errors.Is(err, binding.ErrPartyBusy) {
		t.Fatalf("quarantined B re-bound: %v", err)
	}
	if _, err := e.svc.Extend(ctx, b.ID, time.Hour); !errors.Is(err, binding.ErrEnded) {
		t.Fatalf("Extend released: %v", err)
	}
	// After the quarantine the pair is free and resolves to nothing.
	waitFor(t, 3*time.Second, func() bool {
		r, _ := e.svc.Resolve(ctx, b.X, party(1))
		return r.Reason == binding.ReasonNoBinding
	})
	if _, err := e.svc.Get(ctx, b.ID); !errors.Is(err, binding.ErrNotFound) {
		t.Fatalf("Get after quarantine: %v", err)
	}
	if _, err := e.svc.Create(ctx, binding.Request{A: party(1), B: party(3), TTL: time.Hour}); err != nil {
		t.Fatalf("Create after quarantine: %v", err)
	}
}

func TestExpiryWithoutAnyProcess(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 700*time.Millisecond, xs(1)...)
	b, err := e.svc.Create(ctx, binding.Request{A: party(1), B: party(2), TTL: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(350 * time.Millisecond)
	// A brand-new service (no state carried over) sees the expiry.
	fresh := binding.New(e.rdb, e.pool, cn, binding.Config{Quarantine: 700 * time.Millisecond})
	r, _ := fresh.Resolve(ctx, b.X, party(1))
	if r.Reason != binding.ReasonExpired {
		t.Fatalf("after expiry: %+v", r)
	}
	got, err := fresh.Get(ctx, b.ID)
	if err != nil || got.State != binding.Expired {
		t.Fatalf("Get after expiry = %+v, %v", got, err)
	}
	if _, err := fresh.Create(ctx, binding.Request{A: party(2), B: party(3), TTL: time.Hour}); !errors.Is(err, binding.ErrPoolExhausted) {
		t.Fatalf("quarantined party re-bound: %v", err)
	}
	waitFor(t, 3*time.Second, func() bool {
		n, _ := e.rdb.Exists(ctx, store.RouteKey(b.X, party(1)), store.RouteKey(b.X, party(2)), store.BindingKey(b.X, b.ID)).Result()
		return n == 0
	})
	if _, err := fresh.Create(ctx, binding.Request{A: party(2), B: party(3), TTL: time.Hour}); err != nil {
		t.Fatalf("after quarantine: %v", err)
	}
}

func TestExtend(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, time.Hour, xs(1)...)
	b, err := e.svc.Create(ctx, binding.Request{A: party(1), B: party(2), TTL: 400 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ext, err := e.svc.Extend(ctx, b.ID, time.Hour)
	if err != nil || !ext.ExpiresAt.Equal(b.ExpiresAt.Add(time.Hour)) {
		t.Fatalf("Extend = %+v, %v", ext, err)
	}
	time.Sleep(500 * time.Millisecond)
	if r, _ := e.svc.Resolve(ctx, b.X, party(2)); r.Target != party(1) {
		t.Fatalf("extended binding does not route: %+v", r)
	}
	if _, err := e.svc.Extend(ctx, b.ID, -time.Second); !errors.Is(err, binding.ErrInvalid) {
		t.Fatalf("negative extend: %v", err)
	}
	if _, err := e.svc.Extend(ctx, "8617000000000.0000000000000000", time.Hour); !errors.Is(err, binding.ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
	if _, err := e.svc.Get(ctx, "../etc"); !errors.Is(err, binding.ErrNotFound) {
		t.Fatalf("garbage id: %v", err)
	}
}

// TestConcurrentCreates races many goroutines over a small pool with shared
// parties and checks that no party appears twice on one X among active and
// quarantined bindings.
func TestConcurrentCreates(t *testing.T) {
	for _, ap := range []bool{false, true} {
		t.Run(fmt.Sprintf("autopipeline=%v", ap), func(t *testing.T) {
			e := newEnv(t, time.Hour, xs(6)...)
			if ap {
				e.svc = binding.New(e.rdb, e.pool, cn, binding.Config{Quarantine: time.Hour, AutoPipeline: true})
			}
			concurrentCreates(t, e)
		})
	}
}

func concurrentCreates(t *testing.T, e env) {
	ctx := context.Background()
	const workers, perWorker = 16, 25
	var mu sync.Mutex
	var made []binding.Binding
	exhausted := 0
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				// Five couriers shared by everyone, buyers drawn from a small set.
				b, err := e.svc.Create(ctx, binding.Request{A: party(1000 + (w*perWorker+i)%23), B: party(i % 5), TTL: time.Hour})
				mu.Lock()
				switch {
				case err == nil:
					made = append(made, b)
					if i%4 == 0 {
						if _, err := e.svc.Release(ctx, b.ID); err != nil {
							t.Error(err)
						}
					}
				case errors.Is(err, binding.ErrPoolExhausted):
					exhausted++
				default:
					t.Error(err)
				}
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	if len(made) == 0 || exhausted == 0 {
		t.Fatalf("made %d, exhausted %d: the test should fill the pool", len(made), exhausted)
	}
	seen := map[string]string{}
	for _, b := range made {
		for _, p := range []string{b.A, b.B} {
			k := b.X + "/" + p
			if other, dup := seen[k]; dup {
				t.Fatalf("party %s twice on %s: bindings %s and %s", p, b.X, other, b.ID)
			}
			seen[k] = b.ID
		}
	}
	// Every party on every X resolves to its own binding.
	for _, b := range made {
		r, err := e.svc.Resolve(ctx, b.X, b.A)
		if err != nil || r.BindingID != b.ID {
			t.Fatalf("route of %s on %s = %+v, %v; want %s", b.A, b.X, r, err, b.ID)
		}
	}
}

func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPerBindingQuarantine: a binding may have a shorter quarantine than
// the service's (QR scans do): its pairs are free again after it, while a
// binding with the service's quarantine still holds its pairs.
func TestPerBindingQuarantine(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, time.Hour, xs(1)...)
	short, err := e.svc.Create(ctx, binding.Request{A: party(1), B: party(2), TTL: time.Hour, Quarantine: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	long, err := e.svc.Create(ctx, binding.Request{A: party(3), B: party(4), TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if d := short.QuarantineUntil.Sub(short.ExpiresAt); d != 500*time.Millisecond {
		t.Fatalf("short binding's quarantine %v", d)
	}
	for _, b := range []binding.Binding{short, long} {
		if _, err := e.svc.Release(ctx, b.ID); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := e.svc.Get(ctx, short.ID); got.QuarantineUntil.Sub(got.ExpiresAt) != 500*time.Millisecond {
		t.Fatalf("released short binding: %+v", got)
	}
	waitFor(t, 3*time.Second, func() bool {
		r, _ := e.svc.Resolve(ctx, short.X, party(1))
		return r.Reason == binding.ReasonNoBinding
	})
	if _, err := e.svc.Create(ctx, binding.Request{A: party(1), B: party(5), X: short.X, TTL: time.Hour}); err != nil {
		t.Fatalf("after the short quarantine: %v", err)
	}
	if _, err := e.svc.Create(ctx, binding.Request{A: party(3), B: party(6), X: long.X, TTL: time.Hour}); !errors.Is(err, binding.ErrPartyBusy) {
		t.Fatalf("the service's quarantine ended early: %v", err)
	}
	for _, q := range []time.Duration{-time.Second, 2 * time.Hour} {
		if _, err := e.svc.Create(ctx, binding.Request{A: party(7), B: party(8), TTL: time.Hour, Quarantine: q}); !errors.Is(err, binding.ErrInvalid) {
			t.Errorf("quarantine %v: %v, want ErrInvalid", q, err)
		}
	}
}

// TestResolveNationalCallers: a caller in national form that this process
// never parsed (the binding was made elsewhere, by the CLI say) resolves
// to the same route as in E.164 form — the route read under the guessed
// number while the full parse runs is the one used — and a national
// number that is no number is refused as one.
func TestResolveNationalCallers(t *testing.T) {
	e := newEnv(t, time.Hour, xs(1)...)
	b, err := e.svc.Create(context.Background(), binding.Request{A: "+8613800000001", B: "+8613900000002", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, caller, want string
		invalid            bool
	}{
		{"national A", "13800000001", "+8613900000002", false},
		{"national B", "13900000002", "+8613800000001", false},
		{"national stranger", "13700000003", "", false},
		{"not a number", "19999999", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A fresh parser: nothing remembered from the create.
			cn, err := e164.NewParser("CN")
			if err != nil {
				t.Fatal(err)
			}
			svc := binding.New(e.rdb, e.pool, cn, binding.Config{Quarantine: time.Hour})
			r, err := svc.Resolve(context.Background(), strings.TrimPrefix(b.X, "+86"), tt.caller)
			if tt.invalid {
				if !errors.Is(err, e164.ErrInvalid) {
					t.Fatalf("Resolve = %+v, %v; want ErrInvalid", r, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Target != tt.want || (tt.want != "") != (r.Action == binding.Connect) {
				t.Errorf("Resolve = %+v, want target %q", r, tt.want)
			}
		})
	}
}
