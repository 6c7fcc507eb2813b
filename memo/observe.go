package memo

import (
	"strconv"
	"time"
)

// Observer receives the events of cached functions, for metrics and logs.
// Observe is called synchronously on the caller's goroutine (or the
// background refresh's), never under a lock of the package; it must be
// safe for concurrent use and return quickly.
type Observer interface {
	Observe(Event)
}

// ObserverFunc adapts a function to [Observer].
type ObserverFunc func(Event)

// Observe calls f(e).
func (f ObserverFunc) Observe(e Event) { f(e) }

// Event is one observation.
type Event struct {
	Kind EventKind
	Func string // the function's name
	Key  string // the cache key (see [Func.Key])
	// Err is the error of a RefreshFail, a StaleServed in place of a
	// failed refresh, or a StoreError.
	Err error
	// Duration is the computation time of a RefreshOK.
	Duration time.Duration
}

// EventKind says what happened.
type EventKind uint8

// The kinds of [Event].
const (
	// Hit: a fresh value came from the cache.
	Hit EventKind = iota + 1
	// Miss: no usable value in the cache; the call computes (or waits for
	// a computation). Stale values served are StaleServed, not Miss.
	Miss
	// StaleServed: a value past its TTL was returned, inside the
	// stale-while-revalidate window (a refresh runs in the background) or
	// inside the stale-if-error window because the refresh failed (Err).
	StaleServed
	// RefreshStart: a refresh of a value still in the cache began (stale,
	// XFetch early refresh, or Refresh).
	RefreshStart
	// RefreshOK: that refresh stored a new value (Duration: compute time).
	RefreshOK
	// RefreshFail: that refresh failed (Err); the old value stays.
	RefreshFail
	// Coalesced: the call got the result of a computation another caller
	// of this process started.
	Coalesced
	// LeaseWait: another process holds the computation lease, and this one
	// waits for its result.
	LeaseWait
	// NegativeHit: a cached not-found answer was returned.
	NegativeHit
	// StoreError: a store error did not fail the call (the value was
	// computed but could not be stored, a lease could not be taken, ...).
	StoreError
)

var kindNames = [...]string{
	Hit: "hit", Miss: "miss", StaleServed: "stale-served", RefreshStart: "refresh-start",
	RefreshOK: "refresh-ok", RefreshFail: "refresh-fail", Coalesced: "coalesced",
	LeaseWait: "lease-wait", NegativeHit: "negative-hit", StoreError: "store-error",
}

// String returns the kind's name, such as "hit" or "stale-served".
func (k EventKind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "EventKind(" + strconv.Itoa(int(k)) + ")"
}
