package testserver

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Cluster is a private Redis Cluster of three masters (no replicas) that
// one test owns, so it may move slots between masters (resharding) or kill
// a node without disturbing the shared cluster of `make test`. t.Cleanup
// kills its processes.
type Cluster struct {
	t     testing.TB
	Nodes []*Proc  // the masters, in the order of Addrs
	Addrs []string // their 127.0.0.1:port addresses

	// MigrateBatch is how many keys one MIGRATE of MoveSlot moves (default
	// 100), and MigratePause how long MoveSlot waits after each batch: a
	// small batch and a pause keep the slot half migrated for a while, so
	// that clients meet ASK redirections.
	MigrateBatch int
	MigratePause time.Duration
}

// StartRedisCluster starts three redis-server processes with cluster-enabled
// yes (each with its cluster bus on a free port of its own) and joins them
// with redis-cli --cluster create, then waits until every node reports
// cluster_state:ok. It skips t when redis-server or redis-cli is not
// installed, or fails it if [Required].
func StartRedisCluster(t testing.TB) *Cluster {
	t.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		if Required() {
			t.Fatalf("redis-cli not installed (make test installs it): %v", err)
		}
		t.Skipf("redis-cli not installed; make test installs it")
	}
	c := &Cluster{t: t}
	for range 3 {
		bus := freePort(t)
		p := StartRedis(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-port", strconv.Itoa(bus), "--cluster-node-timeout", "5000")
		c.Nodes = append(c.Nodes, p)
		c.Addrs = append(c.Addrs, p.Addr)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, addr := range c.Addrs {
		for {
			info, err := RedisDo(addr, "CLUSTER", "INFO")
			if s, _ := info.(string); err == nil && strings.Contains(s, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("cluster node %s: cluster_state not ok after 10 s (last error %v)", addr, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// Every node must also agree on the owner of every slot before tests
	// start routing keys.
	c.waitConsistent(10 * time.Second)
	return c
}

// KeySlot returns the hash slot of key.
func (c *Cluster) KeySlot(key string) int {
	c.t.Helper()
	r, err := RedisDo(c.Addrs[0], "CLUSTER", "KEYSLOT", key)
	if err != nil {
		c.t.Fatalf("CLUSTER KEYSLOT: %v", err)
	}
	return int(r.(int64))
}

// Owner returns the address of the master that serves slot, as its own
// node sees it.
func (c *Cluster) Owner(slot int) string {
	c.t.Helper()
	owners, err := c.owners(c.Addrs[0])
	if err != nil {
		c.t.Fatal(err)
	}
	return owners[slot]
}

// owners reads CLUSTER SLOTS from addr: slot → master address.
func (c *Cluster) owners(addr string) (map[int]string, error) {
	r, err := RedisDo(addr, "CLUSTER", "SLOTS")
	if err != nil {
		return nil, fmt.Errorf("CLUSTER SLOTS on %s: %w", addr, err)
	}
	owners := make(map[int]string)
	ranges, _ := r.([]any)
	for _, rg := range ranges {
		f, _ := rg.([]any)
		if len(f) < 3 {
			continue
		}
		lo, _ := f[0].(int64)
		hi, _ := f[1].(int64)
		node, _ := f[2].([]any)
		if len(node) < 2 {
			continue
		}
		host, _ := node[0].(string)
		port, _ := node[1].(int64)
		a := net.JoinHostPort(host, strconv.FormatInt(port, 10))
		for s := lo; s <= hi; s++ {
			owners[int(s)] = a
		}
	}
	return owners, nil
}

// waitConsistent waits until every node reports the same owner for every
// slot.
func (c *Cluster) waitConsistent(timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var first map[int]string
		ok := true
		for _, a := range c.Addrs {
			o, err := c.owners(a)
			if err != nil || len(o) != 16384 {
				ok = false
				break
			}
			if first == nil {
				first = o
				continue
			}
			for s, owner := range first {
				if o[s] != owner {
					ok = false
					break
				}
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("cluster nodes disagree on slot owners after %v", timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// nodeID returns the cluster node id of the node at addr.
func (c *Cluster) nodeID(addr string) string {
	c.t.Helper()
	r, err := RedisDo(addr, "CLUSTER", "MYID")
	if err != nil {
		c.t.Fatalf("CLUSTER MYID on %s: %v", addr, err)
	}
	return r.(string)
}

// MoveSlot migrates slot, with its keys, to the master at addr, the way
// redis-cli --cluster reshard does: SETSLOT IMPORTING on the target,
// SETSLOT MIGRATING on the source, MIGRATE of the keys in batches, then
// SETSLOT NODE on every master. Clients keep working meanwhile (MOVED and
// ASK redirections). It fails the test on any error.
func (c *Cluster) MoveSlot(slot int, to string) {
	c.t.Helper()
	from := c.Owner(slot)
	if from == to {
		return
	}
	fromID, toID := c.nodeID(from), c.nodeID(to)
	s := strconv.Itoa(slot)
	c.must(to, "CLUSTER", "SETSLOT", s, "IMPORTING", fromID)
	c.must(from, "CLUSTER", "SETSLOT", s, "MIGRATING", toID)
	host, port, _ := net.SplitHostPort(to)
	batch := c.MigrateBatch
	if batch <= 0 {
		batch = 100
	}
	for {
		r := c.must(from, "CLUSTER", "GETKEYSINSLOT", s, strconv.Itoa(batch))
		keys, _ := r.([]any)
		if len(keys) == 0 {
			break
		}
		args := []string{"MIGRATE", host, port, "", "0", "5000", "KEYS"}
		for _, k := range keys {
			args = append(args, k.(string))
		}
		c.must(from, args...)
		time.Sleep(c.MigratePause)
	}
	// Target first, then the source, then the others (as redis-cli does),
	// so that the source never redirects to a target that does not know
	// it owns the slot.
	c.must(to, "CLUSTER", "SETSLOT", s, "NODE", toID)
	c.must(from, "CLUSTER", "SETSLOT", s, "NODE", toID)
	for _, a := range c.Addrs {
		if a != to && a != from {
			c.must(a, "CLUSTER", "SETSLOT", s, "NODE", toID)
		}
	}
	c.waitConsistent(10 * time.Second)
}

func (c *Cluster) must(addr string, args ...string) any {
	c.t.Helper()
	r, err := RedisDo(addr, args...)
	if err != nil {
		c.t.Fatalf("%s on %s: %v", strings.Join(args, " "), addr, err)
	}
	return r
}

// RedisReplyError is an error reply of a Redis server to [RedisDo].
type RedisReplyError string

func (e RedisReplyError) Error() string { return string(e) }

// RedisDo sends one command to the Redis server at addr on a new connection
// (RESP2, 5 s deadline) and returns its reply: string for simple and bulk
// strings, int64 for integers, nil for a nil reply, []any for arrays, and
// a [RedisReplyError] for an error reply.
func RedisDo(addr string, args ...string) (any, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(conn, b.String()); err != nil {
		return nil, err
	}
	return readReply(bufio.NewReader(conn))
}

func readReply(r *bufio.Reader) (any, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return nil, errors.New("empty reply line")
	}
	switch line[0] {
	case '+':
		return line[1:], nil
	case '-':
		return nil, RedisReplyError(line[1:])
	case ':':
		return strconv.ParseInt(line[1:], 10, 64)
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return nil, err
		}
		if n < 0 {
			return nil, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return nil, err
		}
		if n < 0 {
			return nil, nil
		}
		out := make([]any, n)
		for i := range out {
			if out[i], err = readReply(r); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("unexpected reply %q", line)
}
