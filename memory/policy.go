package memory

import (
	"math/bits"
	"time"
)

// This file holds the W-TinyLFU eviction policy: a window LRU (about 1% of
// the capacity) in front of a segmented LRU main region (probation 20%,
// protected 80%), and a 4-bit count-min sketch that estimates how often each
// key was used recently. When the window overflows, its least recent entry
// (the candidate) enters the main region only if the sketch says it is used
// more often than the main region's least recent entry (the victim); the
// loser is evicted. The data structures are not safe for concurrent use: the
// cache's mutex guards them.

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
	expires time.Time // zero: never expires
	hash    uint64    // maphash of key, for the sketch

	prev, next *node[K, V] // neighbours in the node's queue list
	heapIndex  int         // position in the expiry heap, -1 when absent
	weight     uint32
	queue      queue

	// Cache state, outside the policy (cache.go, buffer.go).
	removed bool // left the cache or was replaced; guarded by the cache's mu
}

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

// policy is the W-TinyLFU state of a cache.
type policy[K comparable, V any] struct {
	window, probation, protected nodeList[K, V]

	weight       uint64 // total weight of the three lists
	max          uint64 // capacity: MaxEntries or MaxWeight
	maxWindow    uint64 // capacity of the window (about 1%)
	maxProtected uint64 // capacity of the protected segment (80% of main)

	sketch sketch
}

func newPolicy[K comparable, V any](capacity uint64) policy[K, V] {
	maxWindow := max(capacity/100, 1)
	maxMain := capacity - min(maxWindow, capacity)
	return policy[K, V]{
		max:          capacity,
		maxWindow:    maxWindow,
		maxProtected: maxMain - maxMain/5,
		sketch:       newSketch(capacity),
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

// reset forgets every node; the sketch keeps its frequencies.
func (p *policy[K, V]) reset() {
	p.window, p.probation, p.protected = nodeList[K, V]{}, nodeList[K, V]{}, nodeList[K, V]{}
	p.weight = 0
}

// add links a new node at the head of the window and records the access.
func (p *policy[K, V]) add(n *node[K, V], entries int) {
	p.sketch.ensureCapacity(entries)
	p.sketch.increment(n.hash)
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
		for p.protected.weight > p.maxProtected && p.protected.tail != nil {
			t := p.protected.tail
			p.protected.remove(t)
			t.queue = queueProbation
			p.probation.pushFront(t)
		}
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
			continue
		}
		// TinyLFU admission: the more frequent of the two survives; ties
		// favour the incumbent, which protects main from one-hit wonders.
		if cand == keep || p.sketch.frequency(cand.hash) > p.sketch.frequency(victim.hash) {
			return victim
		}
		return cand
	}
	if p.weight <= p.max {
		return nil
	}
	return p.tailOf(keep, &p.probation, &p.protected, &p.window)
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

// sketch is a count-min sketch of 4-bit counters with depth 4, in the style
// of Caffeine's FrequencySketch: each 64-bit word holds 16 counters, a key
// maps to one counter in each of 4 words, and its frequency is the minimum
// of the 4. After sampleSize increments every counter is halved, so that the
// sketch forgets old popularity (the "periodic reset" of TinyLFU).
type sketch struct {
	table      []uint64
	mask       uint64
	additions  int
	sampleSize int
	maxWords   int // the table never grows past this
}

// sketchSeeds are the multipliers of the four hash functions.
var sketchSeeds = [4]uint64{0xc3a5c85c97cb3127, 0xb492b66fbe98f273, 0x9ae16a3b2f90404f, 0xcbf29ce484222325}

const (
	sketchMinWords = 16
	sketchMaxWords = 1 << 26 // 512 MiB: far beyond any count we expect
	sketchOneMask  = 0x1111111111111111
	sketchHalfMask = 0x7777777777777777
)

// newSketch returns a sketch that grows with the number of entries, up to
// one word (16 counters) per entry of capacity. The table starts small so
// that a large but mostly empty cache costs little.
func newSketch(capacity uint64) sketch {
	limit := uint64(sketchMaxWords)
	if capacity < limit {
		limit = max(capacity, sketchMinWords)
	}
	s := sketch{maxWords: 1 << bits.Len64(limit-1)}
	s.resize(min(sketchMinWords, s.maxWords))
	return s
}

// ensureCapacity grows the table when the cache holds more entries than it
// has words. Growing forgets the counts gathered so far (a count-min sketch
// cannot be rehashed); it happens O(log n) times while a cache fills.
func (s *sketch) ensureCapacity(entries int) {
	if entries <= len(s.table) || len(s.table) >= s.maxWords {
		return
	}
	s.resize(min(1<<bits.Len(uint(entries-1)), s.maxWords))
}

func (s *sketch) resize(words int) {
	s.table = make([]uint64, words)
	s.mask = uint64(words - 1)
	s.additions = 0
	s.sampleSize = 10 * words
}

func (s *sketch) index(h uint64, i int) uint64 {
	x := (h + sketchSeeds[i]) * sketchSeeds[i]
	x += x >> 32
	return x & s.mask
}

// increment adds one to the key's counters that are not saturated.
func (s *sketch) increment(h uint64) {
	start := (h & 3) << 2
	added := false
	for i := range 4 {
		idx := s.index(h, i)
		off := (start + uint64(i)) << 2
		if (s.table[idx]>>off)&0xf != 0xf {
			s.table[idx] += 1 << off
			added = true
		}
	}
	if added {
		s.additions++
		if s.additions >= s.sampleSize {
			s.halve()
		}
	}
}

// frequency returns the estimated count of the key (0 to 15).
func (s *sketch) frequency(h uint64) uint64 {
	start := (h & 3) << 2
	f := uint64(0xf)
	for i := range 4 {
		off := (start + uint64(i)) << 2
		f = min(f, (s.table[s.index(h, i)]>>off)&0xf)
	}
	return f
}

// halve divides every counter by two.
func (s *sketch) halve() {
	odd := 0
	for i, w := range s.table {
		odd += bits.OnesCount64(w & sketchOneMask)
		s.table[i] = (w >> 1) & sketchHalfMask
	}
	s.additions = (s.additions - odd/4) / 2
}
