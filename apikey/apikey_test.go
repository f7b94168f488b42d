package apikey

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/privnum/privnum/internal/redistest"
)

func TestParseScopes(t *testing.T) {
	tests := []struct {
		in      string
		want    []Scope
		wantErr bool
	}{
		{"bindings,qr", []Scope{Bindings, QR}, false},
		{" Bindings , bindings ,orders", []Scope{Bindings, Orders}, false},
		{"admin", []Scope{Admin}, false},
		{"qr,callbacks,verifications,devices", []Scope{QR, Callbacks, Verifications, Devices}, false},
		{"", nil, true},
		{",", nil, true},
		{"bindings,root", nil, true},
	}
	for _, tt := range tests {
		got, err := ParseScopes(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseScopes(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseScopes(%q) error %v does not wrap ErrInvalid", tt.in, err)
		}
		if strings.Join(toStrings(got), ",") != strings.Join(toStrings(tt.want), ",") {
			t.Errorf("ParseScopes(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func toStrings(s []Scope) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = string(v)
	}
	return out
}

func TestAllows(t *testing.T) {
	tests := []struct {
		scopes []Scope
		want   Scope
		ok     bool
	}{
		{[]Scope{Bindings}, Bindings, true},
		{[]Scope{Bindings}, Orders, false},
		{[]Scope{Admin}, Webhooks, true},
		{[]Scope{Admin}, Devices, true},
		{[]Scope{QR}, Callbacks, false},
		{nil, Numbers, false},
	}
	for _, tt := range tests {
		if got := (Key{Scopes: tt.scopes}).Allows(tt.want); got != tt.ok {
			t.Errorf("Key%v.Allows(%s) = %v, want %v", tt.scopes, tt.want, got, tt.ok)
		}
	}
}

func TestCreateAuthenticateRevoke(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	s := New(rdb)

	k, secret, err := s.Create(ctx, "shop-1", []Scope{Bindings, QR})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, "pnk_") || len(secret) != 4+43 || !strings.HasPrefix(k.ID, "ak_") || k.Hint != secret[len(secret)-4:] {
		t.Fatalf("Create = %+v, secret %q", k, secret)
	}
	// The secret is not stored anywhere in Redis.
	keys := redistest.Keys(t, rdb, "*")
	for _, key := range keys {
		if strings.Contains(key, secret) {
			t.Fatalf("key name %q holds the secret", key)
		}
		if v, _ := rdb.Dump(ctx, key).Result(); strings.Contains(v, secret) {
			t.Fatalf("%s holds the secret", key)
		}
	}

	got, err := s.Authenticate(ctx, secret)
	if err != nil || got.ID != k.ID || got.Name != "shop-1" || !got.Allows(QR) || got.Allows(Orders) {
		t.Fatalf("Authenticate = %+v, %v", got, err)
	}
	for _, bad := range []string{"", "pnk_", secret + "x", secret[:len(secret)-1], "Bearer " + secret, strings.ToUpper(secret)} {
		if _, err := s.Authenticate(ctx, bad); !errors.Is(err, ErrUnknownKey) {
			t.Errorf("Authenticate(%q) = %v, want ErrUnknownKey", bad, err)
		}
	}

	if _, _, err := s.Create(ctx, "shop-1", []Scope{Admin}); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate name: %v", err)
	}
	for _, name := range []string{"", "has space", "ak_x", strings.Repeat("n", 65)} {
		if _, _, err := s.Create(ctx, name, []Scope{Admin}); !errors.Is(err, ErrInvalid) {
			t.Errorf("Create(%q) = %v, want ErrInvalid", name, err)
		}
	}
	if _, _, err := s.Create(ctx, "x", nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("Create without scopes = %v, want ErrInvalid", err)
	}
	k2, _, err := s.Create(ctx, "admin-1", []Scope{Admin})
	if err != nil {
		t.Fatal(err)
	}

	list, err := s.List(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "admin-1" || list[1].Name != "shop-1" {
		t.Fatalf("List = %+v, %v", list, err)
	}

	// Revoke by name, then by id.
	if r, err := s.Revoke(ctx, "shop-1"); err != nil || r.ID != k.ID {
		t.Fatalf("Revoke(name) = %+v, %v", r, err)
	}
	if _, err := s.Authenticate(ctx, secret); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("revoked key authenticates: %v", err)
	}
	if _, err := s.Revoke(ctx, "shop-1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second revoke: %v", err)
	}
	if _, err := s.Revoke(ctx, k2.ID); err != nil {
		t.Fatalf("Revoke(id): %v", err)
	}
	if list, _ := s.List(ctx); len(list) != 0 {
		t.Fatalf("after revoking all: %+v", list)
	}
	// The name is free again.
	if _, _, err := s.Create(ctx, "shop-1", []Scope{Bindings}); err != nil {
		t.Fatal(err)
	}
}

