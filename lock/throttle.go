package lock

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/cachekit/cachekit"
)

// ThrottleOptions configures a [Throttle]. Count and Period are required.
type ThrottleOptions struct {
	// Count calls are allowed per Period, on average; required, at least 1.
	Count int

	// Period is the length of the window Count applies to; required,
	// positive.
	Period time.Duration

	// Burst is how many calls may pass back to back after a quiet spell:
	// the capacity of the token bucket. Default 1: calls are spaced at
	// least Period/Count apart, so no window of length Period ever admits
	// more than Count of them. With a larger Burst, such a window admits up
	// to Count+Burst-1 (Burst = Count is DiskCache's throttle, which starts
	// with a full bucket). Negative is an error.
	Burst int

	// Clock is the time source. Processes sharing a throttle must use
	// clocks that agree (the default wall clock does, on hosts kept in
	// sync by NTP). Tests inject a fake one. Default [cachekit.SystemClock].
	Clock cachekit.Clock

	// Sleep pauses Wait for d, or until ctx is done (then returning
	// ctx.Err()). Tests pair it with a fake Clock, for instance by
	// advancing the clock by d. Default: a timer.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Throttle limits a rate of calls shared by every goroutine and process
// that uses the same store and key (DiskCache's throttle): Count per
// Period, with bursts of up to Burst.
//
// It is a token bucket kept as one timestamp, the theoretical arrival time
// of the next call (GCRA): a call at time now passes when the stored time
// is at most now + (Burst-1)·Period/Count, and moves it to
// max(stored, now) + Period/Count. The timestamp is read and written under
// the package's guard (see State updates in the package documentation),
// so concurrent callers never spend the same token; its key expires once
// the bucket is full again. A Throttle is safe for concurrent use.
type Throttle struct {
	g        *guard
	interval time.Duration // Period/Count, rounded up
	tau      time.Duration // tolerance: (Burst-1)·interval
	period   time.Duration
	clock    cachekit.Clock
	sleep    func(context.Context, time.Duration) error
}

// NewThrottle returns a Throttle on key in s. It fails when s is not a
// [cachekit.Leaser], when key is empty, or when opts are invalid.
func NewThrottle(s cachekit.Store, key string, opts ThrottleOptions) (*Throttle, error) {
	l, err := leaserOf(s, "throttle", key)
	if err != nil {
		return nil, err
	}
	switch {
	case opts.Count < 1:
		return nil, fmt.Errorf("lock: new throttle: Count %d, want at least 1", opts.Count)
	case opts.Period <= 0:
		return nil, fmt.Errorf("lock: new throttle: Period %v, want a positive one", opts.Period)
	case opts.Burst < 0:
		return nil, fmt.Errorf("lock: new throttle: negative Burst %d", opts.Burst)
	case opts.Burst == 0:
		opts.Burst = 1
	}
	if opts.Clock == nil {
		opts.Clock = cachekit.SystemClock{}
	}
	if opts.Sleep == nil {
		opts.Sleep = sleep
	}
	// Rounding the interval up keeps Count+1 calls at least Period apart.
	interval := (opts.Period + time.Duration(opts.Count) - 1) / time.Duration(opts.Count)
	tau := time.Duration(math.MaxInt64)
	if b := int64(opts.Burst - 1); b < math.MaxInt64/int64(interval) {
		tau = time.Duration(b) * interval
	}
	return &Throttle{
		g: newGuard(s, l, key), interval: interval, tau: tau, period: opts.Period,
		clock: opts.Clock, sleep: opts.Sleep,
	}, nil
}

// Allow takes a token if one is available now and reports whether it did.
// It never waits for a token (only, briefly, for the guard of a concurrent
// update). A store failure is an error, never a false.
func (t *Throttle) Allow(ctx context.Context) (bool, error) {
	ok, _, err := t.take(ctx)
	if err != nil {
		return false, fmt.Errorf("lock: throttle %q: %w", t.g.key, err)
	}
	return ok, nil
}

// Wait blocks until it takes a token. It returns an error wrapping
// ctx.Err() when ctx ends first, and the store's error (wrapped) when the
// store fails.
func (t *Throttle) Wait(ctx context.Context) error {
	for {
		ok, d, err := t.take(ctx)
		if err != nil {
			return fmt.Errorf("lock: throttle %q: %w", t.g.key, err)
		}
		if ok {
			return nil
		}
		// d is when the next token is due: waiters that lose the race for
		// it learn the following due time at their next attempt.
		if err := t.sleep(ctx, d); err != nil {
			return fmt.Errorf("lock: throttle %q: %w", t.g.key, err)
		}
	}
}

// take runs one GCRA step. When it denies, wait is how long until a token
// is due.
func (t *Throttle) take(ctx context.Context) (ok bool, wait time.Duration, err error) {
	err = t.g.update(ctx, func(cur []byte, found bool) (edit, error) {
		ok, wait = false, 0
		now := t.clock.Now().UnixNano()
		tat := now
		if found {
			v, err := strconv.ParseInt(string(cur), 10, 64)
			if err != nil {
				return edit{}, fmt.Errorf("%w: throttle state %.40q", cachekit.ErrCorrupt, cur)
			}
			tat = max(tat, v)
		}
		if ahead := time.Duration(tat - now); ahead > t.tau {
			wait = ahead - t.tau
			return edit{}, nil
		}
		ok = true
		next := tat + int64(t.interval)
		// The state means nothing once next has passed (the bucket is
		// full); a Period more keeps it through clock differences between
		// processes.
		ttl := time.Duration(next-now) + t.period
		if ttl <= 0 { // overflowed: a Period of centuries
			ttl = cachekit.NoExpiry
		}
		return edit{op: put, val: strconv.AppendInt(nil, next, 10), ttl: ttl}, nil
	})
	return ok && err == nil, wait, err
}
