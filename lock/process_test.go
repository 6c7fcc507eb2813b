package lock_test

// Tests with several real processes sharing a disk or redis store. The test
// binary re-executes itself as a helper: -test.run=^TestProcessHelper$
// with the role in CACHEKIT_LOCK_HELPER, the store in
// CACHEKIT_LOCK_HELPER_STORE ("disk <dir>" or "redis <addr> <prefix>") and
// the role's arguments (space-separated) in CACHEKIT_LOCK_HELPER_ARG. A
// helper prints lines on stdout, may wait for its stdin to close, and exits
// 0, or 1 with the reason on stderr. Under -race a race in a helper makes
// it exit non-zero with the report on stderr.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/disk"
	"github.com/cachekit/cachekit/internal/testserver"
	"github.com/cachekit/cachekit/lock"
	"github.com/cachekit/cachekit/redis"
)

// The helper protocol's environment variables.
const (
	helperRoleEnv  = "CACHEKIT_LOCK_HELPER"
	helperStoreEnv = "CACHEKIT_LOCK_HELPER_STORE"
	helperArgEnv   = "CACHEKIT_LOCK_HELPER_ARG"
)

// procTimeout bounds each multi-process test, helpers included.
const procTimeout = 50 * time.Second

// TestProcessHelper is not a test: it is the body of the helper processes
// that the TestProcess tests start. Run directly, it skips.
func TestProcessHelper(t *testing.T) {
	role := os.Getenv(helperRoleEnv)
	if role == "" {
		t.Skip("helper process body, started by the other TestProcess tests")
	}
	ctx, cancel := context.WithTimeout(context.Background(), procTimeout)
	err := runHelper(ctx, role, os.Getenv(helperStoreEnv), strings.Fields(os.Getenv(helperArgEnv)))
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "helper %s: %v\n", role, err)
		os.Exit(1)
	}
	os.Exit(0) // so that the testing package prints nothing after our lines
}

// openHelperStore opens the store a helper was given.
func openHelperStore(ctx context.Context, spec string) (cachekit.Store, error) {
	f := strings.Fields(spec)
	switch {
	case len(f) == 2 && f[0] == "disk":
		return disk.New(ctx, disk.Options{Dir: f[1]})
	case len(f) == 3 && f[0] == "redis":
		return redis.New(ctx, redis.Options{Addrs: []string{f[1]}, Prefix: f[2]})
	}
	return nil, fmt.Errorf("bad store spec %q", spec)
}

func runHelper(ctx context.Context, role, spec string, args []string) error {
	s, err := openHelperStore(ctx, spec)
	if err != nil {
		return err
	}
	err = helperRole(ctx, s, role, args)
	return errors.Join(err, s.Close())
}

