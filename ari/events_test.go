package ari

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestDecodeEventTraces decodes every event Asterisk sent in the traces. A
// typed event must encode back to exactly the JSON it came from, so every
// field name matches and no field is lost.
func TestDecodeEventTraces(t *testing.T) {
	typed := map[string]int{}
	for _, file := range traceFiles(t) {
		for i, l := range readTrace(t, file) {
			if l.Kind != "event" {
				continue
			}
			where := fmt.Sprintf("%s:%d", filepath.Base(file), i+1)
			var head struct{ Type string }
			if err := json.Unmarshal(l.Data, &head); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			ev, err := DecodeEvent(l.Data)
			if err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			b := ev.Base()
			if ev.EventType() != head.Type || b.Application != "privnum" || b.AsteriskID == "" || b.Timestamp.IsZero() {
				t.Errorf("%s: type %q base %+v", where, ev.EventType(), b)
			}
			if u, ok := ev.(*Unknown); ok {
				if !reflect.DeepEqual([]byte(u.Raw), []byte(l.Data)) {
					t.Errorf("%s: Raw differs", where)
				}
				continue
			}
			typed[head.Type]++
			out, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			if !jsonEqual(t, out, l.Data) {
				t.Errorf("%s: %T round trip\n got %s\nwant %s", where, ev, out, l.Data)
			}
		}
	}
	// The traces must exercise the events call control relies on.
	for _, typ := range []string{"StasisStart", "StasisEnd", "ChannelStateChange", "ChannelDestroyed",
		"ChannelHangupRequest", "Dial", "ChannelEnteredBridge", "ChannelLeftBridge", "BridgeDestroyed",
		"PlaybackStarted", "PlaybackFinished", "ChannelVarset", "ChannelConnectedLine", "ChannelCallerId",
		"ApplicationReplaced", "TextMessageReceived"} {
		if typed[typ] == 0 {
			t.Errorf("no %s decoded as a typed event", typ)
		}
	}
}

