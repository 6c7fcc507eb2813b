// Package lock provides DiskCache's cross-process recipes for Go, over any
// cachekit store: a mutual-exclusion [Lock], a re-entrant [RLock], a
// counting [Semaphore], a rate-limiting [Throttle], a [Barrier] that
// serialises a function, and a shared running mean, [Averager].
//
// The primitives keep their state in the store, so they coordinate every
// goroutine and every process that uses the same store and key: processes
// on one host with the disk store, processes on many hosts with redis or
// memcached, goroutines of one process with the memory store.
//
//	s, err := disk.New(ctx, disk.Options{Dir: dir})
//	...
//	l, err := lock.NewLock(s, "reindex", lock.LockOptions{Expiry: time.Minute})
//	if err := l.Acquire(ctx); err != nil { ... }
//	defer l.Release(ctx)
//
// # What the store must offer
//
// Every primitive needs a [cachekit.Leaser] (an exclusive lease on a key
// whose release is checked against the owner); every store of this module
// has one, and the constructors return an error wrapping
// [cachekit.ErrNotSupported] for a store that does not. [Lock.Extend] also
// needs a [cachekit.Toucher]; [Barrier] uses one, when present, to keep
// its lock alive while the function runs. Waiting calls use a
// [cachekit.Notifier], when the store is one, to wake early (below).
//
// # Ownership and expiry
//
// A [Lock] or [Semaphore] value is one owner: the lease it takes carries a
// random token that the store writes under the key, and Release frees only
// a lease that still holds that token, so neither another owner nor a
// holder whose lease expired and passed to someone else can free another
// owner's hold: Release then returns an error wrapping [ErrNotHeld]. Share
// one value among goroutines as you would share a sync.Mutex, or give each
// goroutine its own value to make them distinct owners.
//
// Every hold has an expiry (LockOptions.Expiry and friends, 30 s by
// default), which bounds how long a crashed holder (killed, or on a host
// that went away) keeps it: the lease then expires in the store and the
// next waiter takes it. A live holder that needs longer calls
// [Lock.Extend], or uses a [Barrier], which extends its hold while the
// function runs.
//
// # State updates
//
// [RLock], [Throttle] and [Averager] keep a small value under their key
// and change it by read-modify-write cycles serialised by a short lease on
// a companion key (key + "#guard"): Get, compute, Set or Delete, release.
// So every update is atomic with respect to every other update through
// this package, on any store with a Leaser. An update that could not reach
// its write within half of the guard's lifetime (5 s) is abandoned
// unwritten and retried, so a stalled process never writes after its
// guard has passed to another one.
//
// # Waiting
//
// Acquire and Wait retry with exponential backoff and jitter, from
// [Backoff].Min (1 ms) doubling up to [Backoff].Max (100 ms); they never
// poll on a fixed short period. When the store is a [cachekit.Notifier]
// (redis with client tracking, the disk store through its shared write
// counter) a waiter subscribes while it waits and, on an invalidation of
// the key it waits for (or of every key: the disk store cannot say which
// key changed), reads the key at once and tries again if it looks free.
// The goroutines waiting on one primitive value share one subscription,
// which outlives the last wait by a second so that a busy primitive does
// not subscribe again and again (a redis subscription opens a tracking
// connection). A store whose Subscribe fails (within at most a second) is
// polled with backoff alone from then on. Every wait honours its context: it returns an error
// wrapping ctx.Err() as soon as ctx is done.
//
// # Keys
//
// A primitive on key k uses k itself and, depending on the type, keys
// starting with k + "#": k#guard for the guard of [RLock], [Throttle] and
// [Averager], k#0 … k#(n-1) for the slots of a [Semaphore]. Give unrelated
// primitives and cached values keys that do not collide with these.
//
// # Errors
//
// Store errors are returned wrapped (errors.Is sees [cachekit.ErrClosed],
// [cachekit.ErrUnavailable] and the rest), never turned into a false; a
// context that ends while waiting gives an error wrapping ctx.Err(); a
// release or extension by a non-owner gives [ErrNotHeld]; a missing store
// capability gives [cachekit.ErrNotSupported].
//
// # Caveats
//
// The guarantees are the store's: a lock is as exclusive as the store's
// lease. A store that evicts live keys under memory or size pressure
// (memcached, a bounded memory store, a disk store over its SizeLimit) can
// drop a held lock or a throttle's state; keep the primitives in a store
// with room to spare, or one that does not evict (a disk store with Policy
// disk.NoEviction).
//
// The primitives need a store whose reads see every completed write, in
// every process: memory (one process), disk, redis, memcached. Do not put
// them on a tiered store: it may serve a read from its local tier up to
// its MaxStale after another process's write, which would lose a guarded
// update. Use the tiered store's L2 directly.
//
// Expiry runs on the store's clock (the redis server's, the disk store's
// Options.Clock), while [Throttle] reads its own [ThrottleOptions].Clock:
// processes sharing a throttle need clocks that agree (the wall clock of
// hosts kept in sync by NTP).
//
// The check that makes Release and Extend report [ErrNotHeld] reads the key
// before acting: a lease that expires between that read and the action is
// still never freed for its next owner (the store's release is atomic), but
// the call then reports success; and Extend, which has no atomic
// owner-checked form in the Store contract, can in that window extend the
// next owner's lease. Pick an expiry far longer than a round trip.
package lock
