package api

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/privnum/privnum/apikey"
	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/internal/redistest"
	"github.com/privnum/privnum/order"
)

func idem(k string) map[string]string { return map[string]string{"Idempotency-Key": k} }

func activeBindings(t *testing.T, e *env, x string) int {
	t.Helper()
	n, err := e.cfg.Pool.Get(context.Background(), x)
	if err != nil {
		t.Fatal(err)
	}
	return n.ActiveBindings
}

func TestIdempotentCreate(t *testing.T) {
	e := newEnv(t)
	e.addNumbers(x0, x1)
	body := `{"a":"` + alice + `","b":"` + bob + `","ttl_seconds":3600}`
	create := call{method: "POST", path: "/v1/bindings", key: e.admin(), body: body, header: idem("order-7-bind")}

	first := e.ok(create, 201, nil)
	var b1 binding.Binding
	first.json(t, &b1)
	if first.header.Get("Idempotent-Replayed") != "" {
		t.Fatal("first response marked as replayed")
	}
	retry := e.ok(create, 201, nil)
	if !bytes.Equal(retry.body, first.body) || retry.header.Get("Location") != first.header.Get("Location") || retry.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry = %s %v\nfirst = %s", retry.body, retry.header, first.body)
	}
	// Insignificant whitespace is the same request.
	spaced := create
	spaced.body = "{ \"a\": \"" + alice + "\",\n \"b\": \"" + bob + "\", \"ttl_seconds\": 3600 }"
	if r := e.ok(spaced, 201, nil); !bytes.Equal(r.body, first.body) {
		t.Fatalf("reformatted retry created anew: %s", r.body)
	}
	if n := activeBindings(t, e, b1.X); n != 1 {
		t.Fatalf("%d bindings on %s after retries, want 1", n, b1.X)
	}
	if got := e.events.types(); len(got) != 1 {
		t.Fatalf("events after retries: %v, want one binding.created", got)
	}

	// Same key, different body: 422, nothing created.
	before := e.snapshot()
	other := create
	other.body = `{"a":"` + alice + `","b":"` + carol + `"}`
	r := e.do(other)
	if p := r.problem(t); r.status != 422 || p.Type != ProblemTypeBase+"idempotency-key-reused" {
		t.Fatalf("different body: %d %+v", r.status, p)
	}
	if e.snapshot() != before {
		t.Fatal("a refused idempotent request changed Redis")
	}

	// Keys are per API key: another key's identical request is new.
	_, other2, _ := e.cfg.Keys.Create(context.Background(), "second-admin", []apikey.Scope{apikey.Admin})
	// alice and bob are busy on b1.X, so this binds them on the other number.
	var b2 binding.Binding
	e.ok(call{method: "POST", path: "/v1/bindings", key: other2, body: body, header: idem("order-7-bind")}, 201, &b2)
	if b2.ID == b1.ID {
		t.Fatal("idempotency record shared between API keys")
	}
	// And per path: the same key on another operation is independent.
	e.ok(call{method: "POST", path: "/v1/bindings/" + b1.ID + "/extend", key: e.admin(), body: `{"ttl_seconds":60}`, header: idem("order-7-bind")}, 200, nil)
}

func TestIdempotencyFailuresAreNotKept(t *testing.T) {
	e := newEnv(t)
	body := `{"a":"` + alice + `","b":"` + bob + `"}`
	create := call{method: "POST", path: "/v1/bindings", key: e.admin(), body: body, header: idem("k1")}
	// The pool is empty: 409, and the key is free for a retry once numbers are added.
	if r := e.do(create); r.status != 409 {
		t.Fatalf("empty pool: %d %s", r.status, r.body)
	}
	if keys := redistest.Keys(e.t, e.rdb, "pn:idem:*"); len(keys) != 0 {
		t.Fatalf("failed request kept %v", keys)
	}
	e.addNumbers(x0)
	e.ok(create, 201, nil)
	// A different (here malformed) body under the same key is refused and
	// leaves the record alone.
	bad := create
	bad.body = `{"a":`
	if r := e.do(bad); r.status != 422 {
		t.Fatalf("malformed body under a used key: %d", r.status)
	}
	if r := e.ok(create, 201, nil); r.header.Get("Idempotent-Replayed") != "true" {
		t.Fatal("record lost")
	}
}

