package memory

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/cachekit/cachekit"
)

var (
	_ cachekit.ProcessLocal = (*Store)(nil)
	_ cachekit.Store        = (*Store)(nil)
	_ cachekit.Adder        = (*Store)(nil)
	_ cachekit.Toucher      = (*Store)(nil)
	_ cachekit.Counter      = (*Store)(nil)
	_ cachekit.Batcher      = (*Store)(nil)
	_ cachekit.Clearer      = (*Store)(nil)
	_ cachekit.ExpiryReader = (*Store)(nil)
	_ cachekit.Leaser       = (*Store)(nil)
	_ cachekit.ValueStore   = (*Store)(nil)
)

// Weights used by a [Store] bounded by StoreOptions.MaxBytes.
const (
	// EntryOverhead is the fixed number of bytes charged per entry on top of
	// len(key) and len(value): an estimate of the node, map slot and slice
	// headers the entry costs.
	EntryOverhead = 128

	// ObjectWeight is the number of bytes charged for a value stored with
	// SetValue that is not a []byte (its real size is unknown), on top of
	// len(key) and EntryOverhead.
	ObjectWeight = 256

	// DefaultMaxValueSize is the largest value a Store accepts when
	// StoreOptions.MaxValueSize is zero (or MaxBytes minus the entry's
	// overhead, if smaller).
	DefaultMaxValueSize = 64 << 20
)

// backend names the store in errors.
const backend = "memory"

// StoreOptions configures a [Store]. The zero value is ready to use: at
// most DefaultMaxEntries entries, values up to DefaultMaxValueSize bytes.
type StoreOptions struct {
	// MaxEntries bounds the store by entry count. Default: DefaultMaxEntries
	// when MaxBytes is zero too. Conflicts with MaxBytes. Negative is an
	// error.
	MaxEntries int

	// MaxBytes bounds the store by approximate memory: each entry weighs
	// len(key) + len(value) + EntryOverhead, or len(key) + EntryOverhead +
	// ObjectWeight for a non-[]byte value stored with SetValue. Default:
	// zero (bound by MaxEntries). Conflicts with MaxEntries.
	MaxBytes uint64

	// Clock is the time source for expiry. Default: cachekit.SystemClock{}.
	Clock cachekit.Clock

	// MaxValueSize is the largest []byte value accepted; a larger one gives
	// an error wrapping cachekit.ErrTooLarge and leaves the previous value
	// in place. Default: DefaultMaxValueSize, lowered so that one entry
	// fits in MaxBytes. Negative is an error.
	MaxValueSize int

	// CleanupInterval is how often expired entries are removed in the
	// background. Default: DefaultCleanupInterval.
	CleanupInterval time.Duration
}

// Store is an in-process [cachekit.Store]: the byte store and, through
// [cachekit.ValueStore], the object tier of the cachekit facade. It is a
// [Cache] of string keys with W-TinyLFU eviction and per-entry TTL.
//
// Byte values are copied on the way in (Set, Add, SetMany) and on the way
// out (Get, GetMany, GetWithExpiry), so callers may reuse their buffers.
// Values of the ValueStore methods are kept by reference, never copied. Any
// string is a valid key, including "": the store does no key validation.
//
// Every method first returns ctx.Err() (wrapped in a *[cachekit.OpError])
// when ctx is done, and an error wrapping [cachekit.ErrClosed] after
// Close. A miss returns [cachekit.ErrMiss] itself (no allocation).
type Store struct {
	c        *Cache[string, any]
	maxValue int
	maxBytes uint64 // zero when bound by count
	closed   atomic.Bool
}

