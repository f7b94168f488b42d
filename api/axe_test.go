package api

import (
	"testing"

	"github.com/privnum/privnum/apikey"
	"github.com/privnum/privnum/binding"
)

// TestAXEAPI: an axe binding gets an extension on a number reserved for
// axe; routes:resolve answers collect for a stranger and, with the
// extension, where it goes; bad and taken extensions are 422 naming
// extension, with nothing stored.
func TestAXEAPI(t *testing.T) {
	e := newEnv(t)
	admin := e.admin()
	bk := e.keys[apikey.Bindings]
	e.ok(call{method: "POST", path: "/v1/numbers", key: admin, body: `{"numbers":[{"number":"17000000000","mode":"axe"}]}`}, 200, nil)

	var b binding.Binding
	e.ok(call{method: "POST", path: "/v1/bindings", key: bk, body: `{"mode":"axe","a":"` + alice + `"}`}, 201, &b)
	if b.Mode != binding.AXE || b.X != x0 || len(b.Extension) != 4 || b.B != "" {
		t.Fatalf("axe binding = %+v", b)
	}
	var chosen binding.Binding
	e.ok(call{method: "POST", path: "/v1/bindings", key: bk, body: `{"mode":"axe","a":"` + bob + `","extension":"0042"}`}, 201, &chosen)
	if chosen.X != x0 || chosen.Extension != "0042" {
		t.Fatalf("chosen extension = %+v", chosen)
	}
	var got binding.Binding
	e.ok(call{method: "GET", path: "/v1/bindings/" + chosen.ID, key: bk}, 200, &got)
	if got.Extension != "0042" {
		t.Fatalf("GET = %+v", got)
	}
	var r binding.Route
	e.ok(call{method: "POST", path: "/v1/routes:resolve", key: bk, body: `{"x":"` + x0 + `","caller":"` + carol + `"}`}, 200, &r)
	if r.Action != binding.Collect || r.Digits != 4 || r.Mode != binding.AXE {
		t.Fatalf("stranger's route = %+v", r)
	}
	e.ok(call{method: "POST", path: "/v1/routes:resolve", key: bk, body: `{"x":"` + x0 + `","caller":"` + carol + `","extension":"0042"}`}, 200, &r)
	if r.Action != binding.Connect || r.Target != bob || r.CallerID != x0 || r.Extension != "0042" {
		t.Fatalf("extension's route = %+v", r)
	}
	e.ok(call{method: "POST", path: "/v1/routes:resolve", key: bk, body: `{"x":"` + x0 + `","caller":"` + carol + `","extension":"0043"}`}, 200, &r)
	if r.Action != binding.Reject || r.Reason != binding.ReasonBadExtension {
		t.Fatalf("unknown extension's route = %+v", r)
	}

	for _, tt := range []struct {
		name, body  string
		status      int
		slug, field string
	}{
		{"extension not digits", `{"mode":"axe","a":"` + carol + `","extension":"12a4"}`, 422, "invalid-field", "extension"},
		{"extension too long", `{"mode":"axe","a":"` + carol + `","extension":"12345"}`, 422, "invalid-field", "extension"},
		{"extension taken", `{"mode":"axe","a":"` + carol + `","x":"` + x0 + `","extension":"0042"}`, 422, "invalid-field", "extension"},
		{"extension on axn", `{"mode":"axn","a":"` + carol + `","extension":"0042"}`, 422, "invalid-field", "extension"},
		{"axe with b", `{"mode":"axe","a":"` + carol + `","b":"` + alice + `"}`, 422, "invalid-field", "b"},
		{"party twice on x", `{"mode":"axe","a":"` + alice + `","x":"` + x0 + `"}`, 409, "party-busy", "x"},
	} {
		res := e.do(call{method: "POST", path: "/v1/bindings", key: admin, body: tt.body})
		if res.status != tt.status {
			t.Errorf("%s: status %d, want %d: %s", tt.name, res.status, tt.status, res.body)
			continue
		}
		if p := res.problem(t); p.Type != ProblemTypeBase+tt.slug || p.Field != tt.field {
			t.Errorf("%s: problem %+v; want %s naming %q", tt.name, p, tt.slug, tt.field)
		}
	}
	var list struct {
		Numbers []struct {
			ActiveBindings int `json:"active_bindings"`
		}
	}
	e.ok(call{method: "GET", path: "/v1/numbers", key: admin}, 200, &list)
	if len(list.Numbers) != 1 || list.Numbers[0].ActiveBindings != 2 {
		t.Errorf("refusals changed the pool: %+v", list)
	}
}
