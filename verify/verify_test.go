package verify_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/privnum/privnum/e164"
	"github.com/privnum/privnum/internal/redistest"
	"github.com/privnum/privnum/internal/syncbuf"
	"github.com/privnum/privnum/reject"
	"github.com/privnum/privnum/verify"
)

var cn = e164.Parser{Region: "CN"}

// flasher is a fake Flasher that records its calls.
type flasher struct {
	mu    sync.Mutex
	calls []flash
	err   func(number, callerID string) error
}

type flash struct{ number, callerID string }

func (f *flasher) Flash(_ context.Context, _, number, callerID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, flash{number, callerID})
	if f.err != nil {
		return f.err(number, callerID)
	}
	return nil
}

// last returns the caller ID of the last flash call to number.
func (f *flasher) last(t *testing.T, number string) string {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.calls) - 1; i >= 0; i-- {
		if f.calls[i].number == number {
			return f.calls[i].callerID
		}
	}
	t.Fatalf("no flash call to %s", number)
	return ""
}

func (f *flasher) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

type env struct {
	rdb   redis.UniversalClient
	svc   *verify.Service
	flash *flasher
	logs  *syncbuf.Buffer
}

func newEnv(t *testing.T, cfg verify.Config, callerIDs ...string) env {
	t.Helper()
	rdb := redistest.Client(t)
	f := &flasher{}
	logs := &syncbuf.Buffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	svc := verify.New(rdb, cn, f, cfg)
	if len(callerIDs) > 0 {
		if _, err := svc.AddCallerIDs(t.Context(), callerIDs...); err != nil {
			t.Fatal(err)
		}
	}
	return env{rdb: rdb, svc: svc, flash: f, logs: logs}
}

// cids returns n verification caller IDs.
func cids(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("+86170555%05d", i)
	}
	return out
}

func party(i int) string { return fmt.Sprintf("+86138%08d", i) }

// forms are the ways a caller ID could be written down.
func forms(cid string) []string {
	d := strings.TrimPrefix(cid, "+")
	return []string{cid, d, d[len(d)-8:]}
}

// events returns the audit stream.
func events(t *testing.T, rdb redis.UniversalClient) []map[string]any {
	t.Helper()
	msgs, err := rdb.XRange(context.Background(), verify.LogKey, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]map[string]any, len(msgs))
	for i, m := range msgs {
		out[i] = m.Values
	}
	return out
}

// assertNoCallerID fails if a caller ID shows up in the logs, or anywhere
// in Redis but in the pool set and in verification hashes.
func assertNoCallerID(t *testing.T, e env, ids ...string) {
	t.Helper()
	logs := e.logs.String()
	for _, id := range ids {
		for _, f := range forms(id) {
			if strings.Contains(logs, f) {
				t.Errorf("caller ID %s found in the logs:\n%s", id, logs)
			}
		}
	}
	for k, v := range redistest.Dump(t, e.rdb) {
		if k == verify.PoolKey || strings.Contains(k, "}:v:") {
			continue
		}
		for _, id := range ids {
			for _, f := range forms(id) {
				if strings.Contains(k, f) || strings.Contains(v, f) {
					t.Errorf("caller ID %s found in key %s = %s", id, k, v)
				}
			}
		}
	}
}

func start(t *testing.T, e env, number string) verify.Verification {
	t.Helper()
	v, err := e.svc.Start(t.Context(), verify.StartRequest{Number: number, Requester: "ak_test"})
	if err != nil {
		t.Fatalf("Start(%s): %v", number, err)
	}
	return v
}