// intArgs parses a helper's arguments.
func intArgs(args []string, n int) ([]int, error) {
	if len(args) != n {
		return nil, fmt.Errorf("got %d arguments %q, want %d", len(args), args, n)
	}
	out := make([]int, n)
	for i, a := range args {
		v, err := strconv.Atoi(a)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// ready prints "ready" and waits for a line on stdin, so that the
// parent can start the helpers' work at once.
func ready() error {
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return fmt.Errorf("waiting for go: %w", err)
	}
	return nil
}

func helperRole(ctx context.Context, s cachekit.Store, role string, args []string) error {
	switch role {
	case "lock-incr": // n: n times, increment "counter" non-atomically under the lock.
		a, err := intArgs(args, 1)
		if err != nil {
			return err
		}
		l, err := lock.NewLock(s, "mutex", lock.LockOptions{Expiry: 20 * time.Second})
		if err != nil {
			return err
		}
		if err := ready(); err != nil {
			return err
		}
		for range a[0] {
			if err := l.Acquire(ctx); err != nil {
				return err
			}
			if err := incrUnsafe(ctx, s, "counter"); err != nil {
				return err
			}
			if err := l.Release(ctx); err != nil {
				return err
			}
		}
		return nil

	case "hold": // expiry-ms: hold "held", print "held", release when stdin closes.
		a, err := intArgs(args, 1)
		if err != nil {
			return err
		}
		l, err := lock.NewLock(s, "held", lock.LockOptions{Expiry: time.Duration(a[0]) * time.Millisecond})
		if err != nil {
			return err
		}
		if err := l.Acquire(ctx); err != nil {
			return err
		}
		fmt.Println("held")
		if _, err := io.Copy(io.Discard, os.Stdin); err != nil {
			return err
		}
		return l.Release(ctx)

	case "sem": // limit rounds: hold a slot of "sem" in turns, counting holders in "active".
		a, err := intArgs(args, 2)
		if err != nil {
			return err
		}
		sem, err := lock.NewSemaphore(s, "sem", lock.SemaphoreOptions{Limit: a[0]})
		if err != nil {
			return err
		}
		if err := ready(); err != nil {
			return err
		}
		c := s.(cachekit.Counter)
		for range a[1] {
			if err := sem.Acquire(ctx); err != nil {
				return err
			}
			n, err := c.IncrBy(ctx, "active", 1)
			if err != nil {
				return err
			}
			fmt.Println(n)
			time.Sleep(2 * time.Millisecond)
			if _, err := c.IncrBy(ctx, "active", -1); err != nil {
				return err
			}
			if err := sem.Release(ctx); err != nil {
				return err
			}
		}
		return nil

	case "sem-hold": // limit expiry-ms: hold a slot of "sem", print "held", wait for stdin to close.
		a, err := intArgs(args, 2)
		if err != nil {
			return err
		}
		sem, err := lock.NewSemaphore(s, "sem", lock.SemaphoreOptions{Limit: a[0], Expiry: time.Duration(a[1]) * time.Millisecond})
		if err != nil {
			return err
		}
		if err := sem.Acquire(ctx); err != nil {
			return err
		}
		fmt.Println("held")
		_, err = io.Copy(io.Discard, os.Stdin)
		return err

	case "avg-add": // from n: add from, from+1, …, from+n-1 to "avg".
		a, err := intArgs(args, 2)
		if err != nil {
			return err
		}
		avg, err := lock.NewAverager(s, "avg", lock.AveragerOptions{})
		if err != nil {
			return err
		}
		if err := ready(); err != nil {
			return err
		}
		for i := range a[1] {
			if err := avg.Add(ctx, float64(a[0]+i)); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("unknown role %q", role)
}

// child is a running helper process.
type child struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    lines
	stderr bytes.Buffer // written by exec's copier; read only after done
	done   chan struct{}
	err    error // cmd.Wait's result, set before done is closed
}

// startHelper starts a helper in role on the store spec. It is killed, if
// still running, when the test ends.
func startHelper(ctx context.Context, t *testing.T, spec, role string, args ...string) *child {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{name: role + " " + strings.Join(args, " "), done: make(chan struct{})}
	c.out.changed = make(chan struct{}, 1)
	c.cmd = exec.CommandContext(ctx, exe, "-test.run=^TestProcessHelper$", "-test.count=1")
	c.cmd.Env = append(os.Environ(), helperRoleEnv+"="+role, helperStoreEnv+"="+spec, helperArgEnv+"="+strings.Join(args, " "))
	// Under -race a process sleeps 1 s at exit by default, for late race
	// reports; the helpers are done when they exit.
	if gorace := os.Getenv("GORACE"); !strings.Contains(gorace, "atexit_sleep_ms") {
		c.cmd.Env = append(c.cmd.Env, strings.TrimSpace("GORACE="+gorace+" atexit_sleep_ms=0"))
	}
	c.cmd.Stdout = &c.out
	c.cmd.Stderr = &c.stderr
	c.cmd.WaitDelay = 5 * time.Second
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		c.cmd.Process.Kill()
		<-c.done
	})
	return c
}

// wait waits for the helper to exit and returns an error unless it exited 0.
func (c *child) wait() error {
	<-c.done
	if c.err != nil {
		return fmt.Errorf("helper %q: %v; stderr:\n%s", c.name, c.err, c.stderr.Bytes())
	}
	return nil
}

// waitLine waits until the helper has printed line; it fails if the
// helper exits first or ctx ends.
func (c *child) waitLine(ctx context.Context, line string) error {
	for {
		for _, l := range c.out.lines() {
			if l == line {
				return nil
			}
		}
		select {
		case <-c.out.changed:
		case <-c.done:
			if err := c.wait(); err != nil {
				return err
			}
			return fmt.Errorf("helper %q exited without printing %q", c.name, line)
		case <-ctx.Done():
			return fmt.Errorf("helper %q: waiting for %q: %w", c.name, line, ctx.Err())
		}
	}
}

