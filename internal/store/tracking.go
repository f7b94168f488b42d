package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Tracking: Redis client-side caching in broadcasting mode.
//
// Track keeps one connection of its own to every primary (a single Redis,
// the Sentinel-chosen master, or each Cluster master) with
// CLIENT TRACKING ON BCAST for the given key prefixes, and reports every
// key a write, an expiry or an eviction changes under them. A cache built
// on it may serve what it read while tracking is up (Up) and must drop
// everything when it goes down (Down): writes made while a connection was
// lost are never reported.

// TrackHandler receives what Track learns. Its methods are called from
// one goroutine at a time and must not block.
type TrackHandler interface {
	// Up: every primary now reports changes under the prefixes.
	Up()
	// Invalidate: these keys changed. nil means every key (FLUSHALL,
	// FLUSHDB).
	Invalidate(keys []string)
	// Beat: every primary answered a heartbeat sent at sent, so every
	// change it made before then has been reported.
	Beat(sent time.Time)
	// Down: tracking stopped on at least one primary (err says why);
	// changes may go unreported until the next Up.
	Down(err error)
}

// NumberKeysPrefix starts every key that carries a virtual number's hash
// tag: what a route cache tracks.
const NumberKeysPrefix = "pn:{"

// CheckTracking connects to every primary of rdb as Track does, turning
// tracking on, and hangs up: nil when Track would come up (Redis 6 or
// later, and an ACL that allows HELLO and CLIENT TRACKING).
func CheckTracking(ctx context.Context, rdb redis.UniversalClient, prefixes []string) error {
	nodes, err := primaries(ctx, rdb)
	if err != nil {
		return err
	}
	for _, o := range nodes {
		c, err := dialTracking(ctx, o, prefixes)
		if err != nil {
			return err
		}
		c.conn.Close()
	}
	return nil
}

// TrackInterval is how often Track checks each tracking connection with a
// heartbeat, and whether the primaries changed.
const TrackInterval = 250 * time.Millisecond

// Track reports changes under prefixes to h until ctx ends, reconnecting
// after a failure. It returns ctx's error, or an error at once for a
// client kind it cannot track.
func Track(ctx context.Context, rdb redis.UniversalClient, prefixes []string, h TrackHandler) error {
	switch rdb.(type) {
	case *redis.Client, *redis.ClusterClient:
	default:
		return fmt.Errorf("track: unsupported Redis client %T", rdb)
	}
	var bg sync.WaitGroup // checks of the primaries, which may outlive their session
	defer bg.Wait()
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		up, err := trackSession(ctx, rdb, prefixes, h, &bg)
		if ctx.Err() != nil {
			h.Down(ctx.Err())
			break
		}
		h.Down(err)
		if up {
			backoff = 50 * time.Millisecond
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
	return ctx.Err()
}

// primaries returns the connection options of every primary of rdb.
func primaries(ctx context.Context, rdb redis.UniversalClient) ([]*redis.Options, error) {
	switch c := rdb.(type) {
	case *redis.Client:
		return []*redis.Options{c.Options()}, nil
	case *redis.ClusterClient:
		var mu sync.Mutex
		var out []*redis.Options
		err := c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			mu.Lock()
			out = append(out, m.Options())
			mu.Unlock()
			return nil
		})
		slices.SortFunc(out, func(a, b *redis.Options) int { return strings.Compare(a.Addr, b.Addr) })
		return out, err
	}
	return nil, fmt.Errorf("track: unsupported Redis client %T", rdb)
}

func addrs(opts []*redis.Options) []string {
	out := make([]string, len(opts))
	for i, o := range opts {
		out[i] = o.Addr
	}
	return out
}

