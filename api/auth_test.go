package api

import (
	"context"
	"strings"
	"testing"

	"github.com/privnum/privnum/apikey"
)

func TestAuth(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, revoked, err := e.cfg.Keys.Create(ctx, "gone", []apikey.Scope{apikey.Admin})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.cfg.Keys.Revoke(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	_, multi, _ := e.cfg.Keys.Create(ctx, "shop-1", []apikey.Scope{apikey.Bindings, apikey.QR})

	tests := []struct {
		name      string
		method    string
		path      string
		header    map[string]string
		key       string
		status    int
		challenge string // substring of WWW-Authenticate
		scope     string
	}{
		{"no key", "GET", "/v1/numbers", nil, "", 401, `Bearer realm="privnum"`, ""},
		{"wrong key", "GET", "/v1/numbers", nil, "pnk_" + strings.Repeat("A", 43), 401, `error="invalid_token"`, ""},
		{"not a privnum key", "GET", "/v1/numbers", nil, "hunter2", 401, `error="invalid_token"`, ""},
		{"revoked key", "GET", "/v1/numbers", nil, revoked, 401, `error="invalid_token"`, ""},
		{"basic auth", "GET", "/v1/numbers", map[string]string{"Authorization": "Basic dXNlcjpwYXNz"}, "", 401, `error="invalid_request"`, ""},
		{"bearer without token", "GET", "/v1/numbers", map[string]string{"Authorization": "Bearer "}, "", 401, `error="invalid_request"`, ""},
		{"wrong scope", "GET", "/v1/numbers", nil, e.keys[apikey.Bindings], 403, `error="insufficient_scope", scope="numbers"`, "numbers"},
		{"wrong scope for calls", "GET", "/v1/calls", nil, e.keys[apikey.Orders], 403, `scope="calls"`, "calls"},
		{"wrong scope for webhooks", "GET", "/v1/webhooks", nil, e.keys[apikey.Bindings], 403, `scope="webhooks"`, "webhooks"},
		{"wrong scope for orders", "GET", "/v1/orders/SO-1", nil, multi, 403, `scope="orders"`, "orders"},
		{"wrong scope for callbacks", "GET", "/v1/callbacks/x", nil, multi, 403, `scope="callbacks"`, "callbacks"},
		{"wrong scope for verifications", "GET", "/v1/verifications/x", nil, e.keys[apikey.Devices], 403, `scope="verifications"`, "verifications"},
		{"wrong scope for devices", "POST", "/v1/devices/verify", nil, e.keys[apikey.Verifications], 403, `scope="devices"`, "devices"},
		{"callbacks scope", "GET", "/v1/callbacks/x", nil, e.keys[apikey.Callbacks], 404, "", ""},
		{"admin covers verifications", "GET", "/v1/verifications/x", nil, e.admin(), 404, "", ""},
		{"scope ok", "GET", "/v1/numbers", nil, e.keys[apikey.Numbers], 200, "", ""},
		{"admin ok", "GET", "/v1/calls", nil, e.admin(), 200, "", ""},
		{"multi-scope key", "GET", "/v1/qr-codes/none", nil, multi, 404, "", ""},
		{"X-API-Key", "GET", "/v1/webhooks", map[string]string{"X-API-Key": e.keys[apikey.Webhooks]}, "", 200, "", ""},
		{"lower-case bearer", "GET", "/v1/numbers", map[string]string{"Authorization": "bearer " + e.admin()}, "", 200, "", ""},
		{"public openapi", "GET", "/openapi.json", nil, "", 200, "", ""},
		{"public health", "GET", "/healthz", nil, "", 200, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.t = t
			r := e.do(call{method: tt.method, path: tt.path, key: tt.key, header: tt.header})
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if got := r.header.Get("WWW-Authenticate"); !strings.Contains(got, tt.challenge) || (tt.challenge == "") != (got == "") {
				t.Errorf("WWW-Authenticate %q, want %q", got, tt.challenge)
			}
			if tt.status == 401 || tt.status == 403 {
				p := r.problem(t)
				want := map[int]string{401: "unauthorized", 403: "insufficient-scope"}[tt.status]
				if p.Type != ProblemTypeBase+want || p.Scope != tt.scope {
					t.Errorf("problem %+v, want type %s scope %q", p, want, tt.scope)
				}
			}
		})
	}
	// Secrets never reach the log.
	for _, secret := range append([]string{revoked, multi}, valuesOf(e.keys)...) {
		if strings.Contains(e.logs.String(), secret) {
			t.Fatal("an API key is in the log")
		}
	}
}

func valuesOf(m map[apikey.Scope]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// Auth is checked before the body: an unauthenticated caller learns nothing
// about the request's validity.
func TestAuthBeforeBody(t *testing.T) {
	e := newEnv(t)
	r := e.do(call{method: "POST", path: "/v1/bindings", body: `{"nonsense":`})
	if r.status != 401 {
		t.Fatalf("status %d, want 401", r.status)
	}
	r = e.do(call{method: "POST", path: "/v1/bindings", key: e.keys[apikey.Orders], body: `{"nonsense":`})
	if r.status != 403 {
		t.Fatalf("status %d, want 403", r.status)
	}
}
