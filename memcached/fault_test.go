package memcached_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/internal/testserver"
	"github.com/cachekit/cachekit/memcached"
)

// timed runs f and fails t if it takes longer than limit.
func timed(t *testing.T, what string, limit time.Duration, f func() error) error {
	t.Helper()
	start := time.Now()
	err := f()
	if d := time.Since(start); d > limit {
		t.Errorf("%s took %v, want under %v (err %v)", what, d, limit, err)
	}
	return err
}

// waitPaused waits until the server on addr stops answering: SIGSTOP takes
// effect asynchronously, and a request can still be served just after
// Proc.Stop returns.
func waitPaused(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			t.Fatalf("dial the paused server: %v", err)
		}
		c.SetDeadline(time.Now().Add(200 * time.Millisecond))
		_, err = c.Write([]byte("version\r\n"))
		if err == nil {
			_, err = bufio.NewReader(c).ReadString('\n')
		}
		c.Close()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("server on %s still answers 10 s after SIGSTOP (%v)", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPoolNodeDown kills one server of a two-server pool: keys on the live
// server keep working, keys on the dead one fail fast with ErrUnavailable,
// and after a restart the same Store uses it again without an error, even
// when its idle connections all died with the old process.
func TestPoolNodeDown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p1, p2 := testserver.StartMemcached(t), testserver.StartMemcached(t)
	// A long timeout, so that "fast" below means "refused", not "timed out".
	s := newStore(t, []string{p1.Addr, p2.Addr}, memcached.Options{Timeout: 3 * time.Second})
	const n = 40
	items := map[string][]byte{}
	for i := range n {
		items["k"+strconv.Itoa(i)] = []byte("v" + strconv.Itoa(i))
	}
	if err := s.SetMany(ctx, items, 0); err != nil {
		t.Fatal(err)
	}

	p2.Kill()
	var live, dead []string
	for k, v := range items {
		err := timed(t, "Get on a pool with a dead server", time.Second, func() error {
			got, err := s.Get(ctx, k)
			if err == nil && string(got) != string(v) {
				t.Errorf("Get(%s) = %q, want %q", k, got, v)
			}
			return err
		})
		switch {
		case err == nil:
			live = append(live, k)
		case errors.Is(err, cachekit.ErrUnavailable):
			dead = append(dead, k)
		default:
			t.Fatalf("Get(%s) with its server dead: %v; want ErrUnavailable", k, err)
		}
	}
	if len(live) == 0 || len(dead) == 0 {
		t.Fatalf("%d keys live, %d on the dead server; want both", len(live), len(dead))
	}
	for _, k := range live {
		if err := s.Set(ctx, k, []byte("new"), 0); err != nil {
			t.Fatalf("Set(%s) on the live server: %v", k, err)
		}
		if n, err := s.IncrBy(ctx, k, 1); !errors.Is(err, cachekit.ErrNotInteger) {
			t.Fatalf("IncrBy(%s) on the live server = %d, %v; want ErrNotInteger", k, n, err)
		}
	}
	for _, k := range dead {
		err := timed(t, "Set on the dead server", time.Second, func() error { return s.Set(ctx, k, []byte("x"), 0) })
		if !errors.Is(err, cachekit.ErrUnavailable) {
			t.Fatalf("Set(%s) on the dead server: %v; want ErrUnavailable", k, err)
		}
	}
	if err := s.Clear(ctx); !errors.Is(err, cachekit.ErrUnavailable) {
		t.Fatalf("Clear with a dead server: %v; want ErrUnavailable", err)
	}
	if _, err := s.GetMany(ctx, append(live[:1:1], dead[0])); !errors.Is(err, cachekit.ErrUnavailable) {
		t.Fatalf("GetMany over both servers: %v; want ErrUnavailable", err)
	}
	var oe *cachekit.OpError
	if err := s.Set(ctx, dead[0], []byte("x"), 0); !errors.As(err, &oe) || oe.Backend != "memcached" || oe.Op != "set" || oe.Key != dead[0] {
		t.Fatalf("error %#v: want a *cachekit.OpError naming the backend, the operation and the key", err)
	}

	p2.Start() // empty: the keys it held are gone
	for _, k := range dead {
		if _, err := s.Get(ctx, k); !errors.Is(err, cachekit.ErrMiss) {
			t.Fatalf("Get(%s) after the restart: %v; want ErrMiss", k, err)
		}
	}
	// Fill the pool of idle connections to p2, restart it with no call in
	// between, and use it: every idle connection is dead, none may surface.
	deadItems := map[string][]byte{}
	for _, k := range dead {
		deadItems[k] = []byte("again")
	}
	if err := s.SetMany(ctx, deadItems, 0); err != nil {
		t.Fatalf("SetMany after the restart: %v", err)
	}
	p2.Restart()
	if err := s.SetMany(ctx, deadItems, 0); err != nil {
		t.Fatalf("SetMany just after a restart: %v", err)
	}
	for _, k := range dead {
		if v, err := s.Get(ctx, k); err != nil || string(v) != "again" {
			t.Fatalf("Get(%s) after the second restart = %q, %v; want again", k, v, err)
		}
	}
	if err := s.Clear(ctx); err != nil {
		t.Fatalf("Clear with both servers up: %v", err)
	}
}

