package arisim_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/privnum/privnum/ari/arisim"
)

// TestTraceDoctorReads replays the read-only requests of a configuration
// check (doctor-reads) and compares every answer with the recording: status,
// and the body, exactly for the module list and the PJSIP objects' attribute
// lists (every attribute, in Asterisk's order), by field for the rest.
func TestTraceDoctorReads(t *testing.T) {
	entries := loadTrace(t, "doctor-reads")
	sim := newSim(t, arisim.Options{})
	// The recording switch had one more endpoint, with no AOR.
	sim.AddTrunk("trunk-static", "")
	sim.RemoveAOR("trunk-static")
	rest := newREST(t, sim)
	var pending []actualResp
	for _, e := range entries {
		switch e.Kind {
		case "request":
			var req struct{ Method, Path string }
			if err := json.Unmarshal(e.Data, &req); err != nil {
				t.Fatal(err)
			}
			st, body, err := rest.do(req.Method, strings.TrimPrefix(req.Path, "/ari"), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			pending = append(pending, actualResp{status: st, body: body})
		case "response":
			var resp struct {
				Method, Path string
				Status       int
				Body         json.RawMessage
			}
			if err := json.Unmarshal(e.Data, &resp); err != nil {
				t.Fatal(err)
			}
			got := pending[0]
			pending = pending[1:]
			where := resp.Method + " " + resp.Path
			if got.status != resp.Status {
				t.Errorf("%s: status %d, trace %d (%s)", where, got.status, resp.Status, got.body)
				continue
			}
			compareDoctorBody(t, where, resp.Body, got.body)
		}
	}
}

func compareDoctorBody(t *testing.T, where string, want, got []byte) {
	t.Helper()
	var w, g any
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(got, &g); err != nil {
		t.Errorf("%s: body %s: %v", where, got, err)
		return
	}
	switch {
	case strings.HasSuffix(where, "/asterisk/info"):
		wm, gm := w.(map[string]any), g.(map[string]any)
		if !reflect.DeepEqual(sortedKeysAny(wm), sortedKeysAny(gm)) {
			t.Errorf("%s: keys %v, trace %v", where, sortedKeysAny(gm), sortedKeysAny(wm))
		}
		for _, k := range []string{"build", "system", "config", "status"} {
			wk, _ := wm[k].(map[string]any)
			gk, _ := gm[k].(map[string]any)
			if !reflect.DeepEqual(sortedKeysAny(wk), sortedKeysAny(gk)) {
				t.Errorf("%s: %s keys %v, trace %v", where, k, sortedKeysAny(gk), sortedKeysAny(wk))
			}
		}
		if v := gm["system"].(map[string]any)["version"]; v != wm["system"].(map[string]any)["version"] {
			t.Errorf("%s: version %v", where, v)
		}
	case strings.HasPrefix(where, "GET /ari/endpoints"):
		// Asterisk lists endpoints in its container's hash order.
		byResource := func(v any) []any {
			l, _ := v.([]any)
			sort.Slice(l, func(i, j int) bool {
				return l[i].(map[string]any)["resource"].(string) < l[j].(map[string]any)["resource"].(string)
			})
			return l
		}
		if !reflect.DeepEqual(byResource(w), byResource(g)) {
			t.Errorf("%s: body %s, trace %s", where, got, want)
		}
	default:
		// Modules, one module, the PJSIP objects' attributes in order, the
		// applications, the 404 messages: exactly.
		if !reflect.DeepEqual(w, g) {
			t.Errorf("%s: body %.300s…, trace %.300s…", where, got, want)
		}
	}
}

// TestConfigState checks the settable configuration: what tests change is
// what a configuration check reads.
func TestConfigState(t *testing.T) {
	sim := newSim(t, arisim.Options{})
	rest := newREST(t, sim)
	attr := func(path, name string) string {
		t.Helper()
		st, body, err := rest.do("GET", path, nil, nil)
		if err != nil || st != http.StatusOK {
			t.Fatalf("GET %s: %d %s %v", path, st, body, err)
		}
		var list []struct{ Attribute, Value string }
		if err := json.Unmarshal(body, &list); err != nil {
			t.Fatal(err)
		}
		for _, a := range list {
			if a.Attribute == name {
				return a.Value
			}
		}
		return "(absent)"
	}
	state := func(ep string) string {
		return rest.must(200, "GET", "/endpoints/PJSIP/"+ep, nil, nil)["state"].(string)
	}

	sim.SetEndpointOption("carrier", "send_pai", "no")
	sim.SetEndpointOption("carrier", "from_user", "acct42")
	sim.SetMessageContext("trunk-in", "privnum-messages")
	sim.SetAOROption("carrier", "qualify_frequency", "60")
	for _, c := range []struct{ path, attr, want string }{
		{"/asterisk/config/dynamic/res_pjsip/endpoint/carrier", "send_pai", "no"},
		{"/asterisk/config/dynamic/res_pjsip/endpoint/carrier", "from_user", "acct42"},
		{"/asterisk/config/dynamic/res_pjsip/endpoint/carrier", "send_rpid", "true"},
		{"/asterisk/config/dynamic/res_pjsip/endpoint/trunk-in", "message_context", "privnum-messages"},
		{"/asterisk/config/dynamic/res_pjsip/endpoint/trunk-in", "context", "from-trunk"},
		{"/asterisk/config/dynamic/res_pjsip/aor/carrier", "qualify_frequency", "60"},
	} {
		if got := attr(c.path, c.attr); got != c.want {
			t.Errorf("%s %s = %q, want %q", c.path, c.attr, got, c.want)
		}
	}
	rest.must(404, "GET", "/asterisk/config/dynamic/res_pjsip/aor/trunk-in", nil, nil)

	if s := state("carrier"); s != "online" {
		t.Errorf("carrier %s, want online", s)
	}
	sim.SetContactReachable("carrier", false)
	if s := state("carrier"); s != "offline" {
		t.Errorf("unreachable carrier %s, want offline", s)
	}

	rest.must(200, "GET", "/asterisk/modules/res_stasis_playback.so", nil, nil)
	sim.SetModule("res_stasis_playback.so", "")
	rest.must(404, "GET", "/asterisk/modules/res_stasis_playback.so", nil, nil)
	sim.SetModule("chan_pjsip.so", "Not Running")
	if m := rest.must(200, "GET", "/asterisk/modules/chan_pjsip.so", nil, nil); m["status"] != "Not Running" {
		t.Errorf("chan_pjsip.so: %v", m)
	}

	// The application is registered while its WebSocket is up.
	rest.must(404, "GET", "/applications/"+testApp, nil, nil)
	ws := dialWS(t, sim, testApp)
	defer ws.close()
	if a := rest.must(200, "GET", "/applications/"+testApp, nil, nil); a["name"] != testApp {
		t.Errorf("application: %v", a)
	}
}
