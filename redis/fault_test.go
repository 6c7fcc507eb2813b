package redis_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/internal/testserver"
	"github.com/cachekit/cachekit/redis"
)

// ours counts the goroutines running code of this package or of rueidis.
func ours() (int, string) {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	var list []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "github.com/redis/rueidis") || strings.Contains(g, "cachekit/cachekit/redis.") {
			n++
			list = append(list, g)
		}
	}
	return n, strings.Join(list, "\n\n")
}

// noLeak records the goroutines of this package and rueidis, and at the
// end of t checks that no more are left (after giving closed connections a
// few seconds to wind down). Tests using it must not be parallel.
func noLeak(t *testing.T) {
	t.Helper()
	before, _ := ours()
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for {
			n, stacks := ours()
			if n <= before {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("%d goroutines of redis/rueidis left, %d before:\n%s", n, before, stacks)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// wantUnavailable checks err is an *OpError of the redis backend wrapping
// ErrUnavailable.
func wantUnavailable(t *testing.T, what string, err error) {
	t.Helper()
	var oe *cachekit.OpError
	if !errors.As(err, &oe) || oe.Backend != "redis" {
		t.Errorf("%s: got %T %v, want a *cachekit.OpError of backend redis", what, err, err)
	}
	if !errors.Is(err, cachekit.ErrUnavailable) {
		t.Errorf("%s: got %v, want ErrUnavailable", what, err)
	}
}

// TestServerKilled: with the server killed, every operation fails fast
// with ErrUnavailable; after a restart the same Store works again.
// Not parallel: it checks for leaked goroutines.
func TestServerKilled(t *testing.T) {
	noLeak(t)
	p := testserver.StartRedis(t)
	ctx := context.Background()
	const timeout = 500 * time.Millisecond
	s := openPrivate(t, []string{p.Addr}, redis.Options{Timeout: timeout, DialTimeout: time.Second})
	if err := s.Set(ctx, "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}

	// A reader and a writer run while the server dies.
	stopLoad := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var slowest time.Duration
	var loadErrs int
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stopLoad:
					return
				default:
				}
				start := time.Now()
				var err error
				if w == 0 {
					_, err = s.Get(ctx, "k")
				} else {
					err = s.Set(ctx, "k", []byte(fmt.Sprint(i)), 0)
				}
				d := time.Since(start)
				mu.Lock()
				slowest = max(slowest, d)
				if err != nil && !errors.Is(err, cachekit.ErrMiss) {
					loadErrs++
					if !errors.Is(err, cachekit.ErrUnavailable) {
						t.Errorf("during the kill: %v, want ErrUnavailable", err)
					}
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	p.Kill()
	time.Sleep(300 * time.Millisecond)

	for name, call := range map[string]func() error{
		"Get":    func() error { _, err := s.Get(ctx, "k"); return err },
		"Set":    func() error { return s.Set(ctx, "k", []byte("v"), 0) },
		"Delete": func() error { _, err := s.Delete(ctx, "k"); return err },
		"IncrBy": func() error { _, err := s.IncrBy(ctx, "n", 1); return err },
		"Clear":  func() error { return s.Clear(ctx) },
	} {
		start := time.Now()
		err := call()
		wantUnavailable(t, name+" with the server killed", err)
		if d := time.Since(start); d > timeout+time.Second {
			t.Errorf("%s with the server killed took %v (Timeout %v)", name, d, timeout)
		}
	}
	close(stopLoad)
	wg.Wait()
	if loadErrs == 0 {
		t.Error("no operation failed while the server was down")
	}
	if slowest > timeout+time.Second {
		t.Errorf("slowest operation during the kill: %v (Timeout %v)", slowest, timeout)
	}

	p.Start()
	eventually(t, 10*time.Second, "the Store did not reconnect after the restart", func() bool {
		return s.Set(ctx, "k", []byte("back"), 0) == nil
	})
	if v, err := s.Get(ctx, "k"); err != nil || string(v) != "back" {
		t.Fatalf("Get after the restart = %q, %v", v, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestServerPaused: a server that stops answering (SIGSTOP) gives
// ErrUnavailable within Options.Timeout or the context's deadline, never a
// hang; after SIGCONT the Store works again, and nothing leaks.
func TestServerPaused(t *testing.T) {
	noLeak(t)
	p := testserver.StartRedis(t)
	ctx := context.Background()
	const timeout = 300 * time.Millisecond
	s := openPrivate(t, []string{p.Addr}, redis.Options{Timeout: timeout, DialTimeout: time.Second})
	r, _ := subscribe(t, s)
	if err := s.Set(ctx, "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	p.Stop()
	resumed := false
	defer func() {
		if !resumed {
			p.Resume()
		}
	}()

	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			var err error
			switch i % 4 {
			case 0:
				_, err = s.Get(ctx, "k")
			case 1:
				err = s.Set(ctx, "k", []byte("x"), 0)
			case 2:
				_, err = s.GetMany(ctx, []string{"k", "j"})
			case 3:
				_, _, err = s.Lease(ctx, "lease", time.Second)
			}
			wantUnavailable(t, "an operation on a paused server", err)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("operation on a paused server: %v, want it to wrap context.DeadlineExceeded", err)
			}
			if d := time.Since(start); d > timeout+time.Second {
				t.Errorf("operation on a paused server took %v (Timeout %v)", d, timeout)
			}
		}()
	}
	wg.Wait()

	// A shorter deadline of the caller wins.
	dctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	start := time.Now()
	_, err := s.Get(dctx, "k")
	cancel()
	wantUnavailable(t, "Get with a 50 ms deadline", err)
	if d := time.Since(start); d > 50*time.Millisecond+time.Second {
		t.Errorf("Get with a 50 ms deadline took %v", d)
	}
	// A cancellation is the caller's, not the server's.
	cctx, cancel := context.WithCancel(ctx)
	go func() { time.Sleep(30 * time.Millisecond); cancel() }()
	if _, err := s.Get(cctx, "k"); !errors.Is(err, context.Canceled) {
		t.Errorf("Get cancelled while waiting: got %v, want context.Canceled", err)
	}

	eventually(t, 5*time.Second, "Watermark not zero with the server paused", func() bool { return s.Watermark().IsZero() })

	p.Resume()
	resumed = true
	// A write that failed while the server was paused may still land once
	// it runs again (ErrUnavailable leaves it unknown whether it took
	// effect): the paused server reads it from the old connection's buffer,
	// possibly after a write made on a new connection. So recovery is: a
	// Set, then a Get that returns it.
	eventually(t, 10*time.Second, "the Store did not recover after SIGCONT", func() bool {
		if s.Set(ctx, "k", []byte("back"), 0) != nil {
			return false
		}
		v, err := s.Get(ctx, "k")
		return err == nil && string(v) == "back"
	})
	eventually(t, 10*time.Second, "Watermark did not recover after SIGCONT", func() bool { return !s.Watermark().IsZero() })
	n := r.count("k")
	if err := s.Set(ctx, "k", []byte("again"), 0); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "no invalidation after SIGCONT", func() bool { return r.count("k") > n })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, cachekit.ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
}

// TestCloseStopsTracking: Close ends the tracking goroutines and their
// connections. Not parallel: it checks for leaked goroutines.
func TestCloseStopsTracking(t *testing.T) {
	noLeak(t)
	p := testserver.StartRedis(t)
	s, err := redis.New(context.Background(), redis.Options{Addrs: []string{p.Addr}, Prefix: testPrefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	subscribe(t, s)
	subscribe(t, s)
	if len(trackingClients(t, p.Addr)) != 1 {
		t.Fatal("want one tracking connection")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	eventually(t, 5*time.Second, "tracking connection still open after Close", func() bool {
		return len(trackingClients(t, p.Addr)) == 0
	})
}

// With ContextTimeoutOnly the caller's deadline alone bounds a call to a
// paused server: a deadline later than Options.Timeout is waited for in
// full (without the option the call would fail after Timeout).
func TestContextTimeoutOnly(t *testing.T) {
	t.Parallel()
	p := testserver.StartRedis(t)
	const timeout, deadline = 200 * time.Millisecond, 1200 * time.Millisecond
	for _, only := range []bool{false, true} {
		s := openPrivate(t, []string{p.Addr}, redis.Options{ContextTimeoutOnly: only, Timeout: timeout})
		if err := s.Set(context.Background(), "k", []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
		p.Stop()
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		start := time.Now()
		_, err := s.Get(ctx, "k")
		d := time.Since(start)
		cancel()
		p.Resume()
		if !errors.Is(err, cachekit.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("ContextTimeoutOnly=%v: Get on a paused server: %v, want ErrUnavailable and DeadlineExceeded", only, err)
		}
		switch {
		case only && (d < deadline-100*time.Millisecond || d > deadline+time.Second):
			t.Fatalf("ContextTimeoutOnly: failed after %v, want the caller's %v", d, deadline)
		case !only && d > deadline-200*time.Millisecond:
			t.Fatalf("default: failed after %v, want Options.Timeout %v to cut it short", d, timeout)
		}
	}
}
