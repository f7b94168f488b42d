// Package pool manages the virtual numbers privnum hands out: adding them,
// listing them with their load, reserving them for a binding mode,
// retiring and restoring them.
//
// A number's hash (store.NumberKey) also records, for the allocator, how
// long the binding modes use it: "held"/"holder" while a mode that owns X
// exclusively (AXN, AXG, AXE) holds it, "shared" while AXB pairs may live
// on it. The binding scripts write those fields; the pool only reads them.
package pool

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/privnum/privnum/e164"
	"github.com/privnum/privnum/internal/store"
)

// Sentinel errors callers branch on.
var (
	// ErrNotFound means the number is not in the pool.
	ErrNotFound = errors.New("number not in pool")
	// ErrInvalidArea means an area tag has characters outside [A-Za-z0-9_-].
	ErrInvalidArea = errors.New("invalid area tag")
	// ErrInvalidMode means a reservation names no binding mode.
	ErrInvalidMode = errors.New("invalid mode")
)

// Reservations: a number reserved for a binding mode serves that mode
// only; an unreserved one serves any mode.
const (
	// Unreserved, given to Add, clears a number's reservation.
	Unreserved = "any"
)

// CheckMode checks a reservation: a binding mode (axb, axn, axe, axg),
// Unreserved, or empty (leave it as it is). The error wraps
// ErrInvalidMode.
func CheckMode(m string) error {
	switch m {
	case "", Unreserved, "axb", "axn", "axe", "axg": // the binding package's modes
		return nil
	}
	return fmt.Errorf("%w %q: want axb, axn, axe, axg or %s", ErrInvalidMode, m, Unreserved)
}

// State is the lifecycle state of a pool number.
type State string

// Pool number states.
const (
	// Active numbers take new bindings.
	Active State = "active"
	// Retired numbers take no new bindings; existing ones run to expiry.
	Retired State = "retired"
)

// Number is one virtual number in the pool.
type Number struct {
	Number string    `json:"number"`
	Area   string    `json:"area,omitempty"`
	State  State     `json:"state"`
	Added  time.Time `json:"added"`
	// Mode is the binding mode the number is reserved for; empty when it
	// serves any mode.
	Mode string `json:"mode,omitempty"`
	// HeldBy is the mode (axn, axg, axe) holding the number exclusively,
	// until HeldUntil (the end of its bindings' quarantine); empty when
	// none does.
	HeldBy    string     `json:"held_by,omitempty"`
	HeldUntil *time.Time `json:"held_until,omitempty"`
	// ActiveBindings counts bindings on the number that have not expired.
	ActiveBindings int `json:"active_bindings"`
}

// Entry is a number to add, with its optional area tag and reservation.
type Entry struct {
	Number string
	Area   string
	// Mode reserves the number for a binding mode (see CheckMode); empty
	// leaves an existing number's reservation as it is, Unreserved clears
	// it.
	Mode string
}

// Pool is the number pool service.
type Pool struct {
	rdb    redis.UniversalClient
	parser e164.Parser
	now    func() time.Time
}

// New returns a Pool on rdb that normalises numbers with parser.
func New(rdb redis.UniversalClient, parser e164.Parser) *Pool {
	return &Pool{rdb: rdb, parser: parser, now: time.Now}
}

