package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/redis/go-redis/v9"

	"github.com/privnum/privnum/apikey"
	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/cdr"
	"github.com/privnum/privnum/e164"
	"github.com/privnum/privnum/group"
	"github.com/privnum/privnum/internal/redistest"
	"github.com/privnum/privnum/internal/syncbuf"
	"github.com/privnum/privnum/order"
	"github.com/privnum/privnum/pool"
	"github.com/privnum/privnum/qr"
	"github.com/privnum/privnum/reject"
	"github.com/privnum/privnum/verify"
	"github.com/privnum/privnum/webhook"
)

// Numbers used in the tests (region CN).
const (
	x0      = "+8617000000000"
	x1      = "+8617000000001"
	alice   = "+8613800000001"
	bob     = "+8613900000002"
	carol   = "+8613700000003"
	aliceNt = "13800000001" // national form
)

// env is a Server on a fresh Redis with an API key per scope.
type env struct {
	t        *testing.T
	rdb      redis.UniversalClient
	srv      *Server
	cfg      Config
	keys     map[apikey.Scope]string // scope -> secret
	events   *eventLog
	logs     *syncbuf.Buffer
	router   routers.Router
	noVerify bool
	// flows are the callback, verify and device services behind the
	// flow routes.
	flows *flows
	qr    *fakeQR

	mu   sync.Mutex
	seen []resp // every response, for leak checks
}

// responses returns every response the env's server gave so far.
func (e *env) responses() []resp {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]resp(nil), e.seen...)
}

// eventLog is a fake Publisher that keeps what it is given.
type eventLog struct {
	mu  sync.Mutex
	evs []webhook.Event
}

func (l *eventLog) Publish(_ context.Context, ev webhook.Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evs = append(l.evs, ev)
	return nil
}

func (l *eventLog) types() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.evs {
		out = append(out, e.Type)
	}
	return out
}

// loadDoc parses and validates openapi.json.
func loadDoc(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(OpenAPI)
	if err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI document: %v", err)
	}
	return doc
}

// newEnv builds the server with every optional part; mod may change the
// config first.
func newEnv(t *testing.T, mod ...func(*Config)) *env {
	t.Helper()
	return newFlowEnv(t, verify.Config{}, mod...)
}

// newFlowEnv is newEnv with a verify service tuned by vcfg.
func newFlowEnv(t *testing.T, vcfg verify.Config, mod ...func(*Config)) *env {
	t.Helper()
	rdb := redistest.Client(t)
	parser, err := e164.NewParser("CN")
	if err != nil {
		t.Fatal(err)
	}
	p := pool.New(rdb, parser)
	groups := group.New(rdb, parser, group.Config{MaxMembers: 3})
	b := binding.New(rdb, p, parser, binding.Config{Quarantine: time.Hour, Groups: groups})
	e := &env{t: t, rdb: rdb, keys: map[apikey.Scope]string{}, events: &eventLog{}, logs: &syncbuf.Buffer{}, qr: newFakeQR(b)}
	e.cfg = Config{
		Redis: rdb, Keys: apikey.New(rdb), Pool: p, Bindings: b, Orders: order.New(rdb, b), Calls: cdr.New(rdb, 0),
		Webhooks: webhook.NewStore(rdb), Events: e.events, QR: e.qr, Groups: groups,
		Logger: slog.New(slog.NewJSONHandler(e.logs, nil)),
	}
	e.cfg.Recordings = fakeRecordings{"c-rec": {format: "wav", data: "RIFF\x00\x00\x00\x00WAVE"}}
	e.flows = newFlows(t, &e.cfg, e.qr, vcfg)
	e.flows.wire(&e.cfg)
	for _, m := range mod {
		m(&e.cfg)
	}
	if e.srv, err = New(e.cfg); err != nil {
		t.Fatal(err)
	}
	for _, sc := range apikey.AllScopes {
		_, secret, err := e.cfg.Keys.Create(context.Background(), "key-"+string(sc), []apikey.Scope{sc})
		if err != nil {
			t.Fatal(err)
		}
		e.keys[sc] = secret
	}
	if e.router, err = gorillamux.NewRouter(loadDoc(t)); err != nil {
		t.Fatal(err)
	}
	return e
}

// resp is a response as a test sees it.
type resp struct {
	status int
	header http.Header
	body   []byte
	route  string // method and path of the request
}

func (r resp) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("response %d is not JSON: %v\n%s", r.status, err, r.body)
	}
}

