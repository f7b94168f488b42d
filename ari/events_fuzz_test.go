package ari

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzDecodeEvent decodes any bytes as an event message, seeded with every
// event of the recorded traces (when ../../shared is there) besides the
// committed corpus. An event decodes to its own struct (Unknown for the
// types without one, keeping the message) or to an error, never both;
// the type is never empty; and a decoded event, encoded again, decodes
// to an event that encodes the same.
func FuzzDecodeEvent(f *testing.F) {
	for _, ev := range traceEvents(f) {
		f.Add(ev)
	}
	for _, s := range []string{
		`{"type":"StasisStart","application":"privnum","timestamp":"2026-11-23T06:03:04.440+0000","args":["a"],"channel":{"id":"1.4","state":"Ring","caller":{"number":"13800000001"}}}`,
		`{"type":"ChannelDestroyed","cause":17,"cause_txt":"User busy","channel":{"id":"1.5"}}`,
		`{"type":"ChannelVarset","variable":"X","value":"1"}`,
		// No trace holds DTMF: shaped as stasis_channels.c dtmf_end_to_json writes it.
		`{"type":"ChannelDtmfReceived","timestamp":"2026-11-23T06:04:27.901+0000","digit":"#","duration_ms":120,"channel":{"id":"1795413866.10","state":"Up"},"asterisk_id":"02:fc:00:00:00:01","application":"privnum"}`,
		`{"type":"PlaybackContinuing","playback":{"id":"p","media_uri":"sound:a","next_media_uri":"sound:b","state":"continuing"}}`,
		`{"type":"Dial","dialstatus":"ANSWER","peer":{"id":"1.5"}}`,
		`{"type":"ChannelDialplan"}`,
		`{"type":""}`,
		`{"type":"StasisStart","timestamp":"2026-11-23T06:03:04.123456789Z"}`,
		`{"type":"StasisStart","timestamp":17}`,
		`[]`,
		`null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := DecodeEvent(data)
		if err != nil {
			if ev != nil {
				t.Fatalf("DecodeEvent(%q) = %#v and error %v", data, ev, err)
			}
			return
		}
		typ := ev.EventType()
		if typ == "" || ev.Base().Type != typ {
			t.Fatalf("DecodeEvent(%q): type %q, base %+v", data, typ, ev.Base())
		}
		want := newEvent(typ)
		if want == nil {
			u, ok := ev.(*Unknown)
			if !ok || !bytes.Equal(u.Raw, data) {
				t.Fatalf("DecodeEvent(%q) = %#v, want *Unknown keeping the message", data, ev)
			}
			return
		}
		if reflect.TypeOf(ev) != reflect.TypeOf(want) {
			t.Fatalf("DecodeEvent(%q) = %T, want %T", data, ev, want)
		}
		enc, err := json.Marshal(ev)
		if err != nil {
			t.Fatalf("encode %#v: %v", ev, err)
		}
		ev2, err := DecodeEvent(enc)
		if err != nil {
			t.Fatalf("DecodeEvent(%q) = %#v, which encodes to %s, which does not decode: %v", data, ev, enc, err)
		}
		enc2, err := json.Marshal(ev2)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("DecodeEvent(%q) encodes to\n%s\nwhich decodes and encodes to\n%s (%v)", data, enc, enc2, err)
		}
	})
}

// traceEvents returns the data of every event in the recorded traces, or
// none if they are not there.
func traceEvents(tb testing.TB) [][]byte {
	files, _ := filepath.Glob(filepath.Join(traceDir, "*.jsonl"))
	var out [][]byte
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			tb.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var l traceLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				tb.Fatalf("%s: %v", file, err)
			}
			if l.Kind == "event" {
				out = append(out, bytes.Clone(l.Data))
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			tb.Fatalf("%s: %v", file, err)
		}
	}
	return out
}

// scannedTypes are the event types scanEvent reads.
var scannedTypes = []string{"StasisStart", "StasisEnd", "ChannelStateChange", "ChannelDestroyed", "ChannelHangupRequest"}

// FuzzScanEvent checks scanEvent against encoding/json: whatever message
// it reads, as any of the types it reads, json.Unmarshal decodes without
// error into the same struct.
func FuzzScanEvent(f *testing.F) {
	for _, ev := range traceEvents(f) {
		f.Add(ev)
	}
	for _, tc := range scanEventInputs {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, typ := range scannedTypes {
			got, ok := scanEvent(typ, data)
			if !ok {
				continue
			}
			want := newEvent(typ)
			if err := json.Unmarshal(data, want); err != nil {
				t.Fatalf("scanEvent(%s, %q) = %#v, but json.Unmarshal fails: %v", typ, data, got, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("scanEvent(%s, %q):\n got %#v\nwant %#v", typ, data, got, want)
			}
		}
	})
}
