package ari

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
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

// Handler receives what Run delivers. Run calls its methods one call at a
// time, in the order the connection produced them, from its dispatcher
// goroutine (and, for an InlineHandler, from its read loop).
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

// InlineHandler is a Handler whose HandleEvent never blocks: it does no I/O,
// holds no lock for long and hands every piece of work to other goroutines.
// Run calls its HandleEvent on the goroutine that reads the connection, as
// soon as the event is decoded, whenever no earlier delivery is still
// queued. That saves handing each event over to the dispatcher goroutine,
// a wake-up of another thread that costs tens of microseconds on a busy
// machine, on the way from Asterisk to the handler. Connected, and events
// that arrive while earlier deliveries wait in the queue, go through the
// dispatcher as for any Handler; the order and the one-at-a-time guarantee
// hold either way. A HandleEvent that blocks would stop reading.
type InlineHandler interface {
	Handler
	// InlineEvents marks the handler; Run never calls it.
	InlineEvents()
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
// like any drop. (An InlineHandler's events are handed to it by the read
// loop itself while nothing is queued.) Events already queued are still
// delivered when a connection ends, except after ctx is cancelled. Run
// returns only after its goroutines have ended and h is no longer called.
//
// Asterisk allows one connection per application name: do not call Run
// twice at once.
func (c *Client) Run(ctx context.Context, h Handler) error {
	_, inline := h.(InlineHandler)
	d := &dispatch{queue: make(chan func(), c.cfg.EventQueueSize), inline: inline}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for deliver := range d.queue {
			if ctx.Err() == nil {
				deliver()
			}
			d.pending.Add(-1) // after deliver returned: see dispatch.pending
		}
	}()
	err := c.connectLoop(ctx, h, d)
	close(d.queue)
	<-done
	return err
}

// dispatch is the way from the read loop to the handler.
type dispatch struct {
	queue  chan func()
	inline bool // the handler is an InlineHandler
	// pending counts the deliveries queued and not yet done. Only the read
	// loop adds to it, and the dispatcher takes one off after a delivery
	// returned, so when the read loop sees zero every delivery it queued
	// is over and it may call the handler itself, in order.
	pending atomic.Int64
}

// connectLoop runs sessions until ctx is cancelled or the application is
// replaced.
func (c *Client) connectLoop(ctx context.Context, h Handler, d *dispatch) error {
	delay := c.cfg.ReconnectMin
	for {
		connected, err := c.session(ctx, h, d)
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
func (c *Client) session(ctx context.Context, h Handler, d *dispatch) (connected bool, err error) {
	dialCtx, cancel := context.WithTimeout(ctx, dialTimeout)
	conn, _, err := websocket.Dial(dialCtx, c.eventsURL, &websocket.DialOptions{
		HTTPClient: c.cfg.HTTPClient,
		HTTPHeader: http.Header{"Authorization": {c.auth}},
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
	if err := c.enqueue(ctx, d, func() { h.Connected(ctx) }); err != nil {
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
		if d.inline && d.pending.Load() == 0 {
			if ctx.Err() == nil {
				h.HandleEvent(ev)
			}
			continue
		}
		if err := c.enqueue(ctx, d, func() { h.HandleEvent(ev) }); err != nil {
			return true, err
		}
	}
}

// enqueue puts deliver in the queue, waiting while it is full.
func (c *Client) enqueue(ctx context.Context, d *dispatch, deliver func()) error {
	d.pending.Add(1)
	select {
	case d.queue <- deliver:
		return nil
	default:
	}
	c.cfg.Logger.Warn("ari: event queue full; reading paused until the handler catches up", "size", cap(d.queue))
	select {
	case d.queue <- deliver:
		return nil
	case <-ctx.Done():
		d.pending.Add(-1)
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
