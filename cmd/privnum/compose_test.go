package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/privnum/privnum/ari/arisim"
	"github.com/privnum/privnum/internal/redistest"
	"github.com/privnum/privnum/internal/syncbuf"
)

// compose is the part of docker-compose.yml the consistency test reads.
type compose struct {
	Services map[string]composeService `yaml:"services"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	NetworkMode string            `yaml:"network_mode"`
	Volumes     []string          `yaml:"volumes"`
	Healthcheck *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
}

// readCompose parses the compose file and the .env example beside it.
func readCompose(t *testing.T) (c compose, raw []byte, example map[string]string) {
	t.Helper()
	raw, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	f, err := os.Open("../../.env.example")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	example = map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf(".env.example: %q is not NAME=VALUE", line)
		}
		example[k] = v
	}
	return c, raw, example
}

// interpolation matches compose's ${VAR}, ${VAR:-default}, ${VAR-default},
// ${VAR:?error} and ${VAR?error}.
var interpolation = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}`)

// interpolate resolves s as compose does with env as the .env file.
func interpolate(s string, env map[string]string) string {
	return interpolation.ReplaceAllStringFunc(s, func(m string) string {
		g := interpolation.FindStringSubmatch(m)
		v, set := env[g[1]]
		if (!set || (v == "" && strings.HasPrefix(g[2], ":"))) && strings.HasSuffix(g[2], "-") {
			return g[3]
		}
		return v
	})
}

// scalars returns every scalar value in the YAML document (not keys,
// not comments).
func scalars(t *testing.T, raw []byte) []string {
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var out []string
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		switch n.Kind {
		case yaml.ScalarNode:
			out = append(out, n.Value)
		case yaml.MappingNode:
			for i := 1; i < len(n.Content); i += 2 {
				walk(n.Content[i])
			}
		default:
			for _, c := range n.Content {
				walk(c)
			}
		}
	}
	walk(&doc)
	return out
}

// envReader is a process environment that records what is read.
type envReader struct {
	vals map[string]string
	mu   sync.Mutex
	read map[string]bool
}

func (e *envReader) getenv(name string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.read != nil {
		e.read[name] = true
	}
	return e.vals[name]
}

// arm starts recording reads.
func (e *envReader) arm() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.read = map[string]bool{}
}

func (e *envReader) wasRead(name string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.read[name]
}

// flagEnv returns the environment variables cmd's flags (its own and those
// it inherits) are bound to.
func flagEnv(cmd *cobra.Command) map[string]string {
	out := map[string]string{}
	add := func(f *pflag.Flag) {
		for _, env := range f.Annotations[envAnnotation] {
			out[env] = f.Name
		}
	}
	cmd.Flags().VisitAll(add)
	cmd.InheritedFlags().VisitAll(add)
	return out
}

// port returns the port of a host:port or URL.
func port(t *testing.T, s string) string {
	t.Helper()
	if u, err := url.Parse(s); err == nil && u.Host != "" {
		s = u.Host
	}
	_, p, err := net.SplitHostPort(s)
	if err != nil {
		t.Fatalf("%q: no port: %v", s, err)
	}
	return p
}

