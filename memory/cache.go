package memory

import (
	"fmt"
	"hash/maphash"
	"iter"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/internal/flight"
)

// Cache is an in-process cache of Go values keyed by K, bounded by entry
// count or weight with W-TinyLFU eviction, with per-entry TTL. Values are
// kept by reference: Get returns the very value that was Set, so a pointer
// comes back identical and mutations through it are visible to every
// reader. Keys are not validated.
//
// A Cache is safe for concurrent use. Create it with [New] or [Must]; the
// zero value is not usable. Call [Cache.Close] when done with it.
type Cache[K comparable, V any] struct {
	c *core[K, V]
}

// core is the state of a Cache. Background goroutines (expiry, loads)
// reference the core only, so the public Cache can become unreachable and
// its cleanup can stop them.
//
// Concurrency: Get takes no lock. It looks the key up in the index with
// atomic loads (index.go), checks the expiry, and records the hit in a
// lossy read buffer (buffer.go). Every write (Set, Add, Update, Touch,
// Delete, Clear, an eviction, an expiry) holds mu, the one writer lock,
// while it updates the index, the policy and the expiry heap together, so
// that the three always agree and Len never exceeds the bound once a write
// returns. The exception is a Set that only swaps a new one-word value
// into an entry (value.go, setFast): it changes none of the three, and
// records its use like a Get. A write never mutates a published node's key
// or weight, nor its value unless the value is one word written atomically
// (value.go), and writes its expiry only atomically (node.expiry): else it
// publishes a new node in the same slot and hands the old one's place to
// the policy (policy_replace.go).
type core[K comparable, V any] struct {
	// Set by New, read-only afterwards.
	clock       cachekit.Clock
	base        time.Time // the clock's time at New: expiry stamps count from it
	system      bool      // clock is cachekit.SystemClock
	ttl         time.Duration
	weigher     func(K, V) uint32
	onEvict     func(K, V, Reason)
	stats       bool
	loadTimeout time.Duration
	interval    time.Duration
	hasher      keyHasher[K]
	vkind       valueKind // how values may be written in place (value.go)

	index index[K, V]      // read lock-free; written under mu
	reads readBuffer[K, V] // hits waiting for the policy; drained under mu
	// readEpoch is the current read epoch (buffer.go read); written under
	// mu, once per epoch.
	readEpoch atomic.Uint32

	// mu protects the index's writes, every field below up to size, and
	// the policy fields of every node (prev, next, queue, heapIndex,
	// removed).
	mu                   sync.Mutex
	policy               policy[K, V]     // eviction lists and frequency sketch
	expiry               expiryHeap[K, V] // entries with an expiry, soonest first
	loads                map[K]uint64     // ticket of each GetOrLoad load in progress
	loadSeq              uint64           // last ticket handed out
	closed               bool             // Close was called
	expiring             bool             // an expiry goroutine is running
	stop                 chan struct{}    // closed to stop that goroutine
	size                 atomic.Int64     // entries in the index; written under mu, read by Len
	loading              atomic.Int32     // len(loads), for the lock-free setters; written under mu
	epochReads, epochLen int              // hits applied in this read epoch, and its length

	wg      sync.WaitGroup // expiry goroutines; Add under mu while !closed
	callers sync.WaitGroup // GetOrLoad calls in progress; Add under mu while !closed
	group   flight.Group[K, V]

	// Counters, only touched when stats is true.
	hits, misses, evictions, expirations, loadCount, loadErrors atomic.Uint64
}

// evicted is an entry to report to OnEvict once the lock is released.
type evicted[K comparable, V any] struct {
	key    K
	value  V
	reason Reason
}

