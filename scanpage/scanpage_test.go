package scanpage_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/call"
	"github.com/privnum/privnum/callback"
	"github.com/privnum/privnum/e164"
	"github.com/privnum/privnum/internal/redistest"
	"github.com/privnum/privnum/internal/syncbuf"
	"github.com/privnum/privnum/pool"
	"github.com/privnum/privnum/qr"
	"github.com/privnum/privnum/scanpage"
)

var cn = e164.Parser{Region: "CN"}

const (
	owner   = "+8613800138000"
	scanner = "+8613900000002"
	// scannerInput is how a scanner types their number.
	scannerInput = "139 0000 0002"
)

// realNumbers must never appear in a page, with or without separators,
// masked or not; logs may hold the masked forms.
var realNumbers = []string{"13800138000", "138****8000", "13900000002", "139****0002"}

type env struct {
	rdb      redis.UniversalClient
	bindings *binding.Service
	qr       *qr.Service
	h        http.Handler
	logs     *syncbuf.Buffer
}

// newEnv returns the scan page on a real qr service with n virtual numbers.
func newEnv(t *testing.T, n int, qcfg qr.Config, cbs scanpage.Callbacks) *env {
	t.Helper()
	rdb := redistest.Client(t)
	p := pool.New(rdb, cn)
	if n > 0 {
		var nums []pool.Entry
		for i := range n {
			nums = append(nums, pool.Entry{Number: fmt.Sprintf("1700000%04d", i)})
		}
		if _, err := p.Add(context.Background(), nums); err != nil {
			t.Fatal(err)
		}
	}
	b := binding.New(rdb, p, cn, binding.Config{Quarantine: time.Hour})
	if qcfg.PublicBase == "" {
		qcfg.PublicBase = "https://example.com"
	}
	s, err := qr.New(rdb, cn, b, qcfg)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	h := scanpage.New(scanpage.Config{
		Codes: s, Callbacks: cbs, Location: time.UTC,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	return &env{rdb: rdb, bindings: b, qr: s, h: h, logs: logs}
}

func (e *env) mint(t *testing.T, mode qr.Mode, label string) qr.Code {
	t.Helper()
	c, err := e.qr.Mint(context.Background(), qr.MintRequest{Owner: owner, Mode: mode, Label: label})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type resp struct {
	status int
	header http.Header
	// body is the page with HTML entities decoded (html/template writes
	// "+" as "&#43;"); raw is as served.
	body, raw string
}

// get requests the page of token.
func (e *env) get(t *testing.T, path string) resp {
	t.Helper()
	return e.do(t, httptest.NewRequest(http.MethodGet, path, nil))
}

// post submits the form of token with number, as a browser does.
func (e *env) post(t *testing.T, path, number string) resp {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(url.Values{"number": {number}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Origin", "http://example.com")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	return e.do(t, r)
}

// do serves r and checks what every page must have: the security headers,
// an HTML page, and neither the owner's nor the scanner's number.
func (e *env) do(t *testing.T, r *http.Request) resp {
	t.Helper()
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	res := resp{status: w.Code, header: w.Header(), raw: w.Body.String()}
	res.body = html.UnescapeString(res.raw)
	checkPage(t, res, r.Method == http.MethodHead)
	return res
}

var styleRe = regexp.MustCompile(`(?s)<style>(.*?)</style>`)

func checkPage(t *testing.T, res resp, head bool) {
	t.Helper()
	want := map[string]string{
		"Content-Type":           "text/html; charset=utf-8",
		"Referrer-Policy":        "no-referrer",
		"Cache-Control":          "no-store",
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options":        "DENY",
	}
	for k, v := range want {
		if got := res.header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	csp := res.header.Get("Content-Security-Policy")
	for _, d := range []string{"default-src 'none'", "frame-ancestors 'none'", "form-action 'self'", "base-uri 'none'"} {
		if !strings.Contains(csp, d) {
			t.Errorf("CSP %q lacks %q", csp, d)
		}
	}
	if strings.Contains(csp, "unsafe") || strings.Contains(csp, "script-src") {
		t.Errorf("CSP %q is not strict", csp)
	}
	if head {
		if res.body != "" {
			t.Errorf("HEAD has a body")
		}
		return
	}
	// The inline style sheet is allowed by its hash, and nothing else runs.
	m := styleRe.FindStringSubmatch(res.raw)
	if m == nil {
		t.Fatalf("no style sheet in %s", res.body)
	}
	sum := sha256.Sum256([]byte(m[1]))
	if h := "style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(csp, h) {
		t.Errorf("CSP %q does not allow the inline style (%s)", csp, h)
	}
	if strings.Contains(res.raw, "<script") || regexp.MustCompile(`<[^>]*\s(on[a-z]+|style)\s*=`).MatchString(res.raw) {
		t.Errorf("page has script or inline style attributes")
	}
	for _, s := range []string{`<meta name="viewport" content="width=device-width, initial-scale=1">`, `<html lang="en">`, "<title>"} {
		if !strings.Contains(res.body, s) {
			t.Errorf("page lacks %s", s)
		}
	}
	noNumbers(t, res.body, true)
}

// noNumbers fails if text holds the owner's or the scanner's number, even
// with separators, or (if masked) their masked forms.
func noNumbers(t *testing.T, text string, masked bool) {
	t.Helper()
	digits := regexp.MustCompile(`[^0-9*]`).ReplaceAllString(text, "")
	for _, d := range realNumbers {
		if !masked && strings.Contains(d, "*") {
			continue
		}
		if strings.Contains(text, d) || strings.Contains(digits, d) {
			t.Errorf("page shows a real number (%s):\n%s", d, text)
		}
	}
}

func TestFormPage(t *testing.T) {
	e := newEnv(t, 2, qr.Config{}, nil)
	c := e.mint(t, qr.MiddleNumber, "Shop 12 & Co")
	res := e.get(t, "/q/"+c.Token)
	if res.status != http.StatusOK {
		t.Fatalf("GET = %d\n%s", res.status, res.body)
	}
	for _, s := range []string{
		`<form method="post">`,
		`<label for="number">Your phone number</label>`,
		`id="number" name="number" type="tel" inputmode="tel" autocomplete="tel" required`,
		`<button type="submit">Call privately</button>`,
		`<h1>Shop 12 & Co</h1>`,
	} {
		if !strings.Contains(res.body, s) {
			t.Errorf("form lacks %s:\n%s", s, res.body)
		}
	}
	if strings.Contains(res.body, c.OwnerMasked) {
		t.Errorf("form shows the masked owner")
	}
	if !strings.Contains(res.raw, `<h1>Shop 12 &amp; Co</h1>`) {
		t.Errorf("label not escaped")
	}
	// A label is text, never markup.
	x := e.mint(t, qr.MiddleNumber, `<script>alert(1)</script><b onclick="x">`)
	if res := e.get(t, "/q/"+x.Token); res.status != http.StatusOK || !strings.Contains(res.raw, "&lt;script&gt;") {
		t.Errorf("markup label = %d\n%s", res.status, res.raw)
	}
	// Tokens are case-insensitive, as printed.
	if res := e.get(t, "/q/"+strings.ToUpper(c.Token)); res.status != http.StatusOK {
		t.Errorf("upper-case token: %d", res.status)
	}
	// HEAD: the headers of GET, no body.
	if res := e.do(t, httptest.NewRequest(http.MethodHead, "/q/"+c.Token, nil)); res.status != http.StatusOK {
		t.Errorf("HEAD = %d", res.status)
	}
	// A GET scans nothing.
	if n := redistest.Keys(t, e.rdb, "pn:qr*:rl"); len(n) != 0 {
		t.Errorf("GET counted a scan: %v", n)
	}
}

func TestScanShowsVirtualNumber(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 2, qr.Config{}, nil)
	c := e.mint(t, qr.MiddleNumber, "Shop")
	before := time.Now()
	res := e.post(t, "/q/"+c.Token, "  "+scannerInput+" ")
	if res.status != http.StatusOK {
		t.Fatalf("POST = %d\n%s", res.status, res.body)
	}
	m := regexp.MustCompile(`<a class="call" href="tel:(\+[0-9]+)">([^<]+)</a>`).FindStringSubmatch(res.body)
	if m == nil {
		t.Fatalf("no tel: link in\n%s", res.body)
	}
	x := m[1]
	if want := "+86 170 0000 000"; !strings.HasPrefix(m[2], want) {
		t.Errorf("shown number %q, want it formatted like %q…", m[2], want)
	}
	for _, s := range []string{"Call privately:", "Valid until <time datetime=", "(for 15 minutes)", "sees only this virtual number"} {
		if !strings.Contains(res.body, s) {
			t.Errorf("result lacks %q:\n%s", s, res.body)
		}
	}
	// The default scan binding lives 15 minutes, and the shown time says so.
	tm := regexp.MustCompile(`<time datetime="([^"]+)">([0-9:]+ UTC)</time>`).FindStringSubmatch(res.body)
	if tm == nil {
		t.Fatalf("no expiry time in\n%s", res.body)
	}
	exp, err := time.Parse(time.RFC3339, tm[1])
	if err != nil {
		t.Fatal(err)
	}
	if d := exp.Sub(before); d < 14*time.Minute || d > 16*time.Minute {
		t.Errorf("valid until %s, %s from now; want 15m", exp, d)
	}
	if tm[2] != exp.UTC().Format("15:04 UTC") {
		t.Errorf("shown time %q, want %s", tm[2], exp.UTC().Format("15:04 UTC"))
	}
	// The virtual number really connects scanner and owner.
	route, err := e.bindings.Resolve(ctx, x, scanner)
	if err != nil {
		t.Fatal(err)
	}
	if route.Action != binding.Connect || route.Target != owner {
		t.Errorf("Resolve(%s, scanner) = %+v", x, route)
	}
	// Submitting again (a reload) gives the same number.
	again := e.post(t, "/q/"+c.Token, scanner)
	if again.status != http.StatusOK || !strings.Contains(again.body, `href="tel:`+x+`"`) {
		t.Errorf("second submit = %d\n%s", again.status, again.body)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "qr scanned") || !strings.Contains(logs, e164.Mask(scanner)) {
		t.Errorf("scan not logged with the masked scanner:\n%s", logs)
	}
	noNumbers(t, logs, false)
}

func TestUnknownAndRevokedLookAlike(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 2, qr.Config{}, nil)
	revoked := e.mint(t, qr.MiddleNumber, "")
	if err := e.qr.Revoke(ctx, revoked.Token); err != nil {
		t.Fatal(err)
	}
	paths := []string{
		"/q/" + revoked.Token,
		"/q/" + strings.Repeat("b", qr.TokenLen),
		"/q/garbage",
		"/q/" + strings.Repeat("a", 200),
	}
	var bodies []string
	for _, p := range paths {
		for _, res := range []resp{e.get(t, p), e.post(t, p, scannerInput)} {
			if res.status != http.StatusNotFound || !strings.Contains(res.body, "This code is not valid") {
				t.Errorf("%s = %d\n%s", p, res.status, res.body)
			}
			bodies = append(bodies, res.body)
		}
	}
	for _, b := range bodies[1:] {
		if b != bodies[0] {
			t.Errorf("unknown and revoked pages differ:\n%s\n---\n%s", bodies[0], b)
		}
	}
	for _, p := range []string{"/q/", "/q/" + revoked.Token + "/x", "/elsewhere"} {
		if res := e.get(t, p); res.status != http.StatusNotFound || res.body != bodies[0] {
			t.Errorf("GET %s = %d", p, res.status)
		}
	}
	if strings.Contains(bodies[0], revoked.Token) {
		t.Errorf("404 page echoes the token")
	}
}

func TestBadNumbers(t *testing.T) {
	e := newEnv(t, 2, qr.Config{}, nil)
	c := e.mint(t, qr.MiddleNumber, "Shop")
	tests := []struct{ in, msg string }{
		{"", "Enter your phone number."},
		{"   ", "Enter your phone number."},
		{"12", "too short"},
		{"banana", "only have digits"},
		{"1390000000212345678", "too long"},
		{"+999123456", "not a valid phone number"},
		{"12345678", "not a valid phone number"},
		{strings.Repeat("9", 1000), "too long"},
	}
	for _, tt := range tests {
		res := e.post(t, "/q/"+c.Token, tt.in)
		if res.status != http.StatusUnprocessableEntity {
			t.Errorf("number %.20q = %d, want 422\n%s", tt.in, res.status, res.body)
			continue
		}
		for _, s := range []string{`<form method="post">`, `aria-invalid="true"`, `role="alert"`, tt.msg} {
			if !strings.Contains(res.body, s) {
				t.Errorf("number %.20q: page lacks %q\n%s", tt.in, s, res.body)
			}
		}
		if tt.in != "" && strings.Contains(res.body, strings.TrimSpace(tt.in)) && len(strings.TrimSpace(tt.in)) > 2 {
			t.Errorf("page echoes the input %.20q", tt.in)
		}
	}
}

// TestOwnerScanningOwnCode: on a middle-number code the owner's own number
// gets the answer any scanner gets (a page with a virtual number, the same
// on every scan), so the page is no oracle for whose code it is; nothing is
// bound. (Callback-mode codes: TestOwnerCallbackNoOracle.)
func TestOwnerScanningOwnCode(t *testing.T) {
	t.Run("middle-number", func(t *testing.T) {
		e := newEnv(t, 3, qr.Config{}, &fakeCallbacks{})
		c := e.mint(t, qr.MiddleNumber, "")
		own := e.post(t, "/q/"+c.Token, "138 0013 8000")
		x := regexp.MustCompile(`tel:(\+[0-9]+)`).FindStringSubmatch(own.body)
		if x == nil {
			t.Fatalf("no number on the owner's page:\n%s", own.body)
		}
		// Nothing was bound: the owner calling it reaches no one (until a
		// real scanner is bound to the owner there).
		if r, err := e.bindings.Resolve(context.Background(), x[1], owner); err != nil || r.Action == binding.Connect {
			t.Errorf("the owner's stand-in number routes: %+v %v", r, err)
		}
		other := e.post(t, "/q/"+c.Token, "139 0000 0002")
		if own.status != other.status || own.status != http.StatusOK {
			t.Fatalf("owner scan %d, another scanner's %d", own.status, other.status)
		}
		shape := regexp.MustCompile(`\+?[0-9][0-9 ]{6,}[0-9]|[0-9]{1,2}:[0-9]{2}[^<"]*|[0-9]+ minutes?`)
		if a, b := shape.ReplaceAllString(own.body, "#"), shape.ReplaceAllString(other.body, "#"); a != b {
			t.Fatalf("the owner's page differs from a scanner's:\n%s\n---\n%s", own.body, other.body)
		}
		again := e.post(t, "/q/"+c.Token, "13800138000")
		if !strings.Contains(again.body, "tel:"+x[1]) {
			t.Errorf("a second owner scan gave another number")
		}
	})
}

// TestOwnerCallbackNoOracle: on a callback-mode code, the page for the
// owner's own number is the page for anyone's (same status, same page
// with a callback reference and a number that will ring), and nothing
// connects the owner to themselves: no binding, no call dialed, no
// message; the stand-in fails unanswered after the ring timeout.
func TestOwnerCallbackNoOracle(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 3, qr.Config{}, nil)
	q := &queue{}
	d := &dialer{}
	sent := &sender{}
	log := slog.New(slog.NewTextHandler(e.logs, nil))
	cbs := callback.New(e.rdb, callback.Deps{Bindings: e.bindings, Owners: e.qr, Queue: q, Dialer: d, Sender: sent},
		callback.Config{Logger: log, RingTimeout: 50 * time.Millisecond})
	e.h = scanpage.New(scanpage.Config{Codes: e.qr, Callbacks: cbs, Logger: log, Location: time.UTC})
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go cbs.Run(runCtx)
	c := e.mint(t, qr.Callback, "Desk")

	refRe := regexp.MustCompile(`<code>([0-9a-f]{32})</code>`)
	numRe := regexp.MustCompile(`\+86 170 [0-9]{4} [0-9]{4}`)
	type page struct {
		status    int
		body, ref string
	}
	pages := map[string]page{}
	for _, tc := range []struct{ name, input string }{
		{"owner", "138 0013 8000"},
		{"stranger", scannerInput},
		{"owner again", "+86 13800138000"},
	} {
		res := e.post(t, "/q/"+c.Token, tc.input)
		m := refRe.FindStringSubmatch(res.body)
		if m == nil || !numRe.MatchString(res.body) {
			t.Fatalf("%s: page without a callback reference or a number (%d):\n%s", tc.name, res.status, res.body)
		}
		pages[tc.name] = page{res.status, numRe.ReplaceAllString(refRe.ReplaceAllString(res.body, "<code>REF</code>"), "NUMBER"), m[1]}
		// Queued like any callback, and placed as serve places it.
		if ids := q.ids; len(ids) == 0 || ids[len(ids)-1] != callback.JobKind+":"+m[1] {
			t.Fatalf("%s: queued %v", tc.name, ids)
		}
		if err := cbs.Dial(ctx, m[1]); err != nil {
			t.Fatalf("%s: dial: %v", tc.name, err)
		}
	}
	own, other := pages["owner"], pages["stranger"]
	if own.status != http.StatusOK || own.status != other.status || own.body != other.body {
		t.Fatalf("the owner's page differs from a stranger's (%d, %d):\n%s\n---\n%s", own.status, other.status, own.body, other.body)
	}
	if own.ref == pages["owner again"].ref {
		t.Errorf("two owner scans gave the same reference")
	}

	// Only the stranger's callback dialed anyone.
	if got := d.requests(); len(got) != 1 || got[0].First != scanner || got[0].Second != owner {
		t.Fatalf("dialed %+v, want only the stranger's callback", got)
	}
	// No binding connects the owner to themselves: the owner has no
	// route on any virtual number but the stranger's binding.
	for _, k := range redistest.Keys(t, e.rdb, "pn:{*}:r:"+owner) {
		x := k[strings.Index(k, "{")+1 : strings.Index(k, "}")]
		if r, err := e.bindings.Resolve(ctx, x, owner); err != nil || r.Target != scanner {
			t.Errorf("the owner routes on %s to %+v (%v)", x, r, err)
		}
	}
	// The stand-ins fail as unanswered after the ring timeout, and send
	// the owner nothing.
	for _, name := range []string{"owner", "owner again"} {
		id := pages[name].ref
		var cb callback.Callback
		deadline := time.Now().Add(10 * time.Second)
		for {
			var err error
			cb, err = cbs.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if cb.State == call.CallbackFailed || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if cb.State != call.CallbackFailed || cb.Reason != "first_no_answer" || cb.MessageSent {
			t.Errorf("%s: stand-in ended %+v, want failed first_no_answer, no message", name, cb)
		}
		if _, err := e.bindings.Get(ctx, cb.BindingID); !errors.Is(err, binding.ErrNotFound) {
			t.Errorf("%s: the stand-in's binding id %s names a binding (%v)", name, cb.BindingID, err)
		}
	}
	if n := sent.count(); n != 0 {
		t.Errorf("%d messages sent", n)
	}
	noNumbers(t, e.logs.String(), false)
}

// dialer records the callbacks it is asked to place.
type dialer struct {
	mu  sync.Mutex
	req []call.CallbackRequest
}

func (d *dialer) Callback(_ context.Context, r call.CallbackRequest) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.req = append(d.req, r)
	return nil
}

func (d *dialer) requests() []call.CallbackRequest {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]call.CallbackRequest(nil), d.req...)
}

