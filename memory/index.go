package memory

import (
	"math/bits"
	"runtime"
	"sync/atomic"
)

// This file holds the cache's index: the map from key to node. Reads are
// lock-free; writes must be serialized by the caller (the cache holds its
// mutex, c.mu, around every write).
//
// Why no lock per shard: every write must also update the eviction policy
// synchronously (writes are never buffered), under the policy's one lock.
// A shard lock would add a second acquisition to each write without
// letting two writes proceed in parallel, and evictions (chosen under the
// policy lock, in any shard) would need a deferred, re-checked removal
// from their shard to respect a shard-then-policy lock order. With one
// writer lock the index, the policy and the expiry heap always agree.
//
// The index is split into shards by the top bits of the key's hash. Each
// shard is an open-addressing table of groups of 8 slots. A slot is an
// atomic pointer to a node; beside the slots, each group has a control
// word with one byte per slot: the low 7 bits of the key's hash (the tag)
// when the slot holds a node, or ctrlEmpty (never used: ends a probe), or
// ctrlDeleted (a tombstone: probes go on past it, an insert may reuse it).
// A lookup loads its group's control word, compares the 8 tags at once,
// and dereferences only the slots whose tag matches (1 in 128 false
// matches), probing the next group only when the group has no empty
// slot. The control words take 1 byte per slot, so they mostly stay in
// the processor's caches; a hit then costs the slot's pointer and the
// node, which holds the key, the value and the expiry together.
//
// The number of groups is not a power of two: a table is rebuilt when its
// used slots (live nodes and tombstones) pass 7/8 of it, at a size that
// makes it 3/4 full of live ones: the index costs about 9 bytes / 0.8 =
// 11 bytes per entry. (Slots of a 64-bit hash and a pointer, in
// power-of-two tables at most 5/8 full, cost 42 bytes per entry at 100k
// entries; a rebuild to 5/8 full instead of 3/4 costs 1 more byte per
// entry at 1M entries and was no faster.)
//
// A published node is never mutated where readers look (key, weight; the
// expiry and a one-word value only by atomic stores, see value.go):
// replacing anything else publishes a new node in the same slot. An
// insert stores the slot's pointer before the tag, so that a reader that
// sees the tag finds the node; a removal clears the pointer. A shard's
// table grows or drops its tombstones by building a new table and swapping
// the shard's pointer; readers still walking the old one see a consistent,
// if stale, table. A reader that starts after a write returned loads the
// new pointer, so writes are visible at once.

// indexSlot is one slot of a shard's table.
type indexSlot[K comparable, V any] struct {
	node atomic.Pointer[node[K, V]] // nil: empty or tombstone
}

// Control bytes. A tag is 0x00–0x7f; the two markers have the top bit set.
const (
	ctrlEmpty   = 0x80
	ctrlDeleted = 0xfe
	groupSlots  = 8

	lsbs = 0x0101010101010101
	msbs = 0x8080808080808080
)

// table is the open-addressing array of a shard.
type table[K comparable, V any] struct {
	ctrl   []atomic.Uint64 // one control word per group
	slots  []indexSlot[K, V]
	groups uint64
}

// shard is one independently sized table. The pointer sits alone on its
// cache line: readers load it on every Get, while the counters next to it
// change on writes.
type shard[K comparable, V any] struct {
	table atomic.Pointer[table[K, V]]
	_     [56]byte
	live  int // slots holding a node; guarded by the writer's lock
	used  int // slots not empty (live + tombstones); ditto
	_     [48]byte
}

// index maps keys to nodes.
type index[K comparable, V any] struct {
	shards []shard[K, V]
	shift  uint // 64 - log2(len(shards)): hash >> shift is the shard
}

const (
	minGroups = 1
	// A table is rebuilt when more than maxUsed8ths/8 of its slots are used
	// (live or tombstones), at a size where its live slots fill
	// rebuildLoad8ths/8 of it.
	maxUsed8ths     = 7
	rebuildLoad8ths = 6
)

// newIndex returns an index with about 4 shards per processor (a power of
// two), each starting small.
func newIndex[K comparable, V any]() index[K, V] {
	n := 1 << bits.Len(uint(4*runtime.GOMAXPROCS(0)-1))
	x := index[K, V]{shards: make([]shard[K, V], n), shift: uint(64 - bits.TrailingZeros(uint(n)))}
	for i := range x.shards {
		x.shards[i].table.Store(newTable[K, V](minGroups))
	}
	return x
}

func newTable[K comparable, V any](groups int) *table[K, V] {
	t := &table[K, V]{
		ctrl:   make([]atomic.Uint64, groups),
		slots:  make([]indexSlot[K, V], groups*groupSlots),
		groups: uint64(groups),
	}
	for i := range t.ctrl {
		t.ctrl[i].Store(ctrlEmpty * lsbs)
	}
	return t
}

// start returns the first group to probe for hash h: bits 7 to 38 of h
// (the tag is bits 0–6, the shard the top bits) scaled to the group count.
func (t *table[K, V]) start(h uint64) uint64 {
	return (uint64(uint32(h>>7)) * t.groups) >> 32
}

// next returns the group after g, wrapping around.
func (t *table[K, V]) next(g uint64) uint64 {
	if g++; g == t.groups {
		return 0
	}
	return g
}