func TestStartFlashesFromPoolAndHidesCallerID(t *testing.T) {
	ctx := t.Context()
	pool := cids(3)
	e := newEnv(t, verify.Config{}, pool...)
	before := time.Now()
	v, err := e.svc.Start(ctx, verify.StartRequest{Number: "13800000001", Requester: "ak_1"})
	if err != nil {
		t.Fatal(err)
	}
	if e.flash.count() != 1 {
		t.Fatalf("flash calls = %d, want 1", e.flash.count())
	}
	cid := e.flash.last(t, "+8613800000001")
	if !slices.Contains(pool, cid) {
		t.Fatalf("flashed from %s, not a pool caller ID", cid)
	}
	if v.Status != verify.Pending || v.AttemptsLeft != 3 || v.Number != "+86138****0001" || len(v.ID) < 32 {
		t.Fatalf("verification = %+v", v)
	}
	if d := v.ExpiresAt.Sub(before); d < 59*time.Second || d > 61*time.Second {
		t.Fatalf("expires in %s, want 60s", d)
	}
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	json.Unmarshal(data, &fields)
	if len(fields) != 5 || fields["id"] == nil || fields["number"] == nil || fields["status"] != "pending" ||
		fields["expires_at"] == nil || fields["attempts_left"] != 3.0 {
		t.Fatalf("JSON = %s", data)
	}
	checked, err := e.svc.Check(ctx, v.ID, "+8613900000000")
	if !errors.Is(err, verify.ErrMismatch) {
		t.Fatalf("Check wrong: %v", err)
	}
	ok, err := e.svc.Check(ctx, v.ID, cid)
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.svc.Get(ctx, v.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []any{v, checked, ok, got} {
		data, _ := json.Marshal(x)
		for _, f := range forms(cid) {
			if strings.Contains(string(data), f) || strings.Contains(fmt.Sprintf("%+v", x), f) {
				t.Fatalf("verification %s holds the caller ID", data)
			}
		}
	}
	evs := events(t, e.rdb)
	if len(evs) != 3 {
		t.Fatalf("audit log = %v, want start and two checks", evs)
	}
	for _, ev := range evs {
		if ev["number"] != "+86138****0001" || ev["requester"] != "ak_1" || ev["id"] != v.ID {
			t.Errorf("audit entry %v", ev)
		}
	}
	if evs[0]["ev"] != "start" || evs[1]["result"] != "mismatch" || evs[2]["result"] != "verified" {
		t.Errorf("audit log = %v", evs)
	}
	assertNoCallerID(t, e, pool...)
	if logs := e.logs.String(); strings.Contains(logs, "+8613800000001") || !strings.Contains(logs, "+86138****0001") {
		t.Errorf("logs do not mask the number:\n%s", logs)
	}
}

func TestCheckSequences(t *testing.T) {
	const wrong = "+8613900000009"
	type step struct {
		reported   string // "" means the right caller ID
		want       []error
		status     verify.Status
		left       int
		nationally bool // report the caller ID in national form
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"right at once", []step{{status: verify.Verified, left: 2}}},
		{"national form", []step{{nationally: true, status: verify.Verified, left: 2}}},
		{"wrong twice then right", []step{
			{reported: wrong, want: []error{verify.ErrMismatch}, status: verify.Pending, left: 2},
			{reported: wrong, want: []error{verify.ErrMismatch}, status: verify.Pending, left: 1},
			{status: verify.Verified, left: 0},
			{status: verify.Verified, left: 0}, // checking again changes nothing
		}},
		{"three wrong lock it", []step{
			{reported: wrong, want: []error{verify.ErrMismatch}, status: verify.Pending, left: 2},
			{reported: wrong, want: []error{verify.ErrMismatch}, status: verify.Pending, left: 1},
			{reported: wrong, want: []error{verify.ErrMismatch, verify.ErrLocked}, status: verify.Locked, left: 0},
			{want: []error{verify.ErrLocked}, status: verify.Locked, left: 0},
			{reported: wrong, want: []error{verify.ErrLocked}, status: verify.Locked, left: 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			e := newEnv(t, verify.Config{}, cids(2)...)
			v := start(t, e, party(1))
			cid := e.flash.last(t, party(1))
			for i, st := range tt.steps {
				rep := st.reported
				if rep == "" {
					rep = cid
					if st.nationally {
						rep = strings.TrimPrefix(cid, "+86")
					}
				}
				got, err := e.svc.Check(ctx, v.ID, rep)
				for _, w := range st.want {
					if !errors.Is(err, w) {
						t.Fatalf("step %d: err = %v, want %v", i, err, w)
					}
				}
				if len(st.want) == 0 && err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if got.Status != st.status || got.AttemptsLeft != st.left || got.ID != v.ID {
					t.Fatalf("step %d: verification = %+v, want %s with %d left", i, got, st.status, st.left)
				}
				if g, _ := e.svc.Get(ctx, v.ID); g != got {
					t.Fatalf("step %d: Get = %+v, Check = %+v", i, g, got)
				}
			}
		})
	}
}

func TestExpiryAndUnknown(t *testing.T) {
	ctx := t.Context()
	e := newEnv(t, verify.Config{TTL: 150 * time.Millisecond}, cids(2)...)
	v := start(t, e, party(1))
	cid := e.flash.last(t, party(1))
	time.Sleep(200 * time.Millisecond)
	got, err := e.svc.Check(ctx, v.ID, cid)
	if !errors.Is(err, verify.ErrExpired) || got.Status != verify.Expired {
		t.Fatalf("Check after expiry = %+v, %v", got, err)
	}
	if g, err := e.svc.Get(ctx, v.ID); err != nil || g.Status != verify.Expired {
		t.Fatalf("Get after expiry = %+v, %v", g, err)
	}
	if err := e.svc.Consume(ctx, v.ID, party(1)); !errors.Is(err, verify.ErrNotVerified) {
		t.Fatalf("Consume expired: %v", err)
	}
	for _, id := range []string{"", "nope", strings.Repeat("0", 32), v.ID + "0"} {
		if _, err := e.svc.Check(ctx, id, cid); !errors.Is(err, verify.ErrNotFound) {
			t.Errorf("Check(%q) = %v, want ErrNotFound", id, err)
		}
	}
}

func TestMatchLastDigits(t *testing.T) {
	ctx := t.Context()
	tests := []struct {
		name     string
		reported func(cid string) string
		want     error
	}{
		{"last four only", func(c string) string { return c[len(c)-4:] }, nil},
		{"last four spaced", func(c string) string { return c[len(c)-4:len(c)-2] + " " + c[len(c)-2:] }, nil},
		{"whole number", func(c string) string { return c }, nil},
		{"other number, same last four", func(c string) string { return "+86139000" + c[len(c)-4:] }, nil},
		{"wrong last four", func(c string) string { return "+86139000" + flip(c[len(c)-4:]) }, verify.ErrMismatch},
		{"wrong digits only", func(c string) string { return flip(c[len(c)-4:]) }, verify.ErrMismatch},
		{"too few digits", func(c string) string { return c[len(c)-3:] }, verify.ErrInvalid},
		{"not digits", func(string) string { return "12a4" }, verify.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, verify.Config{MatchLastDigits: 4}, cids(2)...)
			v := start(t, e, party(1))
			got, err := e.svc.Check(ctx, v.ID, tt.reported(e.flash.last(t, party(1))))
			if tt.want == nil && (err != nil || got.Status != verify.Verified) {
				t.Fatalf("Check = %+v, %v", got, err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if errors.Is(tt.want, verify.ErrInvalid) {
				// Malformed input costs no attempt.
				if g, _ := e.svc.Get(ctx, v.ID); g.AttemptsLeft != 3 {
					t.Fatalf("attempts left = %d after malformed input", g.AttemptsLeft)
				}
			}
		})
	}
}

// flip changes every digit of s.
func flip(s string) string {
	b := []byte(s)
	for i := range b {
		b[i] = '0' + (b[i]-'0'+1)%10
	}
	return string(b)
}

func TestNoCallerIDReuseWithinWindow(t *testing.T) {
	ctx := t.Context()
	e := newEnv(t, verify.Config{}, cids(2)...)
	start(t, e, party(1))
	first := e.flash.last(t, party(1))
	start(t, e, party(1))
	second := e.flash.last(t, party(1))
	if first == second {
		t.Fatalf("caller ID %s used twice for the same number", first)
	}
	_, err := e.svc.Start(ctx, verify.StartRequest{Number: party(1), Requester: "ak_test"})
	if !errors.Is(err, verify.ErrPoolExhausted) {
		t.Fatalf("third start: %v, want ErrPoolExhausted", err)
	}
	if e.flash.count() != 2 {
		t.Fatalf("flash calls = %d, want 2", e.flash.count())
	}
	start(t, e, party(2))
	if n := redistest.Keys(t, e.rdb, "pn:verify:id:*"); len(n) != 3 {
		t.Fatalf("verifications stored = %d, want 3", len(n))
	}
	evs := events(t, e.rdb)
	if evs[2]["result"] != "pool_exhausted" {
		t.Fatalf("audit log = %v", evs)
	}

	// Once the window has passed, the caller IDs come back.
	short := newEnv(t, verify.Config{ReuseWindow: 500 * time.Millisecond}, cids(1)...)
	start(t, short, party(1))
	if _, err := short.svc.Start(ctx, verify.StartRequest{Number: party(1), Requester: "ak_test"}); !errors.Is(err, verify.ErrPoolExhausted) {
		t.Fatalf("second start within window: %v", err)
	}
	time.Sleep(600 * time.Millisecond)
	start(t, short, party(1))
}

func TestConcurrentStartsPickDistinctCallerIDs(t *testing.T) {
	ctx := t.Context()
	const n = 8
	e := newEnv(t, verify.Config{PerNumber: verify.Limit{Max: 100}}, cids(n)...)
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for range 2 * n {
		wg.Go(func() {
			_, err := e.svc.Start(ctx, verify.StartRequest{Number: party(1), Requester: "ak_test"})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, verify.ErrPoolExhausted):
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	for _, c := range e.flash.calls {
		if seen[c.callerID] {
			t.Fatalf("caller ID %s used twice", c.callerID)
		}
		seen[c.callerID] = true
	}
	if ok != n || len(seen) != n {
		t.Fatalf("%d starts succeeded with %d caller IDs, want %d", ok, len(seen), n)
	}
}

func TestRateLimits(t *testing.T) {
	hour := time.Hour
	tests := []struct {
		name  string
		cfg   verify.Config
		reqs  []verify.StartRequest // the last one is refused
		scope verify.LimitScope
		then  verify.StartRequest // still allowed afterwards
	}{
		{
			"per number",
			verify.Config{PerNumber: verify.Limit{Max: 2, Window: hour}},
			[]verify.StartRequest{{Number: party(1), Requester: "a"}, {Number: party(1), Requester: "b"}, {Number: party(1), Requester: "c"}},
			verify.ScopeNumber,
			verify.StartRequest{Number: party(2), Requester: "c"},
		},
		{
			"per prefix",
			verify.Config{PrefixDigits: 9, PerPrefix: verify.Limit{Max: 2, Window: hour}},
			[]verify.StartRequest{{Number: "+8613800001001", Requester: "a"}, {Number: "+8613800002002", Requester: "b"}, {Number: "+8613800003003", Requester: "c"}},
			verify.ScopePrefix,
			verify.StartRequest{Number: "+8613810003003", Requester: "c"},
		},
		{
			"per requester",
			verify.Config{PerRequester: verify.Limit{Max: 2, Window: hour}},
			[]verify.StartRequest{{Number: party(1), Requester: "a"}, {Number: "+8613900000002", Requester: "a"}, {Number: "+8615000000003", Requester: "a"}},
			verify.ScopeRequester,
			verify.StartRequest{Number: "+8615000000003", Requester: "b"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			e := newEnv(t, tt.cfg, cids(10)...)
			for i, r := range tt.reqs {
				_, err := e.svc.Start(ctx, r)
				if i < len(tt.reqs)-1 {
					if err != nil {
						t.Fatalf("start %d: %v", i, err)
					}
					continue
				}
				var rl *reject.RateLimitError
				if !errors.Is(err, verify.ErrRateLimited) || !errors.As(err, &rl) || rl.Limit != string(tt.scope) {
					t.Fatalf("start %d: %v, want the %s limit", i, err, tt.scope)
				}
				if !strings.Contains(err.Error(), "per-"+string(tt.scope)) || rl.RetryAfter <= 0 || rl.RetryAfter > hour {
					t.Fatalf("error %q, retry after %s", err, rl.RetryAfter)
				}
			}
			if e.flash.count() != len(tt.reqs)-1 {
				t.Fatalf("flash calls = %d", e.flash.count())
			}
			if _, err := e.svc.Start(ctx, tt.then); err != nil {
				t.Fatalf("unrelated start: %v", err)
			}
			last := events(t, e.rdb)[len(tt.reqs)-1]
			if last["result"] != "rate_limited:"+string(tt.scope) {
				t.Fatalf("audit entry %v", last)
			}
		})
	}
}

func TestRefusedStartsGiveBackTheirSlots(t *testing.T) {
	ctx := t.Context()
	e := newEnv(t, verify.Config{
		PerRequester: verify.Limit{Max: 2, Window: time.Hour},
		PerNumber:    verify.Limit{Max: 1, Window: time.Hour},
	}, cids(3)...)
	start(t, e, party(1))
	// Refused by the number limit: the requester slot it took is given back.
	for range 3 {
		if _, err := e.svc.Start(ctx, verify.StartRequest{Number: party(1), Requester: "ak_test"}); !errors.Is(err, verify.ErrRateLimited) {
			t.Fatalf("repeat start: %v", err)
		}
	}
	start(t, e, party(2))
	var rl *reject.RateLimitError
	if _, err := e.svc.Start(ctx, verify.StartRequest{Number: party(3), Requester: "ak_test"}); !errors.As(err, &rl) || rl.Limit != string(verify.ScopeRequester) {
		t.Fatalf("third number: %v, want the requester limit", err)
	}
}

func TestConcurrentChecksNeverExceedMaxChecks(t *testing.T) {
	ctx := t.Context()
	e := newEnv(t, verify.Config{}, cids(2)...)
	v := start(t, e, party(1))
	cid := e.flash.last(t, party(1))
	const workers = 40
	var wg sync.WaitGroup
	var mu sync.Mutex
	counts := map[string]int{}
	for i := range workers {
		wg.Go(func() {
			_, err := e.svc.Check(ctx, v.ID, fmt.Sprintf("+86139%08d", i))
			kind := "other: " + fmt.Sprint(err)
			switch {
			case errors.Is(err, verify.ErrMismatch):
				kind = "mismatch"
			case errors.Is(err, verify.ErrLocked):
				kind = "locked"
			}
			mu.Lock()
			counts[kind]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if counts["mismatch"] != 3 || counts["locked"] != workers-3 {
		t.Fatalf("outcomes = %v, want 3 mismatches and %d locked", counts, workers-3)
	}
	if _, err := e.svc.Check(ctx, v.ID, cid); !errors.Is(err, verify.ErrLocked) {
		t.Fatalf("right number after lock: %v", err)
	}
	checks := 0
	for _, ev := range events(t, e.rdb) {
		if ev["ev"] == "check" {
			checks++
		}
	}
	if checks != workers+1 {
		t.Fatalf("audit log has %d checks, want %d", checks, workers+1)
	}
}

func TestBadInputStoresNothing(t *testing.T) {
	ctx := t.Context()
	e := newEnv(t, verify.Config{})
	if _, err := e.svc.AddCallerIDs(ctx, "+8617055500001", "nope"); !errors.Is(err, verify.ErrInvalid) || !errors.Is(err, e164.ErrInvalid) {
		t.Fatalf("AddCallerIDs with a bad number: %v", err)
	}
	if n := len(redistest.Keys(t, e.rdb, "*")); n != 0 {
		t.Fatalf("bad pool input stored %d keys", n)
	}
	if _, err := e.svc.AddCallerIDs(ctx, cids(2)...); err != nil {
		t.Fatal(err)
	}
	before := redistest.Dump(t, e.rdb)
	for _, tt := range []struct {
		req   verify.StartRequest
		field string
	}{
		{verify.StartRequest{Number: "", Requester: "ak_1"}, "number"},
		{verify.StartRequest{Number: "abc", Requester: "ak_1"}, "number"},
		{verify.StartRequest{Number: "12", Requester: "ak_1"}, "number"},
		{verify.StartRequest{Number: party(1), Requester: ""}, "requester"},
		{verify.StartRequest{Number: party(1), Requester: "ak 1"}, "requester"},
		{verify.StartRequest{Number: party(1), Requester: strings.Repeat("a", 129)}, "requester"},
	} {
		_, err := e.svc.Start(ctx, tt.req)
		if fe := (*reject.FieldError)(nil); !errors.Is(err, verify.ErrInvalid) || !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("Start(%+v) = %v, want ErrInvalid naming %s", tt.req, err, tt.field)
		}
	}
	if e.flash.count() != 0 {
		t.Fatalf("bad input placed %d calls", e.flash.count())
	}
	v := start(t, e, party(1))
	after := redistest.Dump(t, e.rdb)
	for _, bad := range []string{"", "not a number", "++", "１２３"} {
		_, err := e.svc.Check(ctx, v.ID, bad)
		if fe := (*reject.FieldError)(nil); !errors.Is(err, verify.ErrInvalid) || !errors.As(err, &fe) || fe.Field != "reported" {
			t.Errorf("Check(%q) = %v, want ErrInvalid naming reported", bad, err)
		}
	}
	if err := e.svc.Consume(ctx, v.ID, "abc"); !errors.Is(err, verify.ErrInvalid) {
		t.Errorf("Consume with a bad number: %v", err)
	}
	if got := redistest.Dump(t, e.rdb); fmt.Sprint(got) != fmt.Sprint(after) {
		t.Fatalf("bad checks changed the store:\n%v\n%v", after, got)
	}
	delete(after, verify.LogKey)
	for k := range before {
		delete(after, k)
	}
	for k := range after {
		if !strings.Contains(k, "+8613800000001") && !strings.Contains(k, v.ID) && !strings.Contains(k, "req:ak_test") && !strings.Contains(k, "prefix:") {
			t.Errorf("unexpected key %s", k)
		}
	}
}

func TestFlashFailure(t *testing.T) {
	ctx := t.Context()
	e := newEnv(t, verify.Config{}, cids(2)...)
	boom := errors.New("carrier refused")
	e.flash.err = func(number, callerID string) error {
		return fmt.Errorf("originate %s from %s (%s): %w", number, callerID, strings.TrimPrefix(callerID, "+86"), boom)
	}
	v, err := e.svc.Start(ctx, verify.StartRequest{Number: party(1), Requester: "ak_test"})
	if !errors.Is(err, verify.ErrFailed) || !errors.Is(err, boom) {
		t.Fatalf("Start = %v, want ErrFailed wrapping the flasher's error", err)
	}
	cid := e.flash.last(t, party(1))
	for _, f := range append(forms(cid), party(1), "13800000001") {
		if strings.Contains(err.Error(), f) {
			t.Fatalf("error %q names the caller ID or the unmasked number", err)
		}
	}
	if !strings.Contains(err.Error(), "+86138****0001") || !strings.Contains(err.Error(), "carrier refused") {
		t.Fatalf("error %q", err)
	}
	if v.Status != verify.Failed || v.AttemptsLeft != 0 {
		t.Fatalf("verification = %+v", v)
	}
	if _, err := e.svc.Check(ctx, v.ID, cid); !errors.Is(err, verify.ErrFailed) {
		t.Fatalf("Check of a failed verification: %v", err)
	}
	if evs := events(t, e.rdb); evs[0]["result"] != "flash_failed" {
		t.Fatalf("audit log = %v", evs)
	}
	assertNoCallerID(t, e, cids(2)...)
}

func TestConsume(t *testing.T) {
	ctx := t.Context()
	e := newEnv(t, verify.Config{}, cids(3)...)
	pending := start(t, e, party(1))
	if err := e.svc.Consume(ctx, pending.ID, party(1)); !errors.Is(err, verify.ErrNotVerified) {
		t.Fatalf("Consume pending: %v", err)
	}
	v := start(t, e, party(1))
	if _, err := e.svc.Check(ctx, v.ID, e.flash.last(t, party(1))); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, id, number string
		want             error
	}{
		{"other number", v.ID, party(2), verify.ErrNotVerified},
		{"unknown id", strings.Repeat("a", 32), party(1), verify.ErrNotVerified},
		{"malformed id", "x", party(1), verify.ErrNotVerified},
		{"national form", v.ID, "13800000001", nil},
		{"twice", v.ID, party(1), verify.ErrNotVerified},
	}
	for _, tt := range tests {
		if err := e.svc.Consume(ctx, tt.id, tt.number); !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
			t.Errorf("%s: Consume = %v, want %v", tt.name, err, tt.want)
		}
	}
	// A verification too old to consume.
	stale := newEnv(t, verify.Config{ConsumeWindow: 100 * time.Millisecond}, cids(1)...)
	sv := start(t, stale, party(1))
	if _, err := stale.svc.Check(ctx, sv.ID, stale.flash.last(t, party(1))); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	if err := stale.svc.Consume(ctx, sv.ID, party(1)); !errors.Is(err, verify.ErrNotVerified) {
		t.Fatalf("Consume stale: %v", err)
	}
}

func TestCallerIDPool(t *testing.T) {
	ctx := t.Context()
	e := newEnv(t, verify.Config{})
	n, err := e.svc.AddCallerIDs(ctx, "17055500002", "+86 170 5550 0001", "0086 17055500002")
	if err != nil || n != 2 {
		t.Fatalf("AddCallerIDs = %d, %v", n, err)
	}
	got, err := e.svc.ListCallerIDs(ctx)
	if err != nil || !slices.Equal(got, []string{"+8617055500001", "+8617055500002"}) {
		t.Fatalf("ListCallerIDs = %v, %v", got, err)
	}
	if err := e.svc.RemoveCallerID(ctx, "17055500001"); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.RemoveCallerID(ctx, "17055500001"); !errors.Is(err, verify.ErrCallerIDNotFound) {
		t.Fatalf("removing twice: %v", err)
	}
	if err := e.svc.RemoveCallerID(ctx, "bad"); !errors.Is(err, verify.ErrInvalid) {
		t.Fatalf("removing a bad number: %v", err)
	}
	got, _ = e.svc.ListCallerIDs(ctx)
	if !slices.Equal(got, []string{"+8617055500002"}) {
		t.Fatalf("ListCallerIDs = %v", got)
	}
	// The pool is separate from the binding pool.
	if n, _ := e.rdb.Exists(ctx, "pn:pool").Result(); n != 0 {
		t.Fatal("verification caller IDs went into the binding pool")
	}
	// A number is never flashed from itself.
	if _, err := e.svc.Start(ctx, verify.StartRequest{Number: "+8617055500002", Requester: "ak_test"}); !errors.Is(err, verify.ErrPoolExhausted) {
		t.Fatalf("Start on the only caller ID: %v", err)
	}
}

func TestFlashTarget(t *testing.T) {
	e := newEnv(t, verify.Config{TTL: 300 * time.Millisecond}, cids(2)...)
	ctx := context.Background()
	v, err := e.svc.Start(ctx, verify.StartRequest{Number: "13800000001", Requester: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	n, cid, err := e.svc.FlashTarget(ctx, v.ID)
	if err != nil || n != "+8613800000001" || cid != e.flash.last(t, n) {
		t.Fatalf("FlashTarget = %q, %q, %v", n, cid, err)
	}
	time.Sleep(350 * time.Millisecond)
	if _, _, err := e.svc.FlashTarget(ctx, v.ID); !errors.Is(err, verify.ErrExpired) {
		t.Fatalf("FlashTarget after expiry: %v", err)
	}
	if _, _, err := e.svc.FlashTarget(ctx, "nope"); !errors.Is(err, verify.ErrNotFound) {
		t.Fatalf("FlashTarget unknown: %v", err)
	}
}