// sender counts the failure messages.
type sender struct {
	mu sync.Mutex
	n  int
}

func (s *sender) Send(context.Context, callback.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	return nil
}

func (s *sender) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func TestRateLimits(t *testing.T) {
	const window = 30 * time.Second
	tests := []struct {
		name     string
		cfg      qr.Config
		scanners []string // the last one trips the limit
	}{
		{"per scanner", qr.Config{PerScannerLimit: 2, PerTokenLimit: -1, LimitWindow: window}, []string{scannerInput, scannerInput, scannerInput}},
		{"per token", qr.Config{PerScannerLimit: -1, PerTokenLimit: 2, LimitWindow: window}, []string{scannerInput, "13700000003", "13600000004"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, 4, tt.cfg, nil)
			c := e.mint(t, qr.MiddleNumber, "")
			last := len(tt.scanners) - 1
			for _, s := range tt.scanners[:last] {
				if res := e.post(t, "/q/"+c.Token, s); res.status != http.StatusOK {
					t.Fatalf("scan = %d", res.status)
				}
			}
			res := e.post(t, "/q/"+c.Token, tt.scanners[last])
			if res.status != http.StatusTooManyRequests || !strings.Contains(res.body, "Too many attempts") {
				t.Fatalf("over the limit = %d\n%s", res.status, res.body)
			}
			ra, err := strconv.Atoi(res.header.Get("Retry-After"))
			if err != nil || ra < 1 || ra > int(window.Seconds()) {
				t.Errorf("Retry-After = %q, want 1..%d seconds", res.header.Get("Retry-After"), int(window.Seconds()))
			}
			if !strings.Contains(res.body, "wait "+strconv.Itoa(ra)+" seconds") {
				t.Errorf("page does not say how long to wait (%ds):\n%s", ra, res.body)
			}
		})
	}
}

