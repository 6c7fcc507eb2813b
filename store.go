package cachekit

import (
	"context"
	"time"
)

// Store is the byte-level contract every backend implements (memory, disk,
// redis, memcached, tiered) and that [Cache] builds on. It is small on
// purpose, in the style of database/sql/driver: extra powers are optional
// interfaces ([Adder], [Toucher], [Counter], [Batcher], [Clearer], [Leaser],
// [Notifier], [ExpiryReader], [ValueStore]) found by type assertion. The
// package cachetest checks any implementation.
//
// TTL at the store level: a positive ttl expires the entry after ttl; zero
// or [NoExpiry] keeps it until deleted or evicted; a negative ttl stores
// nothing and deletes the key. (Only [Cache] has a default TTL; it resolves
// the zero value before calling the store.)
//
// Every method returns an error wrapping [ErrClosed] after Close, and
// ctx.Err() (wrapped) when ctx is done before the operation completes. Keys
// the store cannot hold give [ErrInvalidKey]; values it cannot hold give
// [ErrTooLarge] and leave the previous value in place. Implementations are
// safe for concurrent use.
type Store interface {
	// Get returns the value under key. It returns an error wrapping ErrMiss
	// when the key is absent or expired. The returned slice belongs to the
	// caller.
	Get(ctx context.Context, key string) ([]byte, error)

	// Set stores val under key for ttl, replacing any previous value. The
	// store does not retain val after Set returns unless it copies it.
	Set(ctx context.Context, key string, val []byte, ttl time.Duration) error

	// Delete removes the keys and returns how many were present.
	Delete(ctx context.Context, keys ...string) (int, error)

	// Close releases the store's resources. Further calls return ErrClosed;
	// a second Close returns nil.
	Close() error
}

// Adder stores a value only if the key is absent or expired, atomically
// (memcached add, Redis SET NX). It reports whether it stored.
//
// Fallback when a store lacks it: Get, then Set on a miss. That fallback is
// NOT atomic: two callers may both "add".
type Adder interface {
	Add(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error)
}

// Toucher gives a live key a new TTL without rewriting its value, and
// reports false when the key is absent.
//
// Fallback: Get and Set the same bytes with the new TTL; NOT atomic (a
// concurrent Set between the two may be overwritten with the older value).
type Toucher interface {
	Touch(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// Counter adds delta to the decimal integer stored under key and returns the
// new value, atomically and keeping the key's remaining TTL. It returns
// ErrMiss when the key is absent and ErrNotInteger when the value is not a
// decimal integer or the result would overflow int64.
//
// Fallback: Get, parse, Set (keeping the remaining TTL when the store is an
// [ExpiryReader]); NOT atomic: concurrent increments may be lost.
type Counter interface {
	IncrBy(ctx context.Context, key string, delta int64) (int64, error)
}

// Batcher reads and writes many keys in one round trip.
//
// GetMany leaves absent keys out of the map (it does not fail with ErrMiss).
// SetMany stores every item with the same ttl. Neither is a snapshot: other
// writers may interleave. Fallback: one Get or Set per key, which is as
// atomic per key but costs a round trip each.
type Batcher interface {
	GetMany(ctx context.Context, keys []string) (map[string][]byte, error)
	SetMany(ctx context.Context, items map[string][]byte, ttl time.Duration) error
}

// Clearer deletes every key of this store, and only those: a store sharing a
// server with others (a Redis prefix, a memcached namespace) clears its own
// keys, never the whole server.
//
// Fallback: none; [Cache.Clear] returns ErrNotSupported.
type Clearer interface {
	Clear(ctx context.Context) error
}

// Leaser grants a short exclusive lease on a key, across processes when the
// store is shared. ok is false when another owner holds it. release gives
// it up and never frees a lease that has since passed to another owner;
// release is never nil (a no-op when ok is false). ttl bounds the lease so
// that a crashed owner cannot hold it forever: pass a positive ttl (zero,
// as everywhere at the store level, means no expiry).
//
// Fallback: an [Adder] on a lease key with a random owner token; release
// reads the token before deleting, which is NOT atomic (a lease that expires
// between the read and the delete can free the next owner's lease).
type Leaser interface {
	Lease(ctx context.Context, key string, ttl time.Duration) (release func(context.Context) error, ok bool, err error)
}

// Notifier tells subscribers which keys other writers changed, so an
// in-process tier can drop them. onInvalidate receives nil keys when
// everything must be dropped (for instance after the channel broke and
// messages may have been lost). stop ends the subscription.
//
// Fallback: none; a local tier over a store without it can only bound its
// staleness with a short TTL.
type Notifier interface {
	Subscribe(ctx context.Context, onInvalidate func(keys []string)) (stop func(), err error)
}

// Watermarker is a [Notifier] that can tell how far its deliveries have
// caught up, so that a local tier can bound its staleness in time even when
// messages are delayed.
//
// Watermark returns a time W such that the invalidation of every write that
// completed before W has already been passed to every subscriber's
// onInvalidate (for instance: the send time of the newest heartbeat answered
// on the channel, since the server orders invalidations before the answer).
// It returns the zero time while the channel is down or not yet up. A local
// tier serves a read that starts at t from memory only while
// t - Watermark() stays within its bound.
type Watermarker interface {
	Watermark() time.Time
}

// ProcessLocal marks a store whose contents no other process can read or
// change (the memory store). Layers above may then keep state derived from
// it in process memory without a staleness bound: memo trusts a group
// generation it has read until this process invalidates the group.
type ProcessLocal interface {
	ProcessLocal()
}

// ExpiryReader returns a value together with its absolute expiry (the zero
// time when it never expires), so that a value copied to another tier keeps
// its real remaining TTL instead of a fresh full one.
//
// Fallback: [Cache] reads the expiry recorded in the value's envelope, which
// a Touch since the write does not update.
type ExpiryReader interface {
	GetWithExpiry(ctx context.Context, key string) (val []byte, expires time.Time, err error)
}

// ValueStore is the object tier: an in-process store that keeps Go values by
// reference, with no serialization. [Cache] uses it when the store provides
// it and Options.Codec is nil; the same pointer then comes back from Get and
// mutations stay visible to every reader.
//
// A key written with SetValue can be read only with GetValue (and vice versa
// for bytes, except that []byte values are interchangeable): Get of a key
// holding a value other than []byte returns an error wrapping [ErrCorrupt].
type ValueStore interface {
	Store

	// GetValue returns the value under key, or ErrMiss.
	GetValue(ctx context.Context, key string) (any, error)

	// SetValue stores v under key for ttl (store-level TTL semantics).
	SetValue(ctx context.Context, key string, v any, ttl time.Duration) error

	// AddValue stores v only if key is absent or expired, atomically.
	AddValue(ctx context.Context, key string, v any, ttl time.Duration) (bool, error)

	// UpdateValue replaces the live value under key with fn(old), atomically
	// and keeping the key's expiry. It returns ErrMiss when the key is absent;
	// an error from fn leaves the value unchanged and is returned. fn runs
	// under the store's lock for that key and must not call the store.
	UpdateValue(ctx context.Context, key string, fn func(old any) (any, error)) (any, error)
}
