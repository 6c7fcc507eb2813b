// Package memory is cachekit's in-process tier: a generic object cache,
// [Cache], and a [Store] that serves it to the cachekit facade as a byte
// store and an object tier.
//
// # Object cache
//
// [Cache] keeps Go values by reference, with no serialization and no key
// validation (the role of django-lrucache-backend): Get returns the very
// value that was Set, so a pointer comes back identical and mutations
// through it are visible to every reader.
//
//	c := memory.Must(memory.Options[string, *User]{MaxEntries: 10_000, TTL: time.Minute})
//	defer c.Close()
//	c.Set("u1", u)
//	u, ok := c.Get("u1")
//
// [Cache.GetOrLoad] fills misses with single flight: concurrent callers of
// the same key share one load, which no single caller can cancel, a
// panicking loader becomes a *[cachekit.PanicError] for every waiter, and a
// write to the key during the load keeps the loaded value out of the cache.
// A Set is visible to the very next Get: writes are never buffered or
// dropped.
//
// # Byte store
//
// [Store] implements [cachekit.Store] and its capabilities [cachekit.Adder],
// [cachekit.Toucher], [cachekit.Counter], [cachekit.Batcher],
// [cachekit.Clearer], [cachekit.ExpiryReader], [cachekit.Leaser] and
// [cachekit.ValueStore]. Byte values are copied in and out; ValueStore
// values are kept by reference. It can be bounded by entry count or by
// approximate bytes (StoreOptions.MaxBytes, see [EntryOverhead] and
// [ObjectWeight]).
//
// # Eviction
//
// A cache is bounded by entry count (Options.MaxEntries, default
// [DefaultMaxEntries]) or by total weight (Options.MaxWeight with a
// Weigher). Eviction follows an adaptive W-TinyLFU, as in Caffeine: new
// entries enter an LRU window; the window's least recent entry moves into a
// segmented LRU main region (probation, then protected once hit again) only
// if a 4-bit count-min sketch of recent use says it is used more often than
// the main region's least recent entry, which is evicted instead. The
// sketch halves its counters every 10 × capacity increments, so old
// popularity fades. The window starts at 1% of the capacity and moves by
// small steps, as ARC's split does: a miss on a key the window evicted a
// moment ago grows it, a miss on a key the main region evicted a moment
// ago shrinks it. It grows on recency-skewed workloads and shrinks on
// frequency-skewed (Zipf) ones. On Zipf and LIRS LOOP traces the hit ratio
// is on a par with or above theine, otter, LRU and 2Q; on ARC P3 too,
// except at 200k to 500k entries, where LRU or 2Q keep more (see
// hitratio_test.go and docs/benchmarks.md). An entry heavier than
// MaxWeight is never stored ([ReasonRejected]).
//
// # Expiry
//
// Each entry may have a TTL: zero means the cache's default (Options.TTL,
// itself zero for "never"), [cachekit.NoExpiry] never, and a negative TTL
// ([cachekit.ExpireNow]) stores nothing and deletes the key. An expired
// entry is never returned: reads check the deadline against Options.Clock.
// Expired entries are also removed by one background goroutine, which runs
// only while some entry has an expiry, every Options.CleanupInterval.
//
// # Concurrency and cost
//
// Get takes no lock: it probes a sharded open-addressing index with atomic
// loads (a control byte per slot holds 7 bits of the key's hash, so a
// lookup compares 8 slots at once and dereferences only matching ones; a
// hit reads the slot's pointer and the entry), checks the expiry (the
// clock is read only for entries that have one) and records the hit in a
// lossy buffer of its goroutine that is applied to the eviction policy in
// batches, under TryLock, by whichever reader fills it (a hit is lost only
// when a buffer fills while the policy is busy; a hit on an entry already
// applied in the current read epoch, a run of entries/8 applied hits, is
// not recorded again). Every write that adds, removes or re-times an entry
// (Set of a new key, Add, Update, Touch, Delete, eviction, expiry) takes
// one mutex and updates the index and the policy together, so it is never
// lost nor delayed: a Set is visible to the next Get and Len is within the
// bound when it returns. A Set that only replaces the one-word value of an
// entry without expiry (below), in a cache without Weigher or default TTL,
// takes no lock: it swaps the value in and records the use like a Get.
//
// Since readers take no lock, an entry is modified in place only by
// atomic one-word stores: its expiry (Touch, a Set with a TTL), and a value
// that is a pointer, map, channel or 8-byte number, written by Set or
// Update with an unchanged weight. Any other write of an existing key
// (other value types, a new weight) allocates a new entry that replaces
// the old one (64 bytes with word-sized keys and values). A Get of a hit
// allocates nothing. Entries with an expiry wait in a heap that a write
// moving a deadline later does not re-sort (it is re-sorted when the old
// deadline comes), so such writes cost no more than others. With int keys and values, the cache holds about 93
// bytes per entry at 1M entries: the entry, 11 for the index and 17 for
// the frequency sketch.
//
// # Caveats
//
// Values are shared, not copied: a caller that mutates a cached value
// mutates it for everyone, concurrently with other goroutines that read it.
// Cache only synchronizes its own index; synchronize the values yourself,
// or store immutable ones.
//
// OnEvict runs after the operation that caused it has released the cache's
// lock, on that operation's goroutine (or the expiry goroutine), so it may
// call the cache; it delays the caller, so keep it short. Update's fn and
// the Weigher, by contrast, run under the lock and must not call the cache.
//
// Call Close when done: it stops the expiry goroutine and waits for it and
// for loads in progress. A Cache that becomes unreachable without Close
// stops its goroutine through a cleanup (runtime.AddCleanup), unless
// OnEvict or a loader keeps the Cache reachable. After Close, GetOrLoad
// returns [cachekit.ErrClosed] while the other methods of Cache keep
// working without background expiry; every method of Store returns
// [cachekit.ErrClosed].
package memory