func TestDecodeEvent(t *testing.T) {
	const base = `"application":"privnum","timestamp":"2026-11-23T05:57:53.962+0000","asterisk_id":"02:fc:00:00:00:01"`
	var ts Time // parsed, not built: Parse may pick time.Local for +0000
	if err := ts.UnmarshalJSON([]byte(`"2026-11-23T05:57:53.962+0000"`)); err != nil {
		t.Fatal(err)
	}
	eb := func(typ string) EventBase {
		return EventBase{Type: typ, Application: "privnum", Timestamp: ts, AsteriskID: "02:fc:00:00:00:01"}
	}
	tests := []struct {
		name string
		in   string
		want Event
	}{
		{
			name: "StasisStart with args",
			in:   `{"type":"StasisStart",` + base + `,"args":["outbound","1795413473.0"],"channel":{"id":"1795413473.1","state":"Up","caller":{"name":"","number":"17000000000"}}}`,
			want: &StasisStart{EventBase: eb("StasisStart"), Args: []string{"outbound", "1795413473.0"},
				Channel: Channel{ID: "1795413473.1", State: "Up", Caller: CallerID{Number: "17000000000"}}},
		},
		{
			name: "ChannelDestroyed busy",
			in:   `{"type":"ChannelDestroyed",` + base + `,"cause":17,"cause_txt":"User busy","tech_cause":486,"channel":{"id":"c"}}`,
			want: &ChannelDestroyed{EventBase: eb("ChannelDestroyed"), Cause: 17, CauseTxt: "User busy", TechCause: 486, Channel: Channel{ID: "c"}},
		},
		{
			name: "ChannelHangupRequest soft",
			in:   `{"cause":32,"soft":true,"type":"ChannelHangupRequest",` + base + `,"channel":{"id":"c"}}`,
			want: &ChannelHangupRequest{EventBase: eb("ChannelHangupRequest"), Cause: 32, Soft: true, Channel: Channel{ID: "c"}},
		},
		{
			name: "Dial with caller and forward",
			in:   `{"type":"Dial",` + base + `,"dialstatus":"BUSY","forward":"x","dialstring":"13900000002@carrier","caller":{"id":"a"},"peer":{"id":"b"},"forwarded":{"id":"f"}}`,
			want: &Dial{EventBase: eb("Dial"), DialStatus: "BUSY", Forward: "x", DialString: "13900000002@carrier",
				Caller: &Channel{ID: "a"}, Peer: Channel{ID: "b"}, Forwarded: &Channel{ID: "f"}},
		},
		{
			name: "global ChannelVarset",
			in:   `{"type":"ChannelVarset",` + base + `,"variable":"G","value":"1"}`,
			want: &ChannelVarset{EventBase: eb("ChannelVarset"), Variable: "G", Value: "1"},
		},
		{
			name: "ChannelVarset with channelvars",
			in:   `{"type":"ChannelVarset",` + base + `,"variable":"V","value":"1","channel":{"id":"c","channelvars":{"CALL_ID":"k1"}}}`,
			want: &ChannelVarset{EventBase: eb("ChannelVarset"), Variable: "V", Value: "1",
				Channel: &Channel{ID: "c", ChannelVars: map[string]string{"CALL_ID": "k1"}}},
		},
		{
			name: "ChannelDtmfReceived",
			in:   `{"type":"ChannelDtmfReceived",` + base + `,"digit":"5","duration_ms":120,"channel":{"id":"c"}}`,
			want: &ChannelDtmfReceived{EventBase: eb("ChannelDtmfReceived"), Digit: "5", DurationMs: 120, Channel: Channel{ID: "c"}},
		},
		{
			name: "PlaybackContinuing",
			in:   `{"type":"PlaybackContinuing",` + base + `,"playback":{"id":"p","media_uri":"sound:a","next_media_uri":"sound:b","target_uri":"channel:c","language":"en","state":"continuing"}}`,
			want: &PlaybackContinuing{EventBase: eb("PlaybackContinuing"), Playback: Playback{ID: "p", MediaURI: "sound:a",
				NextMediaURI: "sound:b", TargetURI: "channel:c", Language: "en", State: "continuing"}},
		},
		{
			name: "BridgeCreated",
			in:   `{"type":"BridgeCreated",` + base + `,"bridge":{"id":"br","bridge_type":"mixing","channels":["a"]}}`,
			want: &BridgeCreated{EventBase: eb("BridgeCreated"), Bridge: Bridge{ID: "br", BridgeType: "mixing", Channels: []string{"a"}}},
		},
		{
			name: "RecordingFinished",
			in:   `{"type":"RecordingFinished",` + base + `,"recording":{"name":"r","format":"wav","target_uri":"bridge:br","state":"done","duration":61}}`,
			want: &RecordingFinished{EventBase: eb("RecordingFinished"),
				Recording: LiveRecording{Name: "r", Format: "wav", TargetURI: "bridge:br", State: "done", Duration: 61}},
		},
		{
			name: "RecordingFailed",
			in:   `{"type":"RecordingFailed",` + base + `,"recording":{"name":"r","state":"failed","cause":"disk full"}}`,
			want: &RecordingFailed{EventBase: eb("RecordingFailed"), Recording: LiveRecording{Name: "r", State: "failed", Cause: "disk full"}},
		},
		{
			name: "RecordingStarted",
			in:   `{"type":"RecordingStarted",` + base + `,"recording":{"name":"r","state":"recording"}}`,
			want: &RecordingStarted{EventBase: eb("RecordingStarted"), Recording: LiveRecording{Name: "r", State: "recording"}},
		},
		{
			name: "ApplicationReplaced",
			in:   `{"type":"ApplicationReplaced",` + base + `}`,
			want: &ApplicationReplaced{EventBase: eb("ApplicationReplaced")},
		},
		{
			name: "unknown type",
			in:   `{"type":"CallBroadcast",` + base + `,"caller":"13800000001"}`,
			want: &Unknown{EventBase: eb("CallBroadcast"), Raw: json.RawMessage(`{"type":"CallBroadcast",` + base + `,"caller":"13800000001"}`)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeEvent([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestDecodeEventErrors(t *testing.T) {
	for _, in := range []string{
		``,
		`not json`,
		`{"application":"privnum"}`,
		`{"type":"ChannelDestroyed","cause":"busy"}`,
		`{"type":"StasisStart","timestamp":"yesterday"}`,
		`["StasisStart"]`,
	} {
		if ev, err := DecodeEvent([]byte(in)); err == nil {
			t.Errorf("DecodeEvent(%q) = %+v, want error", in, ev)
		}
	}
}

// TestDecodeEventOnePass checks that the one-pass decoder gives what
// decoding the envelope first gives, on every traced event and on inputs
// the type scan must not misread.
func TestDecodeEventOnePass(t *testing.T) {
	const base = `"application":"privnum","timestamp":"2026-11-23T05:57:53.962+0000","asterisk_id":"02:fc:00:00:00:01"`
	ins := []string{
		`{"type":"StasisStart",` + base + `,"args":[],"channel":{"id":"c"}}`,
		` { "type" : "StasisEnd" ,` + base + `,"channel":{"id":"c"}}`,
		`{` + base + `,"channel":{"id":"c","name":"x\"},{[","channelvars":{"a":"}"}},"args":["type"],"n":-1.5e3,"b":true,"z":null,"type":"StasisStart"}`,
		`{"type":"StasisStart","type":"StasisEnd",` + base + `,"channel":{"id":"c"}}`,
		`{"type":"StasisStart","Type":"ChannelDestroyed",` + base + `,"channel":{"id":"c"}}`,
		`{"TYPE":"StasisEnd",` + base + `,"channel":{"id":"c"}}`,
		`{"type":"Stasis\u0053tart",` + base + `,"channel":{"id":"c"}}`,
		`{"type":"NewThing",` + base + `,"raw":"x"}`,
		`{"type":"NewThing","type":"StasisEnd",` + base + `}`,
		`{"type":"",` + base + `}`,
		`{"type":5}`,
		`{"type":"StasisStart"`,
		`{"a":[1,2,{"b":"c"}],"type":"Dial","peer":{"id":"p"}}`,
	}
	var traced [][]byte
	if files, _ := filepath.Glob(filepath.Join(traceDir, "*.jsonl")); len(files) > 0 {
		for _, file := range files {
			for _, l := range readTrace(t, file) {
				if l.Kind == "event" {
					traced = append(traced, l.Data)
				}
			}
		}
	}
	check := func(in []byte) {
		got, gotErr := DecodeEvent(in)
		want, wantErr := decodeEventSlow(in)
		if (gotErr != nil) != (wantErr != nil) {
			t.Errorf("%s: error %v, slow path %v", in, gotErr, wantErr)
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %#v\nwant %#v", in, got, want)
		}
	}
	for _, in := range ins {
		check([]byte(in))
	}
	for _, in := range traced {
		check(in)
	}
}

// stasisStartJSON is a StasisStart as Asterisk 22 sends it.
const stasisStartJSON = `{"type":"StasisStart","timestamp":"2026-11-23T06:04:41.868+0000","args":["+8617000000000"],"channel":{"id":"1795413881.11","name":"PJSIP/trunk-in-0000000b","state":"Ring","protocol_id":"1-10330@127.0.0.2","caller":{"name":"","number":"13800000001"},"connected":{"name":"","number":""},"accountcode":"","dialplan":{"context":"privnum-inbound","exten":"17000000000","priority":1,"app_name":"Stasis","app_data":"privnum,17000000000"},"creationtime":"2026-11-23T06:04:41.867+0000","language":"en"},"asterisk_id":"02:fc:00:00:00:01","application":"privnum"}`

// BenchmarkDecodeEvent compares the one-pass decoder with decoding the
// envelope first (the decoder before issue 11).
func BenchmarkDecodeEvent(b *testing.B) {
	data := []byte(stasisStartJSON)
	for _, bb := range []struct {
		name   string
		decode func([]byte) (Event, error)
	}{{"onePass", DecodeEvent}, {"twoPass", decodeEventSlow}} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := bb.decode(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// scanEventInputs are messages at the edges of what scanEvent reads: some
// it must read, some it must leave to encoding/json (TestScanEvent,
// FuzzScanEvent).
var scanEventInputs = []struct {
	in   string
	read bool // scanEvent reads it
}{
	{stasisStartJSON, true},
	{`{"type":"StasisStart","args":[],"channel":{"id":"c","channelvars":{}}}`, true},
	{`{"type":"StasisStart","args":["a","b"],"channel":{"id":"c","channelvars":{"A":"1","A":"2"}},"replace_channel":{"id":"r"}}`, true},
	{`{"type":"StasisStart","channel":{"id":"c"},"channel":{"name":"n"}}`, true},
	{`{"type":"StasisStart","channel":{"id":"c","caller":{"name":"张三","number":"+8613800000001"}}}`, true},
	{`{"type":"StasisStart","channel":{"id":"c","tenantid":"t","new":{"a":[1,{"b":null}]}}}`, true},
	{`{"type":"StasisStart","channel":{"id":"c","ID":"d"}}`, false},
	{`{"type":"StasisStart","channel":{"id":"c","\u0069d":"d"}}`, false},
	{`{"type":"StasisStart","channel":{"id":"c\"d"}}`, false},
	{`{"type":"StasisStart","channel":{"id":"\xff"}}`, false},
	{`{"type":"StasisStart","channel":{"id":null}}`, false},
	{`{"type":"StasisStart","channel":{"id":"c","dialplan":{"priority":1.5}}}`, false},
	{`{"type":"StasisStart","channel":{"id":"c","dialplan":{"priority":-12}}}`, true},
	{`{"type":"StasisStart","channel":{"id":"c","dialplan":{"priority":012}}}`, false},
	{`{"type":"StasisStart","channel":{"id":"c","dialplan":{"priority":12345678901}}}`, false},
	{`{"type":"StasisStart","channel":{"id":"c","creationtime":""}}`, true},
	{`{"type":"StasisStart","channel":{"id":"c","creationtime":"soon"}}`, false},
	{`{"type":"StasisStart","channel":{"id":"c","unknown":[1,2}}`, false},
	{`{"type":"StasisStart","channel":{"id":"c"}} x`, false},
	{`{"type":"StasisStart","channel":{"id":"c"},}`, false},
	{`{"type":"StasisStart","ſtate":"x","channel":{"ſtate":"Up"}}`, false},
	{`{"type":"ChannelDestroyed","cause":17,"cause_txt":"User busy","tech_cause":486,"channel":{"id":"c"}}`, true},
	{`{"type":"ChannelDestroyed","cause":-0,"channel":{"id":"c"}}`, true},
	{`{"type":"ChannelDestroyed","cause":1e2,"channel":{"id":"c"}}`, false},
	{`{"type":"ChannelHangupRequest","cause":127,"soft":true,"channel":{"id":"c"}}`, true},
	{`{"type":"ChannelHangupRequest","soft":tru,"channel":{"id":"c"}}`, false},
	{`{"type":"ChannelStateChange","channel":{"id":"c","state":"Ringing"}}`, true},
	{`{"type":"StasisEnd","timestamp":"2026-11-23T06:04:41.868+0000","channel":{"id":"c"}}`, true},
}

// TestScanEvent checks that scanEvent reads the events of the recorded
// traces (the point of it: call setup does not wait for encoding/json),
// and that DecodeEvent gives what json.Unmarshal gives for every input at
// its edges, whether scanEvent read it or left it.
func TestScanEvent(t *testing.T) {
	asterisk := [][]byte{[]byte(stasisStartJSON)}
	if files, _ := filepath.Glob(filepath.Join(traceDir, "*.jsonl")); len(files) > 0 {
		for _, file := range files {
			for _, l := range readTrace(t, file) {
				if l.Kind == "event" {
					asterisk = append(asterisk, l.Data)
				}
			}
		}
	}
	read := 0
	for _, in := range asterisk {
		typ, _ := scanType(in)
		if !slices.Contains(scannedTypes, typ) {
			continue
		}
		if _, ok := scanEvent(typ, in); !ok {
			t.Errorf("scanEvent left an event as Asterisk sends it to encoding/json: %s", in)
		}
		read++
	}
	if read == 0 {
		t.Fatal("no event scanEvent reads")
	}
	// json.Unmarshal refuses a message nested deeper than 10000, counting
	// from the message: a skipped member must not hide that.
	deep := `{"type":"StasisStart","channel":{"id":"c","x":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `}}`
	if _, ok := scanEvent("StasisStart", []byte(deep)); ok {
		t.Error("scanEvent read a message nested deeper than json.Unmarshal allows")
	}
	if _, err := DecodeEvent([]byte(deep)); err == nil {
		t.Error("DecodeEvent decoded a message nested deeper than json.Unmarshal allows")
	}
	for _, tc := range scanEventInputs {
		in := tc.in
		typ, _ := scanType([]byte(in))
		_, ok := scanEvent(typ, []byte(in))
		if ok != tc.read {
			t.Errorf("scanEvent(%s) read it: %v, want %v", in, ok, tc.read)
		}
		got, gotErr := DecodeEvent([]byte(in))
		want := newEvent(typ)
		wantErr := json.Unmarshal([]byte(in), want)
		if (gotErr != nil) != (wantErr != nil) {
			t.Errorf("DecodeEvent(%s): error %v, json.Unmarshal's %v", in, gotErr, wantErr)
			continue
		}
		if gotErr == nil && !reflect.DeepEqual(got, want) {
			t.Errorf("DecodeEvent(%s):\n got %#v\nwant %#v", in, got, want)
		}
	}
}
