// Package redistest gives tests a real, empty Redis: a throwaway
// redis-server on a free loopback port, or the database named by
// PRIVNUM_TEST_REDIS_URL (which is flushed).
package redistest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// EnvURL names an existing Redis to use instead of starting one. Tests flush
// that database: never point it at data you want to keep.
const EnvURL = "PRIVNUM_TEST_REDIS_URL"

// Server is a running test Redis.
type Server struct {
	// URL is the redis:// URL of the server.
	URL string
	// Addr is host:port.
	Addr string
}

// Start returns an empty Redis for t, stopped when t ends.
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
func Client(t testing.TB) *redis.Client {
	t.Helper()
	return ClientFor(t, Start(t).URL)
}

// ClientFor returns a client of the test Redis at url, closed when t ends.
func ClientFor(t testing.TB, url string) *redis.Client {
	t.Helper()
	o, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	return c
}

// Dump returns every key of rdb with its value rendered as text, by type,
// for tests that check what a change stored (or that it stored nothing).
func Dump(t testing.TB, rdb *redis.Client) map[string]string {
	t.Helper()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
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
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir(), "--loglevel", "warning")
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
