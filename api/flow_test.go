package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/privnum/privnum/apikey"
	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/cdr"
	"github.com/privnum/privnum/order"
	"github.com/privnum/privnum/pool"
	"github.com/privnum/privnum/webhook"
)

func TestNumbers(t *testing.T) {
	e := newEnv(t)
	key := e.keys[apikey.Numbers]
	var list numberList
	e.ok(call{method: "GET", path: "/v1/numbers", key: key}, 200, &list)
	if list.Numbers == nil || len(list.Numbers) != 0 {
		t.Fatalf("empty pool lists as %s", "null")
	}
	var res addNumbersResponse
	e.ok(call{method: "POST", path: "/v1/numbers", key: key, body: `{"numbers":[{"number":"17000000000","area":"bj"},{"number":"+8617000000001","area":"sh"},{"number":"008617000000001"}]}`}, 200, &res)
	if res.Added != 2 || res.Existing != 0 {
		t.Fatalf("add = %+v", res)
	}
	e.ok(call{method: "GET", path: "/v1/numbers", key: key}, 200, &list)
	if len(list.Numbers) != 2 || list.Numbers[1].Area != "sh" || list.Numbers[0].State != pool.Active {
		t.Fatalf("list = %+v", list)
	}
	var n pool.Number
	e.ok(call{method: "POST", path: "/v1/numbers/17000000001/retire", key: key}, 200, &n)
	if n.State != pool.Retired || n.Number != x1 {
		t.Fatalf("retire = %+v", n)
	}
	// The path parameter may be percent-encoded.
	e.ok(call{method: "GET", path: "/v1/numbers/%2B8617000000001", key: key}, 200, &n)
	if n.State != pool.Retired {
		t.Fatalf("get = %+v", n)
	}
	e.ok(call{method: "POST", path: "/v1/numbers/+8617000000001/restore", key: key, body: `{}`}, 200, &n)
	if n.State != pool.Active {
		t.Fatalf("restore = %+v", n)
	}
}

func TestBindingsFlow(t *testing.T) {
	e := newEnv(t)
	e.addNumbers(x0)
	key := e.keys[apikey.Bindings]
	var b binding.Binding
	r := e.ok(call{method: "POST", path: "/v1/bindings", key: key, body: `{"a":"` + aliceNt + `","b":"` + bob + `","ttl_seconds":3600,"record":true,"max_duration_seconds":1800,"directions":"a_to_b"}`}, 201, &b)
	if b.A != alice || b.X != x0 || !b.Record || b.MaxDurationSec != 1800 || b.Directions != binding.AToB || b.State != binding.Active {
		t.Fatalf("create = %+v", b)
	}
	if d := b.ExpiresAt.Sub(b.CreatedAt); d != time.Hour {
		t.Fatalf("ttl = %s", d)
	}
	if loc := r.header.Get("Location"); loc != "/v1/bindings/"+b.ID {
		t.Fatalf("Location %q", loc)
	}
	var got binding.Binding
	e.ok(call{method: "GET", path: "/v1/bindings/" + b.ID, key: key}, 200, &got)
	if got.ID != b.ID {
		t.Fatalf("get = %+v", got)
	}

	var route binding.Route
	e.ok(call{method: "POST", path: "/v1/routes:resolve", key: key, body: `{"x":"17000000000","caller":"13800000001"}`}, 200, &route)
	if route.Action != binding.Connect || route.Target != bob || route.BindingID != b.ID {
		t.Fatalf("resolve = %+v", route)
	}
	e.ok(call{method: "POST", path: "/v1/routes:resolve", key: key, body: `{"x":"17000000000","caller":"` + bob + `"}`}, 200, &route)
	if route.Action != binding.Reject || route.Reason != binding.ReasonDirection {
		t.Fatalf("resolve b->a = %+v", route)
	}

	e.ok(call{method: "POST", path: "/v1/bindings/" + b.ID + "/extend", key: key, body: `{"ttl_seconds":600}`}, 200, &got)
	if got.ExpiresAt.Sub(b.ExpiresAt) != 10*time.Minute {
		t.Fatalf("extend = %+v", got)
	}
	e.ok(call{method: "POST", path: "/v1/bindings/" + b.ID + "/release", key: key}, 200, &got)
	if got.State != binding.Released {
		t.Fatalf("release = %+v", got)
	}
	// Releasing again changes nothing and says nothing new.
	e.ok(call{method: "POST", path: "/v1/bindings/" + b.ID + "/release", key: key}, 200, &got)
	e.ok(call{method: "POST", path: "/v1/routes:resolve", key: key, body: `{"x":"17000000000","caller":"13800000001"}`}, 200, &route)
	if route.Reason != binding.ReasonExpired {
		t.Fatalf("resolve after release = %+v", route)
	}
	want := []string{webhook.BindingCreated, webhook.BindingExtended, webhook.BindingReleased}
	if got := e.events.types(); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	// Event payloads carry the parties masked.
	var data binding.Binding
	json.Unmarshal(e.events.evs[0].Data, &data)
	if data.A != "+86138****0001" || data.ID != b.ID {
		t.Fatalf("event data %+v", data)
	}
}

