package main

import "container/heap"

// nextUses returns, for every position i of trace, the position of the next
// request of the same key, or len(trace) when there is none.
func nextUses(trace []int) []int {
	next := make([]int, len(trace))
	last := make(map[int]int)
	for i := len(trace) - 1; i >= 0; i-- {
		if j, ok := last[trace[i]]; ok {
			next[i] = j
		} else {
			next[i] = len(trace)
		}
		last[trace[i]] = i
	}
	return next
}

// optimalHits replays trace through Bélády's optimal policy with room for
// capacity keys and returns the number of hits: on a miss with the cache
// full, the key requested farthest in the future is dropped, the new key
// included (then it is not admitted), so no policy that may decline to
// admit does better.
func optimalHits(trace []int, capacity int) int {
	if capacity <= 0 {
		return 0
	}
	next := nextUses(trace)
	resident := make(map[int]int, capacity) // key → position of its next request
	h := &farthest{}
	hits := 0
	for i, k := range trace {
		n := next[i]
		if _, ok := resident[k]; ok {
			hits++
			resident[k] = n
			heap.Push(h, use{n, k}) // the key's older heap entry is now stale
			continue
		}
		if len(resident) >= capacity {
			// Drop stale entries: a key evicted or re-requested since.
			for {
				top := (*h)[0]
				if cur, ok := resident[top.key]; ok && cur == top.next {
					break
				}
				heap.Pop(h)
			}
			if (*h)[0].next <= n {
				continue // the new key comes back last (or never): do not admit it
			}
			delete(resident, heap.Pop(h).(use).key)
		}
		resident[k] = n
		heap.Push(h, use{n, k})
	}
	return hits
}

// use is a key and the position of its next request.
type use struct{ next, key int }

// farthest is a max-heap of uses by next (container/heap).
type farthest []use

func (h farthest) Len() int           { return len(h) }
func (h farthest) Less(i, j int) bool { return h[i].next > h[j].next }
func (h farthest) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *farthest) Push(x any)        { *h = append(*h, x.(use)) }
func (h *farthest) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
