package binding

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/privnum/privnum/internal/store"
)

// The exclusive modes (AXN, AXG) take a number no other binding uses. The
// allocator prefers numbers reserved for the mode, then unreserved ones,
// area-tagged ones first within each, and steps over the numbers it knows
// to be held or carrying AXB pairs (from the pool snapshot's "held" and
// "shared" marks and the scripts' answers). When a try fails, it reads
// the marks of the next candidates in one pipeline (probe) before trying
// again, so a stale view costs one round trip per probeBatch numbers, not
// one per number. Picking the candidates walks the snapshot: O(pool) in
// memory per exclusive create, which is rare beside AXB creates.

// probeBatch is how many candidates one probe reads.
const probeBatch = 32

// heldCandidates lists, in order of preference, the numbers an exclusive
// binding of req could take, by what the process knows.
func (s *Service) heldCandidates(ctx context.Context, req Request, now time.Time) ([]string, error) {
	if err := s.currentSnapshot(ctx); err != nil {
		return nil, err
	}
	nowMs := now.UnixMilli()
	c := &s.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	var tiers [4][]string // reserved+area, reserved, unreserved+area, unreserved
	for i, e := range c.snap.Numbers {
		if e.Number == req.A || e.Number == req.B || c.holds[i] > nowMs || c.shared[i] > nowMs {
			continue
		}
		t := 0
		switch e.Mode {
		case string(req.Mode):
		case "":
			if c.loads[i] > 0 { // AXB pairs live on it, as this process saw
				continue
			}
			t = 2
		default:
			continue
		}
		if req.Area == "" || e.Area != req.Area {
			t++
		}
		tiers[t] = append(tiers[t], e.Number)
	}
	var out []string
	for _, t := range tiers {
		out = append(out, t...)
	}
	return out, nil
}

// createHeld creates an exclusive binding: on req.X, or on the first
// candidate the script accepts.
func (s *Service) createHeld(ctx context.Context, req Request, now time.Time) (Binding, error) {
	var members []string
	var gver int64
	if req.Mode == AXG {
		if s.cfg.Groups == nil {
			return Binding{}, fmt.Errorf("%w: axg bindings need the group service", ErrInvalid)
		}
		var err error
		if members, gver, err = s.cfg.Groups.Members(ctx, req.Group); err != nil {
			return Binding{}, err
		}
	}
	attach := func(b Binding) (Binding, error) {
		if req.Mode != AXG {
			return b, nil
		}
		// Membership changes made since the members were read reach the
		// copy once the binding is attached to the group.
		if err := s.cfg.Groups.Attach(ctx, req.Group, b.ID); err != nil {
			return b, fmt.Errorf("attach binding %s to group %s: %w", b.ID, req.Group, err)
		}
		return b, nil
	}
	if req.X != "" {
		b, res, err := s.tryHeld(ctx, req, req.X, now, members, gver)
		if err != nil {
			return Binding{}, err
		}
		if res != "ok" {
			return Binding{}, fmt.Errorf("%w: %s is %s", ErrNumberUnavailable, req.X, unavailable(res))
		}
		return attach(b)
	}
	cands, err := s.heldCandidates(ctx, req, now)
	if err != nil {
		return Binding{}, err
	}
	probe := false
	for start := 0; start < len(cands); start += probeBatch {
		batch := cands[start:min(start+probeBatch, len(cands))]
		if probe {
			if batch, err = s.probe(ctx, req.Mode, batch, now); err != nil {
				return Binding{}, err
			}
		}
		for _, x := range batch {
			b, res, err := s.tryHeld(ctx, req, x, now, members, gver)
			if err != nil {
				return Binding{}, err
			}
			if res == "ok" {
				return attach(b)
			}
			probe = true
		}
	}
	return Binding{}, ErrPoolExhausted
}

// probe reads the marks of candidates in one pipeline and returns those
// that look free, noting what it read.
func (s *Service) probe(ctx context.Context, mode Mode, cands []string, now time.Time) ([]string, error) {
	marks := make([]*redis.SliceCmd, len(cands))
	active := make([]*redis.IntCmd, len(cands))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, x := range cands {
			marks[i] = p.HMGet(ctx, store.NumberKey(x), "state", "mode", "held", "shared")
			active[i] = p.Exists(ctx, store.ActiveKey(x))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read number marks: %w", err)
	}
	nowMs := now.UnixMilli()
	num := func(v any) int64 { s, _ := v.(string); n, _ := strconv.ParseInt(s, 10, 64); return n }
	var free []string
	c := &s.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range cands {
		v := marks[i].Val()
		st, _ := v[0].(string)
		m, _ := v[1].(string)
		held, shared := num(v[2]), num(v[3])
		switch {
		case held > nowMs:
			c.markHeld(x, held, nowMs, false)
		case shared > nowMs:
			c.markShared(x, shared)
		case active[i].Val() == 1:
			c.markShared(x, now.Add(time.Minute).UnixMilli())
		case st == "active" && (m == "" || m == string(mode)):
			free = append(free, x)
		}
	}
	return free, nil
}

// tryHeld runs the exclusive create script on one candidate X.
func (s *Service) tryHeld(ctx context.Context, req Request, x string, now time.Time, members []string, gver int64) (Binding, string, error) {
	id := newID(x)
	exp := now.Add(req.TTL)
	routeB := store.RouteKey(x, req.B)
	if req.B == "" {
		routeB = store.RouteKey(x, req.A)
	}
	args := []any{ms(now), ms(exp), req.Quarantine.Milliseconds(), id, req.A, req.B, x, string(req.Mode),
		boolArg(req.Record), int64(req.MaxDuration / time.Second), int64(req.RingTimeout / time.Second),
		req.OrderID, req.Area, boolArg(req.ShowCaller), req.Group, gver}
	for _, m := range members {
		args = append(args, m)
	}
	r, err := s.run(ctx, createHeldScript,
		[]string{store.NumberKey(x), store.ModeKey(x), store.RouteKey(x, req.A), routeB, store.BindingKey(x, id),
			store.ActiveKey(x), store.MembersKey(x), store.LastCallerKey(x)},
		args...).Slice()
	if err != nil {
		return Binding{}, "", fmt.Errorf("bind on %s: %w", x, err)
	}
	res, _ := r[0].(string)
	detail, _ := r[1].(int64)
	c := &s.cache
	c.mu.Lock()
	switch res {
	case "held":
		c.markHeld(x, detail, now.UnixMilli(), false)
	case "shared":
		c.markShared(x, detail)
	case "ok":
		c.markHeld(x, exp.Add(req.Quarantine).UnixMilli(), now.UnixMilli(), false)
	}
	c.mu.Unlock()
	if res != "ok" {
		return Binding{}, res, nil
	}
	b := Binding{
		ID: id, Mode: req.Mode, A: req.A, B: req.B, X: x, Area: req.Area, State: Active,
		CreatedAt: time.UnixMilli(now.UnixMilli()).UTC(), ExpiresAt: time.UnixMilli(exp.UnixMilli()).UTC(),
		Record: req.Record, MaxDurationSec: int(req.MaxDuration / time.Second),
		RingTimeoutSec: int(req.RingTimeout / time.Second), Directions: Both, OrderID: req.OrderID,
		ShowCaller: req.ShowCaller, Group: req.Group,
	}
	b.QuarantineUntil = b.ExpiresAt.Add(req.Quarantine)
	return b, "ok", nil
}
