// Package pooltrace generates synthetic e-commerce order traces and replays
// them through the real binding service on a real Redis, to size the
// virtual-number pool: the smallest pool that places every binding, beside
// Δ, the most numbers one party holds at once (cmd/poolsim reports them;
// binding's forecast test checks the live forecast against Δ).
package pooltrace

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"time"
)

// TraceConfig shapes a synthetic e-commerce trace.
type TraceConfig struct {
	Seed     uint64
	Buyers   int
	Couriers int
	// MinLoad and MaxLoad bound how many orders a courier carries at once
	// on average; each courier draws its own load in [MinLoad, MaxLoad].
	MinLoad, MaxLoad int
	// Span is the simulated time over which orders open.
	Span time.Duration
	// OrderTime is the mean time from an order opening (binding created)
	// to its completion (binding released); each order lasts uniformly
	// between half and one and a half times this.
	OrderTime time.Duration
	// Quarantine is the simulated cool-down of a released (X, party) pair.
	Quarantine time.Duration
}

// Order is one binding in the trace: buyer and courier bound from Open to
// Close (simulated offsets from the start).
type Order struct {
	ID             int
	Buyer, Courier int
	Open, Close    time.Duration
}

// Generate returns the trace's orders sorted by opening time. The same
// config always gives the same trace.
//
// Each courier has its own load L in [MinLoad, MaxLoad] and receives
// orders as a Poisson process of rate L/OrderTime over the whole span, so
// by Little's law it carries about L orders at once once warmed up (more at
// peaks). Each order goes to a buyer drawn uniformly, so buyers usually hold
// one binding and occasionally a few.
func Generate(c TraceConfig) ([]Order, error) {
	if c.Buyers < 1 || c.Couriers < 1 || c.MinLoad < 1 || c.MaxLoad < c.MinLoad || c.Span <= 0 || c.OrderTime <= 0 || c.Quarantine < 0 {
		return nil, fmt.Errorf("trace: want buyers, couriers, loads, span and order time > 0, max load ≥ min load and quarantine ≥ 0: %+v", c)
	}
	rng := rand.New(rand.NewPCG(c.Seed, 0x9e3779b97f4a7c15))
	var orders []Order
	for courier := range c.Couriers {
		load := c.MinLoad + rng.IntN(c.MaxLoad-c.MinLoad+1)
		rate := float64(load) / float64(c.OrderTime) // orders per ns
		for t := time.Duration(rng.ExpFloat64() / rate); t < c.Span; t += time.Duration(rng.ExpFloat64() / rate) {
			d := time.Duration(float64(c.OrderTime) * (0.5 + rng.Float64()))
			// Millisecond resolution keeps event times easy to read.
			open := t.Truncate(time.Millisecond)
			orders = append(orders, Order{Buyer: rng.IntN(c.Buyers), Courier: courier, Open: open, Close: open + d.Truncate(time.Millisecond) + time.Millisecond})
		}
	}
	sort.SliceStable(orders, func(i, j int) bool { return orders[i].Open < orders[j].Open })
	for i := range orders {
		orders[i].ID = i
	}
	return orders, nil
}

// EventKind is what happens to an order at an instant of the trace.
type EventKind int

// Event kinds, in the order they apply at the same instant: a binding ends
// and pairs leave quarantine before new bindings are made, so an interval
// [open, close) or [open, close+quarantine) is half-open.
const (
	Release EventKind = iota // the order completes: release the binding
	Free                     // the quarantine of a released binding ends
	Create                   // the order opens: create the binding
)

// Event is one step of a trace: order Order's Kind at simulated time At.
type Event struct {
	At    time.Duration
	Kind  EventKind
	Order int
}

// Events returns the trace as a time-ordered event list.
func Events(orders []Order, quarantine time.Duration) []Event {
	evs := make([]Event, 0, 3*len(orders))
	for _, o := range orders {
		evs = append(evs,
			Event{o.Open, Create, o.ID},
			Event{o.Close, Release, o.ID},
			Event{o.Close + quarantine, Free, o.ID})
	}
	sort.SliceStable(evs, func(i, j int) bool {
		a, b := evs[i], evs[j]
		if a.At != b.At {
			return a.At < b.At
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Order < b.Order
	})
	return evs
}

// Bounds are the figures that do not depend on the allocator.
type Bounds struct {
	// DeltaActive is the most bindings any one party holds at once.
	DeltaActive int
	// DeltaHeld is the most active plus quarantined bindings any one
	// party holds at once. Each of them occupies a different virtual
	// number, so no allocator can do with fewer numbers.
	DeltaHeld int
	// DeltaParty is a party reaching DeltaHeld ("courier 12", "buyer 7").
	DeltaParty string
	// Naive is the most bindings active at once: the pool a scheme giving
	// every binding its own number needs.
	Naive int
	// NaiveHeld is the most bindings active or quarantined at once: the
	// pool one number per binding needs when a number also sits out its
	// quarantine.
	NaiveHeld int
}

// Analyze computes the allocator-independent bounds of a trace.
func Analyze(orders []Order, quarantine time.Duration) Bounds {
	var b Bounds
	active := map[string]int{}
	held := map[string]int{}
	nActive, nHeld := 0, 0
	parties := func(o Order) [2]string {
		return [2]string{fmt.Sprintf("buyer %d", o.Buyer), fmt.Sprintf("courier %d", o.Courier)}
	}
	for _, e := range Events(orders, quarantine) {
		o := orders[e.Order]
		switch e.Kind {
		case Create:
			nActive++
			nHeld++
			for _, p := range parties(o) {
				active[p]++
				held[p]++
				b.DeltaActive = max(b.DeltaActive, active[p])
				if held[p] > b.DeltaHeld {
					b.DeltaHeld, b.DeltaParty = held[p], p
				}
			}
			b.Naive = max(b.Naive, nActive)
			b.NaiveHeld = max(b.NaiveHeld, nHeld)
		case Release:
			nActive--
			for _, p := range parties(o) {
				active[p]--
			}
		case Free:
			nHeld--
			for _, p := range parties(o) {
				held[p]--
			}
		}
	}
	return b
}
