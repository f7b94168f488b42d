package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/privnum/privnum/apikey"
	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/cdr"
	"github.com/privnum/privnum/e164"
	"github.com/privnum/privnum/group"
	"github.com/privnum/privnum/order"
	"github.com/privnum/privnum/pool"
	"github.com/privnum/privnum/reject"
	"github.com/privnum/privnum/webhook"
)

// Publisher queues webhook events; *webhook.Dispatcher implements it.
type Publisher interface {
	Publish(ctx context.Context, ev webhook.Event) error
}

// Config wires a Server to the services. Redis, Keys, Pool, Bindings,
// Orders and Calls are required; Webhooks, Events, QR, Callbacks,
// Verifications and Devices are optional.
type Config struct {
	// Redis holds the idempotency records.
	Redis redis.UniversalClient
	// Keys authenticates requests.
	Keys *apikey.Store
	// Pool, Bindings, Orders and Calls are the services the CLI uses too.
	Pool     *pool.Pool
	Bindings *binding.Service
	Orders   *order.Service
	Calls    *cdr.Store
	// Groups, when set, serves /v1/groups (AXG groups; scope bindings).
	Groups *group.Service
	// Webhooks, when set, serves /v1/webhooks.
	Webhooks *webhook.Store
	// Events, when set, receives binding events after successful changes.
	Events Publisher
	// QR, when set, serves /v1/qr-codes.
	QR QRService
	// Callbacks, when set, serves /v1/callbacks.
	Callbacks CallbackService
	// Verifications, when set, serves /v1/verifications.
	Verifications VerificationService
	// Recordings, when set, serves GET /v1/calls/{id}/recording.
	Recordings RecordingService
	// Devices, when set, serves /v1/devices and checks the device tokens
	// that API keys with RequireDevice demand. Without it, requests that
	// such a key makes to scan a QR code or start a callback fail (503).
	Devices DeviceService
	// Logger receives the access log and errors. Default slog.Default().
	Logger *slog.Logger
	// MaxBodyBytes limits request bodies. Default 64 KiB.
	MaxBodyBytes int64
	// IdempotencyTTL is how long a completed request is remembered under
	// its Idempotency-Key. Default 24h.
	IdempotencyTTL time.Duration
	// Timeout bounds a state-changing request. Such requests run to the
	// end even when the client goes away, so that what they did is
	// recorded (and replayed to a retry). Default 30s.
	Timeout time.Duration
}

// Route is one operation the server serves.
type Route struct {
	Method  string
	Pattern string
	// Scope is the API key scope the operation needs; empty for public
	// routes.
	Scope apikey.Scope
	// Idempotent routes honour the Idempotency-Key header.
	Idempotent bool
}

// bodyMode says what a route accepts as request body.
type bodyMode int

const (
	noBody       bodyMode = iota // the body is ignored
	optionalBody                 // empty, or a JSON object
	jsonBody                     // a JSON object
)

// request is what a handler gets.
type request struct {
	*http.Request
	body []byte
	key  apikey.Key
}

// reply is what a handler returns on success.
type reply struct {
	status   int
	body     any // nil: no body
	location string
	// file, when set, is streamed as the body instead (GET routes only,
	// never kept for idempotent replays).
	file *fileBody
}

// fileBody is a response body streamed from elsewhere (a recording).
type fileBody struct {
	contentType string
	body        io.ReadCloser
}

type handlerFunc func(ctx context.Context, rq *request) (reply, error)

type route struct {
	Route
	body bodyMode
	h    handlerFunc
}

// Server is the HTTP API. It is an http.Handler.
type Server struct {
	cfg    Config
	log    *slog.Logger
	parser e164.Parser
	mux    *http.ServeMux
	routes []Route
	idem   idempotency
}

// New returns a Server for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Redis == nil || cfg.Keys == nil || cfg.Pool == nil || cfg.Bindings == nil || cfg.Orders == nil || cfg.Calls == nil {
		return nil, errors.New("api: Redis, Keys, Pool, Bindings, Orders and Calls are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 10
	}
	if cfg.IdempotencyTTL <= 0 {
		cfg.IdempotencyTTL = 24 * time.Hour
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	s := &Server{
		cfg: cfg, log: cfg.Logger, parser: cfg.Bindings.Parser(), mux: http.NewServeMux(),
		idem: idempotency{rdb: cfg.Redis, ttl: cfg.IdempotencyTTL, pending: cfg.Timeout + 30*time.Second},
	}
	s.public("GET /openapi.json", serveOpenAPI)
	s.public("GET /healthz", s.healthz)
	for _, rt := range s.table() {
		s.handle(rt)
	}
	return s, nil
}