// New returns a cache configured by opts, or an error when opts are
// invalid (see [Options] for the rules).
func New[K comparable, V any](opts Options[K, V]) (*Cache[K, V], error) {
	o, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	capacity := uint64(o.MaxEntries)
	if o.MaxWeight > 0 {
		capacity = o.MaxWeight
	}
	c := &core[K, V]{
		clock:       o.Clock,
		base:        o.Clock.Now(),
		system:      o.Clock == cachekit.Clock(cachekit.SystemClock{}),
		ttl:         o.TTL,
		weigher:     o.Weigher,
		onEvict:     o.OnEvict,
		stats:       o.Stats,
		loadTimeout: o.LoadTimeout,
		interval:    o.CleanupInterval,
		hasher:      newKeyHasher[K](maphash.MakeSeed()),
		vkind:       valueKindOf[V](),
		index:       newIndex[K, V](),
		policy:      newPolicy[K, V](capacity),
	}
	c.reads = newReadBuffer[K, V](len(c.index.shards))
	c.readEpoch.Store(1) // 0 is a new node's epoch: never current
	pub := &Cache[K, V]{c: c}
	// Safety net: a Cache dropped without Close still stops its goroutine.
	runtime.AddCleanup(pub, func(c *core[K, V]) { c.shutdown() }, c)
	return pub, nil
}

// Must is like [New] but panics when opts are invalid.
func Must[K comparable, V any](opts Options[K, V]) *Cache[K, V] {
	c, err := New(opts)
	if err != nil {
		panic(err)
	}
	return c
}

// Get returns the value stored under key and true, or the zero value and
// false when the key is absent or expired. A hit counts as a use for the
// eviction policy. It does not allocate.
func (c *Cache[K, V]) Get(key K) (V, bool) {
	if n := c.c.get(key); n != nil {
		return c.c.valueOf(n), true
	}
	var zero V
	return zero, false
}

// GetEntry is like Get but also returns the entry's expiry and weight.
func (c *Cache[K, V]) GetEntry(key K) (Entry[K, V], bool) {
	if n := c.c.get(key); n != nil {
		return Entry[K, V]{Key: n.key, Value: c.c.valueOf(n), Expires: c.c.timeOf(n.expiry()), Weight: n.weight}, true
	}
	return Entry[K, V]{}, false
}

// Set stores value under key with the default TTL (Options.TTL), replacing
// any previous value (reported to OnEvict with [ReasonReplaced]). The value
// is visible to the next Get, unless it weighs more than MaxWeight: then it
// is not stored, the previous value is removed, and OnEvict sees the new
// value with [ReasonRejected].
func (c *Cache[K, V]) Set(key K, value V) {
	c.c.set(key, value, 0, false)
}

// SetWithTTL is like Set with a TTL for this entry: zero means the default
// TTL, [cachekit.NoExpiry] never, and a negative TTL ([cachekit.ExpireNow])
// stores nothing and deletes key.
func (c *Cache[K, V]) SetWithTTL(key K, value V, ttl time.Duration) {
	c.c.set(key, value, ttl, false)
}

// Add stores value under key only if the key is absent or expired, and
// reports whether it stored. ttl is as in SetWithTTL, except that a
// negative ttl stores nothing, deletes nothing and returns false.
func (c *Cache[K, V]) Add(key K, value V, ttl time.Duration) bool {
	return c.c.set(key, value, ttl, true)
}

// Update replaces the live value under key with fn(old), atomically, and
// keeps the entry's expiry. It returns the new value, or [cachekit.ErrMiss]
// when the key is absent or expired. An error from fn leaves the entry
// unchanged and is returned; so is an error wrapping [cachekit.ErrTooLarge]
// when the new value weighs more than MaxWeight. OnEvict is not called for
// the old value: fn saw it.
//
// WARNING: fn runs under the cache's lock: it must be quick and must not
// call the cache (that deadlocks).
func (c *Cache[K, V]) Update(key K, fn func(old V) (V, error)) (V, error) {
	return c.c.update(key, fn)
}

// Touch gives the live entry under key a new TTL (as in SetWithTTL) without
// changing its value, and reports whether the key was live. A negative ttl
// deletes the entry.
func (c *Cache[K, V]) Touch(key K, ttl time.Duration) bool {
	return c.c.touch(key, ttl)
}

