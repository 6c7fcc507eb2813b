package lock

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cachekit/cachekit"
)

// LockOptions configures a [Lock]. The zero value is valid.
type LockOptions struct {
	// Expiry bounds how long a hold lasts without Release or Extend, and so
	// how long a crashed holder keeps the lock. Default [DefaultExpiry]
	// (30 s); [cachekit.NoExpiry] never expires (a crashed holder then keeps
	// the lock until someone deletes the key). Negative is an error.
	Expiry time.Duration

	// Backoff paces Acquire's retries. Default: 1 ms doubling up to 100 ms.
	Backoff Backoff

	// NoNotify stops Acquire from subscribing to the store's
	// invalidations (when it is a [cachekit.Notifier]) to wake early; it
	// then relies on Backoff alone. Default false.
	NoNotify bool
}

// Lock is a mutual-exclusion lock shared by every goroutine and process
// that uses the same store and key (DiskCache's Lock, with an owner check
// on release).
//
// A Lock value is one owner. Goroutines sharing a value share its hold, as
// with a sync.Mutex: any of them may release what another acquired. Lock
// is not re-entrant: Acquire on a value that already holds the lock waits
// until the hold is released or expires (use [RLock] to re-enter). A Lock
// is safe for concurrent use.
type Lock struct {
	m *mutex

	mu   sync.Mutex // protects held
	held *lease     // the current hold; nil when this value holds nothing
}

// NewLock returns a Lock on key in s. It fails when s is not a
// [cachekit.Leaser] (an error wrapping [cachekit.ErrNotSupported]), when key
// is empty, or when opts are invalid.
func NewLock(s cachekit.Store, key string, opts LockOptions) (*Lock, error) {
	m, err := newMutex(s, key, "lock", opts.Expiry, opts.Backoff, opts.NoNotify)
	if err != nil {
		return nil, err
	}
	return &Lock{m: m}, nil
}

// Key returns the lock's key.
func (l *Lock) Key() string { return l.m.key }

// Acquire waits until it holds the lock. It returns an error wrapping
// ctx.Err() when ctx ends first, and the store's error (wrapped) when the
// store fails; it then holds nothing.
func (l *Lock) Acquire(ctx context.Context) error {
	h, err := l.m.acquire(ctx)
	if err != nil {
		return fmt.Errorf("lock: acquire %q: %w", l.m.key, err)
	}
	l.set(h)
	return nil
}

// TryAcquire takes the lock if it is free and reports whether it did,
// without waiting. A store failure is an error, never a false.
func (l *Lock) TryAcquire(ctx context.Context) (bool, error) {
	h, ok, err := l.m.try(ctx)
	if err != nil {
		return false, fmt.Errorf("lock: acquire %q: %w", l.m.key, err)
	}
	if ok {
		l.set(h)
	}
	return ok, nil
}

func (l *Lock) set(h *lease) {
	l.mu.Lock()
	l.held = h
	l.mu.Unlock()
}

// Release gives the lock up. It returns an error wrapping [ErrNotHeld],
// and changes nothing, when this value does not hold the lock: it never
// acquired it, already released it, or its hold expired (possibly passing
// to another owner, whose hold stays). On a store error the value still
// counts as holding: Release may be called again, and the hold expires
// anyway.
func (l *Lock) Release(ctx context.Context) error {
	l.mu.Lock()
	h := l.held
	l.held = nil
	l.mu.Unlock()
	if h == nil {
		return fmt.Errorf("lock: release %q: %w", l.m.key, ErrNotHeld)
	}
	err := h.free(ctx)
	if err != nil && !errors.Is(err, ErrNotHeld) {
		l.mu.Lock()
		if l.held == nil {
			l.held = h
		}
		l.mu.Unlock()
	}
	if err != nil {
		return fmt.Errorf("lock: release %q: %w", l.m.key, err)
	}
	return nil
}

// Extend gives the current hold a new expiry of ttl from now (zero means
// LockOptions.Expiry), so a holder that needs longer keeps the lock. It
// needs a store that is a [cachekit.Toucher] (every store of this module
// is) and returns an error wrapping [cachekit.ErrNotSupported] otherwise;
// it returns an error wrapping [ErrNotHeld] when this value does not hold
// the lock. See the package Caveats for its one race.
func (l *Lock) Extend(ctx context.Context, ttl time.Duration) error {
	if ttl <= 0 {
		ttl = l.m.expiry
	}
	l.mu.Lock()
	h := l.held
	l.mu.Unlock()
	if h == nil {
		return fmt.Errorf("lock: extend %q: %w", l.m.key, ErrNotHeld)
	}
	if err := h.extend(ctx, ttl); err != nil {
		return fmt.Errorf("lock: extend %q: %w", l.m.key, err)
	}
	return nil
}

