package ari

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/coder/websocket"
)

// ErrApplicationReplaced is returned by Run when another connection took
// over the application name. Reconnecting would take it back and start a
// tug of war: the process should stop or alert instead.
var ErrApplicationReplaced = errors.New("ari: application taken over by another connection")

const (
	// maxEventSize bounds one event message (coder/websocket's default is
	// 32 KiB, less than a big bridge or channelvars event).
	maxEventSize = 1 << 20
	// dialTimeout bounds one WebSocket handshake.
	dialTimeout = 10 * time.Second
)

// Handler receives what Run delivers. Run calls its methods from a single
// goroutine, one call at a time, in the order the connection produced them.
type Handler interface {
	// Connected is called after each successful connection and
	// reconnection, after the events of the previous connection and before
	// those of the new one, which wait in the queue meanwhile (so what
	// Connected reads may already reflect some of them). Events sent while
	// no connection was up are lost: resynchronize here, e.g. from
	// Client.Application's ChannelIDs and BridgeIDs.
	Connected(ctx context.Context)
	// HandleEvent is called for each event except ApplicationReplaced. It
	// should return quickly (hand work to other goroutines): while it runs,
	// events queue up, and a full queue stops reading.
	HandleEvent(ev Event)
}

// Connected reports whether Run currently holds an event connection.
func (c *Client) Connected() bool {
	return c.connected.Load()
}

// Run receives the application's events over a WebSocket and passes them to
// h until ctx is cancelled, then returns nil. When the connection fails or
// drops it reconnects with exponential backoff and jitter (ReconnectMin to
// ReconnectMax). If another connection takes over the application, Run
// returns ErrApplicationReplaced. Undecodable messages are logged and
// skipped; event types without a struct arrive as *Unknown.
//
// A read loop receives events into a queue of EventQueueSize and a
// dispatcher goroutine hands them to h, so a slow handler does not stop
// reading at once; only a full queue pauses reading, and then Asterisk may
// drop the connection (ari.conf websocket_write_timeout), which Run repairs
// like any drop. Events already queued are still delivered when a
// connection ends, except after ctx is cancelled. Run returns only after
// its goroutines have ended and h is no longer called.
//
// Asterisk allows one connection per application name: do not call Run
// twice at once.
func (c *Client) Run(ctx context.Context, h Handler) error {
	queue := make(chan func(), c.cfg.EventQueueSize)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for deliver := range queue {
			if ctx.Err() == nil {
				deliver()
			}
		}
	}()
	err := c.connectLoop(ctx, h, queue)
	close(queue)
	<-done
	return err
}

// connectLoop runs sessions until ctx is cancelled or the application is
// replaced.
func (c *Client) connectLoop(ctx context.Context, h Handler, queue chan<- func()) error {
	delay := c.cfg.ReconnectMin
	for {
		connected, err := c.session(ctx, h, queue)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, ErrApplicationReplaced) {
			return err
		}
		if connected {
			delay = c.cfg.ReconnectMin
		}
		wait := delay/2 + rand.N(delay/2+1)
		c.cfg.Logger.Warn("ari: event connection down", "app", c.cfg.Application, "err", err, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		delay = min(2*delay, c.cfg.ReconnectMax)
	}
}

// session makes one connection and reads it until it fails. connected tells
// whether the handshake succeeded.
func (c *Client) session(ctx context.Context, h Handler, queue chan<- func()) (connected bool, err error) {
	dialCtx, cancel := context.WithTimeout(ctx, dialTimeout)
	auth := base64.StdEncoding.EncodeToString([]byte(c.cfg.Username + ":" + c.cfg.Password))
	conn, _, err := websocket.Dial(dialCtx, c.eventsURL, &websocket.DialOptions{
		HTTPClient: c.cfg.HTTPClient,
		HTTPHeader: http.Header{"Authorization": {"Basic " + auth}},
	})
	cancel()
	if err != nil {
		return false, fmt.Errorf("ari: connect events: %w", err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(maxEventSize)

	c.connected.Store(true)
	defer c.connected.Store(false)
	c.cfg.Logger.Info("ari: event connection up", "app", c.cfg.Application)
	if err := c.enqueue(ctx, queue, func() { h.Connected(ctx) }); err != nil {
		return true, err
	}

	pingCtx, stopPing := context.WithCancel(ctx)
	pingDone := make(chan struct{})
	go func() {
		defer close(pingDone)
		c.ping(pingCtx, conn)
	}()
	defer func() {
		stopPing()
		<-pingDone
	}()

	// One buffer for every message: DecodeEvent keeps nothing of it.
	var buf bytes.Buffer
	for {
		// One long-lived context: coder/websocket closes the connection
		// when the context of a Read ends.
		_, r, err := conn.Reader(ctx)
		if err == nil {
			buf.Reset()
			_, err = buf.ReadFrom(r)
		}
		if err != nil {
			return true, fmt.Errorf("ari: read events: %w", err)
		}
		data := buf.Bytes()
		ev, err := DecodeEvent(data)
		if buf.Cap() > 64<<10 {
			buf = bytes.Buffer{} // a rare big event: do not keep its buffer
		}
		if err != nil {
			// Not the message itself: it may hold phone numbers.
			c.cfg.Logger.Warn("ari: skipping undecodable event", "err", err, "bytes", len(data))
			continue
		}
		if _, ok := ev.(*ApplicationReplaced); ok {
			return true, ErrApplicationReplaced
		}
		if err := c.enqueue(ctx, queue, func() { h.HandleEvent(ev) }); err != nil {
			return true, err
		}
	}
}

// enqueue puts deliver in the queue, waiting while it is full.
func (c *Client) enqueue(ctx context.Context, queue chan<- func(), deliver func()) error {
	select {
	case queue <- deliver:
		return nil
	default:
	}
	c.cfg.Logger.Warn("ari: event queue full; reading paused until the handler catches up", "size", cap(queue))
	select {
	case queue <- deliver:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ping pings Asterisk every PingInterval until ctx ends, and closes conn
// when a pong does not come back in time, which ends the session's Read.
func (c *Client) ping(ctx context.Context, conn *websocket.Conn) {
	t := time.NewTicker(c.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pingCtx, cancel := context.WithTimeout(ctx, c.cfg.PingInterval)
		err := conn.Ping(pingCtx)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				c.cfg.Logger.Warn("ari: event connection ping failed", "app", c.cfg.Application, "err", err)
				conn.CloseNow()
			}
			return
		}
	}
}