func TestPoolExhausted(t *testing.T) {
	for _, mode := range []qr.Mode{qr.MiddleNumber, qr.Callback} {
		t.Run(string(mode), func(t *testing.T) {
			// No virtual numbers at all.
			e := newEnv(t, 0, qr.Config{}, nil)
			e.realCallbacks(t)
			c := e.mint(t, mode, "")
			res := e.post(t, "/q/"+c.Token, scannerInput)
			if res.status != http.StatusServiceUnavailable || !strings.Contains(res.body, "No line available right now, try again in a few minutes") {
				t.Fatalf("POST = %d\n%s", res.status, res.body)
			}
			if ra, err := strconv.Atoi(res.header.Get("Retry-After")); err != nil || ra <= 0 {
				t.Errorf("Retry-After = %q", res.header.Get("Retry-After"))
			}
		})
	}
}

func TestInternalError(t *testing.T) {
	e := newEnv(t, 2, qr.Config{}, nil)
	c := e.mint(t, qr.MiddleNumber, "")
	e.rdb.Close()
	for _, res := range []resp{e.post(t, "/q/"+c.Token, scannerInput), e.get(t, "/q/"+c.Token)} {
		if res.status != http.StatusInternalServerError || !strings.Contains(res.body, "Something went wrong") {
			t.Errorf("with Redis gone = %d\n%s", res.status, res.body)
		}
		if strings.Contains(res.body, "redis") || strings.Contains(res.body, "closed") {
			t.Errorf("500 page shows the error:\n%s", res.body)
		}
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "scanner=139****0002") || !strings.Contains(logs, "closed") {
		t.Errorf("error not logged with the masked scanner:\n%s", logs)
	}
	noNumbers(t, logs, false)
}