// Routes lists the operations the server serves.
func (s *Server) Routes() []Route { return append([]Route(nil), s.routes...) }

// table is the route table.
func (s *Server) table() []route {
	t := []route{
		{Route{"GET", "/v1/numbers", apikey.Numbers, false}, noBody, s.listNumbers},
		{Route{"POST", "/v1/numbers", apikey.Numbers, true}, jsonBody, s.addNumbers},
		{Route{"GET", "/v1/numbers/{number}", apikey.Numbers, false}, noBody, s.getNumber},
		{Route{"POST", "/v1/numbers/{number}/retire", apikey.Numbers, false}, optionalBody, s.retireNumber},
		{Route{"POST", "/v1/numbers/{number}/restore", apikey.Numbers, false}, optionalBody, s.restoreNumber},

		{Route{"POST", "/v1/bindings", apikey.Bindings, true}, jsonBody, s.createBinding},
		{Route{"GET", "/v1/bindings/{id}", apikey.Bindings, false}, noBody, s.getBinding},
		{Route{"POST", "/v1/bindings/{id}/extend", apikey.Bindings, true}, jsonBody, s.extendBinding},
		{Route{"POST", "/v1/bindings/{id}/release", apikey.Bindings, false}, optionalBody, s.releaseBinding},
		{Route{"POST", "/v1/routes:resolve", apikey.Bindings, false}, jsonBody, s.resolve},

		{Route{"POST", "/v1/orders", apikey.Orders, true}, jsonBody, s.openOrder},
		{Route{"GET", "/v1/orders/{id}", apikey.Orders, false}, noBody, s.getOrder},
		{Route{"POST", "/v1/orders/{id}/complete", apikey.Orders, false}, optionalBody, s.completeOrder},
		{Route{"POST", "/v1/orders/{id}/cancel", apikey.Orders, false}, optionalBody, s.cancelOrder},

		{Route{"GET", "/v1/calls", apikey.Calls, false}, noBody, s.listCalls},
	}
	if s.cfg.Recordings != nil {
		t = append(t, route{Route{"GET", "/v1/calls/{id}/recording", apikey.Calls, false}, noBody, s.getRecording})
	}
	if s.cfg.Webhooks != nil {
		t = append(t,
			route{Route{"GET", "/v1/webhooks", apikey.Webhooks, false}, noBody, s.listWebhooks},
			route{Route{"POST", "/v1/webhooks", apikey.Webhooks, true}, jsonBody, s.addWebhook},
			route{Route{"GET", "/v1/webhooks/{id}", apikey.Webhooks, false}, noBody, s.getWebhook},
			route{Route{"DELETE", "/v1/webhooks/{id}", apikey.Webhooks, false}, noBody, s.removeWebhook},
		)
	}
	if s.cfg.QR != nil {
		t = append(t,
			route{Route{"POST", "/v1/qr-codes", apikey.QR, true}, jsonBody, s.mintQR},
			route{Route{"GET", "/v1/qr-codes/{token}", apikey.QR, false}, noBody, s.getQR},
			route{Route{"DELETE", "/v1/qr-codes/{token}", apikey.QR, false}, noBody, s.revokeQR},
			route{Route{"POST", "/v1/qr-codes/{token}/scans", apikey.QR, false}, jsonBody, s.scanQR},
		)
	}
	if s.cfg.Callbacks != nil {
		t = append(t,
			route{Route{"POST", "/v1/callbacks", apikey.Callbacks, true}, jsonBody, s.startCallback},
			route{Route{"GET", "/v1/callbacks/{id}", apikey.Callbacks, false}, noBody, s.getCallback},
		)
	}
	if s.cfg.Verifications != nil {
		t = append(t,
			route{Route{"POST", "/v1/verifications", apikey.Verifications, true}, jsonBody, s.startVerification},
			route{Route{"GET", "/v1/verifications/{id}", apikey.Verifications, false}, noBody, s.getVerification},
			route{Route{"POST", "/v1/verifications/{id}/check", apikey.Verifications, false}, jsonBody, s.checkVerification},
		)
	}
	if s.cfg.Devices != nil {
		t = append(t,
			route{Route{"POST", "/v1/devices", apikey.Devices, false}, jsonBody, s.registerDevice},
			route{Route{"POST", "/v1/devices/verify", apikey.Devices, false}, jsonBody, s.verifyDevice},
		)
	}
	// Last, so that the fuzz corpus's route indexes keep naming the
	// routes they were found on.
	if s.cfg.Groups != nil {
		t = append(t,
			route{Route{"POST", "/v1/groups", apikey.Bindings, true}, jsonBody, s.createGroup},
			route{Route{"GET", "/v1/groups/{name}", apikey.Bindings, false}, noBody, s.getGroup},
			route{Route{"DELETE", "/v1/groups/{name}", apikey.Bindings, false}, noBody, s.deleteGroup},
			route{Route{"POST", "/v1/groups/{name}/members", apikey.Bindings, true}, jsonBody, s.addGroupMembers},
			route{Route{"POST", "/v1/groups/{name}/members:remove", apikey.Bindings, true}, jsonBody, s.removeGroupMembers},
		)
	}
	return t
}