func TestOrdersFlow(t *testing.T) {
	e := newEnv(t)
	e.addNumbers(x0, x1)
	key := e.keys[apikey.Orders]
	body := `{"id":"SO 1/2","buyer":"` + alice + `","courier":"` + bob + `","ttl_seconds":7200,"record":true}`
	var o order.Order
	r := e.do(call{method: "POST", path: "/v1/orders", key: key, body: body})
	if p := r.problem(t); r.status != 422 || p.Field != "id" { // the service refuses spaces
		t.Fatalf("id with a space: %d %+v", r.status, p)
	}
	body = `{"id":"SO/1","buyer":"` + alice + `","courier":"` + bob + `","ttl_seconds":7200,"record":true}`
	r = e.ok(call{method: "POST", path: "/v1/orders", key: key, body: body}, 201, &o)
	if o.Status != order.Open || o.Binding == nil || !o.Binding.Record || o.Binding.OrderID != "SO/1" {
		t.Fatalf("open = %+v", o)
	}
	if loc := r.header.Get("Location"); loc != "/v1/orders/SO%2F1" {
		t.Fatalf("Location %q", loc)
	}
	// Opening again with the same parties returns the order: 200, no event.
	var again order.Order
	e.ok(call{method: "POST", path: "/v1/orders", key: key, body: body}, 200, &again)
	if again.Binding.ID != o.Binding.ID {
		t.Fatalf("reopen = %+v", again)
	}
	e.ok(call{method: "GET", path: "/v1/orders/" + url.PathEscape("SO/1"), key: key}, 200, &again)
	e.ok(call{method: "POST", path: "/v1/orders/SO%2F1/complete", key: key}, 200, &again)
	if again.Status != order.Completed || again.ClosedAt == nil || again.Binding.State != binding.Released {
		t.Fatalf("complete = %+v", again)
	}
	e.ok(call{method: "POST", path: "/v1/orders/SO%2F1/cancel", key: key}, 200, &again)
	if again.Status != order.Completed {
		t.Fatalf("cancel after complete = %+v", again)
	}

	e.ok(call{method: "POST", path: "/v1/orders", key: key, body: `{"id":"SO-2","buyer":"` + carol + `","courier":"` + bob + `"}`}, 201, &o)
	if d := o.Binding.ExpiresAt.Sub(o.Binding.CreatedAt); d != 72*time.Hour {
		t.Fatalf("default order ttl %s", d)
	}
	e.ok(call{method: "POST", path: "/v1/orders/SO-2/cancel", key: key}, 200, &o)
	if o.Status != order.Cancelled {
		t.Fatalf("cancel = %+v", o)
	}
	want := []string{webhook.BindingCreated, webhook.BindingReleased, webhook.BindingCreated, webhook.BindingReleased}
	if got := e.events.types(); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}

