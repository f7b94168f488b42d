package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/privnum/privnum/callback"
	"github.com/privnum/privnum/dialq"
	"github.com/privnum/privnum/e164"
	"github.com/privnum/privnum/internal/redistest"
	"github.com/privnum/privnum/internal/syncbuf"
	"github.com/privnum/privnum/verify"
)

// apiApp is an app on a fresh Redis whose commands the tests build directly.
type apiApp struct {
	t      *testing.T
	a      *app
	stderr *syncbuf.Buffer
}

func newAPIApp(t *testing.T) *apiApp {
	errb := &syncbuf.Buffer{}
	a := &app{stdout: io.Discard, stderr: errb, redisURL: redistest.Start(t).URL, region: "CN", quarantine: time.Hour}
	t.Cleanup(a.close)
	return &apiApp{t: t, a: a, stderr: errb}
}

// exec runs a command built by build with args and returns its stdout.
func (x *apiApp) exec(build func() *cobra.Command, args ...string) (string, error) {
	var out bytes.Buffer
	x.a.stdout = &out
	cmd := build()
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func (x *apiApp) ok(build func() *cobra.Command, args ...string) string {
	x.t.Helper()
	out, err := x.exec(build, args...)
	if err != nil {
		x.t.Fatalf("%s: %v", strings.Join(args, " "), err)
	}
	return out
}

func TestAPIKeyCommands(t *testing.T) {
	x := newAPIApp(t)
	var created struct {
		ID, Name, Secret string
		Scopes           []string
	}
	out := x.ok(x.a.apikeyCmd, "create", "--name", "shop-1", "--scope", "bindings,qr", "--json")
	if err := json.Unmarshal([]byte(out), &created); err != nil || !strings.HasPrefix(created.Secret, "pnk_") || len(created.Scopes) != 2 {
		t.Fatalf("create --json = %s (%v)", out, err)
	}
	out = x.ok(x.a.apikeyCmd, "create", "--name", "ops", "--scope", "admin")
	if !strings.Contains(out, "pnk_") || !strings.Contains(out, "cannot be shown again") {
		t.Fatalf("create = %s", out)
	}
	secret := regexp.MustCompile(`pnk_\S+`).FindString(out)

	out = x.ok(x.a.apikeyCmd, "list")
	if !strings.Contains(out, "shop-1") || !strings.Contains(out, "bindings,qr") || strings.Contains(out, created.Secret) || strings.Contains(out, secret) {
		t.Fatalf("list = %s", out)
	}
	out = x.ok(x.a.apikeyCmd, "list", "--json")
	if strings.Contains(out, "pnk_") || !strings.Contains(out, `"hint"`) {
		t.Fatalf("list --json = %s", out)
	}

	var u usageError
	for _, args := range [][]string{
		{"create", "--name", "x", "--scope", "root"},
		{"create", "--name", "x", "--scope", ""},
		{"create", "--name", "x", "--scope", "qr", "--limit", "qr"},
		{"create", "--name", "x", "--scope", "qr", "--limit", "qr=5/1ms"},
		{"create", "--name", "x", "--scope", "qr", "--limit", "admin=5/1m"},
		{"create", "--name", "x", "--scope", "qr", "--limit", "qr=5/1m", "--limit", "qr=6/1m"},
		{"revoke"},
	} {
		if _, err := x.exec(x.a.apikeyCmd, args...); !errors.As(err, &u) {
			t.Errorf("apikey %s: %v, want a usage error", strings.Join(args, " "), err)
		}
	}
	if _, err := x.exec(x.a.apikeyCmd, "create", "--name", "shop-1", "--scope", "orders"); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("duplicate name: %v", err)
	}
	x.ok(x.a.apikeyCmd, "revoke", "shop-1")
	x.ok(x.a.apikeyCmd, "revoke", "ops")
	if _, err := x.exec(x.a.apikeyCmd, "revoke", "shop-1"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("second revoke: %v", err)
	}
	if out := x.ok(x.a.apikeyCmd, "list", "--json"); strings.Contains(out, "shop-1") {
		t.Fatalf("revoked key listed: %s", out)
	}
}

