package redistest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a running Redis Cluster of real redis-server processes: three
// masters, each with one replica, on free loopback ports.
type Cluster struct {
	dir   string
	mu    sync.Mutex
	nodes []*node
}

type node struct {
	addr   string
	cmd    *exec.Cmd
	exited chan struct{}
	log    *strings.Builder
	logMu  sync.Mutex
	killed bool
}

// ClusterNodes is the size of a test cluster: 3 masters, 3 replicas.
const ClusterNodes = 6

// StartCluster starts a fresh 6-node Redis Cluster for t and stops it when t
// ends. It returns once every slot is served, every node agrees the cluster
// is ok, and every replica's link to its master is up (so a failover can
// happen from the first moment).
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	c, err := NewCluster(t.TempDir())
	if err != nil {
		t.Fatalf("start redis cluster: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// NewCluster starts a 6-node Redis Cluster with its files under dir. Close
// stops it.
func NewCluster(dir string) (*Cluster, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not found (apt-get install redis-server): %w", err)
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		return nil, fmt.Errorf("redis-cli not found (apt-get install redis-tools): %w", err)
	}
	var lastErr error
	for range 3 {
		c := &Cluster{dir: dir}
		if lastErr = c.start(bin, cli); lastErr == nil {
			return c, nil
		}
		c.Close()
	}
	return nil, lastErr
}

func (c *Cluster) start(bin, cli string) error {
	ports := make([]int, 0, ClusterNodes)
	for len(ports) < ClusterNodes {
		p, err := freePort()
		if err != nil {
			return err
		}
		dup := false
		for _, q := range ports {
			dup = dup || q == p
		}
		if !dup {
			ports = append(ports, p)
		}
	}
	for _, p := range ports {
		n, err := c.launchNode(bin, p)
		if err != nil {
			return err
		}
		c.nodes = append(c.nodes, n)
	}
	args := []string{"--cluster", "create"}
	for _, n := range c.nodes {
		args = append(args, n.addr)
	}
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	out, err := exec.Command(cli, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("redis-cli --cluster create: %v: %s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return c.WaitHealthy(ctx)
}

func (c *Cluster) launchNode(bin string, port int) (*node, error) {
	dir := filepath.Join(c.dir, strconv.Itoa(port))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin,
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
		// Short node timeout: a dead master is failed over in about 2 s.
		"--cluster-node-timeout", "1000",
		// A replica takes over however long it was cut off from its master.
		"--cluster-replica-validity-factor", "0",
		// Sync replicas at once instead of after the 5 s diskless delay.
		"--repl-diskless-sync-delay", "0",
		"--save", "", "--appendonly", "no", "--loglevel", "warning")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	n := &node{addr: "127.0.0.1:" + strconv.Itoa(port), cmd: cmd, exited: make(chan struct{}), log: &strings.Builder{}}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			n.logMu.Lock()
			if n.log.Len() < 8192 {
				n.log.WriteString(sc.Text() + "\n")
			}
			n.logMu.Unlock()
		}
		cmd.Wait()
		close(n.exited)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-n.exited:
			n.logMu.Lock()
			defer n.logMu.Unlock()
			return nil, fmt.Errorf("redis-server on port %d exited: %s", port, n.log.String())
		default:
		}
		rc := redis.NewClient(&redis.Options{Addr: n.addr, DialTimeout: 100 * time.Millisecond})
		err := rc.Ping(context.Background()).Err()
		rc.Close()
		if err == nil {
			return n, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Kill()
	<-n.exited
	return nil, fmt.Errorf("redis-server on port %d did not start", port)
}

// Close stops every node.
func (c *Cluster) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.nodes {
		n.cmd.Process.Kill()
		<-n.exited
	}
	c.nodes = nil
}

// Addrs returns the address of every node started, dead or alive.
func (c *Cluster) Addrs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.addr
	}
	return out
}

// URL returns a redis+cluster:// URL naming every node, as privnum's
// --redis flag takes it.
func (c *Cluster) URL() string {
	addrs := c.Addrs()
	var b strings.Builder
	b.WriteString("redis+cluster://" + addrs[0])
	for i, a := range addrs[1:] {
		if i == 0 {
			b.WriteString("?")
		} else {
			b.WriteString("&")
		}
		b.WriteString("addr=" + a)
	}
	return b.String()
}

// Client returns a cluster client, closed when t ends.
func (c *Cluster) Client(t testing.TB) *redis.ClusterClient {
	t.Helper()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	t.Cleanup(func() { cc.Close() })
	return cc
}

// Kill stops the node at addr with SIGKILL, as a crash would.
func (c *Cluster) Kill(addr string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.nodes {
		if n.addr == addr {
			n.killed = true
			if err := n.cmd.Process.Kill(); err != nil {
				return err
			}
			<-n.exited
			return nil
		}
	}
	return fmt.Errorf("no node %s", addr)
}

// alive returns the addresses of the nodes not killed.
func (c *Cluster) alive() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, n := range c.nodes {
		if !n.killed {
			out = append(out, n.addr)
		}
	}
	return out
}

