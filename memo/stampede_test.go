package memo_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/memo"
)

// TestExactlyOnceConcurrent: 1,000 callers of one key in one process run
// the function once, and all get its value.
func TestExactlyOnceConcurrent(t *testing.T) {
	t.Parallel()
	for _, lease := range []bool{false, true} {
		name := map[bool]string{false: "coalesce", true: "coalesce+lease"}[lease]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			var calls counter
			release := make(chan struct{})
			rec := &recorder{}
			c := newCache[int](t, nil, cachekit.Options{})
			f := newFunc(t, c, "once", func(context.Context, string) (int, error) {
				calls.add()
				<-release
				return 42, nil
			}, memo.Options{Lease: lease, Observer: rec})
			const callers = 1000
			var wg sync.WaitGroup
			errs := make(chan error, callers)
			for range callers {
				wg.Go(func() {
					v, err := f.Call(ctx, "k")
					if err == nil && v != 42 {
						err = errors.New("wrong value")
					}
					errs <- err
				})
			}
			// Let most callers arrive while the computation blocks, then finish.
			waitFor(t, "a computation to start", func() bool { return calls.get() > 0 })
			time.Sleep(20 * time.Millisecond)
			close(release)
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if n := calls.get(); n != 1 {
				t.Fatalf("function ran %d times for %d callers, want 1", n, callers)
			}
			if rec.count(memo.Coalesced) == 0 {
				t.Error("no caller reported Coalesced")
			}
		})
	}
}

// TestCallerCancelDoesNotFailOthers: the caller that started a computation
// gives up; the computation goes on and the other caller gets its value.
func TestCallerCancelDoesNotFailOthers(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	started := make(chan struct{})
	var calls counter
	c := newCache[string](t, nil, cachekit.Options{})
	f := newFunc(t, c, "slow", func(ctx context.Context, k string) (string, error) {
		calls.add()
		close(started)
		select {
		case <-release:
		case <-ctx.Done():
			return "", ctx.Err()
		}
		return "v:" + k, nil
	}, memo.Options{})

	first, cancel := context.WithCancel(t.Context())
	firstErr := make(chan error, 1)
	go func() {
		_, err := f.Call(first, "k")
		firstErr <- err
	}()
	<-started
	second := make(chan error, 1)
	go func() {
		v, err := f.Call(t.Context(), "k")
		if err == nil && v != "v:k" {
			err = errors.New("wrong value " + v)
		}
		second <- err
	}()
	// Whether the second caller joins before or after the cancel, the
	// computation is still running (blocked on release) when it does.
	cancel()
	if err := <-firstErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller got %v, want context.Canceled", err)
	}
	close(release)
	if err := <-second; err != nil {
		t.Fatalf("other caller: %v", err)
	}
	if calls.get() != 1 {
		t.Errorf("function ran %d times, want 1", calls.get())
	}
	if v, err := f.Peek(t.Context(), "k"); err != nil || v != "v:k" {
		t.Errorf("Peek after the computation = %q, %v; the value should be stored", v, err)
	}
}

// TestPanicReachesEveryWaiter: a panicking function gives every waiter a
// *cachekit.PanicError, and the process survives.
func TestPanicReachesEveryWaiter(t *testing.T) {
	t.Parallel()
	for _, noCoalesce := range []bool{false, true} {
		t.Run(map[bool]string{false: "coalesced", true: "uncoalesced"}[noCoalesce], func(t *testing.T) {
			t.Parallel()
			release := make(chan struct{})
			c := newCache[int](t, nil, cachekit.Options{})
			f := newFunc(t, c, "panics", func(context.Context, int) (int, error) {
				<-release
				panic("kaboom")
			}, memo.Options{NoCoalesce: noCoalesce})
			const waiters = 20
			errs := make(chan error, waiters)
			for range waiters {
				go func() {
					_, err := f.Call(t.Context(), 1)
					errs <- err
				}()
			}
			time.Sleep(20 * time.Millisecond)
			close(release)
			for range waiters {
				err := <-errs
				var pe *cachekit.PanicError
				if !errors.As(err, &pe) || pe.Value != "kaboom" || len(pe.Stack) == 0 {
					t.Fatalf("waiter got %v, want a PanicError with the value and a stack", err)
				}
			}
		})
	}
}