// fakeCallbacks records Start requests.
type fakeCallbacks struct {
	mu   sync.Mutex
	reqs []callback.Request
	cb   callback.Callback
	err  error
}

func (f *fakeCallbacks) Start(_ context.Context, r callback.Request) (callback.Callback, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, r)
	return f.cb, f.err
}

func (f *fakeCallbacks) requests() []callback.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]callback.Request(nil), f.reqs...)
}

func TestCallbackMode(t *testing.T) {
	cbs := &fakeCallbacks{cb: callback.Callback{
		ID: "4f2a9c0e1b7d", State: call.CallbackCallingFirst, X: "+8617000000001",
		First: e164.Mask(scanner), Second: e164.Mask(owner),
	}}
	e := newEnv(t, 2, qr.Config{}, cbs)
	c := e.mint(t, qr.Callback, "Desk")
	form := e.get(t, "/q/"+c.Token)
	if form.status != http.StatusOK || !strings.Contains(form.body, "we will call you") || !strings.Contains(form.body, "Call privately") {
		t.Fatalf("callback form = %d\n%s", form.status, form.body)
	}
	res := e.post(t, "/q/"+strings.ToUpper(c.Token), scannerInput)
	if res.status != http.StatusOK {
		t.Fatalf("POST = %d\n%s", res.status, res.body)
	}
	for _, s := range []string{"We are calling you now", "4f2a9c0e1b7d", "calling you", "+86 170 0000 0001"} {
		if !strings.Contains(res.body, s) {
			t.Errorf("callback page lacks %q:\n%s", s, res.body)
		}
	}
	reqs := cbs.requests()
	if len(reqs) != 1 || reqs[0].Code != c.Token || strings.TrimSpace(reqs[0].Caller) == "" {
		t.Fatalf("Start requests %+v, want one for %s", reqs, c.Token)
	}
	if p, err := cn.Parse(reqs[0].Caller); err != nil || p != scanner {
		t.Errorf("Start caller %q, want the scanner", reqs[0].Caller)
	}
	// The callback counts against the scan limits like a middle-number scan.
	if n, _ := e.rdb.Get(context.Background(), "pn:qrs:{"+scanner+"}:rl").Int(); n != 1 {
		t.Errorf("scanner limit counter = %d, want 1", n)
	}
	// A bad number never reaches the callback service.
	if res := e.post(t, "/q/"+c.Token, "banana"); res.status != http.StatusUnprocessableEntity {
		t.Errorf("bad number = %d", res.status)
	}
	if len(cbs.requests()) != 1 {
		t.Errorf("a bad number started a callback")
	}

	// A callback that could not even be placed.
	cbs.cb = callback.Callback{ID: "77", State: call.CallbackFailed}
	if res := e.post(t, "/q/"+c.Token, "13700000003"); res.status != http.StatusServiceUnavailable || !strings.Contains(res.body, "We could not call you") {
		t.Errorf("failed callback = %d\n%s", res.status, res.body)
	}
	// The code went away between the scan and the start.
	cbs.cb, cbs.err = callback.Callback{}, callback.ErrUnknownCode
	if res := e.post(t, "/q/"+c.Token, "13600000004"); res.status != http.StatusNotFound {
		t.Errorf("unknown code from Start = %d", res.status)
	}
	// Anything else is a 500.
	cbs.err = fmt.Errorf("queue: %w", io.ErrUnexpectedEOF)
	if res := e.post(t, "/q/"+c.Token, "13500000005"); res.status != http.StatusInternalServerError {
		t.Errorf("Start failing = %d", res.status)
	}
}

