package verify

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/privnum/privnum/reject"
)

// LimitScope names a rate limit. A start that a limit refuses fails with a
// *reject.RateLimitError whose Limit is the scope and which wraps
// ErrRateLimited.
type LimitScope string

// Rate-limit scopes.
const (
	ScopeNumber    LimitScope = "number"
	ScopePrefix    LimitScope = "prefix"
	ScopeRequester LimitScope = "requester"
)

// prefix returns the first PrefixDigits digits of an E.164 number.
func (s *Service) prefix(number string) string {
	d := strings.TrimPrefix(number, "+")
	if len(d) > s.cfg.PrefixDigits {
		d = d[:s.cfg.PrefixDigits]
	}
	return d
}

// takenLimit is a window slot taken by a start, to give back if it fails.
type takenLimit struct{ key string }

// takeLimits takes one slot of each limit for start id. Each take is
// atomic on its own key; the keys live in different slots, so when one
// limit refuses, the slots already taken are given back. A concurrent start
// may see such a slot for a moment: the limits err on refusing, never on
// letting too many through.
func (s *Service) takeLimits(ctx context.Context, id, number, requester string, now time.Time) ([]takenLimit, error) {
	checks := []struct {
		scope LimitScope
		limit Limit
		key   string
	}{
		{ScopeRequester, s.cfg.PerRequester, requesterLimitKey(requester)},
		{ScopePrefix, s.cfg.PerPrefix, prefixLimitKey(s.prefix(number))},
		{ScopeNumber, s.cfg.PerNumber, numberLimitKey(number)},
	}
	var taken []takenLimit
	for _, c := range checks {
		if c.limit.Max < 0 {
			continue
		}
		wait, err := limitScript.Run(ctx, s.rdb, []string{c.key}, ms(now), c.limit.Window.Milliseconds(), c.limit.Max, id).Int64()
		if err != nil {
			s.refund(context.WithoutCancel(ctx), id, taken)
			return nil, fmt.Errorf("rate limit: %w", err)
		}
		if wait >= 0 {
			s.refund(context.WithoutCancel(ctx), id, taken)
			return nil, &reject.RateLimitError{Limit: string(c.scope), RetryAfter: time.Duration(wait) * time.Millisecond, Err: ErrRateLimited}
		}
		taken = append(taken, takenLimit{key: c.key})
	}
	return taken, nil
}

// refund gives back the slots start id took.
func (s *Service) refund(ctx context.Context, id string, taken []takenLimit) {
	for _, t := range taken {
		if err := s.rdb.ZRem(ctx, t.key, id).Err(); err != nil {
			s.log.WarnContext(ctx, "give back rate-limit slot", "err", err)
		}
	}
}
