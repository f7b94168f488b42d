package e2e

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Loopback addresses of the peers. Asterisk identifies trunk-in by source
// IP, so every peer that sends calls in has an address of its own.
const (
	switchIP  = "127.0.0.1" // Asterisk: SIP and HTTP/ARI
	trunkIP   = "127.0.0.2" // the caller's carrier, sending calls to trunk-in
	carrierIP = "127.0.0.3" // the carrier, receiving the hidden legs
	benchIP   = "127.0.0.4" // the floor measurements' caller (e2e-bench)
)

// ariUser and ariPassword are privnum-ari.conf's, unchanged.
const (
	ariUser     = "privnum"
	ariPassword = "privnum-change-me"
)

// Asterisk is a running private Asterisk.
type Asterisk struct {
	prefix  string // the installation (PRIVNUM_ASTERISK)
	dir     string
	conf    string // its asterisk.conf
	SIPPort int
	HTTP    string // host:port of the HTTP server (ARI)
	cmd     *exec.Cmd
	done    chan struct{}
	out     *bytes.Buffer
}

// confRewrite is one address change in a drop-in: old must occur exactly
// once in file.
type confRewrite struct{ file, old, new string }

// writeConfig writes a private configuration into dir/etc: the project's
// drop-ins from asterisk-conf with only their addresses rewritten to
// loopback test addresses, and minimal main files that include them the way
// asterisk-conf/docker does, plus what the floor measurements need (a Dial()
// context, a minimal ARI application's context and their bench endpoint).
func writeConfig(t *testing.T, prefix, dir string, sipPort, httpPort, carrierPort int) string {
	t.Helper()
	_, self, _, _ := runtime.Caller(0)
	src := filepath.Join(filepath.Dir(self), "..", "asterisk-conf")
	etc := filepath.Join(dir, "etc")
	data := filepath.Join(dir, "data")
	for _, d := range []string{etc, data, "varlib", "spool", "run", "log", "cache"} {
		if !filepath.IsAbs(d) {
			d = filepath.Join(dir, d)
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// astdatadir: the installation's documentation (ARI needs it), REST API
	// descriptions and static HTTP files, and the core sounds.
	lib := filepath.Join(prefix, "var", "lib", "asterisk")
	for _, name := range []string{"documentation", "rest-api", "static-http"} {
		if err := os.Symlink(filepath.Join(lib, name), filepath.Join(data, name)); err != nil {
			t.Fatal(err)
		}
	}
	// The core sounds in GSM: the installation's own, or Debian's
	// asterisk-core-sounds-en-gsm.
	sounds := ""
	for _, d := range []string{filepath.Join(lib, "sounds"), "/usr/share/asterisk/sounds"} {
		if _, err := os.Stat(filepath.Join(d, "en", "ss-noservice.gsm")); err == nil {
			sounds = d
			break
		}
	}
	if sounds == "" {
		t.Fatalf("no core sounds (en/ss-noservice.gsm) in %s or /usr/share/asterisk/sounds: unpack asterisk-core-sounds-en-gsm-current.tar.gz into %s/en, or apt-get install asterisk-core-sounds-en-gsm",
			filepath.Join(lib, "sounds"), filepath.Join(lib, "sounds"))
	}
	if err := os.Symlink(sounds, filepath.Join(data, "sounds")); err != nil {
		t.Fatal(err)
	}

	rewrites := []confRewrite{
		{"privnum-http.conf", "bindport=8088", fmt.Sprintf("bindport=%d", httpPort)},
		{"privnum-http.conf", "bindaddr=127.0.0.1", "bindaddr=" + switchIP},
		{"privnum-pjsip-transport.conf", "bind=0.0.0.0:5060", fmt.Sprintf("bind=%s:%d", switchIP, sipPort)},
		{"privnum-pjsip.conf", "match=203.0.113.10", "match=" + trunkIP},
		{"privnum-pjsip.conf", "contact=sip:203.0.113.10:5060", fmt.Sprintf("contact=sip:%s:%d", carrierIP, carrierPort)},
	}
	files, err := filepath.Glob(filepath.Join(src, "privnum-*.conf"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no drop-ins in %s: %v", src, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		for _, r := range rewrites {
			if r.file != filepath.Base(f) {
				continue
			}
			if n := countLines(s, r.old); n != 1 {
				t.Fatalf("%s: want exactly one line %q to rewrite for the test, found %d (the drop-in changed: update e2e/asterisk_test.go)", r.file, r.old, n)
			}
			s = replaceLine(s, r.old, r.new)
		}
		if err := os.WriteFile(filepath.Join(etc, filepath.Base(f)), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	mains := map[string]string{
		"asterisk.conf": fmt.Sprintf(`[directories]
astcachedir => %[1]s/cache
astetcdir => %[1]s/etc
astmoddir => %[2]s/lib/asterisk/modules
astvarlibdir => %[1]s/varlib
astdbdir => %[1]s/varlib
astkeydir => %[1]s/varlib
astdatadir => %[1]s/data
astagidir => %[1]s/data/agi-bin
astspooldir => %[1]s/spool
astrundir => %[1]s/run
astlogdir => %[1]s/log
astsbindir => %[2]s/sbin

[options]
verbose = 3
debug = 0
`, dir, prefix),
		"logger.conf": `[general]
[logfiles]
messages.log => notice,warning,error,verbose
`,
		// autoload=no with privnum-modules.conf: the drop-in's module list
		// is what this test runs on, plus what only the floor measurements
		// need.
		"modules.conf": `[modules]
autoload=no
#include privnum-modules.conf
; only for the static Dial() floor measurement:
load = app_dial.so
`,
		"http.conf":  "[general]\n#include privnum-http.conf\n",
		"ari.conf":   "[general]\n#include privnum-ari.conf\n",
		"pjsip.conf": "#include privnum-pjsip-transport.conf\n#include privnum-pjsip.conf\n" + benchPJSIP,
		"extensions.conf": "[general]\nstatic=yes\nwriteprotect=yes\n\n#include privnum-extensions.conf\n" +
			benchExtensions,
	}
	for name, body := range mains {
		if err := os.WriteFile(filepath.Join(etc, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(etc, "asterisk.conf")
}

// benchPJSIP is the test-only endpoint for the floor measurements: the same
// trunk options as trunk-in (it inherits privnum-trunk), a different source
// address and context.
const benchPJSIP = `
; --- test only: the floor measurements ---
[e2e-bench](privnum-trunk)
context=e2e-bench

[e2e-bench]
type=identify
endpoint=e2e-bench
match=` + benchIP + `
`

// benchExtensions: 9<national number> is dialed with a static Dial() (the
// switch's own floor), 8<national number> goes to the minimal ARI
// application (the floor of any ARI design).
const benchExtensions = `
; --- test only: the floor measurements ---
[e2e-bench]
exten => _9X.,1,Dial(PJSIP/+86${EXTEN:1}@carrier,30)
 same => n,Hangup()
exten => _8X.,1,Stasis(` + minApp + `,+86${EXTEN:1})
 same => n,Hangup()
`

func countLines(s, line string) int {
	n := 0
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) == line {
			n++
		}
	}
	return n
}

func replaceLine(s, old, new string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) == old {
			lines[i] = new
		}
	}
	return strings.Join(lines, "\n")
}

func freeTCPPort(t *testing.T, ip string) int {
	t.Helper()
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func freeUDPPort(t *testing.T, ip string) int {
	t.Helper()
	pc, err := net.ListenPacket("udp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

// startAsterisk writes the configuration and runs Asterisk in the
// foreground until t ends; it returns once ARI answers and the carrier
// contact is up.
func startAsterisk(t *testing.T, prefix string, sipPort, carrierPort int) *Asterisk {
	t.Helper()
	dir := t.TempDir()
	a := &Asterisk{prefix: prefix, dir: dir, SIPPort: sipPort, done: make(chan struct{}), out: &bytes.Buffer{}}
	httpPort := freeTCPPort(t, switchIP)
	a.HTTP = net.JoinHostPort(switchIP, strconv.Itoa(httpPort))
	a.conf = writeConfig(t, prefix, dir, a.SIPPort, httpPort, carrierPort)

	out, err := os.Create(filepath.Join(dir, "asterisk.out"))
	if err != nil {
		t.Fatal(err)
	}
	a.cmd = exec.Command(filepath.Join(prefix, "sbin", "asterisk"), "-C", a.conf, "-f", "-n")
	a.cmd.Stdout, a.cmd.Stderr = out, out
	if err := a.cmd.Start(); err != nil {
		t.Fatalf("start asterisk: %v", err)
	}
	go func() { a.cmd.Wait(); out.Close(); close(a.done) }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("Asterisk log (tail):\n%s", a.LogTail(60))
		}
		a.Stop()
	})

	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-a.done:
			t.Fatalf("asterisk exited at startup:\n%s", a.LogTail(60))
		default:
		}
		if a.ariReady() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("asterisk: ARI not up after 30s:\n%s", a.LogTail(60))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if os.Getenv("PRIVNUM_E2E_SIP_LOGGER") != "" {
		// Asterisk's own SIP trace in its log (slows it down: not for the
		// measurements).
		a.CLI(t, "pjsip set logger on")
	}
	return a
}

func (a *Asterisk) ariReady() bool {
	req, _ := http.NewRequest("GET", "http://"+a.HTTP+"/ari/asterisk/info", nil)
	req.SetBasicAuth(ariUser, ariPassword)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	res.Body.Close()
	return res.StatusCode == 200
}

// CLI runs an Asterisk CLI command on the running instance.
func (a *Asterisk) CLI(t *testing.T, command string) string {
	t.Helper()
	out, err := exec.Command(filepath.Join(a.prefix, "sbin", "asterisk"), "-C", a.conf, "-rx", command).CombinedOutput()
	if err != nil {
		t.Logf("asterisk -rx %q: %v: %s", command, err, out)
	}
	return string(out)
}

// Stop ends Asterisk: core stop now, then SIGKILL if it lingers.
func (a *Asterisk) Stop() {
	select {
	case <-a.done:
		return
	default:
	}
	exec.Command(filepath.Join(a.prefix, "sbin", "asterisk"), "-C", a.conf, "-rx", "core stop now").Run()
	select {
	case <-a.done:
	case <-time.After(5 * time.Second):
		a.cmd.Process.Kill()
		<-a.done
	}
}

// LogTail returns the last n lines of Asterisk's messages log.
func (a *Asterisk) LogTail(n int) string {
	b, err := os.ReadFile(filepath.Join(a.dir, "log", "messages.log"))
	if err != nil {
		b, _ = os.ReadFile(filepath.Join(a.dir, "asterisk.out"))
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