// Add validates every entry first and stores none if any is invalid. Numbers
// already in the pool keep their state; their area tag is updated when a new
// one is given. It returns how many numbers were new.
func (p *Pool) Add(ctx context.Context, entries []Entry) (int, error) {
	norm := make([]Entry, 0, len(entries))
	for _, e := range entries {
		n, err := p.parser.Parse(e.Number)
		if err != nil {
			return 0, err
		}
		if err := CheckArea(e.Area); err != nil {
			return 0, err
		}
		if err := CheckMode(e.Mode); err != nil {
			return 0, err
		}
		norm = append(norm, Entry{Number: n, Area: e.Area, Mode: e.Mode})
	}
	if len(norm) == 0 {
		return 0, errors.New("no numbers to add")
	}
	now := strconv.FormatInt(p.now().UnixMilli(), 10)
	sadds := make([]*redis.IntCmd, len(norm))
	_, err := p.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, e := range norm {
			k := store.NumberKey(e.Number)
			pipe.HSetNX(ctx, k, "state", string(Active))
			pipe.HSetNX(ctx, k, "added", now)
			if e.Area != "" {
				pipe.HSet(ctx, k, "area", e.Area)
			}
			switch e.Mode {
			case "":
			case Unreserved:
				pipe.HDel(ctx, k, "mode")
			default:
				pipe.HSet(ctx, k, "mode", e.Mode)
			}
			sadds[i] = pipe.SAdd(ctx, store.PoolKey, e.Number)
		}
		pipe.Incr(ctx, store.PoolVersionKey)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("add numbers: %w", err)
	}
	added := 0
	for _, c := range sadds {
		added += int(c.Val())
	}
	return added, nil
}

// CheckArea checks an area tag: letters, digits, '-' and '_', at most 64
// bytes. The error wraps ErrInvalidArea.
func CheckArea(a string) error {
	for _, r := range a {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("%w %q: use letters, digits, '-' and '_'", ErrInvalidArea, a)
		}
	}
	if len(a) > 64 {
		return fmt.Errorf("%w %q: longer than 64 characters", ErrInvalidArea, a)
	}
	return nil
}

// ReadCSV reads pool entries from CSV rows "number[,area]". A header row whose
// first cell is "number" is skipped; blank lines are ignored. An invalid
// number is reported with its line.
func (p *Pool) ReadCSV(r io.Reader) ([]Entry, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.Comment = '#'
	var out []Entry
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("csv: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) == 0 || strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if len(out) == 0 && strings.EqualFold(strings.TrimSpace(rec[0]), "number") {
			continue
		}
		if len(rec) > 2 {
			return nil, fmt.Errorf("csv line %d: want number[,area], got %d fields", line, len(rec))
		}
		e := Entry{Number: strings.TrimSpace(rec[0])}
		if len(rec) == 2 {
			e.Area = strings.TrimSpace(rec[1])
		}
		if _, err := p.parser.Parse(e.Number); err != nil {
			return nil, fmt.Errorf("csv line %d: %w", line, err)
		}
		if err := CheckArea(e.Area); err != nil {
			return nil, fmt.Errorf("csv line %d: %w", line, err)
		}
		out = append(out, e)
	}
}

// List returns every pool number, sorted, with its count of active bindings.
func (p *Pool) List(ctx context.Context) ([]Number, error) {
	members, err := p.rdb.SMembers(ctx, store.PoolKey).Result()
	if err != nil {
		return nil, fmt.Errorf("list pool: %w", err)
	}
	sort.Strings(members)
	now := strconv.FormatInt(p.now().UnixMilli(), 10)
	hs := make([]*redis.MapStringStringCmd, len(members))
	cs := make([]*redis.IntCmd, len(members))
	_, err = p.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, n := range members {
			hs[i] = pipe.HGetAll(ctx, store.NumberKey(n))
			cs[i] = pipe.ZCount(ctx, store.ActiveKey(n), "("+now, "+inf")
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list pool: %w", err)
	}
	out := make([]Number, len(members))
	for i, n := range members {
		out[i] = toNumber(n, hs[i].Val())
		out[i].ActiveBindings = int(cs[i].Val())
	}
	return out, nil
}

func toNumber(n string, h map[string]string) Number {
	ms, _ := strconv.ParseInt(h["added"], 10, 64)
	st := State(h["state"])
	if st == "" {
		st = Active
	}
	out := Number{Number: n, Area: h["area"], State: st, Added: time.UnixMilli(ms).UTC(), Mode: h["mode"]}
	if held, _ := strconv.ParseInt(h["held"], 10, 64); held > time.Now().UnixMilli() {
		t := time.UnixMilli(held).UTC()
		out.HeldBy, out.HeldUntil = h["holder"], &t
	}
	return out
}