// NewStore returns a store configured by opts, or an error when opts are
// invalid.
func NewStore(opts StoreOptions) (*Store, error) {
	switch {
	case opts.MaxValueSize < 0:
		return nil, fmt.Errorf("%w: negative MaxValueSize %d", errOptions, opts.MaxValueSize)
	case opts.MaxBytes > 0 && opts.MaxBytes <= EntryOverhead:
		return nil, fmt.Errorf("%w: MaxBytes %d leaves no room for an entry", errOptions, opts.MaxBytes)
	}
	s := &Store{maxValue: opts.MaxValueSize, maxBytes: opts.MaxBytes}
	if s.maxValue == 0 {
		s.maxValue = DefaultMaxValueSize
	}
	o := Options[string, any]{
		MaxEntries:      opts.MaxEntries,
		Clock:           opts.Clock,
		CleanupInterval: opts.CleanupInterval,
	}
	if opts.MaxBytes > 0 {
		s.maxValue = int(min(uint64(s.maxValue), opts.MaxBytes-EntryOverhead))
		o.MaxWeight = opts.MaxBytes
		o.Weigher = storeWeight
	}
	c, err := New(o)
	if err != nil {
		return nil, err
	}
	s.c = c
	return s, nil
}

// storeWeight is the Weigher of a byte-bounded store; it saturates at
// MaxUint32.
func storeWeight(key string, v any) uint32 {
	w := uint64(len(key)) + EntryOverhead
	if b, ok := v.([]byte); ok {
		w += uint64(len(b))
	} else {
		w += ObjectWeight
	}
	return uint32(min(w, math.MaxUint32))
}

// check returns the error an operation must fail with before it starts:
// the context's, or ErrClosed.
func (s *Store) check(ctx context.Context, op, key string) error {
	if err := ctx.Err(); err != nil {
		return &cachekit.OpError{Op: op, Backend: backend, Key: key, Err: err}
	}
	if s.closed.Load() {
		return &cachekit.OpError{Op: op, Backend: backend, Key: key, Err: cachekit.ErrClosed}
	}
	return nil
}

// checkValue rejects values the store cannot hold.
func (s *Store) checkValue(op, key string, v any) error {
	b, ok := v.([]byte)
	size := uint64(len(b))
	if ok && len(b) > s.maxValue || s.maxBytes > 0 && uint64(storeWeight(key, v)) > s.maxBytes {
		if !ok {
			size = ObjectWeight
		}
		return &cachekit.OpError{Op: op, Backend: backend, Key: key,
			Err: fmt.Errorf("%d bytes: %w", size, cachekit.ErrTooLarge)}
	}
	return nil
}

// bytesOf returns a copy of a stored []byte value, or an error wrapping
// ErrCorrupt when the key holds another type (written by SetValue).
func bytesOf(op, key string, v any) ([]byte, error) {
	b, ok := v.([]byte)
	if !ok {
		return nil, &cachekit.OpError{Op: op, Backend: backend, Key: key,
			Err: fmt.Errorf("value of type %T is not []byte: %w", v, cachekit.ErrCorrupt)}
	}
	return bytes.Clone(b), nil
}

// clone copies val into a new non-nil slice.
func clone(val []byte) []byte {
	return append(make([]byte, 0, len(val)), val...)
}

// Get returns a copy of the value under key, [cachekit.ErrMiss] when it is
// absent or expired, or an error wrapping [cachekit.ErrCorrupt] when the
// key holds a non-[]byte value written by SetValue.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := s.check(ctx, "get", key); err != nil {
		return nil, err
	}
	v, ok := s.c.Get(key)
	if !ok {
		return nil, cachekit.ErrMiss
	}
	return bytesOf("get", key, v)
}

// Set stores a copy of val under key for ttl (zero or NoExpiry: no expiry;
// negative: delete key). A value larger than MaxValueSize gives an error
// wrapping [cachekit.ErrTooLarge] and leaves the previous value in place.
func (s *Store) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	if err := s.check(ctx, "set", key); err != nil {
		return err
	}
	if ttl >= 0 {
		if err := s.checkValue("set", key, val); err != nil {
			return err
		}
	}
	s.c.SetWithTTL(key, clone(val), storeTTL(ttl))
	return nil
}

// storeTTL maps the store-level zero TTL (no expiry) to the Cache's
// explicit form, since the Cache would read zero as its default TTL.
func storeTTL(ttl time.Duration) time.Duration {
	if ttl == 0 {
		return cachekit.NoExpiry
	}
	return ttl
}

