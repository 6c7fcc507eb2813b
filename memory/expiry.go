package memory

import (
	"container/heap"
	"time"
)

// expiryHeap is a min-heap of the nodes that have an expiry, soonest first.
// Each node stores its index, so removal and re-keying are O(log n). The
// cache's mutex guards it.
//
// The heap is lazy: an item's key (at) may be earlier than its node's
// deadline, never later. A write that moves a deadline later (a Set with
// a TTL, Touch: the usual case) leaves the item where it is, which costs
// nothing; when the item comes due, expireDue finds the node still live
// and re-keys it then. A deadline moved earlier re-keys the item at once.
// Re-keying on every write cost a sift through about log2(n) items, each
// a cache miss, under the writer's lock.
type expiryHeap[K comparable, V any] []expiryItem[K, V]

// expiryItem is one heap entry: a node and a time (a stamp) at or before
// its deadline.
type expiryItem[K comparable, V any] struct {
	at int64
	n  *node[K, V]
}

func (h expiryHeap[K, V]) Len() int           { return len(h) }
func (h expiryHeap[K, V]) Less(i, j int) bool { return h[i].at < h[j].at }

func (h expiryHeap[K, V]) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].n.heapIndex = int32(i)
	h[j].n.heapIndex = int32(j)
}

func (h *expiryHeap[K, V]) Push(x any) {
	it := x.(expiryItem[K, V])
	it.n.heapIndex = int32(len(*h))
	*h = append(*h, it)
}

func (h *expiryHeap[K, V]) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = expiryItem[K, V]{}
	*h = old[:len(old)-1]
	it.n.heapIndex = -1
	return it
}

// remove takes n out of the heap.
func (h *expiryHeap[K, V]) remove(n *node[K, V]) {
	heap.Remove(h, int(n.heapIndex))
}

// trackExpiry keeps the heap in step with n's deadline (zero: none), after
// the deadline was set or changed. It starts the expiry goroutine when n is
// the first entry to expire. c.mu must be held.
func (c *core[K, V]) trackExpiry(n *node[K, V]) {
	e := n.expiry()
	switch {
	case e == 0:
		if n.heapIndex >= 0 {
			c.expiry.remove(n)
		}
	case n.heapIndex >= 0:
		if it := &c.expiry[n.heapIndex]; e < it.at {
			it.at = e
			heap.Fix(&c.expiry, int(n.heapIndex))
		} // later: lazy, see expiryHeap
	default:
		heap.Push(&c.expiry, expiryItem[K, V]{at: e, n: n})
		c.startExpiry()
	}
}

// startExpiry starts the expiry goroutine unless it runs already or the
// cache is closed. c.mu must be held.
//
// The goroutine exists only while some entry has an expiry: it stops itself
// at the first tick that finds the heap empty, and the next entry with an
// expiry starts a new one. It references the core, never the public Cache,
// so an unreachable Cache can still be collected and its cleanup can stop
// the goroutine.
func (c *core[K, V]) startExpiry() {
	if c.closed || c.expiring {
		return
	}
	c.expiring = true
	c.stop = make(chan struct{})
	c.wg.Add(1)
	go c.expireLoop(c.stop)
}

// expireLoop removes expired entries every CleanupInterval until stop is
// closed or no entry with an expiry remains.
func (c *core[K, V]) expireLoop(stop <-chan struct{}) {
	defer c.wg.Done()
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if !c.expireDue(stop) {
				return
			}
		}
	}
}

// expireDue removes every entry whose deadline has passed and reports
// whether the goroutine should keep running.
func (c *core[K, V]) expireDue(stop <-chan struct{}) bool {
	var ev []evicted[K, V]
	c.mu.Lock()
	now := c.now()
	for len(c.expiry) > 0 && now >= c.expiry[0].at {
		n := c.expiry[0].n
		if e := n.expiry(); now >= e {
			c.removeExpired(n, &ev)
		} else {
			c.expiry[0].at = e // its deadline moved later: see expiryHeap
			heap.Fix(&c.expiry, 0)
		}
	}
	more := len(c.expiry) > 0
	if !more && c.stop == stop {
		// Stop here; the next entry with an expiry starts a new goroutine.
		c.expiring = false
	}
	c.mu.Unlock()
	c.notify(ev)
	return more
}
