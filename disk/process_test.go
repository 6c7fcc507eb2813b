package disk

// Tests with several real processes on one cache directory. The test binary
// re-executes itself as a helper: -test.run=^TestProcessHelper$ with the role
// in CACHEKIT_DISK_HELPER, the directory in CACHEKIT_DISK_HELPER_DIR and the
// role's arguments (space-separated) in CACHEKIT_DISK_HELPER_ARG. A helper
// speaks in lines on stdout, may wait for its stdin, and exits 0, or 1 with
// the reason on stderr. The same binary works under -race: a race in a helper
// makes it exit non-zero with the report on stderr.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cachekit/cachekit"
)

// The helper protocol's environment variables.
const (
	procRoleEnv = "CACHEKIT_DISK_HELPER"
	procDirEnv  = "CACHEKIT_DISK_HELPER_DIR"
	procArgEnv  = "CACHEKIT_DISK_HELPER_ARG"
)

// procTimeout bounds each multi-process test, helpers included.
const procTimeout = 60 * time.Second

// TestProcessHelper is not a test: it is the body of the helper processes
// the other TestProcess and TestCrash tests start. Run directly, it skips.
func TestProcessHelper(t *testing.T) {
	role := os.Getenv(procRoleEnv)
	if role == "" {
		t.Skip("helper process body, started by the other TestProcess/TestCrash tests")
	}
	// Helpers outlive nothing: a parent that died leaves no helper running
	// past the tests' own bound.
	ctx, cancel := context.WithTimeout(context.Background(), procTimeout)
	err := procHelper(ctx, role, os.Getenv(procDirEnv), strings.Fields(os.Getenv(procArgEnv)))
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "helper %s: %v\n", role, err)
		os.Exit(1)
	}
	// Exit here so that the testing package prints nothing after our lines.
	os.Exit(0)
}

// procHelper runs one helper role on the cache in dir.
func procHelper(ctx context.Context, role, dir string, args []string) error {
	if role == "crash-writer" { // opens the store itself
		return crashWriter(ctx, dir, args)
	}
	s, err := New(ctx, Options{Dir: dir})
	if err != nil {
		return err
	}
	err = procRole(ctx, s, role, args)
	return errors.Join(err, s.Close())
}

func procRole(ctx context.Context, s *Store, role string, args []string) error {
	switch role {
	case "incr": // args: n. IncrBy("counter", 1) n times, printing each result.
		n, err := strconv.Atoi(args[0])
		if err != nil {
			return err
		}
		for range n {
			v, err := s.IncrBy(ctx, "counter", 1)
			if err != nil {
				return err
			}
			fmt.Println(v)
		}
		return nil

	case "set-many": // args: prefix n. Set n keys with procKeySize values.
		n, err := strconv.Atoi(args[1])
		if err != nil {
			return err
		}
		for i := range n {
			key := fmt.Sprintf("%s-%d", args[0], i)
			if err := s.Set(ctx, key, procValue(key, procKeySize(i)), 0); err != nil {
				return err
			}
		}
		return nil

	case "set": // args: key:size... Set them, print "done", wait for stdin to close.
		for _, a := range args {
			key, size, err := procParseKeySize(a)
			if err != nil {
				return err
			}
			if err := s.Set(ctx, key, procValue(key, size), 0); err != nil {
				return err
			}
		}
		fmt.Println("done")
		_, err := io.Copy(io.Discard, os.Stdin)
		return err

	case "get": // args: key:size... Get them and check the values.
		for _, a := range args {
			key, size, err := procParseKeySize(a)
			if err != nil {
				return err
			}
			got, err := s.Get(ctx, key)
			if err != nil {
				return err
			}
			if want := procValue(key, size); !bytes.Equal(got, want) {
				return fmt.Errorf("get %q: got %d bytes %.20q, want %d bytes %.20q", key, len(got), got, len(want), want)
			}
		}
		return nil

	case "add": // args: id rounds. Print "ready", wait for a line, then Add("add-<r>", id) for each round.
		rounds, err := strconv.Atoi(args[1])
		if err != nil {
			return err
		}
		fmt.Println("ready")
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			return fmt.Errorf("waiting for go: %w", err)
		}
		for r := range rounds {
			ok, err := s.Add(ctx, fmt.Sprintf("add-%d", r), []byte(args[0]), 0)
			if err != nil {
				return err
			}
			fmt.Println(r, ok)
		}
		return nil
	}
	return fmt.Errorf("unknown role %q", role)
}

