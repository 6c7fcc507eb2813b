package memory

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cachekit/cachekit"
)

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestGetOrLoadSingleFlight(t *testing.T) {
	t.Parallel()
	c := newCache(t, Options[string, *int]{Stats: true})
	var runs atomic.Int32
	release := make(chan struct{})
	load := func(ctx context.Context, k string) (*int, error) {
		runs.Add(1)
		<-release
		v := 42
		return &v, nil
	}
	const n = 20
	results := make([]*int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := c.GetOrLoad(context.Background(), "k", load)
			if err != nil {
				t.Errorf("GetOrLoad: %v", err)
			}
			results[i] = v
		}()
	}
	waitFor(t, "the load to start", func() bool { return runs.Load() > 0 })
	time.Sleep(10 * time.Millisecond) // let the other callers join (not needed for correctness)
	close(release)
	wg.Wait()
	if got := runs.Load(); got != 1 {
		t.Fatalf("loader ran %d times, want 1", got)
	}
	for i, v := range results {
		if v == nil || v != results[0] || *v != 42 {
			t.Fatalf("caller %d got %v, want the shared pointer to 42", i, v)
		}
	}
	if v, ok := c.Get("k"); !ok || v != results[0] {
		t.Fatal("the loaded value was not cached")
	}
	if s := c.Stats(); s.Loads != 1 || s.LoadErrors != 0 {
		t.Fatalf("Stats = %+v, want 1 load, 0 errors", s)
	}
}

func TestGetOrLoadErrorNotCached(t *testing.T) {
	t.Parallel()
	c := newCache(t, Options[string, int]{Stats: true})
	boom := errors.New("boom")
	_, err := c.GetOrLoad(context.Background(), "k", func(context.Context, string) (int, error) { return 0, boom })
	if !errors.Is(err, boom) {
		t.Fatalf("GetOrLoad: %v, want boom", err)
	}
	if _, ok := c.Get("k"); ok {
		t.Fatal("a failed load was cached")
	}
	v, err := c.GetOrLoad(context.Background(), "k", func(context.Context, string) (int, error) { return 7, nil })
	if err != nil || v != 7 {
		t.Fatalf("GetOrLoad after a failure = %d, %v; want 7, nil", v, err)
	}
	if s := c.Stats(); s.Loads != 2 || s.LoadErrors != 1 {
		t.Fatalf("Stats = %+v, want 2 loads, 1 error", s)
	}
}

func TestGetOrLoadDefaultTTL(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	c := newCache(t, Options[string, int]{TTL: time.Minute, Clock: clock})
	c.GetOrLoad(context.Background(), "k", func(context.Context, string) (int, error) { return 1, nil })
	e, ok := c.GetEntry("k")
	if !ok || !e.Expires.Equal(clock.Now().Add(time.Minute)) {
		t.Fatalf("loaded entry = %+v, %v; want expiry in one minute", e, ok)
	}
}

func TestGetOrLoadPanic(t *testing.T) {
	t.Parallel()
	c := newCache(t, Options[string, int]{})
	started := make(chan struct{})
	var once sync.Once
	release := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, 5)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = c.GetOrLoad(context.Background(), "k", func(context.Context, string) (int, error) {
				once.Do(func() { close(started) })
				<-release
				panic("loader exploded")
			})
		}()
	}
	<-started
	time.Sleep(10 * time.Millisecond) // let the other callers join (a late one runs its own load)
	close(release)
	wg.Wait()
	for i, err := range errs {
		var pe *cachekit.PanicError
		if !errors.As(err, &pe) || pe.Value != "loader exploded" || len(pe.Stack) == 0 {
			t.Fatalf("caller %d: err = %v, want *cachekit.PanicError with the value and a stack", i, err)
		}
	}
	if _, ok := c.Get("k"); ok {
		t.Fatal("a panicking load cached something")
	}
}

func TestGetOrLoadCallerCancel(t *testing.T) {
	t.Parallel()
	c := newCache(t, Options[string, int]{})
	started := make(chan struct{})
	release := make(chan struct{})
	var loadCtxErr atomic.Value
	load := func(ctx context.Context, _ string) (int, error) {
		close(started)
		<-release
		if err := ctx.Err(); err != nil {
			loadCtxErr.Store(err)
		}
		return 5, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := c.GetOrLoad(ctx, "k", load)
		first <- err
	}()
	<-started
	other := make(chan int, 1)
	go func() {
		v, err := c.GetOrLoad(context.Background(), "k", load)
		if err != nil {
			t.Errorf("other caller: %v", err)
		}
		other <- v
	}()
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: %v, want context.Canceled", err)
	}
	close(release)
	if v := <-other; v != 5 {
		t.Fatalf("other caller got %d, want 5", v)
	}
	if err := loadCtxErr.Load(); err != nil {
		t.Fatalf("the load's context was cancelled: %v", err)
	}
	if v, ok := c.Get("k"); !ok || v != 5 {
		t.Fatalf("Get after the load = %d, %v; want 5, true", v, ok)
	}
}

