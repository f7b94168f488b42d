package api

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/privnum/privnum/apikey"
	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/callback"
	"github.com/privnum/privnum/device"
	"github.com/privnum/privnum/qr"
	"github.com/privnum/privnum/reject"
	"github.com/privnum/privnum/verify"
)

// TestBadRequests sends every kind of bad request and checks the problem
// it gets, and that Redis is exactly as before.
func TestBadRequests(t *testing.T) {
	e := newEnv(t)
	e.addNumbers(x0)
	var b binding.Binding
	e.ok(call{method: "POST", path: "/v1/bindings", key: e.admin(), body: `{"a":"` + alice + `","b":"` + bob + `"}`}, 201, &b)
	e.ok(call{method: "POST", path: "/v1/orders", key: e.admin(), body: `{"id":"SO-1","buyer":"` + carol + `","courier":"13600000004"}`}, 201, nil)
	var code QRCode
	e.ok(call{method: "POST", path: "/v1/qr-codes", key: e.admin(), body: `{"owner":"` + carol + `"}`}, 201, &code)
	_, shop, err := e.cfg.Keys.CreateWithPolicy(context.Background(), "shop", []apikey.Scope{apikey.QR, apikey.Callbacks}, apikey.Policy{RequireDevice: true})
	if err != nil {
		t.Fatal(err)
	}
	const vid = "0123456789abcdef0123456789abcdef"

	big := `{"numbers":[` + strings.Repeat(`{"number":"17000000009"},`, 3000) + `{"number":"17000000009"}]}`
	tests := []struct {
		name   string
		c      call
		status int
		slug   string // "" for about:blank
		field  string
		input  string
		number string
		detail string // substring of detail
	}{
		{"malformed JSON", call{method: "POST", path: "/v1/bindings", body: `{"a":"13800000001",`}, 400, "malformed-request", "", "", "", "cut short"},
		{"syntax error", call{method: "POST", path: "/v1/bindings", body: `{"a" "13800000001"}`}, 400, "malformed-request", "", "", "", "invalid JSON at byte"},
		{"unknown field", call{method: "POST", path: "/v1/bindings", body: `{"a":"13800000001","b":"13900000003","ttl":"2h"}`}, 400, "unknown-field", "ttl", "", "", `unknown field "ttl"`},
		{"wrong type", call{method: "POST", path: "/v1/bindings", body: `{"a":"13800000001","b":"13900000003","ttl_seconds":"2h"}`}, 400, "malformed-request", "ttl_seconds", "", "", "want an integer"},
		{"fractional seconds", call{method: "POST", path: "/v1/bindings", body: `{"a":"13800000001","b":"13900000003","ttl_seconds":1.5}`}, 400, "malformed-request", "ttl_seconds", "", "", ""},
		{"number as JSON number", call{method: "POST", path: "/v1/bindings", body: `{"a":13800000001,"b":"13900000003"}`}, 400, "malformed-request", "a", "", "", "want a string"},
		{"trailing data", call{method: "POST", path: "/v1/bindings", body: `{"a":"13800000001","b":"13900000003"} {}`}, 400, "malformed-request", "", "", "", "after the JSON object"},
		{"trailing garbage", call{method: "POST", path: "/v1/bindings", body: `{"a":"13800000001","b":"13900000003"}x`}, 400, "malformed-request", "", "", "", ""},
		{"array body", call{method: "POST", path: "/v1/bindings", body: `[{"a":"13800000001"}]`}, 400, "malformed-request", "", "", "", "want a JSON object"},
		{"empty body", call{method: "POST", path: "/v1/bindings"}, 400, "malformed-request", "", "", "", "empty"},
		{"unknown field on release", call{method: "POST", path: "/v1/bindings/" + b.ID + "/release", body: `{"now":true}`}, 400, "unknown-field", "now", "", "", ""},
		{"oversized", call{method: "POST", path: "/v1/numbers", body: big}, 413, "body-too-large", "", "", "", "65536 bytes"},
		{"no content type", call{method: "POST", path: "/v1/bindings", body: `{"a":"13800000001","b":"13900000003"}`, noCT: true}, 415, "unsupported-media-type", "", "", "", "none"},
		{"form content type", call{method: "POST", path: "/v1/bindings", body: `{"a":"13800000001","b":"13900000003"}`, header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, 415, "unsupported-media-type", "", "", "", "want application/json"},
		{"latin1", call{method: "POST", path: "/v1/bindings", body: `{"a":"13800000001","b":"13900000003"}`, header: map[string]string{"Content-Type": "application/json; charset=latin1"}}, 415, "unsupported-media-type", "", "", "", "charset"},
		{"invalid number b", call{method: "POST", path: "/v1/bindings", body: `{"a":"13800000001","b":"12"}`}, 422, "invalid-number", "b", "12", "", `"12"`},
		{"invalid number a", call{method: "POST", path: "/v1/bindings", body: `{"a":"banana","b":"13900000003"}`}, 422, "invalid-number", "a", "banana", "", `"banana"`},
		{"missing a", call{method: "POST", path: "/v1/bindings", body: `{"b":"13900000003"}`}, 422, "invalid-number", "a", "", "", "empty"},
		{"invalid x", call{method: "POST", path: "/v1/bindings", body: `{"a":"13800000001","b":"13900000003","x":"170"}`}, 422, "invalid-number", "x", "170", "", ""},
		{"same parties", call{method: "POST", path: "/v1/bindings", body: `{"a":"13800000001","b":"+8613800000001"}`}, 422, "invalid-field", "b", "", "", "same number"},
		{"x is a party", call{method: "POST", path: "/v1/bindings", body: `{"a":"17000000000","b":"13900000003","x":"17000000000"}`}, 422, "invalid-field", "x", "", "", ""},
		{"ttl zero", call{method: "POST", path: "/v1/bindings", body: `{"a":"13800000001","b":"13900000003","ttl_seconds":0}`}, 422, "invalid-field", "ttl_seconds", "", "", ""},
		{"ttl over the service maximum", call{method: "POST", path: "/v1/bindings", body: `{"a":"13800000001","b":"13900000003","ttl_seconds":40000000}`}, 422, "invalid-field", "ttl_seconds", "", "", "at most"},
		{"negative max duration", call{method: "POST", path: "/v1/bindings", body: `{"a":"13800000001","b":"13900000003","max_duration_seconds":-1}`}, 422, "invalid-field", "max_duration_seconds", "", "", ""},
		{"bad directions", call{method: "POST", path: "/v1/bindings", body: `{"a":"13800000001","b":"13900000003","directions":"a->b"}`}, 422, "invalid-field", "directions", "", "", ""},
		{"empty directions", call{method: "POST", path: "/v1/bindings", body: `{"a":"13800000001","b":"13900000003","directions":""}`}, 422, "invalid-field", "directions", "", "", ""},
		{"pool exhausted", call{method: "POST", path: "/v1/bindings", body: `{"a":"13800000001","b":"13900000003"}`}, 409, "pool-exhausted", "", "", "", "add numbers"},
		{"party busy on x", call{method: "POST", path: "/v1/bindings", body: `{"a":"13800000001","b":"13900000003","x":"17000000000"}`}, 409, "party-busy", "x", "", x0, ""},
		{"x not in pool", call{method: "POST", path: "/v1/bindings", body: `{"a":"13800000001","b":"13900000003","x":"17000000005"}`}, 409, "number-unavailable", "x", "", "+8617000000005", "not in the pool"},
		{"binding not found", call{method: "GET", path: "/v1/bindings/8617000000000.0123456789abcdef"}, 404, "binding-not-found", "", "", "", ""},
		{"binding id garbage", call{method: "GET", path: "/v1/bindings/nope"}, 404, "binding-not-found", "", "", "", ""},
		{"extend missing ttl", call{method: "POST", path: "/v1/bindings/" + b.ID + "/extend", body: `{}`}, 422, "invalid-field", "ttl_seconds", "", "", "required"},
		{"extend beyond max", call{method: "POST", path: "/v1/bindings/" + b.ID + "/extend", body: `{"ttl_seconds":40000000}`}, 422, "invalid-field", "ttl_seconds", "", "", ""},
		{"number not in pool", call{method: "GET", path: "/v1/numbers/17000000007"}, 404, "number-not-found", "", "", "+8617000000007", ""},
		{"retire unknown number", call{method: "POST", path: "/v1/numbers/+8617000000007/retire"}, 404, "number-not-found", "", "", "+8617000000007", ""},
		{"pool number invalid", call{method: "GET", path: "/v1/numbers/banana"}, 422, "invalid-number", "number", "banana", "", ""},
		{"add one bad number", call{method: "POST", path: "/v1/numbers", body: `{"numbers":[{"number":"17000000002"},{"number":"12"}]}`}, 422, "invalid-number", "numbers[1].number", "12", "", ""},
		{"add bad area", call{method: "POST", path: "/v1/numbers", body: `{"numbers":[{"number":"17000000002"},{"number":"17000000003","area":"s h"}]}`}, 422, "invalid-field", "numbers[1].area", "s h", "", "invalid area"},
		{"add nothing", call{method: "POST", path: "/v1/numbers", body: `{"numbers":[]}`}, 422, "invalid-field", "numbers", "", "", ""},
		{"resolve bad caller", call{method: "POST", path: "/v1/routes:resolve", body: `{"x":"17000000000","caller":"x"}`}, 422, "invalid-number", "caller", "x", "", ""},
		{"order not found", call{method: "GET", path: "/v1/orders/SO-404"}, 404, "order-not-found", "", "", "", ""},
		{"order conflict", call{method: "POST", path: "/v1/orders", body: `{"id":"SO-1","buyer":"` + carol + `","courier":"13600000005"}`}, 409, "order-conflict", "", "", "", "SO-1"},
		{"order id too long", call{method: "POST", path: "/v1/orders", body: `{"id":"` + strings.Repeat("x", 129) + `","buyer":"13800000001","courier":"13600000005"}`}, 422, "invalid-field", "id", "", "", ""},
		{"order same parties", call{method: "POST", path: "/v1/orders", body: `{"id":"SO-2","buyer":"13800000001","courier":"13800000001"}`}, 422, "invalid-field", "courier", "", "", ""},
		{"order bad buyer", call{method: "POST", path: "/v1/orders", body: `{"id":"SO-2","buyer":"1","courier":"13800000001"}`}, 422, "invalid-number", "buyer", "1", "", ""},
		{"complete unknown order", call{method: "POST", path: "/v1/orders/SO-404/complete"}, 404, "order-not-found", "", "", "", ""},
		{"calls limit not a number", call{method: "GET", path: "/v1/calls?limit=many"}, 400, "malformed-request", "limit", "", "", ""},
		{"calls limit too big", call{method: "GET", path: "/v1/calls?limit=100000"}, 422, "invalid-field", "limit", "", "", ""},
		{"webhook bad url", call{method: "POST", path: "/v1/webhooks", body: `{"url":"ftp://example.com"}`}, 422, "invalid-field", "url", "", "", ""},
		{"webhook bad event", call{method: "POST", path: "/v1/webhooks", body: `{"url":"https://example.com/h","events":["binding.deleted"]}`}, 422, "invalid-field", "events", "", "", ""},
		{"webhook not found", call{method: "DELETE", path: "/v1/webhooks/wh_nope"}, 404, "webhook-not-found", "", "", "", ""},
		{"qr owner invalid", call{method: "POST", path: "/v1/qr-codes", body: `{"owner":"12"}`}, 422, "invalid-number", "owner", "12", "", ""},
		{"qr mode unknown", call{method: "POST", path: "/v1/qr-codes", body: `{"owner":"13800000001","mode":"fax"}`}, 422, "invalid-field", "mode", "", "", "fax"},
		{"qr label too long", call{method: "POST", path: "/v1/qr-codes", body: `{"owner":"13800000001","label":"` + strings.Repeat("é", 101) + `"}`}, 422, "invalid-field", "label", "", "", "label"},
		{"qr not found", call{method: "GET", path: "/v1/qr-codes/nope"}, 404, "qr-code-not-found", "", "", "", ""},
		{"scan without device token", call{method: "POST", path: "/v1/qr-codes/" + code.Token + "/scans", key: shop, body: `{"scanner":"` + bob + `"}`}, 403, "device-rejected", "", "", "", DeviceTokenHeader},
		{"scan with a bad device token", call{method: "POST", path: "/v1/qr-codes/" + code.Token + "/scans", key: shop, body: `{"scanner":"` + bob + `"}`, header: map[string]string{DeviceTokenHeader: "pnd_x"}}, 403, "device-rejected", "", "", "", "not valid"},
		{"callback unknown code", call{method: "POST", path: "/v1/callbacks", body: `{"code":"NOPE-1"}`}, 404, "callback-code-unknown", "", "", "", ""},
		{"callback code with a space", call{method: "POST", path: "/v1/callbacks", body: `{"code":"SHOP 1"}`}, 422, "invalid-field", "code", "", "", "spaces"},
		{"callback code too long", call{method: "POST", path: "/v1/callbacks", body: `{"code":"` + strings.Repeat("c", 129) + `"}`}, 422, "invalid-field", "code", "", "", "128"},
		{"callback without code", call{method: "POST", path: "/v1/callbacks", body: `{"caller":"13800000001"}`}, 422, "invalid-field", "code", "", "", ""},
		{"callback bad caller", call{method: "POST", path: "/v1/callbacks", body: `{"code":"SO-1","caller":"12"}`}, 422, "invalid-number", "caller", "12", "", ""},
		{"callback unknown field", call{method: "POST", path: "/v1/callbacks", body: `{"code":"SO-1","callee":"13800000001"}`}, 400, "unknown-field", "callee", "", "", ""},
		{"callback QR code without caller", call{method: "POST", path: "/v1/callbacks", body: `{"code":"` + code.Token + `"}`}, 422, "invalid-field", "caller", "", "", "caller"},
		{"callback without caller for a device key", call{method: "POST", path: "/v1/callbacks", key: shop, body: `{"code":"SO-1"}`}, 422, "invalid-field", "caller", "", "", "verified device"},
		{"callback without device token", call{method: "POST", path: "/v1/callbacks", key: shop, body: `{"code":"SO-1","caller":"` + bob + `"}`}, 403, "device-rejected", "", "", "", DeviceTokenHeader},
		{"callback not found", call{method: "GET", path: "/v1/callbacks/nope"}, 404, "callback-not-found", "", "", "", ""},
		{"verification bad number", call{method: "POST", path: "/v1/verifications", body: `{"number":"12"}`}, 422, "invalid-number", "number", "12", "", ""},
		{"verification without number", call{method: "POST", path: "/v1/verifications", body: `{}`}, 422, "invalid-number", "number", "", "", ""},
		{"verification not found", call{method: "GET", path: "/v1/verifications/" + vid}, 404, "verification-not-found", "", "", "", ""},
		{"verification id garbage", call{method: "GET", path: "/v1/verifications/nope"}, 404, "verification-not-found", "", "", "", ""},
		{"check unknown verification", call{method: "POST", path: "/v1/verifications/" + vid + "/check", body: `{"reported":"+8617100000001"}`}, 404, "verification-not-found", "", "", "", ""},
		{"check without reported", call{method: "POST", path: "/v1/verifications/" + vid + "/check", body: `{}`}, 422, "invalid-field", "reported", "", "", "required"},
		{"register without iccid", call{method: "POST", path: "/v1/devices", body: sim{phone.deviceID, phone.chip, "", phone.imsi}.registration(alice, vid)}, 422, "invalid-field", "iccid", "", "", "required"},
		{"register bad imsi", call{method: "POST", path: "/v1/devices", body: sim{phone.deviceID, phone.chip, phone.iccid, "123"}.registration(alice, vid)}, 422, "invalid-field", "imsi", "", "", "digits"},
		{"register bad number", call{method: "POST", path: "/v1/devices", body: phone.registration("12", vid)}, 422, "invalid-number", "number", "12", "", ""},
		{"register unverified", call{method: "POST", path: "/v1/devices", body: phone.registration(alice, vid)}, 403, "device-rejected", "", "", "", "does not prove"},
		{"verify unregistered device", call{method: "POST", path: "/v1/devices/verify", body: phone.presented(alice, "pnd_x")}, 403, "device-rejected", "", "", "", "no device is registered"},
		{"verify device without token", call{method: "POST", path: "/v1/devices/verify", body: phone.presented(alice, "")}, 422, "invalid-field", "device_token", "", "", "required"},
		{"unknown route", call{method: "GET", path: "/v1/nothing"}, 404, "", "", "", "", "/openapi.json"},
		{"wrong method", call{method: "DELETE", path: "/v1/numbers"}, 405, "", "", "", "", "Allow"},
		{"idempotency key too long", call{method: "POST", path: "/v1/bindings", body: `{"a":"13800000001","b":"13900000003"}`, header: map[string]string{"Idempotency-Key": strings.Repeat("k", 256)}}, 400, "invalid-idempotency-key", "", "", "", ""},
	}
	before := e.snapshot()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.t = t
			if tt.c.key == "" {
				tt.c.key = e.admin()
			}
			r := e.do(tt.c)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			p := r.problem(t)
			wantType := "about:blank"
			if tt.slug != "" {
				wantType = ProblemTypeBase + tt.slug
			}
			if p.Type != wantType || p.Field != tt.field || p.Input != tt.input || p.Number != tt.number || !strings.Contains(p.Detail, tt.detail) {
				t.Errorf("problem %+v\nwant type %s field %q input %q number %q detail ~%q", p, wantType, tt.field, tt.input, tt.number, tt.detail)
			}
			if tt.status == 405 && r.header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
			if tt.status == 413 && p.MaxBytes != 64<<10 {
				t.Errorf("413 max_bytes = %d", p.MaxBytes)
			}
			if after := e.snapshot(); after != before {
				t.Fatalf("the request changed Redis:\nbefore\n%s\nafter\n%s", before, after)
			}
		})
	}
}

