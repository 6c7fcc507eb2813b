// Package memo caches the results of functions in a [cachekit.Cache]: the
// Go counterpart of django-cache-utils' @cached (readable keys,
// invalidation of one argument set, O(1) group invalidation, MintCache
// dog-pile prevention, project version) and DiskCache's memoize and
// memoize_stampede (XFetch early refresh).
//
//	getUser := memo.Must(cache, "users.Get", loadUser, memo.Options{TTL: time.Minute})
//	u, err := getUser.Call(ctx, 42)      // computed once, then cached
//	err = getUser.Invalidate(ctx, 42)    // the next call computes again
//
// # Functions and keys
//
// [New] wraps a function of one argument, func(ctx, A) (V, error); use a
// struct for several arguments. [NewBatch] wraps a batch function,
// func(ctx, []K) (map[K]V, error), caching each record on its own and
// merging overlapping calls. The key of a call ([Func.Key]) is the
// function's name, its Options.Version, and a canonical, readable encoding
// of the argument: `users.Get(42)`, `search.Run(Query="go",Page=2)`. The
// cache adds its prefix and version (the project version, so a deploy can
// orphan every key at once) and applies its key policy, so memcached keys
// keep a readable head and a hash. Argument types that cannot be encoded
// (funcs, channels, unsafe pointers) are refused by New, not at call time;
// a type may name its own key with a CacheKey method ([Keyer]).
//
// # Invalidation
//
// [Func.Invalidate] deletes the value of one argument. [Func.InvalidateAll]
// and [Group.Invalidate] orphan every value of a function or of a group of
// functions with one store operation, whatever their number: each value
// records the generations of its function and groups (cachekit.Entry's
// Stamps), read before it was computed, and a read accepts it only if they
// are still current. An evicted generation invalidates its values, the
// safe direction.
//
// # Stampedes
//
// Defences are optional and combine:
//   - Coalescing (on by default): callers of one process that miss the
//     same key share one computation, run on a context none of them can
//     cancel (Options.LoadTimeout bounds it).
//   - Options.Lease: across processes, one computes under the store's lease
//     while the others wait for its value, woken by the store's Notifier
//     where it has one.
//   - Options.StaleWhileRevalidate (MintCache): past its TTL a value is
//     still served while one caller recomputes it in the background.
//   - Options.XFetch: fresh values are recomputed early, in the background,
//     with a probability that rises as expiry nears (Vattani, Chierichetti
//     and Lowenstein, VLDB 2015); one caller across processes is elected.
//   - Options.StaleIfError: a failing recomputation serves the stale value
//     for a while.
//   - Options.Jitter spreads expiries; Options.NegativeTTL caches not-found
//     answers; Options.CacheIf (for instance [NotZero]) chooses what to
//     cache.
//
// Every event (hit, miss, stale-served, refresh start/ok/fail, coalesced,
// lease-wait, negative-hit) goes to Options.Observer.
//
// # Caveats
//
// Each call reads the generations of its function and groups from the
// store: one more store operation per hit (one GetMany for several, where
// the store has it). On a process-local store ([cachekit.ProcessLocal]: the
// memory store) no other process can change a generation, so one read is
// trusted until this process invalidates (every Func and Group of this
// process over the same store and name shares it): no extra read per hit.
// Elsewhere Options.StampMaxStale and GroupOptions.MaxStale trade that read
// for a bounded delay before invalidations made by other processes are
// seen.
//
// Background refreshes and shared computations keep a reference to the
// argument: do not modify an argument after passing it. Close a [Func] or
// [Batch] to wait for its background work; Close does not close the cache.
//
// The clock (Options.Clock, by default the cache's) and the store's must
// agree: freshness is kept as absolute times in the envelope.
//
// [Func.Invalidate] removes one value at once, but a computation running in
// another process at that moment may store its older result afterwards (as
// with Django's cache); InvalidateAll and groups have no such window.
//
// Names beginning with "memo." are the package's own (stamps and leases):
// New refuses them.
package memo