// Delete removes the keys and returns how many held a live entry.
func (s *Store) Delete(ctx context.Context, keys ...string) (int, error) {
	if err := s.check(ctx, "delete", ""); err != nil {
		return 0, err
	}
	n := 0
	for _, k := range keys {
		if s.c.Delete(k) {
			n++
		}
	}
	return n, nil
}

// ProcessLocal implements [cachekit.ProcessLocal]: only this process can
// reach the store.
func (s *Store) ProcessLocal() {}

// Close closes the underlying Cache and makes every later call fail with
// [cachekit.ErrClosed]. The entries are dropped. A second Close returns nil.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	err := s.c.Close()
	s.c.c.clear() // free the memory now; OnEvict is not set, so this is quiet
	return err
}

// Add stores a copy of val only if key is absent or expired, atomically,
// and reports whether it stored. A negative ttl stores nothing.
func (s *Store) Add(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	if err := s.check(ctx, "add", key); err != nil {
		return false, err
	}
	if err := s.checkValue("add", key, val); err != nil {
		return false, err
	}
	return s.c.Add(key, clone(val), storeTTL(ttl)), nil
}

// Touch gives the live key a new ttl (negative: delete it) and reports
// whether it was live.
func (s *Store) Touch(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if err := s.check(ctx, "touch", key); err != nil {
		return false, err
	}
	return s.c.Touch(key, storeTTL(ttl)), nil
}

// IncrBy adds delta to the decimal integer stored under key, atomically and
// keeping its TTL, and returns the new value. It returns [cachekit.ErrMiss]
// when the key is absent, and an error wrapping [cachekit.ErrNotInteger]
// when the value is not a decimal int64 or the sum overflows.
func (s *Store) IncrBy(ctx context.Context, key string, delta int64) (int64, error) {
	if err := s.check(ctx, "incr", key); err != nil {
		return 0, err
	}
	var n int64
	_, err := s.c.Update(key, func(old any) (any, error) {
		b, ok := old.([]byte)
		if !ok {
			return nil, fmt.Errorf("value of type %T: %w", old, cachekit.ErrNotInteger)
		}
		cur, err := parseInt(b)
		if err != nil {
			return nil, err
		}
		if delta > 0 && cur > math.MaxInt64-delta || delta < 0 && cur < math.MinInt64-delta {
			return nil, fmt.Errorf("%d + %d overflows int64: %w", cur, delta, cachekit.ErrNotInteger)
		}
		n = cur + delta
		return strconv.AppendInt(nil, n, 10), nil
	})
	switch {
	case errors.Is(err, cachekit.ErrMiss):
		return 0, err
	case err != nil:
		return 0, &cachekit.OpError{Op: "incr", Backend: backend, Key: key, Err: err}
	}
	return n, nil
}

// GetMany returns copies of the live values among keys; absent keys are
// left out. A key holding a non-[]byte value gives an error wrapping
// [cachekit.ErrCorrupt].
func (s *Store) GetMany(ctx context.Context, keys []string) (map[string][]byte, error) {
	if err := s.check(ctx, "get many", ""); err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(keys))
	for _, k := range keys {
		v, ok := s.c.Get(k)
		if !ok {
			continue
		}
		b, err := bytesOf("get many", k, v)
		if err != nil {
			return nil, err
		}
		out[k] = b
	}
	return out, nil
}

// SetMany stores a copy of every item for ttl, as Set does. It checks every
// value's size before storing any, so a too-large value stores nothing.
func (s *Store) SetMany(ctx context.Context, items map[string][]byte, ttl time.Duration) error {
	if err := s.check(ctx, "set many", ""); err != nil {
		return err
	}
	if ttl >= 0 {
		for k, v := range items {
			if err := s.checkValue("set many", k, v); err != nil {
				return err
			}
		}
	}
	for k, v := range items {
		s.c.SetWithTTL(k, clone(v), storeTTL(ttl))
	}
	return nil
}

// Clear deletes every key of the store.
func (s *Store) Clear(ctx context.Context) error {
	if err := s.check(ctx, "clear", ""); err != nil {
		return err
	}
	s.c.Clear()
	return nil
}