func (r resp) problem(t *testing.T) Problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("status %d with Content-Type %q, want application/problem+json: %s", r.status, ct, r.body)
	}
	var p Problem
	r.json(t, &p)
	if p.Status != r.status || p.Title == "" || p.Type == "" || !strings.HasPrefix(p.Instance, "urn:uuid:") {
		t.Fatalf("problem %+v does not match status %d", p, r.status)
	}
	return p
}

// call is one request.
type call struct {
	method, path string
	key          string // secret; "" sends none
	body         string
	header       map[string]string
	noCT         bool // send no Content-Type
}

// do sends c through the server and checks the exchange against
// openapi.json: the response must match the documented response for its
// status; a request the server accepts (2xx) must be valid by the document;
// a request the document refuses must be refused (4xx).
func (e *env) do(c call) resp {
	e.t.Helper()
	build := func() *http.Request {
		var body io.Reader
		if c.body != "" {
			body = strings.NewReader(c.body)
		}
		r := httptest.NewRequest(c.method, c.path, body)
		if c.body != "" && !c.noCT {
			r.Header.Set("Content-Type", "application/json")
		}
		if c.key != "" {
			r.Header.Set("Authorization", "Bearer "+c.key)
		}
		for k, v := range c.header {
			r.Header.Set(k, v)
		}
		return r
	}
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, build())
	res := resp{status: w.Code, header: w.Result().Header, body: w.Body.Bytes(), route: c.method + " " + c.path}
	e.mu.Lock()
	e.seen = append(e.seen, res)
	e.mu.Unlock()
	if w.Header().Get("X-Request-Id") == "" {
		e.t.Errorf("%s %s: no X-Request-Id", c.method, c.path)
	}
	if !e.noVerify {
		e.checkDoc(c, build(), res)
	}
	return res
}

func (e *env) checkDoc(c call, req *http.Request, res resp) {
	e.t.Helper()
	name := c.method + " " + c.path
	route, params, err := e.router.FindRoute(req)
	if err != nil {
		if res.status != http.StatusNotFound && res.status != http.StatusMethodNotAllowed {
			e.t.Errorf("%s: not in openapi.json (%v) but answered %d", name, err, res.status)
		}
		return
	}
	in := &openapi3filter.RequestValidationInput{
		Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{
			MultiError: true,
			AuthenticationFunc: func(_ context.Context, ai *openapi3filter.AuthenticationInput) error {
				switch ai.SecuritySchemeName {
				case "bearerAuth":
					// The scheme is case-insensitive (RFC 9110 section 11.1).
					scheme, token, _ := strings.Cut(ai.RequestValidationInput.Request.Header.Get("Authorization"), " ")
					if strings.EqualFold(scheme, "Bearer") && token != "" {
						return nil
					}
				case "apiKeyHeader":
					if ai.RequestValidationInput.Request.Header.Get("X-API-Key") != "" {
						return nil
					}
				}
				return fmt.Errorf("no %s credentials", ai.SecuritySchemeName)
			},
		},
	}
	reqErr := openapi3filter.ValidateRequest(context.Background(), in)
	switch {
	case res.status < 300 && reqErr != nil:
		e.t.Errorf("%s: the server accepted (%d) a request openapi.json refuses: %v", name, res.status, reqErr)
	case reqErr != nil && res.status < 400:
		e.t.Errorf("%s: openapi.json refuses the request (%v) but the server answered %d", name, reqErr, res.status)
	}
	rin := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: res.status, Header: res.header,
		Body:    io.NopCloser(bytes.NewReader(res.body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), rin); err != nil {
		e.t.Errorf("%s: response %d does not match openapi.json: %v\n%s", name, res.status, err, res.body)
	}
}

// ok sends c and requires status want.
func (e *env) ok(c call, want int, v any) resp {
	e.t.Helper()
	r := e.do(c)
	if r.status != want {
		e.t.Fatalf("%s %s: status %d, want %d: %s", c.method, c.path, r.status, want, r.body)
	}
	if v != nil {
		r.json(e.t, v)
	}
	return r
}

// admin is the admin key's secret.
func (e *env) admin() string { return e.keys[apikey.Admin] }

// addNumbers puts numbers in the pool through the API.
func (e *env) addNumbers(nums ...string) {
	e.t.Helper()
	var entries []string
	for _, n := range nums {
		entries = append(entries, fmt.Sprintf(`{"number":%q}`, n))
	}
	e.ok(call{method: "POST", path: "/v1/numbers", key: e.admin(), body: `{"numbers":[` + strings.Join(entries, ",") + `]}`}, 200, nil)
}