func (s *Server) public(pattern string, h http.HandlerFunc) {
	method, path, _ := strings.Cut(pattern, " ")
	s.routes = append(s.routes, Route{Method: method, Pattern: path})
	s.mux.HandleFunc(pattern, h)
}

// handle registers an authenticated JSON route.
func (s *Server) handle(rt route) {
	s.routes = append(s.routes, rt.Route)
	s.mux.HandleFunc(rt.Method+" "+rt.Pattern, func(w http.ResponseWriter, r *http.Request) {
		s.serveRoute(w, r, rt)
	})
}

// serveRoute runs the steps every API request goes through, in order:
// authentication and scope, the key's rate limit, body limits and Content-Type, the idempotency
// check, the handler, and recording the response for idempotent replays.
func (s *Server) serveRoute(w http.ResponseWriter, r *http.Request, rt route) {
	info := infoOf(r.Context())
	key, fail := s.authenticate(r.Context(), r, rt.Scope)
	info.keyID = key.ID
	if fail != nil {
		if fail.challenge != "" {
			w.Header().Set("WWW-Authenticate", fail.challenge)
		}
		s.writeProblem(w, r, fail.problem)
		return
	}
	if err := s.takeToken(r.Context(), key, rt.Scope); err != nil {
		s.write(w, s.problemOutput(r, err))
		return
	}
	body, p := s.readBody(w, r, rt.body)
	if p != nil {
		s.writeProblem(w, r, p)
		return
	}

	ctx := r.Context()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), s.cfg.Timeout)
		defer cancel()
	}

	var claim *idemClaim
	if ik, ok := r.Header[http.CanonicalHeaderKey(idempotencyHeader)]; ok && rt.Idempotent {
		var out *output
		var err error
		claim, out, err = s.idem.begin(ctx, key.ID, r, ik, body)
		switch {
		case err != nil:
			s.write(w, s.problemOutput(r, err))
			return
		case out != nil:
			w.Header().Set("Idempotent-Replayed", "true")
			s.write(w, out)
			return
		}
	}

	rep, err := rt.h(ctx, &request{Request: r, body: body, key: key})
	if err == nil && rep.file != nil {
		defer rep.file.body.Close()
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Type", rep.file.contentType)
		h.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
		if _, err := io.Copy(w, rep.file.body); err != nil {
			s.log.Warn("streaming a file failed", "request_id", info.id, "route", r.Pattern, "err", err)
		}
		return
	}
	var out *output
	if err != nil {
		out = s.problemOutput(r, err)
	} else {
		out = jsonOutput(rep)
	}
	if claim != nil {
		if err := s.idem.finish(ctx, claim, out); err != nil {
			s.log.Error("idempotency record not saved", "request_id", info.id, "err", err)
		}
	}
	s.write(w, out)
}

// output is a response ready to write (or to keep for a replay).
type output struct {
	status      int
	contentType string
	location    string
	retryAfter  string // Retry-After seconds
	body        []byte
}

func jsonOutput(rep reply) *output {
	out := &output{status: rep.status, location: rep.location}
	if rep.body != nil {
		out.contentType = "application/json"
		out.body = marshal(rep.body)
	}
	return out
}

func marshal(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(fmt.Sprintf("api: encode %T: %v", v, err))
	}
	return buf.Bytes()
}