// matchTag returns a word with the top bit set in the bytes of w equal to
// tag (and, rarely, in a byte above a match: callers check the key).
func matchTag(w, tag uint64) uint64 {
	x := w ^ tag*lsbs
	return (x - lsbs) &^ x & msbs
}

// matchEmpty returns a word with the top bit set in the bytes of w that are
// ctrlEmpty (exactly).
func matchEmpty(w uint64) uint64 {
	return w &^ (w << 1) & msbs
}

// matchFree returns a word with the top bit set in the bytes of w that are
// empty or tombstones.
func matchFree(w uint64) uint64 {
	return w & msbs
}

func (x *index[K, V]) shard(h uint64) *shard[K, V] {
	return &x.shards[h>>x.shift]
}

// get returns the node stored under key (whose hash is h), or nil. It
// takes no lock and may run concurrently with writers.
func (x *index[K, V]) get(h uint64, key K) *node[K, V] {
	_, n := x.find(h, key)
	return n
}

// find returns the slot holding key (whose hash is h) and its node, or
// nil, nil. It takes no lock; a writer that uses the slot must hold the
// writer's lock, so that the slot still holds the node.
func (x *index[K, V]) find(h uint64, key K) (*indexSlot[K, V], *node[K, V]) {
	t := x.shards[h>>x.shift].table.Load()
	tag := h & 0x7f
	for g := t.start(h); ; g = t.next(g) {
		w := t.ctrl[g].Load()
		for m := matchTag(w, tag); m != 0; m &= m - 1 {
			s := &t.slots[g*groupSlots+uint64(bits.TrailingZeros64(m)>>3)]
			if n := s.node.Load(); n != nil && n.key == key {
				return s, n
			}
		}
		if matchEmpty(w) != 0 {
			return nil, nil
		}
	}
}

// insert stores n, whose key is absent (the caller checked with find),
// under hash h. Writers only.
func (x *index[K, V]) insert(h uint64, n *node[K, V]) {
	sh := x.shard(h)
	t := sh.table.Load()
	if 8*(sh.used+1) > maxUsed8ths*len(t.slots) {
		t = sh.rehash(t)
	}
	g, j := t.free(h)
	w := t.ctrl[g].Load()
	shift := 8 * j
	if (w>>shift)&0xff == ctrlEmpty {
		sh.used++
	}
	// The pointer before the tag: a reader that sees the tag finds n.
	t.slots[g*groupSlots+j].node.Store(n)
	t.ctrl[g].Store(w&^(0xff<<shift) | (h&0x7f)<<shift)
	sh.live++
}

// free returns the group and slot of the first empty or tombstone slot on
// h's probe sequence. The table must have one (its load is bounded).
func (t *table[K, V]) free(h uint64) (uint64, uint64) {
	for g := t.start(h); ; g = t.next(g) {
		if m := matchFree(t.ctrl[g].Load()); m != 0 {
			return g, uint64(bits.TrailingZeros64(m) >> 3)
		}
	}
}

// remove deletes n from the index if it is there. Writers only.
func (x *index[K, V]) remove(n *node[K, V]) {
	h := n.hash
	sh := x.shard(h)
	t := sh.table.Load()
	tag := h & 0x7f
	for g := t.start(h); ; g = t.next(g) {
		w := t.ctrl[g].Load()
		for m := matchTag(w, tag); m != 0; m &= m - 1 {
			j := uint64(bits.TrailingZeros64(m) >> 3)
			s := &t.slots[g*groupSlots+j]
			if s.node.Load() != n {
				continue
			}
			s.node.Store(nil)
			// A group with an empty slot never sent a probe on to the
			// next group, so the slot can become empty again; otherwise
			// probes that passed this group must still pass it.
			mark := uint64(ctrlDeleted)
			if matchEmpty(w) != 0 {
				mark = ctrlEmpty
				sh.used--
			}
			t.ctrl[g].Store(w&^(0xff<<(8*j)) | mark<<(8*j))
			sh.live--
			return
		}
		if matchEmpty(w) != 0 {
			return
		}
	}
}

// rehash replaces the shard's table t by one sized for its live nodes,
// dropping the tombstones, and returns it. Writers only.
func (sh *shard[K, V]) rehash(t *table[K, V]) *table[K, V] {
	want := 8 * (sh.live + 1) / rebuildLoad8ths // slots
	nt := newTable[K, V](max(minGroups, (want+groupSlots-1)/groupSlots))
	for i := range t.slots {
		n := t.slots[i].node.Load()
		if n == nil {
			continue
		}
		g, j := nt.free(n.hash)
		nt.slots[g*groupSlots+j].node.Store(n)
		w := nt.ctrl[g].Load()
		nt.ctrl[g].Store(w&^(0xff<<(8*j)) | (n.hash&0x7f)<<(8*j))
	}
	sh.used = sh.live
	sh.table.Store(nt)
	return nt
}

// reset empties every shard. Writers only.
func (x *index[K, V]) reset() {
	for i := range x.shards {
		sh := &x.shards[i]
		sh.table.Store(newTable[K, V](minGroups))
		sh.live, sh.used = 0, 0
	}
}

// all calls yield for every node until it returns false. It takes no lock;
// a node written meanwhile may or may not be seen.
func (x *index[K, V]) all(yield func(*node[K, V]) bool) {
	for i := range x.shards {
		t := x.shards[i].table.Load()
		for j := range t.slots {
			if n := t.slots[j].node.Load(); n != nil && !yield(n) {
				return
			}
		}
	}
}