// TestComposeRunsWhatItSays reads docker-compose.yml and runs every privnum
// service in it in-process, with the service's environment (the .env
// example filled in) as the whole process environment: against a test
// Redis and the ARI simulator instead of the compose network, and on free
// ports. Every PRIVNUM_* variable a service sets must be one its command
// reads: bound to one of the command's flags, or read while the command
// starts. Every ${VAR} must be in .env.example. Each health check must
// answer on the port the service listens on, and that port must be the one
// the service publishes.
func TestComposeRunsWhatItSays(t *testing.T) {
	c, raw, example := readCompose(t)
	for _, s := range scalars(t, raw) {
		for _, m := range interpolation.FindAllStringSubmatch(s, -1) {
			if _, ok := example[m[1]]; !ok {
				t.Errorf("docker-compose.yml uses ${%s}, which .env.example does not set", m[1])
			}
		}
	}
	for k := range example {
		if !strings.Contains(string(raw), "${"+k) {
			t.Errorf(".env.example sets %s, which docker-compose.yml does not use", k)
		}
	}
	redisURL := redistest.Start(t).URL
	var ran []string
	for _, name := range sortedNames(c.Services) {
		svc := c.Services[name]
		if !strings.HasPrefix(svc.Image, "privnum:") {
			continue
		}
		ran = append(ran, name)
		t.Run(name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range svc.Environment {
				if !strings.HasPrefix(k, "PRIVNUM_") {
					t.Errorf("environment sets %s: privnum reads only PRIVNUM_* variables", k)
				}
				env[k] = interpolate(v, example)
			}
			runComposeService(t, name, svc, env, redisURL)
		})
	}
	for _, want := range []string{"serve", "api"} {
		found := false
		for _, name := range ran {
			found = found || slices.Contains(c.Services[name].Command, want)
		}
		if !found {
			t.Errorf("no privnum service runs %q", want)
		}
	}
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// runComposeService runs one privnum service of the compose file until it
// is up, then checks what it read and its health check.
func runComposeService(t *testing.T, name string, svc composeService, env map[string]string, redisURL string) {
	// Where the service listens inside its container; the test listens on a
	// free loopback port instead.
	listenVar := map[string]string{"serve": "PRIVNUM_METRICS_LISTEN", "api": "PRIVNUM_API_LISTEN"}[svc.Command[0]]
	if listenVar == "" {
		t.Fatalf("command %v: the test knows how to run serve and api", svc.Command)
	}
	listen, ok := env[listenVar]
	if !ok {
		t.Fatalf("%s is not set: the service would listen on loopback inside its container, unreachable", listenVar)
	}
	published := false
	for _, p := range svc.Ports {
		published = published || strings.HasSuffix(strings.TrimSuffix(p, "/tcp"), ":"+port(t, listen))
	}
	if !published {
		t.Errorf("ports %v do not publish %s's port %s", svc.Ports, listenVar, port(t, listen))
	}
	addr := freeAddr(t)

	sim := arisim.New(arisim.Options{Username: env["PRIVNUM_ARI_USER"], Password: env["PRIVNUM_ARI_PASSWORD"], TimeScale: 0.05})
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()

	vals := map[string]string{}
	for k, v := range env {
		vals[k] = v
	}
	vals["PRIVNUM_REDIS_URL"] = redisURL
	vals[listenVar] = addr
	if _, ok := env["PRIVNUM_ARI_URL"]; ok {
		vals["PRIVNUM_ARI_URL"] = sim.URL()
	}
	e := &envReader{vals: vals}
	stderr := &syncbuf.Buffer{}
	a := &app{stdout: io.Discard, stderr: stderr, getenv: e.getenv}
	root := a.rootCmd()
	cmd, _, err := root.Find(svc.Command)
	if err != nil || cmd == root {
		t.Fatalf("command %v: not a privnum command (%v)", svc.Command, err)
	}
	bound := flagEnv(cmd)
	e.arm() // from here on, reads are the command's own
	root.SetArgs(svc.Command)
	root.SetOut(io.Discard)
	root.SetErr(stderr)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	exit := make(chan error, 1)
	go func() { exit <- root.ExecuteContext(ctx); a.close() }()

	health := "http://" + addr + "/healthz"
	if svc.Healthcheck == nil {
		t.Errorf("no healthcheck")
	} else {
		test := svc.Healthcheck.Test
		i := slices.Index(test, "healthcheck")
		if len(test) < 2 || test[0] != "CMD" || !strings.HasSuffix(test[1], "privnum") || i < 0 || i+1 >= len(test) {
			t.Fatalf("healthcheck %v: want [CMD, /usr/local/bin/privnum, healthcheck, URL] (the image has no shell)", test)
		}
		u, err := url.Parse(test[i+1])
		if err != nil || port(t, u.Host) != port(t, listen) {
			t.Fatalf("healthcheck %s: not on %s's port %s", test[i+1], listenVar, port(t, listen))
		}
		u.Host = addr
		health = u.String()
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case err := <-exit:
			t.Fatalf("%s exited before it was up: %v\n%s", svc.Command[0], err, stderr)
		default:
		}
		// The health check as compose runs it: exit 0 once the service is up.
		if run(ctx, []string{"healthcheck", "--timeout", "1s", health}, io.Discard, io.Discard) == 0 &&
			(svc.Command[0] != "serve" || sim.Connected(env["PRIVNUM_ARI_APP"])) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not come up healthy (%s) in time:\n%s", svc.Command[0], health, stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-exit; err != nil {
		t.Fatalf("%s: %v\n%s", svc.Command[0], err, stderr)
	}
	for _, k := range sortedNames(env) {
		if _, ok := bound[k]; ok || e.wasRead(k) {
			continue
		}
		t.Errorf("environment sets %s, which `privnum %s` does not read", k, strings.Join(svc.Command, " "))
	}
}

// confSections reads an Asterisk .conf file into its sections' key=value
// lines (the last value of a key wins; comments dropped). A section
// "[name](template)" is stored under name.
func confSections(t *testing.T, path string) map[string]map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]string{}
	var cur map[string]string
	for _, line := range strings.Split(string(b), "\n") {
		if i := strings.Index(line, ";"); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			name, _, _ := strings.Cut(line[1:], "]")
			if out[name] == nil {
				out[name] = map[string]string{}
			}
			cur = out[name]
		case cur != nil:
			k, v, _ := strings.Cut(line, "=")
			k, v = strings.TrimSpace(k), strings.TrimSpace(strings.TrimPrefix(v, ">"))
			cur[k] = v
		}
	}
	return out
}

