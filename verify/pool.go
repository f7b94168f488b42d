package verify

import (
	"context"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"sort"
)

// AddCallerIDs adds numbers to the verification caller-ID pool, which is
// separate from the binding pool. Every number is checked first; if any is
// invalid none is stored. It returns how many numbers were new.
func (s *Service) AddCallerIDs(ctx context.Context, numbers ...string) (int, error) {
	if len(numbers) == 0 {
		return 0, nil
	}
	norm := make([]any, 0, len(numbers))
	for _, n := range numbers {
		e, err := s.parser.Parse(n)
		if err != nil {
			return 0, fmt.Errorf("%w: caller ID: %w", ErrInvalid, err)
		}
		norm = append(norm, e)
	}
	added, err := s.rdb.SAdd(ctx, PoolKey, norm...).Result()
	if err != nil {
		return 0, fmt.Errorf("add caller IDs: %w", err)
	}
	return int(added), nil
}

// ListCallerIDs returns the verification caller-ID pool, sorted.
func (s *Service) ListCallerIDs(ctx context.Context) ([]string, error) {
	ns, err := s.rdb.SMembers(ctx, PoolKey).Result()
	if err != nil {
		return nil, fmt.Errorf("list caller IDs: %w", err)
	}
	sort.Strings(ns)
	return ns, nil
}

// RemoveCallerID takes a number out of the verification caller-ID pool
// (ErrCallerIDNotFound if it is not there). Verifications already started
// from it can still be checked.
func (s *Service) RemoveCallerID(ctx context.Context, number string) error {
	n, err := s.parser.Parse(number)
	if err != nil {
		return fmt.Errorf("%w: caller ID: %w", ErrInvalid, err)
	}
	removed, err := s.rdb.SRem(ctx, PoolKey, n).Result()
	if err != nil {
		return fmt.Errorf("remove caller ID %s: %w", n, err)
	}
	if removed == 0 {
		return fmt.Errorf("%w: %s", ErrCallerIDNotFound, n)
	}
	return nil
}

// shuffle puts caller IDs in an unpredictable order: whoever can predict
// the caller ID passes the check without receiving the call, so the order
// comes from a generator seeded by crypto/rand.
func shuffle(xs []string) {
	var seed [32]byte
	rand.Read(seed[:])
	r := mrand.New(mrand.NewChaCha8(seed))
	r.Shuffle(len(xs), func(i, j int) { xs[i], xs[j] = xs[j], xs[i] })
}
