package memory

import (
	"math/rand/v2"
	"sync/atomic"
)

// This file holds the read buffers (BP-Wrapper): a Get does not take the
// policy's lock to record a hit. It drops the node into a small lossy ring
// (a stripe, chosen by the key's hash), and whoever fills a stripe applies
// its hits to the policy under c.mu if TryLock succeeds, on its own
// goroutine. When the lock is busy the ring wraps and the oldest records
// are lost: the policy sees a sample of the reads, which is what a
// frequency sketch needs, while writes (insert, replace, delete) are never
// buffered and apply to the policy synchronously.
//
// Every write also drains one stripe, round robin, while it holds c.mu,
// so that records do not wait long when reads are few. (A per-node
// "already recorded" flag, to keep hot keys out of the rings, measured no
// faster here: with sampling, hot keys' records are cheap to apply, and
// the flag's writes shared the node's cache line between cores.)

// stripeLen is the number of records per stripe; a power of two.
const stripeLen = 16

// Sampling: a cache holding more than sampleAbove entries records one hit
// in sampleRate (chosen at random), a smaller one every hit. Applying a hit
// to the policy costs a few cache misses (sketch counters, list
// neighbours) once the policy outgrows the CPU caches, several times the
// cost of the lookup itself; sampling keeps the frequency ranking (every
// key is sampled alike) at the price of noise for rarely used keys: on
// Zipf(1.01) over 1M keys, capacity 100k, the hit ratio drops from 0.793
// to 0.786 with a rate of 4 (0.782 with 8). Small caches, where misses are
// cheap and each count matters more, keep every hit.
const (
	sampleAbove = 1 << 14
	sampleRate  = 4 // a power of two
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
	next    int    // the stripe the next write drains; guarded by c.mu
}

func newReadBuffer[K comparable, V any](stripes int) readBuffer[K, V] {
	return readBuffer[K, V]{stripes: make([]stripe[K, V], stripes), mask: uint64(stripes - 1)}
}

// record notes a hit on n, draining n's stripe when it is full and the
// policy's lock is free. It takes no lock otherwise and does not allocate.
func (c *core[K, V]) record(n *node[K, V]) {
	if !c.sample() {
		return
	}
	st := &c.reads.stripes[(n.hash>>16)&c.reads.mask]
	i := st.head.Add(1)
	st.slots[i%stripeLen].Store(n) // overwrites (loses) an undrained record
	if i%stripeLen == 0 && c.mu.TryLock() {
		c.drain(st)
		c.mu.Unlock()
	}
}

// sample reports whether to apply this use of an entry to the policy: one
// in sampleRate in a large cache, always in a small one.
func (c *core[K, V]) sample() bool {
	m := c.sampleMask.Load()
	return m == 0 || rand.Uint32()&m == 0
}

// drainNext drains the next stripe in turn if it holds records; every
// write calls it. c.mu must be held.
func (c *core[K, V]) drainNext() {
	st := &c.reads.stripes[c.reads.next]
	c.reads.next = (c.reads.next + 1) & int(c.reads.mask)
	if st.head.Load() != st.tail {
		c.drain(st)
	}
}

// drain applies the hits recorded in st to the policy. c.mu must be held.
func (c *core[K, V]) drain(st *stripe[K, V]) {
	st.tail = st.head.Load()
	for i := range st.slots {
		if st.slots[i].Load() == nil {
			continue
		}
		n := st.slots[i].Swap(nil)
		if n == nil {
			continue
		}
		if !n.removed {
			c.policy.access(n)
		}
	}
}
