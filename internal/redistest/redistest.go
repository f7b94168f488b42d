// Package redistest gives tests a real, empty Redis: a throwaway
// redis-server on a free loopback port, a real 6-node Redis Cluster (see
// Main for the single/cluster test matrix), or the database named by
// PRIVNUM_TEST_REDIS_URL (which is flushed).
package redistest

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/privnum/privnum/internal/store"
)

// EnvURL names an existing Redis to use instead of starting one. Tests flush
// that database: never point it at data you want to keep.
const EnvURL = "PRIVNUM_TEST_REDIS_URL"

// EnvMode chooses what a test Redis is: "single" (one redis-server),
// "cluster" (a 6-node Redis Cluster shared by the package's tests, flushed
// before each) or, unset, both in turn for packages whose TestMain calls
// Main.
const EnvMode = "PRIVNUM_TEST_REDIS"

// shared is the cluster a package's tests use in cluster mode; Main starts
// and stops it. It belongs to the test binary, not to any production code.
var shared *Cluster

// Server is a running test Redis.
type Server struct {
	// URL is the URL of the server as privnum's --redis flag takes it:
	// redis://host:port/db, or redis+cluster://host:port?addr=… in cluster
	// mode.
	URL string
	// Addr is host:port (of one node in cluster mode).
	Addr string
	// Cluster is the cluster behind URL in cluster mode, nil otherwise.
	Cluster *Cluster
}

// Main runs a package's tests against a single Redis and then, in a second
// run of the same test binary, against a real Redis Cluster: the test
// matrix. Call it from TestMain:
//
//	func TestMain(m *testing.M) { redistest.Main(m) }
//
// Set PRIVNUM_TEST_REDIS=single (or cluster) to run one side only.
func Main(m *testing.M) {
	mode := os.Getenv(EnvMode)
	if mode == "cluster" && os.Getenv(EnvURL) == "" {
		dir, err := os.MkdirTemp("", "redistest-cluster-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "redistest:", err)
			os.Exit(1)
		}
		c, err := NewCluster(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, "redistest: start redis cluster:", err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
		shared = c
		code := m.Run()
		c.Close()
		os.RemoveAll(dir)
		os.Exit(code)
	}
	code := m.Run()
	if code != 0 || mode != "" || os.Getenv(EnvURL) != "" || !wantsMatrix() {
		os.Exit(code)
	}
	fmt.Println("redistest: the same tests again, against a 6-node Redis Cluster")
	var args []string
	for _, a := range os.Args[1:] {
		if strings.Contains(a, "profile") || strings.HasPrefix(a, "-test.outputdir") {
			continue
		}
		args = append(args, a)
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), EnvMode+"=cluster")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "redistest: cluster run:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// wantsMatrix tells whether this run is one of tests (not benchmarks, fuzzing
// or a listing), which the cluster run repeats.
func wantsMatrix() bool {
	for _, name := range []string{"test.bench", "test.fuzz", "test.list"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return false
		}
	}
	return true
}

// Clustered tells whether this test run uses a Redis Cluster.
func Clustered() bool { return os.Getenv(EnvMode) == "cluster" && os.Getenv(EnvURL) == "" }

// Start returns an empty Redis for t, stopped (or left to the next test)
// when t ends: a fresh redis-server, or in cluster mode the package's
// cluster flushed.
func Start(t testing.TB) Server {
	t.Helper()
	if url := os.Getenv(EnvURL); url != "" {
		o, err := redis.ParseURL(url)
		if err != nil {
			t.Fatalf("%s: %v", EnvURL, err)
		}
		c := redis.NewClient(o)
		defer c.Close()
		if err := c.FlushDB(context.Background()).Err(); err != nil {
			t.Fatalf("flush %s: %v", EnvURL, err)
		}
		return Server{URL: url, Addr: o.Addr}
	}
	if Clustered() {
		c := shared
		if c == nil {
			c = StartCluster(t)
		} else if err := c.Flush(context.Background()); err != nil {
			t.Fatalf("flush redis cluster: %v", err)
		}
		t.Cleanup(func() { c.CheckNoCrossSlot(t) })
		return Server{URL: c.URL(), Addr: c.Addrs()[0], Cluster: c}
	}
	return StartSingle(t)
}