func TestPolicy(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	s := New(rdb)
	k, secret, err := s.CreateWithPolicy(ctx, "shop", []Scope{QR, Callbacks}, Policy{RequireDevice: true})
	if err != nil || !k.RequireDevice {
		t.Fatalf("CreateWithPolicy = %+v, %v", k, err)
	}
	_, plain, err := s.Create(ctx, "plain", []Scope{QR})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Authenticate(ctx, secret); err != nil || !got.RequireDevice || got.ID != k.ID {
		t.Fatalf("Authenticate = %+v, %v", got, err)
	}
	if got, err := s.Authenticate(ctx, plain); err != nil || got.RequireDevice {
		t.Fatalf("Authenticate plain = %+v, %v", got, err)
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 2 || list[1].Name != "shop" || !list[1].RequireDevice || list[0].RequireDevice {
		t.Fatalf("List = %+v, %v", list, err)
	}
	// A record stored before policies existed has none.
	rdb.HDel(ctx, recordKey(digestOf(secret)), "reqdev")
	if got, err := s.Authenticate(ctx, secret); err != nil || got.RequireDevice {
		t.Fatalf("record without reqdev = %+v, %v", got, err)
	}
}

func TestParseLimit(t *testing.T) {
	tests := []struct {
		in      string
		scope   Scope
		want    Limit
		wantErr bool
	}{
		{"qr=60/1m", QR, Limit{60, time.Minute}, false},
		{" Bindings = 600/1h ", Bindings, Limit{600, time.Hour}, false},
		{"calls=5/30s", Calls, Limit{5, 30 * time.Second}, false},
		{"orders=0", Orders, Limit{}, false},
		{"orders=unlimited", Orders, Limit{}, false},
		{"orders=0/1m", Orders, Limit{}, false},
		{"admin=10/1m", "", Limit{}, true},
		{"root=10/1m", "", Limit{}, true},
		{"qr", "", Limit{}, true},
		{"qr=60", "", Limit{}, true},
		{"qr=-1/1m", "", Limit{}, true},
		{"qr=x/1m", "", Limit{}, true},
		{"qr=60/1ms", "", Limit{}, true},
		{"qr=60/48h", "", Limit{}, true},
		{"qr=60/soon", "", Limit{}, true},
	}
	for _, tt := range tests {
		sc, l, err := ParseLimit(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseLimit(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("ParseLimit(%q) error %v does not wrap ErrInvalid", tt.in, err)
			}
			continue
		}
		if sc != tt.scope || l != tt.want {
			t.Errorf("ParseLimit(%q) = %s %v, want %s %v", tt.in, sc, l, tt.scope, tt.want)
		}
	}
}

func TestLimitString(t *testing.T) {
	tests := []struct {
		l    Limit
		want string
	}{
		{Limit{60, time.Minute}, "60/1m"},
		{Limit{600, 2 * time.Hour}, "600/2h"},
		{Limit{5, 90 * time.Second}, "5/90s"},
		{Limit{}, "unlimited"},
	}
	for _, tt := range tests {
		if got := tt.l.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.l, got, tt.want)
		}
		var back Limit
		if err := back.UnmarshalText([]byte(tt.want)); err != nil || back != tt.l {
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v", tt.want, back, err, tt.l)
		}
	}
}

func TestLimitsStored(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	s := New(rdb)
	tests := []struct {
		name   string
		limits map[Scope]Limit
		want   map[Scope]Limit // LimitFor each listed scope
	}{
		{"none", nil, map[Scope]Limit{QR: DefaultLimit, Bindings: DefaultLimit}},
		{"some", map[Scope]Limit{QR: {60, time.Minute}, Bindings: {0, 0}},
			map[Scope]Limit{QR: {60, time.Minute}, Bindings: {}, Orders: DefaultLimit}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, secret, err := s.CreateWithPolicy(ctx, "lim-"+tt.name, []Scope{Admin}, Policy{Limits: tt.limits})
			if err != nil {
				t.Fatal(err)
			}
			k, err := s.Authenticate(ctx, secret)
			if err != nil {
				t.Fatal(err)
			}
			for sc, want := range tt.want {
				if got := k.LimitFor(sc); got != want {
					t.Errorf("LimitFor(%s) = %v, want %v", sc, got, want)
				}
			}
		})
	}

	// A key stored before keys had limits has no limits field.
	_, secret, err := s.Create(ctx, "old", []Scope{QR})
	if err != nil {
		t.Fatal(err)
	}
	rdb.HDel(ctx, recordKey(digestOf(secret)), "limits")
	k, err := s.Authenticate(ctx, secret)
	if err != nil || k.Limits != nil || k.LimitFor(QR) != DefaultLimit {
		t.Fatalf("old key: %+v, %v; want no limits, default %v", k, err, DefaultLimit)
	}

	for _, bad := range []map[Scope]Limit{{Admin: {1, time.Minute}}, {QR: {1, time.Millisecond}}, {"root": {1, time.Minute}}} {
		if _, _, err := s.CreateWithPolicy(ctx, "bad", []Scope{QR}, Policy{Limits: bad}); !errors.Is(err, ErrInvalid) {
			t.Errorf("limits %v: error %v, want ErrInvalid", bad, err)
		}
	}
}
