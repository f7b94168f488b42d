// Package group keeps the groups of allowed callers that AXG bindings
// use: a group is a named set of numbers (at most Config.MaxMembers); an
// AXG binding on X lets the group's members reach its owner and refuses
// everyone else.
//
// A group lives in its own hash slot (pn:group:{NAME}...), and is shared
// by bindings on many numbers, each in its own slot. So that a call checks
// membership in the same one-slot script that reads its route, each AXG
// binding keeps a copy of its group's members in its number's slot
// (store.MembersKey), with the group version it reflects. The group
// service keeps the copies in step: every change bumps the group's
// version in the same script that changes its members, then reaches each
// binding that uses the group (store.GroupUsersKey) with a script on that
// binding's number that applies the change only on top of the version
// before it, and otherwise copies the whole group at its current version
// (a copy never goes back to an older version). A binding attaches itself
// to its group before it copies it, so a change made while it is created
// reaches it either way.
package group

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/e164"
	"github.com/privnum/privnum/internal/store"
	"github.com/privnum/privnum/reject"
)

// Sentinel errors callers branch on.
var (
	// ErrNotFound means no group has that name.
	ErrNotFound = errors.New("group not found")
	// ErrExists means a group with that name exists already.
	ErrExists = errors.New("group exists")
	// ErrInUse means bindings still use the group.
	ErrInUse = errors.New("group in use")
	// ErrInvalid means a request field is invalid (see reject.FieldError).
	ErrInvalid = errors.New("invalid group request")
)

// Group is a named set of allowed callers.
type Group struct {
	Name    string    `json:"name"`
	Members []string  `json:"members"`
	Size    int       `json:"size"`
	Version int64     `json:"version"`
	Created time.Time `json:"created"`
	// Bindings are the ids of the AXG bindings attached to the group
	// (live or quarantined).
	Bindings []string `json:"bindings"`
}

// Config tunes a Service.
type Config struct {
	// MaxMembers bounds a group's size. Default 1,000.
	MaxMembers int
}

// Service manages groups and keeps AXG bindings' copies in step. It
// implements binding.Groups.
type Service struct {
	rdb    redis.UniversalClient
	parser e164.Parser
	cfg    Config
}

// New returns a Service on rdb.
func New(rdb redis.UniversalClient, parser e164.Parser, cfg Config) *Service {
	if cfg.MaxMembers <= 0 {
		cfg.MaxMembers = 1000
	}
	return &Service{rdb: rdb, parser: parser, cfg: cfg}
}

// MaxMembers returns the group size limit.
func (s *Service) MaxMembers() int { return s.cfg.MaxMembers }

// CheckName checks a group name: 1 to 64 letters, digits, '-' or '_'.
func CheckName(name string) error {
	ok := name != "" && len(name) <= 64
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			ok = false
		}
	}
	if !ok {
		return &reject.FieldError{Field: "name", Reason: "a group name is 1 to 64 letters, digits, '-' or '_'", Err: ErrInvalid}
	}
	return nil
}