// Delete removes key and reports whether it held a live entry. OnEvict sees
// the value with [ReasonDeleted] (or [ReasonExpired] if it had expired).
// A GetOrLoad load of key in progress will not store its result.
func (c *Cache[K, V]) Delete(key K) bool {
	return c.c.delete(key, nil)
}

// All returns an iterator over the live entries, in no particular order. It
// copies the entries under the lock, then yields them with the lock
// released, so the loop body may call the cache; changes made meanwhile
// are not reflected. Iterating does not count as use.
func (c *Cache[K, V]) All() iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		for _, e := range c.c.snapshot() {
			if !yield(e.key, e.value) {
				return
			}
		}
	}
}

// Keys returns an iterator over the keys of the live entries, with the
// same snapshot behaviour as All.
func (c *Cache[K, V]) Keys() iter.Seq[K] {
	return func(yield func(K) bool) {
		for _, e := range c.c.snapshot() {
			if !yield(e.key) {
				return
			}
		}
	}
}

// Len returns the number of stored entries, including expired ones that
// nothing has removed yet. It never exceeds MaxEntries.
func (c *Cache[K, V]) Len() int {
	return int(c.c.size.Load())
}

// Clear removes every entry; OnEvict sees each with [ReasonCleared]. Loads
// in progress will not store their results.
func (c *Cache[K, V]) Clear() {
	c.c.clear()
}

// Stats returns the counters; all zero unless Options.Stats is set.
func (c *Cache[K, V]) Stats() Stats {
	k := c.c
	return Stats{
		Hits:        k.hits.Load(),
		Misses:      k.misses.Load(),
		Evictions:   k.evictions.Load(),
		Expirations: k.expirations.Load(),
		Loads:       k.loadCount.Load(),
		LoadErrors:  k.loadErrors.Load(),
	}
}

// Close stops the expiry goroutine and waits for it and for GetOrLoad calls
// in progress (each load is bounded by LoadTimeout). It is idempotent and
// always returns nil.
//
// After Close, GetOrLoad returns [cachekit.ErrClosed]; every other method
// keeps working on the entries in memory, but expired entries are removed
// only when a read or write meets them. Close does not call OnEvict.
func (c *Cache[K, V]) Close() error {
	c.c.shutdown()
	c.c.wg.Wait()
	c.c.callers.Wait()
	c.c.group.Wait()
	return nil
}

// shutdown marks the cache closed and tells the expiry goroutine to stop,
// without waiting (it is also the cleanup of an unreachable Cache).
func (c *core[K, V]) shutdown() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	if c.expiring {
		close(c.stop)
	}
}

// live reports whether n has not expired at now; now is only read (lazily)
// when n has an expiry.
func (c *core[K, V]) live(n *node[K, V]) bool {
	e := n.expiry()
	return e == 0 || c.now() < e
}

// now returns the current time as a stamp: stampOf(c.clock.Now()). On the
// system clock it reads only the monotonic clock, as time.Since does (25
// ns/op here, against 48 for time.Now, which also reads the wall clock).
func (c *core[K, V]) now() int64 {
	if c.system {
		return max(int64(time.Since(c.base)), 0) + 1
	}
	return c.stampOf(c.clock.Now())
}

// hashOf returns key's hash, never 0 (0 marks a never-used index slot).
func (c *core[K, V]) hashOf(key K) uint64 {
	return c.hasher.hash(key)
}

// get returns the live node of key, or nil. It takes no lock (unless it
// meets an expired entry, which it removes) and does not allocate; the
// clock is read only when the entry has an expiry.
func (c *core[K, V]) get(key K) *node[K, V] {
	n := c.index.get(c.hashOf(key), key)
	if n != nil && c.live(n) {
		c.record(n)
		if c.stats {
			c.hits.Add(1)
		}
		return n
	}
	if n != nil {
		c.removeIfExpired(n)
	}
	if c.stats {
		c.misses.Add(1)
	}
	return nil
}

// removeIfExpired removes n, which a reader found expired, unless a writer
// removed or replaced it meanwhile.
func (c *core[K, V]) removeIfExpired(n *node[K, V]) {
	var ev []evicted[K, V]
	c.mu.Lock()
	if !n.removed && !c.live(n) {
		c.removeExpired(n, &ev)
	}
	c.mu.Unlock()
	c.notify(ev)
}