// procKeySize is the value size of the i-th key of a set-many helper: most
// small, one in six at least 64 KiB (a value file), a few empty.
func procKeySize(i int) int {
	switch {
	case i%6 == 0:
		return 64<<10 + i
	case i%50 == 1:
		return 0
	}
	return 10 + i%200
}

func procParseKeySize(a string) (string, int, error) {
	key, size, ok := strings.Cut(a, ":")
	n, err := strconv.Atoi(size)
	if !ok || err != nil {
		return "", 0, fmt.Errorf("bad key:size argument %q", a)
	}
	return key, n, nil
}

// procValue returns n bytes determined by name: name and "|", then bytes of
// a ChaCha8 stream seeded by name's SHA-256 (truncated to n).
func procValue(name string, n int) []byte {
	v := make([]byte, n)
	_, _ = rand.NewChaCha8(sha256.Sum256([]byte(name))).Read(v)
	copy(v, name+"|")
	return v
}

// procChild is a running helper process.
type procChild struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    procLines
	stderr bytes.Buffer // written by exec's copier; read only after done
	done   chan struct{}
	err    error // cmd.Wait's result, set before done is closed
}

// procStart starts a helper in role on dir. The helper is killed, if still
// running, when the test ends.
func procStart(ctx context.Context, t *testing.T, role, dir string, args ...string) *procChild {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c := &procChild{name: role + " " + strings.Join(args, " "), done: make(chan struct{})}
	c.out.changed = make(chan struct{}, 1)
	c.cmd = exec.CommandContext(ctx, exe, "-test.run=^TestProcessHelper$", "-test.count=1")
	c.cmd.Env = append(os.Environ(), procRoleEnv+"="+role, procDirEnv+"="+dir, procArgEnv+"="+strings.Join(args, " "))
	// Under -race, a process sleeps 1 s at exit by default (for late race
	// reports from other threads); the helpers are done when they exit.
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
func (c *procChild) wait() error {
	<-c.done
	if c.err != nil {
		return fmt.Errorf("helper %q: %v; stderr:\n%s", c.name, c.err, c.stderr.Bytes())
	}
	return nil
}

// waitLines waits until the helper has printed at least n lines, and
// returns them; it fails if the helper exits first or ctx ends.
func (c *procChild) waitLines(ctx context.Context, n int) ([]string, error) {
	for {
		if lines := c.out.lines(); len(lines) >= n {
			return lines, nil
		}
		select {
		case <-c.out.changed:
		case <-c.done:
			if lines := c.out.lines(); len(lines) >= n {
				return lines, nil
			}
			err := c.wait()
			if err == nil {
				err = fmt.Errorf("helper %q exited after %d lines, before line %d", c.name, len(c.out.lines()), n)
			}
			return nil, err
		case <-ctx.Done():
			return nil, fmt.Errorf("helper %q: waiting for line %d: %w", c.name, n, ctx.Err())
		}
	}
}

// procLines collects a helper's stdout and signals each write.
type procLines struct {
	mu      sync.Mutex // protects buf
	buf     bytes.Buffer
	changed chan struct{} // capacity 1; a value after each write
}

func (p *procLines) Write(b []byte) (int, error) {
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
func (p *procLines) lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.buf.String()
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return strings.Split(s[:i], "\n")
	}
	return nil
}

// procContext returns the context of one multi-process test.
func procContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), procTimeout)
	t.Cleanup(cancel)
	return ctx
}

