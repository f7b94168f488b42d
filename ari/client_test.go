package ari

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// request is what the fake Asterisk saw.
type request struct {
	method, path string
	query        url.Values
	body         string
	contentType  string
	user, pass   string
}

// newRESTServer starts a fake Asterisk that answers every request with
// status and resp, and reports each request on the returned channel.
func newRESTServer(t *testing.T, status int, resp string) (*Client, <-chan request) {
	t.Helper()
	seen := make(chan request, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		user, pass, _ := r.BasicAuth()
		seen <- request{r.Method, r.URL.EscapedPath(), r.URL.Query(), string(b), r.Header.Get("Content-Type"), user, pass}
		if resp != "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		io.WriteString(w, resp)
	}))
	t.Cleanup(srv.Close)
	c, err := New(Config{URL: srv.URL, Username: "user", Password: "secret", Application: "privnum"})
	if err != nil {
		t.Fatal(err)
	}
	return c, seen
}

// jsonEqual reports whether a and b hold the same JSON value.
func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}

// Response bodies recorded from Asterisk 22.10.1 (ari-traces).
const (
	originateResp = `{"id":"1795413473.1","name":"PJSIP/carrier-00000001","state":"Down","protocol_id":"c6432532-3172-44a4-9a94-038db7ba0c38","caller":{"name":"","number":"17000000000"},"connected":{"name":"","number":"17000000000"},"accountcode":"","dialplan":{"context":"from-carrier","exten":"s","priority":1,"app_name":"AppDial2","app_data":"(Outgoing Line)"},"creationtime":"2026-11-23T05:57:53.965+0000","language":"en"}`
	bridgeResp    = `{"id":"e61a6d33-72b0-41c4-8dc7-448bcac989fb","technology":"simple_bridge","bridge_type":"mixing","bridge_class":"stasis","creator":"Stasis","name":"","channels":[],"creationtime":"2026-11-23T06:04:41.877+0000","video_mode":"talker"}`
	playResp      = `{"id":"64379dc3-f2f3-4cca-bca3-5193242378e2","media_uri":"sound:ss-noservice","target_uri":"channel:1795413866.10","language":"en","state":"queued"}`
	infoResp      = `{"build":{"os":"Linux","kernel":"6.18.44-fc-v669","machine":"x86_64","options":"OPTIONAL_API","date":"2026-11-23 05:52:52 UTC","user":"root"},"system":{"version":"22.10.1","entity_id":"02:fc:00:00:00:01"},"config":{"name":"","default_language":"en","setid":{"user":"","group":""}},"status":{"startup_time":"2026-11-23T06:01:58.248+0000","last_reload_time":"2026-11-23T06:01:58.248+0000"}}`
	appResp       = `{"name":"privnum","channel_ids":["1795413738.2","1795413790.6"],"bridge_ids":[],"endpoint_ids":[],"device_names":[],"events_allowed":[],"events_disallowed":[]}`
	recordingResp = `{"name":"call-1","format":"wav","target_uri":"bridge:br-1","state":"queued"}`
)

