package binding_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/pool"
	"github.com/privnum/privnum/reject"
)

func axeEnv(t *testing.T, quarantine time.Duration, digits int, numbers ...pool.Entry) env {
	t.Helper()
	e := modeEnv(t, quarantine, nil, numbers...)
	e.svc = binding.New(e.rdb, e.pool, cn, binding.Config{Quarantine: quarantine, ExtensionDigits: digits})
	return e
}

// TestAXERouting: extensions on one X, each party once; a stranger is
// asked for the extension, the extension reaches its party with caller ID
// X and becomes the party's last caller, the party replies to them.
func TestAXERouting(t *testing.T) {
	ctx := context.Background()
	e := axeEnv(t, time.Hour, 0, xs(2)...)
	b1, err := e.svc.Create(ctx, binding.Request{Mode: binding.AXE, A: party(1), TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if b1.Mode != binding.AXE || len(b1.Extension) != 4 || b1.B != "" {
		t.Fatalf("AXE binding = %+v", b1)
	}
	b2, err := e.svc.Create(ctx, binding.Request{Mode: binding.AXE, A: party(2), TTL: time.Hour})
	if err != nil || b2.X != b1.X || b2.Extension == b1.Extension {
		t.Fatalf("second extension = %+v, %v; want another extension on %s", b2, err, b1.X)
	}
	got, err := e.svc.Get(ctx, b2.ID)
	if err != nil || got.Extension != b2.Extension || got.Mode != binding.AXE || got.State != binding.Active {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	// Each party at most once per X.
	if _, err := e.svc.Create(ctx, binding.Request{Mode: binding.AXE, A: party(1), X: b1.X, TTL: time.Hour}); !errors.Is(err, binding.ErrPartyBusy) {
		t.Fatalf("party 1 again on %s: %v, want ErrPartyBusy", b1.X, err)
	}
	// A chosen extension; the same one again is taken, nothing stored.
	b3, err := e.svc.Create(ctx, binding.Request{Mode: binding.AXE, A: party(3), X: b1.X, Extension: "0042", TTL: time.Hour})
	if err != nil || b3.Extension != "0042" {
		t.Fatalf("chosen extension: %+v, %v", b3, err)
	}
	_, err = e.svc.Create(ctx, binding.Request{Mode: binding.AXE, A: party(4), X: b1.X, Extension: "0042", TTL: time.Hour})
	var fe *reject.FieldError
	if !errors.As(err, &fe) || fe.Field != "extension" || !errors.Is(err, binding.ErrExtensionTaken) {
		t.Fatalf("taken extension: %v, want a field error naming extension", err)
	}
	if r, _ := e.svc.Peek(ctx, b1.X, party(4)); r.Reason != binding.ReasonNoBinding && r.Action != binding.Collect {
		t.Fatalf("party 4 after refusals: %+v", r)
	}
	if r, _ := e.svc.Resolve(ctx, b1.X, party(4)); r.Target != "" || r.Action != binding.Collect {
		t.Fatalf("party 4 holds nothing on X: %+v", r)
	}

	stranger := "+8613700000001"
	for _, tc := range []struct {
		name                string
		resolve             func() (binding.Route, error)
		action              binding.Action
		target, reason, ext string
	}{
		{"stranger is asked for the extension", func() (binding.Route, error) { return e.svc.Resolve(ctx, b1.X, stranger) }, binding.Collect, "", "", ""},
		{"owner before anyone called", func() (binding.Route, error) { return e.svc.Resolve(ctx, b1.X, party(1)) }, binding.Reject, "", binding.ReasonNoLastCaller, b1.Extension},
		{"peek an extension records nothing", func() (binding.Route, error) { return e.svc.PeekExtension(ctx, b1.X, stranger, b1.Extension) }, binding.Connect, party(1), "", b1.Extension},
		{"owner after a peek", func() (binding.Route, error) { return e.svc.Resolve(ctx, b1.X, party(1)) }, binding.Reject, "", binding.ReasonNoLastCaller, b1.Extension},
		{"the extension reaches its party", func() (binding.Route, error) { return e.svc.ResolveExtension(ctx, b1.X, stranger, b1.Extension) }, binding.Connect, party(1), "", b1.Extension},
		{"the party replies to the last caller", func() (binding.Route, error) { return e.svc.Resolve(ctx, b1.X, party(1)) }, binding.Connect, stranger, "", b1.Extension},
		{"another party has no last caller", func() (binding.Route, error) { return e.svc.Resolve(ctx, b1.X, party(2)) }, binding.Reject, "", binding.ReasonNoLastCaller, b2.Extension},
		{"unknown extension", func() (binding.Route, error) { return e.svc.ResolveExtension(ctx, b1.X, stranger, "9998") }, binding.Reject, "", binding.ReasonBadExtension, "9998"},
		{"not digits", func() (binding.Route, error) { return e.svc.ResolveExtension(ctx, b1.X, stranger, "12*4") }, binding.Reject, "", binding.ReasonBadExtension, ""},
		{"empty", func() (binding.Route, error) { return e.svc.ResolveExtension(ctx, b1.X, stranger, "") }, binding.Reject, "", binding.ReasonBadExtension, ""},
	} {
		r, err := tc.resolve()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if r.Action != tc.action || r.Target != tc.target || r.Reason != tc.reason || r.Extension != tc.ext || (r.Action != binding.Reject && r.Mode != binding.AXE) {
			t.Errorf("%s: %+v; want %s target %q reason %q extension %q", tc.name, r, tc.action, tc.target, tc.reason, tc.ext)
		}
		if r.Action == binding.Collect && r.Digits != 4 {
			t.Errorf("%s: digits %d, want 4", tc.name, r.Digits)
		}
		if r.Action == binding.Connect && r.CallerID != b1.X {
			t.Errorf("%s: caller ID %q, want X %s", tc.name, r.CallerID, b1.X)
		}
	}
	// X is held for AXE: no AXB pair and no AXN binding takes it.
	if bd, err := e.svc.Create(ctx, binding.Request{A: party(5), B: party(6), TTL: time.Hour}); err != nil || bd.X == b1.X {
		t.Fatalf("AXB create: %+v, %v; want the other number", bd, err)
	}
	if _, err := e.svc.Create(ctx, binding.Request{Mode: binding.AXN, A: party(7), X: b1.X, TTL: time.Hour}); !errors.Is(err, binding.ErrNumberUnavailable) {
		t.Fatalf("AXN on the AXE number: %v, want ErrNumberUnavailable", err)
	}
	n, _ := e.pool.Get(ctx, b1.X)
	if n.HeldBy != string(binding.AXE) {
		t.Errorf("pool entry %+v: want held by axe", n)
	}
	// A chosen extension taken on every number the allocator may use is a
	// field error; one number with it free is enough.
	_, err = e.svc.Create(ctx, binding.Request{Mode: binding.AXE, A: party(4), Extension: "0042", TTL: time.Hour})
	if !errors.As(err, &fe) || fe.Field != "extension" || !errors.Is(err, binding.ErrExtensionTaken) {
		t.Fatalf("taken extension, any number: %v, want a field error naming extension", err)
	}
	if _, err := e.svc.Create(ctx, binding.Request{Mode: binding.AXE, A: party(4), Extension: "0043", TTL: time.Hour}); err != nil {
		t.Fatalf("free extension, any number: %v", err)
	}
}

// TestAXEFillsOneNumberThenTheNext: with one-digit extensions a number
// carries 9; the tenth binding goes to the next number, never to one
// reserved for another mode.
func TestAXEFillsOneNumberThenTheNext(t *testing.T) {
	ctx := context.Background()
	nums := xs(3)
	nums[0].Mode = "axn"
	e := axeEnv(t, time.Hour, 1, nums...)
	perX := map[string]map[string]bool{}
	for i := range 12 {
		b, err := e.svc.Create(ctx, binding.Request{Mode: binding.AXE, A: party(i), TTL: time.Hour})
		if err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
		if b.X == "+86"+nums[0].Number {
			t.Fatalf("create %d went to the number reserved for axn", i)
		}
		if perX[b.X] == nil {
			perX[b.X] = map[string]bool{}
		}
		if perX[b.X][b.Extension] || len(b.Extension) != 1 || b.Extension == "0" {
			t.Fatalf("create %d: extension %q on %s (have %v)", i, b.Extension, b.X, perX[b.X])
		}
		perX[b.X][b.Extension] = true
		if i < 9 && len(perX) != 1 {
			t.Fatalf("create %d opened a second number before the first was full: %v", i, perX)
		}
	}
	if len(perX) != 2 {
		t.Fatalf("numbers used: %v", perX)
	}
	// 2 × 9 extensions: six more fit, then the pool is exhausted.
	for i := 12; i < 18; i++ {
		if _, err := e.svc.Create(ctx, binding.Request{Mode: binding.AXE, A: party(i), TTL: time.Hour}); err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
	}
	if _, err := e.svc.Create(ctx, binding.Request{Mode: binding.AXE, A: party(18), TTL: time.Hour}); !errors.Is(err, binding.ErrPoolExhausted) {
		t.Fatalf("19th extension: %v, want ErrPoolExhausted", err)
	}
}

// TestAXEReleaseQuarantine: a released extension stops routing at once and
// is not handed out again until its quarantine ends; Extend keeps an
// extension and the hold going.
func TestAXEReleaseQuarantine(t *testing.T) {
	ctx := context.Background()
	const q = 400 * time.Millisecond
	e := axeEnv(t, q, 1, xs(1)...)
	var bs []binding.Binding
	for i := range 9 {
		b, err := e.svc.Create(ctx, binding.Request{Mode: binding.AXE, A: party(i), TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		bs = append(bs, b)
	}
	rel, err := e.svc.Release(ctx, bs[3].ID)
	if err != nil || rel.State != binding.Released || rel.Extension != bs[3].Extension {
		t.Fatalf("release: %+v, %v", rel, err)
	}
	if r, _ := e.svc.ResolveExtension(ctx, rel.X, "+8613700000001", rel.Extension); r.Action != binding.Reject || r.Reason != binding.ReasonBadExtension {
		t.Fatalf("released extension: %+v", r)
	}
	if r, _ := e.svc.Resolve(ctx, rel.X, rel.A); r.Reason != binding.ReasonExpired {
		t.Fatalf("released party calling X: %+v", r)
	}
	// Neither the released extension nor the released party comes back
	// during the quarantine.
	if _, err := e.svc.Create(ctx, binding.Request{Mode: binding.AXE, A: party(20), TTL: time.Hour}); !errors.Is(err, binding.ErrPoolExhausted) {
		t.Fatalf("create during the quarantine: %v, want ErrPoolExhausted", err)
	}
	if _, err := e.svc.Create(ctx, binding.Request{Mode: binding.AXE, A: party(21), X: rel.X, Extension: rel.Extension, TTL: time.Hour}); !errors.Is(err, binding.ErrExtensionTaken) {
		t.Fatalf("released extension during the quarantine: %v, want ErrExtensionTaken", err)
	}
	ext, err := e.svc.Extend(ctx, bs[0].ID, time.Hour)
	if err != nil || !ext.ExpiresAt.After(bs[0].ExpiresAt) || ext.Extension != bs[0].Extension {
		t.Fatalf("extend: %+v, %v", ext, err)
	}
	if n, _ := e.pool.Get(ctx, ext.X); n.HeldUntil == nil || n.HeldUntil.Before(ext.QuarantineUntil) {
		t.Errorf("hold after extend: %+v, want at least until %s", n, ext.QuarantineUntil)
	}
	if r, _ := e.svc.ResolveExtension(ctx, ext.X, "+8613700000001", ext.Extension); r.Target != ext.A {
		t.Fatalf("extended extension: %+v", r)
	}
	time.Sleep(q + 100*time.Millisecond)
	b, err := e.svc.Create(ctx, binding.Request{Mode: binding.AXE, A: party(20), TTL: time.Hour})
	if err != nil || b.Extension != rel.Extension {
		t.Fatalf("create after the quarantine: %+v, %v; want the released extension %s", b, err, rel.Extension)
	}
}
