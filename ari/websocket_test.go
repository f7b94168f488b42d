package ari

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// fakeEvents stands in for Asterisk's /ari/events. It rejects the first
// reject handshakes with 503, then runs script on each accepted connection
// (numbered from 1) and drops the connection when script returns.
type fakeEvents struct {
	*httptest.Server
	accepted atomic.Int32
}

func newFakeEvents(t *testing.T, reject int32, script func(n int32, conn *websocket.Conn)) *fakeEvents {
	t.Helper()
	f := &fakeEvents{}
	var attempts atomic.Int32
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.URL.Path != "/ari/events" || q.Get("app") != "privnum" || q.Get("subscribeAll") != "false" {
			t.Errorf("events URL %s", r.URL)
		}
		if user, pass, _ := r.BasicAuth(); user != "user" || pass != "secret" {
			t.Errorf("basic auth %q:%q", user, pass)
		}
		if attempts.Add(1) <= reject {
			http.Error(w, "Asterisk is starting", http.StatusServiceUnavailable)
			return
		}
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			t.Errorf("accept: %v", err)
			return
		}
		defer conn.CloseNow()
		script(f.accepted.Add(1), conn)
	}))
	t.Cleanup(f.Close)
	return f
}

// send writes events to conn.
func send(t *testing.T, conn *websocket.Conn, msgs ...string) {
	for _, m := range msgs {
		if err := conn.Write(context.Background(), websocket.MessageText, []byte(m)); err != nil {
			t.Errorf("write: %v", err)
		}
	}
}

// hold keeps conn open, answering pings, until the client closes it.
func hold(conn *websocket.Conn) {
	<-conn.CloseRead(context.Background()).Done()
}

// event is a minimal event message of the given type.
func event(typ string) string {
	return fmt.Sprintf(`{"type":%q,"application":"privnum","timestamp":"2026-11-23T05:57:53.962+0000","asterisk_id":"02:fc:00:00:00:01"}`, typ)
}

// recorder is a Handler that reports "connected" and event types in order.
type recorder struct {
	got   chan string
	block chan struct{} // if not nil, the first HandleEvent waits for it
	once  atomic.Bool
}

func newRecorder() *recorder { return &recorder{got: make(chan string, 100)} }

func (r *recorder) Connected(ctx context.Context) { r.got <- "connected" }

func (r *recorder) HandleEvent(ev Event) {
	if r.block != nil && r.once.CompareAndSwap(false, true) {
		<-r.block
	}
	r.got <- ev.EventType()
}

// expect waits for the handler to report want, in order.
func (r *recorder) expect(t *testing.T, want ...string) {
	t.Helper()
	for _, w := range want {
		select {
		case got := <-r.got:
			if got != w {
				t.Fatalf("handler got %q, want %q", got, w)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("handler did not get %q", w)
		}
	}
}

// startRun runs c.Run in the background and returns its cancel function
// and result.
func startRun(t *testing.T, c *Client, h Handler) (context.CancelFunc, <-chan error) {
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx, h) }()
	return cancel, errc
}

// runResult waits for Run to return.
func runResult(t *testing.T, errc <-chan error) error {
	t.Helper()
	select {
	case err := <-errc:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
		return nil
	}
}

