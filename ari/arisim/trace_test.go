package arisim_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/privnum/privnum/ari/arisim"
)

// The traces in ../shared/ari-traces (beside the repository) are call flows
// recorded against a real Asterisk 22.10.1; without them the replays skip. The tests below replay each one
// against the simulator: they send the same REST requests (ids translated),
// act as the SIP parties where the trace shows a party acting (the inbound
// call, a BYE, a CANCEL), and check that the simulator answers with the same
// statuses and bodies and sends, for every channel, bridge and playback, the
// same sequence of events with the same significant fields. ChannelVarset
// events, timestamps and generated ids are ignored.

const traceDir = "../../../shared/ari-traces"

type traceEntry struct {
	TMs  int             `json:"t_ms"`
	Kind string          `json:"kind"`
	Data json.RawMessage `json:"data"`
}

func loadTrace(t *testing.T, name string) []traceEntry {
	t.Helper()
	f, err := os.Open(filepath.Join(traceDir, name+".jsonl"))
	if os.IsNotExist(err) {
		t.Skipf("no trace %s in %s", name, traceDir)
	}
	if err != nil {
		t.Fatalf("open trace: %v", err)
	}
	defer f.Close()
	var out []traceEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e traceEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("trace %s: %v", name, err)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("trace %s: %v", name, err)
	}
	return out
}

type actualResp struct {
	status int
	body   []byte
}

// replay drives the simulator through a trace.
type replay struct {
	t       *testing.T
	sim     *arisim.Sim
	rest    *restClient
	ws      *wsClient
	ids     map[string]string       // trace id → simulator id
	pending map[string][]actualResp // "METHOD /trace/path" → responses not yet checked
	timeout time.Duration
}

func newReplay(t *testing.T, sim *arisim.Sim, ws *wsClient) *replay {
	return &replay{
		t: t, sim: sim, rest: newREST(t, sim), ws: ws,
		ids: map[string]string{"app": "app"}, pending: map[string][]actualResp{},
		timeout: 5 * time.Second,
	}
}

func (r *replay) mapID(s string) string {
	if v, ok := r.ids[s]; ok {
		return v
	}
	return s
}

// mapList translates ids in a comma separated list.
func (r *replay) mapList(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		parts[i] = r.mapID(p)
	}
	return strings.Join(parts, ",")
}

func (r *replay) mapPath(p string) string {
	parts := strings.Split(p, "/")
	for i, x := range parts {
		parts[i] = r.mapID(x)
	}
	return strings.Join(parts, "/")
}

// run replays entries up to the end or a "closed" entry.
func (r *replay) run(entries []traceEntry) {
	r.t.Helper()
	for i, e := range entries {
		switch e.Kind {
		case "event":
			r.event(i, e.Data)
		case "request":
			r.request(e.Data)
		case "response":
			r.response(e.Data)
		case "closed":
			return
		}
		if r.t.Failed() {
			r.t.FailNow()
		}
	}
}

func (r *replay) request(raw json.RawMessage) {
	r.t.Helper()
	var req struct {
		Method string              `json:"method"`
		Path   string              `json:"path"`
		Query  map[string][]string `json:"query"`
		Body   any                 `json:"body"`
	}
	if err := json.Unmarshal(raw, &req); err != nil {
		r.t.Fatal(err)
	}
	query := url.Values{}
	for k, vs := range req.Query {
		for _, v := range vs {
			query.Add(k, r.mapList(v))
		}
	}
	st, body, err := r.rest.do(req.Method, r.mapPath(req.Path), query, req.Body)
	if err != nil {
		r.t.Fatalf("%s %s: %v", req.Method, req.Path, err)
	}
	key := req.Method + " " + req.Path
	r.pending[key] = append(r.pending[key], actualResp{status: st, body: body})
}

