package scanpage_test

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/internal/redistest"
	"github.com/privnum/privnum/pool"
	"github.com/privnum/privnum/qr"
	"github.com/privnum/privnum/scanpage"
)

var (
	fuzzMethods      = []string{"POST", "GET", "HEAD", "PUT"}
	fuzzContentTypes = []string{
		"application/x-www-form-urlencoded", "", "application/x-www-form-urlencoded; charset=utf-8",
		"multipart/form-data; boundary=x", "text/plain", "application/x-www-form-urlencoded; charset",
	}
	// fuzzOrigins are Sec-Fetch-Site and Origin pairs.
	fuzzOrigins = [][2]string{
		{"same-origin", "http://example.com"}, {"", ""}, {"", "null"}, {"", "http://example.com"},
		{"cross-site", "https://evil.example"}, {"", "https://evil.example"}, {"none", ""}, {"", "::"},
	}
)

// FuzzScanForm sends the scan page any form, to a middle-number code, a
// callback code (served by no callback service), either spelled in upper
// case, or any other token, with any method, Content-Type and origin, on a
// real qr service and Redis. No page is an internal error (500), and every
// page passes checkPage: the security headers, the inline style allowed by
// its hash, no script, and neither the owner's nor the scanner's number.
// Rate limits are off so that scans keep reaching the binding service; one
// Redis serves every input.
func FuzzScanForm(f *testing.F) {
	h, tokens := fuzzScanPage(f)
	for _, s := range []struct {
		token                 uint8
		other                 string
		method, ctype, origin uint8
		body                  string
	}{
		{body: "number=139+0000+0002"},
		{body: "number=%2B8613900000002"},
		{body: "number=13800138000"},
		{body: "number=12"},
		{body: "number=abc&number=139+0000+0002"},
		{body: "number=" + strings.Repeat("9", 40)},
		{body: "number=%zz"},
		{token: 1, body: "number=139+0000+0002"},
		{token: 2, body: "number=139+0000+0002"},
		{token: 3, other: "nope", body: "number=139+0000+0002"},
		{token: 3, other: "a/b", body: "number=139+0000+0002"},
		{method: 1}, {token: 1, method: 2}, {method: 3},
		{ctype: 1, body: "number=139+0000+0002"},
		{origin: 4, body: "number=139+0000+0002"},
		{origin: 7, body: "number=139+0000+0002"},
	} {
		f.Add(s.token, s.other, s.method, s.ctype, s.origin, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, ti uint8, other string, mi, ci, oi uint8, body []byte) {
		var token string
		switch ti % 4 {
		case 0, 1:
			token = tokens[ti%2]
		case 2:
			token = strings.ToUpper(tokens[0])
		default:
			token = url.PathEscape(other)
		}
		method := fuzzMethods[int(mi)%len(fuzzMethods)]
		r := httptest.NewRequest(method, scanpage.PathPrefix+token, bytes.NewReader(body))
		if ct := fuzzContentTypes[int(ci)%len(fuzzContentTypes)]; ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		o := fuzzOrigins[int(oi)%len(fuzzOrigins)]
		if o[0] != "" {
			r.Header.Set("Sec-Fetch-Site", o[0])
		}
		if o[1] != "" {
			r.Header.Set("Origin", o[1])
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code == http.StatusInternalServerError {
			t.Fatalf("%s %s %q: 500", method, r.URL.Path, body)
		}
		res := resp{status: w.Code, header: w.Header(), raw: w.Body.String()}
		res.body = html.UnescapeString(res.raw)
		checkPage(t, res, method == http.MethodHead)
	})
}

// fuzzScanPage returns the scan page on a real qr service with 8 virtual
// numbers and no rate limits, and the tokens of a middle-number code and
// of a callback code of the owner.
func fuzzScanPage(tb testing.TB) (http.Handler, [2]string) {
	tb.Helper()
	ctx := context.Background()
	rdb := redistest.Client(tb)
	p := pool.New(rdb, cn)
	var nums []pool.Entry
	for i := range 8 {
		nums = append(nums, pool.Entry{Number: fmt.Sprintf("1700000%04d", i)})
	}
	if _, err := p.Add(ctx, nums); err != nil {
		tb.Fatal(err)
	}
	b := binding.New(rdb, p, cn, binding.Config{Quarantine: time.Hour})
	s, err := qr.New(rdb, cn, b, qr.Config{PublicBase: "https://example.com", PerTokenLimit: -1, PerScannerLimit: -1})
	if err != nil {
		tb.Fatal(err)
	}
	var tokens [2]string
	for i, mode := range []qr.Mode{qr.MiddleNumber, qr.Callback} {
		c, err := s.Mint(ctx, qr.MintRequest{Owner: owner, Mode: mode, Label: "Front desk"})
		if err != nil {
			tb.Fatal(err)
		}
		tokens[i] = c.Token
	}
	h := scanpage.New(scanpage.Config{Codes: s, Location: time.UTC, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	return h, tokens
}