func TestWebhookCommands(t *testing.T) {
	x := newAPIApp(t)
	var h struct {
		ID, URL, Secret string
		Events          []string
	}
	out := x.ok(x.a.webhookCmd, "add", "https://example.com/privnum", "--events", "binding.created,call.completed", "--json")
	if err := json.Unmarshal([]byte(out), &h); err != nil || !strings.HasPrefix(h.Secret, "whsec_") || len(h.Events) != 2 {
		t.Fatalf("add = %s (%v)", out, err)
	}
	out = x.ok(x.a.webhookCmd, "add", "http://127.0.0.1:9/all")
	if !strings.Contains(out, "shown once") || !strings.Contains(out, "events *") {
		t.Fatalf("add = %s", out)
	}
	out = x.ok(x.a.webhookCmd, "list")
	if !strings.Contains(out, "https://example.com/privnum") || strings.Contains(out, "whsec_") {
		t.Fatalf("list = %s", out)
	}
	var u usageError
	if _, err := x.exec(x.a.webhookCmd, "add", "ftp://example.com"); !errors.As(err, &u) {
		t.Fatalf("bad url: %v", err)
	}
	if _, err := x.exec(x.a.webhookCmd, "add", "https://example.com", "--events", "binding.deleted"); !errors.As(err, &u) {
		t.Fatalf("bad event: %v", err)
	}
	x.ok(x.a.webhookCmd, "remove", h.ID)
	if _, err := x.exec(x.a.webhookCmd, "remove", h.ID); err == nil {
		t.Fatal("second remove succeeded")
	}
}