func TestRESTRequests(t *testing.T) {
	// decoded checks that a method returned resp's content: it re-encodes
	// got and compares it with resp.
	decoded := func(t *testing.T, got any, resp string) {
		t.Helper()
		b, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		if !jsonEqual(t, b, []byte(resp)) {
			t.Errorf("decoded %s\nwant %s", b, resp)
		}
	}
	tests := []struct {
		name   string
		call   func(t *testing.T, ctx context.Context, c *Client) error
		method string
		path   string
		query  url.Values
		body   string // JSON; empty for none
		status int
		resp   string
	}{
		{
			name: "originate as in originate-answer",
			call: func(t *testing.T, ctx context.Context, c *Client) error {
				ch, err := c.Originate(ctx, OriginateRequest{
					Endpoint: "PJSIP/13900000002@carrier", CallerID: "17000000000", Timeout: 8 * time.Second,
					AppArgs: "outbound,1795413473.0", Originator: "1795413473.0",
				})
				if want := time.Date(2026, 11, 23, 5, 57, 53, 965e6, time.UTC); !ch.CreationTime.Equal(want) {
					t.Errorf("CreationTime = %v, want %v", ch.CreationTime, want)
				}
				decoded(t, ch, originateResp)
				return err
			},
			method: "POST", path: "/ari/channels",
			query: url.Values{"app": {"privnum"}, "appArgs": {"outbound,1795413473.0"}, "callerId": {"17000000000"},
				"endpoint": {"PJSIP/13900000002@carrier"}, "originator": {"1795413473.0"}, "timeout": {"8"}},
			status: 200, resp: originateResp,
		},
		{
			name: "originate with id, variables and no timeout",
			call: func(t *testing.T, ctx context.Context, c *Client) error {
				_, err := c.Originate(ctx, OriginateRequest{
					Endpoint: "PJSIP/b@carrier", ChannelID: "out-1", App: "other", Timeout: -1,
					Variables: map[string]string{"CONNECTEDLINE(num,i)": "17000000000"},
				})
				return err
			},
			method: "POST", path: "/ari/channels",
			query:  url.Values{"app": {"other"}, "channelId": {"out-1"}, "endpoint": {"PJSIP/b@carrier"}, "timeout": {"-1"}},
			body:   `{"variables":{"CONNECTEDLINE(num,i)":"17000000000"}}`,
			status: 200, resp: originateResp,
		},
		{
			name: "originate to the dialplan rounds the timeout up",
			call: func(t *testing.T, ctx context.Context, c *Client) error {
				_, err := c.Originate(ctx, OriginateRequest{
					Endpoint: "PJSIP/b@carrier", Context: "from-internal", Extension: "100", Priority: 1,
					Timeout: 1500 * time.Millisecond,
				})
				return err
			},
			method: "POST", path: "/ari/channels",
			query: url.Values{"context": {"from-internal"}, "endpoint": {"PJSIP/b@carrier"}, "extension": {"100"},
				"priority": {"1"}, "timeout": {"2"}},
			status: 200, resp: originateResp,
		},
		{
			name: "create as in createdial-answer, identity in variables",
			call: func(t *testing.T, ctx context.Context, c *Client) error {
				ch, err := c.CreateChannel(ctx, CreateRequest{
					Endpoint: "PJSIP/13900000002@carrier", AppArgs: "outbound,1795413720.0", Originator: "1795413720.0",
					Variables: map[string]string{"CALLERID(num)": "17000000000", "CONNECTEDLINE(num,i)": "17000000000"},
				})
				decoded(t, ch, originateResp)
				return err
			},
			method: "POST", path: "/ari/channels/create",
			query: url.Values{"app": {"privnum"}, "appArgs": {"outbound,1795413720.0"},
				"endpoint": {"PJSIP/13900000002@carrier"}, "originator": {"1795413720.0"}},
			body:   `{"variables":{"CALLERID(num)":"17000000000","CONNECTEDLINE(num,i)":"17000000000"}}`,
			status: 200, resp: originateResp,
		},
		{
			name: "dial sends a timeout and no caller",
			call: func(t *testing.T, ctx context.Context, c *Client) error {
				return c.Dial(ctx, "1795413720.1", 8*time.Second)
			},
			method: "POST", path: "/ari/channels/1795413720.1/dial", query: url.Values{"timeout": {"8"}}, status: 204,
		},
		{
			name:   "answer",
			call:   func(t *testing.T, ctx context.Context, c *Client) error { return c.Answer(ctx, "1795413473.0") },
			method: "POST", path: "/ari/channels/1795413473.0/answer", status: 204,
		},
		{
			name:   "ring",
			call:   func(t *testing.T, ctx context.Context, c *Client) error { return c.Ring(ctx, "1795413473.0") },
			method: "POST", path: "/ari/channels/1795413473.0/ring", status: 204,
		},
		{
			name:   "ring stop",
			call:   func(t *testing.T, ctx context.Context, c *Client) error { return c.RingStop(ctx, "1795413473.0") },
			method: "DELETE", path: "/ari/channels/1795413473.0/ring", status: 204,
		},
		{
			name:   "hangup without reason",
			call:   func(t *testing.T, ctx context.Context, c *Client) error { return c.Hangup(ctx, "1795413473.1", "") },
			method: "DELETE", path: "/ari/channels/1795413473.1", status: 204,
		},
		{
			name:   "hangup busy",
			call:   func(t *testing.T, ctx context.Context, c *Client) error { return c.Hangup(ctx, "1795413473.0", "busy") },
			method: "DELETE", path: "/ari/channels/1795413473.0", query: url.Values{"reason": {"busy"}}, status: 204,
		},
		{
			name:   "hangup code as in answer-play-hangup",
			call:   func(t *testing.T, ctx context.Context, c *Client) error { return c.HangupCode(ctx, "1795413866.10", 1) },
			method: "DELETE", path: "/ari/channels/1795413866.10", query: url.Values{"reason_code": {"1"}}, status: 204,
		},
		{
			name: "get channel",
			call: func(t *testing.T, ctx context.Context, c *Client) error {
				ch, err := c.GetChannel(ctx, "1795413473.1")
				decoded(t, ch, originateResp)
				return err
			},
			method: "GET", path: "/ari/channels/1795413473.1", status: 200, resp: originateResp,
		},
		{
			name: "list channels",
			call: func(t *testing.T, ctx context.Context, c *Client) error {
				chs, err := c.ListChannels(ctx)
				decoded(t, chs, "["+originateResp+"]")
				return err
			},
			method: "GET", path: "/ari/channels", status: 200, resp: "[" + originateResp + "]",
		},
		{
			name: "set variable as in createdial-answer",
			call: func(t *testing.T, ctx context.Context, c *Client) error {
				return c.SetVar(ctx, "1795413720.1", "CALLERID(num)", "17000000000")
			},
			method: "POST", path: "/ari/channels/1795413720.1/variable",
			query: url.Values{"variable": {"CALLERID(num)"}, "value": {"17000000000"}}, status: 204,
		},
		{
			name: "get variable",
			call: func(t *testing.T, ctx context.Context, c *Client) error {
				v, err := c.GetVar(ctx, "1795413720.1", "CALLERID(num)")
				if v != "17000000000" {
					t.Errorf("value = %q", v)
				}
				return err
			},
			method: "GET", path: "/ari/channels/1795413720.1/variable",
			query: url.Values{"variable": {"CALLERID(num)"}}, status: 200, resp: `{"value":"17000000000"}`,
		},
		{
			name: "play with id",
			call: func(t *testing.T, ctx context.Context, c *Client) error {
				p, err := c.Play(ctx, "1795413866.10", "64379dc3-f2f3-4cca-bca3-5193242378e2", "sound:ss-noservice")
				decoded(t, p, playResp)
				return err
			},
			method: "POST", path: "/ari/channels/1795413866.10/play/64379dc3-f2f3-4cca-bca3-5193242378e2",
			query: url.Values{"media": {"sound:ss-noservice"}}, status: 201, resp: playResp,
		},
		{
			name: "play to a bridge, several media",
			call: func(t *testing.T, ctx context.Context, c *Client) error {
				_, err := c.PlayBridge(ctx, "br-1", "pb-1", "sound:hello", "tone:ring")
				return err
			},
			method: "POST", path: "/ari/bridges/br-1/play/pb-1",
			query: url.Values{"media": {"sound:hello,tone:ring"}}, status: 201, resp: playResp,
		},
		{
			name: "send DTMF with Asterisk's defaults",
			call: func(t *testing.T, ctx context.Context, c *Client) error {
				return c.SendDTMF(ctx, "1795413866.10", DTMFRequest{Digits: "1234#"})
			},
			method: "POST", path: "/ari/channels/1795413866.10/dtmf", query: url.Values{"dtmf": {"1234#"}}, status: 204,
		},
		{
			name: "send DTMF with timing in milliseconds",
			call: func(t *testing.T, ctx context.Context, c *Client) error {
				return c.SendDTMF(ctx, "c", DTMFRequest{Digits: "w1*aW", Before: time.Second, Between: 50 * time.Millisecond,
					Duration: 80 * time.Millisecond, After: 1500 * time.Microsecond})
			},
			method: "POST", path: "/ari/channels/c/dtmf",
			query:  url.Values{"dtmf": {"w1*aW"}, "before": {"1000"}, "between": {"50"}, "duration": {"80"}, "after": {"1"}},
			status: 204,
		},
		{
			name:   "stop playback",
			call:   func(t *testing.T, ctx context.Context, c *Client) error { return c.StopPlayback(ctx, "pb-1") },
			method: "DELETE", path: "/ari/playbacks/pb-1", status: 204,
		},
		{
			name: "create bridge with id",
			call: func(t *testing.T, ctx context.Context, c *Client) error {
				b, err := c.CreateBridge(ctx, "e61a6d33-72b0-41c4-8dc7-448bcac989fb", "mixing", "")
				decoded(t, b, bridgeResp)
				return err
			},
			method: "POST", path: "/ari/bridges/e61a6d33-72b0-41c4-8dc7-448bcac989fb",
			query: url.Values{"type": {"mixing"}}, status: 200, resp: bridgeResp,
		},
		{
			name: "create bridge with name",
			call: func(t *testing.T, ctx context.Context, c *Client) error {
				_, err := c.CreateBridge(ctx, "br-1", "mixing,dtmf_events", "call 1")
				return err
			},
			method: "POST", path: "/ari/bridges/br-1",
			query: url.Values{"type": {"mixing,dtmf_events"}, "name": {"call 1"}}, status: 200, resp: bridgeResp,
		},
		{
			name: "add channels as in originate-answer",
			call: func(t *testing.T, ctx context.Context, c *Client) error {
				return c.AddChannel(ctx, "e61a6d33-72b0-41c4-8dc7-448bcac989fb", AddChannelOptions{}, "1795413881.11", "1795413881.12")
			},
			method: "POST", path: "/ari/bridges/e61a6d33-72b0-41c4-8dc7-448bcac989fb/addChannel",
			query: url.Values{"channel": {"1795413881.11,1795413881.12"}}, status: 204,
		},
		{
			name: "add channels inhibiting connected line updates",
			call: func(t *testing.T, ctx context.Context, c *Client) error {
				return c.AddChannel(ctx, "br-1", AddChannelOptions{InhibitConnectedLineUpdates: true, Role: "participant"}, "a", "b")
			},
			method: "POST", path: "/ari/bridges/br-1/addChannel",
			query: url.Values{"channel": {"a,b"}, "inhibitConnectedLineUpdates": {"true"}, "role": {"participant"}}, status: 204,
		},
		{
			name:   "remove channel",
			call:   func(t *testing.T, ctx context.Context, c *Client) error { return c.RemoveChannel(ctx, "br-1", "a") },
			method: "POST", path: "/ari/bridges/br-1/removeChannel", query: url.Values{"channel": {"a"}}, status: 204,
		},
		{
			name:   "destroy bridge",
			call:   func(t *testing.T, ctx context.Context, c *Client) error { return c.DestroyBridge(ctx, "br-1") },
			method: "DELETE", path: "/ari/bridges/br-1", status: 204,
		},
		{
			name: "get bridge",
			call: func(t *testing.T, ctx context.Context, c *Client) error {
				b, err := c.GetBridge(ctx, "e61a6d33-72b0-41c4-8dc7-448bcac989fb")
				decoded(t, b, bridgeResp)
				return err
			},
			method: "GET", path: "/ari/bridges/e61a6d33-72b0-41c4-8dc7-448bcac989fb", status: 200, resp: bridgeResp,
		},
		{
			name: "record bridge",
			call: func(t *testing.T, ctx context.Context, c *Client) error {
				rec, err := c.RecordBridge(ctx, "br-1", RecordRequest{
					Name: "call-1", Format: "wav", MaxDurationSeconds: 3600, IfExists: "overwrite", Beep: true, TerminateOn: "none",
				})
				decoded(t, rec, recordingResp)
				return err
			},
			method: "POST", path: "/ari/bridges/br-1/record",
			query: url.Values{"name": {"call-1"}, "format": {"wav"}, "maxDurationSeconds": {"3600"},
				"ifExists": {"overwrite"}, "beep": {"true"}, "terminateOn": {"none"}},
			status: 201, resp: recordingResp,
		},
		{
			name:   "stop recording",
			call:   func(t *testing.T, ctx context.Context, c *Client) error { return c.StopRecording(ctx, "call-1") },
			method: "POST", path: "/ari/recordings/live/call-1/stop", status: 204,
		},
		{
			name: "info",
			call: func(t *testing.T, ctx context.Context, c *Client) error {
				info, err := c.Info(ctx)
				if info.System.Version != "22.10.1" || info.Status.StartupTime.IsZero() {
					t.Errorf("info = %+v", info)
				}
				return err
			},
			method: "GET", path: "/ari/asterisk/info", status: 200, resp: infoResp,
		},
		{
			name: "application",
			call: func(t *testing.T, ctx context.Context, c *Client) error {
				app, err := c.Application(ctx, "privnum")
				if want := []string{"1795413738.2", "1795413790.6"}; !reflect.DeepEqual(app.ChannelIDs, want) || app.Name != "privnum" {
					t.Errorf("application = %+v", app)
				}
				return err
			},
			method: "GET", path: "/ari/applications/privnum", status: 200, resp: appResp,
		},
		{
			name:   "ids are escaped",
			call:   func(t *testing.T, ctx context.Context, c *Client) error { return c.Answer(ctx, "a/b c") },
			method: "POST", path: "/ari/channels/a%2Fb%20c/answer", status: 204,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, seen := newRESTServer(t, tt.status, tt.resp)
			if err := tt.call(t, t.Context(), c); err != nil {
				t.Fatalf("call: %v", err)
			}
			r := <-seen
			if r.method != tt.method || r.path != tt.path {
				t.Errorf("request %s %s, want %s %s", r.method, r.path, tt.method, tt.path)
			}
			if len(r.query) != 0 || len(tt.query) != 0 {
				if !reflect.DeepEqual(r.query, tt.query) {
					t.Errorf("query %v, want %v", r.query, tt.query)
				}
			}
			switch {
			case tt.body == "" && r.body != "":
				t.Errorf("body %s, want none", r.body)
			case tt.body != "" && !jsonEqual(t, []byte(r.body), []byte(tt.body)):
				t.Errorf("body %s, want %s", r.body, tt.body)
			case tt.body != "" && r.contentType != "application/json":
				t.Errorf("Content-Type %q", r.contentType)
			}
			if r.user != "user" || r.pass != "secret" {
				t.Errorf("basic auth %q:%q", r.user, r.pass)
			}
		})
	}
}

