package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/privnum/privnum/apikey"
	"github.com/privnum/privnum/callback"
	"github.com/privnum/privnum/internal/redistest"
	"github.com/privnum/privnum/verify"
)

// Verification caller IDs used in the tests.
const (
	cid1 = "+8617100000001"
	cid2 = "+8617100000002"
	cid3 = "+8617100000003"
	cid4 = "+8617100000004"
)

// wantProblem requires r to be a problem of status and slug and returns it.
func wantProblem(t *testing.T, r resp, status int, slug string) Problem {
	t.Helper()
	p := r.problem(t)
	if r.status != status || p.Type != ProblemTypeBase+slug {
		t.Fatalf("status %d type %s, want %d %s: %s", r.status, p.Type, status, slug, r.body)
	}
	return p
}

// wantRejected requires r to be a 403 device-rejected with reason.
func wantRejected(t *testing.T, r resp, reason string) {
	t.Helper()
	if p := wantProblem(t, r, 403, "device-rejected"); p.Reason != reason {
		t.Fatalf("reason %q, want %q: %s", p.Reason, reason, r.body)
	}
}

// noLeak fails if any response body or header, or the log, holds one of
// secrets (or, for a +86 number, its national form).
// skip tells responses allowed to hold them (the registration that
// returns a device token).
func noLeak(t *testing.T, e *env, secrets []string, skip func(resp) bool) {
	t.Helper()
	var needles []string
	for _, s := range secrets {
		needles = append(needles, s)
		if national, ok := strings.CutPrefix(s, "+86"); ok {
			needles = append(needles, national)
		}
	}
	for _, r := range e.responses() {
		if skip != nil && skip(r) {
			continue
		}
		var hdr strings.Builder
		for k, v := range r.header {
			hdr.WriteString(k + ": " + strings.Join(v, ",") + "\n")
		}
		for _, n := range needles {
			if strings.Contains(string(r.body), n) || strings.Contains(hdr.String(), n) {
				t.Fatalf("a %d response holds %q:\n%s%s", r.status, n, hdr.String(), r.body)
			}
		}
	}
	logs := e.logs.String()
	for _, n := range needles {
		if strings.Contains(logs, n) {
			t.Fatalf("the log holds %q:\n%s", n, logs)
		}
	}
}

// e164Like matches an E.164 number.
var e164Like = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// jsonShape is a JSON object's keys and the kinds of their values.
func jsonShape(t *testing.T, body []byte) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	var out []string
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s:%T", k, v))
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

