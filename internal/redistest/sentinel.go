package redistest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// SentinelMaster is the master name a test Sentinel monitors.
const SentinelMaster = "privnum"

// Sentinel is a master, a replica and a Sentinel watching them.
type Sentinel struct {
	// URL is the redis+sentinel:// URL privnum takes.
	URL string
	// Master and Replica are the data nodes; SentinelAddr the Sentinel.
	Master, Replica, SentinelAddr Server
}

// StartSentinel starts a master, its replica and one Sentinel (quorum 1),
// stopped when t ends, and returns once the Sentinel knows both and the
// replica's link is up.
func StartSentinel(t testing.TB) Sentinel {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not found: %v", err)
	}
	master := StartSingle(t)
	replica := startWith(t, bin, "--replicaof", "127.0.0.1", portOf(master.Addr))
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "sentinel.conf")
	body := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor %s 127.0.0.1 %s 1\n"+
		"sentinel down-after-milliseconds %s 1000\nsentinel failover-timeout %s 5000\n",
		port, filepath.Dir(conf), SentinelMaster, portOf(master.Addr), SentinelMaster, SentinelMaster)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	sent, err := launchArgs(t, bin, port, conf, "--sentinel")
	if err != nil {
		t.Fatalf("start sentinel: %v", err)
	}
	s := Sentinel{
		URL:    "redis+sentinel://" + sent.Addr + "?master_name=" + SentinelMaster,
		Master: master, Replica: replica, SentinelAddr: sent,
	}
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	for {
		sc := redis.NewSentinelClient(&redis.Options{Addr: sent.Addr})
		reps, err := sc.Replicas(ctx, SentinelMaster).Result()
		sc.Close()
		rc := redis.NewClient(&redis.Options{Addr: replica.Addr})
		info, ierr := rc.Info(ctx, "replication").Result()
		rc.Close()
		if err == nil && ierr == nil && len(reps) == 1 && infoFields(info)["master_link_status"] == "up" {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("sentinel not ready: replicas %v %v, replica info err %v", reps, err, ierr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func portOf(addr string) string {
	_, p, _ := cutLast(addr, ":")
	return p
}

func cutLast(s, sep string) (string, string, bool) {
	for i := len(s) - len(sep); i >= 0; i-- {
		if s[i:i+len(sep)] == sep {
			return s[:i], s[i+len(sep):], true
		}
	}
	return s, "", false
}

// startWith starts a redis-server with extra arguments on a free port.
func startWith(t testing.TB, bin string, extra ...string) Server {
	t.Helper()
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		args := append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", t.TempDir(), "--loglevel", "warning"}, extra...)
		s, err := launchArgs(t, bin, port, args...)
		if err == nil {
			return s
		}
		lastErr = err
	}
	t.Fatalf("start redis-server: %v", lastErr)
	return Server{}
}
