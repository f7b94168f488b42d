package arisim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/privnum/privnum/ari/arisim"
)

const (
	testUser = "privnum"
	testPass = "secret"
	testApp  = "privnum"
)

// newSim starts a simulator closed at the end of the test.
func newSim(t testing.TB, opts arisim.Options) *arisim.Sim {
	t.Helper()
	opts.Username, opts.Password = testUser, testPass
	sim := arisim.New(opts)
	if err := sim.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(sim.Close)
	return sim
}

// recvEvent is one event received on the WebSocket.
type recvEvent struct {
	Type string
	Key  string // id of the object the event is about
	Data map[string]any
	used bool
}

// eventKey is the id of what an event is about: its channel (or Dial peer),
// else its bridge, playback or recording; "app" for application events.
func eventKey(m map[string]any) string {
	for _, f := range []string{"channel", "peer"} {
		if c, ok := m[f].(map[string]any); ok {
			return str(c["id"])
		}
	}
	if b, ok := m["bridge"].(map[string]any); ok {
		return str(b["id"])
	}
	if p, ok := m["playback"].(map[string]any); ok {
		return str(p["id"])
	}
	if r, ok := m["recording"].(map[string]any); ok {
		return str(r["name"])
	}
	return "app"
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// wsClient reads every event of one /ari/events connection.
type wsClient struct {
	t    testing.TB
	conn *websocket.Conn

	mu      sync.Mutex
	events  []*recvEvent
	byKey   map[string][]*recvEvent
	changed chan struct{}
	readErr error
	done    chan struct{}
}

func dialWS(t testing.TB, sim *arisim.Sim, app string) *wsClient {
	t.Helper()
	u := strings.Replace(sim.URL(), "http://", "ws://", 1) + "/ari/events?app=" + url.QueryEscape(app) +
		"&subscribeAll=true&api_key=" + url.QueryEscape(testUser+":"+testPass)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		t.Fatalf("websocket dial: %v", err)
	}
	conn.SetReadLimit(1 << 22)
	c := &wsClient{t: t, conn: conn, changed: make(chan struct{}), done: make(chan struct{}), byKey: map[string][]*recvEvent{}}
	go c.readLoop()
	t.Cleanup(c.close)
	return c
}

func (c *wsClient) readLoop() {
	defer close(c.done)
	for {
		_, b, err := c.conn.Read(context.Background())
		c.mu.Lock()
		if err != nil {
			c.readErr = err
			close(c.changed)
			c.changed = make(chan struct{})
			c.mu.Unlock()
			return
		}
		var m map[string]any
		if jerr := json.Unmarshal(b, &m); jerr != nil {
			c.readErr = jerr
		} else {
			ev := &recvEvent{Type: str(m["type"]), Key: eventKey(m), Data: m}
			c.events = append(c.events, ev)
			c.byKey[ev.Key] = append(c.byKey[ev.Key], ev)
		}
		close(c.changed)
		c.changed = make(chan struct{})
		c.mu.Unlock()
	}
}

func (c *wsClient) close() {
	c.conn.Close(websocket.StatusNormalClosure, "")
	<-c.done
}

// closed reports whether the read loop ended, and why.
func (c *wsClient) closed() (bool, error) {
	select {
	case <-c.done:
		c.mu.Lock()
		defer c.mu.Unlock()
		return true, c.readErr
	default:
		return false, nil
	}
}

// waitFor waits until pick returns an event (it runs with the lock held).
func (c *wsClient) waitFor(timeout time.Duration, pick func([]*recvEvent) *recvEvent) (*recvEvent, bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		ev := pick(c.events)
		changed := c.changed
		c.mu.Unlock()
		if ev != nil {
			return ev, true
		}
		select {
		case <-changed:
		case <-deadline.C:
			return nil, false
		}
	}
}

// waitKey waits until an event of the given type about key was received
// (used or not).
func (c *wsClient) waitKey(key, typ string, timeout time.Duration) bool {
	_, ok := c.waitFor(timeout, func([]*recvEvent) *recvEvent {
		for _, e := range c.byKey[key] {
			if e.Type == typ {
				return e
			}
		}
		return nil
	})
	return ok
}

// waitType waits for an unused event of the given type about key ("" = any).
func (c *wsClient) waitType(typ, key string, timeout time.Duration) *recvEvent {
	c.t.Helper()
	ev, ok := c.waitFor(timeout, func(evs []*recvEvent) *recvEvent {
		for _, e := range evs {
			if !e.used && e.Type == typ && (key == "" || e.Key == key) {
				e.used = true
				return e
			}
		}
		return nil
	})
	if !ok {
		c.t.Fatalf("no %s event for %q within %v; got %v", typ, key, timeout, c.types(key))
	}
	return ev
}

// types lists the types of the events received about key ("" = all),
// ChannelVarset left out.
func (c *wsClient) types(key string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, e := range c.events {
		if e.Type != "ChannelVarset" && (key == "" || e.Key == key) {
			out = append(out, e.Type)
		}
	}
	return out
}

// count returns how many events were received (ChannelVarset included).
func (c *wsClient) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.events)
}

// restClient calls the simulator's REST API.
type restClient struct {
	t    testing.TB
	base string
	http *http.Client
}

func newREST(t testing.TB, sim *arisim.Sim) *restClient {
	return &restClient{t: t, base: sim.URL() + "/ari", http: &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 128},
	}}
}

// do sends a request; query may be nil, body is JSON-encoded when non-nil.
func (c *restClient) do(method, path string, query url.Values, body any) (int, []byte, error) {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.SetBasicAuth(testUser, testPass)
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// must sends a request and fails the test unless the status is want.
func (c *restClient) must(want int, method, path string, query url.Values, body any) map[string]any {
	c.t.Helper()
	st, b, err := c.do(method, path, query, body)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	if st != want {
		c.t.Fatalf("%s %s: status %d, want %d: %s", method, path, st, want, b)
	}
	var m map[string]any
	if len(b) > 0 {
		_ = json.Unmarshal(b, &m)
	}
	return m
}

func q(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func isNoApp(err error) bool { return errors.Is(err, arisim.ErrNoApplication) }