func TestCallbacks(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.addNumbers(x0, x1)
	if err := e.flows.callbacks.MapCode(ctx, "SHOP-42", alice, bob); err != nil {
		t.Fatal(err)
	}
	key := e.keys[apikey.Callbacks]
	start := call{method: "POST", path: "/v1/callbacks", key: key, body: `{"code":"SHOP-42"}`, header: idem("cb-1")}
	var cb Callback
	r := e.ok(start, 202, &cb)
	if cb.State != "requested" || cb.First != "+86138****0001" || cb.Second != "+86139****0002" || cb.X != x0 || cb.BindingID == "" {
		t.Fatalf("start = %+v", cb)
	}
	if loc := r.header.Get("Location"); loc != "/v1/callbacks/"+cb.ID {
		t.Fatalf("Location %q", loc)
	}
	if jobs := e.flows.queue.list(); !slices.Equal(jobs, []string{callback.JobKind + ":" + cb.ID}) {
		t.Fatalf("queued %v", jobs)
	}
	// A retry with the Idempotency-Key replays the answer and calls nobody.
	again := e.ok(start, 202, nil)
	if string(again.body) != string(r.body) || again.header.Get("Idempotent-Replayed") != "true" || len(e.flows.queue.list()) != 1 {
		t.Fatalf("replay %s, %d jobs", again.body, len(e.flows.queue.list()))
	}
	var got Callback
	e.ok(call{method: "GET", path: "/v1/callbacks/" + cb.ID, key: key}, 200, &got)
	if got.ID != cb.ID || got.State != "requested" {
		t.Fatalf("get = %+v", got)
	}

	// A QR code reaches its owner; the caller is called first.
	var code QRCode
	e.ok(call{method: "POST", path: "/v1/qr-codes", key: e.admin(), body: `{"owner":"` + carol + `"}`}, 201, &code)
	r = e.do(call{method: "POST", path: "/v1/callbacks", key: key, body: `{"code":"` + code.Token + `"}`})
	if p := wantProblem(t, r, 422, "invalid-field"); p.Field != "caller" {
		t.Fatalf("QR code without caller: %+v", p)
	}
	// The owner asking for a callback from their own code gets the answer
	// anyone gets (no oracle for whose code it is): 202, a callback of the
	// same shape, queued, that GET shows like any other. No binding is
	// made: the stranger's callback below still gets x1.
	shapes := map[string]string{}
	for _, tc := range []struct{ name, caller, first string }{
		{"owner", carol, "+86137****0003"},
		{"stranger", "13800000001", "+86138****0001"},
	} {
		r := e.do(call{method: "POST", path: "/v1/callbacks", key: key, body: `{"code":"` + code.Token + `","caller":"` + tc.caller + `"}`})
		if r.status != 202 {
			t.Fatalf("%s: status %d: %s", tc.name, r.status, r.body)
		}
		var cb Callback
		if err := json.Unmarshal(r.body, &cb); err != nil {
			t.Fatal(err)
		}
		if cb.State != "requested" || cb.First != tc.first || cb.Second != "+86137****0003" || !e164Like.MatchString(cb.X) ||
			!strings.HasPrefix(cb.BindingID, strings.TrimPrefix(cb.X, "+")+".") || len(cb.ID) != 32 || r.header.Get("Location") != "/v1/callbacks/"+cb.ID {
			t.Fatalf("%s: callback %+v, Location %q", tc.name, cb, r.header.Get("Location"))
		}
		if tc.name == "stranger" && cb.X != x1 {
			t.Fatalf("the stranger's callback is on %s, want %s (the owner's bound something)", cb.X, x1)
		}
		var got Callback
		e.ok(call{method: "GET", path: "/v1/callbacks/" + cb.ID, key: key}, 200, &got)
		if got.ID != cb.ID || got.State != "requested" {
			t.Fatalf("%s: get = %+v", tc.name, got)
		}
		if jobs := e.flows.queue.list(); jobs[len(jobs)-1] != callback.JobKind+":"+cb.ID {
			t.Fatalf("%s: not queued: %v", tc.name, jobs)
		}
		shapes[tc.name] = jsonShape(t, r.body)
	}
	if shapes["owner"] != shapes["stranger"] {
		t.Fatalf("the owner's answer has another shape:\n%s\n%s", shapes["owner"], shapes["stranger"])
	}

	// alice now holds both virtual numbers: nothing is left for her.
	if err := e.flows.callbacks.MapCode(ctx, "SHOP-43", alice, "13600000004"); err != nil {
		t.Fatal(err)
	}
	r = e.do(call{method: "POST", path: "/v1/callbacks", key: key, body: `{"code":"SHOP-43"}`, header: idem("cb-2")})
	wantProblem(t, r, 409, "pool-exhausted")
	if keys := redistest.Keys(e.t, e.rdb, "pn:idem:*"); len(keys) != 1 {
		t.Fatalf("idempotency records %v: the failure was kept", keys)
	}
	wantProblem(t, e.do(call{method: "GET", path: "/v1/callbacks/nope", key: key}), 404, "callback-not-found")
	wantProblem(t, e.do(call{method: "POST", path: "/v1/callbacks", key: key, body: `{"code":"SHOP-404"}`}), 404, "callback-code-unknown")

	// An open order is a code too: the courier reaches the buyer; a
	// completed one no longer is.
	e.addNumbers("+8617000000002")
	e.ok(call{method: "POST", path: "/v1/orders", key: e.admin(), body: `{"id":"SO-7","buyer":"` + carol + `","courier":"13600000005"}`}, 201, nil)
	e.ok(call{method: "POST", path: "/v1/callbacks", key: key, body: `{"code":"SO-7"}`}, 202, &cb)
	if cb.First != "+86136****0005" || cb.Second != "+86137****0003" {
		t.Fatalf("order callback = %+v", cb)
	}
	e.ok(call{method: "POST", path: "/v1/orders/SO-7/complete", key: e.admin()}, 200, nil)
	wantProblem(t, e.do(call{method: "POST", path: "/v1/callbacks", key: key, body: `{"code":"SO-7"}`}), 404, "callback-code-unknown")

	// Callbacks show the parties masked (orders, by design, do not).
	noLeak(t, e, []string{alice, bob, carol, "+8613600000004", "+8613600000005"}, func(r resp) bool {
		return !strings.Contains(r.route, "/v1/callbacks")
	})
}