func TestEndedBindingConflict(t *testing.T) {
	e := newEnv(t)
	e.addNumbers(x0)
	var b binding.Binding
	e.ok(call{method: "POST", path: "/v1/bindings", key: e.admin(), body: `{"a":"` + alice + `","b":"` + bob + `"}`}, 201, &b)
	e.ok(call{method: "POST", path: "/v1/bindings/" + b.ID + "/release", key: e.admin()}, 200, nil)
	r := e.do(call{method: "POST", path: "/v1/bindings/" + b.ID + "/extend", key: e.admin(), body: `{"ttl_seconds":60}`})
	if p := r.problem(t); r.status != 409 || p.Type != ProblemTypeBase+"binding-ended" {
		t.Fatalf("extend released: %d %+v", r.status, p)
	}
	// A completed order stays closed.
	e.addNumbers(x1)
	e.ok(call{method: "POST", path: "/v1/orders", key: e.admin(), body: `{"id":"SO-9","buyer":"` + carol + `","courier":"` + bob + `"}`}, 201, nil)
	e.ok(call{method: "POST", path: "/v1/orders/SO-9/complete", key: e.admin()}, 200, nil)
	r = e.do(call{method: "POST", path: "/v1/orders", key: e.admin(), body: `{"id":"SO-9","buyer":"` + carol + `","courier":"` + bob + `"}`})
	if p := r.problem(t); r.status != 409 || p.Type != ProblemTypeBase+"order-closed" {
		t.Fatalf("reopen closed order: %d %+v", r.status, p)
	}
}

