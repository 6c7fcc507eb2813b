package memory

import (
	"math/bits"
	"math/rand/v2"
	"sync/atomic"
)

// This file holds the adaptive W-TinyLFU eviction policy. New entries enter
// a window LRU; behind it, a segmented LRU main region (probation and
// protected) holds the rest. A 4-bit count-min sketch (policy_sketch.go)
// estimates how often each key was used recently. When the window
// overflows, its least recent entry (the candidate) enters the main region
// only if the sketch says it is used more often than the main region's least
// recent entry (the victim); the loser is evicted.
//
// The split between window and main is not fixed: two small ghost lists
// remember the hashes of the keys the window and main evicted last, and a
// miss on a key one of them remembers moves the split a little towards the
// region that would have kept it (policy_window.go, after ARC's adaptation).
// Recency-skewed workloads (entries reused soon after their first use, then
// rarely) end up with a large window; frequency-skewed ones (Zipf), and
// loops longer than the cache, with a small one.
//
// The data structures are not safe for concurrent use: the cache serializes
// calls to the policy.

// queue tells which list of the policy a node is on.
type queue uint8

const (
	queueNone      queue = iota // not linked (removed)
	queueWindow                 // admission window LRU
	queueProbation              // main region, seen once in main
	queueProtected              // main region, hit again while in probation
)

// node is one cache entry. The policy's lists are intrusive (prev/next live
// in the node) so that a hit relinks pointers without allocating.
type node[K comparable, V any] struct {
	key     K
	value   V
	expires atomic.Int64 // expiry as a stamp of the cache's clock (cache.go stampOf); 0: never; see expiry
	hash    uint64       // maphash of key, for the sketch

	prev, next *node[K, V] // neighbours in the node's queue list
	heapIndex  int32       // position in the expiry heap, -1 when absent (int32 keeps the node at 64 bytes)
	weight     uint32

	// Cache state, outside the policy (cache.go, buffer.go, value.go).
	state   atomic.Uint32 // nodeFree, nodeHeld or nodeDead, and the read epoch: see value.go
	queue   queue
	removed bool // left the cache or was replaced; guarded by the cache's mu
}

// expiry returns n's deadline as a stamp (0: never). It is written in
// place, under the cache's lock, only while n is held (value.go), after
// the value: a reader that loads the deadline first and then the value
// sees a value at least as new as the deadline.
func (n *node[K, V]) expiry() int64 { return n.expires.Load() }

// nodeList is a doubly linked list of nodes: head is the most recently used,
// tail the least. weight is the sum of its nodes' weights.
type nodeList[K comparable, V any] struct {
	head, tail *node[K, V]
	weight     uint64
}

func (l *nodeList[K, V]) pushFront(n *node[K, V]) {
	n.prev = nil
	n.next = l.head
	if l.head != nil {
		l.head.prev = n
	} else {
		l.tail = n
	}
	l.head = n
	l.weight += uint64(n.weight)
}

func (l *nodeList[K, V]) remove(n *node[K, V]) {
	if n.prev != nil {
		n.prev.next = n.next
	} else {
		l.head = n.next
	}
	if n.next != nil {
		n.next.prev = n.prev
	} else {
		l.tail = n.prev
	}
	n.prev, n.next = nil, nil
	l.weight -= uint64(n.weight)
}

func (l *nodeList[K, V]) moveToFront(n *node[K, V]) {
	if l.head == n {
		return
	}
	l.remove(n)
	l.pushFront(n)
}

