package arisim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/privnum/privnum/ari/arisim"
)

const (
	numA       = "13800000001" // the real caller
	numB       = "13900000002" // the real callee
	numVirtual = "17000000000" // the privacy number
	wait       = 5 * time.Second
)

// fixture is a simulator with a connected application.
type fixture struct {
	t    *testing.T
	sim  *arisim.Sim
	rest *restClient
	ws   *wsClient
}

func newFixture(t *testing.T, opts arisim.Options) *fixture {
	t.Helper()
	if opts.TimeScale == 0 {
		opts.TimeScale = 0.01
	}
	sim := newSim(t, opts)
	return &fixture{t: t, sim: sim, rest: newREST(t, sim), ws: dialWS(t, sim, testApp)}
}

// inbound places a call from A and waits for its StasisStart.
func (f *fixture) inbound(from string) string {
	f.t.Helper()
	id, err := f.sim.InboundCall(ctxTimeout(f.t, wait), from, numVirtual)
	if err != nil {
		f.t.Fatalf("inbound call: %v", err)
	}
	f.ws.waitType("StasisStart", id, wait)
	return id
}

// originateAnswered originates a leg to number showing callerID and waits
// until it answered and entered Stasis.
func (f *fixture) originateAnswered(number, callerID, id string) string {
	f.t.Helper()
	f.rest.must(200, "POST", "/channels", q("endpoint", "PJSIP/"+number+"@carrier", "app", testApp,
		"appArgs", "outbound", "callerId", callerID, "channelId", id, "timeout", "30"), nil)
	f.ws.waitType("StasisStart", id, wait)
	return id
}