// TestPausedServer pauses a server (SIGSTOP: connections stay open, nothing
// answers): every call returns within its deadline with ErrUnavailable, a
// cancelled call returns context.Canceled, Close does not hang, and the
// store works again once the server resumes.
func TestPausedServer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := testserver.StartMemcached(t)
	const timeout = 300 * time.Millisecond
	s := newStore(t, []string{p.Addr}, memcached.Options{Timeout: timeout})
	if err := s.Set(ctx, "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, "n", []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	p.Stop()
	t.Cleanup(p.Resume)
	waitPaused(t, p.Addr)

	calls := map[string]func(context.Context) error{
		"Get":      func(ctx context.Context) error { _, err := s.Get(ctx, "k"); return err },
		"Set":      func(ctx context.Context) error { return s.Set(ctx, "k", []byte("v2"), 0) },
		"Delete":   func(ctx context.Context) error { _, err := s.Delete(ctx, "k"); return err },
		"Add":      func(ctx context.Context) error { _, err := s.Add(ctx, "a", []byte("v"), 0); return err },
		"Touch":    func(ctx context.Context) error { _, err := s.Touch(ctx, "k", time.Hour); return err },
		"IncrBy":   func(ctx context.Context) error { _, err := s.IncrBy(ctx, "n", 1); return err },
		"GetMany":  func(ctx context.Context) error { _, err := s.GetMany(ctx, []string{"k", "n"}); return err },
		"SetMany":  func(ctx context.Context) error { return s.SetMany(ctx, map[string][]byte{"x": nil, "y": nil}, 0) },
		"Clear":    func(ctx context.Context) error { return s.Clear(ctx) },
		"Lease":    func(ctx context.Context) error { _, _, err := s.Lease(ctx, "l", time.Minute); return err },
		"GetExpry": func(ctx context.Context) error { _, _, err := s.GetWithExpiry(ctx, "k"); return err },
	}
	var wg sync.WaitGroup
	for name, call := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := timed(t, name+" on a paused server", timeout+2*time.Second, func() error { return call(ctx) })
			// The cause is the client's network timeout or the store's
			// deadline, whichever fires first (both are Options.Timeout).
			if !errors.Is(err, cachekit.ErrUnavailable) {
				t.Errorf("%s on a paused server: %v; want ErrUnavailable", name, err)
			}
		}()
	}
	wg.Wait()

	// The caller's deadline, shorter than the store's timeout, wins.
	dctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	err := timed(t, "Get with a 50 ms deadline", 50*time.Millisecond+time.Second, func() error { _, err := s.Get(dctx, "k"); return err })
	cancel()
	if !errors.Is(err, cachekit.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get past the caller's deadline: %v; want ErrUnavailable and DeadlineExceeded", err)
	}
	// A caller's cancellation is not the server's fault.
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(50*time.Millisecond, cancel)
	err = timed(t, "Get cancelled after 50 ms", time.Second, func() error { _, err := s.Get(cctx, "k"); return err })
	if !errors.Is(err, context.Canceled) || errors.Is(err, cachekit.ErrUnavailable) {
		t.Fatalf("Get cancelled by the caller: %v; want context.Canceled only", err)
	}

	// Close waits for calls in flight, which end within the timeout.
	s2, err := memcached.New(ctx, memcached.Options{Addrs: []string{p.Addr}, Prefix: s.Prefix(), Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	go func() {
		close(started)
		s2.Get(ctx, "k")
	}()
	<-started
	time.Sleep(20 * time.Millisecond)
	if err := timed(t, "Close with a call in flight to a paused server", timeout+2*time.Second, s2.Close); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := s2.Get(ctx, "k"); !errors.Is(err, cachekit.ErrClosed) {
		t.Fatalf("Get after Close: %v; want ErrClosed", err)
	}

	p.Resume()
	deadline := time.Now().Add(5 * time.Second)
	for {
		v, err := s.Get(ctx, "k")
		if err == nil {
			if string(v) != "v" && string(v) != "v2" {
				t.Fatalf("Get after resume = %q", v)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Get after resume: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := s.Set(ctx, "k", []byte("v3"), 0); err != nil {
		t.Fatalf("Set after resume: %v", err)
	}
	if v, err := s.Get(ctx, "k"); err != nil || string(v) != "v3" {
		t.Fatalf("Get after resume = %q, %v; want v3", v, err)
	}
}