func TestIdempotencyInFlight(t *testing.T) {
	e := newEnv(t)
	e.addNumbers(x0)
	ctx := context.Background()
	admin, err := e.cfg.Keys.Authenticate(ctx, e.admin())
	if err != nil {
		t.Fatal(err)
	}
	body := `{"a":"` + alice + `","b":"` + bob + `"}`
	// A request that is still running holds the key.
	r := httptest.NewRequest("POST", "/v1/bindings", strings.NewReader(body))
	claim, out, err := e.srv.idem.begin(ctx, admin.ID, r, []string{"busy"}, []byte(body))
	if err != nil || out != nil || claim == nil {
		t.Fatalf("begin = %v %v %v", claim, out, err)
	}
	dup := e.do(call{method: "POST", path: "/v1/bindings", key: e.admin(), body: body, header: idem("busy")})
	if p := dup.problem(t); dup.status != 409 || p.Type != ProblemTypeBase+"idempotency-key-in-use" {
		t.Fatalf("concurrent duplicate: %d %+v", dup.status, p)
	}
	if n := activeBindings(t, e, x0); n != 0 {
		t.Fatal("the duplicate created a binding")
	}
}

// Many identical requests at once create one binding.
func TestIdempotencyConcurrent(t *testing.T) {
	e := newEnv(t)
	e.addNumbers(x0)
	e.noVerify = true // the validator is not safe for concurrent use
	body := `{"a":"` + alice + `","b":"` + bob + `"}`
	var wg sync.WaitGroup
	results := make([]resp, 20)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = e.do(call{method: "POST", path: "/v1/bindings", key: e.admin(), body: body, header: idem("race")})
		}()
	}
	wg.Wait()
	var created []byte
	for _, r := range results {
		switch r.status {
		case 201:
			if created != nil && !bytes.Equal(created, r.body) {
				t.Fatalf("two different bindings: %s and %s", created, r.body)
			}
			created = r.body
		case 409:
			if p := r.problem(t); p.Type != ProblemTypeBase+"idempotency-key-in-use" {
				t.Fatalf("409 %+v", p)
			}
		default:
			t.Fatalf("status %d: %s", r.status, r.body)
		}
	}
	if n := activeBindings(t, e, x0); n != 1 {
		t.Fatalf("%d bindings, want 1", n)
	}
}

func TestIdempotentOrdersAndNumbers(t *testing.T) {
	e := newEnv(t)
	add := call{method: "POST", path: "/v1/numbers", key: e.admin(), body: `{"numbers":[{"number":"17000000000"},{"number":"17000000001","area":"sh"}]}`, header: idem("n1")}
	var res addNumbersResponse
	e.ok(add, 200, &res)
	if res.Added != 2 {
		t.Fatalf("added %+v", res)
	}
	// Without the key the same request reports what it found now...
	plain := add
	plain.header = nil
	e.ok(plain, 200, &res)
	if res.Added != 0 || res.Existing != 2 {
		t.Fatalf("re-add %+v", res)
	}
	// ...with it, the first answer.
	e.ok(add, 200, &res)
	if res.Added != 2 {
		t.Fatalf("replay %+v", res)
	}

	open := call{method: "POST", path: "/v1/orders", key: e.admin(), body: `{"id":"SO-1","buyer":"` + alice + `","courier":"` + bob + `"}`, header: idem("o1")}
	var o1, o2 order.Order
	e.ok(open, 201, &o1)
	e.ok(open, 201, &o2)
	if o1.Binding == nil || o2.Binding == nil || o1.Binding.ID != o2.Binding.ID {
		t.Fatalf("order replay: %+v %+v", o1, o2)
	}
	var nums numberList
	e.ok(call{method: "GET", path: "/v1/numbers", key: e.admin()}, 200, &nums)
	total := 0
	for _, n := range nums.Numbers {
		total += n.ActiveBindings
	}
	if total != 1 {
		t.Fatalf("%d bindings after order replay: %+v", total, nums)
	}
}
