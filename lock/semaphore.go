package lock

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cachekit/cachekit"
)

// SemaphoreOptions configures a [Semaphore]. The zero value is valid.
type SemaphoreOptions struct {
	// Limit is how many holders the semaphore admits at once. Default 1.
	// Every Semaphore on the same key must use the same Limit. Negative is
	// an error.
	Limit int

	// Expiry bounds how long a hold lasts without Release, and so how long
	// a crashed holder keeps its slot. Default [DefaultExpiry] (30 s);
	// [cachekit.NoExpiry] never expires. Negative is an error.
	Expiry time.Duration

	// Backoff paces Acquire's retries. Default: 1 ms doubling up to 100 ms.
	Backoff Backoff

	// NoNotify: as [LockOptions].NoNotify.
	NoNotify bool
}

// Semaphore admits at most Limit holders at once across every goroutine
// and process that uses the same store and key (DiskCache's
// BoundedSemaphore).
//
// It is Limit lease slots (keys key#0 … key#Limit-1) rather than a shared
// counter, so that a crashed holder's slot comes back by itself when its
// lease expires, and a hold is never counted twice or lost. Acquire
// leases any free slot, starting at a random one.
//
// A Semaphore value is one owner that may hold several slots: each Acquire
// adds one, each Release gives back the newest. A Semaphore is safe for
// concurrent use.
type Semaphore struct {
	store  cachekit.Store
	leaser cachekit.Leaser
	key    string
	slots  []string
	expiry time.Duration
	w      *waiter

	mu   sync.Mutex // protects held
	held []*lease   // this value's holds, oldest first
}

// NewSemaphore returns a Semaphore on key in s. It fails when s is not a
// [cachekit.Leaser], when key is empty, or when opts are invalid.
func NewSemaphore(s cachekit.Store, key string, opts SemaphoreOptions) (*Semaphore, error) {
	l, err := leaserOf(s, "semaphore", key)
	if err != nil {
		return nil, err
	}
	switch {
	case opts.Limit < 0:
		return nil, fmt.Errorf("lock: new semaphore: negative limit %d", opts.Limit)
	case opts.Limit == 0:
		opts.Limit = 1
	}
	expiry, err := expiryOf(opts.Expiry, "semaphore")
	if err != nil {
		return nil, err
	}
	bo, err := opts.Backoff.withDefaults()
	if err != nil {
		return nil, err
	}
	sem := &Semaphore{store: s, leaser: l, key: key, expiry: expiry, slots: make([]string, opts.Limit)}
	for i := range sem.slots {
		sem.slots[i] = key + "#" + strconv.Itoa(i)
	}
	sem.w = newWaiter(s, opts.NoNotify, bo, sem.isSlot)
	return sem, nil
}

// isSlot reports whether k is one of the semaphore's slot keys.
func (s *Semaphore) isSlot(k string) bool {
	rest, ok := strings.CutPrefix(k, s.key+"#")
	if !ok {
		return false
	}
	i, err := strconv.Atoi(rest)
	return err == nil && i >= 0 && i < len(s.slots) && s.slots[i] == k
}

// Limit returns how many holders the semaphore admits.
func (s *Semaphore) Limit() int { return len(s.slots) }

// Acquire waits until it holds a slot. It returns an error wrapping
// ctx.Err() when ctx ends first, and the store's error (wrapped) when the
// store fails; it then holds no new slot.
func (s *Semaphore) Acquire(ctx context.Context) error {
	if err := s.w.wait(ctx, s.try, s.free); err != nil {
		return fmt.Errorf("lock: semaphore acquire %q: %w", s.key, err)
	}
	return nil
}

// TryAcquire takes a slot if one is free and reports whether it did,
// without waiting.
func (s *Semaphore) TryAcquire(ctx context.Context) (bool, error) {
	ok, err := s.try(ctx)
	if err != nil {
		return false, fmt.Errorf("lock: semaphore acquire %q: %w", s.key, err)
	}
	return ok, nil
}

func (s *Semaphore) try(ctx context.Context) (bool, error) {
	n := len(s.slots)
	start := rand.IntN(n)
	for i := range n {
		h, ok, err := takeLease(ctx, s.store, s.leaser, s.slots[(start+i)%n], s.expiry)
		if err != nil {
			return false, err
		}
		if ok {
			s.mu.Lock()
			s.held = append(s.held, h)
			s.mu.Unlock()
			return true, nil
		}
	}
	return false, nil
}

// free is the waiter's probe: whether some slot looks free, read in one
// round trip when the store is a [cachekit.Batcher]; without one, the
// attempt itself is the probe.
func (s *Semaphore) free(ctx context.Context) (bool, error) {
	b, ok := s.store.(cachekit.Batcher)
	if !ok {
		return true, nil
	}
	got, err := b.GetMany(ctx, s.slots)
	if err != nil {
		return false, err
	}
	return len(got) < len(s.slots), nil
}

// Release gives back the newest slot this value holds. It returns an
// error wrapping [ErrNotHeld] when this value holds no slot, or when that
// slot's hold expired (possibly passing to another holder, whose hold
// stays); the slot is forgotten either way. On a store error the value
// keeps the slot: Release may be called again.
func (s *Semaphore) Release(ctx context.Context) error {
	s.mu.Lock()
	var h *lease
	if n := len(s.held); n > 0 {
		h = s.held[n-1]
		s.held = s.held[:n-1]
	}
	s.mu.Unlock()
	if h == nil {
		return fmt.Errorf("lock: semaphore release %q: %w", s.key, ErrNotHeld)
	}
	if err := h.free(ctx); err != nil {
		if !errors.Is(err, ErrNotHeld) {
			s.mu.Lock()
			s.held = append(s.held, h)
			s.mu.Unlock()
		}
		return fmt.Errorf("lock: semaphore release %q: %w", s.key, err)
	}
	return nil
}

// Held returns how many slots this value holds, as far as it knows (a hold
// may have expired meanwhile).
func (s *Semaphore) Held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.held)
}
