package apikey

import (
	"context"
	"errors"
	"strings"
	"testing"

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