func TestRESTRejectsBeforeSending(t *testing.T) {
	tests := []struct {
		name string
		call func(ctx context.Context, c *Client) error
	}{
		{"dial without timeout", func(ctx context.Context, c *Client) error { return c.Dial(ctx, "x", 0) }},
		{"dial with negative timeout", func(ctx context.Context, c *Client) error { return c.Dial(ctx, "x", -time.Second) }},
		{"empty channel id", func(ctx context.Context, c *Client) error { return c.Answer(ctx, "") }},
		{"empty id at the end", func(ctx context.Context, c *Client) error { _, err := c.GetChannel(ctx, ""); return err }},
		{"empty playback id", func(ctx context.Context, c *Client) error { _, err := c.Play(ctx, "x", "", "sound:a"); return err }},
		{"DTMF without digits", func(ctx context.Context, c *Client) error { return c.SendDTMF(ctx, "x", DTMFRequest{}) }},
		{"DTMF Asterisk would skip", func(ctx context.Context, c *Client) error {
			return c.SendDTMF(ctx, "x", DTMFRequest{Digits: "12 3"})
		}},
		{"DTMF E", func(ctx context.Context, c *Client) error { return c.SendDTMF(ctx, "x", DTMFRequest{Digits: "E"}) }},
		{"DTMF negative pause", func(ctx context.Context, c *Client) error {
			return c.SendDTMF(ctx, "x", DTMFRequest{Digits: "1", Between: -time.Millisecond})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, seen := newRESTServer(t, 204, "")
			if err := tt.call(t.Context(), c); err == nil {
				t.Error("no error")
			}
			select {
			case r := <-seen:
				t.Errorf("sent %s %s", r.method, r.path)
			default:
			}
		})
	}
}

