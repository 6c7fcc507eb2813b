package lock_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/cachetest"
	"github.com/cachekit/cachekit/lock"
)

// TestSemaphoreLimit has more workers than slots hold the semaphore in
// turns: never more than Limit at once, and every slot gets used.
func TestSemaphoreLimit(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s cachekit.Store) {
		const limit, workers, each = 3, 8, 6
		ctx := testContext(t)
		var inside, maxInside atomic.Int32
		var wg sync.WaitGroup
		shared, err := lock.NewSemaphore(s, "sem", lock.SemaphoreOptions{Limit: limit})
		if err != nil {
			t.Fatal(err)
		}
		for w := range workers {
			// Half the workers share one value (one owner holding several
			// slots), the others have their own.
			sem := shared
			if w%2 == 1 {
				if sem, err = lock.NewSemaphore(s, "sem", lock.SemaphoreOptions{Limit: limit}); err != nil {
					t.Fatal(err)
				}
			}
			wg.Go(func() {
				for range each {
					if err := sem.Acquire(ctx); err != nil {
						t.Error(err)
						return
					}
					n := inside.Add(1)
					for m := maxInside.Load(); n > m && !maxInside.CompareAndSwap(m, n); m = maxInside.Load() {
					}
					time.Sleep(2 * time.Millisecond)
					inside.Add(-1)
					if err := sem.Release(ctx); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		if m := maxInside.Load(); m > limit {
			t.Errorf("%d holders at once, want at most %d", m, limit)
		} else if m < 2 {
			t.Logf("at most %d holders at once (the machine was slow?)", m)
		}
		if n := shared.Held(); n != 0 {
			t.Errorf("Held = %d after every Release, want 0", n)
		}
	})
}

func TestSemaphoreTryAcquire(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s cachekit.Store) {
		ctx := testContext(t)
		a, err := lock.NewSemaphore(s, "sem", lock.SemaphoreOptions{Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		b, err := lock.NewSemaphore(s, "sem", lock.SemaphoreOptions{Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Release(ctx); !errors.Is(err, lock.ErrNotHeld) {
			t.Errorf("Release without a slot: %v, want ErrNotHeld", err)
		}
		for i := range 2 {
			if ok, err := a.TryAcquire(ctx); err != nil || !ok {
				t.Fatalf("TryAcquire %d = %v, %v; want true", i, ok, err)
			}
		}
		if ok, err := b.TryAcquire(ctx); err != nil || ok {
			t.Fatalf("TryAcquire with both slots held = %v, %v; want false", ok, err)
		}
		if err := b.Release(ctx); !errors.Is(err, lock.ErrNotHeld) {
			t.Errorf("Release by a non-holder: %v, want ErrNotHeld", err)
		}
		if err := a.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if ok, err := b.TryAcquire(ctx); err != nil || !ok {
			t.Fatalf("TryAcquire after a Release = %v, %v; want true", ok, err)
		}
	})
}

// TestSemaphoreCrashedHolder lets a holder's slots expire (as when it
// crashed): they come back.
func TestSemaphoreCrashedHolder(t *testing.T) {
	t.Parallel()
	eachFakeClockStore(t, func(t *testing.T, s cachekit.Store, clock *cachetest.FakeClock) {
		ctx := testContext(t)
		opts := lock.SemaphoreOptions{Limit: 2, Expiry: time.Second}
		crashed, err := lock.NewSemaphore(s, "sem", opts)
		if err != nil {
			t.Fatal(err)
		}
		other, err := lock.NewSemaphore(s, "sem", opts)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := crashed.Acquire(ctx); err != nil {
				t.Fatal(err)
			}
		}
		clock.Advance(500 * time.Millisecond)
		if ok, err := other.TryAcquire(ctx); err != nil || ok {
			t.Fatalf("TryAcquire before the expiry = %v, %v; want false", ok, err)
		}
		clock.Advance(600 * time.Millisecond)
		for i := range 2 {
			if ok, err := other.TryAcquire(ctx); err != nil || !ok {
				t.Fatalf("TryAcquire %d after the expiry = %v, %v; want true", i, ok, err)
			}
		}
		for i := range 2 {
			if err := crashed.Release(ctx); !errors.Is(err, lock.ErrNotHeld) {
				t.Errorf("Release %d of an expired slot: %v, want ErrNotHeld", i, err)
			}
		}
		if n := crashed.Held(); n != 0 {
			t.Errorf("Held = %d, want 0", n)
		}
		for i := range 2 {
			if err := other.Release(ctx); err != nil {
				t.Errorf("Release %d by the new holder: %v", i, err)
			}
		}
	})
}
