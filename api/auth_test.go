package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
	"time"

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

func TestKeyRateLimit(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	limited, secret, err := e.cfg.Keys.CreateWithPolicy(ctx, "limited", []apikey.Scope{apikey.QR, apikey.Bindings},
		apikey.Policy{Limits: map[apikey.Scope]apikey.Limit{apikey.QR: {N: 2, Window: time.Hour}, apikey.Bindings: {}}})
	if err != nil {
		t.Fatal(err)
	}
	// An old key: stored before keys carried limits.
	old, oldSecret, err := e.cfg.Keys.Create(ctx, "old", []apikey.Scope{apikey.QR})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(oldSecret))
	if err := e.rdb.HDel(ctx, "pn:{apikeys}:k:"+hex.EncodeToString(sum[:]), "limits").Err(); err != nil {
		t.Fatal(err)
	}

	qrPath, bindingPath := "/v1/qr-codes/nosuchcode", "/v1/bindings/nosuchbinding"
	tests := []struct {
		name   string
		key    string
		path   string
		status int
	}{
		{"first of 2", secret, qrPath, 404},
		{"second of 2", secret, qrPath, 404},
		{"third is refused", secret, qrPath, 429},
		{"still refused", secret, qrPath, 429},
		{"other scope, unlimited", secret, bindingPath, 404},
		{"other scope again", secret, bindingPath, 404},
		{"other key, same scope", e.keys[apikey.QR], qrPath, 404},
		{"old key gets the default", oldSecret, qrPath, 404},
		{"admin key, default per scope", e.admin(), qrPath, 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(call{method: "GET", path: tt.path, key: tt.key})
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if r.status != 429 {
				if ra := r.header.Get("Retry-After"); ra != "" {
					t.Errorf("Retry-After %q on %d", ra, r.status)
				}
				return
			}
			p := r.problem(t)
			if p.Type != ProblemTypeBase+"rate-limited" || p.Limit != "api_key" || p.Scope != "qr" {
				t.Errorf("problem %+v, want rate-limited, limit api_key, scope qr", p)
			}
			// 2 per hour: a token is back in half an hour.
			secs, err := strconv.Atoi(r.header.Get("Retry-After"))
			if err != nil || secs < 1700 || secs > 1800 {
				t.Errorf("Retry-After %q, want about 1800", r.header.Get("Retry-After"))
			}
		})
	}

	// The buckets: the limited key's qr bucket holds 2, none for its
	// unlimited scope; the old key's holds DefaultLimit.N.
	tokens := func(id string, sc apikey.Scope) (float64, bool) {
		t.Helper()
		v, err := e.rdb.HGet(ctx, rateLimitPrefix+":{"+id+":"+string(sc)+"}", "tok").Float64()
		if err != nil {
			return 0, false
		}
		return v, true
	}
	if _, ok := tokens(limited.ID, apikey.Bindings); ok {
		t.Error("a bucket was kept for an unlimited scope")
	}
	if tok, ok := tokens(old.ID, apikey.QR); !ok || tok < float64(apikey.DefaultLimit.N)-2 || tok > float64(apikey.DefaultLimit.N) {
		t.Errorf("old key's bucket: %v tokens (found %v), want about %d", tok, ok, apikey.DefaultLimit.N-1)
	}
}
