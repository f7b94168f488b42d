// Package store opens privnum's Redis connection and names its keys.
//
// Every key that an atomic step touches together carries the virtual number
// as a Redis Cluster hash tag ("pn:{+8617000000000}:..."), so each Lua
// script stays within one slot and the same code runs on a single Redis,
// Sentinel or Cluster.
//
// Every Redis key family privnum uses, this package's and the other
// packages', is listed in one place: the "Keys and hash slots" table of
// README.md (https://github.com/privnum/privnum#keys-and-hash-slots).
package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultURL is the Redis URL used when none is configured.
const DefaultURL = "redis://127.0.0.1:6379/0"

// Open connects to Redis. Besides redis:// and rediss:// URLs it accepts
// redis+cluster:// (extra nodes as ?addr=host:port) and redis+sentinel://
// (with ?master_name=NAME) so an operator can move to Cluster or Sentinel by
// changing the URL alone.
func Open(url string) (redis.UniversalClient, error) {
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok {
		return nil, fmt.Errorf("redis url %q: want redis://host:port/db", url)
	}
	switch scheme {
	case "redis+cluster", "rediss+cluster":
		o, err := redis.ParseClusterURL(strings.TrimSuffix(scheme, "+cluster") + "://" + rest)
		if err != nil {
			return nil, fmt.Errorf("redis cluster url: %w", err)
		}
		return NewClusterClient(o), nil
	case "redis+sentinel", "rediss+sentinel":
		o, err := redis.ParseFailoverURL(strings.TrimSuffix(scheme, "+sentinel") + "://" + rest)
		if err != nil {
			return nil, fmt.Errorf("redis sentinel url: %w", err)
		}
		return redis.NewFailoverClient(o), nil
	default:
		o, err := redis.ParseURL(url)
		if err != nil {
			return nil, fmt.Errorf("redis url: %w", err)
		}
		return redis.NewClient(o), nil
	}
}

// Key layout. X is a virtual number, P a party's number, both in E.164.

// NumberKey is the hash describing virtual number x in the pool
// (state, area, added).
func NumberKey(x string) string { return "pn:{" + x + "}:num" }

// RouteKey is the hash that routes a call from party p on x: the binding id,
// the peer, the expiry and the options. Its TTL covers the quarantine.
func RouteKey(x, p string) string { return "pn:{" + x + "}:r:" + p }

// BindingKey is the hash holding binding id on x.
func BindingKey(x, id string) string { return "pn:{" + x + "}:b:" + id }

// ActiveKey is the sorted set of x's binding ids scored by expiry (ms).
func ActiveKey(x string) string { return "pn:{" + x + "}:active" }

// ModeKey is the hash recording the binding that owns x in a mode that
// holds X for itself (axn, axg): the mode, the binding id, the owner and
// its options. For axe it records the mode, the extension length and the
// latest expiry of X's extensions (the extensions are in ExtensionsKey). A call from
// someone without a route on x reads it. Its TTL covers the quarantine.
func ModeKey(x string) string { return "pn:{" + x + "}:mode" }

// LastCallerKey is the hash recording the last caller who reached the
// owner of x through x (AXN, AXG): the number and when (ms). Its TTL is
// the reply window.
func LastCallerKey(x string) string { return "pn:{" + x + "}:last" }

// ExtensionsKey is the hash of x's AXE extensions: extension → the
// extension's record (JSON: binding id, party, expiry, released, end of
// quarantine, options). One hash so that allocating a free extension and
// resolving an entered one are each one script on fixed keys. Its TTL
// covers the last quarantine.
func ExtensionsKey(x string) string { return "pn:{" + x + "}:ext" }

// ExtensionLastKey is the hash recording, per AXE extension on x, the last
// caller who reached it: extension → "ms|number". Entries older than the
// reply window are ignored; the hash's TTL is at least the window.
func ExtensionLastKey(x string) string { return "pn:{" + x + "}:extlast" }

// MembersKey is the set of numbers allowed to call x's AXG binding: the
// binding's copy of its group, in x's slot so that a call checks it in
// the same script that reads the route.
func MembersKey(x string) string { return "pn:{" + x + "}:members" }

// GroupKey is the set of numbers in AXG group name.
func GroupKey(name string) string { return "pn:group:{" + name + "}" }

// GroupMetaKey is the hash describing group name: when it was created and
// its membership version, bumped by every change.
func GroupMetaKey(name string) string { return "pn:group:{" + name + "}:meta" }

// GroupUsersKey is the set of the ids of the AXG bindings that use group
// name, so that a membership change reaches each binding's copy.
func GroupUsersKey(name string) string { return "pn:group:{" + name + "}:users" }

// PartyKey is the sorted set of the virtual numbers party p holds, scored by
// the end of their quarantine (ms). It is a hint for allocation; the
// per-number scripts stay the authority.
func PartyKey(p string) string { return "pn:party:{" + p + "}" }

// PoolKey is the set of every virtual number in the pool.
const PoolKey = "pn:pool"

// PoolVersionKey is a counter bumped on every pool change, so that processes
// caching the pool know when to reload it.
const PoolVersionKey = "pn:pool:ver"

// OrderKey is the hash for an e-commerce order.
func OrderKey(id string) string { return "pn:order:{" + id + "}" }

// CallsKey is the stream of call detail records.
const CallsKey = "pn:calls"

// clusterReload is how old a cluster client's slot map may grow before it is
// read again in the background; go-redis's default is a minute.
const clusterReload = 2 * time.Second

// NewClusterClient returns a cluster client that follows a failover
// promptly: any node-level network error (a dead master) makes it read the
// slot map again at once, and the map is refreshed every couple of seconds
// besides. Left to go-redis's defaults, a client keeps sending a dead
// master's slots to it for up to a minute after its replica took over.
func NewClusterClient(o *redis.ClusterOptions) *redis.ClusterClient {
	if o.ClusterStateReloadInterval == 0 {
		o.ClusterStateReloadInterval = clusterReload
	}
	cc := redis.NewClusterClient(o)
	cc.OnNewNode(func(n *redis.Client) { n.AddHook(reloadOnNetError{cc}) })
	return cc
}

// reloadOnNetError asks the cluster client to reload its slot map whenever
// a node command fails at the network level or the node says the cluster is
// down.
type reloadOnNetError struct{ cc *redis.ClusterClient }

func (h reloadOnNetError) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := next(ctx, network, addr)
		if err != nil {
			h.cc.ReloadState(ctx)
		}
		return c, err
	}
}

func (h reloadOnNetError) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.check(ctx, err)
		return err
	}
}

func (h reloadOnNetError) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		h.check(ctx, err)
		return err
	}
}

func (h reloadOnNetError) check(ctx context.Context, err error) {
	if err == nil {
		return
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		redis.HasErrorPrefix(err, "CLUSTERDOWN") {
		h.cc.ReloadState(ctx)
	}
}
