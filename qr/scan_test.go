package qr_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/e164"
	"github.com/privnum/privnum/qr"
	"github.com/privnum/privnum/reject"
)

func TestScanBindsScannerAndOwner(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 3, qr.Config{ScanTTL: 10 * time.Minute, ScanQuarantine: 20 * time.Minute})
	c := e.mint(t, qr.MintRequest{Label: "Shop"})

	before := time.Now()
	r, err := e.qr.Scan(ctx, c.Token, "139 0000 0002")
	if err != nil {
		t.Fatal(err)
	}
	if r.Mode != qr.MiddleNumber || r.VirtualNumber == "" || r.BindingID == "" {
		t.Fatalf("scan = %+v", r)
	}
	if d := r.ExpiresAt.Sub(before); d < 9*time.Minute || d > 11*time.Minute {
		t.Errorf("binding lives %s, want ScanTTL 10m", d)
	}
	// A scan binding's pairs are reserved for the scan quarantine, not the
	// bindings' usual one (1h in these tests).
	if b, err := e.bindings.Get(ctx, r.BindingID); err != nil || b.QuarantineUntil.Sub(b.ExpiresAt) != 20*time.Minute {
		t.Errorf("scan binding %+v, %v: want a 20m quarantine", b, err)
	}
	tests := []struct{ caller, target string }{
		{scanner, owner},
		{owner, scanner},
	}
	for _, tt := range tests {
		route, err := e.bindings.Resolve(ctx, r.VirtualNumber, tt.caller)
		if err != nil {
			t.Fatal(err)
		}
		if route.Action != binding.Connect || route.Target != tt.target || route.BindingID != r.BindingID {
			t.Errorf("Resolve(X, %s) = %+v; want connect to %s", tt.caller, route, tt.target)
		}
	}
	if route, _ := e.bindings.Resolve(ctx, r.VirtualNumber, "13700000003"); route.Action != binding.Reject {
		t.Errorf("a stranger on X: %+v", route)
	}

	// Scanning again while the binding is active gives the same number.
	again, err := e.qr.Scan(ctx, c.Token, scanner)
	if err != nil {
		t.Fatal(err)
	}
	if again != r {
		t.Errorf("rescan = %+v, want %+v", again, r)
	}
	// Another scanner gets its own binding on another number (the owner
	// is on both).
	other, err := e.qr.Scan(ctx, c.Token, "13700000003")
	if err != nil {
		t.Fatal(err)
	}
	if other.BindingID == r.BindingID || other.VirtualNumber == r.VirtualNumber {
		t.Errorf("second scanner shares %+v", other)
	}
	// An operator releasing the binding early: the next scan makes a new
	// one, on the last free number (the released one is quarantined).
	if _, err := e.bindings.Release(ctx, r.BindingID); err != nil {
		t.Fatal(err)
	}
	fresh, err := e.qr.Scan(ctx, c.Token, scanner)
	if err != nil {
		t.Fatal(err)
	}
	if fresh.BindingID == r.BindingID || fresh.VirtualNumber == r.VirtualNumber || fresh.VirtualNumber == other.VirtualNumber {
		t.Errorf("rescan after release = %+v", fresh)
	}
	// With every number taken for this owner, a new scanner cannot bind,
	// and the failed scan leaves nothing behind.
	if _, err := e.qr.Scan(ctx, c.Token, "13600000004"); !errors.Is(err, binding.ErrPoolExhausted) {
		t.Errorf("scan with no number left = %v; want ErrPoolExhausted", err)
	}
	if n, _ := e.rdb.Exists(ctx, "pn:qr:{"+c.Token+"}:s:+8613600000004").Result(); n != 0 {
		t.Errorf("failed scan left its claim")
	}
}

func TestScanConcurrentRescansShareOneBinding(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 5, qr.Config{PerScannerLimit: -1, PerTokenLimit: -1})
	c := e.mint(t, qr.MintRequest{})
	var wg sync.WaitGroup
	ids := make([]string, 8)
	errs := make([]error, 8)
	for i := range ids {
		wg.Go(func() {
			r, err := e.qr.Scan(ctx, c.Token, scanner)
			ids[i], errs[i] = r.BindingID, err
		})
	}
	wg.Wait()
	for i := range ids {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Fatalf("concurrent scans: ids %v, errors %v", ids, errs)
		}
	}
}

func TestScanUnknownAndRevokedLookAlike(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 2, qr.Config{})
	live := e.mint(t, qr.MintRequest{})
	revoked := e.mint(t, qr.MintRequest{})
	r, err := e.qr.Scan(ctx, revoked.Token, scanner)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.qr.Revoke(ctx, revoked.Token); err != nil {
		t.Fatal(err)
	}
	// Revoking ended the binding the earlier scan made.
	if b, err := e.bindings.Get(ctx, r.BindingID); err != nil || b.State != binding.Released {
		t.Errorf("scan binding after revoke: %+v, %v", b, err)
	}
	if route, _ := e.bindings.Resolve(ctx, r.VirtualNumber, scanner); route.Action != binding.Reject {
		t.Errorf("scanner still reaches the owner of a revoked code: %+v", route)
	}

	var msgs []string
	for _, tok := range []string{revoked.Token, strings.Repeat("b", qr.TokenLen), "garbage", strings.ToUpper(revoked.Token)} {
		_, err := e.qr.Scan(ctx, tok, "13700000003")
		if !errors.Is(err, qr.ErrNotFound) || errors.Is(err, qr.ErrRevoked) {
			t.Errorf("Scan(%q) = %v; want ErrNotFound only", tok, err)
		}
		msgs = append(msgs, fmt.Sprint(err))
	}
	if msgs[0] != msgs[1] || msgs[1] != msgs[2] || msgs[2] != msgs[3] {
		t.Errorf("scanner can tell tokens apart: %q", msgs)
	}
	if strings.Contains(msgs[0], revoked.Token) {
		t.Errorf("scan error echoes the token: %q", msgs[0])
	}
	if _, err := e.qr.Scan(ctx, live.Token, "13700000003"); err != nil {
		t.Errorf("live code: %v", err)
	}
}