// Locked reports whether some owner (this one or another) holds the lock
// now. The answer may be stale as soon as it returns.
func (l *Lock) Locked(ctx context.Context) (bool, error) {
	free, err := l.m.free(ctx)
	if err != nil {
		return false, fmt.Errorf("lock: locked %q: %w", l.m.key, err)
	}
	return !free, nil
}

// BarrierOptions configures a [Barrier]. The zero value is valid.
type BarrierOptions struct {
	// Expiry bounds how long a crashed caller of Do keeps the barrier
	// closed. While fn runs, Do extends its hold every Expiry/3 when the
	// store is a [cachekit.Toucher], so fn may run longer than Expiry.
	// Default [DefaultExpiry] (30 s); [cachekit.NoExpiry] never expires.
	// Negative is an error.
	Expiry time.Duration

	// Backoff paces Do's retries while another caller runs. Default: 1 ms
	// doubling up to 100 ms.
	Backoff Backoff

	// NoNotify: as [LockOptions].NoNotify.
	NoNotify bool
}

// Barrier runs functions one at a time across every goroutine and process
// that uses the same store and key (DiskCache's barrier decorator). Each
// call of Do is its own owner. A Barrier is safe for concurrent use.
type Barrier struct {
	m *mutex
}

// NewBarrier returns a Barrier on key in s. It fails when s is not a
// [cachekit.Leaser], when key is empty, or when opts are invalid.
func NewBarrier(s cachekit.Store, key string, opts BarrierOptions) (*Barrier, error) {
	m, err := newMutex(s, key, "barrier", opts.Expiry, opts.Backoff, opts.NoNotify)
	if err != nil {
		return nil, err
	}
	return &Barrier{m: m}, nil
}

// Do waits until no other caller holds the barrier, then runs fn holding
// it, and releases it when fn returns (or panics). It returns fn's error,
// joined with the failure to release.
//
// The context passed to fn is done when ctx is, and also when Do finds
// that its hold was lost (the store lost the key, or an extension failed
// to arrive before the expiry), with cause [ErrNotHeld]: fn should then
// stop, since another caller may be running. The release runs even when
// ctx was cancelled (on a context without ctx's cancellation, bounded by
// 5 s). Do returns an error wrapping ctx.Err() when ctx ends before fn
// could start.
func (b *Barrier) Do(ctx context.Context, fn func(ctx context.Context) error) (err error) {
	h, err := b.m.acquire(ctx)
	if err != nil {
		return fmt.Errorf("lock: barrier %q: %w", b.m.key, err)
	}
	fctx, cancel := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel(nil)
		wg.Wait()
		rctx, stop := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		defer stop()
		if rerr := h.free(rctx); rerr != nil {
			err = errors.Join(err, fmt.Errorf("lock: barrier %q: release: %w", b.m.key, rerr))
		}
	}()
	if _, ok := b.m.store.(cachekit.Toucher); ok && b.m.expiry != cachekit.NoExpiry {
		wg.Go(func() { b.keepAlive(fctx, cancel, h) })
	}
	return fn(fctx)
}

// keepAlive extends h every expiry/3 until ctx is done, and cancels ctx
// with ErrNotHeld once the hold is lost or could not be extended in time.
func (b *Barrier) keepAlive(ctx context.Context, cancel context.CancelCauseFunc, h *lease) {
	t := time.NewTicker(max(b.m.expiry/3, time.Millisecond))
	defer t.Stop()
	deadline := time.Now().Add(b.m.expiry)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sent := time.Now()
		err := h.extend(ctx, b.m.expiry)
		switch {
		case ctx.Err() != nil:
			return // fn returned meanwhile
		case err == nil:
			deadline = sent.Add(b.m.expiry)
			continue
		case errors.Is(err, ErrNotHeld):
			cancel(fmt.Errorf("lock: barrier %q: %w", b.m.key, err))
			return
		case time.Now().After(deadline):
			cancel(fmt.Errorf("lock: barrier %q: %w: could not extend the hold before it expired: %w", b.m.key, ErrNotHeld, err))
			return
		}
		// A transient store error: try again at the next tick.
	}
}
