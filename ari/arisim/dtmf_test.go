package arisim_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/privnum/privnum/ari/arisim"
)

// No recorded trace holds a ChannelDtmfReceived (the sipp scenarios of
// shared/ari-traces send no RFC 4733), so the DTMF behaviour below is built
// from Asterisk 22's ARI spec (shared/asterisk-ari-api) and sources, and the
// events are checked against the spec's models.

// specDir holds Asterisk 22's ARI Swagger files, relative to this package.
const specDir = "../../../shared/asterisk-ari-api"

// specModel returns a model of the ARI spec file (e.g. "events.json"),
// skipping the test if the spec is not there.
func specModel(t *testing.T, file, id string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(specDir, file))
	if os.IsNotExist(err) {
		t.Skipf("no ARI spec %s in %s", file, specDir)
	}
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		Models map[string]map[string]any `json:"models"`
	}
	if err := json.Unmarshal(b, &spec); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	m, ok := spec.Models[id]
	if !ok {
		t.Fatalf("%s: no model %s", file, id)
	}
	return m
}

// checkSpec checks an event against its model in events.json and the
// Event base: every required property present with the JSON type the spec
// gives, and no property the spec does not know.
func checkSpec(t *testing.T, ev map[string]any) {
	t.Helper()
	typ := str(ev["type"])
	props := map[string]any{}
	for _, id := range []string{typ, "Event", "Message"} {
		m := specModel(t, "events.json", id)
		for name, p := range m["properties"].(map[string]any) {
			props[name] = p
		}
	}
	for name, p := range props {
		p := p.(map[string]any)
		v, present := ev[name]
		if !present {
			if p["required"] == true {
				t.Errorf("%s: required %q missing", typ, name)
			}
			continue
		}
		ok := true
		switch p["type"] {
		case "string":
			_, ok = v.(string)
		case "Date":
			_, err := time.Parse("2006-01-02T15:04:05.000-0700", str(v))
			ok = err == nil
		case "int", "long":
			n, isNum := v.(float64)
			ok = isNum && n == float64(int64(n))
		case "boolean":
			_, ok = v.(bool)
		default: // a model: Channel, Playback ...
			_, ok = v.(map[string]any)
		}
		if !ok {
			t.Errorf("%s: %q = %v, spec type %v", typ, name, v, p["type"])
		}
	}
	for name := range ev {
		if _, known := props[name]; !known {
			t.Errorf("%s: %q not in the spec", typ, name)
		}
	}
}

// answeredCall places an inbound call and answers it as the application.
func (f *fixture) answeredCall() string {
	f.t.Helper()
	a := f.inbound(numA)
	f.rest.must(204, "POST", "/channels/"+a+"/answer", nil, nil)
	f.ws.waitType("ChannelStateChange", a, wait)
	return a
}

// dtmfDigits returns the digits of the ChannelDtmfReceived events received
// about a channel, in order.
func (f *fixture) dtmfDigits(id string) string {
	f.ws.mu.Lock()
	defer f.ws.mu.Unlock()
	var out string
	for _, e := range f.ws.byKey[id] {
		if e.Type == "ChannelDtmfReceived" {
			out += str(e.Data["digit"])
		}
	}
	return out
}

