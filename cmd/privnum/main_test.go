package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/privnum/privnum/internal/redistest"
)

// cli runs privnum in-process against one test Redis.
type cli struct {
	t   *testing.T
	url string
}

func newCLI(t *testing.T) cli {
	return cli{t: t, url: redistest.Start(t).URL}
}

func (c cli) run(args ...string) (stdout, stderr string, code int) {
	var out, errb bytes.Buffer
	full := append([]string{"--redis", c.url, "--region", "CN"}, args...)
	code = run(context.Background(), full, &out, &errb)
	return out.String(), errb.String(), code
}

// ok runs a command that must succeed.
func (c cli) ok(args ...string) string {
	c.t.Helper()
	out, errs, code := c.run(args...)
	if code != 0 {
		c.t.Fatalf("privnum %s: exit %d: %s", strings.Join(args, " "), code, errs)
	}
	return out
}

func (c cli) json(v any, args ...string) {
	c.t.Helper()
	out := c.ok(append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		c.t.Fatalf("privnum %s: not one JSON object: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestCLIBindingFlow(t *testing.T) {
	c := newCLI(t)
	csv := filepath.Join(t.TempDir(), "numbers.csv")
	os.WriteFile(csv, []byte("number,area\n17000000001,sh\n"), 0o600)
	c.ok("pool", "add", "17000000000", "--area", "bj")
	c.ok("pool", "add", "--file", csv)

	var list struct {
		Numbers []struct {
			Number, Area, State string
			ActiveBindings      int `json:"active_bindings"`
		}
	}
	c.json(&list, "pool", "list")
	if len(list.Numbers) != 2 || list.Numbers[1].Area != "sh" {
		t.Fatalf("pool list = %+v", list)
	}

	var b struct{ ID, A, B, X, State, ExpiresAt string }
	c.json(&b, "bind", "create", "--a", "13800000001", "--b", "13900000002", "--area", "sh", "--ttl", "1h", "--record", "--max-duration", "30m")
	if b.X != "+8617000000001" || b.A != "+8613800000001" || b.State != "active" {
		t.Fatalf("bind create = %+v", b)
	}
	var raw map[string]any
	c.json(&raw, "bind", "show", b.ID)
	for _, k := range []string{"id", "a", "b", "x", "expires_at", "state"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("bind show --json lacks %q: %v", k, raw)
		}
	}

	var route struct{ Action, Target, Reason string }
	c.json(&route, "route", "--x", b.X, "--caller", "13900000002")
	if route.Action != "connect" || route.Target != "+8613800000001" {
		t.Fatalf("route = %+v", route)
	}
	c.json(&route, "route", "--x", b.X, "--caller", "13700000000")
	if route.Action != "reject" || route.Reason != "no_binding" {
		t.Fatalf("stranger route = %+v", route)
	}

	c.ok("bind", "extend", b.ID, "--ttl", "1h")
	c.ok("bind", "release", b.ID)
	c.json(&route, "route", "--x", b.X, "--caller", "13900000002")
	if route.Action != "reject" || route.Reason != "expired" {
		t.Fatalf("released route = %+v", route)
	}

	c.ok("pool", "retire", "17000000000")
	c.json(&list, "pool", "list")
	if list.Numbers[0].State != "retired" {
		t.Fatalf("after retire = %+v", list)
	}
	c.ok("pool", "restore", "17000000000")
}

func TestCLIOrders(t *testing.T) {
	c := newCLI(t)
	c.ok("pool", "add", "17000000000")
	var o struct {
		ID, Status string
		Binding    struct{ ID, X, State string }
	}
	c.json(&o, "order", "open", "SO-1", "--buyer", "13800000001", "--courier", "13900000002")
	first := o.Binding.ID
	c.json(&o, "order", "open", "SO-1", "--buyer", "13800000001", "--courier", "13900000002")
	if o.Binding.ID != first || o.Status != "open" {
		t.Fatalf("order reopen = %+v", o)
	}
	c.json(&o, "order", "complete", "SO-1")
	if o.Status != "completed" || o.Binding.State != "released" {
		t.Fatalf("order complete = %+v", o)
	}
	c.json(&o, "order", "show", "SO-1")
	if o.Status != "completed" {
		t.Fatalf("order show = %+v", o)
	}
}

func TestCLIErrors(t *testing.T) {
	c := newCLI(t)
	c.ok("pool", "add", "17000000000")
	tests := []struct {
		args []string
		want string
		code int
	}{
		{[]string{"pool", "add", "17000000001", "banana"}, `"banana"`, 1},
		{[]string{"bind", "create", "--a", "13800000001", "--b", "12"}, `"12"`, 1},
		{[]string{"bind", "create", "--a", "13800000001"}, `required flag`, 1},
		{[]string{"bind", "show", "nope"}, "binding not found", 1},
		{[]string{"bind", "create", "--a", "13800000001", "--b", "13900000002", "--ttl", "soon"}, "invalid argument", 2},
		{[]string{"pool", "retire", "17000000009"}, "not in pool", 1},
		{[]string{"order", "show", "missing"}, "order not found", 1},
		{[]string{"route", "--x", "17000000000", "--caller", "x"}, "invalid phone number", 1},
		{[]string{"--durability", "sometimes", "pool", "list"}, "want off or replica", 2},
		{[]string{"--log-level", "loud", "serve", "--ari-url", "http://127.0.0.1:1", "--metrics-listen", ""}, "want debug, info, warn or error", 2},
	}
	for _, tt := range tests {
		out, errs, code := c.run(tt.args...)
		if code != tt.code || !strings.Contains(errs, tt.want) || strings.Contains(errs, "goroutine") {
			t.Errorf("privnum %s: exit %d, stderr %q, stdout %q; want exit %d mentioning %q", strings.Join(tt.args, " "), code, errs, out, tt.code, tt.want)
		}
	}
	// Only the first number exists: the failed add stored nothing.
	var list struct{ Numbers []any }
	c.json(&list, "pool", "list")
	if len(list.Numbers) != 1 {
		t.Fatalf("failed add stored numbers: %+v", list)
	}
	// The pool full of one party: a distinct error.
	c.ok("bind", "create", "--a", "13800000001", "--b", "13900000002")
	_, errs, code := c.run("bind", "create", "--a", "13800000001", "--b", "13900000003")
	if code == 0 || !strings.Contains(errs, "pool exhausted") {
		t.Fatalf("exhausted: exit %d %q", code, errs)
	}
	_, errs, code = c.run("--redis", "redis://127.0.0.1:1/0", "pool", "list")
	if code == 0 || !strings.Contains(errs, "cannot reach Redis") {
		t.Fatalf("unreachable redis: exit %d %q", code, errs)
	}
}

// TestCLIDurability drives pool add, bind create and route with
// --durability replica: through the cluster URL in the cluster pass, where
// a replica confirms every change; on a lone server, which has no replica,
// the create says it could not be confirmed.
func TestCLIDurability(t *testing.T) {
	c := newCLI(t)
	if redistest.Clustered() && !strings.HasPrefix(c.url, "redis+cluster://") {
		t.Fatalf("cluster pass with URL %s", c.url)
	}
	c.ok("pool", "add", "17000000000", "17000000001")
	args := []string{"--durability", "replica", "bind", "create", "--a", "13800000001", "--b", "13900000002", "--json"}
	if !redistest.Clustered() {
		_, errs, code := c.run(args...)
		if code != 1 || !strings.Contains(errs, "not confirmed by a replica") {
			t.Fatalf("durable create without replicas: exit %d %q", code, errs)
		}
		return
	}
	var b struct{ ID, X string }
	out := c.ok(args...)
	if err := json.Unmarshal([]byte(out), &b); err != nil || b.X == "" {
		t.Fatalf("bind create: %v %s", err, out)
	}
	var r struct{ Action, Target string }
	c.json(&r, "route", "--x", b.X, "--caller", "13800000001")
	if r.Action != "connect" || r.Target != "+8613900000002" {
		t.Fatalf("route = %+v", r)
	}
	c.ok("--durability", "replica", "bind", "release", b.ID)
}

func TestVersion(t *testing.T) {
	c := cli{t: t, url: "redis://127.0.0.1:1/0"} // version needs no Redis
	out := c.ok("version")
	if !strings.HasPrefix(out, "privnum ") || !strings.Contains(out, "go1.") {
		t.Fatalf("version = %q", out)
	}
	var v struct{ Version, Go string }
	c.json(&v, "version")
	if v.Version == "" || !strings.HasPrefix(v.Go, "go1.") {
		t.Fatalf("version --json = %+v", v)
	}
}
