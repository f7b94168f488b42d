package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/privnum/privnum/apikey"
	"github.com/privnum/privnum/ratelimit"
	"github.com/privnum/privnum/reject"
)

const realm = `Bearer realm="privnum"`

// authFailure is a refused request and its WWW-Authenticate challenge
// (RFC 6750): error="invalid_token" for an unknown or revoked key,
// error="insufficient_scope" with the scope needed for a 403.
type authFailure struct {
	problem   *Problem
	challenge string
}

// authenticate finds the API key of a request and checks it grants scope.
// The key is read from "Authorization: Bearer <key>" or, failing that,
// "X-API-Key: <key>". It is looked up by its SHA-256 digest (see package
// apikey), so no secret is compared byte by byte.
func (s *Server) authenticate(ctx context.Context, r *http.Request, scope apikey.Scope) (apikey.Key, *authFailure) {
	secret, fail := credentials(r)
	if fail != nil {
		return apikey.Key{}, fail
	}
	key, err := s.cfg.Keys.Authenticate(ctx, secret)
	if errors.Is(err, apikey.ErrUnknownKey) {
		return apikey.Key{}, &authFailure{problem(kUnauthorized, "the API key is not valid: unknown or revoked"), realm + `, error="invalid_token"`}
	}
	if err != nil {
		s.log.Error("authentication failed", "request_id", infoOf(ctx).id, "err", err)
		p, _ := problemFor(err)
		return apikey.Key{}, &authFailure{p, ""}
	}
	if !key.Allows(scope) {
		p := problem(kForbidden, fmt.Sprintf("this operation needs an API key with scope %q (or admin)", scope))
		p.Scope = string(scope)
		return key, &authFailure{p, realm + `, error="insufficient_scope", scope="` + string(scope) + `"`}
	}
	return key, nil
}

// credentials extracts the presented secret.
func credentials(r *http.Request) (string, *authFailure) {
	if auth := r.Header.Get("Authorization"); auth != "" {
		scheme, token, _ := strings.Cut(auth, " ")
		token = strings.TrimSpace(token)
		if !strings.EqualFold(scheme, "Bearer") || token == "" {
			return "", &authFailure{problem(kUnauthorized, "the Authorization header must be: Bearer <API key>"), realm + `, error="invalid_request"`}
		}
		return token, nil
	}
	if k := strings.TrimSpace(r.Header.Get("X-API-Key")); k != "" {
		return k, nil
	}
	return "", &authFailure{problem(kUnauthorized, "no API key: send Authorization: Bearer <API key> (or X-API-Key)"), realm}
}

// rateLimitPrefix starts the Redis keys of the API key rate limits:
// pn:rl:api:{<key id>:<scope>}, one token bucket per key and scope.
const rateLimitPrefix = "pn:rl:api"

// errKeyRateLimited is what a *reject.RateLimitError from takeToken wraps.
var errKeyRateLimited = errors.New("too many requests with this API key")

// keyRateLimited is a refusal by an API key's rate limit for a scope.
type keyRateLimited struct {
	scope apikey.Scope
	limit apikey.Limit
	err   *reject.RateLimitError
}

func (e *keyRateLimited) Error() string {
	return fmt.Sprintf("scope %s, limit %s: %v", e.scope, e.limit, e.err)
}

func (e *keyRateLimited) Unwrap() error { return e.err }

// takeToken takes one request from the bucket of key and scope, sized by
// the key's limit for scope (apikey.Key.LimitFor). It returns a
// *keyRateLimited wrapping a *reject.RateLimitError (Limit "api_key")
// when the bucket is empty. Every request that passed authentication
// counts, replays of idempotent requests included.
func (s *Server) takeToken(ctx context.Context, key apikey.Key, scope apikey.Scope) error {
	l := key.LimitFor(scope)
	if l.Unlimited() {
		return nil
	}
	ok, retry, err := ratelimit.New(s.cfg.Redis, rateLimitPrefix, l.N, l.Window).Take(ctx, key.ID+":"+string(scope))
	if err != nil {
		return fmt.Errorf("API key %s: %w", key.ID, err)
	}
	if !ok {
		return &keyRateLimited{scope, l, &reject.RateLimitError{Limit: "api_key", RetryAfter: retry, Err: errKeyRateLimited}}
	}
	return nil
}
