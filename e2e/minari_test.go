package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
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
	callID string // caller ID of the hidden legs
}

// startMinARI runs the minimal ARI application in a process of its own,
// as privnum serve runs in its own: the floor and privnum then pay the same
// costs of being a separate program (waking on a frame, a connection of
// their own), and the only difference left is what the application does.
// The process is this test binary, re-executed (see TestMain).
func startMinARI(t *testing.T, httpAddr, callerID string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envMinARI+"="+httpAddr, envMinARICallerID+"="+callerID)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("minimal ARI app: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- line
		io.Copy(io.Discard, out)
	}()
	select {
	case line := <-ready:
		if strings.TrimSpace(line) != "ready" {
			t.Fatalf("minimal ARI app did not start: %q", line)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("minimal ARI app did not start in 10 s")
	}
}

// Environment of the minimal ARI application's process: the ARI HTTP
// address, and the caller ID of its hidden legs.
const (
	envMinARI         = "PRIVNUM_E2E_MINARI"
	envMinARICallerID = "PRIVNUM_E2E_MINARI_CALLERID"
)

// runMinARI is the minimal ARI application's process: it connects, prints
// "ready" and serves until SIGTERM.
func runMinARI() int {
	httpAddr := os.Getenv(envMinARI)
	m := &MinARI{base: "http://" + httpAddr + "/ari", callID: os.Getenv(envMinARICallerID),
		client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer cancel()
	u := "ws://" + httpAddr + "/ari/events?app=" + minApp + "&api_key=" + url.QueryEscape(ariUser+":"+ariPassword)
	conn, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "minimal ARI app:", err)
		return 1
	}
	conn.SetReadLimit(1 << 20)
	m.conn = conn
	fmt.Println("ready")
	m.read(ctx)
	conn.Close(websocket.StatusNormalClosure, "")
	return 0
}

type minEvent struct {
	Type    string   `json:"type"`
	Args    []string `json:"args"`
	Channel struct {
		ID string `json:"id"`
	} `json:"channel"`
}

func (m *MinARI) read(ctx context.Context) {
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