func TestGetOrLoadTimeout(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		c := Must(Options[string, int]{LoadTimeout: time.Second})
		defer c.Close()
		_, err := c.GetOrLoad(context.Background(), "k", func(ctx context.Context, _ string) (int, error) {
			<-ctx.Done()
			return 0, ctx.Err()
		})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("GetOrLoad with a stuck loader: %v, want DeadlineExceeded", err)
		}
	})
}

// TestGetOrLoadStaleLoad: a write to the key while its load runs wins; the
// waiting callers get the loaded value but it is not stored.
func TestGetOrLoadStaleLoad(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		write func(c *Cache[string, string])
		want  string // "" means absent
	}{
		{"Delete", func(c *Cache[string, string]) { c.Delete("k") }, ""},
		{"Set", func(c *Cache[string, string]) { c.Set("k", "new") }, "new"},
		{"Clear", func(c *Cache[string, string]) { c.Clear() }, ""},
		{"NegativeTTL", func(c *Cache[string, string]) { c.SetWithTTL("k", "x", cachekit.ExpireNow) }, ""},
		{"Add", func(c *Cache[string, string]) { c.Add("k", "added", 0) }, "added"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newCache(t, Options[string, string]{})
			started := make(chan struct{})
			release := make(chan struct{})
			var runs atomic.Int32
			load := func(context.Context, string) (string, error) {
				if runs.Add(1) == 1 {
					close(started)
					<-release
					return "stale", nil
				}
				return "fresh", nil
			}
			got := make(chan string, 1)
			go func() {
				v, err := c.GetOrLoad(context.Background(), "k", load)
				if err != nil {
					t.Errorf("GetOrLoad: %v", err)
				}
				got <- v
			}()
			<-started
			tc.write(c)
			close(release)
			if v := <-got; v != "stale" {
				t.Fatalf("the waiting caller got %q, want the loaded value %q", v, "stale")
			}
			v, ok := c.Get("k")
			if tc.want == "" && ok || tc.want != "" && v != tc.want {
				t.Fatalf("Get after the stale load = %q, %v; want %q", v, ok, tc.want)
			}
		})
	}
}

// TestGetOrLoadAfterDeleteStartsFresh: a caller arriving after a Delete does
// not join the load that started before it.
func TestGetOrLoadAfterDeleteStartsFresh(t *testing.T) {
	t.Parallel()
	c := newCache(t, Options[string, string]{})
	started := make(chan struct{})
	release := make(chan struct{})
	var runs atomic.Int32
	load := func(context.Context, string) (string, error) {
		if runs.Add(1) == 1 {
			close(started)
			<-release
			return "stale", nil
		}
		return "fresh", nil
	}
	go c.GetOrLoad(context.Background(), "k", load)
	<-started
	c.Delete("k")
	v, err := c.GetOrLoad(context.Background(), "k", load)
	if err != nil || v != "fresh" {
		t.Fatalf("GetOrLoad after Delete = %q, %v; want a fresh load", v, err)
	}
	close(release)
	c.Close() // waits for the stale load
	if v, _ := c.Get("k"); v != "fresh" {
		t.Fatalf("Get after both loads = %q, want fresh", v)
	}
}

func TestGetOrLoadClosed(t *testing.T) {
	t.Parallel()
	c := Must(Options[string, int]{})
	c.Set("k", 1)
	c.Close()
	if v, err := c.GetOrLoad(context.Background(), "k", nil); err != nil || v != 1 {
		t.Fatalf("GetOrLoad hit after Close = %d, %v; want 1, nil", v, err)
	}
	_, err := c.GetOrLoad(context.Background(), "absent", func(context.Context, string) (int, error) { return 1, nil })
	if !errors.Is(err, cachekit.ErrClosed) {
		t.Fatalf("GetOrLoad miss after Close: %v, want ErrClosed", err)
	}
}