// A transport error must not repeat the URL: its query holds phone numbers.
func TestRESTTransportErrorHidesQuery(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	c, err := New(Config{URL: srv.URL, Application: "privnum"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Originate(t.Context(), OriginateRequest{Endpoint: "PJSIP/13900000002@carrier", CallerID: "17000000000"})
	if err == nil {
		t.Fatal("no error from a closed server")
	}
	if strings.Contains(err.Error(), "13900000002") || strings.Contains(err.Error(), "17000000000") {
		t.Errorf("error leaks a number: %v", err)
	}
	if !strings.Contains(err.Error(), "POST /channels") {
		t.Errorf("error %q does not name the request", err)
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
		base    string
		events  string
	}{
		{name: "http", cfg: Config{URL: "http://127.0.0.1:8088", Application: "privnum"},
			base: "http://127.0.0.1:8088/ari", events: "ws://127.0.0.1:8088/ari/events?app=privnum&subscribeAll=false"},
		{name: "https with prefix and slash", cfg: Config{URL: "https://pbx.example/asterisk/", Application: "a b"},
			base: "https://pbx.example/asterisk/ari", events: "wss://pbx.example/asterisk/ari/events?app=a+b&subscribeAll=false"},
		{name: "no scheme", cfg: Config{URL: "127.0.0.1:8088", Application: "privnum"}, wantErr: true},
		{name: "ws scheme", cfg: Config{URL: "ws://127.0.0.1:8088", Application: "privnum"}, wantErr: true},
		{name: "no application", cfg: Config{URL: "http://127.0.0.1:8088"}, wantErr: true},
		{name: "backoff max below min", cfg: Config{URL: "http://127.0.0.1:8088", Application: "privnum",
			ReconnectMin: time.Second, ReconnectMax: time.Millisecond}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.cfg)
			if tt.wantErr {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.base != tt.base || c.eventsURL != tt.events {
				t.Errorf("base %q events %q, want %q %q", c.base, c.eventsURL, tt.base, tt.events)
			}
		})
	}
}

// Warm opens n keep-alive connections with pings, and the connections
// StartOriginate sends on; warming again reuses them all.
func TestWarm(t *testing.T) {
	var conns, pings atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/ari/asterisk/ping" {
			t.Errorf("%s %s", r.Method, r.URL.Path)
		}
		if user, pass, _ := r.BasicAuth(); user != "user" || pass != "secret" {
			t.Errorf("auth %q %q", user, pass)
		}
		if pings.Add(1) <= 4 {
			<-release // the first four at once: four connections
		}
		io.WriteString(w, `{"asterisk_id":"x","ping":"pong","timestamp":"2026-11-23T05:57:53.962+0000"}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c, err := New(Config{URL: srv.URL, Username: "user", Password: "secret", Application: "privnum"})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for pings.Load() < 4 {
			time.Sleep(time.Millisecond)
		}
		close(release)
	}()
	if err := c.Warm(t.Context(), 4); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // the transport takes the connections back
	if err := c.Warm(t.Context(), 4); err != nil {
		t.Fatal(err)
	}
	if n := conns.Load(); n != 4+directConns {
		t.Errorf("%d connections, want %d", n, 4+directConns)
	}
	if n := pings.Load(); n != 2*(4+directConns) {
		t.Errorf("%d pings, want %d", n, 2*(4+directConns))
	}
}