func newEventsClient(t *testing.T, url string, pingInterval time.Duration) *Client {
	t.Helper()
	c, err := New(Config{
		URL: url, Username: "user", Password: "secret", Application: "privnum",
		Logger:       slog.New(slog.NewTextHandler(t.Output(), nil)),
		ReconnectMin: time.Millisecond, ReconnectMax: 10 * time.Millisecond,
		PingInterval: pingInterval,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// checkStopped fails if a goroutine of a Client is still running.
func checkStopped(t *testing.T, c *Client) {
	t.Helper()
	// A goroutine that has just signalled its end (Run returned) may still
	// be on its way out: give it a moment.
	var buf []byte
	for deadline := time.Now().Add(time.Second); ; {
		buf = make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		if !bytes.Contains(buf, []byte("privnum/ari.(*Client)")) || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if bytes.Contains(buf, []byte("privnum/ari.(*Client)")) {
		t.Errorf("client goroutines still running:\n%s", buf)
	}
	if c.Connected() {
		t.Error("Connected() is true after Run returned")
	}
}

func TestRunDeliversAndReconnects(t *testing.T) {
	srv := newFakeEvents(t, 1, func(n int32, conn *websocket.Conn) {
		switch n {
		case 1: // events, an undecodable message, then a drop
			send(t, conn, event("StasisStart"), `{"type":`, event("ChannelDialplan"), event("ChannelDestroyed"))
		default:
			send(t, conn, event("StasisEnd"))
			hold(conn)
		}
	})
	c := newEventsClient(t, srv.URL, time.Minute)
	h := newRecorder()
	cancel, errc := startRun(t, c, h)
	h.expect(t, "connected", "StasisStart", "ChannelDialplan", "ChannelDestroyed", "connected", "StasisEnd")
	if !c.Connected() {
		t.Error("Connected() is false while connected")
	}
	cancel()
	if err := runResult(t, errc); err != nil {
		t.Errorf("Run after cancel = %v, want nil", err)
	}
	checkStopped(t, c)
}

func TestRunStopsWhenApplicationReplaced(t *testing.T) {
	srv := newFakeEvents(t, 0, func(n int32, conn *websocket.Conn) {
		send(t, conn, event("StasisStart"), event("ApplicationReplaced"), event("StasisEnd"))
		hold(conn)
	})
	c := newEventsClient(t, srv.URL, time.Minute)
	h := newRecorder()
	_, errc := startRun(t, c, h)
	if err := runResult(t, errc); !errors.Is(err, ErrApplicationReplaced) {
		t.Fatalf("Run = %v, want ErrApplicationReplaced", err)
	}
	h.expect(t, "connected", "StasisStart")
	if len(h.got) != 0 {
		t.Errorf("handler got %q after ApplicationReplaced", <-h.got)
	}
	if n := srv.accepted.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
	checkStopped(t, c)
}

func TestRunCancel(t *testing.T) {
	t.Run("while connected", func(t *testing.T) {
		srv := newFakeEvents(t, 0, func(n int32, conn *websocket.Conn) { hold(conn) })
		c := newEventsClient(t, srv.URL, time.Minute)
		h := newRecorder()
		cancel, errc := startRun(t, c, h)
		h.expect(t, "connected")
		cancel()
		if err := runResult(t, errc); err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
		checkStopped(t, c)
	})
	t.Run("while Asterisk is down", func(t *testing.T) {
		srv := newFakeEvents(t, 1<<30, nil)
		c := newEventsClient(t, srv.URL, time.Minute)
		cancel, errc := startRun(t, c, newRecorder())
		time.Sleep(50 * time.Millisecond) // several failed attempts
		cancel()
		if err := runResult(t, errc); err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
		checkStopped(t, c)
	})
}

// A peer that stops answering pings is dropped and replaced.
func TestRunReconnectsWhenPingsFail(t *testing.T) {
	stop := make(chan struct{})
	srv := newFakeEvents(t, 0, func(n int32, conn *websocket.Conn) {
		if n == 1 {
			<-stop // never reads: pings go unanswered
			return
		}
		hold(conn)
	})
	t.Cleanup(func() { close(stop) }) // before srv.Close, which waits for handlers
	c := newEventsClient(t, srv.URL, 20*time.Millisecond)
	h := newRecorder()
	cancel, errc := startRun(t, c, h)
	h.expect(t, "connected", "connected")
	cancel()
	if err := runResult(t, errc); err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
	checkStopped(t, c)
}

// A handler that blocks does not stop Run from reading: the server's ping,
// which only a reading client answers, still gets its pong.
func TestRunKeepsReadingWhileHandlerBlocks(t *testing.T) {
	pinged := make(chan error, 1)
	srv := newFakeEvents(t, 0, func(n int32, conn *websocket.Conn) {
		send(t, conn, event("StasisStart"), event("ChannelStateChange"), event("StasisEnd"))
		ctx := conn.CloseRead(context.Background())
		pingCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		pinged <- conn.Ping(pingCtx)
		cancel()
		<-ctx.Done()
	})
	c := newEventsClient(t, srv.URL, time.Minute)
	h := newRecorder()
	h.block = make(chan struct{})
	cancel, errc := startRun(t, c, h)
	h.expect(t, "connected")
	if err := <-pinged; err != nil {
		t.Errorf("ping while the handler blocks: %v", err)
	}
	close(h.block)
	h.expect(t, "StasisStart", "ChannelStateChange", "StasisEnd")
	cancel()
	if err := runResult(t, errc); err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
	checkStopped(t, c)
}

// Events larger than coder/websocket's default 32 KiB read limit arrive.
func TestRunReadsLargeEvents(t *testing.T) {
	vars := bytes.Repeat([]byte(`"V":"x",`), 10000)
	big := `{"type":"StasisStart","application":"privnum","timestamp":"2026-11-23T05:57:53.962+0000","args":[],` +
		`"channel":{"id":"c","channelvars":{` + string(vars) + `"W":"y"}}}`
	srv := newFakeEvents(t, 0, func(n int32, conn *websocket.Conn) {
		send(t, conn, big)
		hold(conn)
	})
	c := newEventsClient(t, srv.URL, time.Minute)
	h := newRecorder()
	cancel, errc := startRun(t, c, h)
	h.expect(t, "connected", "StasisStart")
	cancel()
	if err := runResult(t, errc); err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
	if n := srv.accepted.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

// inlineRecorder is an InlineHandler that records without locking, so that
// the race detector checks the calls are ordered; Connected may block.
type inlineRecorder struct {
	seen    []string
	got     chan string
	connect chan struct{} // if not nil, Connected waits for it
}

func (r *inlineRecorder) Connected(ctx context.Context) {
	if r.connect != nil {
		<-r.connect
	}
	r.seen = append(r.seen, "connected")
	r.got <- "connected"
}

func (r *inlineRecorder) HandleEvent(ev Event) {
	r.seen = append(r.seen, ev.EventType())
	r.got <- ev.EventType()
}

func (r *inlineRecorder) InlineEvents() {}

// An InlineHandler gets its events in order, after Connected, whether the
// read loop or the dispatcher delivers them.
func TestRunInlineHandler(t *testing.T) {
	srv := newFakeEvents(t, 1, func(n int32, conn *websocket.Conn) {
		switch n {
		case 1: // queued behind the blocked Connected, then a drop
			send(t, conn, event("StasisStart"), event("ChannelDialplan"), event("ChannelDestroyed"))
		default: // Connected done: the read loop delivers
			send(t, conn, event("StasisEnd"))
			time.Sleep(20 * time.Millisecond)
			send(t, conn, event("Dial"), event("StasisStart"))
			hold(conn)
		}
	})
	c := newEventsClient(t, srv.URL, time.Minute)
	h := &inlineRecorder{got: make(chan string, 100), connect: make(chan struct{})}
	cancel, errc := startRun(t, c, h)
	time.Sleep(20 * time.Millisecond) // the first events wait behind Connected
	close(h.connect)
	for _, want := range []string{"connected", "StasisStart", "ChannelDialplan", "ChannelDestroyed", "connected", "StasisEnd", "Dial", "StasisStart"} {
		select {
		case got := <-h.got:
			if got != want {
				t.Fatalf("handler got %q, want %q", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("handler did not get %q", want)
		}
	}
	cancel()
	if err := runResult(t, errc); err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
	checkStopped(t, c)
	if len(h.seen) != 8 {
		t.Errorf("seen %q", h.seen)
	}
}