// kill ends the helper with SIGKILL and waits until it is gone.
func (c *child) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-c.done
}

// lines collects a helper's stdout and signals each write.
type lines struct {
	mu      sync.Mutex // protects buf
	buf     bytes.Buffer
	changed chan struct{} // capacity 1; a value after each write
}

func (p *lines) Write(b []byte) (int, error) {
	p.mu.Lock()
	p.buf.Write(b)
	p.mu.Unlock()
	select {
	case p.changed <- struct{}{}:
	default:
	}
	return len(b), nil
}

// lines returns the complete lines written so far.
func (p *lines) lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.buf.String()
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return strings.Split(s[:i], "\n")
	}
	return nil
}

// procStore is a store shared with helper processes.
type procStore struct {
	store cachekit.Store
	spec  string // for openHelperStore
}

// eachProcStore runs f in parallel subtests on a disk store and a redis
// store (skipped without a server) that helpers can open too.
func eachProcStore(t *testing.T, f func(t *testing.T, ctx context.Context, ps procStore)) {
	t.Helper()
	for _, tc := range []struct {
		name string
		open func(t *testing.T) procStore
	}{
		{"disk", func(t *testing.T) procStore {
			dir := t.TempDir()
			return procStore{newDisk(t, dir, nil), "disk " + dir}
		}},
		{"redis", func(t *testing.T) procStore {
			s := newRedis(t, "")
			return procStore{s, "redis " + testserver.Redis(t) + " " + s.Prefix()}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ps := tc.open(t)
			ctx, cancel := context.WithTimeout(t.Context(), procTimeout)
			defer cancel()
			f(t, ctx, ps)
		})
	}
}