// parse normalises members, dropping repeats; a bad number is a field
// error naming "members".
func (s *Service) parse(members []string) ([]string, error) {
	out := make([]string, 0, len(members))
	for _, m := range members {
		n, err := s.parser.Parse(m)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", &reject.FieldError{Field: "members", Err: ErrInvalid}, err)
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// changeScript adds or removes members of a group and bumps its version,
// or refuses and changes nothing: a group that does not exist (or exists,
// for create), a size over the limit, a member to remove that is not in
// the group.
//
// KEYS: 1 members, 2 meta.
// ARGV: 1 op (create, add, remove), 2 limit, 3 now ms, 4... members.
// Returns {result, version or size or the index of the missing member}.
var changeScript = redis.NewScript(`
local exists = redis.call('EXISTS', KEYS[2]) == 1
if ARGV[1] == 'create' then
  if exists then return {'exists', 0} end
elseif not exists then
  return {'not_found', 0}
end
if ARGV[1] == 'remove' then
  for i = 4, #ARGV do
    if redis.call('SISMEMBER', KEYS[1], ARGV[i]) == 0 then return {'not_member', i - 3} end
  end
  for i = 4, #ARGV do redis.call('SREM', KEYS[1], ARGV[i]) end
else
  local size = redis.call('SCARD', KEYS[1])
  for i = 4, #ARGV do
    if redis.call('SISMEMBER', KEYS[1], ARGV[i]) == 0 then size = size + 1 end
  end
  if size > tonumber(ARGV[2]) then return {'too_large', size} end
  for i = 4, #ARGV do redis.call('SADD', KEYS[1], ARGV[i]) end
  if ARGV[1] == 'create' then redis.call('HSET', KEYS[2], 'created', ARGV[3]) end
end
return {'ok', redis.call('HINCRBY', KEYS[2], 'ver', 1)}
`)

// Create makes a group with members (possibly none). It fails with
// ErrExists if the name is taken.
func (s *Service) Create(ctx context.Context, name string, members []string) (Group, error) {
	if _, err := s.change(ctx, "create", name, members); err != nil {
		return Group{}, err
	}
	return s.Get(ctx, name)
}

// Add adds members to an existing group; past the size limit it refuses
// with a field error naming "members" and adds none.
func (s *Service) Add(ctx context.Context, name string, members []string) (Group, error) {
	if len(members) == 0 {
		return Group{}, &reject.FieldError{Field: "members", Reason: "no members to add", Err: ErrInvalid}
	}
	if _, err := s.change(ctx, "add", name, members); err != nil {
		return Group{}, err
	}
	return s.Get(ctx, name)
}

// Remove removes members from a group; if one is not a member it refuses
// with a field error naming "members" and removes none.
func (s *Service) Remove(ctx context.Context, name string, members []string) (Group, error) {
	if len(members) == 0 {
		return Group{}, &reject.FieldError{Field: "members", Reason: "no members to remove", Err: ErrInvalid}
	}
	if _, err := s.change(ctx, "remove", name, members); err != nil {
		return Group{}, err
	}
	return s.Get(ctx, name)
}

func (s *Service) change(ctx context.Context, op, name string, members []string) (int64, error) {
	if err := CheckName(name); err != nil {
		return 0, err
	}
	norm, err := s.parse(members)
	if err != nil {
		return 0, err
	}
	if len(norm) > s.cfg.MaxMembers {
		return 0, &reject.FieldError{Field: "members", Reason: fmt.Sprintf("a group holds at most %d members", s.cfg.MaxMembers), Err: ErrInvalid}
	}
	args := []any{op, s.cfg.MaxMembers, time.Now().UnixMilli()}
	for _, m := range norm {
		args = append(args, m)
	}
	r, err := changeScript.Run(ctx, s.rdb, []string{store.GroupKey(name), store.GroupMetaKey(name)}, args...).Slice()
	if err != nil {
		return 0, fmt.Errorf("%s group %s: %w", op, name, err)
	}
	res, _ := r[0].(string)
	n, _ := r[1].(int64)
	switch res {
	case "exists":
		return 0, fmt.Errorf("%w: %s", ErrExists, name)
	case "not_found":
		return 0, fmt.Errorf("%w: %s", ErrNotFound, name)
	case "too_large":
		return 0, &reject.FieldError{Field: "members", Reason: fmt.Sprintf("the group would hold %d members; at most %d", n, s.cfg.MaxMembers), Err: ErrInvalid}
	case "not_member":
		return 0, &reject.FieldError{Field: "members", Reason: fmt.Sprintf("%s is not a member", e164.Mask(norm[n-1])), Err: ErrInvalid}
	}
	if op != "create" {
		if err := s.propagate(ctx, name, n, op, norm); err != nil {
			return n, err
		}
	}
	return n, nil
}

// Get returns a group.
func (s *Service) Get(ctx context.Context, name string) (Group, error) {
	if err := CheckName(name); err != nil {
		return Group{}, err
	}
	var mem, users *redis.StringSliceCmd
	var meta *redis.MapStringStringCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		mem = p.SMembers(ctx, store.GroupKey(name))
		meta = p.HGetAll(ctx, store.GroupMetaKey(name))
		users = p.SMembers(ctx, store.GroupUsersKey(name))
		return nil
	})
	if err != nil {
		return Group{}, fmt.Errorf("get group %s: %w", name, err)
	}
	if len(meta.Val()) == 0 {
		return Group{}, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	g := Group{Name: name, Members: mem.Val(), Bindings: users.Val()}
	slices.Sort(g.Members)
	slices.Sort(g.Bindings)
	g.Size = len(g.Members)
	g.Version, _ = strconv.ParseInt(meta.Val()["ver"], 10, 64)
	created, _ := strconv.ParseInt(meta.Val()["created"], 10, 64)
	g.Created = time.UnixMilli(created).UTC()
	return g, nil
}

// deleteScript deletes a group unless a binding uses it.
//
// KEYS: 1 members, 2 meta, 3 users.
var deleteScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 0 then return 'not_found' end
if redis.call('SCARD', KEYS[3]) > 0 then return 'in_use' end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return 'ok'
`)

// Delete deletes a group. It is refused (ErrInUse) while an AXG binding
// using it lives or is quarantined: release those first (a released
// binding's quarantine still counts, since Get shows its group).
func (s *Service) Delete(ctx context.Context, name string) error {
	if err := CheckName(name); err != nil {
		return err
	}
	if _, err := s.users(ctx, name); err != nil {
		return err
	}
	res, err := deleteScript.Run(ctx, s.rdb, []string{store.GroupKey(name), store.GroupMetaKey(name), store.GroupUsersKey(name)}).Text()
	if err != nil {
		return fmt.Errorf("delete group %s: %w", name, err)
	}
	switch res {
	case "not_found":
		return fmt.Errorf("%w: %s", ErrNotFound, name)
	case "in_use":
		return fmt.Errorf("%w: %s: bindings use it; release them first", ErrInUse, name)
	}
	return nil
}

// users returns the ids of the bindings attached to a group whose mode
// record still names them, dropping the others from the group's users.
func (s *Service) users(ctx context.Context, name string) ([]string, error) {
	ids, err := s.rdb.SMembers(ctx, store.GroupUsersKey(name)).Result()
	if err != nil {
		return nil, fmt.Errorf("group %s bindings: %w", name, err)
	}
	owners := make([]*redis.StringCmd, len(ids))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			x, ok := binding.XOf(id)
			if !ok {
				owners[i] = redis.NewStringCmd(ctx)
				continue
			}
			owners[i] = p.HGet(ctx, store.ModeKey(x), "id")
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("group %s bindings: %w", name, err)
	}
	var live, gone []string
	for i, id := range ids {
		if owners[i].Val() == id {
			live = append(live, id)
		} else {
			gone = append(gone, id)
		}
	}
	if len(gone) > 0 {
		if err := s.rdb.SRem(ctx, store.GroupUsersKey(name), gone).Err(); err != nil {
			return nil, fmt.Errorf("group %s bindings: %w", name, err)
		}
	}
	return live, nil
}

// Members returns a group's members and version (binding.Groups). An
// unknown group is a field error naming "group" that wraps both
// binding.ErrInvalid and ErrNotFound.
func (s *Service) Members(ctx context.Context, name string) ([]string, int64, error) {
	if err := CheckName(name); err != nil {
		return nil, 0, &reject.FieldError{Field: "group", Reason: "a group name is 1 to 64 letters, digits, '-' or '_'", Err: binding.ErrInvalid}
	}
	g, err := s.Get(ctx, name)
	if errors.Is(err, ErrNotFound) {
		// The binding request is what is invalid: its group field names
		// no group.
		return nil, 0, fmt.Errorf("%w: %w", &reject.FieldError{Field: "group", Reason: "no group named " + name, Err: binding.ErrInvalid}, ErrNotFound)
	}
	if err != nil {
		return nil, 0, err
	}
	return g.Members, g.Version, nil
}

// attachScript records that a binding uses a group and returns the
// group's version and members, atomically.
//
// KEYS: 1 members, 2 meta, 3 users. ARGV: 1 binding id.
var attachScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 0 then return {} end
redis.call('SADD', KEYS[3], ARGV[1])
local out = {redis.call('HGET', KEYS[2], 'ver')}
for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do out[#out + 1] = m end
return out
`)

