package memo

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"time"

	"github.com/cachekit/cachekit"
)

// Defaults of [Options].
const (
	// DefaultLoadTimeout bounds a computation that callers share.
	DefaultLoadTimeout = 30 * time.Second

	// DefaultLeaseTTL is how long a computation lease (Options.Lease) or a
	// refresh election is held at most, so that a crashed holder blocks
	// nobody for longer.
	DefaultLeaseTTL = 10 * time.Second
)

// Options configures a [Func] or a [Batch]. The zero value is valid:
// values fresh for five minutes, no function version, no groups, callers
// of this process coalesced, no lease, no stale serving, no early refresh,
// no negative caching, every value cached.
type Options struct {
	// TTL is how long a computed value stays fresh. Zero means the cache's
	// DefaultTTL; [cachekit.NoExpiry] means forever (stale windows and
	// early refresh then never apply). Negative values are refused.
	TTL time.Duration

	// Version is the function's version, written into its keys as
	// "@v<Version>": bump it when the function's results change meaning,
	// to orphan the old ones. Zero means none. The cache's own version
	// (cachekit.Options.Version, the project version) is in every key too.
	// Negative values are refused.
	Version int

	// Groups are the invalidation groups the function's values belong to:
	// [Group.Invalidate] orphans all of them in O(1). They must live on the
	// same store as the function's cache. Default none.
	Groups []*Group

	// Jitter shortens each value's TTL by a random fraction of up to
	// Jitter (0.1: up to 10%), so that values computed together do not
	// expire together. Default 0; must be in [0, 1).
	Jitter float64

	// StaleWhileRevalidate is how long after its TTL a value may still be
	// returned while one caller recomputes it in the background (MintCache).
	// Default 0: never.
	StaleWhileRevalidate time.Duration

	// StaleIfError is how long after its TTL a value may still be returned
	// when recomputing it fails: past StaleWhileRevalidate the call
	// recomputes synchronously, and on an error (other than not-found)
	// returns the stale value instead. After the window the error is
	// returned. Default 0: never.
	StaleIfError time.Duration

	// XFetch enables probabilistic early refresh (Vattani et al., VLDB
	// 2015): a read of a fresh value recomputes it in the background when
	// now − δ·Beta·ln(U) ≥ expiry, with δ the value's computation time and
	// U uniform in (0, 1]. One caller across processes is elected for each
	// refresh. Default false.
	XFetch bool

	// Beta scales XFetch's eagerness: above 1 refreshes earlier, below 1
	// later. Zero means 1; negative values are refused.
	Beta float64

	// NoCoalesce turns off in-process coalescing: by default concurrent
	// callers of this process that miss the same key share one
	// computation.
	NoCoalesce bool

	// Lease makes one process compute a missing value while the others
	// wait for it (dog-pile prevention across processes), with the store's
	// [cachekit.Leaser] (or an [cachekit.Adder] lease). Waiters are woken
	// by the store's [cachekit.Notifier] if it has one, and otherwise poll
	// with backoff; when the lease ends without a value they compete for
	// it again. Default false. New fails if the store can take no lease.
	Lease bool

	// LeaseTTL bounds the computation lease and the refresh election: a
	// holder that crashes blocks the others at most this long. Keep it
	// above the function's computation time. Zero means
	// [DefaultLeaseTTL].
	LeaseTTL time.Duration

	// LoadTimeout bounds a computation that callers share; it runs on a
	// context none of them can cancel, derived from the first caller's.
	// Zero means [DefaultLoadTimeout]. Negative values are refused.
	LoadTimeout time.Duration

	// NotFound is the error that means "no such record": when the function
	// returns an error wrapping it and NegativeTTL is positive, the answer
	// is cached, and later calls return an error wrapping NotFound without
	// calling the function. Default [ErrNotFound].
	NotFound error

	// NegativeTTL is how long a not-found answer is cached, on its own
	// clock (it is neither stale-served nor refreshed early). Zero means
	// not-found answers are not cached.
	NegativeTTL time.Duration

	// CacheIf decides which computed values are cached; the others are
	// returned but not stored. [NotZero] never caches the zero value (nil
	// pointers, empty interfaces, nil slices and maps), as
	// django-cache-utils never caches None. Default nil: cache every value.
	CacheIf func(value any) bool

	// Observer receives the function's events. Default nil.
	Observer Observer

	// StampMaxStale lets a call trust the generation of the function (see
	// [Func.InvalidateAll]) read from the store up to this long ago,
	// saving a store read per call. Invalidations made in this process
	// (through any Func of the same name over the same store) are seen at
	// once; those made by other processes within StampMaxStale. Default 0:
	// read the generation on every call (invalidation is immediate
	// everywhere), except on a process-local store, where a generation is
	// trusted until this process invalidates it. Groups have their own
	// setting (GroupOptions.MaxStale).
	StampMaxStale time.Duration

	// Clock is the time source of freshness, early refresh and stamp
	// caching; it must agree with the store's. Default: the cache's Clock.
	// A test seam.
	Clock cachekit.Clock
}

// NotZero reports whether v is not its type's zero value (and not nil):
// as Options.CacheIf it keeps zero values out of the cache.
func NotZero(v any) bool {
	if v == nil {
		return false
	}
	return !reflect.ValueOf(v).IsZero()
}

func (o *Options) validate() error {
	switch {
	case o.TTL < 0:
		return errors.New("memo: Options.TTL is negative (use cachekit.NoExpiry for no expiry)")
	case o.Version < 0:
		return fmt.Errorf("memo: Options.Version %d is negative", o.Version)
	case o.Jitter < 0 || o.Jitter >= 1 || math.IsNaN(o.Jitter):
		return fmt.Errorf("memo: Options.Jitter %v is not in [0, 1)", o.Jitter)
	case o.StaleWhileRevalidate < 0 || o.StaleIfError < 0:
		return errors.New("memo: negative stale window")
	case o.Beta < 0 || math.IsNaN(o.Beta) || math.IsInf(o.Beta, 0):
		return fmt.Errorf("memo: Options.Beta %v is negative or not finite", o.Beta)
	case o.LeaseTTL < 0:
		return errors.New("memo: Options.LeaseTTL is negative")
	case o.LoadTimeout < 0:
		return errors.New("memo: Options.LoadTimeout is negative")
	case o.NegativeTTL < 0:
		return errors.New("memo: Options.NegativeTTL is negative")
	case o.StampMaxStale < 0:
		return errors.New("memo: Options.StampMaxStale is negative")
	}
	for i, g := range o.Groups {
		if g == nil {
			return fmt.Errorf("memo: Options.Groups[%d] is nil", i)
		}
	}
	return nil
}

// setDefaults fills in the zero fields; ttl and clock are the cache's.
func (o *Options) setDefaults(ttl time.Duration, clock cachekit.Clock) {
	if o.TTL == 0 {
		o.TTL = ttl
	}
	if o.Beta == 0 {
		o.Beta = 1
	}
	if o.LeaseTTL == 0 {
		o.LeaseTTL = DefaultLeaseTTL
	}
	if o.LoadTimeout == 0 {
		o.LoadTimeout = DefaultLoadTimeout
	}
	if o.NotFound == nil {
		o.NotFound = ErrNotFound
	}
	if o.Clock == nil {
		o.Clock = clock
	}
}

// staleWindow is how long past its TTL an entry is kept.
func (o *Options) staleWindow() time.Duration {
	return max(o.StaleWhileRevalidate, o.StaleIfError)
}