// snapshot returns every key and value in Redis, to prove a request
// stored nothing. The API key rate-limit buckets are left out: every
// authenticated request takes a token, refused or not.
func (e *env) snapshot() string {
	e.t.Helper()
	ctx := context.Background()
	keys := redistest.Keys(e.t, e.rdb, "*")
	var b strings.Builder
	for _, k := range keys {
		if strings.HasPrefix(k, rateLimitPrefix+":") {
			continue
		}
		v, _ := e.rdb.Dump(ctx, k).Result()
		fmt.Fprintf(&b, "%s=%x\n", k, v)
	}
	return b.String()
}

// fakeQR is a QRService that behaves as package qr does, on the real
// binding service: a scan binds owner and scanner for 30 minutes; more than
// scanLimit scans of a code are rate limited; unknown and revoked codes
// scan alike (not found); Get shows a revoked code with qr.ErrRevoked.
type fakeQR struct {
	mu       sync.Mutex
	codes    map[string]QRCode
	owners   map[string]string
	scans    map[string]int
	n        int
	bindings *binding.Service
}

const scanLimit = 2

func newFakeQR(b *binding.Service) *fakeQR {
	return &fakeQR{codes: map[string]QRCode{}, owners: map[string]string{}, scans: map[string]int{}, bindings: b}
}

func (f *fakeQR) Mint(_ context.Context, req QRMintRequest) (QRCode, error) {
	owner, err := f.bindings.Parser().Parse(req.Owner)
	if err != nil {
		return QRCode{}, fmt.Errorf("%w: %w", &reject.FieldError{Field: "owner", Err: qr.ErrInvalid}, err)
	}
	switch req.Mode {
	case "", "middle-number":
		req.Mode = "middle-number"
	case "callback":
	default:
		return QRCode{}, &reject.FieldError{Field: "mode", Reason: fmt.Sprintf("%q: want middle-number or callback", req.Mode), Err: qr.ErrInvalid}
	}
	if len([]rune(req.Label)) > 100 {
		return QRCode{}, &reject.FieldError{Field: "label", Reason: "too long", Err: qr.ErrInvalid}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	tok := fmt.Sprintf("qrtoken%d", f.n)
	c := QRCode{Token: tok, URL: "https://qr.example/q/" + tok, Label: req.Label, Mode: req.Mode, Owner: e164.Mask(owner), CreatedAt: time.Now().UTC()}
	f.codes[tok], f.owners[tok] = c, owner
	return c, nil
}

func (f *fakeQR) Get(_ context.Context, token string) (QRCode, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.codes[token]
	if !ok {
		return QRCode{}, fmt.Errorf("%w: %s", qr.ErrNotFound, token)
	}
	if c.Revoked {
		return c, fmt.Errorf("%w: %s", qr.ErrRevoked, token)
	}
	return c, nil
}

func (f *fakeQR) Revoke(_ context.Context, token string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.codes[token]
	if !ok {
		return fmt.Errorf("%w: %s", qr.ErrNotFound, token)
	}
	c.Revoked = true
	f.codes[token] = c
	return nil
}

func (f *fakeQR) Scan(ctx context.Context, token, scanner string) (QRScanResult, error) {
	scanner, err := f.bindings.Parser().Parse(scanner)
	if err != nil {
		return QRScanResult{}, &reject.FieldError{Field: "scanner", Err: e164.ErrInvalid}
	}
	f.mu.Lock()
	c, ok := f.codes[token]
	owner := f.owners[token]
	f.scans[token]++
	n := f.scans[token]
	f.mu.Unlock()
	switch {
	case !ok || c.Revoked:
		return QRScanResult{}, fmt.Errorf("scan: %w", qr.ErrNotFound)
	case n > scanLimit:
		return QRScanResult{}, &reject.RateLimitError{Limit: "token", RetryAfter: 1500 * time.Millisecond, Err: qr.ErrRateLimited}
	case c.Mode == "callback":
		return QRScanResult{}, fmt.Errorf("scan: %w", qr.ErrCallbackUnavailable)
	}
	b, err := f.bindings.Create(ctx, binding.Request{A: owner, B: scanner, TTL: 30 * time.Minute})
	if err != nil {
		return QRScanResult{}, err
	}
	return QRScanResult{Mode: c.Mode, VirtualNumber: b.X, BindingID: b.ID, ExpiresAt: b.ExpiresAt}, nil
}