// stampOf turns a time of the cache's clock into an expiry stamp: its
// distance from c.base plus one, so that 0 is left for "never" (the zero
// time maps to 0). A stamp is 8 bytes in the node where a time.Time takes
// 24, and on the system clock it keeps the monotonic reading's ordering.
func (c *core[K, V]) stampOf(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return min(max(int64(t.Sub(c.base)), 0), math.MaxInt64-1) + 1
}

// timeOf turns an expiry stamp back into a time (zero for 0).
func (c *core[K, V]) timeOf(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return c.base.Add(time.Duration(s - 1))
}

// resolveTTL maps the zero TTL to the default one.
func (c *core[K, V]) resolveTTL(ttl time.Duration) time.Duration {
	if ttl == 0 {
		return c.ttl
	}
	return ttl
}

// deadline converts a resolved TTL (not negative) into an expiry stamp (0:
// never), reading the clock only when the TTL is finite.
func (c *core[K, V]) deadline(ttl time.Duration) int64 {
	if ttl == 0 || ttl == cachekit.NoExpiry {
		return 0
	}
	if c.system {
		now := c.now()
		if d := now + int64(ttl); d > now {
			return d
		}
		return 0 // past the stamps' range: never, as cachekit.ExpiryTime
	}
	d, _ := cachekit.ExpiryTime(c.clock.Now(), ttl)
	return c.stampOf(d)
}

// weigh returns the policy weight of an entry.
func (c *core[K, V]) weigh(key K, value V) uint32 {
	if c.weigher == nil {
		return 1
	}
	return c.weigher(key, value)
}

// set implements Set, SetWithTTL and (onlyIfAbsent) Add.
func (c *core[K, V]) set(key K, value V, ttl time.Duration, onlyIfAbsent bool) bool {
	ttl = c.resolveTTL(ttl)
	if ttl < 0 {
		if !onlyIfAbsent {
			c.delete(key, nil)
		}
		return false
	}
	h := c.hashOf(key) // once: the fast way, the node and the locked way share it
	if ttl == 0 && !onlyIfAbsent && c.weigher == nil && c.vkind != valueOther && c.setFast(h, key, value) {
		return true
	}
	var ev []evicted[K, V]
	expires := c.deadline(ttl)
	// The node is made before taking the lock, so that allocation (and the
	// GC work it may be charged) stays out of the critical section, unless
	// the write will likely be made in place and need none.
	var n *node[K, V]
	if c.vkind == valueOther || onlyIfAbsent {
		n = newNode(key, h, value, expires)
	}
	c.mu.Lock()
	stored := c.setLocked(key, h, value, expires, n, onlyIfAbsent, &ev)
	c.mu.Unlock()
	c.notify(ev)
	return stored
}

// with returns an unpublished copy of n with another value, expiry stamp
// and weight, to replace n (publish).
func (n *node[K, V]) with(value V, expires int64, weight uint32) *node[K, V] {
	c := &node[K, V]{key: n.key, value: value, hash: n.hash, weight: weight, heapIndex: -1}
	c.expires.Store(expires)
	return c
}

// newNode returns an unpublished node for key, whose hash is h.
func newNode[K comparable, V any](key K, h uint64, value V, expires int64) *node[K, V] {
	n := &node[K, V]{key: key, value: value, hash: h, heapIndex: -1}
	n.expires.Store(expires)
	return n
}

