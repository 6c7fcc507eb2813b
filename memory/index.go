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
// shard is an open-addressing table with linear probing whose slots keep
// the key's 64-bit hash inline next to an atomic pointer to the node, so a
// probe reads one cache line (four slots) and a hit dereferences only the
// node, which holds the key, the value and the expiry together.
//
// Slot states: hash 0 means never used (ends a probe); a non-zero hash with
// a nil node is a tombstone (a deleted entry; probes continue past it, and
// an insert may reuse it). A hash is never 0: hashOf maps 0 to 1.
//
// A published node is never mutated where readers look (key, expires,
// weight; the value only by an atomic one-word store, see value.go):
// replacing anything else publishes a new node in the same slot. A shard's
// table grows or drops its tombstones by building a new table and swapping
// the shard's pointer; readers still walking the old
// one see a consistent, if stale, table. A reader that starts after a
// write returned loads the new pointer, so writes are visible at once.

// indexSlot is one entry of a shard's table.
type indexSlot[K comparable, V any] struct {
	hash atomic.Uint64              // key hash; 0: never used
	node atomic.Pointer[node[K, V]] // nil: empty or tombstone
}

// table is the open-addressing array of a shard.
type table[K comparable, V any] struct {
	slots []indexSlot[K, V]
	mask  uint64 // len(slots) - 1; the length is a power of two
}

// shard is one independently sized table. The pointer sits alone on its
// cache line: readers load it on every Get, while the counters next to it
// change on writes.
type shard[K comparable, V any] struct {
	table atomic.Pointer[table[K, V]]
	_     [56]byte
	live  int // slots holding a node; guarded by the writer's lock
	used  int // slots with a non-zero hash (live + tombstones); ditto
	_     [48]byte
}

// index maps keys to nodes.
type index[K comparable, V any] struct {
	shards []shard[K, V]
	shift  uint // 64 - log2(len(shards)): hash >> shift is the shard
}

const (
	minTableSize = 8

	// maxLoad8ths: a table is rebuilt when its live slots plus tombstones
	// pass 5/8 of it, at a size that makes it at most half full of live
	// ones. A miss probes until an empty slot, about 4 slots (one or two
	// cache lines) at 5/8; at 3/4 it would be 8.5.
	maxLoad8ths = 5
)

// newIndex returns an index with about 4 shards per processor (a power of
// two), each starting small.
func newIndex[K comparable, V any]() index[K, V] {
	n := 1 << bits.Len(uint(4*runtime.GOMAXPROCS(0)-1))
	x := index[K, V]{shards: make([]shard[K, V], n), shift: uint(64 - bits.TrailingZeros(uint(n)))}
	for i := range x.shards {
		x.shards[i].table.Store(newTable[K, V](minTableSize))
	}
	return x
}

func newTable[K comparable, V any](size int) *table[K, V] {
	return &table[K, V]{slots: make([]indexSlot[K, V], size), mask: uint64(size - 1)}
}

func (x *index[K, V]) shard(h uint64) *shard[K, V] {
	return &x.shards[h>>x.shift]
}

// get returns the node stored under key (whose hash is h), or nil. It
// takes no lock and may run concurrently with writers. It is find's loop
// written out again: Get delegating to find measured 10–15 ns/op slower
// (BenchmarkZipfGet at one core, 147–155 against 162–167).
func (x *index[K, V]) get(h uint64, key K) *node[K, V] {
	t := x.shards[h>>x.shift].table.Load()
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		switch s.hash.Load() {
		case h:
			if n := s.node.Load(); n != nil && n.key == key {
				return n
			}
		case 0:
			return nil
		}
	}
}

// find returns the slot holding key (whose hash is h) and its node, or
// nil, nil. It takes no lock; a writer that uses the slot must hold the
// writer's lock, so that the slot still holds the node.
func (x *index[K, V]) find(h uint64, key K) (*indexSlot[K, V], *node[K, V]) {
	t := x.shard(h).table.Load()
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		switch s.hash.Load() {
		case h:
			if n := s.node.Load(); n != nil && n.key == key {
				return s, n
			}
		case 0:
			return nil, nil
		}
	}
}

// insert stores n, whose key is absent (the caller checked with find),
// under hash h. Writers only.
func (x *index[K, V]) insert(h uint64, n *node[K, V]) {
	sh := x.shard(h)
	t := sh.table.Load()
	if 8*(sh.used+1) > maxLoad8ths*len(t.slots) {
		t = sh.rehash(t)
	}
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		if s.node.Load() != nil {
			continue
		}
		// Empty or tombstone. Hash before node: a reader that sees the
		// new hash with a nil node just probes on.
		if s.hash.Load() == 0 {
			sh.used++
		}
		s.hash.Store(h)
		s.node.Store(n)
		sh.live++
		return
	}
}

// remove deletes n from the index if it is there, leaving a tombstone.
// Writers only.
func (x *index[K, V]) remove(n *node[K, V]) {
	h := n.hash
	sh := x.shard(h)
	t := sh.table.Load()
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		switch s.hash.Load() {
		case h:
			if s.node.Load() == n {
				s.node.Store(nil)
				sh.live--
				return
			}
		case 0:
			return
		}
	}
}

// rehash replaces the shard's table t by one sized for its live nodes (at
// most half full), dropping the tombstones, and returns it. Writers only.
func (sh *shard[K, V]) rehash(t *table[K, V]) *table[K, V] {
	size := max(minTableSize, 1<<bits.Len(uint(2*(sh.live+1)-1)))
	nt := newTable[K, V](size)
	for i := range t.slots {
		n := t.slots[i].node.Load()
		if n == nil {
			continue
		}
		h := t.slots[i].hash.Load()
		j := h & nt.mask
		for nt.slots[j].hash.Load() != 0 {
			j = (j + 1) & nt.mask
		}
		nt.slots[j].hash.Store(h)
		nt.slots[j].node.Store(n)
	}
	sh.used = sh.live
	sh.table.Store(nt)
	return nt
}

// reset empties every shard. Writers only.
func (x *index[K, V]) reset() {
	for i := range x.shards {
		sh := &x.shards[i]
		sh.table.Store(newTable[K, V](minTableSize))
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