// startTogether starts n helpers in role with args and lets them begin
// their work at the same time, once all are ready.
func startTogether(ctx context.Context, t *testing.T, spec string, n int, role string, args func(i int) []string) []*child {
	t.Helper()
	children := make([]*child, n)
	for i := range children {
		children[i] = startHelper(ctx, t, spec, role, args(i)...)
	}
	for _, c := range children {
		if err := c.waitLine(ctx, "ready"); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range children {
		if _, err := io.WriteString(c.stdin, "go\n"); err != nil {
			t.Fatal(err)
		}
	}
	return children
}

// TestProcessLockCounter has 4 processes increment one counter with a
// non-atomic Get, parse, Set under the Lock: no increment is lost.
func TestProcessLockCounter(t *testing.T) {
	t.Parallel()
	eachProcStore(t, func(t *testing.T, ctx context.Context, ps procStore) {
		const procs, each = 4, 40
		children := startTogether(ctx, t, ps.spec, procs, "lock-incr", func(int) []string { return []string{strconv.Itoa(each)} })
		for _, c := range children {
			if err := c.wait(); err != nil {
				t.Fatal(err)
			}
		}
		if got, want := counter(t, ctx, ps.store, "counter"), procs*each; got != want {
			t.Errorf("counter = %d, want %d", got, want)
		}
	})
}

// TestProcessLockHolder checks that another process cannot release a
// held lock, and takes it once the holder released it.
func TestProcessLockHolder(t *testing.T) {
	t.Parallel()
	eachProcStore(t, func(t *testing.T, ctx context.Context, ps procStore) {
		c := startHelper(ctx, t, ps.spec, "hold", "30000")
		if err := c.waitLine(ctx, "held"); err != nil {
			t.Fatal(err)
		}
		l, err := lock.NewLock(ps.store, "held", lock.LockOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Release(ctx); !errors.Is(err, lock.ErrNotHeld) {
			t.Errorf("Release by a non-owner: %v, want ErrNotHeld", err)
		}
		if ok, err := l.TryAcquire(ctx); err != nil || ok {
			t.Fatalf("TryAcquire while the helper holds = %v, %v; want false", ok, err)
		}
		c.stdin.Close() // the helper releases and exits 0 if its Release succeeded
		if err := l.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
		if err := c.wait(); err != nil {
			t.Fatal(err)
		}
		if err := l.Release(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// TestProcessLockKilled kills a holder with SIGKILL: its lock becomes
// available once its expiry has passed, not before.
func TestProcessLockKilled(t *testing.T) {
	t.Parallel()
	eachProcStore(t, func(t *testing.T, ctx context.Context, ps procStore) {
		const expiry = 2 * time.Second
		start := time.Now() // the helper's lease starts after this
		c := startHelper(ctx, t, ps.spec, "hold", strconv.Itoa(int(expiry/time.Millisecond)))
		if err := c.waitLine(ctx, "held"); err != nil {
			t.Fatal(err)
		}
		held := time.Now() // and before this
		c.kill(t)
		l, err := lock.NewLock(ps.store, "held", lock.LockOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := l.TryAcquire(ctx); err != nil || ok {
			t.Fatalf("TryAcquire right after the kill = %v, %v; want false", ok, err)
		}
		if err := l.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
		// Redis keeps TTLs in whole milliseconds.
		if d := time.Since(start); d < expiry-5*time.Millisecond {
			t.Errorf("Acquire succeeded %v after the helper started, before the %v expiry", d, expiry)
		}
		if d := time.Since(held); d > expiry+5*time.Second {
			t.Errorf("Acquire succeeded %v after the helper held the lock, want about %v", d, expiry)
		}
	})
}

// TestProcessSemaphore has 3 processes take turns on a semaphore of 2
// slots; each counts the holders, atomically, after acquiring.
func TestProcessSemaphore(t *testing.T) {
	t.Parallel()
	eachProcStore(t, func(t *testing.T, ctx context.Context, ps procStore) {
		const limit, procs, rounds = 2, 3, 15
		if err := ps.store.Set(ctx, "active", []byte("0"), 0); err != nil {
			t.Fatal(err)
		}
		children := startTogether(ctx, t, ps.spec, procs, "sem", func(int) []string {
			return []string{strconv.Itoa(limit), strconv.Itoa(rounds)}
		})
		for _, c := range children {
			if err := c.wait(); err != nil {
				t.Fatal(err)
			}
			got := c.out.lines()[1:] // after "ready"
			if len(got) != rounds {
				t.Errorf("helper %q printed %d counts, want %d", c.name, len(got), rounds)
			}
			for _, l := range got {
				if n, err := strconv.Atoi(l); err != nil || n < 1 || n > limit {
					t.Errorf("helper %q saw %q holders, want 1..%d", c.name, l, limit)
				}
			}
		}
	})
}

// TestProcessSemaphoreKilled kills a process holding the only slot: the
// slot comes back after the expiry.
func TestProcessSemaphoreKilled(t *testing.T) {
	t.Parallel()
	eachProcStore(t, func(t *testing.T, ctx context.Context, ps procStore) {
		const expiry = 1500 * time.Millisecond
		start := time.Now()
		c := startHelper(ctx, t, ps.spec, "sem-hold", "1", strconv.Itoa(int(expiry/time.Millisecond)))
		if err := c.waitLine(ctx, "held"); err != nil {
			t.Fatal(err)
		}
		held := time.Now()
		c.kill(t)
		sem, err := lock.NewSemaphore(ps.store, "sem", lock.SemaphoreOptions{Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := sem.TryAcquire(ctx); err != nil || ok {
			t.Fatalf("TryAcquire right after the kill = %v, %v; want false", ok, err)
		}
		if err := sem.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < expiry-5*time.Millisecond {
			t.Errorf("Acquire succeeded %v after the helper started, before the %v expiry", d, expiry)
		}
		if d := time.Since(held); d > expiry+5*time.Second {
			t.Errorf("Acquire succeeded %v after the helper held the slot, want about %v", d, expiry)
		}
	})
}

// TestProcessAverager has 3 processes add disjoint ranges of integers to
// one Averager: the mean is exact.
func TestProcessAverager(t *testing.T) {
	t.Parallel()
	eachProcStore(t, func(t *testing.T, ctx context.Context, ps procStore) {
		const procs, each = 3, 30
		children := startTogether(ctx, t, ps.spec, procs, "avg-add", func(i int) []string {
			return []string{strconv.Itoa(i * each), strconv.Itoa(each)}
		})
		for _, c := range children {
			if err := c.wait(); err != nil {
				t.Fatal(err)
			}
		}
		a, err := lock.NewAverager(ps.store, "avg", lock.AveragerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		const n = procs * each
		mean, count, err := a.Mean(ctx)
		if want := float64(n-1) / 2; err != nil || mean != want || count != n {
			t.Errorf("Mean = %v, %d, %v; want %v, %d", mean, count, err, want, n)
		}
	})
}