// StartSingle returns a fresh single redis-server for t, whatever the mode.
func StartSingle(t testing.TB) Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not found (install it, e.g. apt-get install redis-server, or set %s): %v", EnvURL, err)
	}
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		s, err := launch(t, bin, port)
		if err == nil {
			return s
		}
		lastErr = err
	}
	t.Fatalf("start redis-server: %v", lastErr)
	return Server{}
}

// Client returns a client of a fresh test Redis, closed when t ends.
func Client(t testing.TB) redis.UniversalClient {
	t.Helper()
	return ClientFor(t, Start(t).URL)
}

// ClientFor returns a client of the test Redis at url (any URL privnum
// takes), closed when t ends.
func ClientFor(t testing.TB, url string) redis.UniversalClient {
	t.Helper()
	c, err := store.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Keys returns the keys matching pattern on every master of rdb.
func Keys(t testing.TB, rdb redis.UniversalClient, pattern string) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		var mu sync.Mutex
		err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			k, err := c.Keys(ctx, pattern).Result()
			mu.Lock()
			out = append(out, k...)
			mu.Unlock()
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(out)
		return out
	}
	out, err := rdb.Keys(ctx, pattern).Result()
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// Dump returns every key of rdb with its value rendered as text, by type,
// for tests that check what a change stored (or that it stored nothing).
func Dump(t testing.TB, rdb redis.UniversalClient) map[string]string {
	t.Helper()
	ctx := context.Background()
	keys := Keys(t, rdb, "*")
	out := map[string]string{}
	for _, k := range keys {
		typ, err := rdb.Type(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		var v any
		switch typ {
		case "string":
			v, err = rdb.Get(ctx, k).Result()
		case "hash":
			v, err = rdb.HGetAll(ctx, k).Result()
		case "set":
			v, err = rdb.SMembers(ctx, k).Result()
		case "zset":
			v, err = rdb.ZRangeWithScores(ctx, k, 0, -1).Result()
		case "list":
			v, err = rdb.LRange(ctx, k, 0, -1).Result()
		case "stream":
			v, err = rdb.XRange(ctx, k, "-", "+").Result()
		case "none":
			continue
		default:
			t.Fatalf("key %s has unexpected type %s", k, typ)
		}
		if err != nil {
			t.Fatal(err)
		}
		out[k] = fmt.Sprintf("%v", v)
	}
	return out
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func launch(t testing.TB, bin string, port int) (Server, error) {
	return launchArgs(t, bin, port, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir(), "--loglevel", "warning")
}

// launchArgs starts redis-server with args, which must make it listen on
// 127.0.0.1:port, and waits until it accepts connections.
func launchArgs(t testing.TB, bin string, port int, args ...string) (Server, error) {
	cmd := exec.Command(bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return Server{}, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return Server{}, err
	}
	exited := make(chan string, 1)
	go func() {
		var log strings.Builder
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if log.Len() < 4096 {
				log.WriteString(sc.Text() + "\n")
			}
		}
		cmd.Wait()
		exited <- log.String()
	}()
	addr := "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case log := <-exited:
			return Server{}, fmt.Errorf("redis-server on port %d exited: %s", port, log)
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			t.Cleanup(func() {
				cmd.Process.Kill()
				<-exited
			})
			return Server{URL: "redis://" + addr + "/0", Addr: addr}, nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Kill()
	<-exited
	return Server{}, fmt.Errorf("redis-server on port %d did not start", port)
}

// SingleClient returns a client of a fresh single redis-server, whatever the
// mode, for tests and benchmarks that need one server (a byte-level proxy,
// a simulation that flushes its database).
func SingleClient(t testing.TB) *redis.Client {
	t.Helper()
	return ClientFor(t, StartSingle(t).URL).(*redis.Client)
}
