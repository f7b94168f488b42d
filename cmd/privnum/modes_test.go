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

// TestCLIAXE: bind axe allocates an extension on a number reserved for
// axe, bind show shows it, route shows collect and, with --ext, where the
// extension goes; bad and taken extensions are clear errors, with nothing
// stored.
func TestCLIAXE(t *testing.T) {
	c := newCLI(t)
	c.ok("pool", "add", "17000000000", "--mode", "axe")
	var b struct{ ID, Mode, A, B, X, Extension string }
	c.json(&b, "bind", "axe", "--a", "13800000001")
	if b.Mode != "axe" || b.X != "+8617000000000" || len(b.Extension) != 4 || b.B != "" {
		t.Fatalf("bind axe = %+v", b)
	}
	out := c.ok("bind", "axe", "--a", "13800000002", "--x", "17000000000", "--ext", "0042")
	if !strings.Contains(out, "ext      0042") {
		t.Fatalf("bind axe --ext:\n%s", out)
	}
	if out := c.ok("bind", "show", b.ID); !strings.Contains(out, "ext      "+b.Extension) || !strings.Contains(out, "mode     axe") {
		t.Fatalf("bind show:\n%s", out)
	}
	if out := c.ok("route", "--x", "17000000000", "--caller", "13700000009"); !strings.Contains(out, "collect: answer and ask for a 4-digit extension") {
		t.Fatalf("route:\n%s", out)
	}
	var r struct{ Action, Reason, Target, Mode, Extension string }
	c.json(&r, "route", "--x", "17000000000", "--caller", "13700000009", "--ext", "0042")
	if r.Action != "connect" || r.Target != "+8613800000002" || r.Extension != "0042" {
		t.Fatalf("route --ext = %+v", r)
	}
	c.json(&r, "route", "--x", "17000000000", "--caller", "13700000009", "--ext", "0043")
	if r.Action != "reject" || r.Reason != "bad_extension" {
		t.Fatalf("route --ext unknown = %+v", r)
	}
	for _, tt := range []struct {
		args []string
		want string
		code int
	}{
		{[]string{"bind", "axe", "--a", "13800000005", "--ext", "12a4"}, "extension", 1},
		{[]string{"bind", "axe", "--a", "13800000005", "--ext", "123"}, "want 4 digits", 1},
		{[]string{"bind", "axe", "--a", "13800000005", "--x", "17000000000", "--ext", "0042"}, "taken", 1},
		{[]string{"bind", "axe", "--a", "13800000001", "--x", "17000000000"}, "already bound", 1},
		{[]string{"bind", "create", "--mode", "axn", "--a", "13800000005", "--ext", "0042"}, "only axe bindings have an extension", 1},
		{[]string{"--extension-digits", "7", "bind", "axe", "--a", "13800000005"}, "--extension-digits 7", 2},
	} {
		out, errs, code := c.run(tt.args...)
		if code != tt.code || !strings.Contains(errs, tt.want) {
			t.Errorf("privnum %s: exit %d, stderr %q, stdout %q; want exit %d mentioning %q", strings.Join(tt.args, " "), code, errs, out, tt.code, tt.want)
		}
	}
	var list struct {
		Numbers []struct {
			Number         string
			ActiveBindings int `json:"active_bindings"`
		}
	}
	c.json(&list, "pool", "list")
	if len(list.Numbers) != 1 || list.Numbers[0].ActiveBindings != 2 {
		t.Fatalf("refusals changed the pool: %+v", list)
	}
}
