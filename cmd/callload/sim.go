package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/privnum/privnum/ari/arisim"
)

// simEnv, set to "user:password", makes the binary run the ARI simulator
// instead of the benchmark: it prints the simulator's URL on stdout and
// serves until stdin closes.
const simEnv = "CALLLOAD_ARISIM"

// simChild is the simulator process.
func simChild() int {
	user, password, _ := strings.Cut(os.Getenv(simEnv), ":")
	sim := arisim.New(arisim.Options{
		Username: user, Password: password, Control: true,
		// Destroyed channels are not inspected: keep few.
		HistoryLimit: 1000,
	})
	if err := sim.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "callload: arisim:", err)
		return 1
	}
	fmt.Println(sim.URL())
	_, _ = io.Copy(io.Discard, os.Stdin) // until the parent closes it or dies
	sim.Close()
	return 0
}

// simProc is the simulator child process and a client of its control
// endpoints.
type simProc struct {
	URL            string
	Pid            int
	user, password string
	cmd            *exec.Cmd
	stdin          io.WriteCloser
	exited         chan struct{}
	transport      *http.Transport
	http           *http.Client
}

// startSim starts the simulator child; conns is how many control requests
// may run at once.
func startSim(ctx context.Context, user, password string, conns int) (*simProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("simulator: find own executable: %w", err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), simEnv+"="+user+":"+password)
	cmd.Stderr = os.Stderr
	setPdeathsig(cmd)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("simulator: start %s: %w", exe, err)
	}
	s := &simProc{Pid: cmd.Process.Pid, user: user, password: password, cmd: cmd, stdin: stdin, exited: make(chan struct{})}
	first := make(chan string, 1)
	go func() {
		br := bufio.NewReader(stdout)
		line, _ := br.ReadString('\n')
		first <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, br)
		_ = cmd.Wait()
		close(s.exited)
	}()
	select {
	case line := <-first:
		if !strings.HasPrefix(line, "http://") {
			s.stop()
			return nil, fmt.Errorf("simulator did not start (said %q)", line)
		}
		s.URL = line
	case <-time.After(60 * time.Second):
		s.stop()
		return nil, errors.New("simulator did not start within 60s")
	case <-ctx.Done():
		s.stop()
		return nil, ctx.Err()
	}
	s.transport = &http.Transport{MaxIdleConns: conns + 8, MaxIdleConnsPerHost: conns + 8, IdleConnTimeout: time.Minute}
	s.http = &http.Client{Transport: s.transport, Timeout: 30 * time.Second}
	return s, nil
}

// stop closes the child's stdin, which ends it, and kills it if it lingers.
func (s *simProc) stop() {
	if s.transport != nil {
		s.transport.CloseIdleConnections()
	}
	_ = s.stdin.Close()
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// do sends a control request; body, if not nil, goes as JSON; out, if not
// nil, receives a 2xx JSON answer. Other statuses are errors.
func (s *simProc) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, rd)
	if err != nil {
		return err
	}
	req.SetBasicAuth(s.user, s.password)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(msg))
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// stats returns the simulator's counters.
func (s *simProc) stats(ctx context.Context) (arisim.Stats, error) {
	var st arisim.Stats
	err := s.do(ctx, http.MethodGet, "/_sim/stats", nil, &st)
	return st, err
}

// simChannel is the part of a /_sim/channels snapshot callload reads.
type simChannel struct {
	ID        string `json:"id"`
	Inbound   bool   `json:"inbound"`
	FarNumber string `json:"far_number"`
	Caller    struct {
		Name   string `json:"name"`
		Number string `json:"number"`
	} `json:"caller"`
	BridgeID string    `json:"bridge_id"`
	Answered bool      `json:"answered"`
	Created  time.Time `json:"created"`
}

// channels returns the live channels.
func (s *simProc) channels(ctx context.Context) ([]simChannel, error) {
	var chans []simChannel
	err := s.do(ctx, http.MethodGet, "/_sim/channels", nil, &chans)
	return chans, err
}

// call places an inbound call from caller (with a caller name) to exten.
func (s *simProc) call(ctx context.Context, caller, name, exten string) error {
	return s.do(ctx, http.MethodPost, "/_sim/calls", map[string]string{"from": caller, "caller_name": name, "exten": exten}, nil)
}

// hangup makes a channel's far party hang up with cause 16.
func (s *simProc) hangup(ctx context.Context, id string) error {
	return s.do(ctx, http.MethodPost, "/_sim/channels/"+url.PathEscape(id)+"/hangup", map[string]int{"cause": 16}, nil)
}

// answerAllAfter makes every callee ring, answer after d and never hang up.
func (s *simProc) answerAllAfter(ctx context.Context, d time.Duration) error {
	return s.do(ctx, http.MethodPost, "/_sim/endpoints", map[string]any{
		"default": true, "outcome": "answer", "after_ms": d.Milliseconds(), "hangup_after_ms": 0,
	}, nil)
}