// GetWithExpiry is Get that also returns the absolute expiry (the zero time
// when the key never expires).
func (s *Store) GetWithExpiry(ctx context.Context, key string) ([]byte, time.Time, error) {
	if err := s.check(ctx, "get", key); err != nil {
		return nil, time.Time{}, err
	}
	e, ok := s.c.GetEntry(key)
	if !ok {
		return nil, time.Time{}, cachekit.ErrMiss
	}
	b, err := bytesOf("get", key, e.Value)
	if err != nil {
		return nil, time.Time{}, err
	}
	return b, e.Expires, nil
}

// Lease takes an exclusive lease on key for ttl by storing a random owner
// token there (Add semantics: ok is false while another lease, or any live
// value, occupies key). release deletes key only if it still holds this
// token, atomically, so it never frees a lease that expired and passed to
// another owner; calling it again is harmless. When ok is false, release is
// a no-op. A negative ttl takes no lease.
func (s *Store) Lease(ctx context.Context, key string, ttl time.Duration) (release func(context.Context) error, ok bool, err error) {
	noop := func(context.Context) error { return nil }
	if err := s.check(ctx, "lease", key); err != nil {
		return noop, false, err
	}
	if ttl < 0 {
		return noop, false, nil
	}
	token := []byte(rand.Text())
	if !s.c.Add(key, token, storeTTL(ttl)) {
		return noop, false, nil
	}
	release = func(ctx context.Context) error {
		if err := s.check(ctx, "release", key); err != nil {
			return err
		}
		s.c.c.delete(key, func(v any) bool {
			b, ok := v.([]byte)
			return ok && bytes.Equal(b, token)
		})
		return nil
	}
	return release, true, nil
}

// GetValue returns the value under key, by reference (a []byte written by
// Set is returned without copying: do not modify it), or
// [cachekit.ErrMiss].
func (s *Store) GetValue(ctx context.Context, key string) (any, error) {
	if err := s.check(ctx, "get", key); err != nil {
		return nil, err
	}
	v, ok := s.c.Get(key)
	if !ok {
		return nil, cachekit.ErrMiss
	}
	return v, nil
}

// SetValue stores v under key by reference for ttl (store-level TTL
// semantics). A []byte v is subject to MaxValueSize and is not copied.
func (s *Store) SetValue(ctx context.Context, key string, v any, ttl time.Duration) error {
	if err := s.check(ctx, "set", key); err != nil {
		return err
	}
	if ttl >= 0 {
		if err := s.checkValue("set", key, v); err != nil {
			return err
		}
	}
	s.c.SetWithTTL(key, v, storeTTL(ttl))
	return nil
}

// AddValue stores v by reference only if key is absent or expired,
// atomically, and reports whether it stored.
func (s *Store) AddValue(ctx context.Context, key string, v any, ttl time.Duration) (bool, error) {
	if err := s.check(ctx, "add", key); err != nil {
		return false, err
	}
	if err := s.checkValue("add", key, v); err != nil {
		return false, err
	}
	return s.c.Add(key, v, storeTTL(ttl)), nil
}

// UpdateValue replaces the live value under key with fn(old), atomically
// and keeping its expiry. It returns [cachekit.ErrMiss] when the key is
// absent; an error from fn, or a result too large to store, leaves the
// value unchanged and is returned. fn runs under the store's lock and must
// not call the store.
func (s *Store) UpdateValue(ctx context.Context, key string, fn func(old any) (any, error)) (any, error) {
	if err := s.check(ctx, "update", key); err != nil {
		return nil, err
	}
	return s.c.Update(key, func(old any) (any, error) {
		v, err := fn(old)
		if err != nil {
			return nil, err
		}
		if err := s.checkValue("update", key, v); err != nil {
			return nil, err
		}
		return v, nil
	})
}

// parseInt parses a decimal int64, wrapping ErrNotInteger on failure.
func parseInt(b []byte) (int64, error) {
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", b, cachekit.ErrNotInteger)
	}
	return n, nil
}