// Get returns one pool number.
func (p *Pool) Get(ctx context.Context, number string) (Number, error) {
	n, err := p.parser.Parse(number)
	if err != nil {
		return Number{}, err
	}
	h, err := p.rdb.HGetAll(ctx, store.NumberKey(n)).Result()
	if err != nil {
		return Number{}, fmt.Errorf("get %s: %w", n, err)
	}
	if len(h) == 0 {
		return Number{}, fmt.Errorf("%w: %s", ErrNotFound, n)
	}
	out := toNumber(n, h)
	c, err := p.rdb.ZCount(ctx, store.ActiveKey(n), "("+strconv.FormatInt(p.now().UnixMilli(), 10), "+inf").Result()
	if err != nil {
		return Number{}, fmt.Errorf("get %s: %w", n, err)
	}
	out.ActiveBindings = int(c)
	return out, nil
}

// setState flips a number between active and retired only if it exists.
var setState = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[1])
return 1`)

// Retire stops new bindings on number; existing bindings run to expiry.
func (p *Pool) Retire(ctx context.Context, number string) error {
	return p.setState(ctx, number, Retired)
}

// Restore lets a retired number take new bindings again.
func (p *Pool) Restore(ctx context.Context, number string) error {
	return p.setState(ctx, number, Active)
}

func (p *Pool) setState(ctx context.Context, number string, st State) error {
	n, err := p.parser.Parse(number)
	if err != nil {
		return err
	}
	ok, err := setState.Run(ctx, p.rdb, []string{store.NumberKey(n)}, string(st)).Int()
	if err != nil {
		return fmt.Errorf("set %s %s: %w", n, st, err)
	}
	if ok == 0 {
		return fmt.Errorf("%w: %s", ErrNotFound, n)
	}
	if err := p.rdb.Incr(ctx, store.PoolVersionKey).Err(); err != nil {
		return fmt.Errorf("set %s %s: %w", n, st, err)
	}
	return nil
}

// Snapshot is the pool as the allocator sees it: active numbers with their
// area tags and reservations, and the version it was read at.
type Snapshot struct {
	Version int64
	Numbers []Entry
	// Held[i] is when (Unix ms) the exclusive hold on Numbers[i] ends, 0
	// if it had none; Shared[i] when its last AXB pair's quarantine ends.
	// Both are as read, hints for the allocator: the binding scripts
	// decide.
	Held, Shared []int64
}

// Version returns the pool's change counter.
func (p *Pool) Version(ctx context.Context) (int64, error) {
	v, err := p.rdb.Get(ctx, store.PoolVersionKey).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	return v, err
}

// Snapshot reads the active numbers, sorted.
func (p *Pool) Snapshot(ctx context.Context) (Snapshot, error) {
	v, err := p.Version(ctx)
	if err != nil {
		return Snapshot{}, fmt.Errorf("pool version: %w", err)
	}
	members, err := p.rdb.SMembers(ctx, store.PoolKey).Result()
	if err != nil {
		return Snapshot{}, fmt.Errorf("read pool: %w", err)
	}
	sort.Strings(members)
	hs := make([]*redis.SliceCmd, len(members))
	_, err = p.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, n := range members {
			hs[i] = pipe.HMGet(ctx, store.NumberKey(n), "state", "area", "mode", "held", "shared")
		}
		return nil
	})
	if err != nil {
		return Snapshot{}, fmt.Errorf("read pool: %w", err)
	}
	s := Snapshot{Version: v}
	for i, n := range members {
		vals := hs[i].Val()
		st, _ := vals[0].(string)
		area, _ := vals[1].(string)
		mode, _ := vals[2].(string)
		held, _ := vals[3].(string)
		shared, _ := vals[4].(string)
		if State(st) == Active {
			s.Numbers = append(s.Numbers, Entry{Number: n, Area: area, Mode: mode})
			h, _ := strconv.ParseInt(held, 10, 64)
			sh, _ := strconv.ParseInt(shared, 10, 64)
			s.Held = append(s.Held, h)
			s.Shared = append(s.Shared, sh)
		}
	}
	return s, nil
}
