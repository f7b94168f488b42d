// Package scanpage serves the web page a QR code opens: GET /q/TOKEN shows
// a small mobile form asking for the scanner's number, and POST /q/TOKEN
// scans the code. A middle-number code answers with a short-lived virtual
// number as a tel: link; a callback code starts a callback to the scanner.
//
// The page needs no JavaScript and loads nothing: its only style sheet is
// inline, allowed by a hash in a strict Content-Security-Policy. Pages never
// show the owner's number, nor the scanner's. Unknown and revoked codes get
// the same 404 page, so guesses reveal nothing.
//
// The form is public and carries no credentials, so there is nothing for a
// cross-site request to borrow; still, a POST must be a form
// (application/x-www-form-urlencoded, 415 otherwise), must not come from
// another site (Sec-Fetch-Site, or failing that Origin, 403 otherwise), and
// its body is capped (413).
//
// With Config.Redis set, each source IP may open or submit the page at
// most IPLimit times per IPWindow (default 30 per minute), counted across
// every process that shares the Redis; more answer 429 with Retry-After
// and a plain page. The source IP is the connection's peer address
// (Request.RemoteAddr). X-Forwarded-For is read only when that peer is one
// of Config.TrustedProxies: the client is then the rightmost address in
// the header that is not itself a trusted proxy, so a client cannot choose
// its own address by sending the header. IPv6 clients are counted per /64,
// the block one host usually controls.
package scanpage

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"errors"
	"html/template"
	"log/slog"
	"math"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/nyaruka/phonenumbers"
	"github.com/redis/go-redis/v9"

	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/call"
	"github.com/privnum/privnum/callback"
	"github.com/privnum/privnum/e164"
	"github.com/privnum/privnum/qr"
	"github.com/privnum/privnum/ratelimit"
	"github.com/privnum/privnum/reject"
)

// Codes looks up and scans QR codes. *qr.Service implements it.
type Codes interface {
	Get(ctx context.Context, token string) (qr.Code, error)
	// ScanPublic scans without telling whether the scanner is the owner
	// (see qr.Service.ScanPublic).
	ScanPublic(ctx context.Context, token, scanner string) (qr.ScanResult, error)
}

// Callbacks starts callbacks. *callback.Service implements it.
type Callbacks interface {
	Start(ctx context.Context, r callback.Request) (callback.Callback, error)
}

// Config configures the handler.
type Config struct {
	// Codes is required.
	Codes Codes
	// Callbacks serves callback-mode codes; nil shows them as not
	// available.
	Callbacks Callbacks
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Location is the time zone of the "valid until" time; default
	// time.Local.
	Location *time.Location
	// MaxBodyBytes caps the form body; default 4 KiB.
	MaxBodyBytes int64

	// Redis, when set, keeps the per-source-IP limit (see the package
	// documentation); nil turns it off.
	Redis redis.UniversalClient
	// IPLimit is how many requests to the page (GET and POST alike) one
	// source IP may make per IPWindow; default 30. Negative turns the
	// limit off.
	IPLimit int
	// IPWindow is the window of IPLimit; default one minute.
	IPWindow time.Duration
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is
	// believed. Empty: the source IP is always the connection's peer.
	TrustedProxies []netip.Prefix
}

// PathPrefix is where the handler expects to be mounted: it serves
// PathPrefix + TOKEN, and answers 404 for anything else.
const PathPrefix = "/q/"

const (
	defaultMaxBody = 4 << 10
	// maxTokenLen bounds the path segment passed on to Codes.
	maxTokenLen = 64
	// maxNumberLen bounds the number field.
	maxNumberLen = 32
	// poolRetry is the Retry-After sent with "no line available".
	poolRetry = 2 * time.Minute
	// DefaultIPLimit and DefaultIPWindow are the per-source-IP limit
	// when Config leaves it zero.
	DefaultIPLimit  = 30
	DefaultIPWindow = time.Minute
	// ipLimitPrefix starts the Redis keys of the per-IP buckets:
	// pn:rl:scanip:{<ip or /64>}.
	ipLimitPrefix = "pn:rl:scanip"
)

