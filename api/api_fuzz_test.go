package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/privnum/privnum/apikey"
	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/callback"
	"github.com/privnum/privnum/cdr"
	"github.com/privnum/privnum/device"
	"github.com/privnum/privnum/e164"
	"github.com/privnum/privnum/group"
	"github.com/privnum/privnum/internal/redistest"
	"github.com/privnum/privnum/internal/syncbuf"
	"github.com/privnum/privnum/order"
	"github.com/privnum/privnum/pool"
	"github.com/privnum/privnum/verify"
	"github.com/privnum/privnum/webhook"
)

// fuzzMethods are the methods FuzzAPI sends; index 0 is the route's own.
var fuzzMethods = []string{"", "GET", "POST", "DELETE", "PUT", "HEAD", "PATCH"}

// fuzzContentTypes are the Content-Type headers FuzzAPI sends.
var fuzzContentTypes = []string{
	"application/json", "", "application/json; charset=utf-8", "application/json; charset=latin1",
	"text/plain", "application/problem+json", "application/json; charset=", "APPLICATION/JSON",
}

var paramRe = regexp.MustCompile(`\{[a-z]+\}`)

// FuzzAPI sends requests to every route of the real server, on a real
// Redis, with an admin API key so that what is exercised is the decoding
// and validation of the request, not authentication: any method, path
// parameter, query, Content-Type, Idempotency-Key and body. The server
// answers below 500 (but for the 501 of a QR code mode it does not serve),
// every 4xx as an application/problem+json problem
// whose status is the response's, and every 2xx body as JSON. One Redis
// serves every input; it is not flushed between them.
func FuzzAPI(f *testing.F) {
	srv, admin, logs := fuzzServer(f)
	routes := srv.Routes()
	index := map[string]uint8{}
	for i, rt := range routes {
		index[rt.Method+" "+rt.Pattern] = uint8(i)
	}
	for _, s := range []struct {
		route, param, query, body, idem string
		method, ctype                   uint8
	}{
		{route: "POST /v1/numbers", body: `{"numbers":[{"number":"17000000009","area":"sh"}]}`},
		{route: "POST /v1/numbers", body: `{"numbers":[{"number":"nope"}]}`, idem: "k1"},
		{route: "POST /v1/numbers", body: `{"numbers":[{"number":"17000000009","area":"sh pd"}]}`},
		{route: "GET /v1/numbers/{number}", param: "+8617000000000"},
		{route: "POST /v1/numbers/{number}/retire", param: "17000000001", body: `{}`},
		{route: "POST /v1/bindings", body: `{"a":"13800000001","b":"13900000002","ttl_seconds":60,"record":true,"directions":"a_to_b"}`},
		{route: "POST /v1/bindings", body: `{"a":"13800000001","b":"13800000001"}`, idem: "k2"},
		{route: "POST /v1/bindings", body: `{"a":"13800000001","b":"13900000002","ttl_seconds":-1}`},
		{route: "POST /v1/bindings", body: `{"a":1}`},
		{route: "POST /v1/bindings", body: `{"a":"13800000001"} {}`},
		{route: "POST /v1/bindings/{id}/extend", param: "b1", body: `{"ttl_seconds":9223372036854775807}`},
		{route: "POST /v1/routes:resolve", body: `{"x":"17000000000","caller":"13800000001"}`},
		{route: "POST /v1/orders", body: `{"id":"o-1","buyer":"13800000001","courier":"13900000002"}`},
		{route: "POST /v1/orders/{id}/complete", param: "o-1"},
		{route: "GET /v1/calls", query: "limit=0"},
		{route: "GET /v1/calls", query: "limit=%zz"},
		{route: "POST /v1/webhooks", body: `{"url":"https://example.com/hook","events":["binding.created"]}`},
		{route: "DELETE /v1/webhooks/{id}", param: "../x"},
		{route: "POST /v1/qr-codes", body: `{"owner":"13800000001","label":"Desk","mode":"callback"}`},
		{route: "POST /v1/qr-codes/{token}/scans", param: "qrtoken1", body: `{"scanner":"13900000002"}`},
		{route: "POST /v1/callbacks", body: `{"code":"o-1","caller":"13900000002"}`},
		{route: "POST /v1/verifications", body: `{"number":"13800000001"}`},
		{route: "POST /v1/verifications/{id}/check", param: "v1", body: `{"reported":"+8617000000000"}`},
		{route: "POST /v1/devices", body: `{"number":"13800000001","device_id":"d","chip_serial":"c","iccid":"i","imsi":"460001234567890","verification_id":"v"}`},
		{route: "POST /v1/devices/verify", body: `{"number":"13800000001"}`},
		{route: "GET /v1/numbers", method: 3},
		{route: "POST /v1/bindings", body: `{"a":"13800000001","b":"13900000002"}`, ctype: 3},
		{route: "GET /healthz"},
		{route: "POST /v1/bindings", body: `{"mode":"axn","a":"13800000001","show_caller":true}`},
		{route: "POST /v1/bindings", body: `{"mode":"axg","a":"13800000001","group":"riders","b":"13900000002"}`},
		{route: "POST /v1/bindings", body: `{"mode":"axz","a":"13800000001","b":"13900000002"}`},
		{route: "POST /v1/bindings", body: `{"mode":"axg","a":"13800000001","group":"no such"}`},
		{route: "POST /v1/numbers", body: `{"numbers":[{"number":"17000000009","mode":"axn"}]}`},
		{route: "POST /v1/groups", body: `{"name":"riders","members":["13600000001","13600000002"]}`, idem: "g1"},
		{route: "POST /v1/groups", body: `{"name":"a b","members":["x"]}`},
		{route: "GET /v1/groups/{name}", param: "riders"},
		{route: "DELETE /v1/groups/{name}", param: "riders"},
		{route: "POST /v1/groups/{name}/members", param: "riders", body: `{"members":["13600000003","13600000004","13600000005","13600000006"]}`},
		{route: "POST /v1/groups/{name}/members:remove", param: "riders", body: `{"members":["13600000009"]}`},
		{route: "POST /v1/groups/{name}/members:remove", param: "..", body: `{"members":[]}`},
		{route: "POST /v1/bindings", body: `{"mode":"axe","a":"13800000001","extension":"0042"}`},
		{route: "POST /v1/bindings", body: `{"mode":"axe","a":"13800000001","extension":"12a4","b":"13900000002"}`},
		{route: "POST /v1/numbers", body: `{"numbers":[{"number":"17000000009","mode":"axe"}]}`},
		{route: "POST /v1/routes:resolve", body: `{"x":"17000000000","caller":"13700000003","extension":"0042"}`},
	} {
		i, ok := index[s.route]
		if !ok {
			f.Fatalf("no route %s", s.route)
		}
		f.Add(i, s.method, s.param, s.query, s.ctype, s.idem, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, ri, mi uint8, param, query string, ci uint8, idem string, body []byte) {
		rt := routes[int(ri)%len(routes)]
		method := fuzzMethods[int(mi)%len(fuzzMethods)]
		if method == "" {
			method = rt.Method
		}
		if !validQuery(query) || !validHeader(idem) {
			t.Skip("not something an HTTP server receives")
		}
		path := paramRe.ReplaceAllLiteralString(rt.Pattern, url.PathEscape(param))
		if query != "" {
			path += "?" + query
		}
		r := httptest.NewRequest(method, path, bytes.NewReader(body))
		if ct := fuzzContentTypes[int(ci)%len(fuzzContentTypes)]; ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		r.Header.Set("Authorization", "Bearer "+admin)
		if idem != "" {
			r.Header.Set(idempotencyHeader, idem)
		}
		logs.Reset()
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		res := w.Result()
		got := w.Body.Bytes()
		name := method + " " + path
		// The one 5xx by design: scanning a callback-mode code where that
		// mode is not served (501 qr-mode-unavailable).
		notServed := res.StatusCode == 501 && bytes.Contains(got, []byte(ProblemTypeBase+kQRMode.slug))
		if res.StatusCode >= 500 && !notServed {
			t.Fatalf("%s %q: status %d: %s\nlog:\n%s", name, body, res.StatusCode, got, logs.String())
		}
		if res.Header.Get("X-Request-Id") == "" {
			t.Fatalf("%s: no X-Request-Id", name)
		}
		ct := res.Header.Get("Content-Type")
		switch {
		case res.StatusCode >= 400: // 4xx, and the 501
			var p Problem
			if ct != "application/problem+json" || json.Unmarshal(got, &p) != nil {
				t.Fatalf("%s %q: status %d with Content-Type %q: %s", name, body, res.StatusCode, ct, got)
			}
			if p.Status != res.StatusCode || p.Type == "" || p.Title == "" {
				t.Fatalf("%s %q: status %d with problem %+v", name, body, res.StatusCode, p)
			}
		case res.StatusCode < 300 && len(got) > 0:
			if ct != "application/json" || !json.Valid(got) {
				t.Fatalf("%s %q: status %d with Content-Type %q: %s", name, body, res.StatusCode, ct, got)
			}
		}
	})
}