func TestCalls(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	start := time.Now().UTC().Truncate(time.Millisecond)
	answer := start.Add(2 * time.Second)
	for i, d := range []cdr.Disposition{cdr.Rejected, cdr.Answered, cdr.Busy} {
		rec := cdr.Record{CallID: "c" + string(rune('1'+i)), X: x0, Caller: "+86138****0001", Start: start, End: start.Add(time.Minute), Disposition: d, HangupCause: 16}
		if d == cdr.Answered {
			rec.Answer, rec.Callee, rec.BindingID = &answer, "+86139****0002", "8617000000000.0123456789abcdef"
		}
		if err := e.cfg.Calls.Add(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	var list callList
	e.ok(call{method: "GET", path: "/v1/calls?limit=2", key: e.keys[apikey.Calls]}, 200, &list)
	if len(list.Calls) != 2 || list.Calls[0].CallID != "c3" || list.Calls[1].Answer == nil {
		t.Fatalf("calls = %+v", list)
	}
	e.ok(call{method: "GET", path: "/v1/calls", key: e.keys[apikey.Calls]}, 200, &list)
	if len(list.Calls) != 3 {
		t.Fatalf("calls = %+v", list)
	}
}

func TestQR(t *testing.T) {
	e := newEnv(t)
	e.addNumbers(x0)
	key := e.keys[apikey.QR]
	var c QRCode
	r := e.ok(call{method: "POST", path: "/v1/qr-codes", key: key, body: `{"owner":"13800000001","label":"car"}`, header: idem("qr-1")}, 201, &c)
	if c.Owner != "+86138****0001" || c.Mode != "middle-number" || r.header.Get("Location") != "/v1/qr-codes/"+c.Token {
		t.Fatalf("mint = %+v", c)
	}
	if strings.Contains(string(r.body), alice) {
		t.Fatal("the owner's number is in the response")
	}
	e.ok(call{method: "POST", path: "/v1/qr-codes", key: key, body: `{"owner":"13800000001","label":"car"}`, header: idem("qr-1")}, 201, nil)
	e.ok(call{method: "GET", path: "/v1/qr-codes/" + c.Token, key: key}, 200, &c)

	scan := func(scanner string) resp {
		return e.do(call{method: "POST", path: "/v1/qr-codes/" + c.Token + "/scans", key: key, body: `{"scanner":"` + scanner + `"}`})
	}
	var res QRScanResult
	r = scan(bob)
	r.json(t, &res)
	if r.status != 200 || res.VirtualNumber != x0 || res.BindingID == "" || res.Mode != "middle-number" {
		t.Fatalf("scan = %d %+v", r.status, res)
	}
	r = scan("12")
	if p := r.problem(t); r.status != 422 || p.Field != "scanner" || p.Input != "12" {
		t.Fatalf("bad scanner: %d %+v", r.status, p)
	}
	r = scan(carol)
	if p := r.problem(t); r.status != 409 || p.Type != ProblemTypeBase+"pool-exhausted" {
		t.Fatalf("scan on a full pool: %d %+v", r.status, p)
	}
	r = scan(carol)
	if p := r.problem(t); r.status != 429 || p.Type != ProblemTypeBase+"rate-limited" || r.header.Get("Retry-After") != "2" {
		t.Fatalf("scan over the limit: %d %+v %v", r.status, p, r.header)
	}

	var cb QRCode
	e.ok(call{method: "POST", path: "/v1/qr-codes", key: key, body: `{"owner":"13800000001","mode":"callback"}`}, 201, &cb)
	r = e.do(call{method: "POST", path: "/v1/qr-codes/" + cb.Token + "/scans", key: key, body: `{"scanner":"` + bob + `"}`})
	if p := r.problem(t); r.status != 501 || p.Type != ProblemTypeBase+"qr-mode-unavailable" {
		t.Fatalf("scan callback code: %d %+v", r.status, p)
	}

	e.ok(call{method: "DELETE", path: "/v1/qr-codes/" + cb.Token, key: key}, 204, nil)
	e.ok(call{method: "GET", path: "/v1/qr-codes/" + cb.Token, key: key}, 200, &cb)
	if !cb.Revoked {
		t.Fatalf("revoked code shows as %+v", cb)
	}
	r = e.do(call{method: "POST", path: "/v1/qr-codes/" + cb.Token + "/scans", key: key, body: `{"scanner":"` + bob + `"}`})
	if p := r.problem(t); r.status != 404 || p.Type != ProblemTypeBase+"qr-code-not-found" {
		t.Fatalf("scan revoked: %d %+v", r.status, p)
	}
}

// Without the optional services their routes are not served.
func TestOptionalRoutes(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.QR, c.Webhooks, c.Events, c.Callbacks, c.Verifications, c.Devices = nil, nil, nil, nil, nil, nil
	})
	for _, p := range []string{"/v1/webhooks", "/v1/qr-codes/x", "/v1/callbacks/x", "/v1/verifications/x"} {
		if r := e.do(call{method: "GET", path: p, key: e.admin()}); r.status != 404 {
			t.Errorf("GET %s = %d, want 404", p, r.status)
		}
	}
	for _, p := range []string{"/v1/devices", "/v1/devices/verify", "/v1/callbacks", "/v1/verifications"} {
		if r := e.do(call{method: "POST", path: p, key: e.admin(), body: `{}`}); r.status != 404 {
			t.Errorf("POST %s = %d, want 404", p, r.status)
		}
	}
	// Binding changes work without an event publisher.
	e.addNumbers(x0)
	e.ok(call{method: "POST", path: "/v1/bindings", key: e.admin(), body: `{"a":"` + alice + `","b":"` + bob + `"}`}, 201, nil)
}

func TestNewRequiresServices(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("New(Config{}) succeeded")
	}
}

