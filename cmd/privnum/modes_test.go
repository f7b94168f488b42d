package main

import (
	"strings"
	"testing"
)

// TestCLIModes: pool reservation, bind axn and axg, groups, route, and
// the refusals of each, with nothing stored.
func TestCLIModes(t *testing.T) {
	c := newCLI(t)
	c.ok("pool", "add", "17000000000", "17000000001", "17000000002", "--mode", "axn")
	c.ok("pool", "add", "17000000003")
	var list struct {
		Numbers []struct{ Number, Mode string }
	}
	c.json(&list, "pool", "list")
	if len(list.Numbers) != 4 || list.Numbers[0].Mode != "axn" || list.Numbers[3].Mode != "" {
		t.Fatalf("pool list = %+v", list)
	}

	var b struct{ ID, Mode, A, B, X, Group string }
	c.json(&b, "bind", "axn", "--a", "13800000001")
	if b.Mode != "axn" || b.A != "+8613800000001" || b.B != "" || !strings.HasPrefix(b.X, "+861700000000") || b.X == "+8617000000003" {
		t.Fatalf("bind axn = %+v", b)
	}
	var r struct{ Action, Reason, Target, Mode string }
	c.json(&r, "route", "--x", b.X, "--caller", "13700000009")
	if r.Action != "connect" || r.Target != "+8613800000001" || r.Mode != "axn" {
		t.Fatalf("stranger's route = %+v", r)
	}
	// route only asks: the stranger did not become the last caller.
	c.json(&r, "route", "--x", b.X, "--caller", "13800000001")
	if r.Action != "reject" || r.Reason != "no_last_caller" {
		t.Fatalf("owner's route = %+v", r)
	}

	if out := c.ok("group", "add", "riders", "13600000001", "13600000002"); !strings.Contains(out, "members  2") {
		t.Fatalf("group add:\n%s", out)
	}
	c.ok("group", "remove", "riders", "13600000002")
	var g struct {
		Name     string
		Members  []string
		Bindings []string
	}
	c.json(&g, "group", "show", "riders")
	if len(g.Members) != 1 || g.Members[0] != "+8613600000001" {
		t.Fatalf("group show = %+v", g)
	}
	// AXG on the unreserved number (the reserved ones serve axn only).
	c.json(&b, "bind", "axg", "--a", "13800000002", "--group", "riders", "--b", "13900000002")
	if b.Mode != "axg" || b.Group != "riders" || b.X != "+8617000000003" {
		t.Fatalf("bind axg = %+v", b)
	}
	c.json(&r, "route", "--x", b.X, "--caller", "13600000002")
	if r.Action != "reject" || r.Reason != "not_in_group" {
		t.Fatalf("non-member's route = %+v", r)
	}
	c.json(&r, "route", "--x", b.X, "--caller", "13800000002")
	if r.Target != "+8613900000002" {
		t.Fatalf("owner's route to the fixed b = %+v", r)
	}
	c.json(&g, "group", "show", "riders")
	if len(g.Bindings) != 1 || g.Bindings[0] != b.ID {
		t.Fatalf("group show bindings = %+v", g)
	}

	for _, tt := range []struct {
		args []string
		want string
		code int
	}{
		{[]string{"bind", "create", "--mode", "axz", "--a", "13800000005", "--b", "13900000005"}, `mode: unknown mode "axz"`, 2},
		{[]string{"pool", "add", "17000000009", "--mode", "axq"}, "invalid mode", 2},
		{[]string{"bind", "axg", "--a", "13800000005", "--group", "nobody"}, "group not found", 1},
		{[]string{"bind", "axg", "--a", "13800000005"}, "required flag", 1},
		{[]string{"group", "remove", "riders", "13600000009"}, "not a member", 1},
		{[]string{"group", "show", "nobody"}, "group not found", 1},
		{[]string{"group", "delete", "riders"}, "group in use", 1},
		{[]string{"--group-limit", "1", "group", "add", "riders", "13600000005"}, "at most 1", 1},
		{[]string{"group", "add", "bad name", "13600000005"}, "group name", 1},
		{[]string{"bind", "axg", "--a", "13800000005", "--group", "riders", "--x", "17000000001"}, "reserved for another mode", 1},
		{[]string{"bind", "create", "--a", "13800000005", "--b", "13900000005", "--x", "17000000003"}, "held by an axn, axg or axe binding", 1},
	} {
		out, errs, code := c.run(tt.args...)
		if code != tt.code || !strings.Contains(errs, tt.want) {
			t.Errorf("privnum %s: exit %d, stderr %q, stdout %q; want exit %d mentioning %q", strings.Join(tt.args, " "), code, errs, out, tt.code, tt.want)
		}
	}
	// Nothing stored by the refusals.
	c.json(&g, "group", "show", "riders")
	if len(g.Members) != 1 {
		t.Fatalf("refusals changed the group: %+v", g)
	}
	c.json(&list, "pool", "list")
	if len(list.Numbers) != 4 {
		t.Fatalf("refusals changed the pool: %+v", list)
	}
}
