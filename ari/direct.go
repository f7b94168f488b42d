package ari

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Originate requests sent on the caller's goroutine.
//
// A request through net/http is handed to the transport's writer
// goroutine, and its answer comes back through the transport's reader
// goroutine. Each hand-off wakes a goroutine, often on another thread, and
// on a busy switch host that costs tens of microseconds. Measured on
// Asterisk 22 on 2 cores: privnum took 60 to 100 µs longer than a minimal
// ARI application from StasisStart to the originate request, and 40 µs
// less once the request was written on the goroutine that read the
// StasisStart. The originate request of a call lies between the caller's
// INVITE and the hidden party's, so StartOriginate writes it at once, over
// a connection kept ready for it (Warm), and only the wait for the answer
// moves to another goroutine.

const (
	// directConns connections are kept ready for StartOriginate by Warm.
	directConns = 2
	// directMaxIdle bounds the ready connections kept after use.
	directMaxIdle = 4
	// directFresh is how long a connection stays ready after its last
	// answer: under Asterisk's session_keep_alive (15 s), so that Asterisk
	// does not close it under a request. Warm (every 5 s in serve) answers
	// a ping on each one, which keeps them fresh while no call uses them.
	directFresh = 10 * time.Second
	// directWriteTimeout bounds writing a request, for a goroutine that
	// must not wait: a connection ready for it has room in its socket
	// buffer, so the write does not wait. A write that would is given up
	// (the connection is closed, Asterisk reads no whole request from it)
	// and the caller sends the request with Originate.
	directWriteTimeout = 10 * time.Millisecond
	// directTimeout bounds the answer, as the default HTTP client's
	// timeout bounds a request.
	directTimeout = 10 * time.Second
)

// direct holds the connections ready for StartOriginate.
type direct struct {
	addr string // Asterisk's host:port; "" when StartOriginate is off
	mu   sync.Mutex
	idle []*directConn // the most recently used last
}

// directConn is a kept-alive HTTP/1.1 connection to Asterisk.
type directConn struct {
	nc   net.Conn
	br   *bufio.Reader
	used time.Time // when it last carried an answer
}

// StartOriginate sends the originate request r at once, on the calling
// goroutine, without waiting for a connection or a goroutine, and returns;
// wait then returns its answer as Originate does. ok is false, and nothing
// was sent, when no connection is ready: Warm keeps them (while Warm is
// not called, none is), and there are none when the client reaches
// Asterisk over TLS or through a Config.HTTPClient of the caller's. Use
// Originate then. ctx bounds the request as it bounds Originate's.
func (c *Client) StartOriginate(ctx context.Context, r OriginateRequest) (wait func() (Channel, error), ok bool) {
	if ctx.Err() != nil {
		return nil, false // Originate sends nothing either
	}
	dc := c.direct.take(false)
	if dc == nil {
		return nil, false
	}
	const method, path = http.MethodPost, "/channels"
	req, err := c.newRequest(ctx, method, path, c.originateQuery(r), withVariables(r.Variables))
	if err != nil {
		c.direct.put(dc)
		return nil, false
	}
	if err := dc.send(req, directWriteTimeout); err != nil {
		return nil, false
	}
	return func() (Channel, error) {
		var ch Channel
		err := c.direct.answer(ctx, dc, req, method, path, &ch)
		return ch, err
	}, true
}

// send writes req on dc within timeout. A write that fails closes dc:
// whatever part of the request went out, Asterisk reads no whole request
// from a connection closed under it.
func (dc *directConn) send(req *http.Request, timeout time.Duration) error {
	dc.nc.SetWriteDeadline(time.Now().Add(timeout))
	err := req.Write(dc.nc)
	if err != nil {
		dc.nc.Close()
	}
	return err
}