var (
	//go:embed templates/page.html
	pageHTML string
	//go:embed templates/page.css
	pageCSS string

	pageTmpl = template.Must(template.New("page").Parse(pageHTML))
	// csp allows the inline style sheet by its hash and nothing else: no
	// script, no images, no fonts, no framing; forms post only to us.
	csp = "default-src 'none'; style-src '" + cssHash(pageCSS) + "'; form-action 'self'; " +
		"frame-ancestors 'none'; base-uri 'none'"
)

func cssHash(css string) string {
	h := sha256.Sum256([]byte(css))
	return "sha256-" + base64.StdEncoding.EncodeToString(h[:])
}

type handler struct {
	codes     Codes
	callbacks Callbacks
	log       *slog.Logger
	loc       *time.Location
	maxBody   int64
	ipLimit   *ratelimit.Limiter // nil: no per-IP limit
	proxies   []netip.Prefix
}

// New returns the handler for GET and POST /q/{token}. It panics if
// cfg.Codes is nil.
func New(cfg Config) http.Handler {
	if cfg.Codes == nil {
		panic("scanpage.New: Config.Codes is nil")
	}
	h := &handler{codes: cfg.Codes, callbacks: cfg.Callbacks, log: cfg.Logger, loc: cfg.Location, maxBody: cfg.MaxBodyBytes}
	if h.log == nil {
		h.log = slog.Default()
	}
	if h.loc == nil {
		h.loc = time.Local
	}
	if h.maxBody <= 0 {
		h.maxBody = defaultMaxBody
	}
	if cfg.Redis != nil && cfg.IPLimit >= 0 {
		n, win := cfg.IPLimit, cfg.IPWindow
		if n == 0 {
			n = DefaultIPLimit
		}
		if win <= 0 {
			win = DefaultIPWindow
		}
		h.ipLimit = ratelimit.New(cfg.Redis, ipLimitPrefix, n, win)
	}
	h.proxies = cfg.TrustedProxies
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", csp)
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")
	hd.Set("X-Robots-Tag", "noindex, nofollow")

	if !h.allowIP(w, r) {
		return
	}
	token, ok := strings.CutPrefix(r.URL.Path, PathPrefix)
	if !ok || token == "" || len(token) > maxTokenLen || strings.Contains(token, "/") {
		h.render(w, r, http.StatusNotFound, notFoundPage())
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		h.form(w, r, token)
	case http.MethodPost:
		h.submit(w, r, token)
	default:
		hd.Set("Allow", "GET, HEAD, POST")
		h.render(w, r, http.StatusMethodNotAllowed, message("Not allowed", "This page only opens in a browser."))
	}
}

// page is what the template shows.
type page struct {
	Kind  string // form, bound, callback or message
	Title string
	Label string
	// Callback is set on the form of a callback-mode code.
	Callback bool
	Error    string

	// bound
	Tel       template.URL
	Number    string
	Until     string
	UntilISO  string
	ValidFor  string
	Reference string
	// callback
	State string

	Heading string
	Text    string
	CSS     template.CSS
}

func message(heading, text string) page {
	return page{Kind: "message", Title: heading, Heading: heading, Text: text}
}

func notFoundPage() page {
	return message("This code is not valid", "This QR code does not exist or is no longer in use. Ask whoever displays it for a new one.")
}

