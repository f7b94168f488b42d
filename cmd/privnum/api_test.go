package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/privnum/privnum/internal/redistest"
)

// lockedBuffer is a bytes.Buffer safe for a server goroutine to log into.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// apiApp is an app on a fresh Redis whose commands the tests build directly.
type apiApp struct {
	t      *testing.T
	a      *app
	stderr *lockedBuffer
}

func newAPIApp(t *testing.T) *apiApp {
	errb := &lockedBuffer{}
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

func TestAPICommand(t *testing.T) {
	x := newAPIApp(t)
	out := x.ok(x.a.apikeyCmd, "create", "--name", "shop-1", "--scope", "numbers,bindings", "--json")
	var key struct{ Secret string }
	json.Unmarshal([]byte(out), &key)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		cmd := x.a.apiCmd()
		cmd.SetArgs([]string{"--listen", "127.0.0.1:0", "--shutdown-timeout", "5s"})
		cmd.SilenceUsage, cmd.SilenceErrors = true, true
		done <- cmd.ExecuteContext(ctx)
	}()
	addrRE := regexp.MustCompile(`msg="API listening" addr=(\S+)`)
	var base string
	deadline := time.Now().Add(10 * time.Second)
	for base == "" {
		if m := addrRE.FindStringSubmatch(x.stderr.String()); m != nil {
			base = "http://" + m[1]
		}
		select {
		case err := <-done:
			t.Fatalf("api exited: %v\n%s", err, x.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("api did not start:\n%s", x.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}

	send := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key.Secret)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
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

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("api returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("api did not shut down")
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
