package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/privnum/privnum/internal/redistest"
)

// EnvAsterisk names the Asterisk 22 installation the test runs on: its
// prefix, holding sbin/asterisk (e.g. /opt/asterisk).
const EnvAsterisk = "PRIVNUM_ASTERISK"

// privnumBin is the privnum binary TestMain built.
var privnumBin string

func TestMain(m *testing.M) {
	if os.Getenv(envMinARI) != "" {
		os.Exit(runMinARI())
	}
	code := func() int {
		if os.Getenv(EnvAsterisk) == "" {
			return m.Run() // the tests skip
		}
		dir, err := os.MkdirTemp("", "privnum-e2e-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		privnumBin = filepath.Join(dir, "privnum")
		_, self, _, _ := runtime.Caller(0)
		build := exec.Command("go", "build", "-o", privnumBin, "./cmd/privnum")
		build.Dir = filepath.Join(filepath.Dir(self), "..")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: go build ./cmd/privnum: %v\n%s", err, out)
			return 1
		}
		// sipgo logs through slog: warnings and errors only.
		sip.SetDefaultLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
		return m.Run()
	}()
	os.Exit(code)
}

// asteriskPrefix returns the installation to run on, or skips t.
func asteriskPrefix(t *testing.T) string {
	t.Helper()
	prefix := os.Getenv(EnvAsterisk)
	if prefix == "" {
		t.Skipf("%s is not set: the end-to-end test needs a real Asterisk 22 (set %s to its prefix, the directory holding sbin/asterisk, e.g. %s=/opt/asterisk)", EnvAsterisk, EnvAsterisk, EnvAsterisk)
	}
	bin := filepath.Join(prefix, "sbin", "asterisk")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s=%s: no %s: %v", EnvAsterisk, prefix, bin, err)
	}
	out, err := exec.Command(bin, "-V").CombinedOutput()
	if err != nil {
		t.Fatalf("%s -V: %v: %s", bin, err, out)
	}
	v := strings.TrimSpace(string(out))
	if !strings.HasPrefix(v, "Asterisk 22.") {
		t.Fatalf("%s is %q; this test is written for Asterisk 22", bin, v)
	}
	t.Logf("running on %s (%s)", v, prefix)
	return prefix
}

// Env is one switch with privnum beside it and the SIP peers.
type Env struct {
	t         *testing.T // the test the processes belong to
	Ast       *Asterisk
	Trunk     *UA // sends calls in on trunk-in (callers A, B, strangers)
	Carrier   *UA // receives the hidden legs
	Bench     *UA // sends the floor-measurement calls (e2e-bench)
	Redis     string
	Serve     *Proc
	Metrics   string // privnum serve's /metrics and /healthz address
	serveArgs []string
	served    []*Proc // every privnum serve started, in order
}

// ServeLogs is the output of every privnum serve run so far.
func (e *Env) ServeLogs() string {
	var b strings.Builder
	for _, p := range e.served {
		b.WriteString(p.Output())
	}
	return b.String()
}

func startEnv(t *testing.T) *Env {
	t.Helper()
	prefix := asteriskPrefix(t)
	e := &Env{t: t}
	sipPort := freeUDPPort(t, switchIP)
	switchAddr := net.JoinHostPort(switchIP, strconv.Itoa(sipPort))
	e.Trunk = newUA(t, "trunk", trunkIP, switchAddr)
	e.Carrier = newUA(t, "carrier", carrierIP, switchAddr)
	e.Bench = newUA(t, "bench", benchIP, switchAddr)
	e.Redis = redistest.StartSingle(t).URL
	e.Ast = startAsterisk(t, prefix, sipPort, e.Carrier.port)
	e.Metrics = net.JoinHostPort("127.0.0.1", strconv.Itoa(freeTCPPort(t, "127.0.0.1")))
	e.serveArgs = []string{"serve", "--ari-url", "http://" + e.Ast.HTTP, "--ari-user", ariUser, "--ari-password", ariPassword,
		"--endpoint-template", "PJSIP/{number}@carrier", "--metrics-listen", e.Metrics, "--lease-ttl", "0",
		"--instance", "e2e", "--drain-timeout", "2s",
		"--message-to-template", "pjsip:carrier/sip:{number}@" + e.Carrier.Addr(), "--message-limit", "5"}
	e.StartServe(t)
	return e
}

// Privnum runs a privnum CLI command against the test Redis and returns
// its standard output.
func (e *Env) Privnum(t *testing.T, args ...string) string {
	t.Helper()
	full := append([]string{"--redis", e.Redis, "--region", "CN"}, args...)
	cmd := exec.Command(privnumBin, full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("privnum %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// PrivnumJSON runs a privnum command with --json and decodes its output.
func (e *Env) PrivnumJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	out := e.Privnum(t, append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("privnum %s --json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// Bind adds x to the pool and binds a and b on it.
func (e *Env) Bind(t *testing.T, x, a, b string, extra ...string) {
	t.Helper()
	e.Privnum(t, "pool", "add", x)
	e.Privnum(t, append([]string{"bind", "create", "--a", a, "--b", b, "--x", x}, extra...)...)
}

// StartServe starts privnum serve and waits until it is connected to ARI.
func (e *Env) StartServe(t *testing.T) {
	t.Helper()
	e.Serve = startProc(e.t, privnumBin, append([]string{"--redis", e.Redis, "--region", "CN"}, e.serveArgs...)...)
	e.served = append(e.served, e.Serve)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := http.Get("http://" + e.Metrics + "/healthz"); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		select {
		case <-e.Serve.done:
			t.Fatalf("privnum serve exited:\n%s", e.Serve.Output())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("privnum serve not connected to ARI after 15s:\n%s", e.Serve.Output())
}

// Proc is a child process whose output is kept.
type Proc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

func (p *Proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

// Output is what the process wrote so far.
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func startProc(t *testing.T, bin string, args ...string) *Proc {
	t.Helper()
	p := &Proc{cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("%s %s output:\n%s", filepath.Base(bin), args[len(args)-1], tail(p.Output(), 80))
		}
	})
	return p
}

// Kill ends the process with SIGKILL, as a crash would.
func (p *Proc) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