// TestProcessCounter has 4 processes increment one counter 250 times each:
// the increments are atomic across processes, so the results are exactly
// 1..1000, each seen once, and the final value is 1000.
func TestProcessCounter(t *testing.T) {
	t.Parallel()
	const procs, each = 4, 250
	ctx := procContext(t)
	dir := t.TempDir()
	s := newTestStore(t, Options{Dir: dir})
	if err := s.Set(ctx, "counter", []byte("0"), 0); err != nil {
		t.Fatal(err)
	}
	children := make([]*procChild, procs)
	for i := range children {
		children[i] = procStart(ctx, t, "incr", dir, strconv.Itoa(each))
	}
	seen := make([]int, procs*each+1)
	for _, c := range children {
		if err := c.wait(); err != nil {
			t.Fatal(err)
		}
		prev := int64(0)
		for _, line := range c.out.lines() {
			v, err := strconv.ParseInt(line, 10, 64)
			if err != nil || v < 1 || v > procs*each {
				t.Fatalf("helper %q printed %q, want a result in 1..%d", c.name, line, procs*each)
			}
			if v <= prev {
				t.Errorf("helper %q: IncrBy returned %d after %d, want increasing results", c.name, v, prev)
			}
			prev = v
			seen[v]++
		}
	}
	for v, n := range seen[1:] {
		if n != 1 {
			t.Errorf("IncrBy result %d returned %d times, want once", v+1, n)
		}
	}
	got, err := s.Get(ctx, "counter")
	if err != nil {
		t.Fatal(err)
	}
	if want := strconv.Itoa(procs * each); string(got) != want {
		t.Errorf("counter = %q, want %q", got, want)
	}
}

// TestProcessDisjointSets has 4 processes each Set 300 keys of their own,
// small and in value files, and reads every one back.
func TestProcessDisjointSets(t *testing.T) {
	t.Parallel()
	const procs, each = 4, 300
	ctx := procContext(t)
	dir := t.TempDir()
	s := newTestStore(t, Options{Dir: dir})
	children := make([]*procChild, procs)
	for p := range children {
		children[p] = procStart(ctx, t, "set-many", dir, fmt.Sprintf("p%d", p), strconv.Itoa(each))
	}
	for _, c := range children {
		if err := c.wait(); err != nil {
			t.Fatal(err)
		}
	}
	files := 0
	for p := range procs {
		for i := range each {
			key := fmt.Sprintf("p%d-%d", p, i)
			got, err := s.Get(ctx, key)
			if err != nil {
				t.Errorf("Get(%q): %v", key, err)
				continue
			}
			want := procValue(key, procKeySize(i))
			if !bytes.Equal(got, want) {
				t.Errorf("Get(%q) = %d bytes %.20q, want %d bytes %.20q", key, len(got), got, len(want), want)
			}
			if len(want) >= DefaultMinFileSize {
				files++
			}
		}
	}
	if n, err := s.Len(ctx); err != nil || n != procs*each {
		t.Errorf("Len = %d, %v; want %d", n, err, procs*each)
	}
	if files == 0 {
		t.Error("no value was large enough for a value file")
	}
}