// Tuning of the policy.
const (
	// initialWindowPercent of the capacity starts as the window.
	initialWindowPercent = 1
	// A miss on a key a ghost list remembers moves capacity >>
	// ghostStepShift (1/4096, at least one weight unit) between the window
	// and main.
	ghostStepShift = 12
	// Each ghost list remembers the last entries/ghostDivisor evictions
	// (at least ghostMinLen): a key counts only if a region larger by about
	// 1% of the cache would have kept it. Longer ghosts (6% of the cache)
	// push the window up on loops barely longer than the cache (LIRS LOOP
	// at 1000 entries: 0.88 instead of 0.98) and on P3 at 100k.
	ghostDivisor = 100
	ghostMinLen  = 8
	// A candidate at least admitFloor frequent is admitted at random, once
	// in admitRandom tries, against a victim whose counters are saturated
	// (admitVictim): an attacker who makes a victim look as hot as can be
	// (hash flooding) cannot lock every warm newcomer out for ever. Victims
	// below saturation are left to the frequency test: random admissions
	// against them churn loops (LIRS LOOP at 750 entries loses 4 points).
	admitFloor  = 6
	admitVictim = 15
	admitRandom = 128

	// A key admission rejected is let into main without the frequency test
	// when it leaves the window again within half to one period of
	// entries requests of that rejection (see rejectedSet): an LRU cache
	// of the same size would have kept it. The horizon is counted in
	// requests, not rejections, so that a loop longer than the cache
	// (whose keys come back only after more requests than the cache
	// holds) is not churned: counted in rejections like 2Q's A1out (the
	// last entries/2 rejections) it took LIRS LOOP from 0.74 to 0.59 at
	// 750 entries and from 0.985 to 0.79 at 1000. TestPolicySim, mean of
	// 5 hash seeds, before -> after: ARC P3 100k 0.4092 -> 0.4215, 200k
	// 0.5753 -> 0.5888, 300k 0.6854 -> 0.6922, but 25k 0.1531 -> 0.1507,
	// 50k 0.2635 -> 0.2584, 400k 0.7652 -> 0.7638, 500k 0.7903 -> 0.7893;
	// LOOP unchanged; Zipf +0.0003 to +0.0008. Admitting such a key only
	// on a tie of frequencies kept about half the gain at 100k and none
	// at 200k (measured with a horizon of entries/2 rejections).
	// rejectedBitsPerKey bits of Bloom filter per rejection of a period,
	// with 4 probes. LOOP punishes every false positive (a loop key let
	// in evicts one the cache would have kept): at 8 bits and 2 probes
	// (0.4% of its misses) it fell from 0.245 to 0.213 at 250 entries,
	// and at 64 bits and 3 probes 2 hash seeds of 30 still lost 0.01 to
	// 0.016 there; at 128 bits and 4 probes all 30 match the old policy.
	rejectedBitsPerKey = 128
)

// policy is the adaptive W-TinyLFU state of a cache.
type policy[K comparable, V any] struct {
	window, probation, protected nodeList[K, V]

	weight       uint64 // total weight of the three lists
	max          uint64 // capacity: MaxEntries or MaxWeight
	maxWindow    uint64 // current capacity of the window
	maxProtected uint64 // current capacity of the protected segment

	sketch sketch
	rng    uint64 // xorshift state for the random admission

	// ghostWindow remembers the keys that left the window (whether
	// admission rejected them or let them into main), ghostMain the
	// victims main evicted and the entries it lost to a growing window
	// (see adaptOnMiss).
	ghostWindow, ghostMain ghost

	sink uint64 // written by touchLines, so that its loads are kept

	// rejected remembers the keys admission turned away lately (see
	// rejectedSet); ticks counts requests (adds and applied hits:
	// a hit the read buffer skipped, cache.read, is not counted).
	rejected rejectedSet
	ticks    uint64
	entries  int // the cache's entry count at the last add

}

func newPolicy[K comparable, V any](capacity uint64) policy[K, V] {
	maxWindow := max(capacity*initialWindowPercent/100, 1)
	maxMain := capacity - min(maxWindow, capacity)
	return policy[K, V]{
		max:          capacity,
		maxWindow:    maxWindow,
		maxProtected: maxMain - maxMain/5, // 80% of main
		sketch:       newSketch(capacity),
		rng:          rand.Uint64() | 1,
	}
}

func (p *policy[K, V]) listOf(q queue) *nodeList[K, V] {
	switch q {
	case queueWindow:
		return &p.window
	case queueProbation:
		return &p.probation
	case queueProtected:
		return &p.protected
	}
	return nil
}

// reset forgets every node; the sketch keeps its frequencies and the
// window keeps its size.
func (p *policy[K, V]) reset() {
	p.window, p.probation, p.protected = nodeList[K, V]{}, nodeList[K, V]{}, nodeList[K, V]{}
	p.weight = 0
}