func (h *handler) render(w http.ResponseWriter, r *http.Request, status int, p page) {
	p.CSS = template.CSS(pageCSS)
	var b strings.Builder
	if err := pageTmpl.Execute(&b, p); err != nil {
		h.log.Error("scan page: template", "err", err)
		http.Error(w, "Internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write([]byte(b.String()))
	}
}

// lookup loads a code for the form; unknown and revoked codes answer
// ok=false after rendering the 404 page.
func (h *handler) lookup(w http.ResponseWriter, r *http.Request, token string) (qr.Code, bool) {
	c, err := h.codes.Get(r.Context(), token)
	switch {
	case errors.Is(err, qr.ErrNotFound) || errors.Is(err, qr.ErrRevoked):
		h.render(w, r, http.StatusNotFound, notFoundPage())
		return c, false
	case err != nil:
		h.fail(w, r, "look up code", "", err)
		return c, false
	}
	return c, true
}

func (h *handler) formPage(c qr.Code, errMsg string) page {
	title := "Call privately"
	if c.Label != "" {
		title = c.Label + " · " + title
	}
	return page{Kind: "form", Title: title, Label: c.Label, Callback: c.Mode == qr.Callback, Error: errMsg}
}

func (h *handler) form(w http.ResponseWriter, r *http.Request, token string) {
	c, ok := h.lookup(w, r, token)
	if !ok {
		return
	}
	if c.Mode == qr.Callback && h.callbacks == nil {
		h.render(w, r, http.StatusServiceUnavailable, callbackUnavailable())
		return
	}
	h.render(w, r, http.StatusOK, h.formPage(c, ""))
}

func callbackUnavailable() page {
	return message("Not available", "Calling back through this code is not available right now. Please try again later.")
}

func (h *handler) submit(w http.ResponseWriter, r *http.Request, token string) {
	if !sameOrigin(r) {
		h.render(w, r, http.StatusForbidden, message("Not allowed", "This form can only be sent from its own page. Scan the code again."))
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		h.render(w, r, http.StatusUnsupportedMediaType, message("Not allowed", "This form can only be sent from its own page. Scan the code again."))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, h.maxBody)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.render(w, r, http.StatusRequestEntityTooLarge, message("Too much data", "The form sent too much data. Scan the code again."))
			return
		}
		h.render(w, r, http.StatusBadRequest, message("Bad request", "The form could not be read. Scan the code again."))
		return
	}
	number := strings.TrimSpace(r.PostForm.Get("number"))
	if len(number) > maxNumberLen {
		number = number[:maxNumberLen+1] // still invalid, and bounded
	}
	ctx := r.Context()
	res, err := h.codes.ScanPublic(ctx, token, number)
	if errors.Is(err, qr.ErrCallbackUnavailable) {
		h.startCallback(w, r, token, number)
		return
	}
	if err != nil {
		h.scanError(w, r, token, number, err)
		return
	}
	if res.Mode == qr.Callback {
		// A qr service that starts callbacks itself.
		h.render(w, r, http.StatusOK, h.callbackPage(callback.Callback{State: call.CallbackRequested}))
		return
	}
	p, ok := h.boundPage(res)
	if !ok {
		h.fail(w, r, "scan", number, errors.New("scan gave no usable virtual number"))
		return
	}
	h.log.Info("qr scanned", "code", qr.ShortCode(strings.ToLower(token)), "scanner", mask(number), "binding", res.BindingID, "x", res.VirtualNumber)
	h.render(w, r, http.StatusOK, p)
}

// allowIP takes one request from the source IP's bucket; when it is
// empty it renders the 429 page and reports false. A Redis failure lets
// the request through (logged): the page's own services still limit
// scans per code and per scanner.
func (h *handler) allowIP(w http.ResponseWriter, r *http.Request) bool {
	if h.ipLimit == nil {
		return true
	}
	ip := sourceIP(r, h.proxies)
	ok, retry, err := h.ipLimit.Take(r.Context(), ip)
	if err != nil {
		h.log.Error("scan page: per-IP limit", "err", err)
		return true
	}
	if ok {
		return true
	}
	h.tooMany(w, r, retry)
	return false
}