func TestSendDTMF(t *testing.T) {
	t.Parallel()
	f := newFixture(t, arisim.Options{TimeScale: 0.1})
	a := f.answeredCall()
	if err := f.sim.SendDTMF(a, "1234#", 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"1", "2", "3", "4", "#"} {
		ev := f.ws.waitType("ChannelDtmfReceived", a, wait)
		checkSpec(t, ev.Data)
		ch := ev.Data["channel"].(map[string]any)
		if ev.Data["digit"] != want || ev.Data["duration_ms"] != float64(120) || ch["state"] != "Up" ||
			ev.Data["application"] != testApp {
			t.Errorf("event %v, want digit %s held 120 ms on an Up channel", ev.Data, want)
		}
	}
	if ci, _ := f.sim.Channel(a); ci.DTMFReceived != "1234#" || ci.DTMFSent != "" {
		t.Errorf("channel %+v", ci)
	}

	// Lower case letters are the same keys; anything else is refused whole.
	if err := f.sim.SendDTMF(a, "a*", 0); err != nil {
		t.Fatal(err)
	}
	f.ws.waitType("ChannelDtmfReceived", a, wait)
	f.ws.waitType("ChannelDtmfReceived", a, wait)
	for _, bad := range []string{"", "12x", "1 2", "E"} {
		if err := f.sim.SendDTMF(a, bad, 0); err == nil || errors.Is(err, arisim.ErrInvalidState) {
			t.Errorf("SendDTMF(%q) = %v, want a digit error", bad, err)
		}
	}
	if got := f.dtmfDigits(a); got != "1234#A*" {
		t.Errorf("digits received %q", got)
	}
	if err := f.sim.SendDTMF("nope", "1", 0); !errors.Is(err, arisim.ErrChannelNotFound) {
		t.Errorf("unknown channel: %v", err)
	}
}