func TestCallbackModeUnavailable(t *testing.T) {
	e := newEnv(t, 2, qr.Config{}, nil)
	c := e.mint(t, qr.Callback, "")
	for _, res := range []resp{e.get(t, "/q/"+c.Token), e.post(t, "/q/"+c.Token, scannerInput)} {
		if res.status != http.StatusServiceUnavailable || !strings.Contains(res.body, "not available") || strings.Contains(res.body, "<form") {
			t.Errorf("callback code without Callbacks = %d\n%s", res.status, res.body)
		}
	}
}

func TestFormRequestChecks(t *testing.T) {
	e := newEnv(t, 2, qr.Config{}, nil)
	c := e.mint(t, qr.MiddleNumber, "")
	path := "/q/" + c.Token
	form := url.Values{"number": {scannerInput}}.Encode()
	tests := []struct {
		name   string
		ctype  string
		body   string
		header map[string]string
		want   int
	}{
		{"browser same-origin", "application/x-www-form-urlencoded", form, map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "null"}, 200},
		{"old browser, same host", "application/x-www-form-urlencoded; charset=UTF-8", form, map[string]string{"Origin": "http://example.com"}, 200},
		{"no-referrer origin", "application/x-www-form-urlencoded", form, map[string]string{"Origin": "null"}, 200},
		{"no browser headers", "application/x-www-form-urlencoded", form, nil, 200},
		{"cross-site", "application/x-www-form-urlencoded", form, map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}, 403},
		{"same-site", "application/x-www-form-urlencoded", form, map[string]string{"Sec-Fetch-Site": "same-site"}, 403},
		{"old browser, other origin", "application/x-www-form-urlencoded", form, map[string]string{"Origin": "https://evil.example"}, 403},
		{"json", "application/json", `{"number":"13900000002"}`, nil, 415},
		{"multipart", "multipart/form-data; boundary=x", "--x--", nil, 415},
		{"text", "text/plain", "number=13900000002", nil, 415},
		{"no content type", "", form, nil, 415},
		{"too big", "application/x-www-form-urlencoded", form + "&pad=" + strings.Repeat("x", 8<<10), nil, 413},
		{"bad encoding", "application/x-www-form-urlencoded", "number=%zz", nil, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(tt.body))
			if tt.ctype != "" {
				r.Header.Set("Content-Type", tt.ctype)
			}
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			if res := e.do(t, r); res.status != tt.want {
				t.Errorf("status %d, want %d\n%s", res.status, tt.want, res.body)
			}
		})
	}
	for _, m := range []string{http.MethodPut, http.MethodDelete, http.MethodPatch} {
		res := e.do(t, httptest.NewRequest(m, path, nil))
		if res.status != http.StatusMethodNotAllowed || res.header.Get("Allow") != "GET, HEAD, POST" {
			t.Errorf("%s = %d, Allow %q", m, res.status, res.header.Get("Allow"))
		}
	}
}