// answer reads the answer to req, sent on dc, into out, and puts dc back
// among the ready connections when it can carry another request.
func (d *direct) answer(ctx context.Context, dc *directConn, req *http.Request, method, path string, out any) error {
	dc.nc.SetReadDeadline(time.Now().Add(directTimeout))
	stop := context.AfterFunc(ctx, func() { dc.nc.SetReadDeadline(time.Unix(1, 0)) })
	resp, err := http.ReadResponse(dc.br, req)
	if err != nil {
		stop()
		dc.nc.Close()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return fmt.Errorf("ari: %s %s: %w", method, path, err)
	}
	err = readAnswer(resp, method, path, out)
	_, rest := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if !stop() || rest != nil || resp.Close {
		// ctx ended meanwhile (the deadline may be spent), or the
		// connection cannot carry another request. The answer, when it
		// was read whole, stands.
		dc.nc.Close()
		if rest != nil && err == nil {
			err = fmt.Errorf("ari: %s %s: read answer: %w", method, path, rest)
		}
		return err
	}
	dc.nc.SetReadDeadline(time.Time{})
	dc.used = time.Now()
	d.put(dc)
	return err
}

// take returns a ready connection, the most recently used one or the
// oldest, or nil. A connection that is no longer fresh, or that Asterisk
// closed, is dropped.
func (d *direct) take(oldest bool) *directConn {
	if d.addr == "" {
		return nil
	}
	for {
		d.mu.Lock()
		n := len(d.idle)
		if n == 0 {
			d.mu.Unlock()
			return nil
		}
		var dc *directConn
		if oldest {
			dc = d.idle[0]
			d.idle = append(d.idle[:0], d.idle[1:]...)
		} else {
			dc = d.idle[n-1]
			d.idle = d.idle[:n-1]
		}
		d.mu.Unlock()
		if time.Since(dc.used) < directFresh && dc.br.Buffered() == 0 && open(dc.nc) {
			return dc
		}
		dc.nc.Close()
	}
}

// put makes dc ready for the next request.
func (d *direct) put(dc *directConn) {
	d.mu.Lock()
	if len(d.idle) < directMaxIdle {
		d.idle = append(d.idle, dc)
		dc = nil
	}
	d.mu.Unlock()
	if dc != nil {
		dc.nc.Close()
	}
}

// count returns how many connections are ready.
func (d *direct) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.idle)
}

// closeIdle closes the ready connections.
func (d *direct) closeIdle() {
	d.mu.Lock()
	idle := d.idle
	d.idle = nil
	d.mu.Unlock()
	for _, dc := range idle {
		dc.nc.Close()
	}
}

// warmDirect pings Asterisk over each ready connection, one at a time (so that
// the others stay ready), which proves it open and keeps it fresh, and
// opens connections up to directConns. It returns the first error.
func (c *Client) warmDirect(ctx context.Context) error {
	d := &c.direct
	if d.addr == "" {
		return nil
	}
	var first error
	note := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	for range d.count() {
		// The oldest: the answer puts it back as the newest, so each is
		// pinged once.
		dc := d.take(true)
		if dc == nil {
			break
		}
		note(c.directPing(ctx, dc))
	}
	for n := d.count(); n < directConns; n++ {
		var dialer net.Dialer
		nc, err := dialer.DialContext(ctx, "tcp", d.addr)
		if err != nil {
			note(fmt.Errorf("ari: connect %s: %w", d.addr, err))
			break
		}
		note(c.directPing(ctx, &directConn{nc: nc, br: bufio.NewReader(nc)}))
	}
	return first
}

// directPing sends GET /asterisk/ping on dc and reads the answer; dc is
// ready again if it can carry another request.
func (c *Client) directPing(ctx context.Context, dc *directConn) error {
	const method, path = http.MethodGet, "/asterisk/ping"
	req, err := c.newRequest(ctx, method, path, nil, nil)
	if err != nil {
		dc.nc.Close()
		return err
	}
	if err := dc.send(req, directTimeout); err != nil {
		return fmt.Errorf("ari: %s %s: %w", method, path, err)
	}
	return c.direct.answer(ctx, dc, req, method, path, nil)
}