// Attach records that binding id uses the group and brings its copy up to
// date (binding.Groups).
func (s *Service) Attach(ctx context.Context, name, id string) error {
	return s.sync(ctx, name, id, true)
}

// sync copies the group, at its current version, into binding id's copy
// unless the copy is as new; with attach it first records the binding as
// a user of the group.
func (s *Service) sync(ctx context.Context, name, id string, attach bool) error {
	x, ok := binding.XOf(id)
	if !ok {
		return fmt.Errorf("%w: binding id %q", ErrInvalid, id)
	}
	keys := []string{store.GroupKey(name), store.GroupMetaKey(name), store.GroupUsersKey(name)}
	var vals []string
	var err error
	if attach {
		vals, err = attachScript.Run(ctx, s.rdb, keys, id).StringSlice()
	} else {
		var mem *redis.StringSliceCmd
		var ver *redis.StringCmd
		_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			ver = p.HGet(ctx, keys[1], "ver")
			mem = p.SMembers(ctx, keys[0])
			return nil
		})
		if err == nil || errors.Is(err, redis.Nil) {
			err = nil
			if ver.Val() != "" {
				vals = append([]string{ver.Val()}, mem.Val()...)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("read group %s: %w", name, err)
	}
	if len(vals) == 0 {
		return fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	args := []any{id, vals[0]}
	for _, m := range vals[1:] {
		args = append(args, m)
	}
	if err := syncScript.Run(ctx, s.rdb, []string{store.ModeKey(x), store.MembersKey(x)}, args...).Err(); err != nil {
		return fmt.Errorf("copy group %s to %s: %w", name, id, err)
	}
	return nil
}

// syncScript replaces a binding's copy of its group with the members at
// version ARGV[2], unless the copy is at that version or newer or the
// binding is gone.
//
// KEYS: 1 X's mode record, 2 members copy. ARGV: 1 binding id, 2 version,
// 3... members.
var syncScript = redis.NewScript(`
local h = redis.call('HMGET', KEYS[1], 'id', 'gver', 'rel')
if h[1] ~= ARGV[1] or h[3] == '1' then return 'gone' end
if tonumber(h[2] or '0') >= tonumber(ARGV[2]) then return 'current' end
redis.call('DEL', KEYS[2])
for i = 3, #ARGV, 1000 do
  redis.call('SADD', KEYS[2], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
local ttl = redis.call('PTTL', KEYS[1])
if #ARGV >= 3 and ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
redis.call('HSET', KEYS[1], 'gver', ARGV[2])
return 'ok'
`)

// deltaScript applies one membership change to a binding's copy if the
// copy is at the version just before it.
//
// KEYS: 1 X's mode record, 2 members copy. ARGV: 1 binding id, 2 version,
// 3 op (add, remove), 4... members.
var deltaScript = redis.NewScript(`
local h = redis.call('HMGET', KEYS[1], 'id', 'gver', 'rel')
if h[1] ~= ARGV[1] or h[3] == '1' then return 'gone' end
local v, want = tonumber(h[2] or '0'), tonumber(ARGV[2])
if v >= want then return 'current' end
if v ~= want - 1 then return 'stale' end
for i = 4, #ARGV do
  if ARGV[3] == 'add' then redis.call('SADD', KEYS[2], ARGV[i]) else redis.call('SREM', KEYS[2], ARGV[i]) end
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 and redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], ttl) end
redis.call('HSET', KEYS[1], 'gver', ARGV[2])
return 'ok'
`)

// propagate brings every binding using the group to version ver: the
// change itself where the copy is at ver-1, a full copy where it is
// further behind.
func (s *Service) propagate(ctx context.Context, name string, ver int64, op string, members []string) error {
	ids, err := s.users(ctx, name)
	if err != nil {
		return err
	}
	for _, id := range ids {
		x, _ := binding.XOf(id)
		args := []any{id, ver, op}
		for _, m := range members {
			args = append(args, m)
		}
		res, err := deltaScript.Run(ctx, s.rdb, []string{store.ModeKey(x), store.MembersKey(x)}, args...).Text()
		if err != nil {
			return fmt.Errorf("update binding %s of group %s: %w", id, name, err)
		}
		if res == "stale" {
			if err := s.sync(ctx, name, id, false); err != nil {
				return err
			}
		}
	}
	return nil
}