// TestSendDTMFNeedsMedia: the far party's digits travel in the media, so a
// caller that only hears ringing sends none, and only channels in Stasis
// report them to the application.
func TestSendDTMFNeedsMedia(t *testing.T) {
	t.Parallel()
	f := newFixture(t, arisim.Options{TimeScale: 0.01, DefaultBehavior: ptr(arisim.NoAnswer())})
	ringing := f.inbound(numA)
	f.rest.must(204, "POST", "/channels/"+ringing+"/ring", nil, nil)
	if err := f.sim.SendDTMF(ringing, "1", 0); !errors.Is(err, arisim.ErrInvalidState) {
		t.Errorf("ringing caller: %v, want ErrInvalidState", err)
	}

	// Early media (a prompt played before answer) carries them.
	early := f.inbound(numA)
	f.rest.must(201, "POST", "/channels/"+early+"/play", q("media", "tone:ring"), nil)
	if err := f.sim.SendDTMF(early, "9", 0); err != nil {
		t.Fatalf("caller with early media: %v", err)
	}
	ev := f.ws.waitType("ChannelDtmfReceived", early, wait)
	if ch := ev.Data["channel"].(map[string]any); ev.Data["digit"] != "9" || ch["state"] != "Ring" {
		t.Errorf("early media digit %v", ev.Data)
	}

	// An outbound leg still ringing is not in Stasis and has no media.
	f.rest.must(200, "POST", "/channels", q("endpoint", "PJSIP/"+numB+"@carrier", "app", testApp, "channelId", "out-1"), nil)
	f.ws.waitType("ChannelStateChange", "out-1", wait)
	if err := f.sim.SendDTMF("out-1", "1", 0); !errors.Is(err, arisim.ErrInvalidState) {
		t.Errorf("ringing outbound leg: %v, want ErrInvalidState", err)
	}

	// Digits still to come when the caller hangs up are lost.
	up := f.answeredCall()
	if err := f.sim.SendDTMF(up, "12", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	f.ws.waitType("ChannelDtmfReceived", up, wait)
	if err := f.sim.HangupFromPeer(up, arisim.CauseNormal); err != nil {
		t.Fatal(err)
	}
	f.ws.waitType("StasisEnd", up, wait)
	time.Sleep(400 * time.Millisecond) // the second digit would come after 300 ms at this scale
	if got := f.dtmfDigits(up); got != "1" {
		t.Errorf("digits after hang-up: %q, want only 1", got)
	}
	types := f.ws.types(up)
	if i := slices.Index(types, "StasisEnd"); i < 0 || slices.Contains(types[i:], "ChannelDtmfReceived") {
		t.Errorf("events %v", types)
	}
}

// TestRESTSendDTMF: POST /channels/{id}/dtmf as ast_ari_channels_send_dtmf
// answers (400 checked before the channel), and the digits reach the far
// party, not the application.
func TestRESTSendDTMF(t *testing.T) {
	t.Parallel()
	f := newFixture(t, arisim.Options{TimeScale: 0.01, DefaultBehavior: ptr(arisim.NoAnswer())})
	a := f.answeredCall()
	f.rest.must(200, "POST", "/channels", q("endpoint", "PJSIP/"+numB+"@carrier", "app", testApp, "channelId", "ringing"), nil)
	f.rest.must(200, "POST", "/channels/create", q("endpoint", "PJSIP/"+numB+"@carrier", "app", testApp, "channelId", "created"), nil)
	f.ws.waitType("StasisStart", "created", wait)
	for _, tc := range []struct {
		name, id string
		query    map[string]string
		status   int
		message  string
	}{
		{"no dtmf on an unknown channel", "nope", nil, 400, "DTMF is required"},
		{"unknown channel", "nope", map[string]string{"dtmf": "1"}, 404, "Channel not found"},
		{"originated leg not in Stasis", "ringing", map[string]string{"dtmf": "1"}, 409, "Channel not in Stasis application"},
		{"created leg not dialed", "created", map[string]string{"dtmf": "1"}, 412, "Channel in invalid state"},
		{"answered", a, map[string]string{"dtmf": "12x#w", "between": "50", "duration": "80"}, 204, ""},
	} {
		query := q()
		for k, v := range tc.query {
			query.Set(k, v)
		}
		st, body, err := f.rest.do("POST", "/channels/"+tc.id+"/dtmf", query, nil)
		if err != nil {
			t.Fatal(err)
		}
		if st != tc.status || (tc.message != "" && !jsonEqual(body, `{"message":"`+tc.message+`"}`)) {
			t.Errorf("%s: %d %s, want %d %q", tc.name, st, body, tc.status, tc.message)
		}
	}
	// The digits play over time; the illegal one is skipped.
	if err := f.sim.WaitFor(ctxTimeout(t, wait), func(s *arisim.Sim) bool {
		ci, _ := s.Channel(a)
		return ci.DTMFSent == "12#"
	}); err != nil {
		ci, _ := f.sim.Channel(a)
		t.Fatalf("sent %q: %v", ci.DTMFSent, err)
	}
	time.Sleep(20 * time.Millisecond)
	if got := f.dtmfDigits(a); got != "" {
		t.Errorf("sent digits reported as received: %q", got)
	}
}

// playbackEvents returns, for one playback, each event's type, media_uri,
// next_media_uri and state.
func (f *fixture) playbackEvents(id string) [][4]string {
	f.ws.mu.Lock()
	defer f.ws.mu.Unlock()
	var out [][4]string
	for _, e := range f.ws.byKey[id] {
		p := e.Data["playback"].(map[string]any)
		out = append(out, [4]string{e.Type, str(p["media_uri"]), str(p["next_media_uri"]), str(p["state"])})
	}
	return out
}

// TestPlaybackMediaList: a playback of several media reports each one as
// res_stasis_playback.c does, and a stop ends the list.
func TestPlaybackMediaList(t *testing.T) {
	t.Parallel()
	f := newFixture(t, arisim.Options{TimeScale: 1, PlaybackDuration: 20 * time.Millisecond,
		MediaDurations: map[string]time.Duration{"sound:long": time.Hour}})
	a := f.answeredCall()

	pb := f.rest.must(201, "POST", "/channels/"+a+"/play/list", q("media", "sound:a,sound:b,sound:c"), nil)
	if pb["media_uri"] != "sound:a" || pb["next_media_uri"] != "sound:b" || pb["state"] != "queued" {
		t.Errorf("201 body %v", pb)
	}
	ev := f.ws.waitType("PlaybackFinished", "list", wait)
	checkSpec(t, ev.Data)
	want := [][4]string{
		{"PlaybackStarted", "sound:a", "sound:b", "playing"},
		{"PlaybackContinuing", "sound:a", "sound:b", "continuing"},
		{"PlaybackStarted", "sound:b", "sound:c", "playing"},
		{"PlaybackContinuing", "sound:b", "sound:c", "continuing"},
		{"PlaybackStarted", "sound:c", "", "playing"},
		{"PlaybackFinished", "sound:c", "", "done"},
	}
	if got := f.playbackEvents("list"); !slices.Equal(got, want) {
		t.Errorf("events\n got %v\nwant %v", got, want)
	}
	for _, e := range f.ws.byKey["list"] {
		checkSpec(t, e.Data)
	}

	// Stopped in its first media: done, the rest skipped.
	f.rest.must(201, "POST", "/channels/"+a+"/play/stopped", q("media", "sound:long,sound:b"), nil)
	// Stopped while queued behind it: done when its turn comes, not before.
	f.rest.must(201, "POST", "/channels/"+a+"/play/queued", q("media", "sound:b"), nil)
	f.ws.waitType("PlaybackStarted", "stopped", wait)
	f.rest.must(204, "DELETE", "/playbacks/queued", nil, nil)
	if got := f.rest.must(200, "GET", "/playbacks/queued", nil, nil); got["state"] != "done" {
		t.Errorf("cancelled playback %v", got)
	}
	time.Sleep(50 * time.Millisecond)
	if got := f.playbackEvents("queued"); len(got) != 0 {
		t.Errorf("cancelled playback reported before its turn: %v", got)
	}
	f.rest.must(204, "DELETE", "/playbacks/stopped", nil, nil)
	f.ws.waitType("PlaybackFinished", "stopped", wait)
	f.ws.waitType("PlaybackFinished", "queued", wait)
	if got, want := f.playbackEvents("stopped"), [][4]string{
		{"PlaybackStarted", "sound:long", "sound:b", "playing"},
		{"PlaybackFinished", "sound:long", "sound:b", "done"},
	}; !slices.Equal(got, want) {
		t.Errorf("stopped playback\n got %v\nwant %v", got, want)
	}
	if got, want := f.playbackEvents("queued"), [][4]string{{"PlaybackFinished", "sound:b", "", "done"}}; !slices.Equal(got, want) {
		t.Errorf("cancelled playback\n got %v\nwant %v", got, want)
	}
}

// TestTraceReplayDTMF replays answer-play-hangup with the caller keying
// "1#" right after the answer, the events spliced in as dtmf_end_to_json
// would write them on that channel: a synthetic trace, since no recorded
// one holds DTMF, that also checks the replay can play a trace that will.
func TestTraceReplayDTMF(t *testing.T) {
	t.Parallel()
	entries := loadTrace(t, "answer-play-hangup")
	var out []traceEntry
	for _, e := range entries {
		out = append(out, e)
		if e.Kind != "event" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(e.Data, &m); err != nil {
			t.Fatal(err)
		}
		if m["type"] != "ChannelStateChange" {
			continue
		}
		for _, d := range []string{"1", "#"} {
			b, err := json.Marshal(map[string]any{"type": "ChannelDtmfReceived", "timestamp": m["timestamp"],
				"digit": d, "duration_ms": 120, "channel": m["channel"],
				"asterisk_id": m["asterisk_id"], "application": m["application"]})
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, traceEntry{Kind: "event", Data: b})
		}
	}
	if len(out) != len(entries)+2 {
		t.Fatalf("spliced %d events, want 2", len(out)-len(entries))
	}
	sim := newSim(t, arisim.Options{TimeScale: 0.01, PlaybackDuration: 300 * time.Millisecond})
	r := newReplay(t, sim, dialWS(t, sim, testApp))
	r.run(out)
	r.noExtraEvents(50 * time.Millisecond)
	if ci, _ := sim.Channel(r.ids["1795413866.10"]); ci.DTMFReceived != "1#" {
		t.Errorf("caller keyed %q", ci.DTMFReceived)
	}
}