// TestIdentityOracle: what each real party is sent depending on how the
// application sets the call up. B must never be sent A's number, and the
// simulator must show it when an application gets it wrong.
func TestIdentityOracle(t *testing.T) {
	cases := []struct {
		name  string
		setup func(f *fixture) (a, b string)
		seenB []string // numbers B was sent
		seenA []string // numbers A was sent
	}{
		{
			name: "two-party bridge exchanges identities: A leaks to B",
			setup: func(f *fixture) (string, string) {
				a := f.inbound(numA)
				b := f.originateAnswered(numB, numVirtual, "out-1")
				f.rest.must(204, "POST", "/channels/"+a+"/answer", nil, nil)
				f.rest.must(200, "POST", "/bridges", q("type", "mixing", "bridgeId", "br-1"), nil)
				f.rest.must(204, "POST", "/bridges/br-1/addChannel", q("channel", a+","+b), nil)
				f.ws.waitType("ChannelConnectedLine", b, wait)
				return a, b
			},
			seenB: []string{numVirtual, numA},
			seenA: []string{numVirtual},
		},
		{
			name: "inhibitConnectedLineUpdates on both joins",
			setup: func(f *fixture) (string, string) {
				a := f.inbound(numA)
				b := f.originateAnswered(numB, numVirtual, "out-1")
				f.rest.must(204, "POST", "/channels/"+a+"/answer", nil, nil)
				f.rest.must(200, "POST", "/bridges", q("bridgeId", "br-1"), nil)
				f.rest.must(204, "POST", "/bridges/br-1/addChannel",
					q("channel", a+","+b, "inhibitConnectedLineUpdates", "true"), nil)
				f.ws.waitType("ChannelEnteredBridge", b, wait)
				return a, b
			},
			seenB: []string{numVirtual},
			seenA: nil,
		},
		{
			name: "inhibit on the join that completes the two-party bridge is enough",
			setup: func(f *fixture) (string, string) {
				a := f.inbound(numA)
				b := f.originateAnswered(numB, numVirtual, "out-1")
				f.rest.must(204, "POST", "/channels/"+a+"/answer", nil, nil)
				f.rest.must(200, "POST", "/bridges", q("bridgeId", "br-1"), nil)
				f.rest.must(204, "POST", "/bridges/br-1/addChannel", q("channel", a), nil)
				f.rest.must(204, "POST", "/bridges/br-1/addChannel", q("channel", b, "inhibitConnectedLineUpdates", "true"), nil)
				f.ws.waitType("ChannelEnteredBridge", b, wait)
				return a, b
			},
			seenB: []string{numVirtual},
		},
		{
			name: "inhibit only on the first join does not stop the exchange",
			setup: func(f *fixture) (string, string) {
				a := f.inbound(numA)
				b := f.originateAnswered(numB, numVirtual, "out-1")
				f.rest.must(204, "POST", "/channels/"+a+"/answer", nil, nil)
				f.rest.must(200, "POST", "/bridges", q("bridgeId", "br-1"), nil)
				f.rest.must(204, "POST", "/bridges/br-1/addChannel", q("channel", a, "inhibitConnectedLineUpdates", "true"), nil)
				f.rest.must(204, "POST", "/bridges/br-1/addChannel", q("channel", b), nil)
				f.ws.waitType("ChannelConnectedLine", b, wait)
				return a, b
			},
			seenB: []string{numVirtual, numA},
			seenA: []string{numVirtual},
		},
		{
			name: "dial with caller= copies A's number into B's From",
			setup: func(f *fixture) (string, string) {
				a := f.inbound(numA)
				f.rest.must(200, "POST", "/channels/create", q("endpoint", "PJSIP/"+numB+"@carrier", "app", testApp,
					"channelId", "out-1", "originator", a), nil)
				f.rest.must(204, "POST", "/channels/out-1/variable", q("variable", "CALLERID(num)", "value", numVirtual), nil)
				f.rest.must(204, "POST", "/channels/out-1/dial", q("caller", a, "timeout", "30"), nil)
				f.ws.waitType("Dial", "out-1", wait)
				return a, "out-1"
			},
			seenB: []string{numA},
		},
		{
			name: "create with variables and dial without caller",
			setup: func(f *fixture) (string, string) {
				a := f.inbound(numA)
				body := map[string]any{"variables": map[string]string{
					"CALLERID(num)": numVirtual, "CONNECTEDLINE(num,i)": numVirtual,
				}}
				f.rest.must(200, "POST", "/channels/create", q("endpoint", "PJSIP/"+numB+"@carrier", "app", testApp,
					"channelId", "out-1", "originator", a), body)
				f.rest.must(204, "POST", "/channels/out-1/dial", q("timeout", "30"), nil)
				f.ws.waitType("Dial", "out-1", wait)
				return a, "out-1"
			},
			seenB: []string{numVirtual},
		},
		{
			name: "CONNECTEDLINE set on an answered leg is sent, with option i it is not",
			setup: func(f *fixture) (string, string) {
				a := f.inbound(numA)
				b := f.originateAnswered(numB, numVirtual, "out-1")
				f.rest.must(204, "POST", "/channels/"+b+"/variable", q("variable", "CONNECTEDLINE(num,i)", "value", "10000000001"), nil)
				f.rest.must(204, "POST", "/channels/"+b+"/variable", q("variable", "CONNECTEDLINE(num)", "value", "10000000002"), nil)
				f.ws.waitType("ChannelConnectedLine", b, wait)
				return a, b
			},
			seenB: []string{numVirtual, "10000000002"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, arisim.Options{DefaultBehavior: ptr(arisim.Answer(100 * time.Millisecond))})
			a, b := tc.setup(f)
			if got := f.sim.IdentitiesSeenBy(numB); !slices.Equal(got, tc.seenB) {
				t.Errorf("B was sent %v, want %v", got, tc.seenB)
			}
			if got := f.sim.IdentitiesSeen(b); !slices.Equal(got, tc.seenB) {
				t.Errorf("B's leg was sent %v, want %v", got, tc.seenB)
			}
			if got := f.sim.IdentitiesSeenBy(numA); !slices.Equal(got, tc.seenA) {
				t.Errorf("A was sent %v, want %v", got, tc.seenA)
			}
			// The oracle survives the channels.
			f.rest.must(204, "DELETE", "/channels/"+a, nil, nil)
			f.rest.must(204, "DELETE", "/channels/"+b, nil, nil)
			if _, err := f.sim.WaitChannelDestroyed(ctxTimeout(t, wait), b); err != nil {
				t.Fatal(err)
			}
			if got := f.sim.IdentitiesSeenBy(numB); !slices.Equal(got, tc.seenB) {
				t.Errorf("after hangup B was sent %v, want %v", got, tc.seenB)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestInboundWithoutWebSocket: Stasis() fails at once without a WebSocket;
// channels already in Stasis survive a drop.
func TestInboundWithoutWebSocket(t *testing.T) {
	t.Parallel()
	sim := newSim(t, arisim.Options{})
	id, err := sim.InboundCall(ctxTimeout(t, wait), numA, numVirtual)
	if !isNoApp(err) {
		t.Fatalf("InboundCall without WebSocket: %v, want ErrNoApplication", err)
	}
	ci, ok := sim.Channel(id)
	if !ok || !ci.Destroyed || ci.StasisStatus != "FAILED" || ci.HangupCause != arisim.CauseCongestion ||
		ci.SIPResponse != 503 || ci.HangupBy != arisim.HangupBySystem {
		t.Errorf("failed call: %+v", ci)
	}
	rest := newREST(t, sim)
	rest.must(404, "GET", "/applications/"+testApp, nil, nil)

	ws := dialWS(t, sim, testApp)
	live, err := sim.InboundCall(ctxTimeout(t, wait), numA, numVirtual)
	if err != nil {
		t.Fatalf("InboundCall with WebSocket: %v", err)
	}
	ws.waitType("StasisStart", live, wait)

	sim.DropConnections()
	if sim.Connected(testApp) {
		t.Fatal("still connected after DropConnections")
	}
	if _, err := sim.InboundCall(ctxTimeout(t, wait), numA, numVirtual); !isNoApp(err) {
		t.Fatalf("InboundCall after drop: %v", err)
	}
	if ci, _ := sim.Channel(live); ci.Destroyed || ci.App != testApp {
		t.Errorf("channel in Stasis after the drop: %+v", ci)
	}
	// Events of channels still in the application are dropped meanwhile.
	if err := sim.HangupFromPeer(live, arisim.CauseNormal); err != nil {
		t.Fatal(err)
	}
	ws2 := dialWS(t, sim, testApp)
	third, err := sim.InboundCall(ctxTimeout(t, wait), numA, numVirtual)
	if err != nil {
		t.Fatal(err)
	}
	ws2.waitType("StasisStart", third, wait)
	if got := ws2.types(live); len(got) != 0 {
		t.Errorf("events of the drop period replayed: %v", got)
	}
	if st := sim.Stats(); st.FailedInbound != 2 || st.EventsDropped == 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestDropConnections: a server-side drop closes the client's WebSocket;
// the bridged call goes on and a new connection receives its events.
func TestDropConnections(t *testing.T) {
	t.Parallel()
	f := newFixture(t, arisim.Options{DefaultBehavior: ptr(arisim.Answer(0))})
	a := f.inbound(numA)
	b := f.originateAnswered(numB, numVirtual, "out-1")
	f.rest.must(200, "POST", "/bridges", q("bridgeId", "br-1"), nil)
	f.rest.must(204, "POST", "/bridges/br-1/addChannel", q("channel", a+","+b), nil)
	f.ws.waitType("ChannelEnteredBridge", b, wait)

	f.sim.DropConnections()
	select {
	case <-f.ws.done:
	case <-time.After(wait):
		t.Fatal("client WebSocket not closed by DropConnections")
	}
	if br, ok := f.sim.Bridge("br-1"); !ok || len(br.Channels) != 2 {
		t.Fatalf("bridge after drop: %+v", br)
	}
	ws2 := dialWS(t, f.sim, testApp)
	if err := f.sim.HangupFromPeer(a, 0); err != nil {
		t.Fatal(err)
	}
	ws2.waitType("ChannelHangupRequest", a, wait)
	ws2.waitType("ChannelLeftBridge", a, wait)
	ws2.waitType("StasisEnd", a, wait)
	// Hanging up a bridged channel does not hang up the other one.
	if ci, _ := f.sim.Channel(b); ci.Destroyed || ci.BridgeID != "br-1" {
		t.Errorf("other leg: %+v", ci)
	}
}

// TestOutboundOutcomes covers behaviors beyond the traces.
func TestOutboundOutcomes(t *testing.T) {
	type want struct {
		events []string // event types about the leg, ChannelVarset left out
		cause  int
		tech   float64 // ChannelDestroyed tech_cause, 0 = absent
		by     arisim.HangupParty
	}
	cases := []struct {
		name     string
		behavior arisim.Behavior
		create   bool   // create + dial instead of originate
		timeout  string // "" = omitted
		act      func(f *fixture, leg string)
		want     want
	}{
		{name: "originate congestion", behavior: arisim.Fail(34),
			want: want{[]string{"Dial", "ChannelHangupRequest", "Dial", "ChannelDestroyed"}, 34, 503, arisim.HangupByPeer}},
		{name: "originate rings then busy", behavior: arisim.RingThenBusy(time.Second),
			want: want{[]string{"Dial", "ChannelStateChange", "Dial", "ChannelHangupRequest", "Dial", "ChannelDestroyed"}, 17, 486, arisim.HangupByPeer}},
		{name: "create+dial congestion", behavior: arisim.Fail(34), create: true,
			want: want{[]string{"ChannelDialplan", "StasisStart", "Dial", "ChannelHangupRequest", "StasisEnd", "ChannelDestroyed"}, 34, 503, arisim.HangupByPeer}},
		{name: "originate timeout omitted is 30 s", behavior: arisim.NoAnswer(),
			want: want{[]string{"Dial", "ChannelStateChange", "Dial", "ChannelDestroyed"}, 19, 480, arisim.HangupByTimeout}},
		{name: "callee answers then hangs up", behavior: arisim.Behavior{Outcome: arisim.OutcomeAnswer, HangupAfter: time.Second},
			want: want{[]string{"Dial", "ChannelStateChange", "Dial", "ChannelStateChange", "Dial", "StasisStart",
				"ChannelHangupRequest", "StasisEnd", "ChannelDestroyed"}, 16, 0, arisim.HangupByPeer}},
		{name: "test answers a ringing leg", behavior: arisim.NoAnswer(), timeout: "-1",
			act: func(f *fixture, leg string) {
				f.ws.waitType("Dial", leg, wait)
				if err := f.sim.AnswerFromPeer(leg); err != nil {
					f.t.Fatal(err)
				}
				f.ws.waitType("StasisStart", leg, wait)
				f.rest.must(204, "DELETE", "/channels/"+leg, q("reason", "normal"), nil)
			},
			want: want{[]string{"Dial", "ChannelStateChange", "Dial", "ChannelStateChange", "Dial", "StasisStart",
				"ChannelHangupRequest", "StasisEnd", "ChannelDestroyed"}, 16, 0, arisim.HangupByApp}},
		{name: "ringing leg rejected by the peer", behavior: arisim.NoAnswer(), create: true,
			act: func(f *fixture, leg string) {
				f.ws.waitType("Dial", leg, wait)
				f.ws.waitType("Dial", leg, wait)
				if err := f.sim.HangupFromPeer(leg, arisim.CauseCallRejected); err != nil {
					f.t.Fatal(err)
				}
			},
			want: want{[]string{"ChannelDialplan", "StasisStart", "Dial", "ChannelStateChange", "Dial",
				"ChannelHangupRequest", "StasisEnd", "ChannelDestroyed"}, 21, 603, arisim.HangupByPeer}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, arisim.Options{TimeScale: 0.002})
			f.sim.SetEndpoint("139*", tc.behavior)
			leg := "leg-1"
			query := q("endpoint", "PJSIP/"+numB+"@carrier", "app", testApp, "channelId", leg)
			if tc.timeout != "" && !tc.create {
				query.Set("timeout", tc.timeout)
			}
			if tc.create {
				f.rest.must(200, "POST", "/channels/create", query, nil)
				dq := url.Values{}
				if tc.timeout != "" {
					dq.Set("timeout", tc.timeout)
				}
				f.rest.must(204, "POST", "/channels/"+leg+"/dial", dq, nil)
			} else {
				f.rest.must(200, "POST", "/channels", query, nil)
			}
			if tc.act != nil {
				tc.act(f, leg)
			}
			ev := f.ws.waitType("ChannelDestroyed", leg, wait)
			if got := f.ws.types(leg); !slices.Equal(got, tc.want.events) {
				t.Errorf("events %v, want %v", got, tc.want.events)
			}
			if ev.Data["cause"] != float64(tc.want.cause) || ev.Data["cause_txt"] != arisim.CauseText(tc.want.cause) {
				t.Errorf("ChannelDestroyed cause %v %v, want %d", ev.Data["cause"], ev.Data["cause_txt"], tc.want.cause)
			}
			if tech, _ := ev.Data["tech_cause"].(float64); tech != tc.want.tech {
				t.Errorf("tech_cause %v, want %v", tech, tc.want.tech)
			}
			if ci, _ := f.sim.Channel(leg); ci.HangupBy != tc.want.by {
				t.Errorf("hung up by %q, want %q", ci.HangupBy, tc.want.by)
			}
		})
	}
}

// TestTimeouts: originate's -1 and create+dial's default 0 ring forever.
func TestTimeouts(t *testing.T) {
	t.Parallel()
	f := newFixture(t, arisim.Options{TimeScale: 0.001, DefaultBehavior: ptr(arisim.NoAnswer())})
	f.rest.must(200, "POST", "/channels", q("endpoint", "PJSIP/1@carrier", "app", testApp, "channelId", "o", "timeout", "-1"), nil)
	f.rest.must(200, "POST", "/channels/create", q("endpoint", "PJSIP/2@carrier", "app", testApp, "channelId", "c"), nil)
	f.rest.must(204, "POST", "/channels/c/dial", nil, nil)
	f.ws.waitType("Dial", "o", wait)
	f.ws.waitType("Dial", "c", wait)
	time.Sleep(150 * time.Millisecond) // 150 s simulated: past the 30 s default
	for _, id := range []string{"o", "c"} {
		if ci, _ := f.sim.Channel(id); ci.Destroyed || ci.State != "Ringing" {
			t.Errorf("%s: %+v, want still ringing", id, ci)
		}
	}
}

// TestHangupReasons: DELETE reasons, the cause they set and the final
// response an unanswered caller gets.
func TestHangupReasons(t *testing.T) {
	t.Parallel()
	f := newFixture(t, arisim.Options{})
	cases := []struct {
		query url.Values
		cause int
		sip   int
	}{
		{nil, 16, 603},
		{q("reason", "normal"), 16, 603},
		{q("reason", "busy"), 17, 486},
		{q("reason", "no_answer"), 19, 480},
		{q("reason", "congestion"), 34, 503},
		{q("reason", "unallocated"), 1, 404},
		{q("reason", "rejected"), 21, 403},
		{q("reason_code", "17"), 17, 486},
	}
	for _, tc := range cases {
		a := f.inbound(numA)
		f.rest.must(204, "DELETE", "/channels/"+a, tc.query, nil)
		ci, _ := f.sim.Channel(a)
		if !ci.Destroyed || ci.HangupCause != tc.cause || ci.SIPResponse != tc.sip || ci.HangupBy != arisim.HangupByApp {
			t.Errorf("DELETE %v: %+v, want cause %d, SIP %d", tc.query, ci, tc.cause, tc.sip)
		}
		f.rest.must(404, "DELETE", "/channels/"+a, nil, nil)
	}
}

// TestRESTErrors checks statuses and bodies not in the rest-errors trace.
func TestRESTErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t, arisim.Options{TimeScale: 1, DefaultBehavior: ptr(arisim.NoAnswer())})
	a := f.inbound(numA)
	f.rest.must(200, "POST", "/channels", q("endpoint", "PJSIP/"+numB+"@carrier", "app", testApp, "channelId", "ringing"), nil)
	f.rest.must(200, "POST", "/channels/create", q("endpoint", "PJSIP/"+numB+"@carrier", "app", testApp, "channelId", "created"), nil)
	f.rest.must(200, "POST", "/bridges", q("bridgeId", "br"), nil)
	f.sim.SetEndpoint("666", arisim.AllocationFailure())

	cases := []struct {
		method, path string
		query        url.Values
		status       int
		body         string
	}{
		{"POST", "/channels/ringing/answer", nil, 409, `{"message":"Channel not in Stasis application"}`},
		{"POST", "/channels/ringing/ring", nil, 409, `{"message":"Channel not in Stasis application"}`},
		{"POST", "/channels/created/answer", nil, 412, `{"message":"Channel in invalid state"}`},
		{"POST", "/channels/created/play", q("media", "sound:hello"), 412, `{"message":"Channel in invalid state"}`},
		{"POST", "/channels/" + a + "/dial", nil, 409, `{"message":"Channel is not in the 'Down' state"}`},
		{"POST", "/channels/ringing/dial", nil, 409, `{"message":"Channel not in Stasis application"}`},
		{"POST", "/channels/nope/dial", nil, 404, `{"message":"Channel not found"}`},
		{"POST", "/channels", q("endpoint", "PJSIP/1@carrier", "app", testApp, "channelId", a), 409, `{"message":"Channel with given unique ID already exists"}`},
		{"POST", "/channels/" + a, q("endpoint", "PJSIP/1@carrier", "app", testApp), 409, `{"message":"Channel with given unique ID already exists"}`},
		{"POST", "/channels/create", q("endpoint", "PJSIP/1@carrier", "app", testApp, "channelId", a), 409, `{"message":"Channel with given unique ID already exists"}`},
		{"POST", "/channels", q("endpoint", "PJSIP/666@carrier", "app", testApp), 500, `{"error":"Allocation failed"}`},
		{"POST", "/channels/create", q("endpoint", "PJSIP/1@elsewhere", "app", testApp), 500, `{"error":"Allocation failed"}`},
		{"POST", "/channels/create", q("app", testApp), 400, `{"message":"Endpoint must be specified"}`},
		{"POST", "/channels", q("endpoint", "PJSIP", "app", testApp), 400, `{"message":"Invalid endpoint specified"}`},
		{"POST", "/channels", q("endpoint", "PJSIP/1@carrier"), 400, `{"message":"Application or extension must be specified"}`},
		{"POST", "/channels", q("endpoint", "PJSIP/1@carrier", "app", testApp, "originator", "nope"), 400, `{"message":"Provided originator channel was not found"}`},
		{"DELETE", "/channels/" + a, q("reason", "busy", "reason_code", "17"), 400, `{"message":"The reason and reason_code can't both be specified"}`},
		{"DELETE", "/channels/" + a, q("reason", "bogus"), 400, `{"message":"Invalid reason for hangup reason provided"}`},
		{"DELETE", "/channels/" + a, q("reason_code", "x"), 400, `{"message":"Invalid reason for hangup reason code provided"}`},
		{"GET", "/channels/" + a + "/variable", nil, 400, `{"message":"Variable name is required"}`},
		{"GET", "/channels/" + a + "/variable", q("variable", "NOPE"), 404, `{"message":"Provided variable was not found"}`},
		{"GET", "/channels/nope/variable", q("variable", "X"), 404, `{"message":"Provided channel was not found"}`},
		{"POST", "/channels/ringing/variable", q("variable", "X", "value", "1"), 409, `{"message":"Channel not in Stasis application"}`},
		{"POST", "/bridges/br/addChannel", nil, 400, `{"message":"Missing parameter channel"}`},
		{"POST", "/bridges/br/addChannel", q("channel", "ringing"), 422, `{"message":"Channel not in Stasis application"}`},
		{"POST", "/bridges/br/removeChannel", q("channel", a), 422, `{"message":"Channel not in this bridge"}`},
		{"POST", "/bridges/br", nil, 409, `{"message":"Bridge with the same bridgeId already exists"}`},
		{"POST", "/bridges", q("type", "bogus"), 400, `{"message":"Invalid bridge type"}`},
		{"POST", "/bridges/nope/play", q("media", "sound:x"), 404, `{"message":"Bridge not found"}`},
		{"POST", "/bridges/nope/record", q("name", "r", "format", "wav"), 404, `{"message":"Bridge not found"}`},
		{"POST", "/bridges/br/record", q("name", "r", "format", "mp9"), 422, `{"message":"specified format is unknown on this system"}`},
		{"GET", "/playbacks/nope", nil, 404, `{"message":"Playback not found"}`},
		{"DELETE", "/playbacks/nope", nil, 404, `{"message":"Playback not found"}`},
		{"GET", "/recordings/live/nope", nil, 404, `{"message":"Recording not found"}`},
		{"POST", "/recordings/live/nope/stop", nil, 404, `{"message":"Recording not found"}`},
		{"GET", "/applications/nope", nil, 404, `{"message":"Application not found"}`},
		{"GET", "/no/such/resource", nil, 404, `{"message":"Resource not found"}`},
	}
	for _, tc := range cases {
		st, body, err := f.rest.do(tc.method, tc.path, tc.query, nil)
		if err != nil {
			t.Fatal(err)
		}
		if st != tc.status || !jsonEqual(body, tc.body) {
			t.Errorf("%s %s?%s: %d %s, want %d %s", tc.method, tc.path, tc.query.Encode(), st, body, tc.status, tc.body)
		}
	}
	// Channel recording on a bridged channel is refused: record the bridge.
	f.rest.must(204, "POST", "/channels/"+a+"/answer", nil, nil)
	f.rest.must(204, "POST", "/bridges/br/addChannel", q("channel", a), nil)
	st, body, _ := f.rest.do("POST", "/channels/"+a+"/record", q("name", "r1", "format", "wav"), nil)
	if st != 409 {
		t.Errorf("record bridged channel: %d %s, want 409", st, body)
	}
}

func jsonEqual(a []byte, b string) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	return fmt.Sprint(x) == fmt.Sprint(y)
}

