package memory

import (
	"errors"
	"fmt"
	"time"

	"github.com/cachekit/cachekit"
)

// Defaults applied by [New] to zero [Options] fields.
const (
	// DefaultMaxEntries bounds a cache whose Options set neither MaxEntries
	// nor MaxWeight.
	DefaultMaxEntries = 10_000

	// DefaultLoadTimeout bounds a shared [Cache.GetOrLoad] load.
	DefaultLoadTimeout = 30 * time.Second

	// DefaultCleanupInterval is how often the expiry goroutine removes
	// expired entries.
	DefaultCleanupInterval = time.Second
)

// Options configures a [Cache]. The zero value is ready to use: a cache of
// at most [DefaultMaxEntries] entries that never expire, without stats.
type Options[K comparable, V any] struct {
	// MaxEntries bounds the cache by entry count. Default: DefaultMaxEntries
	// when MaxWeight is zero too. Conflicts with MaxWeight. Negative is an
	// error.
	MaxEntries int

	// MaxWeight bounds the cache by the sum of the entries' weights, as
	// computed by Weigher. Default: zero, which means "bound by MaxEntries".
	// MaxWeight and Weigher must be set together; MaxWeight conflicts with
	// MaxEntries. An entry whose weight alone exceeds MaxWeight is never
	// stored: OnEvict sees it with [ReasonRejected].
	MaxWeight uint64

	// Weigher returns the weight of an entry; it is called once per write
	// (Set, Add, Update, a completed load), under the cache's lock, so it
	// must be fast and must not call the cache. Default: nil (every entry
	// weighs 1, bound by count). Requires MaxWeight.
	Weigher func(key K, value V) uint32

	// TTL is the default time to live used by Set, GetOrLoad and any call
	// whose ttl argument is zero. Default: zero, which means entries do not
	// expire. cachekit.NoExpiry also means never; negative is an error.
	TTL time.Duration

	// OnEvict, if not nil, is called once for every entry that leaves the
	// cache, with the reason. It is always called after the operation that
	// caused it has released the cache's lock, on the goroutine of that
	// operation (or of the expiry goroutine), so it may call the cache. An
	// overwrite by Set or Add reports the old value with [ReasonReplaced]
	// (even when the new value is the same pointer); [Cache.Update] and
	// [Cache.Touch] report nothing. Default: nil.
	OnEvict func(key K, value V, reason Reason)

	// Stats enables the counters returned by [Cache.Stats]. When false the
	// counters are never touched and Stats returns zeros. Default: false.
	Stats bool

	// Clock is the time source for expiry; tests inject a fake one.
	// Default: cachekit.SystemClock{}.
	Clock cachekit.Clock

	// LoadTimeout bounds each shared load started by [Cache.GetOrLoad]: the
	// loader's context is cancelled after it. Default: DefaultLoadTimeout.
	// Negative is an error.
	LoadTimeout time.Duration

	// CleanupInterval is how often the expiry goroutine removes expired
	// entries (expired entries are never returned, whatever the interval).
	// Default: DefaultCleanupInterval. Negative is an error.
	CleanupInterval time.Duration
}

// errOptions prefixes every validation error of New and NewStore.
var errOptions = errors.New("memory: invalid options")

// normalize validates o and returns a copy with the defaults applied.
func (o Options[K, V]) normalize() (Options[K, V], error) {
	switch {
	case o.MaxEntries < 0:
		return o, fmt.Errorf("%w: negative MaxEntries %d", errOptions, o.MaxEntries)
	case o.MaxEntries > 0 && o.MaxWeight > 0:
		return o, fmt.Errorf("%w: MaxEntries and MaxWeight both set", errOptions)
	case o.MaxWeight > 0 && o.Weigher == nil:
		return o, fmt.Errorf("%w: MaxWeight set without a Weigher", errOptions)
	case o.Weigher != nil && o.MaxWeight == 0:
		return o, fmt.Errorf("%w: Weigher set without MaxWeight", errOptions)
	case o.TTL < 0:
		return o, fmt.Errorf("%w: negative TTL %v", errOptions, o.TTL)
	case o.LoadTimeout < 0:
		return o, fmt.Errorf("%w: negative LoadTimeout %v", errOptions, o.LoadTimeout)
	case o.CleanupInterval < 0:
		return o, fmt.Errorf("%w: negative CleanupInterval %v", errOptions, o.CleanupInterval)
	}
	if o.MaxEntries == 0 && o.MaxWeight == 0 {
		o.MaxEntries = DefaultMaxEntries
	}
	if o.Clock == nil {
		o.Clock = cachekit.SystemClock{}
	}
	if o.LoadTimeout == 0 {
		o.LoadTimeout = DefaultLoadTimeout
	}
	if o.CleanupInterval == 0 {
		o.CleanupInterval = DefaultCleanupInterval
	}
	return o, nil
}

// Reason tells [Options.OnEvict] why an entry left the cache.
type Reason int

// Reasons reported to [Options.OnEvict].
const (
	// ReasonEvicted: the size bound (MaxEntries or MaxWeight) pushed the
	// entry out.
	ReasonEvicted Reason = iota + 1
	// ReasonExpired: the entry's TTL ran out (noticed by a read, a write to
	// the same key or the expiry goroutine).
	ReasonExpired
	// ReasonDeleted: Delete, or a write with a negative TTL, removed it.
	ReasonDeleted
	// ReasonReplaced: Set or Add stored a new value under the key.
	ReasonReplaced
	// ReasonCleared: Clear removed it.
	ReasonCleared
	// ReasonRejected: the entry weighs more than MaxWeight and was never
	// stored.
	ReasonRejected
)

// String returns the reason in lower case, such as "evicted".
func (r Reason) String() string {
	switch r {
	case ReasonEvicted:
		return "evicted"
	case ReasonExpired:
		return "expired"
	case ReasonDeleted:
		return "deleted"
	case ReasonReplaced:
		return "replaced"
	case ReasonCleared:
		return "cleared"
	case ReasonRejected:
		return "rejected"
	}
	return fmt.Sprintf("Reason(%d)", int(r))
}

// Entry is a snapshot of one cache entry, returned by [Cache.GetEntry].
type Entry[K comparable, V any] struct {
	Key     K
	Value   V
	Expires time.Time // zero when the entry never expires
	Weight  uint32    // the Weigher's result, or 1 when bound by count
}

// Stats are the counters of a cache created with Options.Stats. Every
// field is zero when stats are off.
type Stats struct {
	Hits        uint64 // Get, GetEntry or GetOrLoad found a live entry
	Misses      uint64 // they did not
	Evictions   uint64 // entries pushed out by the size bound
	Expirations uint64 // entries removed because their TTL ran out
	Loads       uint64 // loader calls made by GetOrLoad
	LoadErrors  uint64 // loader calls that returned an error or panicked
}

// HitRatio returns Hits / (Hits + Misses), or 0 before any lookup.
func (s Stats) HitRatio() float64 {
	total := s.Hits + s.Misses
	if total == 0 {
		return 0
	}
	return float64(s.Hits) / float64(total)
}
