package lock_test

import (
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/cachetest"
	"github.com/cachekit/cachekit/lock"
)

// TestAveragerConcurrent has workers add disjoint ranges of integers at
// once: no add is lost, so the mean is exact.
func TestAveragerConcurrent(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s cachekit.Store) {
		const workers, each = 4, 20
		ctx := testContext(t)
		var wg sync.WaitGroup
		for w := range workers {
			a, err := lock.NewAverager(s, "avg", lock.AveragerOptions{})
			if err != nil {
				t.Fatal(err)
			}
			wg.Go(func() {
				for i := range each {
					if err := a.Add(ctx, float64(w*each+i)); err != nil {
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
		a, err := lock.NewAverager(s, "avg", lock.AveragerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		const n = workers * each
		wantMean := float64(n-1) / 2 // mean of 0..n-1
		mean, count, err := a.Mean(ctx)
		if err != nil || mean != wantMean || count != n {
			t.Errorf("Mean = %v, %d, %v; want %v, %d", mean, count, err, wantMean, n)
		}
		mean, count, err = a.Pop(ctx)
		if err != nil || mean != wantMean || count != n {
			t.Errorf("Pop = %v, %d, %v; want %v, %d", mean, count, err, wantMean, n)
		}
		if _, _, err := a.Mean(ctx); !errors.Is(err, cachekit.ErrMiss) {
			t.Errorf("Mean after Pop: %v, want ErrMiss", err)
		}
		if _, _, err := a.Pop(ctx); !errors.Is(err, cachekit.ErrMiss) {
			t.Errorf("Pop after Pop: %v, want ErrMiss", err)
		}
		if err := a.Add(ctx, math.NaN()); err == nil {
			t.Error("Add(NaN): no error")
		}
	})
}

func TestAveragerExpiry(t *testing.T) {
	t.Parallel()
	eachFakeClockStore(t, func(t *testing.T, s cachekit.Store, clock *cachetest.FakeClock) {
		ctx := testContext(t)
		a, err := lock.NewAverager(s, "avg", lock.AveragerOptions{Expiry: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range []float64{1, 2.5} {
			if err := a.Add(ctx, x); err != nil {
				t.Fatal(err)
			}
		}
		clock.Advance(50 * time.Second)
		if err := a.Add(ctx, 4.5); err != nil { // restarts the expiry
			t.Fatal(err)
		}
		clock.Advance(50 * time.Second)
		if mean, count, err := a.Mean(ctx); err != nil || mean != 8.0/3 || count != 3 {
			t.Errorf("Mean = %v, %d, %v; want %v, 3", mean, count, err, 8.0/3)
		}
		clock.Advance(11 * time.Second)
		if _, _, err := a.Mean(ctx); !errors.Is(err, cachekit.ErrMiss) {
			t.Errorf("Mean a minute after the last Add: %v, want ErrMiss", err)
		}
	})
}