// The access log names routes and key ids, never numbers, paths or keys.
func TestAccessLog(t *testing.T) {
	e := newEnv(t)
	e.addNumbers(x0)
	var b binding.Binding
	e.ok(call{method: "POST", path: "/v1/bindings", key: e.admin(), body: `{"a":"` + alice + `","b":"` + bob + `"}`}, 201, &b)
	e.do(call{method: "POST", path: "/v1/bindings", key: e.admin(), body: `{"a":"` + alice + `","b":"13900000099"}`})
	e.do(call{method: "GET", path: "/v1/numbers/13800000001", key: e.admin()})
	e.do(call{method: "GET", path: "/v1/no/13800000001"})
	e.do(call{method: "POST", path: "/v1/routes:resolve", key: e.admin(), body: `{"x":"17000000000","caller":"13800000001"}`})
	logs := e.logs.String()
	for _, secret := range []string{"13800000001", "13900000002", "13900000099", e.admin()} {
		if strings.Contains(logs, secret) {
			t.Fatalf("the log holds %q:\n%s", secret, logs)
		}
	}
	admin, _ := e.cfg.Keys.Authenticate(context.Background(), e.admin())
	var line map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs), "\n") {
		json.Unmarshal([]byte(l), &line)
		if line["route"] == "POST /v1/bindings" {
			break
		}
	}
	if line["key"] != admin.ID || line["status"] != float64(201) || line["request_id"] == "" {
		t.Fatalf("access log line %v", line)
	}
	if !strings.Contains(logs, `"route":"unmatched"`) {
		t.Fatal("unmatched request not logged as such")
	}
}

func TestHealthz(t *testing.T) {
	e := newEnv(t)
	e.ok(call{method: "GET", path: "/healthz"}, 200, nil)
	e.rdb.Close()
	r := e.do(call{method: "GET", path: "/healthz"})
	if p := r.problem(t); r.status != 503 || p.Type != ProblemTypeBase+"unavailable" {
		t.Fatalf("healthz with Redis down: %d %+v", r.status, p)
	}
	// Any other request fails cleanly, without the Redis error text.
	r = e.do(call{method: "GET", path: "/v1/numbers", key: e.admin()})
	if p := r.problem(t); r.status != 500 || strings.Contains(p.Detail, "closed") {
		t.Fatalf("Redis down: %d %+v", r.status, p)
	}
}

// A binding change reaches a registered webhook, signed, through the real
// dispatcher.
func TestWebhookEndToEnd(t *testing.T) {
	var mu sync.Mutex
	var got []*http.Request
	var bodies [][]byte
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got, bodies = append(got, r), append(bodies, b)
		mu.Unlock()
	}))
	defer rcv.Close()
	var d *webhook.Dispatcher
	e := newEnv(t, func(c *Config) {
		d = webhook.NewDispatcher(c.Webhooks, webhook.Config{PollInterval: 10 * time.Millisecond, Logger: c.Logger})
		c.Events = d
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- d.Run(ctx) }()
	defer func() { cancel(); <-done }()

	var hook webhookCreated
	r := e.ok(call{method: "POST", path: "/v1/webhooks", key: e.keys[apikey.Webhooks], body: `{"url":"` + rcv.URL + `/privnum","events":["binding.created"]}`}, 201, &hook)
	if !strings.HasPrefix(hook.Secret, "whsec_") || r.header.Get("Location") != "/v1/webhooks/"+hook.ID {
		t.Fatalf("webhook = %+v", hook)
	}
	var list webhookList
	e.ok(call{method: "GET", path: "/v1/webhooks", key: e.keys[apikey.Webhooks]}, 200, &list)
	if len(list.Webhooks) != 1 || strings.Contains(string(r.body[:0]), "secret") {
		t.Fatalf("list = %+v", list)
	}
	lr := e.ok(call{method: "GET", path: "/v1/webhooks/" + hook.ID, key: e.keys[apikey.Webhooks]}, 200, nil)
	if strings.Contains(string(lr.body), "secret") {
		t.Fatal("the secret is shown again")
	}

	e.addNumbers(x0)
	var b binding.Binding
	e.ok(call{method: "POST", path: "/v1/bindings", key: e.admin(), body: `{"a":"` + alice + `","b":"` + bob + `"}`}, 201, &b)
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no delivery")
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	req, body := got[0], bodies[0]
	mu.Unlock()
	if err := webhook.Verify(hook.Secret, req.Header.Get(webhook.SignatureHeader), body, time.Minute); err != nil {
		t.Fatal(err)
	}
	var ev webhook.Event
	json.Unmarshal(body, &ev)
	if ev.Type != webhook.BindingCreated || strings.Contains(string(body), alice) {
		t.Fatalf("event %s", body)
	}
	e.ok(call{method: "DELETE", path: "/v1/webhooks/" + hook.ID, key: e.keys[apikey.Webhooks]}, 204, nil)
}