// add links a new node at the head of the window and records the access.
// A new entry follows a miss: if a ghost list remembers the key, the split
// between window and main moves (adaptOnMiss).
func (p *policy[K, V]) add(n *node[K, V], entries int) {
	p.tick()
	p.entries = entries
	if p.rejected.has(n.hash) {
		// Back in time: keep it remembered until it leaves the window.
		p.rejected.add(n.hash, p.ticks)
	}
	p.sketch.ensureCapacity(entries)
	p.sketch.increment(n.hash)
	p.adaptOnMiss(n.hash, entries)
	n.queue = queueWindow
	p.window.pushFront(n)
	p.weight += uint64(n.weight)
}

// remove unlinks n.
func (p *policy[K, V]) remove(n *node[K, V]) {
	if l := p.listOf(n.queue); l != nil {
		l.remove(n)
		p.weight -= uint64(n.weight)
	}
	n.queue = queueNone
}

// setWeight changes the weight of a linked node.
func (p *policy[K, V]) setWeight(n *node[K, V], w uint32) {
	if l := p.listOf(n.queue); l != nil {
		l.weight = l.weight - uint64(n.weight) + uint64(w)
		p.weight = p.weight - uint64(n.weight) + uint64(w)
	}
	n.weight = w
}

// access records a hit on n: it bumps the key's frequency and moves the
// node to the head of its list, promoting it from probation to protected
// (which may demote the protected segment's tail back to probation).
func (p *policy[K, V]) access(n *node[K, V]) {
	p.tick()
	p.sketch.increment(n.hash)
	switch n.queue {
	case queueWindow:
		p.window.moveToFront(n)
	case queueProtected:
		p.protected.moveToFront(n)
	case queueProbation:
		p.probation.remove(n)
		n.queue = queueProtected
		p.protected.pushFront(n)
		p.demote()
	}
}

// touchLines loads the cache lines that read will need for nodes, with
// loads that do not depend on one another, so that their misses overlap
// instead of coming one after the other (Go has no prefetch instruction).
func (p *policy[K, V]) touchLines(nodes []*node[K, V]) {
	var sink uint64
	for _, n := range nodes {
		sink += p.sketch.peek(n.hash)
		if n.prev != nil {
			sink += uint64(n.prev.queue)
		}
		if n.next != nil {
			sink += uint64(n.next.queue)
		}
	}
	p.sink = sink
}

// demote moves the protected segment's least recent nodes to probation
// until the segment fits its capacity.
func (p *policy[K, V]) demote() {
	for p.protected.weight > p.maxProtected && p.protected.tail != nil {
		t := p.protected.tail
		p.protected.remove(t)
		t.queue = queueProbation
		p.probation.pushFront(t)
	}
}

// victim returns the next node to evict to bring the total weight within
// the bound, or nil when it already is. It never returns keep (the node the
// current write just stored), so that a write is visible to the next read;
// the caller rejects entries heavier than the whole bound beforehand, so
// keep alone always fits. The caller must remove the node it gets (the
// policy's weight only drops then) and call victim again.
func (p *policy[K, V]) victim(keep *node[K, V]) *node[K, V] {
	for p.window.weight > p.maxWindow && p.window.tail != nil {
		cand := p.window.tail
		victim := p.tailOf(keep, &p.probation, &p.protected)
		if p.weight <= p.max || victim == nil {
			if p.weight > p.max && cand != keep {
				return cand // nothing in main to compare with
			}
			// The cache has room: the candidate enters main freely.
			p.window.remove(cand)
			cand.queue = queueProbation
			p.probation.pushFront(cand)
			p.ghostWindow.push(cand.hash)
			continue
		}
		if cand == keep || p.rejected.has(cand.hash) || p.admit(cand.hash, victim.hash) {
			p.ghostMain.push(victim.hash)
			p.ghostWindow.push(cand.hash)
			return victim
		}
		p.ghostWindow.push(cand.hash)
		p.rejected.add(cand.hash, p.ticks)
		return cand
	}
	if p.weight <= p.max {
		return nil
	}
	return p.tailOf(keep, &p.probation, &p.protected, &p.window)
}