func TestCloseWaitsForLoads(t *testing.T) {
	t.Parallel()
	c := Must(Options[string, int]{})
	started := make(chan struct{})
	var finished atomic.Bool
	go c.GetOrLoad(context.Background(), "k", func(context.Context, string) (int, error) {
		close(started)
		time.Sleep(20 * time.Millisecond)
		finished.Store(true)
		return 1, nil
	})
	<-started
	c.Close()
	if !finished.Load() {
		t.Fatal("Close returned before the load finished")
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestExpiryGoroutine runs in a synctest bubble, where time is virtual: the
// goroutine removes expired entries without any read, then stops by itself
// when no entry with an expiry remains.
func TestExpiryGoroutine(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var rec recorder
		c := Must(Options[string, int]{OnEvict: rec.onEvict, Stats: true})
		defer c.Close()
		c.Set("forever", 0)
		synctest.Wait()
		if c.c.expiring {
			t.Fatal("an expiry goroutine started without any entry that expires")
		}
		c.SetWithTTL("a", 1, 1500*time.Millisecond)
		c.SetWithTTL("b", 2, 3500*time.Millisecond)
		time.Sleep(2 * time.Second) // ticks at 1s and 2s
		synctest.Wait()
		if got := rec.take(); len(got) != 1 || got[0] != (event{"a", 1, ReasonExpired}) {
			t.Fatalf("OnEvict after 2s = %v, want a expired", got)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got := rec.take(); len(got) != 1 || got[0] != (event{"b", 2, ReasonExpired}) {
			t.Fatalf("OnEvict after 4s = %v, want b expired", got)
		}
		if n := c.Len(); n != 1 {
			t.Fatalf("Len = %d, want 1", n)
		}
		if s := c.Stats(); s.Expirations != 2 {
			t.Fatalf("Stats.Expirations = %d, want 2", s.Expirations)
		}
		c.c.mu.Lock()
		running := c.c.expiring
		c.c.mu.Unlock()
		if running {
			t.Fatal("the expiry goroutine still runs with no entry that expires")
		}
		// A new entry with an expiry starts it again; Close stops it (the
		// bubble fails the test if a goroutine outlives it).
		c.SetWithTTL("c", 3, time.Hour)
		c.Close()
		if err := c.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		c.SetWithTTL("d", 4, time.Hour) // after Close: stored, no goroutine
		if v, ok := c.Get("d"); !ok || v != 4 {
			t.Fatal("Set after Close did not store")
		}
	})
}

// TestCloseStopsGoroutine checks with real time that Close ends the
// goroutine.
func TestCloseStopsGoroutine(t *testing.T) {
	// Not parallel: it counts the process's goroutines.
	before := runtime.NumGoroutine()
	c := Must(Options[string, int]{})
	c.SetWithTTL("k", 1, time.Hour)
	if !expiring(c) {
		t.Fatal("no expiry goroutine with an expiring entry")
	}
	c.Close()
	waitFor(t, "the goroutine to exit", func() bool { return runtime.NumGoroutine() <= before })
}

// expiring reports whether c's expiry goroutine runs. (Counting the
// process's goroutines to see it start is not reliable: those of earlier
// tests may still be exiting.)
func expiring[K comparable, V any](c *Cache[K, V]) bool {
	c.c.mu.Lock()
	defer c.c.mu.Unlock()
	return c.c.expiring
}

// TestCleanupStopsGoroutine: an unreachable, unclosed cache does not leak
// its goroutine.
func TestCleanupStopsGoroutine(t *testing.T) {
	// Not parallel: it counts the process's goroutines.
	before := runtime.NumGoroutine()
	func() {
		c := Must(Options[string, int]{})
		c.SetWithTTL("k", 1, time.Hour)
		if !expiring(c) {
			t.Fatal("no expiry goroutine with an expiring entry")
		}
	}()
	waitFor(t, "the cleanup to stop the goroutine", func() bool {
		runtime.GC()
		return runtime.NumGoroutine() <= before
	})
}

func TestGetOrLoadCancelledBeforeMiss(t *testing.T) {
	t.Parallel()
	c := newCache(t, Options[string, int]{Stats: true})
	c.Set("hit", 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	load := func(context.Context, string) (int, error) {
		t.Error("loader called for a caller whose ctx was done")
		return 0, nil
	}
	if v, err := c.GetOrLoad(ctx, "hit", load); err != nil || v != 1 {
		t.Fatalf("GetOrLoad hit with a done ctx = %d, %v; want 1, nil", v, err)
	}
	if _, err := c.GetOrLoad(ctx, "miss", load); !errors.Is(err, context.Canceled) {
		t.Fatalf("GetOrLoad miss with a done ctx: %v, want context.Canceled", err)
	}
	c.Close() // waits for any load (there must be none)
	if s := c.Stats(); s.Loads != 0 {
		t.Fatalf("Stats.Loads = %d, want 0", s.Loads)
	}
}