func TestVerificationFlow(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.callerIDs(cid1, cid2, cid3, cid4)
	key := e.keys[apikey.Verifications]
	keyInfo, err := e.cfg.Keys.Authenticate(ctx, key)
	if err != nil {
		t.Fatal(err)
	}

	start := call{method: "POST", path: "/v1/verifications", key: key, body: `{"number":"` + aliceNt + `"}`, header: idem("v-1")}
	var v Verification
	r := e.ok(start, 202, &v)
	if v.Status != "pending" || v.Number != "+86138****0001" || v.AttemptsLeft != 3 || time.Until(v.ExpiresAt) <= 0 {
		t.Fatalf("start = %+v", v)
	}
	if loc := r.header.Get("Location"); loc != "/v1/verifications/"+v.ID {
		t.Fatalf("Location %q", loc)
	}
	cid := e.flows.flash.callerID(t, v.ID)
	// The requester, for the per-requester limit, is the API key.
	if req, _ := e.rdb.HGet(ctx, "pn:verify:{"+alice+"}:v:"+v.ID, "req").Result(); req != keyInfo.ID {
		t.Fatalf("requester %q, want the key id %s", req, keyInfo.ID)
	}
	if again := e.ok(start, 202, nil); string(again.body) != string(r.body) || len(e.flows.flash.all()) != 1 {
		t.Fatalf("replayed start rang again: %d calls", len(e.flows.flash.all()))
	}

	check := func(id, reported string) resp {
		return e.do(call{method: "POST", path: "/v1/verifications/" + id + "/check", key: key, body: `{"reported":"` + reported + `"}`})
	}
	wrong := cid1
	if wrong == cid {
		wrong = cid2
	}
	p := wantProblem(t, check(v.ID, wrong), 422, "verification-mismatch")
	if p.AttemptsLeft == nil || *p.AttemptsLeft != 2 {
		t.Fatalf("mismatch %+v", p)
	}
	e.ok(call{method: "GET", path: "/v1/verifications/" + v.ID, key: key}, 200, &v)
	if v.Status != "pending" || v.AttemptsLeft != 2 {
		t.Fatalf("get = %+v", v)
	}
	if p := wantProblem(t, check(v.ID, "not a number"), 422, "invalid-number"); p.Field != "reported" {
		t.Fatalf("bad reported: %+v", p)
	}
	r = check(v.ID, cid)
	if r.status != 200 {
		t.Fatalf("right caller ID: %d %s", r.status, r.body)
	}
	r.json(t, &v)
	if v.Status != "verified" {
		t.Fatalf("check = %+v", v)
	}
	if r := check(v.ID, cid); r.status != 200 {
		t.Fatalf("checking a verified verification again: %d", r.status)
	}

	// Three wrong checks lock a verification: the third is still a
	// mismatch (attempts_left 0), the next is 423, even with the right ID.
	e.ok(call{method: "POST", path: "/v1/verifications", key: key, body: `{"number":"` + bob + `"}`}, 202, &v)
	cid = e.flows.flash.callerID(t, v.ID)
	wrong = cid1
	if wrong == cid {
		wrong = cid2
	}
	for left := 2; left >= 0; left-- {
		p := wantProblem(t, check(v.ID, wrong), 422, "verification-mismatch")
		if p.AttemptsLeft == nil || *p.AttemptsLeft != left {
			t.Fatalf("attempts_left %v, want %d", p.AttemptsLeft, left)
		}
	}
	wantProblem(t, check(v.ID, cid), 423, "verification-locked")
	e.ok(call{method: "GET", path: "/v1/verifications/" + v.ID, key: key}, 200, &v)
	if v.Status != "locked" || v.AttemptsLeft != 0 {
		t.Fatalf("locked = %+v", v)
	}

	wantProblem(t, check(strings.Repeat("0", 32), cid), 404, "verification-not-found")
	wantProblem(t, e.do(call{method: "GET", path: "/v1/verifications/nope", key: key}), 404, "verification-not-found")

	// A flash call that cannot be placed: 503 on start, 409 on check.
	e.flows.flash.setFail(errors.New("queue down for " + carol))
	wantProblem(t, e.do(call{method: "POST", path: "/v1/verifications", key: key, body: `{"number":"` + carol + `"}`}), 503, "unavailable")
	e.flows.flash.setFail(nil)
	calls := e.flows.flash.all()
	failed := calls[len(calls)-1]
	wantProblem(t, check(failed.id, failed.callerID), 409, "verification-failed")

	var secrets []string
	for _, c := range e.flows.flash.all() {
		secrets = append(secrets, c.callerID)
	}
	noLeak(t, e, append(secrets, alice, bob, carol), nil)
}

