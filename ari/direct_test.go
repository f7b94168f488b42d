package ari

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// stubAsterisk is an HTTP/1.1 server on a raw listener whose connections
// the test controls: it answers pings, answers originates as told, and
// can close every connection it holds.
type stubAsterisk struct {
	ln net.Listener
	mu sync.Mutex
	// originate answers one originate request; nil leaves it unanswered.
	originate func(r *http.Request) *http.Response
	conns     []net.Conn
	requests  []string
}

func newStubAsterisk(t *testing.T) *stubAsterisk {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &stubAsterisk{ln: ln}
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, nc)
			s.mu.Unlock()
			go s.serve(nc)
		}
	}()
	t.Cleanup(func() { ln.Close(); s.closeConns() })
	return s
}

func (s *stubAsterisk) serve(nc net.Conn) {
	br := bufio.NewReader(nc)
	for {
		r, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		s.mu.Lock()
		s.requests = append(s.requests, r.Method+" "+r.URL.Path)
		answer := s.originate
		s.mu.Unlock()
		var resp *http.Response
		switch {
		case r.URL.Path == "/ari/asterisk/ping":
			resp = jsonResponse(200, `{"ping":"pong"}`)
		case r.Method == "POST" && r.URL.Path == "/ari/channels" && answer != nil:
			resp = answer(r)
		}
		if resp == nil {
			continue // never answered
		}
		resp.Write(nc)
	}
}

func (s *stubAsterisk) closeConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, nc := range s.conns {
		nc.Close()
	}
	s.conns = nil
}

func (s *stubAsterisk) seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

func jsonResponse(status int, body string) *http.Response {
	return &http.Response{StatusCode: status, Status: fmt.Sprintf("%d %s", status, http.StatusText(status)),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{"Content-Type": {"application/json"}},
		ContentLength: int64(len(body)), Body: io.NopCloser(strings.NewReader(body))}
}

