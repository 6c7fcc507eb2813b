package memo_test

// Tests with several real processes sharing one store. The test binary
// re-executes itself as a helper (-test.run=^TestProcessHelper$) with the
// role in CACHEKIT_MEMO_HELPER and its arguments (space-separated) in
// CACHEKIT_MEMO_HELPER_ARG. A helper prints lines on stdout, may wait for a
// line on stdin, and exits 0, or 1 with the reason on stderr. The same
// binary works under -race: a race in a helper makes it exit non-zero.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/disk"
	"github.com/cachekit/cachekit/internal/testserver"
	"github.com/cachekit/cachekit/memo"
	"github.com/cachekit/cachekit/redis"
)

const (
	procRoleEnv = "CACHEKIT_MEMO_HELPER"
	procArgEnv  = "CACHEKIT_MEMO_HELPER_ARG"
	procTimeout = 60 * time.Second
)

// TestProcessHelper is not a test: it is the body of the helper processes
// started by the other TestProcess tests. Run directly, it skips.
func TestProcessHelper(t *testing.T) {
	role := os.Getenv(procRoleEnv)
	if role == "" {
		t.Skip("helper process body, started by the other TestProcess tests")
	}
	ctx, cancel := context.WithTimeout(context.Background(), procTimeout)
	err := procHelper(ctx, role, strings.Fields(os.Getenv(procArgEnv)))
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "helper %s: %v\n", role, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// procStore opens the store a helper's arguments name: "disk DIR" or
// "redis ADDR PREFIX".
func procStore(ctx context.Context, args []string) (cachekit.Store, error) {
	switch {
	case len(args) == 2 && args[0] == "disk":
		return disk.New(ctx, disk.Options{Dir: args[1]})
	case len(args) == 3 && args[0] == "redis":
		return redis.New(ctx, redis.Options{Addrs: []string{args[1]}, Prefix: args[2], Timeout: 5 * time.Second})
	}
	return nil, fmt.Errorf("bad store arguments %q", args)
}

// procHelper runs a role. "call" (args: the store's): print "ready", wait
// for a line, then 20 goroutines call one leased memo function on one key;
// the function prints "computed" and takes 1 s; each caller prints
// "got VALUE"; waits on the lease print "lease-wait".
func procHelper(ctx context.Context, role string, args []string) error {
	if role != "call" {
		return fmt.Errorf("unknown role %q", role)
	}
	store, err := procStore(ctx, args)
	if err != nil {
		return err
	}
	c, err := cachekit.New[string](store, cachekit.Options{})
	if err != nil {
		return err
	}
	defer c.Close()
	obs := memo.ObserverFunc(func(e memo.Event) {
		if e.Kind == memo.LeaseWait {
			fmt.Println("lease-wait")
		}
	})
	f, err := memo.New(c, "proc.compute", func(ctx context.Context, k string) (string, error) {
		fmt.Println("computed")
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return "", ctx.Err()
		}
		return fmt.Sprintf("%s-by-%d", k, os.Getpid()), nil
	}, memo.Options{Lease: true, LeaseTTL: 30 * time.Second, TTL: time.Minute, Observer: obs})
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return fmt.Errorf("waiting for go: %w", err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			v, err := f.Call(ctx, "k")
			if err != nil {
				errs <- err
				return
			}
			fmt.Println("got", v)
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// procChild is a running helper.
type procChild struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *bufio.Scanner
	lines  []string
	stderr bytes.Buffer
}

func procStart(ctx context.Context, t *testing.T, role string, args ...string) *procChild {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c := &procChild{}
	c.cmd = exec.CommandContext(ctx, exe, "-test.run=^TestProcessHelper$", "-test.count=1")
	c.cmd.Env = append(os.Environ(), procRoleEnv+"="+role, procArgEnv+"="+strings.Join(args, " "))
	if gorace := os.Getenv("GORACE"); !strings.Contains(gorace, "atexit_sleep_ms") {
		c.cmd.Env = append(c.cmd.Env, strings.TrimSpace("GORACE="+gorace+" atexit_sleep_ms=0"))
	}
	c.cmd.Stderr = &c.stderr
	c.cmd.WaitDelay = 5 * time.Second
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.out = bufio.NewScanner(stdout)
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.cmd.Process.Kill(); c.cmd.Wait() })
	return c
}

// next returns the helper's next line, or an error at its end.
func (c *procChild) next() (string, error) {
	if c.out.Scan() {
		c.lines = append(c.lines, c.out.Text())
		return c.out.Text(), nil
	}
	return "", fmt.Errorf("helper ended: %v; stderr:\n%s", c.cmd.Wait(), c.stderr.Bytes())
}

// rest reads the helper's remaining lines and waits for it.
func (c *procChild) rest() error {
	for c.out.Scan() {
		c.lines = append(c.lines, c.out.Text())
	}
	if err := c.cmd.Wait(); err != nil {
		return fmt.Errorf("helper: %v; stderr:\n%s", err, c.stderr.Bytes())
	}
	return nil
}

// exactlyOnceAcross starts 4 helper processes of 20 callers each on the
// store named by args, and checks that the function ran exactly once and
// every caller got its value.
func exactlyOnceAcross(t *testing.T, args ...string) {
	const procs = 4
	ctx, cancel := context.WithTimeout(t.Context(), procTimeout)
	defer cancel()
	children := make([]*procChild, procs)
	for i := range children {
		children[i] = procStart(ctx, t, "call", args...)
	}
	for _, c := range children {
		if line, err := c.next(); err != nil || line != "ready" {
			t.Fatalf("helper said %q, %v; want ready", line, err)
		}
	}
	for _, c := range children {
		if _, err := io.WriteString(c.stdin, "go\n"); err != nil {
			t.Fatal(err)
		}
	}
	computed, waited := 0, 0
	values := map[string]int{}
	for _, c := range children {
		if err := c.rest(); err != nil {
			t.Fatal(err)
		}
		for _, line := range c.lines[1:] {
			switch {
			case line == "computed":
				computed++
			case line == "lease-wait":
				waited++
			case strings.HasPrefix(line, "got "):
				values[strings.TrimPrefix(line, "got ")]++
			default:
				t.Fatalf("helper printed %q", line)
			}
		}
	}
	if computed != 1 {
		t.Fatalf("the function ran %d times across %d processes, want 1", computed, procs)
	}
	if len(values) != 1 {
		t.Fatalf("callers got %v, want one value", values)
	}
	for v, n := range values {
		if n != procs*20 {
			t.Fatalf("%d callers got %q, want %d", n, v, procs*20)
		}
	}
	if waited == 0 {
		t.Error("no process waited on the lease: the processes did not overlap")
	}
	t.Logf("%d processes: 1 computation, %d waited on the lease", procs, waited)
}

// TestProcessExactlyOnceDisk: exactly one computation across 4 processes
// sharing a disk store, with the lease defence (woken by the disk store's
// Notifier).
func TestProcessExactlyOnceDisk(t *testing.T) {
	t.Parallel()
	exactlyOnceAcross(t, "disk", t.TempDir())
}

// TestProcessExactlyOnceRedis: the same across 4 processes sharing a Redis
// server (woken by client-tracking invalidations).
func TestProcessExactlyOnceRedis(t *testing.T) {
	t.Parallel()
	addr := testserver.Redis(t)
	prefix := "cachekit-test:memo:" + rand.Text() + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		s, err := redis.New(ctx, redis.Options{Addrs: []string{addr}, Prefix: prefix})
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		defer s.Close()
		if err := s.Clear(ctx); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	exactlyOnceAcross(t, "redis", addr, prefix)
}
