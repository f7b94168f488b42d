package pooltrace

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/pool"
)

// Parties returns the distinct parties of a trace (its buyers and
// couriers), in order of first appearance.
func Parties(orders []Order) []string {
	seen := map[string]bool{}
	var out []string
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, o := range orders {
		add(BuyerNumber(o.Buyer))
		add(CourierNumber(o.Courier))
	}
	return out
}

// ExtensionsPerNumber is how many AXE extensions of digits digits one
// virtual number carries: 10^digits - 1.
func ExtensionsPerNumber(digits int) int {
	n := 1
	for range digits {
		n *= 10
	}
	return n - 1
}

// AXEBound is the fewest numbers that give each of parties parties an AXE
// extension: ceil(parties / extensions per number).
func AXEBound(parties, digits int) int {
	per := ExtensionsPerNumber(digits)
	return (parties + per - 1) / per
}

// AXEResult is what replaying a trace's parties as AXE bindings found.
type AXEResult struct {
	Parties, Digits int
	// Bound is AXEBound; Smallest the smallest pool on which every party
	// got an extension (0 if none up to Bound+2 did).
	Bound, Smallest int
	// Runs are the pool sizes tried.
	Runs []Run
}

// ReplayAXE flushes the database, fills a pool of size numbers reserved
// for axe and gives every party an AXE extension (digits long) through the
// real binding service. With stopEarly it stops at the first exhausted
// create.
func (s *Simulator) ReplayAXE(ctx context.Context, parties []string, digits, size int, stopEarly bool) (Run, error) {
	start := time.Now()
	run := Run{Pool: size, FirstExhausted: -1}
	if err := flush(ctx, s.rdb); err != nil {
		return run, fmt.Errorf("flushdb: %w", err)
	}
	p := pool.New(s.rdb, parser())
	entries := make([]pool.Entry, size)
	for i := range entries {
		entries[i] = pool.Entry{Number: VirtualNumber(i), Mode: string(binding.AXE)}
	}
	if _, err := p.Add(ctx, entries); err != nil {
		return run, err
	}
	svc := binding.New(s.rdb, p, parser(), binding.Config{Quarantine: RealQuarantine, MaxTTL: RealTTL, ExtensionDigits: digits})
	for i, party := range parties {
		before := s.scripts.n.Load()
		_, err := svc.Create(ctx, binding.Request{Mode: binding.AXE, A: party, TTL: RealTTL})
		run.Scripts += s.scripts.n.Load() - before
		switch {
		case errors.Is(err, binding.ErrPoolExhausted):
			run.Exhausted++
			if run.FirstExhausted < 0 {
				run.FirstExhausted = i
			}
			if stopEarly {
				run.Took = time.Since(start)
				return run, nil
			}
		case err != nil:
			return run, fmt.Errorf("party %d: create: %w", i, err)
		default:
			run.Created++
		}
	}
	run.Took = time.Since(start)
	return run, nil
}

// SimulateAXE gives every party of the trace an AXE extension on pools
// from AXEBound up (at most Bound+2) and reports the smallest that serves
// them all.
func (s *Simulator) SimulateAXE(ctx context.Context, tc TraceConfig, digits int, progress func(Run)) (AXEResult, error) {
	orders, err := Generate(tc)
	if err != nil {
		return AXEResult{}, err
	}
	if digits < 1 || digits > 6 {
		return AXEResult{}, fmt.Errorf("extension digits %d: want 1 to 6", digits)
	}
	parties := Parties(orders)
	res := AXEResult{Parties: len(parties), Digits: digits, Bound: AXEBound(len(parties), digits)}
	for size := res.Bound; size <= res.Bound+2; size++ {
		run, err := s.ReplayAXE(ctx, parties, digits, size, true)
		if err != nil {
			return res, err
		}
		res.Runs = append(res.Runs, run)
		if progress != nil {
			progress(run)
		}
		if run.OK() {
			res.Smallest = size
			break
		}
	}
	return res, nil
}