func (s *stubAsterisk) client(t *testing.T) *Client {
	c, err := New(Config{URL: "http://" + s.ln.Addr().String(), Application: "privnum"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestStartOriginate(t *testing.T) {
	ctx := context.Background()
	req := OriginateRequest{Endpoint: "PJSIP/+8613900000002@carrier", ChannelID: "privnum-1-b", CallerID: "+8617000000000", Timeout: 30 * time.Second}

	t.Run("needs_Warm", func(t *testing.T) {
		s := newStubAsterisk(t)
		c := s.client(t)
		if _, ok := c.StartOriginate(ctx, req); ok {
			t.Fatal("StartOriginate sent without a connection made ready by Warm")
		}
		if got := s.seen(); len(got) != 0 {
			t.Fatalf("requests %v, want none", got)
		}
	})

	t.Run("answer_and_reuse", func(t *testing.T) {
		s := newStubAsterisk(t)
		s.originate = func(r *http.Request) *http.Response {
			if r.URL.Query().Get("channelId") != "privnum-1-b" || r.Header.Get("Authorization") == "" {
				return jsonResponse(400, `{"message":"bad request"}`)
			}
			return jsonResponse(200, `{"id":"privnum-1-b","state":"Down"}`)
		}
		c := s.client(t)
		if err := c.Warm(ctx, 0); err != nil {
			t.Fatal(err)
		}
		if n := c.direct.count(); n != directConns {
			t.Fatalf("%d connections ready after Warm, want %d", n, directConns)
		}
		for range 3 {
			wait, ok := c.StartOriginate(ctx, req)
			if !ok {
				t.Fatal("StartOriginate did not send after Warm")
			}
			ch, err := wait()
			if err != nil || ch.ID != "privnum-1-b" || ch.State != "Down" {
				t.Fatalf("answer %+v, %v", ch, err)
			}
		}
		if n := c.direct.count(); n != directConns {
			t.Fatalf("%d connections ready after three originates, want %d (reused)", n, directConns)
		}
		s.mu.Lock()
		conns := len(s.conns)
		s.mu.Unlock()
		if conns != directConns {
			t.Fatalf("%d TCP connections, want %d", conns, directConns)
		}
	})

	t.Run("error_answer", func(t *testing.T) {
		s := newStubAsterisk(t)
		s.originate = func(*http.Request) *http.Response {
			return jsonResponse(500, `{"error":"Allocation failed"}`)
		}
		c := s.client(t)
		c.Warm(ctx, 0)
		wait, ok := c.StartOriginate(ctx, req)
		if !ok {
			t.Fatal("not sent")
		}
		_, err := wait()
		var ae *Error
		if !errors.As(err, &ae) || ae.Status != 500 || ae.Message != "Allocation failed" || ae.Path != "/channels" {
			t.Fatalf("error %v, want *Error 500 Allocation failed", err)
		}
		if n := c.direct.count(); n != directConns {
			t.Fatalf("%d connections ready after an error answer, want %d", n, directConns)
		}
	})

	t.Run("cancel_while_waiting", func(t *testing.T) {
		s := newStubAsterisk(t) // never answers an originate
		c := s.client(t)
		c.Warm(ctx, 0)
		cctx, cancel := context.WithCancel(ctx)
		wait, ok := c.StartOriginate(cctx, req)
		if !ok {
			t.Fatal("not sent")
		}
		time.AfterFunc(20*time.Millisecond, cancel)
		start := time.Now()
		_, err := wait()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("the wait took %s after the cancel", d)
		}
		if n := c.direct.count(); n != directConns-1 {
			t.Fatalf("%d connections ready, want %d (the cancelled one dropped)", n, directConns-1)
		}
	})

	t.Run("closed_by_Asterisk", func(t *testing.T) {
		s := newStubAsterisk(t)
		s.originate = func(*http.Request) *http.Response { return jsonResponse(200, `{"id":"x"}`) }
		c := s.client(t)
		c.Warm(ctx, 0)
		s.closeConns() // as a restarting Asterisk does
		time.Sleep(50 * time.Millisecond)
		if _, ok := c.StartOriginate(ctx, req); ok {
			t.Fatal("StartOriginate sent on a connection Asterisk closed")
		}
		if n := c.direct.count(); n != 0 {
			t.Fatalf("%d connections ready, want the closed ones dropped", n)
		}
		// The next Warm makes new ones.
		if err := c.Warm(ctx, 0); err != nil {
			t.Fatal(err)
		}
		wait, ok := c.StartOriginate(ctx, req)
		if !ok {
			t.Fatal("not sent after Warm reconnected")
		}
		if _, err := wait(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("Warm_refreshes_each", func(t *testing.T) {
		s := newStubAsterisk(t)
		c := s.client(t)
		c.Warm(ctx, 0)
		before := time.Now()
		time.Sleep(5 * time.Millisecond)
		if err := c.Warm(ctx, 0); err != nil {
			t.Fatal(err)
		}
		c.direct.mu.Lock()
		for i, dc := range c.direct.idle {
			if !dc.used.After(before) {
				t.Errorf("connection %d not pinged by the second Warm", i)
			}
		}
		c.direct.mu.Unlock()
		// Two calls at once each get one.
		a, b := c.direct.take(false), c.direct.take(false)
		if a == nil || b == nil {
			t.Fatalf("two takes after Warm: %v, %v", a, b)
		}
		c.direct.put(a)
		c.direct.put(b)
		if got := s.seen(); len(got) != 2*directConns {
			t.Errorf("requests %v, want %d pings", got, 2*directConns)
		}
	})

	t.Run("cancelled_before", func(t *testing.T) {
		s := newStubAsterisk(t)
		s.originate = func(*http.Request) *http.Response { return jsonResponse(200, `{"id":"x"}`) }
		c := s.client(t)
		c.Warm(ctx, 0)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, ok := c.StartOriginate(cctx, req); ok {
			t.Fatal("StartOriginate sent with a cancelled context")
		}
		for _, r := range s.seen() {
			if strings.HasPrefix(r, "POST") {
				t.Fatalf("Asterisk got %s", r)
			}
		}
		if n := c.direct.count(); n != directConns {
			t.Fatalf("%d connections ready, want %d", n, directConns)
		}
	})

	t.Run("stale", func(t *testing.T) {
		s := newStubAsterisk(t)
		c := s.client(t)
		c.Warm(ctx, 0)
		c.direct.mu.Lock()
		for _, dc := range c.direct.idle {
			dc.used = time.Now().Add(-directFresh)
		}
		c.direct.mu.Unlock()
		if _, ok := c.StartOriginate(ctx, req); ok {
			t.Fatal("StartOriginate sent on a connection unused for directFresh: Asterisk may close it under the request")
		}
	})

	t.Run("off_for_a_callers_HTTP_client_or_TLS", func(t *testing.T) {
		s := newStubAsterisk(t)
		for _, cfg := range []Config{
			{URL: "http://" + s.ln.Addr().String(), Application: "privnum", HTTPClient: &http.Client{}},
			{URL: "https://" + s.ln.Addr().String(), Application: "privnum"},
		} {
			c, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			c.Warm(ctx, 0)
			if _, ok := c.StartOriginate(ctx, req); ok {
				t.Fatalf("%s: StartOriginate sent", cfg.URL)
			}
		}
	})
}