func TestProblemFor(t *testing.T) {
	tests := []struct {
		err      error
		status   int
		internal bool
	}{
		{binding.ErrPoolExhausted, 409, false},
		{fmt.Errorf("wrapped: %w", binding.ErrNotFound), 404, false},
		{qr.ErrRevoked, 410, false},
		{fmt.Errorf("scan: %w", qr.ErrCallbackUnavailable), 501, false},
		{&reject.RateLimitError{Limit: "token", RetryAfter: 3, Err: qr.ErrRateLimited}, 429, false},
		{&reject.RateLimitError{Limit: "number", RetryAfter: time.Minute, Err: verify.ErrRateLimited}, 429, false},
		{fmt.Errorf("x: %w", device.ErrSIMChanged), 403, false},
		{&deviceRejected{ReasonDeviceTokenRequired}, 403, false},
		{&reject.FieldError{Field: "iccid", Err: device.ErrInvalid}, 422, false},
		{&reject.FieldError{Field: "x", Reason: "no sentinel"}, 422, false},
		{fmt.Errorf("x: %w", callback.ErrUnknownCode), 404, false},
		{callback.ErrNotFound, 404, false},
		{fmt.Errorf("%w: %w", verify.ErrMismatch, verify.ErrLocked), 422, false},
		{verify.ErrLocked, 423, false},
		{verify.ErrExpired, 410, false},
		{verify.ErrFailed, 409, false},
		{verify.ErrPoolExhausted, 409, false},
		{verify.ErrNotFound, 404, false},
		{errors.New("redis: connection refused"), 500, true},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), 503, true},
		{problem(kTooLarge, "x"), 413, false},
	}
	for _, tt := range tests {
		p, internal := problemFor(tt.err)
		if p.Status != tt.status || internal != tt.internal {
			t.Errorf("problemFor(%v) = %d internal %v, want %d %v", tt.err, p.Status, internal, tt.status, tt.internal)
		}
		if internal && strings.Contains(p.Detail, "redis") {
			t.Errorf("internal error text reaches the client: %q", p.Detail)
		}
	}
}
