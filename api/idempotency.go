package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"
)

// idempotencyHeader is the request header that makes a create safe to retry
// (draft-ietf-httpapi-idempotency-key-header).
const idempotencyHeader = "Idempotency-Key"

// idempotency remembers the responses of requests sent with an
// Idempotency-Key.
//
// The record for a key lives at pn:idem:{<API key id>}:<sha256 of method,
// path and Idempotency-Key>, so keys are scoped per API key and per
// operation. A request first claims the record with SET NX of a pending
// marker (which expires after the request timeout plus a margin, so a
// crashed server does not hold the key for a day). If the claim fails,
// the existing record decides: a different request fingerprint (method,
// path and body, insignificant JSON whitespace aside) is a 422; a pending
// marker is a concurrent duplicate, a 409; a completed record is replayed
// (status, Location and body) with Idempotent-Replayed: true.
//
// Only successful (2xx) responses are kept, for the TTL (24h). Any other
// outcome deletes the marker: the services change nothing when they fail,
// so a retry under the same key runs again (after numbers were added to an
// exhausted pool, say). Both the store and the delete are compare-and-set
// scripts on the marker, so a request whose marker expired cannot
// overwrite a newer one.
type idempotency struct {
	rdb     redis.UniversalClient
	ttl     time.Duration
	pending time.Duration
}

// idemRecord is what Redis keeps under an Idempotency-Key.
type idemRecord struct {
	// State is "pending" or "done".
	State string `json:"state"`
	// Token tells one request's pending marker from another's.
	Token       string `json:"token,omitempty"`
	Fingerprint string `json:"fp"`
	Status      int    `json:"status,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	Location    string `json:"location,omitempty"`
	Body        []byte `json:"body,omitempty"`
}

// idemClaim is a pending marker this request holds.
type idemClaim struct {
	key    string
	marker string
	fp     string
}

func sum(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// checkIdempotencyKey accepts 1 to 255 printable ASCII characters.
func checkIdempotencyKey(values []string) (string, error) {
	if len(values) != 1 {
		return "", problem(kBadIdemKey, "send exactly one Idempotency-Key header")
	}
	v := values[0]
	if len(v) == 0 || len(v) > 255 {
		return "", problem(kBadIdemKey, "the Idempotency-Key must be 1 to 255 characters")
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return "", problem(kBadIdemKey, "the Idempotency-Key must be printable ASCII")
		}
	}
	return v, nil
}

// begin claims the Idempotency-Key of r for the API key keyID. It returns
// either a claim (go ahead, then call finish) or the response to replay,
// or an error (a *Problem for 400, 409 and 422).
func (m idempotency) begin(ctx context.Context, keyID string, r *http.Request, values []string, body []byte) (*idemClaim, *output, error) {
	ik, err := checkIdempotencyKey(values)
	if err != nil {
		return nil, nil, err
	}
	var compact bytes.Buffer
	if json.Compact(&compact, body) != nil {
		compact.Reset()
		compact.Write(body)
	}
	c := &idemClaim{
		key: "pn:idem:{" + keyID + "}:" + sum(r.Method, r.URL.EscapedPath(), ik),
		fp:  sum(r.Method, r.URL.EscapedPath(), compact.String()),
	}
	pending, _ := json.Marshal(idemRecord{State: "pending", Token: newUUID(), Fingerprint: c.fp})
	c.marker = string(pending)
	for range 3 {
		ok, err := m.rdb.SetNX(ctx, c.key, c.marker, m.pending).Result()
		if err != nil {
			return nil, nil, fmt.Errorf("claim idempotency key: %w", err)
		}
		if ok {
			return c, nil, nil
		}
		raw, err := m.rdb.Get(ctx, c.key).Bytes()
		if errors.Is(err, redis.Nil) {
			continue // expired or deleted meanwhile: claim again
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read idempotency key: %w", err)
		}
		var rec idemRecord
		if err := json.Unmarshal(raw, &rec); err != nil {
			return nil, nil, fmt.Errorf("idempotency record: %w", err)
		}
		switch {
		case rec.Fingerprint != c.fp:
			return nil, nil, problem(kIdemReused, "this Idempotency-Key was used with a different request body; use a new key for a new request")
		case rec.State == "pending":
			return nil, nil, problem(kIdemInFlight, "a request with this Idempotency-Key is still being processed; retry later")
		}
		return nil, &output{status: rec.Status, contentType: rec.ContentType, location: rec.Location, body: rec.Body}, nil
	}
	return nil, nil, problem(kIdemInFlight, "the Idempotency-Key is contended; retry later")
}

// storeScript replaces a pending marker by the final record, or deletes it
// (empty ARGV[2]), only if the marker is still the caller's.
var storeScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) return 1 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1`)

// finish records out under the claim if it is a success, and drops the
// claim otherwise.
func (m idempotency) finish(ctx context.Context, c *idemClaim, out *output) error {
	final := ""
	if out.status >= 200 && out.status < 300 {
		b, err := json.Marshal(idemRecord{State: "done", Fingerprint: c.fp, Status: out.status,
			ContentType: out.contentType, Location: out.location, Body: out.body})
		if err != nil {
			return err
		}
		final = string(b)
	}
	return storeScript.Run(context.WithoutCancel(ctx), m.rdb, []string{c.key}, c.marker, final, m.ttl.Milliseconds()).Err()
}
