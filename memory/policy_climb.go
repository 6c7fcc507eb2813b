package memory

// This file holds the hill climber that sizes the window of the W-TinyLFU
// policy (see policy.go).

import "math"

// adapt closes the hill climber's sample period once it has seen as many
// requests as the sketch's reset period (about 10x the capacity), and moves
// the window/main split by the current step: the same way again when the
// hit rate improved over the previous period, the other way when it got
// worse. The step decays by climbDecay each period and starts again at its
// full size when the hit rate moves by climbRestart or more.
func (p *policy[K, V]) adapt() {
	c := &p.climb
	n := c.hits + c.misses
	if n < max(uint64(p.sketch.sampleSize), climbMinSample) {
		return
	}
	hits := c.hits
	c.hits, c.misses = 0, 0
	if p.weight < p.max/2 {
		// Still filling: misses are compulsory, the rate means nothing.
		return
	}
	rate := float64(hits) / float64(n)
	change := rate - c.prevRate
	c.prevRate = rate
	// A drop within climbNoise standard errors of the sample's hit rate is
	// taken for noise, not for a worse split: the climber keeps its
	// direction. Reversing on every small drop makes the window swing on
	// stationary workloads.
	noise := climbNoise * math.Sqrt(rate*(1-rate)/float64(n))
	amount := c.step
	if change < -noise {
		amount = -amount
	}
	if change >= climbRestart || change <= -climbRestart {
		full := float64(p.max >> climbStepShift)
		if amount < 0 {
			full = -full
		}
		c.step = full
	} else {
		c.step = amount * climbDecay
	}
	if amount >= 1 {
		p.growWindow(uint64(amount))
	} else if amount <= -1 {
		p.shrinkWindow(uint64(-amount))
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