// TestMounted serves the page as cmd/privnum mounts it: under /q/ of a mux
// in front of another handler.
func TestMounted(t *testing.T) {
	e := newEnv(t, 2, qr.Config{}, nil)
	c := e.mint(t, qr.MiddleNumber, "")
	mux := http.NewServeMux()
	mux.Handle(scanpage.PathPrefix, e.h)
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "api") }))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	res, err := http.Get(srv.URL + "/q/" + c.Token)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(b), "Call privately") {
		t.Errorf("mounted GET = %d\n%s", res.StatusCode, b)
	}
	res, err = http.PostForm(srv.URL+"/q/"+c.Token, url.Values{"number": {scannerInput}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(html.UnescapeString(string(b)), `href="tel:+86170`) {
		t.Errorf("mounted POST = %d\n%s", res.StatusCode, b)
	}
}

// queue records the callbacks handed to privnum serve.
type queue struct {
	mu  sync.Mutex
	ids []string
}

func (q *queue) Enqueue(_ context.Context, kind, id string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.ids = append(q.ids, kind+":"+id)
	return nil
}

// realCallbacks replaces e's handler with one on a real callback service
// that queues its calls.
func (e *env) realCallbacks(t *testing.T) (*callback.Service, *queue) {
	t.Helper()
	q := &queue{}
	log := slog.New(slog.NewTextHandler(e.logs, nil))
	cbs := callback.New(e.rdb, callback.Deps{Bindings: e.bindings, Owners: e.qr, Queue: q}, callback.Config{Logger: log})
	e.h = scanpage.New(scanpage.Config{Codes: e.qr, Callbacks: cbs, Logger: log, Location: time.UTC})
	return cbs, q
}

func TestCallbackModeRealService(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 2, qr.Config{}, nil)
	cbs, q := e.realCallbacks(t)
	c := e.mint(t, qr.Callback, "Desk")
	res := e.post(t, "/q/"+c.Token, scannerInput)
	if res.status != http.StatusOK || !strings.Contains(res.body, "We are calling you now") {
		t.Fatalf("POST = %d\n%s", res.status, res.body)
	}
	if len(q.ids) != 1 || !strings.HasPrefix(q.ids[0], callback.JobKind+":") {
		t.Fatalf("queued %v, want one callback", q.ids)
	}
	id := strings.TrimPrefix(q.ids[0], callback.JobKind+":")
	if !strings.Contains(res.body, "<code>"+id+"</code>") || !strings.Contains(res.body, "about to call you") {
		t.Errorf("page lacks the callback id %s and its state:\n%s", id, res.body)
	}
	cb, err := cbs.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if cb.First != e164.Mask(scanner) || cb.Second != e164.Mask(owner) || cb.State != call.CallbackRequested {
		t.Errorf("callback %+v, want scanner first, owner second", cb)
	}
	if !strings.Contains(res.body, strings.Join(strings.Fields(displayed(cb.X)), " ")) {
		t.Errorf("page does not say which number will ring (%s):\n%s", cb.X, res.body)
	}
	noNumbers(t, e.logs.String(), false)
}