// trackSession tracks every primary until one connection fails or the
// primaries change. up tells whether tracking was up on all of them.
func trackSession(ctx context.Context, rdb redis.UniversalClient, prefixes []string, h TrackHandler, bg *sync.WaitGroup) (up bool, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	nodes, err := primaries(ctx, rdb)
	if err != nil || len(nodes) == 0 {
		return false, fmt.Errorf("track: primaries: %v", err)
	}
	conns := make([]*trackConn, len(nodes))
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.conn.Close()
			}
		}
	}()
	for i, o := range nodes {
		c, err := dialTracking(ctx, o, prefixes)
		if err != nil {
			return false, err
		}
		conns[i] = c
	}

	// One reader per connection hands what it reads to this goroutine, so
	// that h sees one caller and a heartbeat counts only once every
	// connection answered it.
	type msg struct {
		node int      // -1: the check of the primaries
		keys []string // an invalidation
		all  bool     // an invalidation of every key
		pong bool
		err  error
	}
	msgs := make(chan msg, 64)
	var readers sync.WaitGroup
	for i, c := range conns {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				v, err := c.read()
				var m msg
				switch {
				case err != nil:
					m = msg{node: i, err: err}
				case isPush(v, "invalidate"):
					keys, all := invalidated(v)
					m = msg{node: i, keys: keys, all: all}
				case v == "PONG":
					m = msg{node: i, pong: true}
				default:
					continue // a reply nobody waits for
				}
				select {
				case msgs <- m:
				case <-ctx.Done():
					return
				}
				if err != nil {
					return
				}
			}
		}()
	}
	defer func() {
		cancel(nil)
		for _, c := range conns {
			c.conn.Close()
		}
		readers.Wait()
	}()

	// A change of primary ends the session: the new one is not tracked.
	// The check runs apart, so that a server slow to tell (paused,
	// failing over) cannot hold up the heartbeats.
	bg.Add(1)
	go func() {
		defer bg.Done()
		tick := time.NewTicker(TrackInterval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			err := samePrimaries(ctx, rdb, nodes, conns)
			if err == nil {
				continue
			}
			select {
			case msgs <- msg{node: -1, err: err}:
			case <-ctx.Done():
			}
			return
		}
	}()

	h.Up()
	// Down is reported as soon as the session ends, before its goroutines
	// are waited for.
	defer func() { h.Down(err) }()
	tick := time.NewTicker(TrackInterval)
	defer tick.Stop()
	var sent time.Time // heartbeat in flight
	answered := make([]bool, len(conns))
	for {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case m := <-msgs:
			switch {
			case m.err != nil && m.node < 0: // the check of the primaries
				return true, m.err
			case m.err != nil:
				return true, fmt.Errorf("track %s: %w", nodes[m.node].Addr, m.err)
			case m.all:
				h.Invalidate(nil)
			case m.keys != nil:
				h.Invalidate(m.keys)
			case m.pong && !sent.IsZero():
				answered[m.node] = true
				if !slices.Contains(answered, false) {
					h.Beat(sent)
					sent = time.Time{}
				}
			}
		case <-tick.C:
			if !sent.IsZero() {
				// One late answer is let pass (a fork, a slow
				// command); the cache stops being served when the last
				// answered heartbeat is older than its bound anyway.
				if time.Since(sent) > 2*TrackInterval+TrackInterval/2 {
					return true, errors.New("track: a heartbeat went unanswered")
				}
				continue
			}
			sent = time.Now()
			clear(answered)
			for _, c := range conns {
				if err := c.write(ctx, "PING"); err != nil {
					return true, err
				}
			}
		}
	}
}

// samePrimaries checks that rdb's primaries are still the ones tracked:
// a Cluster's masters, or the server a single client (Sentinel's master
// included) now sends its commands to, told by its run id. After a
// Sentinel failover the old master answers heartbeats until it is
// demoted, seconds later, while the writes go to the new one.
func samePrimaries(ctx context.Context, rdb redis.UniversalClient, nodes []*redis.Options, conns []*trackConn) error {
	ctx, cancel := context.WithTimeout(ctx, 2*TrackInterval)
	defer cancel()
	if c, ok := rdb.(*redis.Client); ok {
		info, err := c.Info(ctx, "server").Result()
		if err != nil {
			return fmt.Errorf("track: which server is the primary: %w", err)
		}
		if id := infoField(info, "run_id"); id != conns[0].runID {
			return fmt.Errorf("track: the primary changed (run id %s, tracked %s)", id, conns[0].runID)
		}
		return nil
	}
	// Asked of the cluster each time, not of the client's cached map,
	// which learns of a failover only when it next reloads.
	slots, err := rdb.(*redis.ClusterClient).ClusterSlots(ctx).Result()
	if err != nil {
		return fmt.Errorf("track: the cluster's masters cannot be read: %w", err)
	}
	var masters []string
	for _, s := range slots {
		if len(s.Nodes) > 0 && !slices.Contains(masters, s.Nodes[0].Addr) {
			masters = append(masters, s.Nodes[0].Addr)
		}
	}
	slices.Sort(masters)
	if !slices.Equal(masters, addrs(nodes)) {
		return fmt.Errorf("track: the cluster's masters changed: %v, tracked %v", masters, addrs(nodes))
	}
	return nil
}

// infoField returns a field of an INFO reply.
func infoField(info, name string) string {
	for _, l := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), name+":"); ok {
			return v
		}
	}
	return ""
}

// trackConn is one tracking connection, speaking RESP3.
type trackConn struct {
	conn  net.Conn
	r     *bufio.Reader
	runID string // the server's
}

