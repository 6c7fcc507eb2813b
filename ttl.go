package cachekit

import (
	"math"
	"time"
)

// TTL values with special meaning. They apply to every TTL a caller passes to
// [Cache] and, except for the zero value, to every [Store].
const (
	// NoExpiry keeps an entry until it is deleted or evicted (Django's
	// timeout=None).
	NoExpiry time.Duration = math.MaxInt64

	// ExpireNow stores nothing and deletes the key (Django's timeout=0). Any
	// negative TTL means the same.
	ExpireNow time.Duration = -1

	// DefaultTTL is the default TTL of a [Cache] whose Options leave
	// DefaultTTL zero: five minutes, as Django's TIMEOUT.
	DefaultTTL = 5 * time.Minute
)

// Clock is the time source of caches and stores. Tests inject a fake one
// (see cachetest.FakeClock) so that expiry can be checked without sleeping.
type Clock interface {
	Now() time.Time
}

// SystemClock is the real wall clock (with the monotonic reading).
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// ExpiryTime converts a store-level TTL into an absolute deadline.
// It reports ok=false when the TTL asks to store nothing (negative). A zero
// deadline means the entry never expires (ttl is zero or [NoExpiry], or so
// large that the deadline would overflow). An entry is expired once the
// current time is at or past its deadline.
func ExpiryTime(now time.Time, ttl time.Duration) (deadline time.Time, ok bool) {
	switch {
	case ttl < 0:
		return time.Time{}, false
	case ttl == 0 || ttl == NoExpiry:
		return time.Time{}, true
	}
	d := now.Add(ttl)
	if d.Before(now) { // overflow
		return time.Time{}, true
	}
	return d, true
}