// TestProcessVisibility checks that a write is visible to another process
// as soon as Set has returned: a helper's write to the parent and to a
// second helper (while the writer still has the store open), and the
// parent's write to a helper. The values overwrite earlier ones, small with
// large and large with small, that the reader has already read.
func TestProcessVisibility(t *testing.T) {
	t.Parallel()
	ctx := procContext(t)
	dir := t.TempDir()
	s := newTestStore(t, Options{Dir: dir})

	check := func(key string, size int) {
		t.Helper()
		got, err := s.Get(ctx, key)
		if err != nil {
			t.Fatalf("parent: Get(%q): %v", key, err)
		}
		if want := procValue(key, size); !bytes.Equal(got, want) {
			t.Fatalf("parent: Get(%q) = %d bytes %.20q, want %d bytes %.20q", key, len(got), got, len(want), want)
		}
	}

	// Old values, read once by the parent so that any cache it keeps is warm.
	for _, kv := range []struct {
		key  string
		size int
	}{{"child-a", 100 << 10}, {"child-b", 7}, {"parent-a", 100 << 10}, {"parent-b", 7}} {
		if err := s.Set(ctx, kv.key, procValue("old "+kv.key, kv.size), 0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, kv.key); err != nil {
			t.Fatal(err)
		}
	}

	// A helper writes; the parent and another helper read.
	childKeys := []string{"child-a:9", "child-b:" + strconv.Itoa(80<<10)}
	writer := procStart(ctx, t, "set", dir, childKeys...)
	if _, err := writer.waitLines(ctx, 1); err != nil {
		t.Fatal(err)
	}
	check("child-a", 9)
	check("child-b", 80<<10)
	if err := procStart(ctx, t, "get", dir, childKeys...).wait(); err != nil {
		t.Errorf("reading a write of a live process: %v", err)
	}
	writer.stdin.Close()
	if err := writer.wait(); err != nil {
		t.Fatal(err)
	}

	// The parent writes; a helper reads.
	if err := s.Set(ctx, "parent-a", procValue("parent-a", 11), 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, "parent-b", procValue("parent-b", 90<<10), 0); err != nil {
		t.Fatal(err)
	}
	if err := procStart(ctx, t, "get", dir, "parent-a:11", "parent-b:"+strconv.Itoa(90<<10)).wait(); err != nil {
		t.Errorf("reading the parent's write: %v", err)
	}
}

