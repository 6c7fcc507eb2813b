package memory

import (
	"sync/atomic"
	"unsafe"
)

// This file holds the read buffers (BP-Wrapper): a Get does not take the
// policy's lock to record a hit. It drops the node into a small lossy ring
// (a stripe, chosen by the goroutine's stack, see mine), and whoever fills
// a stripe applies its hits to the policy under c.mu if TryLock succeeds,
// on its own goroutine. When the lock is busy the ring wraps and the oldest records
// are lost: the policy sees a sample of the reads, which is what a
// frequency sketch needs, while writes (insert, replace, delete) are never
// buffered and apply to the policy synchronously. (A lock-free Set, which
// only swaps a value, records its use here like a hit.) Hits on a node
// already applied in the current read epoch are not recorded: see read.
//
// Every write also drains the stripes that hold records, while it holds
// c.mu, before its own policy event: records do not wait long when reads
// are few, and a goroutine's hits reach the policy before its next write
// (the order matters to the hit ratio on recency-biased traces). (A per-node
// "already recorded" flag, to keep hot keys out of the rings, measured no
// faster here: the flag's writes shared the node's cache line between
// cores.) Every hit is recorded: sampling one in four in caches over 16k
// entries made 100%-Get Zipf(1.01) at capacity 100k faster (134 against
// 190 ns/op at one core, go test -bench BenchmarkZipfGet) but cost hit
// ratio where it is judged: ARC P3 at 25k entries 0.132 against 0.149, at
// 500k 0.775 against 0.790 (D35).

// stripeLen is the number of records per stripe; a power of two.
const stripeLen = 16

// A read epoch (see read) lasts entries >> readEpochShift applied hits, at
// least readEpochMin.
const (
	readEpochShift = 3
	readEpochMin   = 64
)

// stripe is one lossy ring. head is alone on its cache line: every record
// increments it.
type stripe[K comparable, V any] struct {
	head  atomic.Uint32
	tail  uint32 // head at the last drain; guarded by c.mu
	_     [56]byte
	slots [stripeLen]atomic.Pointer[node[K, V]]
}

// readBuffer is the set of stripes of a cache.
type readBuffer[K comparable, V any] struct {
	stripes []stripe[K, V]
	mask    uint64 // len(stripes) - 1
}

func newReadBuffer[K comparable, V any](stripes int) readBuffer[K, V] {
	return readBuffer[K, V]{stripes: make([]stripe[K, V], stripes), mask: uint64(stripes - 1)}
}

// mine returns the calling goroutine's stripe, picked from the address of
// its stack: a goroutine's hits land in one ring, in the order it made
// them, so that a single goroutine's uses reach the policy in order (it
// matters to the hit ratio on recency-biased traces: a stripe per key,
// which reorders them, lost 0.03 on LIRS LOOP at 250 entries). Goroutines
// whose stacks share a 8 KiB-aligned region share a stripe; a goroutine
// whose stack moved or grew past it may change stripes.
func (b *readBuffer[K, V]) mine() *stripe[K, V] {
	var here byte
	h := uint64(uintptr(unsafe.Pointer(&here))>>13) * 0x9E3779B97F4A7C15
	return &b.stripes[(h>>32)&b.mask]
}

// record notes a hit on n, draining n's stripe when it is full and the
// policy's lock is free. It takes no lock otherwise and does not allocate.
func (c *core[K, V]) record(n *node[K, V]) {
	if n.state.Load()>>epochShift == c.readEpoch.Load() {
		return // recorded in this epoch already
	}
	st := c.reads.mine()
	i := st.head.Add(1)
	st.slots[i%stripeLen].Store(n) // overwrites (loses) an undrained record
	if i%stripeLen == 0 && c.mu.TryLock() {
		c.drain(st)
		c.mu.Unlock()
	}
}

// drain applies the hits recorded in st to the policy, oldest first (the
// order matters to the LRU lists). Records overwritten before a drain are
// lost. c.mu must be held.
func (c *core[K, V]) drain(st *stripe[K, V]) {
	head := st.head.Load()
	from := st.tail
	if head-from > stripeLen {
		from = head - stripeLen // the older records were overwritten
	}
	st.tail = head
	var batch [stripeLen]*node[K, V]
	k := 0
	for i := from + 1; i != head+1; i++ {
		// A record is published by its slot store after the head increment:
		// a nil slot is a record still being written. When its store lands
		// it waits in the slot until a later drain passes that position
		// (applied out of order) or a newer record overwrites it (lost).
		if n := st.slots[i%stripeLen].Swap(nil); n != nil && !n.removed {
			batch[k] = n
			k++
		}
	}
	c.policy.touchLines(batch[:k])
	for _, n := range batch[:k] {
		c.read(n)
	}
}

// read applies a recorded read hit on n to the policy, unless a hit on n
// was applied in the current read epoch already. An epoch is a run of
// applied hits, a fraction of the cache's entries: a key read more than
// once per epoch is among the hottest, its sketch counters saturate anyway
// and it stays near the head of its list, while skipping its hits spares
// the drain a sketch line and three nodes' lines, and (once record sees
// the node's epoch) the read buffer a record. c.mu must be held.
func (c *core[K, V]) read(n *node[K, V]) {
	e := c.readEpoch.Load()
	if c.epochReads++; c.epochReads >= c.epochLen {
		if e++; e >= 1<<(32-epochShift) {
			e = 1 // 0 is a new node's epoch: never current
		}
		c.readEpoch.Store(e)
		c.epochReads = 0
		c.epochLen = max(int(c.size.Load())>>readEpochShift, readEpochMin)
	}
	for {
		s := n.state.Load()
		if s>>epochShift == e {
			return
		}
		if n.state.CompareAndSwap(s, s&stateMask|e<<epochShift) {
			break
		}
	}
	c.policy.access(n)
}

// drainAll drains every stripe that holds records, so that a write's
// policy event comes after the hits recorded before it. c.mu must be held.
func (c *core[K, V]) drainAll() {
	for i := range c.reads.stripes {
		if st := &c.reads.stripes[i]; st.head.Load() != st.tail {
			c.drain(st)
		}
	}
}
