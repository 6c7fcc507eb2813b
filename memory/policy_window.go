package memory

// This file sizes the window of the W-TinyLFU policy (see policy.go).
//
// A hill climber that samples the hit rate over periods of 10x the
// capacity, as Caffeine's does, moves the split at most a few times on the
// traces we measure (ARC P3, 3.9M requests, is 13 such periods long at
// 300k entries), and its samples are dominated by the workload's own
// phases: on P3 the window of a 200k- or 300k-entry cache went from 1% to
// 0% once and stayed there, where LRU beats W-TinyLFU by 0.05. Shorter
// periods (1x or 0.5x the capacity) make it a random walk on P3.
//
// Instead, as ARC does between its recency and frequency lists, the policy
// keeps two ghost lists of key hashes: the candidates that left the window
// (admitted or not), and the main victims. A ghost's age counts every such
// departure from its region, so that it tells how much larger the region
// would have had to be to keep the key. A miss on a key the window's ghost
// remembers would have been a hit with a slightly larger window: the window
// grows by a small step; a miss on a key main's ghost remembers would have
// been a hit with a slightly larger main: the window shrinks. The ghosts
// remember only the last 1% of departures, so that a vote weighs what the
// next few steps would gain. The entries a growing window takes from main
// are recorded in main's ghost: when they come back they vote for main,
// which keeps a window from feeding on its own growth (each entry it takes
// from main is evicted as a candidate, comes back and would vote to grow
// again: on LIRS LOOP at 1000 entries the window then runs to 80% and the
// hit ratio drops from 0.98 to 0.20).

// adaptOnMiss moves the split when a ghost list remembers the missed key h.
// entries is the number of entries in the cache, which sizes the ghosts.
func (p *policy[K, V]) adaptOnMiss(h uint64, entries int) {
	want := max(entries/ghostDivisor, ghostMinLen)
	if want > len(p.ghostWindow.ring) {
		// Doubling keeps the cost of growing O(1) per entry added.
		p.ghostWindow.resize(max(want, 2*len(p.ghostWindow.ring)))
		p.ghostMain.resize(max(want, 2*len(p.ghostMain.ring)))
	}
	p.ghostWindow.limit, p.ghostMain.limit = want, want
	inMain := p.ghostMain.take(h)
	inWindow := p.ghostWindow.take(h)
	step := max(p.max>>ghostStepShift, 1)
	switch {
	case inMain:
		p.shrinkWindow(step)
	case inWindow:
		p.growWindow(step)
	}
}

// growWindow moves up to by weight units of capacity from the protected
// segment to the window, and the main region's least recent entries with
// it.
func (p *policy[K, V]) growWindow(by uint64) {
	by = min(by, p.maxProtected)
	if by == 0 {
		return
	}
	p.maxWindow += by
	p.maxProtected -= by
	p.demote()
	for moved := uint64(0); moved < by; {
		n := p.probation.tail
		if n == nil {
			if n = p.protected.tail; n == nil {
				break
			}
		}
		p.listOf(n.queue).remove(n)
		n.queue = queueWindow
		p.window.pushBack(n)
		p.ghostMain.push(n.hash)
		moved += uint64(n.weight)
	}
}

// shrinkWindow moves up to by weight units of capacity from the window to
// the protected segment, and the window's least recent entries to
// probation.
func (p *policy[K, V]) shrinkWindow(by uint64) {
	by = min(by, p.maxWindow-1)
	if by == 0 {
		return
	}
	p.maxWindow -= by
	p.maxProtected += by
	for p.window.weight > p.maxWindow && p.window.tail != nil {
		n := p.window.tail
		p.window.remove(n)
		n.queue = queueProbation
		p.probation.pushFront(n)
	}
}

// ghost is a FIFO set of the last limit key hashes pushed (limit <=
// len(ring)).
type ghost struct {
	ring  []uint64          // hashes by push order, the oldest overwritten
	pos   int               // next slot of ring to write
	seq   uint64            // pushes so far
	set   map[uint64]uint64 // hash -> the seq of its last push
	limit int
}

// resize empties g and makes room for n hashes.
func (g *ghost) resize(n int) {
	*g = ghost{ring: make([]uint64, n), set: make(map[uint64]uint64, n), limit: g.limit}
}

// push records h, forgetting the oldest hash when full.
func (g *ghost) push(h uint64) {
	if len(g.ring) == 0 {
		return
	}
	g.seq++
	if g.seq > uint64(len(g.ring)) {
		// The slot's hash was pushed len(ring) pushes ago; forget it
		// unless it was pushed again since.
		old := g.ring[g.pos]
		if s, ok := g.set[old]; ok && s == g.seq-uint64(len(g.ring)) {
			delete(g.set, old)
		}
	}
	g.ring[g.pos] = h
	g.set[h] = g.seq
	if g.pos++; g.pos == len(g.ring) {
		g.pos = 0
	}
}

// take reports whether h is among the last limit hashes pushed, and
// forgets it.
func (g *ghost) take(h uint64) bool {
	s, ok := g.set[h]
	if !ok {
		return false
	}
	delete(g.set, h)
	return g.seq-s < uint64(g.limit)
}
