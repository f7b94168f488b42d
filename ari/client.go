package ari

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// Config configures a Client.
type Config struct {
	// URL is Asterisk's HTTP server, e.g. "http://127.0.0.1:8088". The client
	// adds the "/ari" prefix.
	URL string
	// Username and Password are the ari.conf user, sent as Basic auth.
	Username string
	Password string
	// Application is the Stasis application name: the event stream
	// subscribes to it and Originate and CreateChannel default to it.
	Application string
	// HTTPClient makes the REST calls and the WebSocket handshake. Nil means
	// a client with a 10 s timeout and a transport of its own, sized for
	// call control (see newHTTPClient).
	HTTPClient *http.Client
	// Logger receives connection events of Run. Nil discards them.
	Logger *slog.Logger

	// ReconnectMin and ReconnectMax bound the exponential backoff between
	// connection attempts of Run (default 100 ms and 5 s).
	ReconnectMin time.Duration
	ReconnectMax time.Duration
	// PingInterval is how often Run pings Asterisk to detect a dead
	// connection (default 15 s).
	PingInterval time.Duration
	// EventQueueSize is how many received events may wait for the handler
	// before Run stops reading (default 4096).
	EventQueueSize int
}

// Client talks to one Asterisk over ARI. It is safe for concurrent use.
type Client struct {
	cfg       Config
	base      string // http(s)://host[:port][/prefix]/ari
	eventsURL string
	auth      string // the Authorization header, made once
	connected atomic.Bool
	direct    direct // connections ready for StartOriginate
}

// New validates cfg, fills in defaults and returns a Client. It does not
// contact Asterisk.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("ari: parse URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("ari: URL %q: want http(s)://host[:port]", cfg.URL)
	}
	if cfg.Application == "" {
		return nil, errors.New("ari: Application is required")
	}
	directAddr := ""
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = newHTTPClient()
		if u.Scheme == "http" && canPeek {
			port := u.Port()
			if port == "" {
				port = "80"
			}
			directAddr = net.JoinHostPort(u.Hostname(), port)
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ReconnectMin <= 0 {
		cfg.ReconnectMin = 100 * time.Millisecond
	}
	if cfg.ReconnectMax <= 0 {
		cfg.ReconnectMax = 5 * time.Second
	}
	if cfg.ReconnectMax < cfg.ReconnectMin {
		return nil, fmt.Errorf("ari: ReconnectMax %v is less than ReconnectMin %v", cfg.ReconnectMax, cfg.ReconnectMin)
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = 15 * time.Second
	}
	if cfg.EventQueueSize <= 0 {
		cfg.EventQueueSize = 4096
	}

	base := *u
	base.Path = strings.TrimSuffix(u.Path, "/") + "/ari"
	base.RawQuery, base.Fragment = "", ""
	events := base
	events.Scheme = "ws"
	if u.Scheme == "https" {
		events.Scheme = "wss"
	}
	events.Path += "/events"
	events.RawQuery = url.Values{"app": {cfg.Application}, "subscribeAll": {"false"}}.Encode()

	return &Client{
		cfg:       cfg,
		base:      base.String(),
		eventsURL: events.String(),
		auth:      "Basic " + base64.StdEncoding.EncodeToString([]byte(cfg.Username+":"+cfg.Password)),
		direct:    direct{addr: directAddr},
	}, nil
}

// Connection limits of the default HTTP client. Every request goes to the
// one Asterisk, and call control has many in flight at once (each call
// makes about seven): http.DefaultTransport keeps only 2 idle connections
// per host, so under load nearly every request dials a new TCP connection
// and closes it afterwards (CPU on both ends, TIME_WAIT sockets, latency).
const (
	// maxIdleConns idle keep-alive connections are kept.
	maxIdleConns = 64
	// maxConns caps the connections, below Asterisk's http.conf
	// sessionlimit (100 by default, 500 in asterisk-conf), which refuses
	// the sessions over it; further requests wait for a free connection.
	maxConns = 96
	// idleTimeout is under Asterisk's session_keep_alive (15 s), so that the
	// client drops an idle connection before Asterisk closes it under a
	// POST, which could not be retried.
	idleTimeout = 10 * time.Second
)

// newHTTPClient returns the default HTTP client.
func newHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = maxIdleConns
	tr.MaxIdleConnsPerHost = maxIdleConns
	tr.MaxConnsPerHost = maxConns
	tr.IdleConnTimeout = idleTimeout
	return &http.Client{Timeout: 10 * time.Second, Transport: tr}
}

// CloseIdleConnections closes the REST connections that are not in use
// (the default client keeps up to 64 for 10 s). The events WebSocket is
// not affected.
func (c *Client) CloseIdleConnections() {
	c.cfg.HTTPClient.CloseIdleConnections()
	c.direct.closeIdle()
}

// do sends one REST request. path is relative to /ari with its ids already
// escaped; query may be nil; body, if not nil, is sent as JSON; out, if not
// nil, receives the decoded 2xx response. Non-2xx responses become *Error.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	req, err := c.newRequest(ctx, method, path, query, body)
	if err != nil {
		return err
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		// *url.Error repeats the URL, whose query may hold phone numbers
		// (endpoint, callerId): keep only the cause.
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("ari: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	return readAnswer(resp, method, path, out)
}

// newRequest makes the REST request do sends (see do for the arguments).
func (c *Client) newRequest(ctx context.Context, method, path string, query url.Values, body any) (*http.Request, error) {
	if strings.HasSuffix(path, "/") || strings.Contains(path, "//") {
		return nil, fmt.Errorf("ari: %s %s: empty id", method, path)
	}
	target := c.base + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("ari: %s %s: encode body: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return nil, fmt.Errorf("ari: %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header["Authorization"] = []string{c.auth}
	return req, nil
}

// readAnswer reads the answer to a REST request: a non-2xx status becomes
// *Error, a 2xx body is decoded into out, if not nil, or read and dropped
// (so that the connection can be reused).
func readAnswer(resp *http.Response, method, path string, out any) error {
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return newError(resp, method, path)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body) // let the connection be reused
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("ari: %s %s: decode response: %w", method, path, err)
	}
	return nil
}

// setNonEmpty sets key in q to value unless value is empty.
func setNonEmpty(q url.Values, key, value string) {
	if value != "" {
		q.Set(key, value)
	}
}

// variablesBody is the JSON body carrying channel variables.
type variablesBody struct {
	Variables map[string]string `json:"variables"`
}

// withVariables returns the request body for vars, or nil when there are none.
func withVariables(vars map[string]string) any {
	if len(vars) == 0 {
		return nil
	}
	return variablesBody{vars}
}