// TestAuth: Basic auth and api_key are accepted, anything else is 401.
func TestAuth(t *testing.T) {
	t.Parallel()
	sim := newSim(t, arisim.Options{})
	base := sim.URL() + "/ari/asterisk/info"
	cases := []struct {
		name   string
		url    string
		user   string
		pass   string
		status int
	}{
		{"basic", base, testUser, testPass, 200},
		{"api_key", base + "?api_key=" + testUser + ":" + testPass, "", "", 200},
		{"none", base, "", "", 401},
		{"wrong password", base, testUser, "nope", 401},
		{"wrong api_key", base + "?api_key=" + testUser + ":nope", "", "", 401},
		{"events without credentials", sim.URL() + "/ari/events?app=x", "", "", 401},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest("GET", tc.url, nil)
		if tc.user != "" {
			req.SetBasicAuth(tc.user, tc.pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.status)
		}
	}
	u := strings.Replace(sim.URL(), "http", "ws", 1) + "/ari/events?app=x&api_key=" + testUser + ":nope"
	if _, _, err := websocket.Dial(ctxTimeout(t, wait), u, nil); err == nil {
		t.Error("WebSocket with a wrong api_key accepted")
	}
}

// TestBodyParameters: parameters may come in a JSON body, variables only
// there.
func TestBodyParameters(t *testing.T) {
	t.Parallel()
	f := newFixture(t, arisim.Options{DefaultBehavior: ptr(arisim.Answer(0))})
	a := f.inbound(numA)
	f.rest.must(200, "POST", "/channels", nil, map[string]any{
		"endpoint": "PJSIP/" + numB + "@carrier", "app": testApp, "appArgs": "outbound," + a,
		"callerId": `"Privnum" <` + numVirtual + `>`, "channelId": "out-1", "timeout": 30,
		"variables": map[string]string{"PRIVNUM_CALL": "c-1"},
	})
	ev := f.ws.waitType("StasisStart", "out-1", wait)
	if got := anyStrings(ev.Data["args"]); !slices.Equal(got, []string{"outbound", a}) {
		t.Errorf("args %v", got)
	}
	ch := ev.Data["channel"].(map[string]any)
	if c := ch["caller"].(map[string]any); c["number"] != numVirtual || c["name"] != "Privnum" {
		t.Errorf("caller %v", c)
	}
	got := f.rest.must(200, "GET", "/channels/out-1/variable", q("variable", "PRIVNUM_CALL"), nil)
	if got["value"] != "c-1" {
		t.Errorf("variable %v", got)
	}
	f.rest.must(204, "POST", "/channels/"+a+"/answer", nil, nil)
	f.rest.must(200, "POST", "/bridges", nil, map[string]any{"type": "mixing", "bridgeId": "br-1"})
	f.rest.must(204, "POST", "/bridges/br-1/addChannel", nil, map[string]any{
		"channel": []string{a, "out-1"}, "inhibitConnectedLineUpdates": true,
	})
	br, _ := f.sim.Bridge("br-1")
	if !slices.Equal(br.Channels, []string{a, "out-1"}) || br.Technology != "native_rtp" {
		t.Errorf("bridge %+v", br)
	}
	if seen := f.sim.IdentitiesSeenBy(numB); !slices.Equal(seen, []string{numVirtual}) {
		t.Errorf("B was sent %v", seen)
	}
	app := f.rest.must(200, "GET", "/applications/"+testApp, nil, nil)
	if ids := anyStrings(app["channel_ids"]); !slices.Equal(ids, []string{a, "out-1"}) {
		t.Errorf("channel_ids %v", ids)
	}
	if ids := anyStrings(app["bridge_ids"]); !slices.Equal(ids, []string{"br-1"}) {
		t.Errorf("bridge_ids %v", ids)
	}
}