// tooMany renders the 429 page with Retry-After (seconds, rounded up).
func (h *handler) tooMany(w http.ResponseWriter, r *http.Request, wait time.Duration) {
	secs := max(1, int(math.Ceil(wait.Seconds())))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	h.render(w, r, http.StatusTooManyRequests, message("Too many attempts", "Please wait "+humanDuration(time.Duration(secs)*time.Second)+" and try again."))
}

// sourceIP returns the key a request counts against: its client's IP,
// or for IPv6 the client's /64. See the package documentation.
func sourceIP(r *http.Request, trusted []netip.Prefix) string {
	addr := peerAddr(r.RemoteAddr)
	if addr.IsValid() && isTrusted(addr, trusted) {
		hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break // a mangled header: stop at the last address known good
			}
			addr = a.Unmap()
			if !isTrusted(addr, trusted) {
				break
			}
		}
	}
	if !addr.IsValid() {
		return r.RemoteAddr
	}
	if addr.Is6() {
		if p, err := addr.WithZone("").Prefix(64); err == nil {
			return p.String()
		}
	}
	return addr.String()
}

func peerAddr(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// scanError renders the page for a failed scan or callback start.
func (h *handler) scanError(w http.ResponseWriter, r *http.Request, token, number string, err error) {
	var rl *reject.RateLimitError
	switch {
	case errors.Is(err, qr.ErrNotFound) || errors.Is(err, qr.ErrRevoked) || errors.Is(err, callback.ErrUnknownCode):
		h.render(w, r, http.StatusNotFound, notFoundPage())
	case errors.Is(err, e164.ErrInvalid):
		h.reform(w, r, token, number, numberProblem(number))
	case errors.Is(err, qr.ErrInvalid):
		// qr.Service.ScanPublic never answers this (the owner of a code
		// gets a stand-in like any scanner's, in either mode); a Codes
		// that refuses a scanner still gets a plain form error.
		h.reform(w, r, token, number, "You cannot call this code from this number. Enter another phone number.")
	case errors.As(err, &rl) || errors.Is(err, qr.ErrRateLimited):
		wait := time.Minute
		if rl != nil && rl.RetryAfter > 0 {
			wait = rl.RetryAfter
		}
		h.tooMany(w, r, wait)
	case errors.Is(err, binding.ErrPoolExhausted):
		w.Header().Set("Retry-After", strconv.Itoa(int(poolRetry.Seconds())))
		h.render(w, r, http.StatusServiceUnavailable, message("No line available", "No line available right now, try again in a few minutes."))
	default:
		h.fail(w, r, "scan", number, err)
	}
}

// reform shows the form again with an error, 422.
func (h *handler) reform(w http.ResponseWriter, r *http.Request, token, number, msg string) {
	c, ok := h.lookup(w, r, token)
	if !ok {
		return
	}
	h.log.Info("qr scan refused", "code", qr.ShortCode(c.Token), "scanner", mask(number), "reason", msg)
	h.render(w, r, http.StatusUnprocessableEntity, h.formPage(c, msg))
}

// fail logs err and renders the generic 500 page.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, what, number string, err error) {
	h.log.Error("scan page: "+what+" failed", "scanner", mask(number), "err", err)
	h.render(w, r, http.StatusInternalServerError, message("Something went wrong", "We could not connect your call. Please try again in a moment."))
}

func (h *handler) startCallback(w http.ResponseWriter, r *http.Request, token, number string) {
	if h.callbacks == nil {
		h.render(w, r, http.StatusServiceUnavailable, callbackUnavailable())
		return
	}
	c, ok := h.lookup(w, r, token)
	if !ok {
		return
	}
	cb, err := h.callbacks.Start(r.Context(), callback.Request{Code: c.Token, Caller: number})
	if errors.Is(err, callback.ErrInvalid) {
		err = errors.Join(err, e164.ErrInvalid)
	}
	if err != nil {
		h.scanError(w, r, token, number, err)
		return
	}
	h.log.Info("qr callback started", "code", qr.ShortCode(c.Token), "scanner", mask(number), "callback", cb.ID, "state", cb.State)
	p := h.callbackPage(cb)
	status := http.StatusOK
	if cb.State == call.CallbackFailed {
		status = http.StatusServiceUnavailable
	}
	h.render(w, r, status, p)
}