// TestStaleWhileRevalidate: past its TTL a value is served at once while
// one slow refresh runs in the background; then the new value is served.
func TestStaleWhileRevalidate(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := fakeClock()
	var calls counter
	release := make(chan struct{})
	rec := &recorder{}
	c := newCache[int](t, nil, cachekit.Options{Clock: clock})
	f := newFunc(t, c, "swr", func(context.Context, string) (int, error) {
		n := calls.add()
		if n > 1 {
			<-release // the refresh is slow
		}
		return int(n), nil
	}, memo.Options{TTL: time.Minute, StaleWhileRevalidate: time.Minute, Clock: clock, Observer: rec})

	if v, _ := f.Call(ctx, "k"); v != 1 {
		t.Fatalf("first Call = %d", v)
	}
	clock.Advance(90 * time.Second) // stale, inside the window
	for range 50 {
		if v, err := f.Call(ctx, "k"); v != 1 || err != nil {
			t.Fatalf("Call while refreshing = %d, %v; want the stale 1", v, err)
		}
	}
	waitFor(t, "the refresh to start", func() bool { return calls.get() == 2 })
	if n := rec.count(memo.StaleServed); n != 50 {
		t.Errorf("StaleServed %d times, want 50", n)
	}
	close(release)
	waitFor(t, "the refresh to finish", func() bool { return rec.count(memo.RefreshOK) == 1 })
	if v, _ := f.Call(ctx, "k"); v != 2 {
		t.Fatalf("Call after the refresh = %d, want 2", v)
	}
	if calls.get() != 2 || rec.count(memo.RefreshStart) != 1 {
		t.Errorf("function ran %d times, refreshes started %d; want 2, 1", calls.get(), rec.count(memo.RefreshStart))
	}
	clock.Advance(3 * time.Minute) // past TTL + window: a miss
	if v, _ := f.Call(ctx, "k"); v != 3 {
		t.Fatalf("Call past the window = %d, want a fresh computation", v)
	}
}

// TestStaleIfError: inside the stale-if-error window a failing refresh
// serves the stale value; after the window the error surfaces.
func TestStaleIfError(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := fakeClock()
	boom := errors.New("database down")
	var calls counter
	rec := &recorder{}
	c := newCache[int](t, nil, cachekit.Options{Clock: clock})
	f := newFunc(t, c, "sie", func(context.Context, string) (int, error) {
		if calls.add() > 1 {
			return 0, boom
		}
		return 1, nil
	}, memo.Options{TTL: time.Minute, StaleIfError: time.Minute, Clock: clock, Observer: rec})

	if v, _ := f.Call(ctx, "k"); v != 1 {
		t.Fatalf("first Call = %d", v)
	}
	clock.Advance(90 * time.Second)
	for i := range 3 {
		if v, err := f.Call(ctx, "k"); v != 1 || err != nil {
			t.Fatalf("Call %d inside the window = %d, %v; want the stale 1", i, v, err)
		}
	}
	if n := rec.count(memo.RefreshFail); n != 3 {
		t.Errorf("RefreshFail %d times, want 3 (one synchronous refresh per call)", n)
	}
	clock.Advance(time.Minute) // past TTL + window
	if _, err := f.Call(ctx, "k"); !errors.Is(err, boom) {
		t.Fatalf("Call past the window: %v, want the error", err)
	}
}

// TestStaleWhileRevalidateFailingRefresh: a failing background refresh
// keeps the stale value within the window; retries are spaced by the
// refresh election (LeaseTTL).
func TestStaleWhileRevalidateFailingRefresh(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := fakeClock()
	boom := errors.New("boom")
	var calls counter
	rec := &recorder{}
	c := newCache[int](t, nil, cachekit.Options{Clock: clock})
	f := newFunc(t, c, "swr.fail", func(context.Context, string) (int, error) {
		if calls.add() > 1 {
			return 0, boom
		}
		return 1, nil
	}, memo.Options{TTL: time.Minute, StaleWhileRevalidate: time.Hour, LeaseTTL: 10 * time.Second, Clock: clock, Observer: rec})
	f.Call(ctx, "k")
	clock.Advance(2 * time.Minute)
	f.Call(ctx, "k")
	waitFor(t, "the refresh to fail", func() bool { return rec.count(memo.RefreshFail) == 1 })
	for range 10 {
		if v, err := f.Call(ctx, "k"); v != 1 || err != nil {
			t.Fatalf("Call = %d, %v; want the stale 1", v, err)
		}
	}
	f.Close() // waits for any refresh started
	if calls.get() != 2 {
		t.Errorf("function ran %d times, want 2: the failed refresh holds the election for LeaseTTL", calls.get())
	}
}

