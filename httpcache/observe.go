package httpcache

import (
	"strconv"
)

// Observer receives the events of a [Cache], for metrics and logs. Observe
// is called synchronously on the request's goroutine (or a background
// refresh's), never under a lock of the package; it must be safe for
// concurrent use and return quickly.
type Observer interface {
	Observe(Event)
}

// ObserverFunc adapts a function to [Observer].
type ObserverFunc func(Event)

// Observe calls f(e).
func (f ObserverFunc) Observe(e Event) { f(e) }

// Event is one observation, shaped as memo.Event.
type Event struct {
	Kind EventKind
	// URL is the canonical URL of the request (host, path and the query
	// kept in the key).
	URL string
	// Key is the response's cache key, empty for a Bypass or an
	// Invalidated event by tag.
	Key string
	// Reason says why a response was not stored (NotStored), why a request
	// bypassed the cache (Bypass), or what was invalidated (Invalidated:
	// "url" or "tag:<name>").
	Reason string
	// Status is the status code of the response concerned, when there is
	// one.
	Status int
	// Err is the error of a StoreError or of a refresh that failed.
	Err error
}

// EventKind says what happened.
type EventKind uint8

// The kinds of [Event].
const (
	// Hit: a fresh stored response was served.
	Hit EventKind = iota + 1
	// Miss: no usable stored response; the handler runs (or the request
	// waits for a run another request started: see Coalesced).
	Miss
	// StaleServed: a response past its freshness was served, inside its
	// stale-while-revalidate window (a refresh runs in the background) or
	// its stale-if-error window in place of a 5xx (Status).
	StaleServed
	// Stored: the handler's response was stored.
	Stored
	// NotStored: the handler's response was not stored (Reason).
	NotStored
	// Coalesced: the request got the response of a handler run another
	// request started.
	Coalesced
	// Invalidated: a URL or tag was invalidated (Reason).
	Invalidated
	// Bypass: the request did not use the cache (Reason: "method",
	// "route", "request no-cache", "deps").
	Bypass
	// StoreError: a store or dependency error did not fail the request
	// (Err).
	StoreError
)

var kindNames = [...]string{
	Hit: "hit", Miss: "miss", StaleServed: "stale-served", Stored: "stored",
	NotStored: "not-stored", Coalesced: "coalesced", Invalidated: "invalidated",
	Bypass: "bypass", StoreError: "store-error",
}

// String returns the kind's name, such as "hit" or "not-stored".
func (k EventKind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "EventKind(" + strconv.Itoa(int(k)) + ")"
}