// validQuery reports whether q can be the query of a request line.
func validQuery(q string) bool {
	for i := 0; i < len(q); i++ {
		if c := q[i]; c <= ' ' || c >= 0x7f || c == '#' {
			return false
		}
	}
	return true
}

// validHeader reports whether v can be a header value net/http receives.
func validHeader(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return v == strings.TrimSpace(v)
}

// nopFlasher, nopQueue and nopEvents stand in for what reaches out of the
// server, keeping nothing (a long fuzz run would otherwise grow them).
type nopFlasher struct{}

func (nopFlasher) Flash(context.Context, string, string, string) error { return nil }

type nopQueue struct{}

func (nopQueue) Enqueue(context.Context, string, string) error { return nil }

type nopEvents struct{}

func (nopEvents) Publish(context.Context, webhook.Event) error { return nil }

// fuzzServer returns the server with every optional part, as newEnv
// builds it, on a Redis of its own with a few pool numbers, the secret of
// an admin key, and the server's log (warnings and errors).
func fuzzServer(tb testing.TB) (*Server, string, *syncbuf.Buffer) {
	tb.Helper()
	ctx := context.Background()
	rdb := redistest.Client(tb)
	parser, err := e164.NewParser("CN")
	if err != nil {
		tb.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	p := pool.New(rdb, parser)
	var nums []pool.Entry
	for i := range 8 {
		nums = append(nums, pool.Entry{Number: fmt.Sprintf("1700000000%d", i)})
	}
	if _, err := p.Add(ctx, nums); err != nil {
		tb.Fatal(err)
	}
	groups := group.New(rdb, parser, group.Config{MaxMembers: 5})
	b := binding.New(rdb, p, parser, binding.Config{Quarantine: time.Hour, Groups: groups})
	qr := newFakeQR(b)
	cfg := Config{
		Redis: rdb, Keys: apikey.New(rdb), Pool: p, Bindings: b, Orders: order.New(rdb, b), Calls: cdr.New(rdb, 0),
		Webhooks: webhook.NewStore(rdb), Events: nopEvents{}, QR: qr, Groups: groups, Logger: logger,
	}
	v := verify.New(rdb, parser, nopFlasher{}, verify.Config{Logger: logger})
	cb := callback.New(rdb, callback.Deps{Bindings: b, Orders: cfg.Orders, Owners: qr, Queue: nopQueue{}}, callback.Config{Logger: logger})
	d, err := device.New(rdb, parser, deviceSecret, v, device.Config{Logger: logger})
	if err != nil {
		tb.Fatal(err)
	}
	cfg.Callbacks, cfg.Verifications, cfg.Devices = NewCallbackService(cb), NewVerificationService(v), NewDeviceService(d)
	srv, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	_, secret, err := cfg.Keys.Create(ctx, "fuzz-admin", []apikey.Scope{apikey.Admin})
	if err != nil {
		tb.Fatal(err)
	}
	return srv, secret, logs
}