// dialTracking connects to the primary o names (through the client's own
// dialer: TLS, Sentinel), authenticates and turns tracking on.
func dialTracking(ctx context.Context, o *redis.Options, prefixes []string) (*trackConn, error) {
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	dial := o.Dialer
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	network := o.Network
	if network == "" {
		network = "tcp"
	}
	conn, err := dial(dctx, network, o.Addr)
	if err != nil {
		return nil, fmt.Errorf("track %s: %w", o.Addr, err)
	}
	c := &trackConn{conn: conn, r: bufio.NewReader(conn)}
	user, password, err := credentials(dctx, o)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("track %s: credentials: %w", o.Addr, err)
	}
	hello := []string{"HELLO", "3"}
	if password != "" {
		if user == "" {
			user = "default"
		}
		hello = append(hello, "AUTH", user, password)
	}
	hello = append(hello, "SETNAME", "privnum-tracking")
	track := []string{"CLIENT", "TRACKING", "ON", "BCAST"}
	for _, p := range prefixes {
		track = append(track, "PREFIX", p)
	}
	for _, cmd := range [][]string{hello, track, {"INFO", "server"}} {
		if err := c.write(dctx, cmd...); err != nil {
			conn.Close()
			return nil, err
		}
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		v, err := c.read()
		conn.SetReadDeadline(time.Time{})
		if err == nil {
			if e, ok := v.(respError); ok {
				err = e
			}
		}
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("track %s: %s: %w", o.Addr, cmd[0], err)
		}
		if info, ok := v.(string); ok && cmd[0] == "INFO" {
			c.runID = infoField(info, "run_id")
		}
	}
	return c, nil
}

// credentials returns the user and password the client authenticates
// with: its credentials provider's when it has one (a streaming
// provider is not supported: an error), else its options'.
func credentials(ctx context.Context, o *redis.Options) (user, password string, err error) {
	switch {
	case o.StreamingCredentialsProvider != nil:
		return "", "", errors.New("a streaming credentials provider is not supported")
	case o.CredentialsProviderContext != nil:
		return o.CredentialsProviderContext(ctx)
	case o.CredentialsProvider != nil:
		user, password = o.CredentialsProvider()
		return user, password, nil
	}
	return o.Username, o.Password, nil
}

// write sends one command.
func (c *trackConn) write(ctx context.Context, args ...string) error {
	b := []byte("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, "\r\n"...)
		b = append(b, a...)
		b = append(b, "\r\n"...)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(5 * time.Second)
	}
	c.conn.SetWriteDeadline(deadline)
	_, err := c.conn.Write(b)
	return err
}

// respError is an error reply.
type respError string

func (e respError) Error() string { return string(e) }

// respPush is a RESP3 push message.
type respPush []any

// read reads one RESP3 value: string (simple, bulk, verbatim), int64,
// respError, []any (array, set, map as key-value pairs), respPush, or nil.
// An attribute is read and dropped.
func (c *trackConn) read() (any, error) {
	line, err := c.r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return nil, fmt.Errorf("track: bad RESP line %q", line)
	}
	t, body := line[0], line[1:len(line)-2]
	switch t {
	case '+', ',', '(', '#':
		return body, nil
	case '-':
		return respError(body), nil
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '_':
		return nil, nil
	case '$', '=', '!':
		n, err := strconv.Atoi(body)
		if err != nil {
			return nil, fmt.Errorf("track: bad length %q", body)
		}
		if n < 0 {
			return nil, nil
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(c.r, b); err != nil {
			return nil, err
		}
		s := string(b[:n])
		if t == '!' {
			return respError(s), nil
		}
		if t == '=' && len(s) >= 4 {
			s = s[4:] // "txt:"
		}
		return s, nil
	case '*', '~', '%', '>', '|':
		n, err := strconv.Atoi(body)
		if err != nil {
			return nil, fmt.Errorf("track: bad length %q", body)
		}
		if n < 0 {
			return nil, nil
		}
		if t == '%' || t == '|' {
			n *= 2
		}
		out := make([]any, 0, min(n, 1024))
		for range n {
			v, err := c.read()
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		switch t {
		case '>':
			return respPush(out), nil
		case '|':
			return c.read() // the value the attribute describes
		}
		return out, nil
	}
	return nil, fmt.Errorf("track: unknown RESP type %q", t)
}

// isPush reports whether v is a push message of kind name.
func isPush(v any, name string) bool {
	p, ok := v.(respPush)
	return ok && len(p) > 0 && p[0] == name
}

// invalidated returns the keys of an invalidate push, or all when it
// invalidates every key.
func invalidated(v any) (keys []string, all bool) {
	p := v.(respPush)
	if len(p) < 2 || p[1] == nil {
		return nil, true
	}
	arr, _ := p[1].([]any)
	keys = make([]string, 0, len(arr))
	for _, k := range arr {
		if s, ok := k.(string); ok {
			keys = append(keys, s)
		}
	}
	return keys, false
}
