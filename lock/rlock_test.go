package lock_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/cachetest"
	"github.com/cachekit/cachekit/lock"
)

func TestRLock(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s cachekit.Store) {
		ctx := testContext(t)
		r, err := lock.NewRLock(s, "r", lock.RLockOptions{})
		if err != nil {
			t.Fatal(err)
		}
		other, err := lock.NewRLock(s, "r", lock.RLockOptions{})
		if err != nil {
			t.Fatal(err)
		}
		same, err := lock.NewRLock(s, "r", lock.RLockOptions{Owner: r.Owner()})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Release(ctx); !errors.Is(err, lock.ErrNotHeld) {
			t.Errorf("Release before Acquire: %v, want ErrNotHeld", err)
		}
		for range 3 {
			if err := r.Acquire(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if ok, err := same.TryAcquire(ctx); err != nil || !ok {
			t.Fatalf("TryAcquire by the same owner = %v, %v; want true", ok, err)
		}
		if n, err := r.Count(ctx); err != nil || n != 4 {
			t.Errorf("Count = %d, %v; want 4", n, err)
		}
		if n, err := other.Count(ctx); err != nil || n != 0 {
			t.Errorf("other's Count = %d, %v; want 0", n, err)
		}
		if err := other.Release(ctx); !errors.Is(err, lock.ErrNotHeld) {
			t.Errorf("Release by another owner: %v, want ErrNotHeld", err)
		}
		for i := 4; i > 0; i-- {
			if ok, err := other.TryAcquire(ctx); err != nil || ok {
				t.Fatalf("TryAcquire by another owner with count %d = %v, %v; want false", i, ok, err)
			}
			if err := r.Release(ctx); err != nil {
				t.Fatalf("Release with count %d: %v", i, err)
			}
		}
		if err := r.Release(ctx); !errors.Is(err, lock.ErrNotHeld) {
			t.Errorf("Release past zero: %v, want ErrNotHeld", err)
		}
		if ok, err := other.TryAcquire(ctx); err != nil || !ok {
			t.Fatalf("TryAcquire after the count reached zero = %v, %v; want true", ok, err)
		}
		if n, err := other.Count(ctx); err != nil || n != 1 {
			t.Errorf("new owner's Count = %d, %v; want 1", n, err)
		}
	})
}

// TestRLockExclusive has workers, each its own owner, re-enter the lock
// around a non-atomic increment.
func TestRLockExclusive(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s cachekit.Store) {
		const workers, each = 3, 15
		ctx := testContext(t)
		var wg sync.WaitGroup
		for range workers {
			r, err := lock.NewRLock(s, "r", lock.RLockOptions{})
			if err != nil {
				t.Fatal(err)
			}
			wg.Go(func() {
				for range each {
					if err := r.Acquire(ctx); err != nil {
						t.Error(err)
						return
					}
					if err := r.Acquire(ctx); err != nil { // re-entry: never waits
						t.Error(err)
						return
					}
					err := incrUnsafe(ctx, s, "counter")
					err = errors.Join(err, r.Release(ctx), r.Release(ctx))
					if err != nil {
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
		if got, want := counter(t, ctx, s, "counter"), workers*each; got != want {
			t.Errorf("counter = %d, want %d", got, want)
		}
	})
}

func TestRLockExpiry(t *testing.T) {
	t.Parallel()
	eachFakeClockStore(t, func(t *testing.T, s cachekit.Store, clock *cachetest.FakeClock) {
		ctx := testContext(t)
		r, err := lock.NewRLock(s, "r", lock.RLockOptions{Expiry: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		other, err := lock.NewRLock(s, "r", lock.RLockOptions{Expiry: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
		if err := r.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
		clock.Advance(1500 * time.Millisecond) // a crashed owner, count 2
		if ok, err := other.TryAcquire(ctx); err != nil || !ok {
			t.Fatalf("TryAcquire after the expiry = %v, %v; want true", ok, err)
		}
		if err := r.Release(ctx); !errors.Is(err, lock.ErrNotHeld) {
			t.Errorf("Release by the expired owner: %v, want ErrNotHeld", err)
		}
		if n, err := other.Count(ctx); err != nil || n != 1 {
			t.Errorf("new owner's Count = %d, %v; want 1", n, err)
		}
	})
}