func TestVerificationExpiryAndPool(t *testing.T) {
	e := newFlowEnv(t, verify.Config{TTL: 300 * time.Millisecond})
	key := e.keys[apikey.Verifications]
	// An empty caller-ID pool, or one whose every ID rang the number within
	// the reuse window, is a conflict for this number.
	r := e.do(call{method: "POST", path: "/v1/verifications", key: key, body: `{"number":"` + alice + `"}`})
	wantProblem(t, r, 409, "pool-exhausted")
	e.callerIDs(cid1)
	var v Verification
	e.ok(call{method: "POST", path: "/v1/verifications", key: key, body: `{"number":"` + alice + `"}`}, 202, &v)
	wantProblem(t, e.do(call{method: "POST", path: "/v1/verifications", key: key, body: `{"number":"` + alice + `"}`}), 409, "pool-exhausted")

	time.Sleep(400 * time.Millisecond)
	r = e.do(call{method: "POST", path: "/v1/verifications/" + v.ID + "/check", key: key, body: `{"reported":"` + cid1 + `"}`})
	wantProblem(t, r, 410, "verification-expired")
	e.ok(call{method: "GET", path: "/v1/verifications/" + v.ID, key: key}, 200, &v)
	if v.Status != "expired" {
		t.Fatalf("get = %+v", v)
	}
	noLeak(t, e, []string{cid1}, nil)
}

// Starts are limited per number, per number prefix and per API key.
func TestVerificationRateLimits(t *testing.T) {
	e := newFlowEnv(t, verify.Config{
		PerNumber: verify.Limit{Max: 2, Window: time.Hour}, PerPrefix: verify.Limit{Max: 3, Window: time.Hour},
		PerRequester: verify.Limit{Max: 4, Window: time.Hour},
	})
	e.callerIDs(cid1, cid2, cid3)
	key := e.keys[apikey.Verifications]
	startWith := func(key, number string) resp {
		return e.do(call{method: "POST", path: "/v1/verifications", key: key, body: `{"number":"` + number + `"}`})
	}
	limited := func(r resp, limit string) {
		t.Helper()
		p := wantProblem(t, r, 429, "rate-limited")
		ra, err := strconv.Atoi(r.header.Get("Retry-After"))
		if p.Limit != limit || err != nil || ra < 1 || ra > 3600 {
			t.Fatalf("limit %q Retry-After %q, want %s: %s", p.Limit, r.header.Get("Retry-After"), limit, r.body)
		}
	}
	for range 2 {
		if r := startWith(key, alice); r.status != 202 {
			t.Fatalf("start: %d %s", r.status, r.body)
		}
	}
	limited(startWith(key, alice), "number")
	// Same prefix (+861380000...), another number.
	e.ok(call{method: "POST", path: "/v1/verifications", key: key, body: `{"number":"13800000002"}`}, 202, nil)
	limited(startWith(key, "13800000003"), "prefix")
	// Four starts per key: the refused ones did not count.
	e.ok(call{method: "POST", path: "/v1/verifications", key: key, body: `{"number":"` + bob + `"}`}, 202, nil)
	limited(startWith(key, carol), "api_key")
	// Another key has its own allowance.
	e.ok(call{method: "POST", path: "/v1/verifications", key: e.admin(), body: `{"number":"` + carol + `"}`}, 202, nil)
	if n := len(e.flows.flash.all()); n != 5 {
		t.Fatalf("%d flash calls, want 5", n)
	}
}

