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

func TestBarrierSerialises(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s cachekit.Store) {
		const workers, each = 4, 10
		ctx := testContext(t)
		b, err := lock.NewBarrier(s, "b", lock.BarrierOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var inside, maxInside atomic.Int32
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for range each {
					err := b.Do(ctx, func(ctx context.Context) error {
						n := inside.Add(1)
						defer inside.Add(-1)
						for m := maxInside.Load(); n > m && !maxInside.CompareAndSwap(m, n); m = maxInside.Load() {
						}
						return incrUnsafe(ctx, s, "counter")
					})
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
		if m := maxInside.Load(); m != 1 {
			t.Errorf("at most %d calls ran at once, want 1", m)
		}
		if got, want := counter(t, ctx, s, "counter"), workers*each; got != want {
			t.Errorf("counter = %d, want %d", got, want)
		}
		// fn's error comes back, and the barrier is open again.
		boom := errors.New("boom")
		if err := b.Do(ctx, func(context.Context) error { return boom }); !errors.Is(err, boom) {
			t.Errorf("Do: %v, want fn's error", err)
		}
		l, err := lock.NewLock(s, "b", lock.LockOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := l.TryAcquire(ctx); err != nil || !ok {
			t.Errorf("TryAcquire after Do = %v, %v; want true", ok, err)
		}
	})
}

// TestBarrierKeepAlive runs fn for longer than the expiry: the barrier
// stays closed meanwhile.
func TestBarrierKeepAlive(t *testing.T) {
	t.Parallel()
	s := newDisk(t, "", nil)
	ctx := testContext(t)
	const expiry = 1500 * time.Millisecond
	b, err := lock.NewBarrier(s, "b", lock.BarrierOptions{Expiry: expiry})
	if err != nil {
		t.Fatal(err)
	}
	l, err := lock.NewLock(s, "b", lock.LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	err = b.Do(ctx, func(ctx context.Context) error {
		if err := sleepCtx(ctx, 2*expiry); err != nil {
			return err
		}
		if ok, err := l.TryAcquire(ctx); err != nil || ok {
			t.Errorf("TryAcquire while fn runs, 2 expiries in = %v, %v; want false", ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestBarrierLost lets the barrier's hold expire while fn runs: fn's
// context ends with ErrNotHeld, and so does Do.
func TestBarrierLost(t *testing.T) {
	t.Parallel()
	clock := cachetest.NewFakeClock(epoch)
	s := newMemory(t, clock)
	ctx := testContext(t)
	b, err := lock.NewBarrier(s, "b", lock.BarrierOptions{Expiry: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	err = b.Do(ctx, func(ctx context.Context) error {
		clock.Advance(time.Second) // the store expires the hold
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(10 * time.Second):
			return errors.New("fn's context not cancelled after the hold was lost")
		}
	})
	if !errors.Is(err, lock.ErrNotHeld) {
		t.Errorf("Do: %v, want an error wrapping ErrNotHeld", err)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// bare hides every capability of a store but those it embeds.