// Role is a node's part in the cluster as it reports it.
type Role struct {
	Addr   string
	Master bool
	// MasterAddr is the master a replica follows.
	MasterAddr string
	// LinkUp tells whether a replica's link to its master is up.
	LinkUp bool
	// Slots is how many hash slots a master serves, as CLUSTER NODES says.
	Slots int
}

// Roles asks every live node for its role.
func (c *Cluster) Roles(ctx context.Context) ([]Role, error) {
	var out []Role
	for _, a := range c.alive() {
		rc := redis.NewClient(&redis.Options{Addr: a, DialTimeout: 200 * time.Millisecond, ReadTimeout: time.Second})
		info, err := rc.Info(ctx, "replication").Result()
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", a, err)
		}
		r := Role{Addr: a}
		fields := infoFields(info)
		r.Master = fields["role"] == "master"
		if !r.Master {
			r.MasterAddr = fields["master_host"] + ":" + fields["master_port"]
			r.LinkUp = fields["master_link_status"] == "up"
		}
		out = append(out, r)
	}
	return out, nil
}

func infoFields(info string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok {
			m[k] = v
		}
	}
	return m
}

// Masters returns the addresses of the live masters that serve slots.
func (c *Cluster) Masters(ctx context.Context) ([]string, error) {
	roles, err := c.Roles(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range roles {
		if r.Master {
			out = append(out, r.Addr)
		}
	}
	return out, nil
}

// WaitHealthy waits until every live node reports cluster_state:ok with all
// 16384 slots served by live masters, and every live replica's link to its
// master is up.
func (c *Cluster) WaitHealthy(ctx context.Context) error {
	var last error
	for {
		last = c.healthy(ctx)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster not healthy: %w", last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *Cluster) healthy(ctx context.Context) error {
	alive := c.alive()
	liveSet := map[string]bool{}
	for _, a := range alive {
		liveSet[a] = true
	}
	for _, a := range alive {
		rc := redis.NewClient(&redis.Options{Addr: a, DialTimeout: 200 * time.Millisecond, ReadTimeout: time.Second})
		info, err := rc.ClusterInfo(ctx).Result()
		if err != nil {
			rc.Close()
			return fmt.Errorf("%s: %w", a, err)
		}
		f := infoFields(info)
		if f["cluster_state"] != "ok" || f["cluster_slots_ok"] != "16384" {
			rc.Close()
			return fmt.Errorf("%s: cluster_state %s, slots ok %s", a, f["cluster_state"], f["cluster_slots_ok"])
		}
		slots, err := rc.ClusterSlots(ctx).Result()
		rc.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", a, err)
		}
		for _, s := range slots {
			if len(s.Nodes) == 0 || !liveSet[s.Nodes[0].Addr] {
				return fmt.Errorf("%s: slots %d-%d served by a dead node", a, s.Start, s.End)
			}
		}
	}
	roles, err := c.Roles(ctx)
	if err != nil {
		return err
	}
	for _, r := range roles {
		if !r.Master && (!r.LinkUp || !liveSet[r.MasterAddr]) {
			return errors.New(r.Addr + ": replica link to " + r.MasterAddr + " not up")
		}
	}
	return nil
}

// Flush empties every master (FLUSHALL) and resets their error counts.
func (c *Cluster) Flush(ctx context.Context) error {
	masters, err := c.Masters(ctx)
	if err != nil {
		return err
	}
	for _, a := range masters {
		rc := redis.NewClient(&redis.Options{Addr: a})
		err := rc.FlushAll(ctx).Err()
		if err == nil {
			err = rc.ConfigResetStat(ctx).Err()
		}
		rc.Close()
		if err != nil {
			return fmt.Errorf("flush %s: %w", a, err)
		}
	}
	return nil
}

// Errors returns how many replies with the error code (e.g. "CROSSSLOT") the
// live masters sent since the last Flush, from INFO errorstats: errors that
// code under test swallowed are counted too.
func (c *Cluster) Errors(ctx context.Context, code string) (int, error) {
	masters, err := c.Masters(ctx)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, a := range masters {
		rc := redis.NewClient(&redis.Options{Addr: a})
		info, err := rc.Info(ctx, "errorstats").Result()
		rc.Close()
		if err != nil {
			return 0, fmt.Errorf("%s: %w", a, err)
		}
		v, ok := infoFields(info)["errorstat_"+code]
		if !ok {
			continue
		}
		n, err := strconv.Atoi(strings.TrimPrefix(v, "count="))
		if err != nil {
			return 0, fmt.Errorf("%s: errorstat_%s %q", a, code, v)
		}
		total += n
	}
	return total, nil
}

// CheckNoCrossSlot fails t if any master answered CROSSSLOT since the last
// Flush.
func (c *Cluster) CheckNoCrossSlot(t testing.TB) {
	t.Helper()
	n, err := c.Errors(context.Background(), "CROSSSLOT")
	if err != nil {
		t.Errorf("read errorstats: %v", err)
	} else if n > 0 {
		t.Errorf("the cluster answered %d CROSSSLOT errors during this test", n)
	}
}