// TestProcessAddExclusive has 4 processes race Add on the same keys, started
// together: for each key exactly one wins, and its value is the winner's.
func TestProcessAddExclusive(t *testing.T) {
	t.Parallel()
	const procs, rounds = 4, 25
	ctx := procContext(t)
	dir := t.TempDir()
	s := newTestStore(t, Options{Dir: dir})
	children := make([]*procChild, procs)
	for p := range children {
		children[p] = procStart(ctx, t, "add", dir, fmt.Sprintf("p%d", p), strconv.Itoa(rounds))
	}
	for _, c := range children {
		if _, err := c.waitLines(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range children {
		if _, err := io.WriteString(c.stdin, "go\n"); err != nil {
			t.Fatal(err)
		}
	}
	winners := make([][]string, rounds)
	for p, c := range children {
		if err := c.wait(); err != nil {
			t.Fatal(err)
		}
		lines := c.out.lines()
		if len(lines) != rounds+1 {
			t.Fatalf("helper %q printed %d lines, want %d: %q", c.name, len(lines), rounds+1, lines)
		}
		for r, line := range lines[1:] {
			switch line {
			case fmt.Sprint(r, true):
				winners[r] = append(winners[r], fmt.Sprintf("p%d", p))
			case fmt.Sprint(r, false):
			default:
				t.Fatalf("helper %q printed %q, want %q or %q", c.name, line, fmt.Sprint(r, true), fmt.Sprint(r, false))
			}
		}
	}
	for r, w := range winners {
		key := fmt.Sprintf("add-%d", r)
		if len(w) != 1 {
			t.Errorf("Add(%q): winners %q, want exactly one", key, w)
			continue
		}
		if got, err := s.Get(ctx, key); err != nil || string(got) != w[0] {
			t.Errorf("Get(%q) = %q, %v; want the winner's %q", key, got, err, w[0])
		}
	}
}

// TestProcessCloseDuringUse closes a store while 8 goroutines use it: no
// panic, Close returns nil, calls in flight succeed or fail with ErrClosed,
// and every call started after Close returned fails with ErrClosed. It
// repeats the race a few times.
func TestProcessCloseDuringUse(t *testing.T) {
	t.Parallel()
	const goroutines, rounds = 8, 5
	ctx := procContext(t)
	small, large := procValue("small", 100), procValue("large", 40<<10)
	for round := range rounds {
		s, err := New(ctx, Options{Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		var (
			closed  atomic.Bool // set once Close has returned
			warm    sync.WaitGroup
			running sync.WaitGroup
			mu      sync.Mutex // protects fails
			fails   []string
		)
		warm.Add(goroutines)
		running.Add(goroutines)
		for g := range goroutines {
			go func() {
				defer running.Done()
				after := 0 // calls started after Close returned
				for i := 0; after < 10; i++ {
					if i == 10 {
						warm.Done()
					}
					key := fmt.Sprint("k", (g+i)%16)
					wasClosed := closed.Load()
					var (
						op  string
						err error
					)
					switch i % 3 {
					case 0:
						op = "Get"
						_, err = s.Get(ctx, key)
					case 1:
						v := small
						if i%9 == 1 {
							v = large
						}
						op, err = "Set", s.Set(ctx, key, v, 0)
					case 2:
						op = "Delete"
						_, err = s.Delete(ctx, key)
					}
					bad := (wasClosed && !errors.Is(err, cachekit.ErrClosed)) ||
						(err != nil && !errors.Is(err, cachekit.ErrClosed) && !errors.Is(err, cachekit.ErrMiss))
					if bad {
						mu.Lock()
						fails = append(fails, fmt.Sprintf("%s(%q) (started after Close returned: %v): got error %v", op, key, wasClosed, err))
						mu.Unlock()
					}
					if wasClosed {
						after++
					}
				}
			}()
		}
		warm.Wait()
		if err := s.Close(); err != nil {
			t.Errorf("round %d: Close during use: %v", round, err)
		}
		closed.Store(true)
		running.Wait()
		if err := s.Close(); err != nil {
			t.Errorf("round %d: second Close: got %v, want nil", round, err)
		}
		for _, f := range fails {
			t.Errorf("round %d: %s", round, f)
		}
		if len(fails) > 0 || t.Failed() {
			return
		}
	}
}

// TestProcessCloseRace closes a store while 64 goroutines enter and leave it
// as fast as they can (Gets on a cancelled context), with more Ps than
// cores so that the OS preempts goroutines at any instruction, also between
// the steps by which a call enters the store. Every call must fail with the
// context's error or, once Close has returned, with ErrClosed.
//
// It finds, under -race, a call entering the store after Close has started
// waiting for the calls in progress (sync.WaitGroup.Add racing with Wait);
// without -race the same interleaving can make Close panic with "sync:
// WaitGroup is reused before previous Wait has returned".
func TestProcessCloseRace(t *testing.T) {
	// Not parallel: GOMAXPROCS is global.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(32))
	const goroutines = 64
	ctx := procContext(t)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	stop := time.Now().Add(3 * time.Second)
	for round := 0; round < 20 && time.Now().Before(stop) && !t.Failed(); round++ {
		s, err := New(ctx, Options{Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		var (
			closed        atomic.Bool // set once Close has returned
			warm, running sync.WaitGroup
			bad           atomic.Pointer[error]
		)
		warm.Add(goroutines)
		running.Add(goroutines)
		for range goroutines {
			go func() {
				defer running.Done()
				for i := 0; ; i++ {
					if i == 10 {
						warm.Done()
					}
					wasClosed := closed.Load()
					_, err := s.Get(cancelled, "k")
					if !errors.Is(err, cachekit.ErrClosed) && (wasClosed || !errors.Is(err, context.Canceled)) {
						bad.CompareAndSwap(nil, &err)
					}
					if wasClosed && i > 10 {
						return
					}
				}
			}()
		}
		warm.Wait()
		if err := s.Close(); err != nil {
			t.Errorf("round %d: Close: %v", round, err)
		}
		closed.Store(true)
		running.Wait()
		if err := bad.Load(); err != nil {
			t.Errorf("round %d: Get on a cancelled context around Close: got %v, want context.Canceled or ErrClosed", round, *err)
		}
	}
}