func (r *replay) response(raw json.RawMessage) {
	r.t.Helper()
	var resp struct {
		Method string `json:"method"`
		Path   string `json:"path"`
		Status int    `json:"status"`
		Body   any    `json:"body"`
	}
	if err := json.Unmarshal(raw, &resp); err != nil {
		r.t.Fatal(err)
	}
	key := resp.Method + " " + resp.Path
	q := r.pending[key]
	if len(q) == 0 {
		r.t.Fatalf("trace response to %s without a request", key)
	}
	got := q[0]
	r.pending[key] = q[1:]
	if got.status != resp.Status {
		r.t.Errorf("%s: status %d, trace %d (body %s)", key, got.status, resp.Status, got.body)
		return
	}
	want, isMap := resp.Body.(map[string]any)
	if !isMap {
		if len(got.body) != 0 {
			r.t.Errorf("%s: body %s, trace none", key, got.body)
		}
		return
	}
	var gotM map[string]any
	if err := json.Unmarshal(got.body, &gotM); err != nil {
		r.t.Errorf("%s: body %q: %v", key, got.body, err)
		return
	}
	r.compareBody(key, want, gotM)
}

// learn maps a trace id to the simulator's id of the same object.
func (r *replay) learn(traceID, simID string) {
	if old, ok := r.ids[traceID]; ok && old != simID {
		r.t.Errorf("trace id %s maps to %s and %s", traceID, old, simID)
	}
	r.ids[traceID] = simID
}

func (r *replay) compareBody(where string, want, got map[string]any) {
	r.t.Helper()
	switch {
	case want["message"] != nil || want["error"] != nil:
		if !reflect.DeepEqual(want, got) {
			r.t.Errorf("%s: body %v, trace %v", where, got, want)
		}
	case want["protocol_id"] != nil: // a Channel
		r.learn(str(want["id"]), str(got["id"]))
		r.compareChannel(where, want, got)
	case want["bridge_type"] != nil: // a Bridge
		r.learn(str(want["id"]), str(got["id"]))
		r.compareBridge(where, want, got)
	case want["media_uri"] != nil: // a Playback
		r.learn(str(want["id"]), str(got["id"]))
		r.comparePlayback(where, want, got)
	case want["channel_ids"] != nil: // an Application
		r.compareFields(where, want, got, "name", "endpoint_ids", "device_names")
		for _, f := range []string{"channel_ids", "bridge_ids"} {
			var wantIDs []string
			for _, id := range want[f].([]any) {
				wantIDs = append(wantIDs, r.mapID(str(id)))
			}
			gotIDs := anyStrings(got[f])
			if !slices.Equal(wantIDs, gotIDs) {
				r.t.Errorf("%s: %s %v, trace %v", where, f, gotIDs, wantIDs)
			}
		}
	case want["system"] != nil: // asterisk/info
		for _, k := range sortedKeysAny(want) {
			if _, ok := got[k]; !ok {
				r.t.Errorf("%s: no %q", where, k)
			}
		}
		ws, gs := want["system"].(map[string]any), got["system"].(map[string]any)
		r.compareFields(where+" system", ws, gs, "version", "entity_id")
	default:
		r.t.Fatalf("%s: no rule to compare %v", where, want)
	}
}

func anyStrings(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, x := range l {
		out = append(out, str(x))
	}
	return out
}

