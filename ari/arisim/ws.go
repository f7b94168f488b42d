package arisim

import (
	"context"
	"net/http"
	"strings"

	"github.com/coder/websocket"
)

// handleEvents is GET /ari/events?app=NAME[,NAME...]: once the upgrade
// completes the applications are registered. A connection for an
// application that already has one replaces it: the old connection gets
// ApplicationReplaced and no further events, but (as in the
// application-replaced trace) it is not closed by the server.
func (s *Sim) handleEvents(w http.ResponseWriter, r *http.Request) {
	var apps []string
	for _, a := range strings.Split(r.URL.Query().Get("app"), ",") {
		if a = strings.TrimSpace(a); a != "" {
			apps = addUnique(apps, a)
		}
	}
	if len(apps) == 0 {
		writeJSON(w, http.StatusBadRequest, wireError{Message: "Missing param 'app'"})
		return
	}
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		writeJSON(w, http.StatusUpgradeRequired, wireError{Message: "Invalid request: expected a WebSocket upgrade"})
		return
	}
	// Register before the upgrade completes so that, as with Asterisk, the
	// application exists once the client sees the handshake succeed; events
	// queue until the connection is up.
	wc := &wsConn{apps: apps, maxQueue: s.opts.MaxQueuedEvents, signal: make(chan struct{}, 1)}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		writeJSON(w, http.StatusServiceUnavailable, wireError{Message: "Asterisk is shutting down"})
		return
	}
	s.wsWG.Add(1)
	defer s.wsWG.Done()
	for _, app := range apps {
		if old := s.conns[app]; old != nil {
			s.emit([]string{app}, &evApp{Type: "ApplicationReplaced", Timestamp: s.ts()})
			s.replaced[app]++
		}
		s.conns[app] = wc
	}
	s.allConns[wc] = struct{}{}
	s.notifyLocked()
	s.mu.Unlock()
	defer s.unregister(wc)

	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		s.log.Warn("arisim: websocket accept", "err", err)
		return
	}
	if !wc.attach(c) {
		c.CloseNow()
		return
	}
	s.log.Info("arisim: websocket connected", "apps", apps)
	defer s.log.Info("arisim: websocket closed", "apps", apps)

	ctx := c.CloseRead(context.Background())
	s.writeLoop(ctx, wc)
}

// unregister removes a connection that ended from the applications it still
// holds.
func (s *Sim) unregister(wc *wsConn) {
	s.mu.Lock()
	for _, app := range wc.apps {
		if s.conns[app] == wc {
			delete(s.conns, app)
		}
	}
	delete(s.allConns, wc)
	s.unlockNotify()
	wc.closeNow()
}

// writeLoop writes queued events until the connection ends; a write that
// takes longer than Options.WriteTimeout closes it (Asterisk's
// websocket_write_timeout).
func (s *Sim) writeLoop(ctx context.Context, wc *wsConn) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-wc.signal:
		}
		for _, msg := range wc.take() {
			wctx, cancel := context.WithTimeout(ctx, s.opts.WriteTimeout)
			err := wc.c.Write(wctx, websocket.MessageText, msg)
			cancel()
			if err != nil {
				return
			}
		}
	}
}