// TestMedia: play before answer is early media, tones play until stopped,
// playbacks queue, bridge recording start/stop.
func TestMedia(t *testing.T) {
	t.Parallel()
	f := newFixture(t, arisim.Options{TimeScale: 1, PlaybackDuration: 20 * time.Millisecond,
		DefaultBehavior: ptr(arisim.Answer(0))})
	a := f.inbound(numA)
	pb := f.rest.must(201, "POST", "/channels/"+a+"/play/ringback", q("media", "tone:ring"), nil)
	if pb["state"] != "queued" || pb["target_uri"] != "channel:"+a {
		t.Errorf("playback %v", pb)
	}
	f.rest.must(201, "POST", "/channels/"+a+"/play", q("media", "sound:hello", "playbackId", "hello"), nil)
	f.ws.waitType("PlaybackStarted", "ringback", wait)
	ci, _ := f.sim.Channel(a)
	if ci.State != "Ring" || !ci.EarlyMedia || ci.Answered {
		t.Errorf("caller after play: %+v, want unanswered with early media", ci)
	}
	time.Sleep(60 * time.Millisecond)
	if p, _ := f.sim.Playback("hello"); p.State != "queued" {
		t.Errorf("second playback %+v, want queued behind the tone", p)
	}
	f.rest.must(204, "DELETE", "/playbacks/ringback", nil, nil)
	f.ws.waitType("PlaybackFinished", "ringback", wait)
	f.ws.waitType("PlaybackStarted", "hello", wait)
	f.ws.waitType("PlaybackFinished", "hello", wait)

	b := f.originateAnswered(numB, numVirtual, "out-1")
	f.rest.must(204, "POST", "/channels/"+a+"/answer", nil, nil)
	f.rest.must(200, "POST", "/bridges", q("bridgeId", "br-1"), nil)
	f.rest.must(204, "POST", "/bridges/br-1/addChannel", q("channel", a+","+b, "inhibitConnectedLineUpdates", "true"), nil)
	rec := f.rest.must(201, "POST", "/bridges/br-1/record", q("name", "call-1", "format", "wav"), nil)
	if rec["state"] != "queued" || rec["target_uri"] != "bridge:br-1" {
		t.Errorf("recording %v", rec)
	}
	f.ws.waitType("RecordingStarted", "call-1", wait)
	if br, _ := f.sim.Bridge("br-1"); br.Technology != "softmix" {
		t.Errorf("technology while recording %q", br.Technology)
	}
	if live := f.rest.must(200, "GET", "/recordings/live/call-1", nil, nil); live["state"] != "recording" {
		t.Errorf("live recording %v", live)
	}
	f.rest.must(409, "POST", "/bridges/br-1/record", q("name", "call-1", "format", "wav"), nil)
	f.rest.must(204, "POST", "/recordings/live/call-1/stop", nil, nil)
	ev := f.ws.waitType("RecordingFinished", "call-1", wait)
	if ev.Data["recording"].(map[string]any)["state"] != "done" {
		t.Errorf("RecordingFinished %v", ev.Data)
	}
	f.rest.must(404, "GET", "/recordings/live/call-1", nil, nil)
	if r, ok := f.sim.Recording("call-1"); !ok || r.State != "done" {
		t.Errorf("finished recording %+v", r)
	}
	// A canceled recording leaves no file.
	f.rest.must(201, "POST", "/bridges/br-1/record", q("name", "call-1c", "format", "gsm"), nil)
	f.ws.waitType("RecordingStarted", "call-1c", wait)
	f.rest.must(204, "DELETE", "/recordings/live/call-1c", nil, nil)
	f.ws.waitType("RecordingFinished", "call-1c", wait)
	// A bridge deleted while recording ends the recording.
	f.rest.must(201, "POST", "/bridges/br-1/record", q("name", "call-1b", "format", "gsm"), nil)
	f.ws.waitType("RecordingStarted", "call-1b", wait)
	f.rest.must(204, "DELETE", "/bridges/br-1", nil, nil)
	f.ws.waitType("RecordingFinished", "call-1b", wait)
	f.ws.waitType("BridgeDestroyed", "br-1", wait)

	// Finished recordings are stored: listed, described, their file served
	// with Asterisk's Content-Type (audio/<extension>), deleted once.
	st, body, _ := f.rest.do("GET", "/recordings/stored", nil, nil)
	if st != 200 || string(body) != `[{"name":"call-1","format":"wav"},{"name":"call-1b","format":"gsm"}]` {
		t.Errorf("stored recordings: %d %s", st, body)
	}
	if r := f.rest.must(200, "GET", "/recordings/stored/call-1", nil, nil); r["format"] != "wav" || r["name"] != "call-1" {
		t.Errorf("stored recording %v", r)
	}
	req, _ := http.NewRequest("GET", f.sim.URL()+"/ari/recordings/stored/call-1/file", nil)
	req.SetBasicAuth(testUser, testPass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	wav, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "audio/wav" || !bytes.HasPrefix(wav, []byte("RIFF")) || string(wav[8:12]) != "WAVE" {
		t.Errorf("stored file: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), wav[:min(12, len(wav))])
	}
	f.rest.must(204, "DELETE", "/recordings/stored/call-1", nil, nil)
	for _, tt := range []struct{ method, path string }{
		{"GET", "/recordings/stored/call-1"},
		{"GET", "/recordings/stored/call-1/file"},
		{"DELETE", "/recordings/stored/call-1"},
		{"GET", "/recordings/stored/call-1c"},
	} {
		if st, body, _ := f.rest.do(tt.method, tt.path, nil, nil); st != 404 || string(body) != `{"message":"Recording not found"}` {
			t.Errorf("%s %s: %d %s, want 404", tt.method, tt.path, st, body)
		}
	}
}

// TestEarlyBridge: create B, bridge it with the unanswered caller, dial:
// the caller hears B ring and is answered when B answers.
func TestEarlyBridge(t *testing.T) {
	t.Parallel()
	f := newFixture(t, arisim.Options{DefaultBehavior: ptr(arisim.Answer(time.Second))})
	a := f.inbound(numA)
	f.rest.must(200, "POST", "/channels/create", nil, map[string]any{
		"endpoint": "PJSIP/" + numB + "@carrier", "app": testApp, "channelId": "out-1", "originator": a,
		"variables": map[string]string{"CALLERID(num)": numVirtual, "CONNECTEDLINE(num,i)": numVirtual},
	})
	f.rest.must(200, "POST", "/bridges", q("bridgeId", "br-1"), nil)
	f.rest.must(204, "POST", "/bridges/br-1/addChannel", q("channel", a+",out-1", "inhibitConnectedLineUpdates", "true"), nil)
	f.rest.must(204, "POST", "/channels/out-1/dial", q("timeout", "30"), nil)
	ev := f.ws.waitType("ChannelStateChange", a, wait)
	if ev.Data["channel"].(map[string]any)["state"] != "Up" {
		t.Errorf("caller state %v", ev.Data)
	}
	ci, _ := f.sim.Channel(a)
	if !ci.Answered || !ci.Rang {
		t.Errorf("caller %+v, want rang and answered", ci)
	}
	if seen := f.sim.IdentitiesSeenBy(numB); !slices.Equal(seen, []string{numVirtual}) {
		t.Errorf("B was sent %v", seen)
	}
}

// TestControlEndpoints drives the /_sim/ endpoints cmd/arisim exposes.
func TestControlEndpoints(t *testing.T) {
	t.Parallel()
	f := newFixture(t, arisim.Options{Control: true})
	ctl := &restClient{t: t, base: f.sim.URL() + "/_sim", http: http.DefaultClient}
	ctl.must(204, "POST", "/endpoints", nil, map[string]any{"pattern": "139*", "outcome": "busy", "no_ringing": true})
	ctl.must(400, "POST", "/endpoints", nil, map[string]any{"pattern": "1", "outcome": "bogus"})
	call := ctl.must(201, "POST", "/calls", nil, map[string]any{"from": numA, "exten": numVirtual})
	id := str(call["channel_id"])
	f.ws.waitType("StasisStart", id, wait)
	f.rest.must(200, "POST", "/channels", q("endpoint", "PJSIP/"+numB+"@carrier", "app", testApp, "channelId", "o"), nil)
	if ev := f.ws.waitType("ChannelDestroyed", "o", wait); ev.Data["cause"] != float64(17) {
		t.Errorf("scripted busy: %v", ev.Data)
	}
	ctl.must(204, "POST", "/channels/"+id+"/hangup", nil, map[string]any{"cause": 127})
	ctl.must(404, "POST", "/channels/"+id+"/hangup", nil, nil)
	if ch := ctl.must(200, "GET", "/channels/"+id, nil, nil); ch["hangup_cause"] != float64(127) {
		t.Errorf("channel %v", ch)
	}
	seen := ctl.must(200, "GET", "/identities", q("number", numB), nil)
	if fmt.Sprint(seen["seen"]) != "[]" {
		t.Errorf("identities %v", seen)
	}
	ctl.must(204, "POST", "/drop", nil, nil)
	if conflict := ctl.must(409, "POST", "/calls", nil, map[string]any{"from": numA, "exten": numVirtual}); conflict["channel_id"] == "" {
		t.Errorf("no channel id in %v", conflict)
	}
}

// TestHistoryBounded: destroyed channels are dropped, a bounded history
// stays for inspection.
func TestHistoryBounded(t *testing.T) {
	t.Parallel()
	sim := newSim(t, arisim.Options{HistoryLimit: 5})
	var last string
	for range 12 {
		last, _ = sim.InboundCall(ctxTimeout(t, wait), numA, numVirtual)
	}
	if h := sim.History(); len(h) != 5 || h[4].ID != last {
		t.Errorf("history %d entries", len(h))
	}
	if n := len(sim.Channels()); n != 0 {
		t.Errorf("%d live channels", n)
	}
}

// TestConcurrentBridgedCalls holds 2,000 bridged calls at once (500 under
// the race detector, 200 with -short), driven over REST and the WebSocket
// like the load test, then tears them down and checks that nothing is left
// behind: no channel, no bridge, no goroutine.
func TestConcurrentBridgedCalls(t *testing.T) {
	n := 2000
	switch {
	case testing.Short():
		n = 200
	case raceEnabled:
		n = 500
	}
	baseline := runtime.NumGoroutine()
	sim := arisim.New(arisim.Options{Username: testUser, Password: testPass,
		DefaultBehavior: ptr(arisim.Answer(0)), NoVarsetNoise: true})
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	rest := newREST(t, sim)
	ws := dialWS(t, sim, testApp)

	start := time.Now()
	if err := parallel(n, func(i int) error { return bridgedCall(sim, rest, ws, i) }); err != nil {
		t.Fatal(err)
	}
	if got := len(sim.Bridges()); got != n {
		t.Fatalf("%d bridges, want %d", got, n)
	}
	if got := len(sim.Channels()); got != 2*n {
		t.Fatalf("%d channels, want %d", got, 2*n)
	}
	t.Logf("%d bridged calls up in %v, %d events", n, time.Since(start), ws.count())

	// Tear down: each caller hangs up, the application ends the other leg
	// and the bridge.
	bridges := sim.Bridges()
	err := parallel(len(bridges), func(i int) error {
		br := bridges[i]
		if err := sim.HangupFromPeer(br.Channels[0], 0); err != nil {
			return err
		}
		for _, path := range []string{"/channels/" + br.Channels[1], "/bridges/" + br.ID} {
			if st, b, err := rest.do("DELETE", path, nil, nil); err != nil || st != 204 {
				return fmt.Errorf("DELETE %s: %d %s %v", path, st, b, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if st := sim.Stats(); st.ActiveChannels != 0 || st.ActiveBridges != 0 {
		t.Fatalf("left behind: %+v", st)
	}
	ws.close()
	sim.Close()
	rest.http.CloseIdleConnections()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > baseline+5 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > baseline+5 {
		t.Errorf("%d goroutines left, %d before", g, baseline)
	}
}

// parallel runs fn(0..n-1) on 32 workers and returns the first error.
func parallel(n int, fn func(i int) error) error {
	work := make(chan int)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := fn(i); err != nil {
					errs <- err
				}
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	return <-errs
}

// BenchmarkBridgedCalls sets up b.N privacy calls that all stay up, and
// reports the heap they hold.
func BenchmarkBridgedCalls(b *testing.B) {
	sim := arisim.New(arisim.Options{Username: testUser, Password: testPass,
		DefaultBehavior: ptr(arisim.Answer(0)), NoVarsetNoise: true})
	if err := sim.Start(); err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	rest := newREST(b, sim)
	ws := dialWS(b, sim, testApp)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	if err := parallel(b.N, func(i int) error { return bridgedCall(sim, rest, ws, i) }); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(b.N), "heap-B/call")
	if got := len(sim.Bridges()); got != b.N {
		b.Fatalf("%d bridges, want %d", got, b.N)
	}
}

// bridgedCall sets up one privacy call: A in, B originated with the
// virtual number, both answered and bridged without identity exchange.
func bridgedCall(sim *arisim.Sim, rest *restClient, ws *wsClient, i int) error {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	a, err := sim.InboundCall(ctx, fmt.Sprintf("138%08d", i), numVirtual)
	if err != nil {
		return err
	}
	out, br := fmt.Sprintf("out-%d", i), fmt.Sprintf("br-%d", i)
	if st, b, err := rest.do("POST", "/channels", q("endpoint", fmt.Sprintf("PJSIP/139%08d@carrier", i), "app", testApp,
		"appArgs", "outbound,"+a, "callerId", numVirtual, "channelId", out), nil); err != nil || st != 200 {
		return fmt.Errorf("originate %d: %d %s %v", i, st, b, err)
	}
	if !ws.waitKey(out, "StasisStart", wait) {
		return fmt.Errorf("call %d: no StasisStart for the outbound leg", i)
	}
	for _, r := range []struct {
		path  string
		query url.Values
		want  int
	}{
		{"/channels/" + a + "/answer", nil, 204},
		{"/bridges", q("bridgeId", br), 200},
		{"/bridges/" + br + "/addChannel", q("channel", a+","+out, "inhibitConnectedLineUpdates", "true"), 204},
	} {
		if st, b, err := rest.do("POST", r.path, r.query, nil); err != nil || st != r.want {
			return fmt.Errorf("call %d %s: %d %s %v", i, r.path, st, b, err)
		}
	}
	return nil
}