func sortedKeysAny(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// compareFields checks that fields are equal (or both absent).
func (r *replay) compareFields(where string, want, got map[string]any, fields ...string) {
	r.t.Helper()
	for _, f := range fields {
		wv, wok := want[f]
		gv, gok := got[f]
		if wok != gok || !reflect.DeepEqual(wv, gv) {
			r.t.Errorf("%s: %s = %v (present %v), trace %v (present %v)", where, f, gv, gok, wv, wok)
		}
	}
}

// namePrefix drops the sequence number of a channel name.
func namePrefix(name string) string {
	if i := strings.LastIndex(name, "-"); i >= 0 {
		return name[:i]
	}
	return name
}

func (r *replay) compareChannel(where string, want, got map[string]any) {
	r.t.Helper()
	r.compareFields(where, want, got, "state", "caller", "connected", "accountcode", "language")
	if namePrefix(str(want["name"])) != namePrefix(str(got["name"])) {
		r.t.Errorf("%s: name %v, trace %v", where, got["name"], want["name"])
	}
	wd, _ := want["dialplan"].(map[string]any)
	gd, _ := got["dialplan"].(map[string]any)
	r.compareFields(where+" dialplan", wd, gd, "context", "exten", "priority", "app_name")
	if r.mapList(str(wd["app_data"])) != str(gd["app_data"]) {
		r.t.Errorf("%s: app_data %v, trace %v", where, gd["app_data"], wd["app_data"])
	}
}

func (r *replay) compareBridge(where string, want, got map[string]any) {
	r.t.Helper()
	r.compareFields(where, want, got, "technology", "bridge_type", "bridge_class", "creator", "name", "video_mode")
	var wantIDs []string
	for _, id := range want["channels"].([]any) {
		wantIDs = append(wantIDs, r.mapID(str(id)))
	}
	if gotIDs := anyStrings(got["channels"]); !slices.Equal(wantIDs, gotIDs) {
		r.t.Errorf("%s: bridge channels %v, trace %v", where, gotIDs, wantIDs)
	}
}

func (r *replay) comparePlayback(where string, want, got map[string]any) {
	r.t.Helper()
	r.compareFields(where, want, got, "media_uri", "language", "state")
	wt := str(want["target_uri"])
	if kind, id, ok := strings.Cut(wt, ":"); ok {
		wt = kind + ":" + r.mapID(id)
	}
	if wt != str(got["target_uri"]) {
		r.t.Errorf("%s: target_uri %v, trace %v", where, got["target_uri"], wt)
	}
}

// racy reports whether two events about one channel may come in either
// order: real Asterisk does not fix it (the traces show both orders).
func racy(pair [2]string) bool {
	return pair == [2]string{"ChannelStateChange", "Dial"} || pair == [2]string{"Dial", "ChannelStateChange"}
}

// event waits for the simulator's counterpart of a trace event, after
// playing the SIP party whose action the trace event shows.
func (r *replay) event(idx int, raw json.RawMessage) {
	r.t.Helper()
	var want map[string]any
	if err := json.Unmarshal(raw, &want); err != nil {
		r.t.Fatal(err)
	}
	typ := str(want["type"])
	if typ == "ChannelVarset" {
		return
	}
	key := eventKey(want)
	r.stimulate(typ, key, want)
	simKey, ok := r.ids[key]
	if !ok {
		r.t.Fatalf("trace event %d (%s) about unknown id %s", idx, typ, key)
	}
	var mismatch *recvEvent
	swapped := false
	got, ok := r.ws.waitFor(r.timeout, func(evs []*recvEvent) *recvEvent {
		var first *recvEvent
		for _, e := range evs {
			if e.used || e.Type == "ChannelVarset" || e.Key != simKey {
				continue
			}
			if e.Type == typ {
				if first == nil || racy([2]string{first.Type, typ}) {
					e.used = true
					swapped = first != nil
					return e
				}
			}
			if first != nil {
				break
			}
			first = e
		}
		if first != nil && !racy([2]string{first.Type, typ}) {
			mismatch = first
			return first
		}
		return nil
	})
	if !ok {
		r.t.Fatalf("trace event %d: no %s about %s (sim %s) within %v; received about it: %v",
			idx, typ, key, simKey, r.timeout, r.ws.types(simKey))
	}
	if mismatch != nil {
		r.t.Fatalf("trace event %d: expected %s about %s, simulator sent %s; received about it: %v",
			idx, typ, key, mismatch.Type, r.ws.types(simKey))
	}
	if swapped {
		// The other order: the snapshot was taken on the other side of the
		// state change.
		for _, f := range []string{"channel", "peer"} {
			if wc, ok := want[f].(map[string]any); ok {
				if gc, ok := got.Data[f].(map[string]any); ok {
					wc["state"] = gc["state"]
				}
			}
		}
	}
	r.compareEvent(fmt.Sprintf("event %d %s", idx, typ), want, got.Data)
}

// stimulate plays the SIP parties: the inbound call arrives, a party hangs
// up, a party keys a digit. Outcomes of outbound legs come from the
// scripted behavior.
func (r *replay) stimulate(typ, key string, want map[string]any) {
	r.t.Helper()
	ch, _ := want["channel"].(map[string]any)
	switch typ {
	case "StasisStart":
		dp, _ := ch["dialplan"].(map[string]any)
		if _, known := r.ids[key]; known || str(dp["context"]) != "from-trunk" {
			return
		}
		caller, _ := ch["caller"].(map[string]any)
		id, err := r.sim.InboundCall(ctxTimeout(r.t, 5*time.Second), str(caller["number"]), str(dp["exten"]))
		if err != nil {
			r.t.Fatalf("inbound call: %v", err)
		}
		r.learn(key, id)
	case "ChannelDtmfReceived":
		// No trace holds one yet; a future one replays digit by digit.
		if err := r.sim.SendDTMF(r.mapID(key), str(want["digit"]), 0); err != nil {
			r.t.Fatalf("DTMF from the far party: %v", err)
		}
	case "ChannelHangupRequest":
		if _, soft := want["soft"]; soft {
			return // the application's or Asterisk's own hangup
		}
		simID := r.mapID(key)
		ci, ok := r.sim.Channel(simID)
		if !ok || ci.Destroyed || (!ci.Inbound && !ci.Answered) {
			return // an outbound leg's rejection: scripted by its behavior
		}
		cause := arisim.CauseNormal
		if c, ok := want["cause"].(float64); ok {
			cause = int(c)
		}
		if err := r.sim.HangupFromPeer(simID, cause); err != nil {
			r.t.Fatalf("hangup from peer: %v", err)
		}
	}
}

func (r *replay) compareEvent(where string, want, got map[string]any) {
	r.t.Helper()
	r.compareFields(where, want, got, "type", "dialstatus", "forward", "dialstring", "cause", "cause_txt",
		"tech_cause", "soft", "variable", "value", "dialplan_app", "caller_presentation", "caller_presentation_txt", "digit")
	for _, f := range []string{"channel", "peer"} {
		if wc, ok := want[f].(map[string]any); ok {
			gc, _ := got[f].(map[string]any)
			r.compareChannel(where+" "+f, wc, gc)
		}
	}
	if wb, ok := want["bridge"].(map[string]any); ok {
		gb, _ := got["bridge"].(map[string]any)
		r.compareBridge(where, wb, gb)
	}
	if wp, ok := want["playback"].(map[string]any); ok {
		gp, _ := got["playback"].(map[string]any)
		r.comparePlayback(where, wp, gp)
	}
	if wa, ok := want["args"].([]any); ok {
		var wantArgs []string
		for _, a := range wa {
			wantArgs = append(wantArgs, r.mapID(str(a)))
		}
		if gotArgs := anyStrings(got["args"]); !slices.Equal(wantArgs, gotArgs) {
			r.t.Errorf("%s: args %v, trace %v", where, gotArgs, wantArgs)
		}
		if got["args"] == nil {
			r.t.Errorf("%s: args missing (must be [])", where)
		}
	}
	if want["asterisk_id"] != got["asterisk_id"] || want["application"] != got["application"] {
		r.t.Errorf("%s: asterisk_id/application %v/%v, trace %v/%v", where,
			got["asterisk_id"], got["application"], want["asterisk_id"], want["application"])
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000-0700", str(got["timestamp"])); err != nil {
		r.t.Errorf("%s: timestamp %q not in Asterisk format", where, got["timestamp"])
	}
}

// noExtraEvents checks that, once the trace is done, the simulator sent
// nothing more about the objects the trace knows.
func (r *replay) noExtraEvents(settle time.Duration) {
	r.t.Helper()
	time.Sleep(settle)
	simIDs := map[string]bool{}
	for _, v := range r.ids {
		simIDs[v] = true
	}
	r.ws.mu.Lock()
	defer r.ws.mu.Unlock()
	for _, e := range r.ws.events {
		if !e.used && e.Type != "ChannelVarset" && simIDs[e.Key] {
			r.t.Errorf("event not in the trace: %s about %s", e.Type, e.Key)
		}
	}
}

func TestTraceReplay(t *testing.T) {
	cases := []struct {
		trace    string
		scale    float64
		behavior arisim.Behavior
		setup    func(r *replay)
		after    func(t *testing.T, r *replay)
	}{
		{trace: "originate-answer", behavior: arisim.Answer(100 * time.Millisecond)},
		{trace: "send-pai-bridge", behavior: arisim.Answer(100 * time.Millisecond), after: checkSendPAIIdentities},
		{trace: "originate-busy", behavior: arisim.Busy(), after: func(t *testing.T, r *replay) {
			// The driver did nothing: the caller is left in Stasis, ringing.
			ci, ok := r.sim.Channel(r.ids["1795413738.2"])
			if !ok || ci.Destroyed || ci.App != testApp || ci.State != "Ring" {
				t.Errorf("caller: %+v, want still in Stasis and ringing", ci)
			}
			leg, _ := r.sim.Channel(r.ids["1795413738.3"])
			if !leg.Destroyed || leg.HangupCause != arisim.CauseBusy || leg.HangupBy != arisim.HangupByPeer {
				t.Errorf("busy leg: %+v", leg)
			}
		}},
		{trace: "originate-noanswer", scale: 0.01, behavior: arisim.NoAnswer(), after: func(t *testing.T, r *replay) {
			leg, _ := r.sim.Channel(r.ids["1795413790.7"])
			if leg.HangupCause != arisim.CauseNoAnswer || leg.HangupBy != arisim.HangupByTimeout {
				t.Errorf("unanswered leg: %+v", leg)
			}
		}},
		{trace: "createdial-answer", behavior: arisim.Answer(100 * time.Millisecond)},
		{trace: "createdial-busy", behavior: arisim.Busy()},
		{trace: "createdial-noanswer", scale: 0.01, behavior: arisim.NoAnswer()},
		{trace: "caller-cancels-while-ringing", scale: 1, behavior: arisim.NoAnswer(), after: func(t *testing.T, r *replay) {
			caller, _ := r.sim.Channel(r.ids["1795413922.13"])
			if !caller.Destroyed || caller.HangupCause != arisim.CauseInterworking || caller.HangupBy != arisim.HangupByPeer {
				t.Errorf("caller: %+v", caller)
			}
			// Nothing stops the ringing leg but the application.
			leg, _ := r.sim.Channel(r.ids["1795413922.14"])
			if leg.Destroyed || leg.State != "Ringing" {
				t.Errorf("outbound leg: %+v, want still ringing", leg)
			}
			r.rest.must(204, "DELETE", "/channels/"+leg.ID, nil, nil)
			ev := r.ws.waitType("ChannelDestroyed", leg.ID, 5*time.Second)
			if ev.Data["cause"] != float64(16) {
				t.Errorf("ChannelDestroyed cause %v", ev.Data["cause"])
			}
		}},
		{trace: "answer-play-hangup", behavior: arisim.NoAnswer(), after: func(t *testing.T, r *replay) {
			ci, _ := r.sim.Channel(r.ids["1795413866.10"])
			if ci.HangupCause != 1 || ci.HangupBy != arisim.HangupByApp || ci.SIPResponse != 0 {
				t.Errorf("caller: %+v", ci)
			}
			pb, ok := r.sim.Playback(r.ids["64379dc3-f2f3-4cca-bca3-5193242378e2"])
			if !ok || pb.State != "done" {
				t.Errorf("playback: %+v %v", pb, ok)
			}
		}},
		{trace: "callee-hangs-up", behavior: arisim.Answer(5 * time.Millisecond), after: func(t *testing.T, r *replay) {
			callee, _ := r.sim.Channel(r.ids["1795413881.12"])
			if callee.HangupBy != arisim.HangupByPeer || callee.HangupCause != arisim.CauseNormal {
				t.Errorf("callee: %+v", callee)
			}
		}},
		{trace: "rest-errors", behavior: arisim.NoAnswer(), setup: func(r *replay) {
			// The application still held the two callers the busy and
			// no-answer drivers left behind.
			for _, id := range []string{"1795413738.2", "1795413790.6"} {
				simID, err := r.sim.InboundCall(ctxTimeout(r.t, time.Second), "13800000001", "17000000000")
				if err != nil {
					r.t.Fatal(err)
				}
				r.learn(id, simID)
				r.ws.waitType("StasisStart", simID, 5*time.Second)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.trace, func(t *testing.T) {
			t.Parallel()
			scale := tc.scale
			if scale == 0 {
				scale = 0.01
			}
			sim := newSim(t, arisim.Options{TimeScale: scale, PlaybackDuration: 300 * time.Millisecond})
			sim.SetEndpoint("13900000002", tc.behavior)
			ws := dialWS(t, sim, testApp)
			r := newReplay(t, sim, ws)
			if tc.setup != nil {
				tc.setup(r)
			}
			r.run(loadTrace(t, tc.trace))
			r.noExtraEvents(50 * time.Millisecond)
			if tc.after != nil && !t.Failed() {
				tc.after(t, r)
			}
		})
	}
}

// sipIdentities extracts from a sipp message log the numbers the party was
// sent: the From user of the initial INVITE it received and every
// P-Asserted-Identity user in what it received.
func sipIdentities(t *testing.T, name string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(traceDir, "sip", name))
	if os.IsNotExist(err) {
		t.Skipf("no SIP log %s in %s", name, traceDir)
	}
	if err != nil {
		t.Fatal(err)
	}
	user := regexp.MustCompile(`<sip:([^@>]+)@`)
	var out []string
	add := func(line string) {
		if m := user.FindStringSubmatch(line); m != nil && !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	for _, msg := range strings.Split(string(b), "-----------------------------------------------") {
		if !strings.Contains(msg, "message received") {
			continue
		}
		lines := strings.Split(msg, "\n")
		initialInvite := false
		for _, l := range lines {
			if strings.HasPrefix(l, "INVITE ") {
				initialInvite = true
			}
			if strings.HasPrefix(l, "To:") && strings.Contains(l, "tag=") {
				initialInvite = false
			}
		}
		for _, l := range lines {
			switch {
			case initialInvite && strings.HasPrefix(l, "From:"):
				add(l)
			case strings.HasPrefix(l, "P-Asserted-Identity:"):
				add(l)
			}
		}
	}
	return out
}

// checkSendPAIIdentities compares the privacy oracle with what sipp saw on
// the wire in the send-pai-bridge call: the carrier got 17000000000 in the
// INVITE, then the caller's real number in a re-INVITE's PAI; the caller
// got the virtual number in an UPDATE.
func checkSendPAIIdentities(t *testing.T, r *replay) {
	carrier := sipIdentities(t, "send-pai-bridge.carrier.log")
	caller := sipIdentities(t, "send-pai-bridge.caller.log")
	if want := []string{"17000000000", "13800000001"}; !slices.Equal(carrier, want) {
		t.Fatalf("carrier log parsed as %v, want %v", carrier, want)
	}
	if got := r.sim.IdentitiesSeen(r.ids["1795413673.1"]); !slices.Equal(got, carrier) {
		t.Errorf("IdentitiesSeen(callee leg) = %v, the carrier saw %v", got, carrier)
	}
	if got := r.sim.IdentitiesSeenBy("13900000002"); !slices.Equal(got, carrier) {
		t.Errorf("IdentitiesSeenBy(callee) = %v, the carrier saw %v", got, carrier)
	}
	if got := r.sim.IdentitiesSeen(r.ids["1795413673.0"]); !slices.Equal(got, caller) {
		t.Errorf("IdentitiesSeen(caller) = %v, the caller saw %v", got, caller)
	}
}

// TestTraceWebSocketDrop replays ws-drop-before, drops the WebSocket as
// the driver did, checks that the call goes on and that new calls fail,
// then reconnects and replays ws-drop-after-reconnect: the new connection
// gets the events of the channels still in the application.
func TestTraceWebSocketDrop(t *testing.T) {
	t.Parallel()
	sim := newSim(t, arisim.Options{TimeScale: 0.01})
	sim.SetEndpoint("13900000002", arisim.Answer(500*time.Millisecond))
	ws1 := dialWS(t, sim, testApp)
	r := newReplay(t, sim, ws1)
	r.run(loadTrace(t, "ws-drop-before"))
	ws1.close()
	if err := sim.WaitFor(ctxTimeout(t, 5*time.Second), func(s *arisim.Sim) bool { return !s.Connected(testApp) }); err != nil {
		t.Fatal(err)
	}

	caller, callee := r.ids["1795413947.15"], r.ids["1795413947.16"]
	bridgeID := r.ids["8a039cb0-f5a2-426f-a9a0-8466c8471da8"]
	// The call goes on, still in the application.
	app := r.rest.must(200, "GET", "/applications/"+testApp, nil, nil)
	if got := anyStrings(app["channel_ids"]); !slices.Equal(got, []string{caller, callee}) {
		t.Errorf("channel_ids while disconnected = %v", got)
	}
	if br, ok := sim.Bridge(bridgeID); !ok || len(br.Channels) != 2 {
		t.Errorf("bridge while disconnected: %+v", br)
	}
	// A new call fails at once: Stasis() cannot start.
	id, err := sim.InboundCall(ctxTimeout(t, time.Second), "13800000009", "17000000000")
	if !isNoApp(err) {
		t.Fatalf("inbound call while disconnected: %v", err)
	}
	if ci, _ := sim.Channel(id); !ci.Destroyed || ci.StasisStatus != "FAILED" {
		t.Errorf("failed call: %+v", ci)
	}

	ws2 := dialWS(t, sim, testApp)
	r.ws = ws2
	r.run(loadTrace(t, "ws-drop-after-reconnect"))
	r.noExtraEvents(50 * time.Millisecond)
	// The other leg is the application's to end.
	if ci, _ := sim.Channel(callee); ci.Destroyed || ci.BridgeID != bridgeID {
		t.Errorf("callee after the caller hung up: %+v", ci)
	}
	if got := ws1.types(""); slices.Contains(got, "ChannelHangupRequest") {
		t.Errorf("closed connection got events: %v", got)
	}
}

// TestTraceApplicationReplaced: a second WebSocket for the application
// takes it over; the first gets ApplicationReplaced, nothing more, and (as
// in the trace, whose reader timed out) is not closed by the server.
func TestTraceApplicationReplaced(t *testing.T) {
	t.Parallel()
	sim := newSim(t, arisim.Options{})
	ws1 := dialWS(t, sim, testApp)
	if err := sim.WaitFor(ctxTimeout(t, 5*time.Second), func(s *arisim.Sim) bool { return s.Connected(testApp) }); err != nil {
		t.Fatal(err)
	}
	ws2 := dialWS(t, sim, testApp)
	r := newReplay(t, sim, ws1)
	r.run(loadTrace(t, "application-replaced"))

	id, err := sim.InboundCall(ctxTimeout(t, time.Second), "13800000001", "17000000000")
	if err != nil {
		t.Fatal(err)
	}
	ws2.waitType("StasisStart", id, 5*time.Second)
	time.Sleep(50 * time.Millisecond)
	if got := ws1.types(""); !slices.Equal(got, []string{"ApplicationReplaced"}) {
		t.Errorf("replaced connection received %v", got)
	}
	if closed, err := ws1.closed(); closed {
		t.Errorf("replaced connection closed by the server: %v", err)
	}
}