// startAPI runs `privnum api` on a free port. It returns the server's base
// URL and a function that stops it and returns what the command returned.
func (x *apiApp) startAPI() (base string, stop func() error) {
	x.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	x.t.Cleanup(cancel)
	done := make(chan error, 1)
	go func() {
		cmd := x.a.apiCmd()
		cmd.SetArgs([]string{"--listen", "127.0.0.1:0", "--shutdown-timeout", "5s"})
		cmd.SilenceUsage, cmd.SilenceErrors = true, true
		done <- cmd.ExecuteContext(ctx)
	}()
	addrRE := regexp.MustCompile(`msg="API listening" addr=(\S+)`)
	deadline := time.Now().Add(10 * time.Second)
	for base == "" {
		if m := addrRE.FindStringSubmatch(x.stderr.String()); m != nil {
			base = "http://" + m[1]
		}
		select {
		case err := <-done:
			x.t.Fatalf("api exited: %v\n%s", err, x.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			x.t.Fatalf("api did not start:\n%s", x.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return base, func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			x.t.Fatal("api did not shut down")
			return nil
		}
	}
}

// apiResponse is a response of the API server.
type apiResponse struct {
	status int
	header http.Header
	body   string
}

// client sends requests to an API server with an API key and keeps every
// response.
type client struct {
	t    *testing.T
	base string
	mu   sync.Mutex
	seen []apiResponse
}

func (c *client) send(key, method, path, body string, header ...string) apiResponse {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := apiResponse{status: resp.StatusCode, header: resp.Header, body: string(b)}
	c.mu.Lock()
	c.seen = append(c.seen, r)
	c.mu.Unlock()
	return r
}

// ok sends a request that must answer status, and decodes the body into v.
func (c *client) ok(status int, v any, key, method, path, body string, header ...string) apiResponse {
	c.t.Helper()
	r := c.send(key, method, path, body, header...)
	if r.status != status {
		c.t.Fatalf("%s %s: %d, want %d: %s", method, path, r.status, status, r.body)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(r.body), v); err != nil {
			c.t.Fatalf("%s %s: %v: %s", method, path, err, r.body)
		}
	}
	return r
}

func TestAPICommand(t *testing.T) {
	x := newAPIApp(t)
	out := x.ok(x.a.apikeyCmd, "create", "--name", "shop-1", "--scope", "numbers,bindings", "--json")
	var key struct{ Secret string }
	json.Unmarshal([]byte(out), &key)

	base, stop := x.startAPI()
	c := &client{t: t, base: base}
	send := func(method, path, body string) (int, string) {
		t.Helper()
		r := c.send(key.Secret, method, path, body)
		return r.status, r.body
	}
	if code, body := send("POST", "/v1/numbers", `{"numbers":[{"number":"17000000000"}]}`); code != 200 {
		t.Fatalf("add numbers: %d %s", code, body)
	}
	code, body := send("POST", "/v1/bindings", `{"a":"13800000001","b":"13900000002","ttl_seconds":600}`)
	if code != 201 || !strings.Contains(body, `"x":"+8617000000000"`) {
		t.Fatalf("create binding: %d %s", code, body)
	}
	if code, _ := send("GET", "/v1/webhooks", ""); code != 403 {
		t.Fatalf("webhooks without the scope: %d", code)
	}
	if code, body := send("GET", "/openapi.json", ""); code != 200 || !strings.Contains(body, `"openapi"`) {
		t.Fatalf("openapi: %d", code)
	}
	// The API and the CLI use the same services: the CLI sees the binding.
	var b struct{ ID string }
	json.Unmarshal([]byte(body), &b)
	if out := x.ok(x.a.bindCmd, "show", b.ID, "--json"); !strings.Contains(out, `"state": "active"`) {
		t.Fatalf("bind show = %s", out)
	}
	x.ok(x.a.apikeyCmd, "revoke", "shop-1")
	if code, _ := send("GET", "/v1/numbers", ""); code != 401 {
		t.Fatalf("revoked key: %d", code)
	}

	if err := stop(); err != nil {
		t.Fatalf("api returned %v", err)
	}
	logs := x.stderr.String()
	if !strings.Contains(logs, "API stopped") || !strings.Contains(logs, `route="POST /v1/bindings"`) {
		t.Fatalf("log:\n%s", logs)
	}
	for _, secret := range []string{key.Secret, "13800000001", "13900000002"} {
		if strings.Contains(logs, secret) {
			t.Fatalf("the log holds %q:\n%s", secret, logs)
		}
	}
}

// testDeviceSecret is a PRIVNUM_DEVICE_SECRET for the tests.
const testDeviceSecret = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// apiKey creates an API key with the CLI and returns its secret.
func (x *apiApp) apiKey(args ...string) string {
	x.t.Helper()
	out := x.ok(x.a.apikeyCmd, append([]string{"create", "--json"}, args...)...)
	var k struct {
		Secret        string
		RequireDevice bool `json:"require_device"`
	}
	if err := json.Unmarshal([]byte(out), &k); err != nil || k.Secret == "" {
		x.t.Fatalf("apikey create: %s (%v)", out, err)
	}
	return k.Secret
}

func TestAPIKeyRequireDevice(t *testing.T) {
	x := newAPIApp(t)
	t.Setenv(deviceSecretEnv, "")
	var u usageError
	_, err := x.exec(x.a.apikeyCmd, "create", "--name", "shop", "--scope", "qr,callbacks", "--require-device")
	if !errors.As(err, &u) || !strings.Contains(err.Error(), deviceSecretEnv) {
		t.Fatalf("--require-device without a device secret: %v", err)
	}
	t.Setenv(deviceSecretEnv, "short")
	if _, err := x.exec(x.a.apikeyCmd, "create", "--name", "shop", "--scope", "qr", "--require-device"); !errors.As(err, &u) {
		t.Fatalf("--require-device with a short secret: %v", err)
	}
	t.Setenv(deviceSecretEnv, testDeviceSecret)
	out := x.ok(x.a.apikeyCmd, "create", "--name", "shop", "--scope", "qr,callbacks", "--require-device", "--json")
	if !strings.Contains(out, `"require_device": true`) {
		t.Fatalf("create = %s", out)
	}
	x.ok(x.a.apikeyCmd, "create", "--name", "plain", "--scope", "qr")
	out = x.ok(x.a.apikeyCmd, "list")
	lines := strings.Split(out, "\n")
	if len(lines) < 3 || !strings.Contains(lines[0], "DEVICE") || !strings.Contains(lines[1], "plain") || !strings.Contains(lines[1], " - ") ||
		!strings.Contains(lines[2], "shop") || !strings.Contains(lines[2], "required") {
		t.Fatalf("list = %s", out)
	}
	// A too-short secret keeps the API from starting.
	t.Setenv(deviceSecretEnv, "short")
	cmd := x.a.apiCmd()
	cmd.SetArgs([]string{"--listen", "127.0.0.1:0"})
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	if err := cmd.ExecuteContext(context.Background()); !errors.As(err, &u) || !strings.Contains(err.Error(), deviceSecretEnv) {
		t.Fatalf("api with a short device secret: %v", err)
	}
}

// TestAPIFlowsEndToEnd runs verification, device binding and the
// require-device policy through `privnum api` and the real services.
func TestAPIFlowsEndToEnd(t *testing.T) {
	t.Setenv(deviceSecretEnv, testDeviceSecret)
	x := newAPIApp(t)
	x.a.logLevel = "debug" // no level may log a secret or a real number
	appKey := x.apiKey("--name", "app", "--scope", "verifications,devices")
	shopKey := x.apiKey("--name", "shop", "--scope", "qr,callbacks", "--require-device")
	x.ok(x.a.verifyCmd, "callerid", "add", "17100000001", "17100000002", "17100000003")
	x.ok(x.a.poolCmd, "add", "17000000000", "17000000001")

	base, stop := x.startAPI()
	c := &client{t: t, base: base}
	ctx := context.Background()
	r := redistest.ClientFor(t, x.a.redisURL)
	// The test reads the caller ID the way call control does, straight
	// from Redis: the API never shows it.
	vs := verify.New(r, e164.Parser{Region: "CN"}, nil, verify.Config{})

	var flashed []string // caller IDs
	verified := func(number string) string {
		t.Helper()
		var v struct {
			ID, Number, Status string
			AttemptsLeft       int `json:"attempts_left"`
		}
		res := c.ok(202, &v, appKey, "POST", "/v1/verifications", `{"number":"`+number+`"}`)
		if v.Status != "pending" || !strings.Contains(v.Number, "****") || v.AttemptsLeft != 3 || res.header.Get("Location") != "/v1/verifications/"+v.ID {
			t.Fatalf("start = %s", res.body)
		}
		// The flash call is queued for privnum serve.
		msgs, err := r.XRange(ctx, dialq.Stream, "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		queued := false
		for _, m := range msgs {
			queued = queued || m.Values["kind"] == verify.FlashJobKind && m.Values["id"] == v.ID
		}
		if !queued {
			t.Fatalf("no flash job for %s in %v", v.ID, msgs)
		}
		_, cid, err := vs.FlashTarget(ctx, v.ID)
		if err != nil {
			t.Fatal(err)
		}
		flashed = append(flashed, cid)
		c.ok(200, &v, appKey, "POST", "/v1/verifications/"+v.ID+"/check", `{"reported":"`+cid+`"}`)
		if v.Status != "verified" {
			t.Fatalf("check = %+v", v)
		}
		c.ok(200, &v, appKey, "GET", "/v1/verifications/"+v.ID, "")
		if v.Status != "verified" {
			t.Fatalf("get = %+v", v)
		}
		return v.ID
	}

	const (
		deviceID = "handset-5e1d7b22-QRST"
		chip     = "EID89049032004008882600055555555"
		iccid    = "89860318740055555555"
		imsi     = "460035555555555"
		iccid2   = "89860318740066666666"
	)
	register := func(number, iccid string) string {
		t.Helper()
		var reg struct {
			Number      string
			DeviceToken string `json:"device_token"`
		}
		body := `{"device_id":"` + deviceID + `","chip_serial":"` + chip + `","iccid":"` + iccid + `","imsi":"` + imsi +
			`","number":"` + number + `","verification_id":"` + verified(number) + `"}`
		c.ok(201, &reg, appKey, "POST", "/v1/devices", body)
		if reg.Number != "+86138****0001" || !strings.HasPrefix(reg.DeviceToken, "pnd_") {
			t.Fatalf("register = %+v", reg)
		}
		return reg.DeviceToken
	}
	present := func(token, iccid string) apiResponse {
		return c.send(appKey, "POST", "/v1/devices/verify", `{"number":"13800000001","device_token":"`+token+`","chip_serial":"`+chip+`","iccid":"`+iccid+`","imsi":"`+imsi+`"}`)
	}
	rejected := func(r apiResponse, status int, reason string) {
		t.Helper()
		var p struct{ Type, Reason string }
		json.Unmarshal([]byte(r.body), &p)
		if r.status != status || p.Reason != reason || !strings.HasSuffix(p.Type, "/device-rejected") {
			t.Fatalf("status %d reason %q, want %d %q: %s", r.status, p.Reason, status, reason, r.body)
		}
	}

	token := register("13800000001", iccid)
	if r := present(token, iccid); r.status != 200 || !strings.Contains(r.body, `"status":"ok"`) {
		t.Fatalf("verify device: %d %s", r.status, r.body)
	}

	var code struct{ Token string }
	c.ok(201, &code, shopKey, "POST", "/v1/qr-codes", `{"owner":"13900000002","label":"shop 12"}`)
	scan := func(token string) apiResponse {
		var h []string
		if token != "" {
			h = []string{"Privnum-Device-Token", token}
		}
		return c.send(shopKey, "POST", "/v1/qr-codes/"+code.Token+"/scans", `{"scanner":"13800000001"}`, h...)
	}
	rejected(scan(""), 403, "device_token_required")
	if r := scan(token); r.status != 200 || !strings.Contains(r.body, `"virtual_number":"+861700000000`) {
		t.Fatalf("scan with the device token: %d %s", r.status, r.body)
	}
	// The same code as a callback: the caller's device token is required.
	rejected(c.send(shopKey, "POST", "/v1/callbacks", `{"code":"`+code.Token+`","caller":"13800000001"}`), 403, "device_token_required")
	var cb struct{ ID, State, First string }
	c.ok(202, &cb, shopKey, "POST", "/v1/callbacks", `{"code":"`+code.Token+`","caller":"13800000001"}`, "Privnum-Device-Token", token, "Idempotency-Key", "cb-1")
	if cb.State != "requested" || cb.First != "+86138****0001" {
		t.Fatalf("callback = %+v", cb)
	}
	msgs, _ := r.XRange(ctx, dialq.Stream, "-", "+").Result()
	if last := msgs[len(msgs)-1]; last.Values["kind"] != callback.JobKind || last.Values["id"] != cb.ID {
		t.Fatalf("last job %v, want the callback", last.Values)
	}
	c.ok(200, &cb, shopKey, "GET", "/v1/callbacks/"+cb.ID, "")
	// A mapped code reaches its parties only: the device's number is not
	// one of them, and the answer is the one an unknown code gets.
	x.ok(x.a.poolCmd, "add", "17000000002", "17000000003")
	x.ok(x.a.callbackCmd, "map", "OTHERS-1", "--first", "13600000001", "--second", "13600000002")
	x.ok(x.a.callbackCmd, "map", "MINE-1", "--first", "13600000003", "--second", "13800000001")
	if r := c.send(shopKey, "POST", "/v1/callbacks", `{"code":"OTHERS-1","caller":"13800000001"}`, "Privnum-Device-Token", token); r.status != 404 || !strings.Contains(r.body, "code-unknown") {
		t.Fatalf("callback on someone else's code: %d %s", r.status, r.body)
	}
	unknown := c.send(shopKey, "POST", "/v1/callbacks", `{"code":"NO-SUCH-1","caller":"13800000001"}`, "Privnum-Device-Token", token)
	if unknown.status != 404 {
		t.Fatalf("unknown code: %d", unknown.status)
	}
	var mine struct{ First string }
	c.ok(202, &mine, shopKey, "POST", "/v1/callbacks", `{"code":"MINE-1","caller":"13800000001"}`, "Privnum-Device-Token", token)
	if mine.First != "+86138****0001" {
		t.Fatalf("the requester is called first: %+v", mine)
	}

	// A new SIM: refused, and the old registration is no longer trusted.
	rejected(present(token, iccid2), 403, "sim_changed")
	rejected(present(token, iccid), 403, "reverify_required")
	rejected(scan(token), 403, "reverify_required")
	// Verified again with the new SIM, the device scans again.
	token2 := register("13800000001", iccid2)
	if r := present(token2, iccid2); r.status != 200 {
		t.Fatalf("verify the new registration: %d %s", r.status, r.body)
	}
	rejected(scan(""), 403, "device_token_required")
	rejected(scan(token), 403, "token_invalid")
	if r := scan(token2); r.status != 200 {
		t.Fatalf("scan with the new device token: %d %s", r.status, r.body)
	}

	if err := stop(); err != nil {
		t.Fatalf("api returned %v", err)
	}
	// Nothing secret reached a response or the log: not the caller IDs,
	// not the identifiers, not the tokens (but in the registrations that
	// return them) and not the API keys.
	if len(flashed) != 2 {
		t.Fatalf("caller IDs %v", flashed)
	}
	secrets := []string{deviceID, chip, iccid, imsi, iccid2, appKey, shopKey, testDeviceSecret}
	for _, cid := range flashed {
		secrets = append(secrets, cid, strings.TrimPrefix(cid, "+86"))
	}
	logs := x.stderr.String()
	// Real numbers, in any form, are personal data.
	for _, s := range append(secrets, token, token2, "13800000001") {
		if strings.Contains(logs, s) {
			t.Fatalf("the log holds %q:\n%s", s, logs)
		}
	}
	for _, res := range c.seen {
		for _, s := range secrets {
			if strings.Contains(res.body, s) {
				t.Fatalf("a %d response holds %q: %s", res.status, s, res.body)
			}
		}
		if res.status != 201 || !strings.Contains(res.body, "device_token") {
			for _, s := range []string{token, token2} {
				if strings.Contains(res.body, s) {
					t.Fatalf("a %d response holds a device token: %s", res.status, res.body)
				}
			}
		}
	}
}

// TestAPIServesScanPage: privnum api serves the public page a QR code
// opens, and submitting it gives the scanner a virtual number.
func TestAPIServesScanPage(t *testing.T) {
	x := newAPIApp(t)
	out := x.ok(x.a.apikeyCmd, "create", "--name", "shop", "--scope", "numbers,qr", "--json")
	var key struct{ Secret string }
	json.Unmarshal([]byte(out), &key)
	base, stop := x.startAPI()
	defer stop()
	c := &client{t: t, base: base}
	if r := c.send(key.Secret, "POST", "/v1/numbers", `{"numbers":[{"number":"17000000000"}]}`); r.status != 200 {
		t.Fatalf("add numbers: %d %s", r.status, r.body)
	}
	r := c.send(key.Secret, "POST", "/v1/qr-codes", `{"owner":"13800000001","label":"Shop"}`)
	var code struct{ Token string }
	if err := json.Unmarshal([]byte(r.body), &code); err != nil || code.Token == "" {
		t.Fatalf("mint: %d %s", r.status, r.body)
	}
	resp, err := http.Get(base + "/q/" + code.Token)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "Call privately") {
		t.Fatalf("scan page: %d %s", resp.StatusCode, page)
	}
	resp, err = http.PostForm(base+"/q/"+code.Token, url.Values{"number": {"13900000002"}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	page = []byte(html.UnescapeString(string(page)))
	if resp.StatusCode != 200 || !strings.Contains(string(page), `href="tel:+8617000000000"`) || strings.Contains(string(page), "13800000001") {
		t.Fatalf("scan result: %d %s", resp.StatusCode, page)
	}
}

func TestAPIKeyLimits(t *testing.T) {
	x := newAPIApp(t)
	tests := []struct {
		name   string
		args   []string
		create string            // in the create output
		json   map[string]string // limits in create --json
		list   string            // in the list row
	}{
		{"default", nil, "limits default 600/1m", nil, "default 600/1m"},
		{"explicit", []string{"--limit", "qr=60/1m", "--limit", "Bindings=600/1h", "--limit", "calls=0"},
			"limits bindings=600/1h,calls=unlimited,qr=60/1m (else default 600/1m)",
			map[string]string{"qr": "60/1m", "bindings": "600/1h", "calls": "unlimited"},
			"bindings=600/1h,calls=unlimited,qr=60/1m (else default 600/1m)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := x.ok(x.a.apikeyCmd, append([]string{"create", "--name", "k-" + tt.name, "--scope", "admin"}, tt.args...)...)
			if !strings.Contains(out, tt.create) {
				t.Errorf("create = %s, want %q", out, tt.create)
			}
			out = x.ok(x.a.apikeyCmd, append([]string{"create", "--json", "--name", "j-" + tt.name, "--scope", "admin"}, tt.args...)...)
			var created struct {
				Limits map[string]string `json:"limits"`
			}
			if err := json.Unmarshal([]byte(out), &created); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(created.Limits) != fmt.Sprint(tt.json) {
				t.Errorf("create --json limits = %v, want %v", created.Limits, tt.json)
			}
			for _, line := range strings.Split(x.ok(x.a.apikeyCmd, "list"), "\n") {
				if strings.Contains(line, "k-"+tt.name) && !strings.Contains(line, tt.list) {
					t.Errorf("list row %q, want %q", line, tt.list)
				}
			}
		})
	}
}

func TestParseProxies(t *testing.T) {
	tests := []struct {
		in      []string
		want    string
		wantErr bool
	}{
		{nil, "[]", false},
		{[]string{"10.0.0.0/8", "192.0.2.7", "fd00::1/8", "::ffff:192.0.2.8"}, "[10.0.0.0/8 192.0.2.7/32 fd00::/8 192.0.2.8/32]", false},
		{[]string{"proxy.example"}, "", true},
		{[]string{"10.0.0.0/33"}, "", true},
	}
	for _, tt := range tests {
		got, err := parseProxies(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseProxies(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if err == nil && fmt.Sprint(got) != tt.want {
			t.Errorf("parseProxies(%q) = %v, want %s", tt.in, got, tt.want)
		}
	}
}