// setLocked stores value under key (whose hash is h) until the stamp
// expires (0: never), or only when the key is absent or expired if
// onlyIfAbsent. It reports whether it stored. n is nil or a node from
// newNode with the same contents, used if a new node is needed. c.mu must
// be held.
func (c *core[K, V]) setLocked(key K, h uint64, value V, expires int64, n *node[K, V], onlyIfAbsent bool, ev *[]evicted[K, V]) bool {
	c.drainAll()
	s, old := c.index.find(h, key)
	if old != nil && !c.live(old) {
		c.removeExpired(old, ev)
		s, old = nil, nil
	}
	if old != nil && onlyIfAbsent {
		return false
	}
	c.invalidateLoad(key)
	w := c.weigh(key, value)
	if uint64(w) > c.policy.max {
		if old != nil {
			c.remove(old, ReasonReplaced, ev)
		}
		c.report(key, value, ReasonRejected, ev)
		return false
	}
	if old != nil && c.vkind != valueOther && old.weight == w {
		// In place: the value, then the deadline (see node.expiry), the
		// node held so that no lock-free Set comes in between.
		hold(old)
		prev := c.swapValue(old, value)
		old.expires.Store(expires)
		release(old)
		c.trackExpiry(old)
		c.report(key, prev, ReasonReplaced, ev)
		c.policy.access(old) // a write is a use
		return true          // same weight: the bound holds
	}
	if n == nil {
		n = newNode(key, h, value, expires)
	}
	n.weight = w // not published yet
	if old != nil {
		seal(old) // before reading its value
		c.report(key, old.value, ReasonReplaced, ev)
		c.publish(s, old, n)
		c.policy.access(n)
	} else {
		c.index.insert(n.hash, n)
		c.policy.add(n, int(c.size.Load())+1)
		c.trackExpiry(n)
	}
	c.enforceBound(n, ev)
	if old == nil {
		// Counted after the evictions, so that Len never sees the bound
		// exceeded.
		c.size.Add(1)
	}
	return true
}

// publish makes n, a copy of old with a new value, expiry or weight, take
// old's place in slot s, in the policy and in the expiry heap. c.mu must
// be held.
func (c *core[K, V]) publish(s *indexSlot[K, V], old, n *node[K, V]) {
	seal(old) // the caller sealed it before copying its value
	old.removed = true
	c.policy.replace(old, n) // before the Store: it writes n.weight
	s.node.Store(n)
	if i := old.heapIndex; i >= 0 {
		c.expiry[i].n = n
		n.heapIndex = i
		old.heapIndex = -1
	}
	c.trackExpiry(n)
}

// enforceBound evicts until the cache is within its bound, never keep.
// c.mu must be held.
func (c *core[K, V]) enforceBound(keep *node[K, V], ev *[]evicted[K, V]) {
	for v := c.policy.victim(keep); v != nil; v = c.policy.victim(keep) {
		if c.stats {
			c.evictions.Add(1)
		}
		c.remove(v, ReasonEvicted, ev)
	}
}

func (c *core[K, V]) update(key K, fn func(V) (V, error)) (V, error) {
	var zero V
	var ev []evicted[K, V]
	c.mu.Lock()
	s, old := c.index.find(c.hashOf(key), key)
	if old == nil || !c.live(old) {
		if old != nil {
			c.removeExpired(old, &ev)
		}
		c.mu.Unlock()
		c.notify(ev)
		return zero, cachekit.ErrMiss
	}
	hold(old) // no lock-free Set between reading the value and replacing it
	v, err := fn(old.value)
	if err != nil {
		release(old)
		c.mu.Unlock()
		return zero, err
	}
	w := c.weigh(key, v)
	if uint64(w) > c.policy.max {
		release(old)
		c.mu.Unlock()
		return zero, fmt.Errorf("memory: update: weight %d exceeds MaxWeight %d: %w", w, c.policy.max, cachekit.ErrTooLarge)
	}
	c.invalidateLoad(key)
	n := old
	if c.vkind != valueOther && w == old.weight {
		c.swapValue(old, v) // the expiry stays: in place
		release(old)
	} else {
		kill(old)
		n = old.with(v, old.expiry(), w)
		c.publish(s, old, n)
	}
	c.policy.access(n)
	c.enforceBound(n, &ev)
	c.mu.Unlock()
	c.notify(ev)
	return v, nil
}