func TestScanRefusals(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 2, qr.Config{})
	mid := e.mint(t, qr.MintRequest{})
	cb := e.mint(t, qr.MintRequest{Mode: qr.Callback})
	before := keys(t, e.rdb)

	for _, bad := range []string{"", "12", "banana", "+999123"} {
		_, err := e.qr.Scan(ctx, mid.Token, bad)
		if !errors.Is(err, e164.ErrInvalid) {
			t.Errorf("Scan(scanner %q) = %v; want e164.ErrInvalid", bad, err)
		}
		if bad != "" && strings.Contains(err.Error(), bad) {
			t.Errorf("scan error echoes the scanner input: %v", err)
		}
	}
	if after := keys(t, e.rdb); !sameKeys(before, after) {
		t.Errorf("bad scanner numbers stored keys: %v -> %v", before, after)
	}

	if _, err := e.qr.Scan(ctx, mid.Token, "13800138000"); !errors.Is(err, qr.ErrInvalid) {
		t.Errorf("owner scanning own code = %v; want ErrInvalid", err)
	}
	if _, err := e.qr.Scan(ctx, cb.Token, scanner); !errors.Is(err, qr.ErrCallbackUnavailable) {
		t.Errorf("callback scan = %v; want ErrCallbackUnavailable", err)
	}
}

// TestScanPublicOwnerOfCallbackCode: on the public page the owner of a
// callback-mode code gets the answer every scanner gets (the callback
// service then makes the owner's stand-in); Scan still refuses them.
func TestScanPublicOwnerOfCallbackCode(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 2, qr.Config{})
	cb := e.mint(t, qr.MintRequest{Mode: qr.Callback})
	for _, tc := range []struct {
		name, scanner string
		public        bool
		want          error
	}{
		{"public, stranger", scanner, true, qr.ErrCallbackUnavailable},
		{"public, owner", "138 0013 8000", true, qr.ErrCallbackUnavailable},
		{"API, stranger", scanner, false, qr.ErrCallbackUnavailable},
		{"API, owner", "13800138000", false, qr.ErrInvalid},
	} {
		scan := e.qr.Scan
		if tc.public {
			scan = e.qr.ScanPublic
		}
		before := keys(t, e.rdb)
		_, err := scan(ctx, cb.Token, tc.scanner)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if tc.want == qr.ErrCallbackUnavailable && err.Error() != "scan: "+qr.ErrCallbackUnavailable.Error() {
			t.Errorf("%s: error %q tells more than a stranger's", tc.name, err)
		}
		for _, k := range keys(t, e.rdb) {
			if !slices.Contains(before, k) && !strings.HasSuffix(k, ":rl") {
				t.Errorf("%s: stored %s", tc.name, k)
			}
		}
	}
}

func sameKeys(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestScanRateLimits(t *testing.T) {
	ctx := context.Background()
	const window = 500 * time.Millisecond
	tests := []struct {
		name     string
		cfg      qr.Config
		scanners []string // scanned in turn; the last one trips the limit
		scope    string
	}{
		{
			name:     "per scanner",
			cfg:      qr.Config{PerScannerLimit: 3, PerTokenLimit: -1, LimitWindow: window},
			scanners: []string{scanner, scanner, scanner, scanner},
			scope:    "scanner",
		},
		{
			name:     "per token",
			cfg:      qr.Config{PerScannerLimit: -1, PerTokenLimit: 2, LimitWindow: window},
			scanners: []string{scanner, "13700000003", "13600000004"},
			scope:    "token",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, 4, tt.cfg)
			c := e.mint(t, qr.MintRequest{})
			last := len(tt.scanners) - 1
			for _, s := range tt.scanners[:last] {
				if _, err := e.qr.Scan(ctx, c.Token, s); err != nil {
					t.Fatal(err)
				}
			}
			_, err := e.qr.Scan(ctx, c.Token, tt.scanners[last])
			var rl *reject.RateLimitError
			if !errors.Is(err, qr.ErrRateLimited) || !errors.As(err, &rl) || rl.Limit != tt.scope || rl.RetryAfter <= 0 || rl.RetryAfter > window {
				t.Fatalf("scan over the limit = %v; want a %s rate limit", err, tt.scope)
			}
			time.Sleep(window + 50*time.Millisecond)
			if _, err := e.qr.Scan(ctx, c.Token, tt.scanners[last]); err != nil {
				t.Fatalf("scan after the window: %v", err)
			}
		})
	}

	// The per-scanner limit also counts guesses at unknown tokens.
	e := newEnv(t, 1, qr.Config{PerScannerLimit: 2, LimitWindow: time.Minute})
	for i := range 3 {
		_, err := e.qr.Scan(ctx, strings.Repeat("c", qr.TokenLen), scanner)
		if want := map[bool]error{true: qr.ErrRateLimited, false: qr.ErrNotFound}[i == 2]; !errors.Is(err, want) {
			t.Fatalf("guess %d = %v; want %v", i+1, err, want)
		}
	}
}
