package webhook

import (
	"crypto/hmac"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzVerify checks signature verification on any header, body and
// secret: it never panics, a failure wraps ErrInvalidSignature or
// ErrStaleSignature, success needs a v1 element holding the HMAC of the
// body and a timestamp within tolerance, and what Sign writes verifies
// (and stops verifying once the body changes).
func FuzzVerify(f *testing.F) {
	const now = 1_790_000_000
	body := `{"type":"binding.created","data":{"id":"b1"}}`
	good := Sign("whsec_test", time.Unix(now, 0), []byte(body))
	for _, s := range []struct {
		secret, header, body string
		skew                 int64
	}{
		{"whsec_test", good, body, 0},
		{"whsec_test", good, body, 301},
		{"whsec_test", good + ",v1=" + strings.Repeat("0", 64), body, 0},
		{"whsec_test", "v0=abc, " + good, body, -60},
		{"whsec_test", good, body + " ", 0},
		{"whsec_test", "t=1790000000,t=1790000000,v1=00", body, 0},
		{"whsec_test", "t=-9223372036854775808,v1=" + strings.Repeat("ab", 32), "", 0},
		{"", good, body, 0},
		{"whsec_test", "", "", 0},
		{"whsec_test", "t=1790000000", body, 0},
	} {
		f.Add(s.secret, s.header, []byte(s.body), s.skew)
	}
	f.Fuzz(func(t *testing.T, secret, header string, body []byte, skew int64) {
		at := time.Unix(now, 0).Add(time.Duration(skew) * time.Second)
		err := verifyAt(secret, header, body, 0, at)
		if err != nil {
			if !errors.Is(err, ErrInvalidSignature) && !errors.Is(err, ErrStaleSignature) {
				t.Fatalf("verifyAt: %v wraps neither ErrInvalidSignature nor ErrStaleSignature", err)
			}
		} else {
			ts, sigs := parseHeader(t, header)
			if age := at.Sub(time.Unix(ts, 0)); age > DefaultTolerance || age < -DefaultTolerance {
				t.Fatalf("header %q verified at %v: timestamp out of tolerance", header, at)
			}
			want := mac(secret, ts, body)
			match := false
			for _, s := range sigs {
				match = match || hmac.Equal(s, want)
			}
			if secret == "" || !match {
				t.Fatalf("header %q verified without a v1 signature of the body", header)
			}
		}
		if secret == "" {
			return
		}
		h := Sign(secret, at, body)
		if err := verifyAt(secret, h, body, 0, at); err != nil {
			t.Fatalf("Sign(%q, %v) = %q does not verify: %v", secret, at, h, err)
		}
		if err := verifyAt(secret, h, append(body[:len(body):len(body)], 'x'), 0, at); !errors.Is(err, ErrInvalidSignature) {
			t.Fatalf("Sign(%q) = %q verifies another body: %v", secret, h, err)
		}
		if err := verifyAt(secret+"x", h, body, 0, at); !errors.Is(err, ErrInvalidSignature) {
			t.Fatalf("Sign(%q) = %q verifies with another secret: %v", secret, h, err)
		}
	})
}

// parseHeader returns the timestamp and the v1 signatures of a header
// that verified.
func parseHeader(t *testing.T, header string) (int64, [][]byte) {
	t.Helper()
	var ts int64
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			var err error
			if ts, err = strconv.ParseInt(v, 10, 64); err != nil {
				t.Fatalf("header %q verified with timestamp %q: %v", header, v, err)
			}
		case "v1":
			s, err := hex.DecodeString(v)
			if err != nil {
				t.Fatalf("header %q verified with v1 %q: %v", header, v, err)
			}
			sigs = append(sigs, s)
		}
	}
	return ts, sigs
}