func TestDevices(t *testing.T) {
	e := newEnv(t)
	e.callerIDs(cid1, cid2, cid3, cid4)
	key := e.keys[apikey.Devices]
	verification := e.verified(aliceNt)

	var reg deviceRegistered
	r := e.ok(call{method: "POST", path: "/v1/devices", key: key, body: phone.registration(aliceNt, verification)}, 201, &reg)
	if reg.Number != "+86138****0001" || !strings.HasPrefix(reg.DeviceToken, "pnd_") || reg.DeviceIDHint != "WXYZ" || reg.RegisteredAt.IsZero() {
		t.Fatalf("register = %s", r.body)
	}
	tokens := []string{reg.DeviceToken}
	// A verification proves the number once.
	r = e.do(call{method: "POST", path: "/v1/devices", key: key, body: phone.registration(aliceNt, verification)})
	wantRejected(t, r, ReasonNotVerified)
	// ... and only its own number.
	r = e.do(call{method: "POST", path: "/v1/devices", key: key, body: phone.registration(bob, e.verified(carol))})
	wantRejected(t, r, ReasonNotVerified)

	present := func(number, token string, d sim) resp {
		return e.do(call{method: "POST", path: "/v1/devices/verify", key: key, body: d.presented(number, token)})
	}
	var st deviceStatus
	r = present(alice, reg.DeviceToken, phone)
	r.json(t, &st)
	if r.status != 200 || st.Status != "ok" {
		t.Fatalf("verify: %d %s", r.status, r.body)
	}
	wantRejected(t, present(alice, "pnd_"+strings.Repeat("A", 43), phone), ReasonTokenInvalid)
	wantRejected(t, present(bob, reg.DeviceToken, phone), ReasonNotRegistered)
	// An invalid token with another SIM changes nothing.
	swapped := phone
	swapped.iccid = "89860318740099999999"
	wantRejected(t, present(alice, "pnd_nope", swapped), ReasonTokenInvalid)
	if r := present(alice, reg.DeviceToken, phone); r.status != 200 {
		t.Fatalf("after a bad token: %d", r.status)
	}

	// Another SIM with the right token: sim_changed, then
	// reverify_required even for the old SIM, until a new registration.
	wantRejected(t, present(alice, reg.DeviceToken, swapped), ReasonSIMChanged)
	wantRejected(t, present(alice, reg.DeviceToken, phone), ReasonReverifyRequired)
	tok := e.register(aliceNt, swapped)
	tokens = append(tokens, tok)
	if r := present(alice, tok, swapped); r.status != 200 {
		t.Fatalf("after registering anew: %d %s", r.status, r.body)
	}
	wantRejected(t, present(alice, reg.DeviceToken, swapped), ReasonTokenInvalid)
	imsiSwap := swapped
	imsiSwap.imsi = "460039999999999"
	wantRejected(t, present(alice, tok, imsiSwap), ReasonSIMChanged)

	tok = e.register(aliceNt, phone)
	tokens = append(tokens, tok)
	chipSwap := phone
	chipSwap.chip = "EID89049032004008882600099999999"
	wantRejected(t, present(alice, tok, chipSwap), ReasonChipChanged)
	wantRejected(t, present(alice, tok, phone), ReasonReverifyRequired)

	for _, tt := range []struct {
		name, body, field string
	}{
		{"bad iccid", sim{phone.deviceID, phone.chip, "8986", phone.imsi}.registration(alice, "x"), "iccid"},
		{"bad imsi", sim{phone.deviceID, phone.chip, phone.iccid, "46003x"}.registration(alice, "x"), "imsi"},
		{"no chip", sim{phone.deviceID, "", phone.iccid, phone.imsi}.registration(alice, "x"), "chip_serial"},
		{"blank device id", sim{"  ", phone.chip, phone.iccid, phone.imsi}.registration(alice, "x"), "device_id"},
	} {
		r := e.do(call{method: "POST", path: "/v1/devices", key: key, body: tt.body})
		if p := wantProblem(t, r, 422, "invalid-field"); p.Field != tt.field {
			t.Errorf("%s: field %q, want %q", tt.name, p.Field, tt.field)
		}
	}
	r = present("12", tok, phone)
	if p := wantProblem(t, r, 422, "invalid-number"); p.Field != "number" {
		t.Fatalf("bad number: %+v", p)
	}

	// No raw identifier or token is in any response (but the registrations
	// that return their token) or log line.
	var secrets []string
	for _, d := range []sim{phone, swapped, imsiSwap, chipSwap} {
		secrets = append(secrets, d.deviceID, d.chip, d.iccid, d.imsi)
	}
	isRegistration := func(r resp) bool { return r.status == 201 }
	noLeak(t, e, append(secrets, tokens...), isRegistration)
	for _, r := range e.responses() {
		if r.status == 201 && (strings.Contains(string(r.body), phone.iccid) || strings.Contains(string(r.body), phone.chip)) {
			t.Fatalf("a registration echoes identifiers: %s", r.body)
		}
	}
	// Nor in Redis.
	dump := e.snapshot()
	for _, s := range append(secrets, tokens...) {
		if strings.Contains(dump, s) {
			t.Fatalf("Redis holds %q", s)
		}
	}
}