var telRe = regexp.MustCompile(`^\+[1-9][0-9]{4,14}$`)

func (h *handler) boundPage(res qr.ScanResult) (page, bool) {
	if !telRe.MatchString(res.VirtualNumber) {
		return page{}, false
	}
	p := page{Kind: "bound", Title: "Your private number is ready", Tel: template.URL("tel:" + res.VirtualNumber), Number: display(res.VirtualNumber)}
	if !res.ExpiresAt.IsZero() {
		at := res.ExpiresAt.In(h.loc)
		p.Until = at.Format("15:04 MST")
		p.UntilISO = at.Format(time.RFC3339)
		if d := time.Until(res.ExpiresAt); d > 0 {
			p.ValidFor = humanDuration(d.Round(time.Minute))
		}
	}
	return p, true
}

func (h *handler) callbackPage(cb callback.Callback) page {
	p := page{Kind: "callback", Title: "We are calling you now", Reference: cb.ID, State: stateText(cb.State)}
	if telRe.MatchString(cb.X) {
		p.Number = display(cb.X)
	}
	if cb.State == call.CallbackFailed {
		p.Title = "We could not call you"
	}
	return p
}

func stateText(s call.CallbackState) string {
	switch s {
	case call.CallbackRequested:
		return "about to call you"
	case call.CallbackCallingFirst:
		return "calling you"
	case call.CallbackCallingSecond:
		return "connecting you"
	case call.CallbackBridged:
		return "connected"
	case call.CallbackCompleted:
		return "finished"
	case call.CallbackFailed:
		return "failed, please try again in a few minutes"
	}
	return string(s)
}

// display formats an E.164 number for reading: "+86 170 0000 0000".
func display(n string) string {
	num, err := phonenumbers.Parse(n, "ZZ")
	if err != nil {
		return n
	}
	return phonenumbers.Format(num, phonenumbers.INTERNATIONAL)
}

// numberProblem names what is wrong with a refused scanner number without
// repeating it.
func numberProblem(n string) string {
	if n == "" {
		return "Enter your phone number."
	}
	digits := 0
	for i, c := range n {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '+' && i == 0, c == ' ', c == '-', c == '(', c == ')', c == '.':
		default:
			return "A phone number can only have digits, spaces and a leading +. Check what you entered."
		}
	}
	switch {
	case digits < 5:
		return "That number is too short. Enter your full phone number."
	case digits > 15:
		return "That number is too long. Enter one phone number."
	}
	return "That is not a valid phone number. Check the digits, or enter it with your country code (+ and the code)."
}

func humanDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		s := max(1, int(math.Ceil(d.Seconds())))
		return plural(s, "second")
	case d < time.Hour:
		return plural(int(math.Ceil(d.Minutes())), "minute")
	}
	return plural(int(math.Ceil(d.Hours())), "hour")
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}

// mask masks a scanner's raw input for logs.
func mask(n string) string {
	var b strings.Builder
	for i, c := range n {
		if c >= '0' && c <= '9' || c == '+' && i == 0 {
			b.WriteRune(c)
		}
	}
	if b.Len() == 0 {
		return ""
	}
	return e164.Mask(b.String())
}

// sameOrigin refuses POSTs a browser made from another site. Browsers that
// send Sec-Fetch-Site are judged by it; otherwise by Origin. "Origin: null"
// is let through: with Referrer-Policy no-referrer a same-origin form post
// sends it, and the form carries no credentials a forged post could use.
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin", "none":
		return true
	case "":
	default:
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}
