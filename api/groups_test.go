package api

import (
	"net/http"
	"testing"

	"github.com/privnum/privnum/apikey"
	"github.com/privnum/privnum/binding"
)

// TestModesAndGroupsAPI: pool reservation, AXN and AXG bindings, groups,
// and the refusals of each naming their field, with nothing stored.
func TestModesAndGroupsAPI(t *testing.T) {
	e := newEnv(t)
	admin := e.admin()
	bk := e.keys[apikey.Bindings]
	e.ok(call{method: "POST", path: "/v1/numbers", key: admin, body: `{"numbers":[{"number":"17000000000","mode":"axn"},{"number":"17000000001"}]}`}, 200, nil)
	var num struct{ Mode string }
	e.ok(call{method: "GET", path: "/v1/numbers/17000000000", key: admin}, 200, &num)
	if num.Mode != "axn" {
		t.Fatalf("reserved number: %+v", num)
	}

	var b binding.Binding
	e.ok(call{method: "POST", path: "/v1/bindings", key: bk, body: `{"mode":"axn","a":"` + alice + `","show_caller":true}`}, 201, &b)
	if b.Mode != binding.AXN || b.X != x0 || b.B != "" || !b.ShowCaller {
		t.Fatalf("axn binding = %+v", b)
	}
	var r binding.Route
	e.ok(call{method: "POST", path: "/v1/routes:resolve", key: bk, body: `{"x":"` + x0 + `","caller":"` + carol + `"}`}, 200, &r)
	if r.Action != binding.Connect || r.Target != alice || r.Mode != binding.AXN || r.CallerID != carol {
		t.Fatalf("stranger's route = %+v", r)
	}
	if evs := e.events.types(); len(evs) == 0 || evs[len(evs)-1] != "binding.created" {
		t.Errorf("events %v", evs)
	}

	var g struct {
		Name     string
		Members  []string
		Size     int
		Bindings []string
	}
	e.ok(call{method: "POST", path: "/v1/groups", key: bk, body: `{"name":"riders","members":["13600000001"]}`}, 201, &g)
	if g.Name != "riders" || g.Size != 1 {
		t.Fatalf("created group = %+v", g)
	}
	e.ok(call{method: "POST", path: "/v1/groups/riders/members", key: bk, body: `{"members":["13600000002","13600000003"]}`}, 200, &g)
	if g.Size != 3 {
		t.Fatalf("after add: %+v", g)
	}
	e.ok(call{method: "POST", path: "/v1/bindings", key: bk, body: `{"mode":"axg","a":"` + bob + `","group":"riders"}`}, 201, &b)
	if b.Mode != binding.AXG || b.X != x1 || b.Group != "riders" {
		t.Fatalf("axg binding = %+v", b)
	}
	e.ok(call{method: "POST", path: "/v1/groups/riders/members:remove", key: bk, body: `{"members":["13600000003"]}`}, 200, &g)
	e.ok(call{method: "POST", path: "/v1/routes:resolve", key: bk, body: `{"x":"` + x1 + `","caller":"13600000003"}`}, 200, &r)
	if r.Action != binding.Reject || r.Reason != binding.ReasonNotInGroup {
		t.Fatalf("removed member's route = %+v", r)
	}
	e.ok(call{method: "GET", path: "/v1/groups/riders", key: bk}, 200, &g)
	if g.Size != 2 || len(g.Bindings) != 1 || g.Bindings[0] != b.ID {
		t.Fatalf("group show = %+v", g)
	}

	for _, tt := range []struct {
		name, method, path, body string
		status                   int
		slug, field              string
	}{
		{"unknown mode", "POST", "/v1/bindings", `{"mode":"axz","a":"` + alice + `","b":"` + bob + `"}`, 422, "invalid-field", "mode"},
		{"axb without b", "POST", "/v1/bindings", `{"a":"` + alice + `"}`, 422, "invalid-number", "b"},
		{"axg without group", "POST", "/v1/bindings", `{"mode":"axg","a":"` + carol + `"}`, 422, "invalid-field", "group"},
		{"axg unknown group", "POST", "/v1/bindings", `{"mode":"axg","a":"` + carol + `","group":"nobody"}`, 422, "invalid-field", "group"},
		{"axb show caller", "POST", "/v1/bindings", `{"a":"` + carol + `","b":"` + bob + `","show_caller":true}`, 422, "invalid-field", "show_caller"},
		{"bad reservation", "POST", "/v1/numbers", `{"numbers":[{"number":"17000000005","mode":"axq"}]}`, 422, "invalid-field", "numbers[0].mode"},
		{"group over the limit", "POST", "/v1/groups/riders/members", `{"members":["13600000007","13600000008"]}`, 422, "invalid-field", "members"},
		{"remove a non-member", "POST", "/v1/groups/riders/members:remove", `{"members":["13600000001","13600000009"]}`, 422, "invalid-field", "members"},
		{"bad member", "POST", "/v1/groups/riders/members", `{"members":["12ab"]}`, 422, "invalid-number", "members[0]"},
		{"no members", "POST", "/v1/groups/riders/members", `{"members":[]}`, 422, "invalid-field", "members"},
		{"group exists", "POST", "/v1/groups", `{"name":"riders"}`, 409, "group-exists", ""},
		{"bad group name", "POST", "/v1/groups", `{"name":"a b"}`, 422, "invalid-field", "name"},
		{"group missing", "GET", "/v1/groups/nobody", "", 404, "group-not-found", ""},
		{"add to a missing group", "POST", "/v1/groups/nobody/members", `{"members":["13600000001"]}`, 404, "group-not-found", ""},
		{"delete a group in use", "DELETE", "/v1/groups/riders", "", 409, "group-in-use", ""},
		{"axn on a used number", "POST", "/v1/bindings", `{"mode":"axn","a":"` + carol + `","x":"` + x1 + `"}`, 409, "number-unavailable", "x"},
	} {
		res := e.do(call{method: tt.method, path: tt.path, key: admin, body: tt.body})
		if res.status != tt.status {
			t.Errorf("%s: status %d, want %d: %s", tt.name, res.status, tt.status, res.body)
			continue
		}
		p := res.problem(t)
		if p.Type != ProblemTypeBase+tt.slug || p.Field != tt.field {
			t.Errorf("%s: problem %+v; want %s naming %q", tt.name, p, tt.slug, tt.field)
		}
	}
	// Nothing stored by the refusals.
	e.ok(call{method: "GET", path: "/v1/groups/riders", key: bk}, 200, &g)
	if g.Size != 2 {
		t.Errorf("refusals changed the group: %+v", g)
	}
	var list struct{ Numbers []struct{ Number string } }
	e.ok(call{method: "GET", path: "/v1/numbers", key: admin}, 200, &list)
	if len(list.Numbers) != 2 {
		t.Errorf("refusals changed the pool: %+v", list)
	}
	// Released, the group can go once its quarantine is over; released
	// and quarantined, it still counts.
	e.ok(call{method: "POST", path: "/v1/bindings/" + b.ID + "/release", key: bk}, 200, nil)
	if res := e.do(call{method: "DELETE", path: "/v1/groups/riders", key: bk}); res.status != http.StatusConflict {
		t.Errorf("delete during the quarantine: %d", res.status)
	}
}
