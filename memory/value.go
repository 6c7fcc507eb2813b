package memory

import (
	"reflect"
	"runtime"
	"sync/atomic"
	"unsafe"
)

// This file lets a write replace the value of a published node in place
// when the value is one machine word: a pointer (the usual object-cache
// value), a map, a channel, or an 8-byte number on a 64-bit platform.
// Readers then load the value with an atomic load, so they never see a
// torn value, and the writer (holding c.mu) stores it atomically. Any
// other value type is never written after publication: a write publishes
// a new node instead (see publish). In-place writes save the allocation,
// the index store and the policy relink of a replacement; they apply only
// when the weight stays the same (it is read without atomics). The expiry
// is an atomic word too, written after the value (node.expiry).
//
// A Set that replaces a one-word value of an entry without expiry, in a
// cache without weigher or default TTL, takes no lock at all (setFast):
// it claims the node (node.state, free → held), swaps the value in and
// frees the node. Every writer that would lose such a store takes the node
// out of the setters' reach first, under c.mu: one that copies the node
// (publish) or removes it seals it (→ dead, waiting while a setter holds
// it), and one that reads and rewrites the value (Update, a compare-delete)
// holds it meanwhile. A setter that finds the node dead, or held, goes
// the locked way and finds the node's successor, if any. Without the
// claim, a Touch could copy the value, a lock-free Set store a new one into
// the old node and return, and the Touch publish the copy: the Set lost.

// Node states: the low bits of node.state (stateMask). The high bits hold
// the read epoch in which a hit on the node was last recorded (buffer.go).
const (
	nodeFree uint32 = iota // published and writable in place
	nodeHeld               // one writer is reading or replacing its value
	nodeDead               // removed or replaced: never written again

	stateMask  = 3
	epochShift = 16 // node.state >> epochShift is the node's read epoch
)

// tryHold claims n (free → held) for a write of its value, unless n is
// held or dead.
func tryHold[K comparable, V any](n *node[K, V]) bool {
	s := n.state.Load()
	return s&stateMask == nodeFree && n.state.CompareAndSwap(s, s|nodeHeld)
}

// release frees a node held by tryHold or hold.
func release[K comparable, V any](n *node[K, V]) {
	n.state.Add(^uint32(nodeHeld - 1)) // -nodeHeld: keeps the epoch bits
}

// hold claims n for a read-modify-write of its value, waiting while a
// lock-free setter holds it. n must be live (not dead); c.mu must be held,
// so the only other holders are lock-free setters, which hold a node for
// a few instructions.
func hold[K comparable, V any](n *node[K, V]) {
	for !tryHold(n) {
		runtime.Gosched()
	}
}

// kill marks a node held by the caller dead. c.mu must be held.
func kill[K comparable, V any](n *node[K, V]) {
	n.state.Store(nodeDead)
}

// seal marks n dead, so that no lock-free setter writes it again: n is
// about to be removed or replaced by a copy of its current value. c.mu
// must be held.
func seal[K comparable, V any](n *node[K, V]) {
	if n.state.Load()&stateMask == nodeDead {
		return
	}
	hold(n)
	kill(n)
}

// valueKind tells how a value of type V can be stored in place.
type valueKind uint8

const (
	valueOther   valueKind = iota // never written after publication
	valuePointer                  // one pointer word: atomic pointer load/store
	valueWord                     // one 8-byte number: atomic 64-bit load/store
)

func valueKindOf[V any]() valueKind {
	t := reflect.TypeFor[V]()
	switch t.Kind() {
	case reflect.Pointer, reflect.UnsafePointer, reflect.Map, reflect.Chan:
		return valuePointer
	case reflect.Int, reflect.Int64, reflect.Uint, reflect.Uint64, reflect.Uintptr, reflect.Float64:
		// 64-bit atomics need 8-byte alignment, which only 64-bit
		// platforms guarantee for a struct field.
		if t.Size() == 8 && unsafe.Sizeof(uintptr(0)) == 8 {
			return valueWord
		}
	}
	return valueOther
}

// valueOf returns n's value; safe without c.mu.
func (c *core[K, V]) valueOf(n *node[K, V]) V {
	switch c.vkind {
	case valuePointer:
		p := atomic.LoadPointer((*unsafe.Pointer)(unsafe.Pointer(&n.value)))
		return *(*V)(unsafe.Pointer(&p))
	case valueWord:
		x := atomic.LoadUint64((*uint64)(unsafe.Pointer(&n.value)))
		return *(*V)(unsafe.Pointer(&x))
	}
	return n.value
}

// swapValue replaces n's value in place and returns the previous one. c.vkind
// must not be valueOther. Either c.mu is held or n is held (lock-free
// setter).
func (c *core[K, V]) swapValue(n *node[K, V], v V) V {
	switch c.vkind {
	case valuePointer:
		p := atomic.SwapPointer((*unsafe.Pointer)(unsafe.Pointer(&n.value)), *(*unsafe.Pointer)(unsafe.Pointer(&v)))
		return *(*V)(unsafe.Pointer(&p))
	case valueWord:
		x := atomic.SwapUint64((*uint64)(unsafe.Pointer(&n.value)), *(*uint64)(unsafe.Pointer(&v)))
		return *(*V)(unsafe.Pointer(&x))
	}
	panic("memory: swapValue of a value that is not one word")
}

// setFast replaces the value of key's (hash h) live entry without taking c.mu, when
// it can (see the top of this file): a one-word value, no weigher, no
// expiry on the entry nor by default, and no GetOrLoad in progress. It
// reports whether it did; the caller takes the locked way otherwise.
func (c *core[K, V]) setFast(h uint64, key K, value V) bool {
	n := c.index.get(h, key)
	if n == nil || !tryHold(n) {
		return false
	}
	if n.expiry() != 0 {
		// Checked while held: locked writers change a deadline in place
		// only while they hold the node.
		release(n)
		return false
	}
	// Held: n is live and stays so until released. A GetOrLoad load
	// registered after this check reads its source after this Set began,
	// so its result replacing this value later is the right order; one
	// registered before must see this write (invalidateLoad), which only
	// the locked way does.
	if c.loading.Load() != 0 {
		release(n)
		return false
	}
	old := c.swapValue(n, value)
	release(n)
	c.record(n) // a write is a use
	if c.onEvict != nil {
		c.onEvict(key, old, ReasonReplaced)
	}
	return true
}
