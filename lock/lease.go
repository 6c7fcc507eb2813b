package lock

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cachekit/cachekit"
)

// ErrNotHeld reports a Release or Extend by a caller that does not hold
// the lock: it never acquired it, already released it, or its hold expired
// (and possibly passed to another owner). Nothing was changed in the store.
var ErrNotHeld = errors.New("lock: not held")

// DefaultExpiry is the expiry of a hold when the Options leave it zero.
const DefaultExpiry = 30 * time.Second

// releaseTimeout bounds a release that runs on a context the caller has
// cancelled (see [Barrier.Do] and the guard).
const releaseTimeout = 5 * time.Second

// leaserOf returns s as a Leaser, or an error for the constructor of what.
func leaserOf(s cachekit.Store, what, key string) (cachekit.Leaser, error) {
	if s == nil {
		return nil, fmt.Errorf("lock: new %s: nil store", what)
	}
	if key == "" {
		return nil, fmt.Errorf("lock: new %s: empty key", what)
	}
	l, ok := s.(cachekit.Leaser)
	if !ok {
		return nil, fmt.Errorf("lock: new %s %q: store %T is not a cachekit.Leaser: %w", what, key, s, cachekit.ErrNotSupported)
	}
	return l, nil
}

// expiryOf resolves an Options.Expiry.
func expiryOf(d time.Duration, what string) (time.Duration, error) {
	switch {
	case d < 0:
		return 0, fmt.Errorf("lock: new %s: negative expiry %v", what, d)
	case d == 0:
		return DefaultExpiry, nil
	}
	return d, nil
}

// lease is one hold of a key through the store's Leaser.
type lease struct {
	store   cachekit.Store
	key     string
	token   []byte // what the Leaser wrote under key; nil if it had expired before we read it
	release func(context.Context) error
}

// takeLease tries once to lease key for ttl. It reads back the owner token
// the store wrote, so that later checks can tell this hold from the next
// owner's.
func takeLease(ctx context.Context, s cachekit.Store, l cachekit.Leaser, key string, ttl time.Duration) (*lease, bool, error) {
	release, ok, err := l.Lease(ctx, key, ttl)
	if err != nil || !ok {
		return nil, false, err
	}
	tok, err := s.Get(ctx, key)
	switch {
	case errors.Is(err, cachekit.ErrMiss):
		// Expired already (a ttl shorter than a round trip): held in name
		// only, and every check will say so.
		tok = nil
	case err != nil:
		// We cannot tell our lease from the next one: give it back.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		defer cancel()
		return nil, false, errors.Join(err, release(rctx))
	}
	return &lease{store: s, key: key, token: tok, release: release}, true, nil
}

// check returns nil while the lease is still this holder's, an error
// wrapping ErrNotHeld when it is not, or the store's error.
func (h *lease) check(ctx context.Context) error {
	v, err := h.store.Get(ctx, h.key)
	switch {
	case errors.Is(err, cachekit.ErrMiss):
		return fmt.Errorf("%w: the hold on %q expired", ErrNotHeld, h.key)
	case err != nil:
		return err
	case h.token == nil || !bytes.Equal(v, h.token):
		return fmt.Errorf("%w: the hold on %q expired and passed to another owner", ErrNotHeld, h.key)
	}
	return nil
}

// free gives the lease up. It returns ErrNotHeld (and frees nothing) when
// the lease is no longer this holder's; the store's own release is
// owner-checked too, so a lease that lapses after the check is not freed
// either.
func (h *lease) free(ctx context.Context) error {
	if err := h.check(ctx); err != nil {
		return err
	}
	return h.release(ctx)
}

// extend gives the lease a new ttl if it is still this holder's.
func (h *lease) extend(ctx context.Context, ttl time.Duration) error {
	t, ok := h.store.(cachekit.Toucher)
	if !ok {
		return fmt.Errorf("store %T is not a cachekit.Toucher: %w", h.store, cachekit.ErrNotSupported)
	}
	if err := h.check(ctx); err != nil {
		return err
	}
	live, err := t.Touch(ctx, h.key, ttl)
	if err != nil {
		return err
	}
	if !live {
		return fmt.Errorf("%w: the hold on %q expired", ErrNotHeld, h.key)
	}
	return nil
}

// mutex is the exclusive lease on one key shared by [Lock] and [Barrier]:
// the store, the key and the waiting policy, but no holder state.
type mutex struct {
	store  cachekit.Store
	leaser cachekit.Leaser
	key    string
	expiry time.Duration
	w      *waiter
}

