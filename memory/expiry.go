package memory

import (
	"container/heap"
	"time"
)

// expiryHeap is a min-heap of the nodes that have an expiry, soonest first.
// Each node stores its index, so removal and re-keying are O(log n). The
// cache's mutex guards it.
type expiryHeap[K comparable, V any] []*node[K, V]

func (h expiryHeap[K, V]) Len() int           { return len(h) }
func (h expiryHeap[K, V]) Less(i, j int) bool { return h[i].expires < h[j].expires }

func (h expiryHeap[K, V]) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIndex = int32(i)
	h[j].heapIndex = int32(j)
}

func (h *expiryHeap[K, V]) Push(x any) {
	n := x.(*node[K, V])
	n.heapIndex = int32(len(*h))
	*h = append(*h, n)
}

func (h *expiryHeap[K, V]) Pop() any {
	old := *h
	n := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	n.heapIndex = -1
	return n
}

// remove takes n out of the heap.
func (h *expiryHeap[K, V]) remove(n *node[K, V]) {
	heap.Remove(h, int(n.heapIndex))
}

// trackExpiry keeps the heap in step with n's deadline (zero: none), which
// was set before n was published and never changes. It starts the expiry
// goroutine when n is the first entry to expire. c.mu must be held.
func (c *core[K, V]) trackExpiry(n *node[K, V]) {
	switch {
	case n.expires == 0:
		if n.heapIndex >= 0 {
			c.expiry.remove(n)
		}
	case n.heapIndex >= 0:
		heap.Fix(&c.expiry, int(n.heapIndex))
	default:
		heap.Push(&c.expiry, n)
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
	now := c.clock.Now()
	for len(c.expiry) > 0 && c.stampOf(now) >= c.expiry[0].expires {
		c.removeExpired(c.expiry[0], &ev)
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