// admit is TinyLFU's admission test: whether the window's candidate should
// replace the main region's victim. The more frequent of the two survives;
// ties favour the incumbent, which protects main from one-hit wonders.
func (p *policy[K, V]) admit(cand, victim uint64) bool {
	cf, vf := p.sketch.frequency(cand), p.sketch.frequency(victim)
	if cf > vf {
		return true
	}
	if cf < admitFloor || vf < admitVictim {
		return false
	}
	// xorshift64
	p.rng ^= p.rng << 13
	p.rng ^= p.rng >> 7
	p.rng ^= p.rng << 17
	return p.rng%admitRandom == 0
}

// tailOf returns the least recent node of the first non-empty list, never
// keep.
func (p *policy[K, V]) tailOf(keep *node[K, V], lists ...*nodeList[K, V]) *node[K, V] {
	for _, l := range lists {
		n := l.tail
		if n == keep {
			n = n.prev
		}
		if n != nil {
			return n
		}
	}
	return nil
}

// pushBack links n as the least recent node of l.
func (l *nodeList[K, V]) pushBack(n *node[K, V]) {
	n.next = nil
	n.prev = l.tail
	if l.tail != nil {
		l.tail.next = n
	} else {
		l.head = n
	}
	l.tail = n
	l.weight += uint64(n.weight)
}

// tick counts a request, and ages the rejected set every entries/2
// requests (at least 16).
func (p *policy[K, V]) tick() {
	p.ticks++
	half := uint64(max(p.entries/2, 16))
	if p.ticks-p.rejected.since >= half {
		p.rejected.rotate(p.ticks)
	}
}

// rejectedSet is a pair of Bloom filters of the hashes of the candidates
// admission rejected: cur since the last rotation, prev in the half-period
// before it. A key is remembered from half to one whole period (entries
// requests) after its rejection. At 128 bits a key and 4 probes a false
// positive is about 1e-6 per lookup when full.
//
// A filter is sized for the rejections the previous one took (plus a
// quarter, at least rejectedMinKeys), not for the most a half-period can
// hold: a cache that rejects little (a high hit ratio, or a cache still
// filling) spends little, and one that rejects on every request spends
// about 2 x 16 bytes per rejection of a half-period, up to 20 bytes per
// entry. Sized for the worst case, the two filters cost 16 bytes per entry
// of every cache (a node is 64). A filter that takes twice the keys it was
// sized for (a burst of rejections) is rotated early, when its false
// positives are still about 1e-5.
type rejectedSet struct {
	cur, prev bloom
	since     uint64 // tick of the last rotation
	n, room   int    // keys added to cur, and the keys it was sized for
}

const rejectedMinKeys = 64

type bloom struct {
	bits  []uint64
	shift uint // 64 - log2(len(bits)*64)
}

// bloomProbes multiply the hash by odd constants; each probe is the top
// bits of one product.
var bloomProbes = [...]uint64{0xd6e8feb86659fd93, 0xa0761d6478bd642f, 0xe7037ed1a0b428db, 0x8ebc6af09c88c6e3}

func (b *bloom) add(h uint64) {
	for _, m := range bloomProbes {
		i := (h * m) >> b.shift
		b.bits[i>>6] |= 1 << (i & 63)
	}
}

func (b *bloom) has(h uint64) bool {
	if b.bits == nil {
		return false
	}
	for _, m := range bloomProbes {
		i := (h * m) >> b.shift
		if b.bits[i>>6]&(1<<(i&63)) == 0 {
			return false
		}
	}
	return true
}

// add remembers h, rejected at tick now.
func (r *rejectedSet) add(h, now uint64) {
	if r.n >= 2*r.room {
		r.rotate(now)
	}
	r.cur.add(h)
	r.n++
}

func (r *rejectedSet) has(h uint64) bool { return r.cur.has(h) || r.prev.has(h) }

// rotate forgets prev, makes cur prev and starts an empty cur sized for
// the keys the old cur took, plus a quarter.
func (r *rejectedSet) rotate(now uint64) {
	r.since = now
	keys := max(r.n+r.n/4, rejectedMinKeys)
	r.n, r.room = 0, keys
	words := 1 << bits.Len(uint(max(keys*rejectedBitsPerKey/64, 1)-1))
	old := r.prev.bits
	r.prev = r.cur
	if len(old) == words {
		clear(old)
	} else {
		old = make([]uint64, words)
	}
	r.cur = bloom{bits: old, shift: uint(64 - bits.Len(uint(words*64)-1))}
}
