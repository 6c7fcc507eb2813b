package lock

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"strconv"
	"time"

	"github.com/cachekit/cachekit"
)

// RLockOptions configures an [RLock]. The zero value is valid.
type RLockOptions struct {
	// Owner names the owner this RLock acquires for. RLock values with the
	// same Owner, in one process or several, are the same owner: each
	// re-enters the others' hold and may release it. Default: a random
	// name of this RLock value's own.
	Owner string

	// Expiry bounds how long a hold lasts without a new Acquire or
	// Release (each restarts it), and so how long a crashed owner keeps
	// the lock, whatever its count. Default [DefaultExpiry] (30 s);
	// [cachekit.NoExpiry] never expires. Negative is an error.
	Expiry time.Duration

	// Backoff paces Acquire's retries. Default: 1 ms doubling up to 100 ms.
	Backoff Backoff

	// NoNotify: as [LockOptions].NoNotify.
	NoNotify bool
}

// RLock is a re-entrant lock shared across goroutines and processes
// (DiskCache's RLock): its owner may acquire it again while holding it,
// and it is free once the owner has released it as many times as it
// acquired it. Other owners wait meanwhile.
//
// The owner and its count are stored under the key ("<count> <owner>"),
// and changed under the package's guard (see State updates in the package
// documentation). An RLock is safe for concurrent use; goroutines sharing
// one RLock are one owner.
type RLock struct {
	g      *guard
	owner  []byte
	expiry time.Duration
	w      *waiter
}

// NewRLock returns an RLock on key in s. It fails when s is not a
// [cachekit.Leaser], when key is empty, or when opts are invalid.
func NewRLock(s cachekit.Store, key string, opts RLockOptions) (*RLock, error) {
	l, err := leaserOf(s, "rlock", key)
	if err != nil {
		return nil, err
	}
	expiry, err := expiryOf(opts.Expiry, "rlock")
	if err != nil {
		return nil, err
	}
	bo, err := opts.Backoff.withDefaults()
	if err != nil {
		return nil, err
	}
	owner := opts.Owner
	if owner == "" {
		owner = rand.Text()
	}
	return &RLock{
		g:      newGuard(s, l, key),
		owner:  []byte(owner),
		expiry: expiry,
		w:      newWaiter(s, opts.NoNotify, bo, func(k string) bool { return k == key }),
	}, nil
}

// Owner returns the owner name this RLock acquires for.
func (r *RLock) Owner() string { return string(r.owner) }

// Acquire waits until this owner holds the lock, and adds one to its
// count. It returns an error wrapping ctx.Err() when ctx ends first, and
// the store's error (wrapped) when the store fails.
func (r *RLock) Acquire(ctx context.Context) error {
	err := r.w.wait(ctx, r.try, r.free)
	if err != nil {
		return fmt.Errorf("lock: rlock acquire %q: %w", r.g.key, err)
	}
	return nil
}

// TryAcquire acquires the lock if it is free or already this owner's, and
// reports whether it did, without waiting for another owner.
func (r *RLock) TryAcquire(ctx context.Context) (bool, error) {
	ok, err := r.try(ctx)
	if err != nil {
		return false, fmt.Errorf("lock: rlock acquire %q: %w", r.g.key, err)
	}
	return ok, nil
}

func (r *RLock) try(ctx context.Context) (bool, error) {
	var granted bool
	err := r.g.update(ctx, func(cur []byte, found bool) (edit, error) {
		granted = false
		n := 0
		if found {
			c, owner, err := parseRLock(cur)
			if err != nil {
				return edit{}, err
			}
			if !bytes.Equal(owner, r.owner) {
				return edit{}, nil
			}
			n = c
		}
		granted = true
		return edit{op: put, val: formatRLock(n+1, r.owner), ttl: r.expiry}, nil
	})
	return granted && err == nil, err
}

// free is the waiter's probe: the lock is absent or this owner's.
func (r *RLock) free(ctx context.Context) (bool, error) {
	cur, found, err := r.g.read(ctx)
	if err != nil || !found {
		return err == nil, err
	}
	_, owner, err := parseRLock(cur)
	if err != nil {
		return false, err
	}
	return bytes.Equal(owner, r.owner), nil
}

// Release subtracts one from this owner's count, and frees the lock when
// the count reaches zero. It returns an error wrapping [ErrNotHeld], and
// changes nothing, when this owner does not hold the lock (never acquired,
// fully released, expired, or another owner's now).
func (r *RLock) Release(ctx context.Context) error {
	err := r.g.update(ctx, func(cur []byte, found bool) (edit, error) {
		if !found {
			return edit{}, fmt.Errorf("%w: not held by %q (or expired)", ErrNotHeld, r.owner)
		}
		n, owner, err := parseRLock(cur)
		if err != nil {
			return edit{}, err
		}
		if !bytes.Equal(owner, r.owner) {
			return edit{}, fmt.Errorf("%w: held by another owner, not %q", ErrNotHeld, r.owner)
		}
		if n <= 1 {
			return edit{op: del}, nil
		}
		return edit{op: put, val: formatRLock(n-1, r.owner), ttl: r.expiry}, nil
	})
	if err != nil {
		return fmt.Errorf("lock: rlock release %q: %w", r.g.key, err)
	}
	return nil
}

// Count returns how many times this owner holds the lock now: 0 when it
// does not (free, or another owner's).
func (r *RLock) Count(ctx context.Context) (int, error) {
	cur, found, err := r.g.read(ctx)
	if err != nil {
		return 0, fmt.Errorf("lock: rlock count %q: %w", r.g.key, err)
	}
	if !found {
		return 0, nil
	}
	n, owner, err := parseRLock(cur)
	if err != nil {
		return 0, fmt.Errorf("lock: rlock count %q: %w", r.g.key, err)
	}
	if !bytes.Equal(owner, r.owner) {
		return 0, nil
	}
	return n, nil
}

func formatRLock(n int, owner []byte) []byte {
	b := strconv.AppendInt(nil, int64(n), 10)
	b = append(b, ' ')
	return append(b, owner...)
}

func parseRLock(v []byte) (int, []byte, error) {
	c, owner, ok := bytes.Cut(v, []byte{' '})
	n, err := strconv.Atoi(string(c))
	if !ok || err != nil || n < 1 {
		return 0, nil, fmt.Errorf("%w: rlock state %.40q", cachekit.ErrCorrupt, v)
	}
	return n, owner, nil
}