// An API key that requires a device needs the device token of the
// scanner's or caller's number on scans and callbacks.
func TestRequireDevice(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.addNumbers(x0, x1)
	e.callerIDs(cid1, cid2, cid3)
	_, shop, err := e.cfg.Keys.CreateWithPolicy(ctx, "shop", []apikey.Scope{apikey.QR, apikey.Callbacks}, apikey.Policy{RequireDevice: true})
	if err != nil {
		t.Fatal(err)
	}
	var code QRCode
	e.ok(call{method: "POST", path: "/v1/qr-codes", key: shop, body: `{"owner":"` + carol + `"}`}, 201, &code)
	scan := func(scanner, token string) resp {
		c := call{method: "POST", path: "/v1/qr-codes/" + code.Token + "/scans", key: shop, body: `{"scanner":"` + scanner + `"}`}
		if token != "" {
			c.header = map[string]string{DeviceTokenHeader: token}
		}
		return e.do(c)
	}
	wantRejected(t, scan(bob, ""), ReasonDeviceTokenRequired)
	wantRejected(t, scan(bob, "pnd_guess"), ReasonTokenInvalid) // bob has no device at all
	if p := wantProblem(t, scan("12", "pnd_guess"), 422, "invalid-number"); p.Field != "scanner" {
		t.Fatalf("bad scanner: %+v", p)
	}

	token := e.register(bob, phone)
	var res QRScanResult
	r := scan("13900000002", token)
	r.json(t, &res)
	if r.status != 200 || res.VirtualNumber == "" {
		t.Fatalf("scan with the device token: %d %s", r.status, r.body)
	}
	wantRejected(t, scan(alice, token), ReasonTokenInvalid) // bob's token is not alice's
	// A key without the policy needs no token.
	e.ok(call{method: "POST", path: "/v1/qr-codes/" + code.Token + "/scans", key: e.keys[apikey.QR], body: `{"scanner":"` + alice + `"}`}, 200, nil)

	// Callbacks: the caller field is the device's number.
	if err := e.flows.callbacks.MapCode(ctx, "SHOP-1", bob, "13600000004"); err != nil {
		t.Fatal(err)
	}
	cb := func(body, token string) resp {
		c := call{method: "POST", path: "/v1/callbacks", key: shop, body: body}
		if token != "" {
			c.header = map[string]string{DeviceTokenHeader: token}
		}
		return e.do(c)
	}
	if p := wantProblem(t, cb(`{"code":"SHOP-1"}`, token), 422, "invalid-field"); p.Field != "caller" {
		t.Fatalf("no caller: %+v", p)
	}
	wantRejected(t, cb(`{"code":"SHOP-1","caller":"`+bob+`"}`, ""), ReasonDeviceTokenRequired)
	wantRejected(t, cb(`{"code":"SHOP-1","caller":"`+alice+`"}`, token), ReasonTokenInvalid)
	if len(e.flows.queue.list()) != 0 {
		t.Fatal("a refused callback was queued")
	}
	var started Callback
	r = cb(`{"code":"SHOP-1","caller":"`+bob+`"}`, token)
	r.json(t, &started)
	if r.status != 202 || len(e.flows.queue.list()) != 1 {
		t.Fatalf("callback with the device token: %d %s", r.status, r.body)
	}

	// Once the device shows another SIM, its token no longer passes.
	swapped := phone
	swapped.iccid = "89860318740099999999"
	wantRejected(t, e.do(call{method: "POST", path: "/v1/devices/verify", key: e.keys[apikey.Devices], body: swapped.presented(bob, token)}), ReasonSIMChanged)
	wantRejected(t, scan(bob, token), ReasonReverifyRequired)
	wantRejected(t, cb(`{"code":"SHOP-1","caller":"`+bob+`"}`, token), ReasonReverifyRequired)

	noLeak(t, e, []string{token, phone.iccid, phone.imsi, phone.chip, phone.deviceID}, func(r resp) bool { return r.status == 201 && strings.Contains(string(r.body), "device_token") })
}