func (c *core[K, V]) touch(key K, ttl time.Duration) bool {
	ttl = c.resolveTTL(ttl)
	if ttl < 0 {
		return c.delete(key, nil)
	}
	var ev []evicted[K, V]
	c.mu.Lock()
	_, old := c.index.find(c.hashOf(key), key)
	if old != nil && !c.live(old) {
		c.removeExpired(old, &ev)
		old = nil
	}
	if old != nil {
		// In place, held: a lock-free Set checks the deadline while it
		// holds the node (value.go).
		hold(old)
		old.expires.Store(c.deadline(ttl))
		release(old)
		c.trackExpiry(old)
	}
	c.mu.Unlock()
	c.notify(ev)
	return old != nil
}

// delete removes key if match is nil or accepts its live value, and
// reports whether it removed a live entry.
func (c *core[K, V]) delete(key K, match func(V) bool) bool {
	var ev []evicted[K, V]
	c.mu.Lock()
	_, n := c.index.find(c.hashOf(key), key)
	removed := false
	switch {
	case n != nil && !c.live(n):
		c.removeExpired(n, &ev)
	case n != nil && match == nil:
		c.remove(n, ReasonDeleted, &ev)
		removed = true
	case n != nil:
		hold(n) // no lock-free Set between the match and the removal
		if match(n.value) {
			kill(n)
			c.remove(n, ReasonDeleted, &ev)
			removed = true
		} else {
			release(n)
		}
	}
	if match == nil || removed {
		c.invalidateLoad(key)
	}
	c.mu.Unlock()
	c.notify(ev)
	return removed
}

func (c *core[K, V]) clear() {
	var old []*node[K, V]
	c.mu.Lock()
	// Every node is marked removed so that records still in the read
	// buffers are ignored when drained.
	c.index.all(func(n *node[K, V]) bool {
		seal(n)
		n.removed = true
		if c.onEvict != nil {
			old = append(old, n)
		}
		return true
	})
	c.index.reset()
	c.size.Store(0)
	c.policy.reset()
	clear(c.expiry)
	c.expiry = c.expiry[:0]
	for k := range c.loads {
		c.group.Forget(k)
	}
	clear(c.loads)
	c.loading.Store(0)
	c.mu.Unlock()
	for _, n := range old {
		c.onEvict(n.key, n.value, ReasonCleared)
	}
}

// snapshot copies the live entries. It takes no lock: entries written
// meanwhile may or may not be included.
func (c *core[K, V]) snapshot() []evicted[K, V] {
	out := make([]evicted[K, V], 0, c.size.Load())
	var now int64
	c.index.all(func(n *node[K, V]) bool {
		e := n.expiry()
		if e != 0 && now == 0 {
			now = c.now()
		}
		if e == 0 || now < e {
			out = append(out, evicted[K, V]{key: n.key, value: c.valueOf(n)})
		}
		return true
	})
	return out
}

// remove takes n out of the index, the policy and the heap, and queues it
// for OnEvict. c.mu must be held.
func (c *core[K, V]) remove(n *node[K, V], reason Reason, ev *[]evicted[K, V]) {
	seal(n)
	c.index.remove(n)
	c.size.Add(-1)
	c.policy.remove(n)
	n.removed = true
	if n.heapIndex >= 0 {
		c.expiry.remove(n)
	}
	c.report(n.key, n.value, reason, ev)
}

// removeExpired removes an expired node. c.mu must be held.
func (c *core[K, V]) removeExpired(n *node[K, V], ev *[]evicted[K, V]) {
	if c.stats {
		c.expirations.Add(1)
	}
	c.remove(n, ReasonExpired, ev)
}

// report queues an OnEvict call, if there is a callback. c.mu must be held.
func (c *core[K, V]) report(key K, value V, reason Reason, ev *[]evicted[K, V]) {
	if c.onEvict != nil {
		*ev = append(*ev, evicted[K, V]{key: key, value: value, reason: reason})
	}
}

// notify calls OnEvict for ev. c.mu must NOT be held.
func (c *core[K, V]) notify(ev []evicted[K, V]) {
	for _, e := range ev {
		c.onEvict(e.key, e.value, e.reason)
	}
}
