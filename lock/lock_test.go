package lock_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/cachetest"
	"github.com/cachekit/cachekit/lock"
)

func TestLockExclusive(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s cachekit.Store) {
		const workers, each = 4, 25
		ctx := testContext(t)
		var inside atomic.Int32
		var wg sync.WaitGroup
		for range workers {
			l, err := lock.NewLock(s, "mutex", lock.LockOptions{})
			if err != nil {
				t.Fatal(err)
			}
			wg.Go(func() {
				for range each {
					if err := l.Acquire(ctx); err != nil {
						t.Error(err)
						return
					}
					if n := inside.Add(1); n != 1 {
						t.Error("two holders at once")
					}
					err := incrUnsafe(ctx, s, "counter")
					inside.Add(-1)
					if err != nil {
						t.Error(err)
						return
					}
					if err := l.Release(ctx); err != nil {
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

func TestLockReleaseByNonOwner(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s cachekit.Store) {
		ctx := testContext(t)
		owner, err := lock.NewLock(s, "l", lock.LockOptions{})
		if err != nil {
			t.Fatal(err)
		}
		other, err := lock.NewLock(s, "l", lock.LockOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := owner.Release(ctx); !errors.Is(err, lock.ErrNotHeld) {
			t.Errorf("Release before Acquire: %v, want ErrNotHeld", err)
		}
		if err := owner.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
		if err := other.Release(ctx); !errors.Is(err, lock.ErrNotHeld) {
			t.Errorf("Release by a non-owner: %v, want ErrNotHeld", err)
		}
		if ok, err := other.TryAcquire(ctx); err != nil || ok {
			t.Errorf("TryAcquire after a non-owner's Release = %v, %v; want false (still held)", ok, err)
		}
		if locked, err := other.Locked(ctx); err != nil || !locked {
			t.Errorf("Locked = %v, %v; want true", locked, err)
		}
		if err := owner.Release(ctx); err != nil {
			t.Fatalf("Release by the owner: %v", err)
		}
		if err := owner.Release(ctx); !errors.Is(err, lock.ErrNotHeld) {
			t.Errorf("second Release: %v, want ErrNotHeld", err)
		}
		if ok, err := other.TryAcquire(ctx); err != nil || !ok {
			t.Errorf("TryAcquire after the owner's Release = %v, %v; want true", ok, err)
		}
	})
}

// TestLockExpiredHolder lets a hold expire and pass to another owner: the
// first holder can neither release nor extend the new owner's hold.
func TestLockExpiredHolder(t *testing.T) {
	t.Parallel()
	eachFakeClockStore(t, func(t *testing.T, s cachekit.Store, clock *cachetest.FakeClock) {
		ctx := testContext(t)
		newLock := func() *lock.Lock {
			l, err := lock.NewLock(s, "l", lock.LockOptions{Expiry: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			return l
		}
		first, second, third := newLock(), newLock(), newLock()
		if err := first.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
		if ok, err := second.TryAcquire(ctx); err != nil || ok {
			t.Fatalf("TryAcquire while held = %v, %v; want false", ok, err)
		}
		clock.Advance(1500 * time.Millisecond)
		if ok, err := second.TryAcquire(ctx); err != nil || !ok {
			t.Fatalf("TryAcquire after the expiry = %v, %v; want true", ok, err)
		}
		if err := first.Extend(ctx, 0); !errors.Is(err, lock.ErrNotHeld) {
			t.Errorf("Extend by the expired holder: %v, want ErrNotHeld", err)
		}
		if err := first.Release(ctx); !errors.Is(err, lock.ErrNotHeld) {
			t.Errorf("Release by the expired holder: %v, want ErrNotHeld", err)
		}
		if ok, err := third.TryAcquire(ctx); err != nil || ok {
			t.Errorf("TryAcquire after the expired holder's Release = %v, %v; want false", ok, err)
		}
		if err := second.Release(ctx); err != nil {
			t.Errorf("Release by the new owner: %v", err)
		}

		// An expired hold nobody took is not released either.
		if err := third.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
		clock.Advance(2 * time.Second)
		if err := third.Release(ctx); !errors.Is(err, lock.ErrNotHeld) {
			t.Errorf("Release of an expired hold: %v, want ErrNotHeld", err)
		}
	})
}

func TestLockExtend(t *testing.T) {
	t.Parallel()
	eachFakeClockStore(t, func(t *testing.T, s cachekit.Store, clock *cachetest.FakeClock) {
		ctx := testContext(t)
		l, err := lock.NewLock(s, "l", lock.LockOptions{Expiry: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		other, err := lock.NewLock(s, "l", lock.LockOptions{Expiry: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Extend(ctx, 0); !errors.Is(err, lock.ErrNotHeld) {
			t.Errorf("Extend before Acquire: %v, want ErrNotHeld", err)
		}
		if err := l.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
		clock.Advance(800 * time.Millisecond)
		if err := l.Extend(ctx, 0); err != nil {
			t.Fatalf("Extend: %v", err)
		}
		clock.Advance(800 * time.Millisecond) // 1.6 s after Acquire
		if ok, err := other.TryAcquire(ctx); err != nil || ok {
			t.Fatalf("TryAcquire 0.8 s after Extend = %v, %v; want false", ok, err)
		}
		if err := l.Extend(ctx, 5*time.Second); err != nil {
			t.Fatalf("Extend(5s): %v", err)
		}
		clock.Advance(4 * time.Second)
		if ok, err := other.TryAcquire(ctx); err != nil || ok {
			t.Fatalf("TryAcquire 4 s after Extend(5s) = %v, %v; want false", ok, err)
		}
		clock.Advance(2 * time.Second)
		if ok, err := other.TryAcquire(ctx); err != nil || !ok {
			t.Fatalf("TryAcquire after the extended expiry = %v, %v; want true", ok, err)
		}
	})
}

// TestAcquireContext checks that a waiting Acquire returns ctx's error
// promptly when ctx ends, for every waiting primitive.
func TestAcquireContext(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s cachekit.Store) {
		ctx := testContext(t)
		// Backoff pauses far longer than the test: only ctx can end them.
		slow := lock.Backoff{Min: time.Minute, Max: time.Minute}
		holder, err := lock.NewLock(s, "l", lock.LockOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := holder.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
		rholder, err := lock.NewRLock(s, "r", lock.RLockOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := rholder.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
		sholder, err := lock.NewSemaphore(s, "s", lock.SemaphoreOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := sholder.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
		l, err := lock.NewLock(s, "l", lock.LockOptions{Backoff: slow})
		if err != nil {
			t.Fatal(err)
		}
		r, err := lock.NewRLock(s, "r", lock.RLockOptions{Backoff: slow})
		if err != nil {
			t.Fatal(err)
		}
		sem, err := lock.NewSemaphore(s, "s", lock.SemaphoreOptions{Backoff: slow})
		if err != nil {
			t.Fatal(err)
		}
		b, err := lock.NewBarrier(s, "l", lock.BarrierOptions{Backoff: slow})
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name    string
			acquire func(context.Context) error
		}{
			{"Lock", l.Acquire},
			{"RLock", r.Acquire},
			{"Semaphore", sem.Acquire},
			{"Barrier", func(ctx context.Context) error {
				return b.Do(ctx, func(context.Context) error { return errors.New("fn ran without the barrier") })
			}},
		} {
			t.Run(tc.name+"/deadline", func(t *testing.T) {
				wctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
				defer cancel()
				start := time.Now()
				err := tc.acquire(wctx)
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("Acquire: %v, want an error wrapping context.DeadlineExceeded", err)
				}
				if d := time.Since(start); d > 2*time.Second {
					t.Errorf("Acquire returned %v after start, want about 100ms", d)
				}
			})
			t.Run(tc.name+"/cancel", func(t *testing.T) {
				wctx, cancel := context.WithCancel(ctx)
				time.AfterFunc(50*time.Millisecond, cancel)
				start := time.Now()
				err := tc.acquire(wctx)
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("Acquire: %v, want an error wrapping context.Canceled", err)
				}
				if d := time.Since(start); d > 2*time.Second {
					t.Errorf("Acquire returned %v after start, want about 50ms", d)
				}
			})
		}
	})
}

// TestAcquireWakesOnNotify checks that a waiter on a store that notifies
// (disk, redis) takes a released lock long before its next backoff retry.
func TestAcquireWakesOnNotify(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		open func(t *testing.T) cachekit.Store
	}{
		{"disk", func(t *testing.T) cachekit.Store { return newDisk(t, "", nil) }},
		{"redis", func(t *testing.T) cachekit.Store { return newRedis(t, "") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := tc.open(t)
			ctx := testContext(t)
			if _, ok := s.(cachekit.Notifier); !ok {
				t.Fatalf("%T is not a cachekit.Notifier", s)
			}
			holder, err := lock.NewLock(s, "l", lock.LockOptions{})
			if err != nil {
				t.Fatal(err)
			}
			// The first retry would come after 10 to 20 s.
			waiter, err := lock.NewLock(s, "l", lock.LockOptions{Backoff: lock.Backoff{Min: 20 * time.Second, Max: time.Minute}})
			if err != nil {
				t.Fatal(err)
			}
			if err := holder.Acquire(ctx); err != nil {
				t.Fatal(err)
			}
			// Release once the waiter has surely subscribed and is asleep.
			released := make(chan time.Time, 1)
			time.AfterFunc(500*time.Millisecond, func() {
				if err := holder.Release(ctx); err != nil {
					t.Errorf("Release: %v", err)
				}
				released <- time.Now()
			})
			if err := waiter.Acquire(ctx); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(<-released); d > 3*time.Second {
				t.Errorf("Acquire returned %v after the release, want well under the 10 s backoff", d)
			}
		})
	}
}

type bare struct{ cachekit.Store }

type leaseOnly struct {
	cachekit.Store
	cachekit.Leaser
}

func TestCapabilities(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	m := newMemory(t, nil)
	s := bare{m}
	for name, err := range map[string]error{
		"NewLock":      second(lock.NewLock(s, "k", lock.LockOptions{})),
		"NewRLock":     second(lock.NewRLock(s, "k", lock.RLockOptions{})),
		"NewSemaphore": second(lock.NewSemaphore(s, "k", lock.SemaphoreOptions{})),
		"NewBarrier":   second(lock.NewBarrier(s, "k", lock.BarrierOptions{})),
		"NewThrottle":  second(lock.NewThrottle(s, "k", lock.ThrottleOptions{Count: 1, Period: time.Second})),
		"NewAverager":  second(lock.NewAverager(s, "k", lock.AveragerOptions{})),
	} {
		if !errors.Is(err, cachekit.ErrNotSupported) {
			t.Errorf("%s on a store without Leaser: %v, want ErrNotSupported", name, err)
		}
	}
	l, err := lock.NewLock(leaseOnly{m, m}, "k", lock.LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Extend(ctx, 0); !errors.Is(err, cachekit.ErrNotSupported) {
		t.Errorf("Extend on a store without Toucher: %v, want ErrNotSupported", err)
	}
}

func second[T any](_ T, err error) error { return err }

func TestOptionsValidation(t *testing.T) {
	t.Parallel()
	s := newMemory(t, nil)
	for name, err := range map[string]error{
		"empty key":         second(lock.NewLock(s, "", lock.LockOptions{})),
		"nil store":         second(lock.NewLock(nil, "k", lock.LockOptions{})),
		"negative expiry":   second(lock.NewLock(s, "k", lock.LockOptions{Expiry: -1})),
		"negative backoff":  second(lock.NewRLock(s, "k", lock.RLockOptions{Backoff: lock.Backoff{Min: -1}})),
		"negative limit":    second(lock.NewSemaphore(s, "k", lock.SemaphoreOptions{Limit: -1})),
		"zero count":        second(lock.NewThrottle(s, "k", lock.ThrottleOptions{Period: time.Second})),
		"zero period":       second(lock.NewThrottle(s, "k", lock.ThrottleOptions{Count: 1})),
		"negative burst":    second(lock.NewThrottle(s, "k", lock.ThrottleOptions{Count: 1, Period: time.Second, Burst: -1})),
		"negative avg exp.": second(lock.NewAverager(s, "k", lock.AveragerOptions{Expiry: -1})),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestStoreErrors checks that a failing store gives errors, never a false.
func TestStoreErrors(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := newMemory(t, nil)
	l, err := lock.NewLock(s, "l", lock.LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := lock.NewRLock(s, "r", lock.RLockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sem, err := lock.NewSemaphore(s, "s", lock.SemaphoreOptions{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	th, err := lock.NewThrottle(s, "t", lock.ThrottleOptions{Count: 1, Period: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	avg, err := lock.NewAverager(s, "a", lock.AveragerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for name, err := range map[string]error{
		"Lock.TryAcquire":      second(l.TryAcquire(ctx)),
		"Lock.Acquire":         l.Acquire(ctx),
		"Lock.Release":         l.Release(ctx),
		"Lock.Locked":          second(l.Locked(ctx)),
		"RLock.TryAcquire":     second(r.TryAcquire(ctx)),
		"RLock.Acquire":        r.Acquire(ctx),
		"Semaphore.TryAcquire": second(sem.TryAcquire(ctx)),
		"Semaphore.Acquire":    sem.Acquire(ctx),
		"Throttle.Allow":       second(th.Allow(ctx)),
		"Throttle.Wait":        th.Wait(ctx),
		"Averager.Add":         avg.Add(ctx, 1),
	} {
		if !errors.Is(err, cachekit.ErrClosed) {
			t.Errorf("%s on a closed store: %v, want ErrClosed", name, err)
		}
	}
}