// Without a device service the policy cannot be checked: such keys fail
// closed, and the device routes are not served.
func TestRequireDeviceWithoutDevices(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Devices = nil })
	ctx := context.Background()
	e.addNumbers(x0)
	_, shop, err := e.cfg.Keys.CreateWithPolicy(ctx, "shop", []apikey.Scope{apikey.QR, apikey.Callbacks}, apikey.Policy{RequireDevice: true})
	if err != nil {
		t.Fatal(err)
	}
	var code QRCode
	e.ok(call{method: "POST", path: "/v1/qr-codes", key: shop, body: `{"owner":"` + carol + `"}`}, 201, &code)
	r := e.do(call{method: "POST", path: "/v1/qr-codes/" + code.Token + "/scans", key: shop, body: `{"scanner":"` + bob + `"}`,
		header: map[string]string{DeviceTokenHeader: "pnd_x"}})
	wantProblem(t, r, 503, "unavailable")
	r = e.do(call{method: "POST", path: "/v1/callbacks", key: shop, body: `{"code":"` + code.Token + `","caller":"` + bob + `"}`,
		header: map[string]string{DeviceTokenHeader: "pnd_x"}})
	wantProblem(t, r, 503, "unavailable")
	if n, _ := e.cfg.Pool.Get(ctx, x0); n.ActiveBindings != 0 || len(e.flows.queue.list()) != 0 {
		t.Fatal("a refused request bound or queued")
	}
	if r := e.do(call{method: "POST", path: "/v1/devices", key: e.admin(), body: phone.registration(bob, "x")}); r.status != 404 {
		t.Fatalf("POST /v1/devices without devices: %d", r.status)
	}
	if !strings.Contains(e.logs.String(), "device binding is not configured") {
		t.Fatal("the misconfiguration is not logged")
	}
}
