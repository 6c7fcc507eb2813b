package lock_test

import (
	"context"
	"errors"
	"math"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/cachetest"
	"github.com/cachekit/cachekit/lock"
)

// checkWindows fails t if some window [t, t+period) holds more than limit
// of the sorted times.
func checkWindows(t *testing.T, times []time.Time, limit int, period time.Duration) {
	t.Helper()
	for i := 0; i+limit < len(times); i++ {
		if d := times[i+limit].Sub(times[i]); d < period {
			t.Errorf("%d calls passed within %v (from %v), want at most %d per %v",
				limit+1, d, times[i].Sub(epoch), limit, period)
			return
		}
	}
}

// checkRate fails t unless n calls in span match count per period within 5%.
func checkRate(t *testing.T, n int, span time.Duration, count int, period time.Duration) {
	t.Helper()
	want := float64(count) * span.Seconds() / period.Seconds()
	if math.Abs(float64(n)-want) > 0.05*want {
		t.Errorf("%d calls passed in %v, want %.0f ± 5%%", n, span, want)
	}
}

// TestThrottleRate has one caller Wait in a loop for 10 s of fake time.
func TestThrottleRate(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s cachekit.Store) {
		const count, period, span = 50, time.Second, 10 * time.Second
		ctx := testContext(t)
		clock := cachetest.NewFakeClock(epoch)
		th, err := lock.NewThrottle(s, "t", lock.ThrottleOptions{
			Count: count, Period: period, Clock: clock,
			Sleep: func(ctx context.Context, d time.Duration) error {
				if d <= 0 {
					t.Errorf("Sleep(%v), want a positive pause", d)
				}
				clock.Advance(d)
				return ctx.Err()
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		var times []time.Time
		for {
			if err := th.Wait(ctx); err != nil {
				t.Fatal(err)
			}
			now := clock.Now()
			if now.Sub(epoch) >= span {
				break
			}
			times = append(times, now)
		}
		checkRate(t, len(times), span, count, period)
		checkWindows(t, times, count, period)
	})
}

// TestThrottleConcurrent has several callers try at every tick of a fake
// clock; the rate holds and no window of Period exceeds Count (with the
// default Burst) or Count+Burst-1.
func TestThrottleConcurrent(t *testing.T) {
	t.Parallel()
	for _, burst := range []int{0, 5} {
		t.Run("burst="+strconv.Itoa(burst), func(t *testing.T) {
			t.Parallel()
			const count, period, span, tick, workers = 20, time.Second, 10 * time.Second, 5 * time.Millisecond, 4
			ctx := testContext(t)
			clock := cachetest.NewFakeClock(epoch)
			s := newMemory(t, clock)
			th, err := lock.NewThrottle(s, "t", lock.ThrottleOptions{Count: count, Period: period, Burst: burst, Clock: clock})
			if err != nil {
				t.Fatal(err)
			}
			var times []time.Time
			var mu sync.Mutex // protects times
			for now := clock.Now(); now.Sub(epoch) < span; now = clock.Now() {
				var wg sync.WaitGroup
				for range workers {
					wg.Go(func() {
						ok, err := th.Allow(ctx)
						if err != nil {
							t.Error(err)
							return
						}
						if ok {
							mu.Lock()
							times = append(times, now)
							mu.Unlock()
						}
					})
				}
				wg.Wait()
				clock.Advance(tick)
			}
			slices.SortFunc(times, time.Time.Compare)
			checkRate(t, len(times), span, count, period)
			checkWindows(t, times, count+max(burst, 1)-1, period)
		})
	}
}

func TestThrottleBurst(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	clock := cachetest.NewFakeClock(epoch)
	s := newMemory(t, clock)
	th, err := lock.NewThrottle(s, "t", lock.ThrottleOptions{Count: 10, Period: time.Second, Burst: 5, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	allow := func() bool {
		t.Helper()
		ok, err := th.Allow(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	for i := range 5 {
		if !allow() {
			t.Fatalf("Allow %d of a burst of 5 = false", i)
		}
	}
	if allow() {
		t.Fatal("Allow past the burst = true")
	}
	clock.Advance(100 * time.Millisecond)
	if !allow() {
		t.Fatal("Allow one interval later = false")
	}
	if allow() {
		t.Fatal("second Allow one interval later = true")
	}
	clock.Advance(time.Hour) // refilled, not beyond Burst
	for i := range 5 {
		if !allow() {
			t.Fatalf("Allow %d after an hour = false", i)
		}
	}
	if allow() {
		t.Fatal("Allow past the burst after an hour = true")
	}
}

func TestThrottleWaitContext(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s cachekit.Store) {
		ctx := testContext(t)
		th, err := lock.NewThrottle(s, "t", lock.ThrottleOptions{Count: 1, Period: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if err := th.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		if err := th.Wait(wctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Wait: %v, want an error wrapping context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Wait returned %v after start, want about 100ms", d)
		}
		if ok, err := th.Allow(ctx); err != nil || ok {
			t.Errorf("Allow = %v, %v; want false", ok, err)
		}
	})
}