// TestComposeAgreesWithAsteriskConf: the compose file's Asterisk is
// configured from asterisk-conf/, and privnum's ARI URL, user, password
// and application, endpoint template and Redis match it.
func TestComposeAgreesWithAsteriskConf(t *testing.T) {
	c, _, example := readCompose(t)
	ast, ok := c.Services["asterisk"]
	if !ok {
		t.Fatal("no asterisk service")
	}
	for _, v := range ast.Volumes {
		src, dst, _ := strings.Cut(v, ":")
		if strings.HasPrefix(src, "./") {
			if _, err := os.Stat("../../" + src); err != nil {
				t.Errorf("asterisk volume %s: %v", v, err)
			}
			if !strings.HasPrefix(dst, "/etc/asterisk/") {
				t.Errorf("asterisk volume %s: configuration outside /etc/asterisk", v)
			}
		}
	}

	// The HTTP server ARI runs on: the drop-in, then the compose main file.
	http := confSections(t, "../../asterisk-conf/privnum-http.conf")["general"]
	for k, v := range confSections(t, "../../asterisk-conf/docker/http.conf")["general"] {
		http[k] = v
	}
	ari := confSections(t, "../../asterisk-conf/privnum-ari.conf")
	transport := confSections(t, "../../asterisk-conf/privnum-pjsip-transport.conf")
	pjsip := confSections(t, "../../asterisk-conf/privnum-pjsip.conf")
	ext, err := os.ReadFile("../../asterisk-conf/privnum-extensions.conf")
	if err != nil {
		t.Fatal(err)
	}
	var sipPort string
	for _, s := range transport {
		if s["type"] == "transport" {
			sipPort = port(t, s["bind"])
		}
	}
	switch {
	case sipPort == "":
		t.Error("privnum-pjsip-transport.conf: no transport")
	case ast.NetworkMode == "host":
		if len(ast.Ports) > 0 {
			t.Errorf("asterisk: host networking and ports %v", ast.Ports)
		}
	default:
		if !slices.ContainsFunc(ast.Ports, func(p string) bool { return strings.HasSuffix(p, ":"+sipPort+"/udp") }) {
			t.Errorf("asterisk ports %v do not publish the SIP transport's %s/udp", ast.Ports, sipPort)
		}
	}
	if ast.Healthcheck == nil {
		t.Error("asterisk: no healthcheck")
	}
	if r := c.Services["redis"]; !slices.Contains(r.Command, "--appendonly") || r.Healthcheck == nil {
		t.Errorf("redis: command %v: want --appendonly yes and a healthcheck", r.Command)
	}

	var dialplan strings.Builder
	for _, line := range strings.Split(string(ext), "\n") {
		line, _, _ = strings.Cut(line, ";")
		dialplan.WriteString(line + "\n")
	}
	stasis := regexp.MustCompile(`Stasis\(([^,)]*)`).FindAllStringSubmatch(dialplan.String(), -1)
	if len(stasis) == 0 {
		t.Fatal("privnum-extensions.conf: no Stasis()")
	}
	checked := 0
	for _, name := range sortedNames(c.Services) {
		svc := c.Services[name]
		env := map[string]string{}
		for k, v := range svc.Environment {
			env[k] = interpolate(v, example)
		}
		if u := env["PRIVNUM_ARI_URL"]; u != "" {
			checked++
			if p := port(t, u); p != http["bindport"] {
				t.Errorf("%s: PRIVNUM_ARI_URL %s: port %s, but Asterisk's HTTP server listens on %s (asterisk-conf http.conf)", name, u, p, http["bindport"])
			}
			user := ari[env["PRIVNUM_ARI_USER"]]
			if user["type"] != "user" {
				t.Errorf("%s: PRIVNUM_ARI_USER %q is no type=user section of privnum-ari.conf", name, env["PRIVNUM_ARI_USER"])
			} else if user["password"] != env["PRIVNUM_ARI_PASSWORD"] {
				t.Errorf("%s: PRIVNUM_ARI_PASSWORD (from .env.example) is not the password of ARI user %q in privnum-ari.conf", name, env["PRIVNUM_ARI_USER"])
			}
		}
		if slices.Contains(svc.Command, "serve") {
			app := env["PRIVNUM_ARI_APP"]
			for _, m := range stasis {
				if m[1] != app {
					t.Errorf("%s: PRIVNUM_ARI_APP %q, but privnum-extensions.conf hands calls to Stasis(%s)", name, app, m[1])
				}
			}
			tmpl := env["PRIVNUM_ENDPOINT_TEMPLATE"]
			_, endpoint, _ := strings.Cut(tmpl, "@")
			if !strings.HasPrefix(tmpl, "PJSIP/") || pjsip[endpoint] == nil {
				t.Errorf("%s: PRIVNUM_ENDPOINT_TEMPLATE %q names no endpoint of privnum-pjsip.conf", name, tmpl)
			}
			if !strings.HasPrefix(env["PRIVNUM_REDIS_URL"], "redis://redis:") {
				t.Errorf("%s: PRIVNUM_REDIS_URL %q is not the redis service", name, env["PRIVNUM_REDIS_URL"])
			}
		}
	}
	if checked < 2 {
		t.Errorf("%d services with PRIVNUM_ARI_URL; want serve and api", checked)
	}
}