// TestXFetch: under steady reads a value is recomputed before it expires,
// by one recomputer, and no read ever misses.
func TestXFetch(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := fakeClock()
	var calls counter
	rec := &recorder{}
	refreshedAt := make(chan time.Time, 10)
	c := newCache[int](t, nil, cachekit.Options{Clock: clock})
	f := newFunc(t, c, "xfetch", func(context.Context, string) (int, error) {
		n := calls.add()
		if n > 1 {
			refreshedAt <- clock.Now()
		}
		clock.Advance(2 * time.Second) // δ: the computation takes 2 s
		return int(n), nil
	}, memo.Options{TTL: time.Minute, XFetch: true, Clock: clock, Observer: rec})

	if _, err := f.Call(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	expiry := clock.Now().Add(time.Minute)
	// Steady reads: 20 concurrent readers every 100 ms until the refresh.
	for clock.Now().Before(expiry) && calls.get() == 1 {
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				if _, err := f.Call(ctx, "k"); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		clock.Advance(100 * time.Millisecond)
	}
	waitFor(t, "the early refresh to finish", func() bool { return rec.count(memo.RefreshOK) >= 1 })
	f.Close()
	select {
	case at := <-refreshedAt:
		if !at.Before(expiry) {
			t.Errorf("refresh started at %v, after the expiry %v", at, expiry)
		}
		t.Logf("refreshed %v before expiry (δ = 2s)", expiry.Sub(at))
	default:
		t.Fatal("no early refresh")
	}
	if n := calls.get(); n != 2 {
		t.Errorf("function ran %d times, want 2 (one recomputer)", n)
	}
	if n := rec.count(memo.Miss); n != 1 {
		t.Errorf("%d misses, want only the first call's", n)
	}
}

// TestLeaseHolderFails: a process whose computation fails releases the
// lease, and a waiting one computes instead. Two Func values over one store
// stand for two processes.
func TestLeaseHolderFails(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	boom := errors.New("boom")
	started, release := make(chan struct{}), make(chan struct{})
	c := newCache[int](t, nil, cachekit.Options{})
	p1 := newFunc(t, c, "leased", func(context.Context, int) (int, error) {
		close(started)
		<-release
		return 0, boom
	}, memo.Options{Lease: true})
	rec := &recorder{}
	p2 := newFunc(t, c, "leased", func(context.Context, int) (int, error) { return 2, nil },
		memo.Options{Lease: true, Observer: rec})
	err1 := make(chan error)
	go func() {
		_, err := p1.Call(ctx, 1)
		err1 <- err
	}()
	<-started
	v2 := make(chan int)
	go func() {
		v, err := p2.Call(ctx, 1)
		if err != nil {
			t.Error(err)
		}
		v2 <- v
	}()
	waitFor(t, "p2 to wait on the lease", func() bool { return rec.count(memo.LeaseWait) == 1 })
	close(release)
	if err := <-err1; !errors.Is(err, boom) {
		t.Fatalf("p1: %v, want boom", err)
	}
	if v := <-v2; v != 2 {
		t.Fatalf("p2 got %d, want its own computation (2)", v)
	}
}

// TestLeaseExpires: a lease whose holder died (never released) stops
// blocking the waiters when it expires.
func TestLeaseExpires(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := fakeClock()
	store := newStore(t, clock)
	c := newCache[int](t, store, cachekit.Options{Clock: clock})
	rec := &recorder{}
	f := newFunc(t, c, "leased", func(context.Context, int) (int, error) { return 7, nil },
		memo.Options{Lease: true, LeaseTTL: 5 * time.Second, Clock: clock, Observer: rec})
	key, _ := f.Key(1)
	leaseKey, _ := c.Key("memo.lease:" + key)
	if _, ok, err := store.Lease(ctx, leaseKey, 5*time.Second); !ok || err != nil {
		t.Fatalf("Lease(%q) = %v, %v", leaseKey, ok, err)
	}
	got := make(chan int)
	go func() {
		v, err := f.Call(ctx, 1)
		if err != nil {
			t.Error(err)
		}
		got <- v
	}()
	waitFor(t, "the call to wait on the lease", func() bool { return rec.count(memo.LeaseWait) == 1 })
	select {
	case v := <-got:
		t.Fatalf("Call returned %d while the lease was held", v)
	case <-time.After(20 * time.Millisecond):
	}
	clock.Advance(6 * time.Second) // the dead holder's lease expires
	if v := <-got; v != 7 {
		t.Fatalf("Call = %d, want 7", v)
	}
}
