package qr_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/e164"
	"github.com/privnum/privnum/internal/redistest"
	"github.com/privnum/privnum/pool"
	"github.com/privnum/privnum/qr"
	"github.com/privnum/privnum/reject"
)

var cn = e164.Parser{Region: "CN"}

const (
	owner   = "+8613800138000"
	scanner = "+8613900000002"
	base    = "https://example.com"
)

type env struct {
	rdb      redis.UniversalClient
	bindings *binding.Service
	qr       *qr.Service
}

// newEnv returns a qr service on a fresh Redis with n virtual numbers.
func newEnv(t *testing.T, n int, cfg qr.Config) env {
	t.Helper()
	rdb := redistest.Client(t)
	p := pool.New(rdb, cn)
	if n > 0 {
		var nums []pool.Entry
		for i := range n {
			nums = append(nums, pool.Entry{Number: fmt.Sprintf("1700000%04d", i)})
		}
		if _, err := p.Add(context.Background(), nums); err != nil {
			t.Fatal(err)
		}
	}
	b := binding.New(rdb, p, cn, binding.Config{Quarantine: time.Hour})
	if cfg.PublicBase == "" {
		cfg.PublicBase = base
	}
	s, err := qr.New(rdb, cn, b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return env{rdb: rdb, bindings: b, qr: s}
}

func (e env) mint(t *testing.T, req qr.MintRequest) qr.Code {
	t.Helper()
	if req.Owner == "" {
		req.Owner = owner
	}
	c, err := e.qr.Mint(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// keys lists every key in the test Redis.
func keys(t *testing.T, rdb redis.UniversalClient) []string {
	t.Helper()
	return redistest.Keys(t, rdb, "*")
}

func TestNewConfig(t *testing.T) {
	rdb := redistest.Client(t)
	b := binding.New(rdb, pool.New(rdb, cn), cn, binding.Config{})
	tests := []struct {
		base, url string
		ok        bool
	}{
		{"https://example.com", "https://example.com/q/T", true},
		{"https://example.com/", "https://example.com/q/T", true},
		{"http://127.0.0.1:8080/privnum/", "http://127.0.0.1:8080/privnum/q/T", true},
		{"", "", false},
		{"example.com", "", false},
		{"ftp://example.com", "", false},
		{"https://", "", false},
		{"https://example.com/?a=1", "", false},
		{"https://example.com/#x", "", false},
		{"https://user:pw@example.com", "", false},
		{"mailto:someone@example.com", "", false},
	}
	for _, tt := range tests {
		s, err := qr.New(rdb, cn, b, qr.Config{PublicBase: tt.base})
		if !tt.ok {
			if !errors.Is(err, qr.ErrInvalid) {
				t.Errorf("New(base %q) = %v; want ErrInvalid", tt.base, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("New(base %q): %v", tt.base, err)
			continue
		}
		if got := s.URL("T"); got != tt.url {
			t.Errorf("base %q: URL = %q, want %q", tt.base, got, tt.url)
		}
		c := s.Config()
		if c.ScanTTL != 15*time.Minute || c.LimitWindow != time.Minute || c.PerTokenLimit <= 0 || c.PerScannerLimit <= 0 {
			t.Errorf("defaults = %+v", c)
		}
	}
	if _, err := qr.New(nil, cn, b, qr.Config{PublicBase: base}); !errors.Is(err, qr.ErrInvalid) {
		t.Errorf("New(nil client) = %v", err)
	}
	if _, err := qr.New(rdb, cn, b, qr.Config{PublicBase: base, ScanTTL: -time.Second}); !errors.Is(err, qr.ErrInvalid) {
		t.Errorf("New(negative ttl) = %v", err)
	}
}

func TestTokens(t *testing.T) {
	e := newEnv(t, 0, qr.Config{})
	const n = 2000
	reqs := make([]qr.MintRequest, n)
	for i := range reqs {
		reqs[i] = qr.MintRequest{Owner: owner, Label: fmt.Sprintf("order %d", i)}
	}
	codes, err := e.qr.MintAll(context.Background(), reqs, nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var ones [qr.TokenLen * 5]int // how often each encoded bit is set
	for _, c := range codes {
		if len(c.Token) != qr.TokenLen || len(c.Token)*5 < 128 {
			t.Fatalf("token %q: length %d", c.Token, len(c.Token))
		}
		for i, r := range c.Token {
			v := strings.IndexRune("abcdefghijklmnopqrstuvwxyz234567", r)
			if v < 0 {
				t.Fatalf("token %q: %q outside lowercase base32", c.Token, r)
			}
			for b := range 5 {
				if v&(1<<(4-b)) != 0 {
					ones[i*5+b]++
				}
			}
		}
		if seen[c.Token] {
			t.Fatalf("token %q minted twice", c.Token)
		}
		seen[c.Token] = true
		if c.URL != base+"/q/"+c.Token {
			t.Fatalf("url %q", c.URL)
		}
		if s := qr.ShortCode(c.Token); len(s) != 9 || s[4] != '-' || strings.ToLower(s[:4]+s[5:]) != c.Token[:8] {
			t.Fatalf("short code %q of %q", s, c.Token)
		}
	}
	// 128 random bits: each of the first 128 encoded bits is set about half
	// the time (n = 2000: a 6-sigma band is ±134); the 2 padding bits never.
	for i := range 128 {
		if ones[i] < n/2-140 || ones[i] > n/2+140 {
			t.Errorf("bit %d set in %d of %d tokens", i, ones[i], n)
		}
	}
	if ones[128] != 0 || ones[129] != 0 {
		t.Errorf("padding bits set: %d %d", ones[128], ones[129])
	}
}

func TestPayloadHasNoOwnerNumber(t *testing.T) {
	e := newEnv(t, 0, qr.Config{})
	// Each owner's last 4 digits hold a digit that base32 never uses
	// (0, 1, 8, 9), so finding them in a URL could not be chance.
	owners := []string{"13800138000", "+8613912345678", "+14155550123", "13700009999"}
	for _, o := range owners {
		n := cn.MustParse(o)
		digits := strings.TrimPrefix(n, "+")
		for range 50 {
			c := e.mint(t, qr.MintRequest{Owner: o, Label: "Shop"})
			path := strings.TrimPrefix(c.URL, base)
			for _, leak := range []string{digits, digits[len(digits)-8:], digits[len(digits)-4:]} {
				if strings.Contains(c.URL, leak) {
					t.Fatalf("url %s carries %s of owner %s", c.URL, leak, n)
				}
			}
			if strings.ContainsAny(path, "0189") {
				t.Fatalf("url path %s has digits outside the token alphabet", path)
			}
			if strings.Contains(c.OwnerMasked, digits[len(digits)-8:len(digits)-4]) {
				t.Fatalf("owner %s not masked: %s", n, c.OwnerMasked)
			}
		}
	}
}

func TestMintGetRevoke(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 0, qr.Config{})
	c := e.mint(t, qr.MintRequest{Owner: "138 0013 8000", Label: "  Table 7 ", Mode: qr.Callback})
	if c.Label != "Table 7" || c.Mode != qr.Callback || c.OwnerMasked != "+86138****8000" || c.Revoked || c.CreatedAt.IsZero() {
		t.Fatalf("minted %+v", c)
	}
	got, err := e.qr.Get(ctx, c.Token)
	if err != nil {
		t.Fatal(err)
	}
	if got != c {
		t.Fatalf("Get = %+v\nwant %+v", got, c)
	}
	if up, err := e.qr.Get(ctx, strings.ToUpper(c.Token)); err != nil || up.Token != c.Token {
		t.Fatalf("Get(upper case) = %+v, %v", up, err)
	}
	d := e.mint(t, qr.MintRequest{})
	if d.Mode != qr.MiddleNumber {
		t.Fatalf("default mode %q", d.Mode)
	}

	if err := e.qr.Revoke(ctx, c.Token); err != nil {
		t.Fatal(err)
	}
	if err := e.qr.Revoke(ctx, c.Token); err != nil {
		t.Fatalf("second revoke: %v", err)
	}
	got, err = e.qr.Get(ctx, c.Token)
	if !errors.Is(err, qr.ErrRevoked) || !got.Revoked || got.Token != c.Token || got.OwnerMasked != c.OwnerMasked {
		t.Fatalf("Get(revoked) = %+v, %v", got, err)
	}
	if _, err := e.qr.Get(ctx, d.Token); err != nil {
		t.Fatalf("other code after revoke: %v", err)
	}

	unknown := strings.Repeat("a", qr.TokenLen)
	for _, tok := range []string{unknown, "short", strings.Repeat("1", qr.TokenLen), ""} {
		if _, err := e.qr.Get(ctx, tok); !errors.Is(err, qr.ErrNotFound) {
			t.Errorf("Get(%q) = %v; want ErrNotFound", tok, err)
		}
		if err := e.qr.Revoke(ctx, tok); !errors.Is(err, qr.ErrNotFound) {
			t.Errorf("Revoke(%q) = %v; want ErrNotFound", tok, err)
		}
	}
}

func TestMintRefusesBadInput(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 0, qr.Config{})
	tests := []struct {
		req   qr.MintRequest
		want  error
		field string
	}{
		{qr.MintRequest{Owner: "12345"}, e164.ErrInvalid, "owner"},
		{qr.MintRequest{Owner: ""}, e164.ErrInvalid, "owner"},
		{qr.MintRequest{Owner: owner, Mode: "fax"}, qr.ErrInvalid, "mode"},
		{qr.MintRequest{Owner: owner, Label: strings.Repeat("x", qr.MaxLabelLen+1)}, qr.ErrInvalid, "label"},
		{qr.MintRequest{Owner: owner, Label: "a\x07b"}, qr.ErrInvalid, "label"},
		{qr.MintRequest{Owner: owner, Label: "bad \xff utf8"}, qr.ErrInvalid, "label"},
		{qr.MintRequest{Owner: owner, Label: "call 138-0013-8000"}, qr.ErrInvalid, "label"},
	}
	for _, tt := range tests {
		_, err := e.qr.Mint(ctx, tt.req)
		if fe := (*reject.FieldError)(nil); !errors.Is(err, tt.want) || !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("Mint(%+v) = %v; want %v naming %s", tt.req, err, tt.want, tt.field)
		}
	}
	_, err := e.qr.MintAll(ctx, []qr.MintRequest{{Owner: owner}, {Owner: owner}, {Owner: "nope"}}, nil)
	if !errors.Is(err, e164.ErrInvalid) || !strings.Contains(err.Error(), "request 3") {
		t.Errorf("MintAll with a bad third request = %v", err)
	}
	if k := keys(t, e.rdb); len(k) != 0 {
		t.Errorf("refused mints stored %v", k)
	}
	if c := e.mint(t, qr.MintRequest{Label: "Ünïcode label 中文"}); c.Label != "Ünïcode label 中文" {
		t.Errorf("unicode label = %q", c.Label)
	}
}

func TestParseMode(t *testing.T) {
	tests := []struct {
		in   string
		want qr.Mode
	}{
		{"", qr.MiddleNumber}, {"middle-number", qr.MiddleNumber}, {" Middle ", qr.MiddleNumber},
		{"callback", qr.Callback}, {"CALLBACK", qr.Callback}, {"sms", ""},
	}
	for _, tt := range tests {
		got, err := qr.ParseMode(tt.in)
		if got != tt.want || (tt.want == "") != (err != nil) {
			t.Errorf("ParseMode(%q) = %q, %v", tt.in, got, err)
		}
	}
}

func TestOwner(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 0, qr.Config{})
	c := e.mint(t, qr.MintRequest{Mode: qr.Callback})
	if got, err := e.qr.Owner(ctx, c.Token); err != nil || got != owner {
		t.Fatalf("Owner = %q, %v", got, err)
	}
	e.qr.Revoke(ctx, c.Token)
	if _, err := e.qr.Owner(ctx, c.Token); !errors.Is(err, qr.ErrNotFound) {
		t.Fatalf("Owner of revoked = %v", err)
	}
	if _, err := e.qr.Owner(ctx, "nope"); !errors.Is(err, qr.ErrNotFound) {
		t.Fatalf("Owner of unknown = %v", err)
	}
}