// problemOutput renders err as a problem response, logging internal errors.
func (s *Server) problemOutput(r *http.Request, err error) *output {
	p, internal := problemFor(err)
	info := infoOf(r.Context())
	if internal {
		s.log.Error("request failed", "request_id", info.id, "route", r.Pattern, "err", err)
	}
	p.Instance = "urn:uuid:" + info.id
	out := &output{status: p.Status, contentType: "application/problem+json", body: marshal(p)}
	var rl *reject.RateLimitError
	switch {
	case errors.As(err, &rl):
		out.retryAfter = retryAfter(rl.RetryAfter)
	case p.Type == ProblemTypeBase+kIdemInFlight.slug:
		out.retryAfter = "1"
	}
	return out
}

// retryAfter renders a wait as Retry-After seconds, rounded up, at least 1.
func retryAfter(d time.Duration) string {
	return strconv.FormatInt(max(1, int64(math.Ceil(d.Seconds()))), 10)
}

func (s *Server) writeProblem(w http.ResponseWriter, r *http.Request, p *Problem) {
	s.write(w, s.problemOutput(r, p))
}

func (s *Server) write(w http.ResponseWriter, out *output) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if out.contentType != "" {
		h.Set("Content-Type", out.contentType)
	}
	if out.location != "" {
		h.Set("Location", out.location)
	}
	if out.retryAfter != "" {
		h.Set("Retry-After", out.retryAfter)
	}
	w.WriteHeader(out.status)
	w.Write(out.body)
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.cfg.Redis.Ping(ctx).Err(); err != nil {
		s.log.Warn("health check: Redis unreachable", "err", err)
		s.writeProblem(w, r, problem(kUnavailable, "Redis is unreachable"))
		return
	}
	s.write(w, jsonOutput(reply{status: http.StatusOK, body: map[string]string{"status": "ok"}}))
}

// reqInfo is what the access log learns while a request is served.
type reqInfo struct {
	id    string
	keyID string
}

type infoKey struct{}

func infoOf(ctx context.Context) *reqInfo {
	if i, ok := ctx.Value(infoKey{}).(*reqInfo); ok {
		return i
	}
	return &reqInfo{}
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// statusWriter records what was written, for the access log.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

// ServeHTTP serves the API. Every response carries an X-Request-Id; every
// request is logged with its route pattern (never its path, which may
// carry numbers), status, size, duration and API key id (never the key).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	info := &reqInfo{id: newUUID()}
	r = r.WithContext(context.WithValue(r.Context(), infoKey{}, info))
	w.Header().Set("X-Request-Id", info.id)
	sw := &statusWriter{ResponseWriter: w}
	_, pattern := s.mux.Handler(r)
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("handler panic", "request_id", info.id, "route", pattern, "panic", v, "stack", string(debug.Stack()))
			if sw.status == 0 {
				s.writeProblem(sw, r, problem(kInternal, "the server could not complete the request"))
			}
		}
		route := pattern
		if route == "" {
			route = "unmatched"
		}
		s.log.Info("http request", "request_id", info.id, "method", r.Method, "route", route,
			"status", sw.status, "bytes", sw.bytes, "duration_ms", time.Since(start).Milliseconds(),
			"key", info.keyID, "remote", r.RemoteAddr)
	}()
	if pattern == "" {
		s.unrouted(sw, r)
		return
	}
	s.mux.ServeHTTP(sw, r)
}

// unrouted answers a request no route matches: the mux's 404 and 405
// become problems (405 keeps its Allow header); anything else the mux
// says (a redirect to a clean path) passes through.
func (s *Server) unrouted(w http.ResponseWriter, r *http.Request) {
	h, _ := s.mux.Handler(r)
	c := &captureWriter{header: http.Header{}}
	h.ServeHTTP(c, r)
	switch c.status {
	case http.StatusNotFound:
		s.writeProblem(w, r, problem(kNotFound, "no such resource: see /openapi.json"))
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", c.header.Get("Allow"))
		s.writeProblem(w, r, problem(kMethod, "the resource does not support "+r.Method+"; see the Allow header"))
	default:
		for k, v := range c.header {
			w.Header()[k] = v
		}
		w.WriteHeader(c.status)
		w.Write(c.body.Bytes())
	}
}

type captureWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (c *captureWriter) Header() http.Header { return c.header }
func (c *captureWriter) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
}
func (c *captureWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return c.body.Write(b)
}
