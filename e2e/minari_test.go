package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// minApp is the minimal ARI application's Stasis name.
const minApp = "e2e-min"

// MinARI is the floor of any ARI design: on StasisStart it originates the
// hidden leg at once, to the endpoint named in the Stasis() argument, with
// no lookup of any kind. It only cleans up: when one leg ends it hangs up
// the other.
type MinARI struct {
	base   string
	client *http.Client
	conn   *websocket.Conn
	cancel context.CancelFunc
	wg     sync.WaitGroup
	callID string // caller ID of the hidden legs
}

func startMinARI(t *testing.T, httpAddr, callerID string) *MinARI {
	t.Helper()
	m := &MinARI{base: "http://" + httpAddr + "/ari", callID: callerID,
		client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	u := "ws://" + httpAddr + "/ari/events?app=" + minApp + "&api_key=" + url.QueryEscape(ariUser+":"+ariPassword)
	conn, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		cancel()
		t.Fatalf("minimal ARI app: %v", err)
	}
	conn.SetReadLimit(1 << 20)
	m.conn = conn
	m.wg.Add(1)
	go m.read(ctx)
	t.Cleanup(m.Close)
	return m
}

// Close disconnects the application.
func (m *MinARI) Close() {
	m.cancel()
	m.conn.Close(websocket.StatusNormalClosure, "")
	m.wg.Wait()
}

type minEvent struct {
	Type    string   `json:"type"`
	Args    []string `json:"args"`
	Channel struct {
		ID string `json:"id"`
	} `json:"channel"`
}

func (m *MinARI) read(ctx context.Context) {
	defer m.wg.Done()
	for {
		_, b, err := m.conn.Read(ctx)
		if err != nil {
			return
		}
		var ev minEvent
		if json.Unmarshal(b, &ev) != nil {
			continue
		}
		id := ev.Channel.ID
		switch ev.Type {
		case "StasisStart":
			if len(ev.Args) > 0 && ev.Args[0] == "out" {
				// The hidden leg answered: not part of the measurement.
				go m.do("DELETE", "/channels/"+id, nil)
				go m.do("DELETE", "/channels/"+strings.TrimSuffix(id, "-b"), nil)
				continue
			}
			if len(ev.Args) == 0 {
				continue
			}
			q := url.Values{}
			q.Set("endpoint", "PJSIP/"+ev.Args[0]+"@carrier")
			q.Set("app", minApp)
			q.Set("appArgs", "out")
			q.Set("callerId", m.callID)
			q.Set("timeout", "30")
			q.Set("channelId", id+"-b")
			q.Set("originator", id)
			go m.do("POST", "/channels", q)
		case "ChannelDestroyed", "StasisEnd":
			if in, ok := strings.CutSuffix(id, "-b"); ok {
				go m.do("DELETE", "/channels/"+in, url.Values{"reason": {"busy"}})
			} else {
				go m.do("DELETE", "/channels/"+id+"-b", nil)
			}
		}
	}
}

func (m *MinARI) do(method, path string, q url.Values) {
	u := m.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, _ := http.NewRequest(method, u, nil)
	req.SetBasicAuth(ariUser, ariPassword)
	res, err := m.client.Do(req)
	if err != nil {
		return
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
}