// displayed is how the page formats a CN virtual number.
func displayed(x string) string {
	// +8617000000001 -> +86 170 0000 0001
	return x[:3] + " " + x[3:6] + " " + x[6:10] + " " + x[10:]
}

func TestIPLimit(t *testing.T) {
	e := newEnv(t, 2, qr.Config{}, nil)
	e.h = scanpage.New(scanpage.Config{
		Codes: e.qr, Location: time.UTC, Logger: slog.New(slog.NewTextHandler(e.logs, nil)),
		Redis: e.rdb, IPLimit: 2, IPWindow: time.Hour,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")},
	})
	c := e.mint(t, qr.MiddleNumber, "Shop")
	path := "/q/" + c.Token
	tests := []struct {
		name   string
		post   bool
		remote string
		xff    string
		status int
	}{
		{"first", false, "192.0.2.1:1000", "", 200},
		{"second, a scan", true, "192.0.2.1:1001", "", 200},
		{"third is refused", false, "192.0.2.1:1002", "", 429},
		{"a scan is refused too", true, "192.0.2.1:1003", "", 429},
		{"another IP", false, "192.0.2.2:1000", "", 200},
		{"X-Forwarded-For from an untrusted peer is ignored", false, "192.0.2.2:1000", "192.0.2.9", 200},
		{"untrusted peer's own limit", false, "192.0.2.2:1000", "192.0.2.9", 429},
		{"trusted proxy: the client is the forwarded address", false, "10.0.0.1:80", "192.0.2.1", 429},
		{"trusted proxy: a spoofed leftmost address is skipped", false, "10.0.0.1:80", "192.0.2.1, 192.0.2.3", 200},
		{"trusted proxy chain", false, "10.0.0.1:80", "192.0.2.1, 10.0.0.2", 429},
		{"trusted proxy, no header: the proxy itself", false, "10.0.0.1:80", "", 200},
		{"IPv6", false, "[2001:db8::1]:1000", "", 200},
		{"IPv6, same /64", false, "[2001:db8::2]:1000", "", 200},
		{"IPv6, same /64 refused", false, "[2001:db8::ffff]:1000", "", 429},
		{"IPv6, another /64", false, "[2001:db8:0:1::1]:1000", "", 200},
		{"IPv4-mapped IPv6 is the IPv4 address", false, "[::ffff:192.0.2.1]:1000", "", 429},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, path, nil)
			if tt.post {
				r = httptest.NewRequest(http.MethodPost, path, strings.NewReader(url.Values{"number": {scannerInput}}.Encode()))
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				r.Header.Set("Sec-Fetch-Site", "same-origin")
			}
			r.RemoteAddr = tt.remote
			if tt.xff != "" {
				r.Header.Set("X-Forwarded-For", tt.xff)
			}
			res := e.do(t, r)
			if res.status != tt.status {
				t.Fatalf("status %d, want %d: %s", res.status, tt.status, res.body)
			}
			ra := res.header.Get("Retry-After")
			if tt.status != 429 {
				if ra != "" {
					t.Errorf("Retry-After %q on %d", ra, res.status)
				}
				return
			}
			// 2 per hour: a request is allowed again in half an hour.
			if secs, err := strconv.Atoi(ra); err != nil || secs < 1700 || secs > 1800 {
				t.Errorf("Retry-After %q, want about 1800", ra)
			}
			if !strings.Contains(res.body, "Too many attempts") || !strings.Contains(res.body, "Please wait") {
				t.Errorf("429 page: %s", res.body)
			}
		})
	}
	if keys := redistest.Keys(t, e.rdb, "pn:rl:scanip:*"); len(keys) == 0 || !strings.Contains(strings.Join(keys, " "), "pn:rl:scanip:{192.0.2.1}") {
		t.Errorf("per-IP buckets %v", keys)
	}
}

func TestIPLimitOff(t *testing.T) {
	e := newEnv(t, 0, qr.Config{}, nil)
	e.h = scanpage.New(scanpage.Config{Codes: e.qr, Location: time.UTC, Redis: e.rdb, IPLimit: -1})
	for range 3 * scanpage.DefaultIPLimit / 2 {
		if res := e.get(t, "/q/nosuchcode"); res.status != 404 {
			t.Fatalf("status %d, want 404", res.status)
		}
	}
	if keys := redistest.Keys(t, e.rdb, "pn:rl:scanip:*"); len(keys) != 0 {
		t.Errorf("buckets kept with the limit off: %v", keys)
	}
}