func newMutex(s cachekit.Store, key, what string, expiry time.Duration, bo Backoff, noNotify bool) (*mutex, error) {
	l, err := leaserOf(s, what, key)
	if err != nil {
		return nil, err
	}
	if expiry, err = expiryOf(expiry, what); err != nil {
		return nil, err
	}
	if bo, err = bo.withDefaults(); err != nil {
		return nil, err
	}
	m := &mutex{store: s, leaser: l, key: key, expiry: expiry}
	m.w = newWaiter(s, noNotify, bo, func(k string) bool { return k == key })
	return m, nil
}

// try takes the lease if it is free.
func (m *mutex) try(ctx context.Context) (*lease, bool, error) {
	return takeLease(ctx, m.store, m.leaser, m.key, m.expiry)
}

// acquire waits for the lease.
func (m *mutex) acquire(ctx context.Context) (*lease, error) {
	var h *lease
	err := m.w.wait(ctx, func(ctx context.Context) (bool, error) {
		var ok bool
		var err error
		h, ok, err = m.try(ctx)
		return ok, err
	}, m.free)
	return h, err
}

// free reports whether nothing is stored under the key (a hint: the lease
// decides).
func (m *mutex) free(ctx context.Context) (bool, error) {
	_, err := m.store.Get(ctx, m.key)
	if errors.Is(err, cachekit.ErrMiss) {
		return true, nil
	}
	return false, err
}

// guardTTL is the lifetime of the guard lease of a read-modify-write
// cycle; a cycle abandons its write after half of it.
const guardTTL = 5 * time.Second

// guardBackoff paces the retries of a cycle that found the guard taken:
// cycles are short (a few round trips), so it starts lower than the
// waiting calls' default.
var guardBackoff = Backoff{Min: 200 * time.Microsecond, Max: 20 * time.Millisecond}

// errSlow reports a cycle that took too long to write safely.
var errSlow = errors.New("lock: update too slow for its guard")

// guard serialises read-modify-write cycles on one key across processes:
// each cycle holds a short lease on a companion key.
type guard struct {
	store    cachekit.Store
	leaser   cachekit.Leaser
	key      string // the guarded value
	guardKey string
}

func newGuard(s cachekit.Store, l cachekit.Leaser, key string) *guard {
	return &guard{store: s, leaser: l, key: key, guardKey: key + "#guard"}
}

// edit is what a cycle writes.
type edit struct {
	op  editOp
	val []byte
	ttl time.Duration
}

type editOp int

const (
	keep editOp = iota // write nothing
	put                // Set val with ttl
	del                // Delete the key
)

// update runs one cycle: it reads key, calls fn with its value (nil and
// false when absent) and applies the edit fn returns, all under the guard.
// fn may run more than once (a slow cycle is retried) and must only
// compute; its results should be captured on each call. An error from fn
// aborts the cycle unwritten and is returned as is.
func (g *guard) update(ctx context.Context, fn func(cur []byte, found bool) (edit, error)) error {
	bo := guardBackoff.start()
	for {
		start := time.Now()
		release, ok, err := g.leaser.Lease(ctx, g.guardKey, guardTTL)
		if err != nil {
			return err
		}
		if !ok {
			if err := sleep(ctx, bo.next()); err != nil {
				return err
			}
			continue
		}
		err = g.apply(ctx, start, fn)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		rerr := release(rctx)
		cancel()
		switch {
		case errors.Is(err, errSlow) && rerr == nil:
			continue
		case err == nil:
			// The edit took effect: a guard left behind only delays other
			// cycles until it expires, so this is not the caller's failure.
			return nil
		}
		return errors.Join(err, rerr)
	}
}

func (g *guard) apply(ctx context.Context, start time.Time, fn func([]byte, bool) (edit, error)) error {
	cur, err := g.store.Get(ctx, g.key)
	found := err == nil
	if err != nil && !errors.Is(err, cachekit.ErrMiss) {
		return err
	}
	e, err := fn(cur, found)
	if err != nil || e.op == keep {
		return err
	}
	// Past half its lifetime, the guard may expire before the write lands
	// and another cycle may already have read the old value: write nothing.
	if time.Since(start) > guardTTL/2 {
		return errSlow
	}
	switch e.op {
	case put:
		return g.store.Set(ctx, g.key, e.val, e.ttl)
	case del:
		_, err := g.store.Delete(ctx, g.key)
		return err
	}
	return nil
}

// read returns the guarded value without the guard: a Get is atomic.
func (g *guard) read(ctx context.Context) ([]byte, bool, error) {
	v, err := g.store.Get(ctx, g.key)
	if errors.Is(err, cachekit.ErrMiss) {
		return nil, false, nil
	}
	return v, err == nil, err
}
