package memory

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// policySim drives a policy directly, as the cache does on a miss -> Set
// workload with one goroutine.
type policySim struct {
	p    policy[uint64, struct{}]
	data map[uint64]*node[uint64, struct{}]
	hits int
}

func newPolicySim(capacity uint64) *policySim {
	return &policySim{p: newPolicy[uint64, struct{}](capacity), data: make(map[uint64]*node[uint64, struct{}])}
}

func (s *policySim) request(k uint64) {
	if n, ok := s.data[k]; ok {
		s.hits++
		s.p.access(n)
		return
	}
	x := k * 0x9e3779b97f4a7c15
	n := &node[uint64, struct{}]{key: k, hash: x ^ x>>29, weight: 1, heapIndex: -1}
	s.data[k] = n
	s.p.add(n, len(s.data))
	for v := s.p.victim(n); v != nil; v = s.p.victim(n) {
		s.p.remove(v)
		delete(s.data, v.key)
	}
}

// recencyTrace returns n requests in which every key is used twice, the
// second use 1 to 400 requests after the first, and never again: only
// recency predicts a hit, so a larger window catches the second uses that
// TinyLFU would refuse to admit into main. The reuse distances are spread
// from 1 so that every size of the window has second uses just beyond it:
// the window grows by small steps, each taken on evidence that it pays
// (the ghost lists only look 1% of the cache ahead).
func recencyTrace(seed uint64, n int) []uint64 {
	r := rand.New(rand.NewPCG(seed, seed))
	out := make([]uint64, n)
	filled := make([]bool, n)
	next := uint64(1 << 40)
	for i := range out {
		if filled[i] {
			continue
		}
		out[i], filled[i] = next, true
		// The second use lands 1 to 400 requests later, on the first free
		// slot from there.
		for j := i + 1 + r.IntN(400); j < n; j++ {
			if !filled[j] {
				out[j], filled[j] = next, true
				break
			}
		}
		next++
	}
	return out
}

// TestClimberAdapts: the window grows from its initial 1% on a
// recency-skewed trace, then shrinks back on a frequency-skewed one (Zipf),
// where a small window and a large protected main region win.
func TestClimberAdapts(t *testing.T) {
	t.Parallel()
	const capacity = 1000
	s := newPolicySim(capacity)
	initial := s.p.maxWindow
	for _, k := range recencyTrace(1, 400_000) {
		s.request(k)
	}
	grown := s.p.maxWindow
	t.Logf("window: initial %d, after the recency trace %d (hit ratio %.3f)", initial, grown, float64(s.hits)/400_000)
	if grown < capacity/5 {
		t.Fatalf("window after a recency-skewed trace = %d, want >= %d (initial %d)", grown, capacity/5, initial)
	}
	checkPolicy(t, &s.p)

	s.hits = 0
	for _, k := range zipfTrace(2, 1.01, 100_000, 600_000) {
		s.request(k)
	}
	shrunk := s.p.maxWindow
	t.Logf("window after the Zipf trace %d (hit ratio %.3f)", shrunk, float64(s.hits)/600_000)
	if shrunk > grown/4 {
		t.Fatalf("window after a frequency-skewed trace = %d, want <= %d (was %d)", shrunk, grown/4, grown)
	}
	checkPolicy(t, &s.p)
}

// TestClimberLoop: on LIRS LOOP (a loop of 1011 keys), a cache smaller than
// the loop keeps a fixed subset: the window stays small and the hit ratio
// near the optimum (Bélády 0.2468 at 250 entries).
func TestClimberLoop(t *testing.T) {
	t.Parallel()
	trace := readTrace(t, "lirs-loop.gz", false)
	s := newPolicySim(250)
	for _, k := range trace {
		s.request(k)
	}
	ratio := float64(s.hits) / float64(len(trace))
	t.Logf("LIRS LOOP, 250 entries: window %d, hit ratio %.4f", s.p.maxWindow, ratio)
	if s.p.maxWindow > 250/10 {
		t.Errorf("window = %d, want <= %d", s.p.maxWindow, 250/10)
	}
	if ratio < 0.235 {
		t.Errorf("hit ratio %.4f, want >= 0.235", ratio)
	}
}

// TestGhostVotes checks one vote at a time: a miss on a key the window
// rejected grows the window, on a key main evicted shrinks it, and a ghost
// forgets what it was told more than limit pushes ago.
func TestGhostVotes(t *testing.T) {
	var g ghost
	g.resize(4)
	g.limit = 3
	for h := uint64(1); h <= 5; h++ {
		g.push(h)
	}
	for h, want := range map[uint64]bool{1: false, 2: false, 3: true, 4: true, 5: true, 6: false} {
		if got := g.take(h); got != want {
			t.Errorf("take(%d) = %v, want %v", h, got, want)
		}
	}
	if g.take(5) {
		t.Errorf("take(5) twice = true, want false")
	}
	g.push(7)
	g.push(7) // pushed again: still remembered when its first slot is reused
	for range 3 {
		g.push(8)
	}
	if !g.take(7) && g.limit > 3 {
		t.Errorf("take(7) = false after a second push")
	}

	const capacity = 100_000
	p := newPolicy[uint64, struct{}](capacity)
	p.adaptOnMiss(0, capacity) // size the ghosts
	step := uint64(capacity >> ghostStepShift)
	w := p.maxWindow
	p.ghostWindow.push(42)
	p.adaptOnMiss(42, capacity)
	if p.maxWindow != w+step {
		t.Fatalf("window after a window-ghost miss = %d, want %d", p.maxWindow, w+step)
	}
	p.ghostMain.push(43)
	p.adaptOnMiss(43, capacity)
	if p.maxWindow != w {
		t.Fatalf("window after a main-ghost miss = %d, want %d", p.maxWindow, w)
	}
	p.adaptOnMiss(44, capacity)
	if p.maxWindow != w {
		t.Fatalf("window after a miss on an unknown key = %d, want %d", p.maxWindow, w)
	}
}

func checkPolicy(t *testing.T, p *policy[uint64, struct{}]) {
	t.Helper()
	total := uint64(0)
	for _, q := range []queue{queueWindow, queueProbation, queueProtected} {
		l := p.listOf(q)
		w := uint64(0)
		var prev *node[uint64, struct{}]
		for n := l.head; n != nil; n = n.next {
			if n.queue != q || n.prev != prev {
				t.Fatalf("queue %d: bad node %d (queue %d)", q, n.key, n.queue)
			}
			w += uint64(n.weight)
			prev = n
		}
		if prev != l.tail || w != l.weight {
			t.Fatalf("queue %d: tail or weight (%d, want %d) wrong", q, l.weight, w)
		}
		total += w
	}
	if total != p.weight || total > p.max {
		t.Fatalf("policy weight %d (lists %d), max %d", p.weight, total, p.max)
	}
	if p.maxWindow+p.maxProtected > p.max || p.maxWindow < 1 {
		t.Fatalf("maxWindow %d + maxProtected %d > max %d", p.maxWindow, p.maxProtected, p.max)
	}
}

// TestClimberWeighted: with weights, while the ghosts move the split, a
// write is visible to the next read and the total weight stays within
// MaxWeight.
func TestClimberWeighted(t *testing.T) {
	t.Parallel()
	const maxWeight = 5000
	c := newCache(t, Options[uint64, struct{}]{
		MaxWeight: maxWeight,
		Weigher:   func(k uint64, _ struct{}) uint32 { return uint32(k%40) + 1 },
	})
	trace := append(recencyTrace(5, 150_000), zipfTrace(6, 1.01, 50_000, 150_000)...)
	windows := map[uint64]bool{}
	for i, k := range trace {
		if _, ok := c.Get(k); ok {
			continue
		}
		c.Set(k, struct{}{})
		if _, ok := c.Get(k); !ok {
			t.Fatalf("request %d: key %d missing right after its Set", i, k)
		}
		if i%10_000 == 0 {
			c.c.mu.Lock()
			windows[c.c.policy.maxWindow] = true
			checkPolicy(t, &c.c.policy)
			c.c.mu.Unlock()
		}
	}
	if len(windows) < 2 {
		t.Fatalf("the window never moved: sizes %v", windows)
	}
}

// seededSim is a policySim whose key hashes are mixed with seed, as the
// cache's are with its per-cache maphash seed. (Its hits go straight to
// access: the cache's read epochs, buffer.go, are not simulated.)
type seededSim struct {
	policySim
	seed uint64
}

func (s *seededSim) request(k uint64) {
	if n, ok := s.data[k]; ok {
		s.hits++
		s.p.access(n)
		return
	}
	n := &node[uint64, struct{}]{key: k, hash: mix64(k ^ s.seed), weight: 1, heapIndex: -1}
	s.data[k] = n
	s.p.add(n, len(s.data))
	for v := s.p.victim(n); v != nil; v = s.p.victim(n) {
		s.p.remove(v)
		delete(s.data, v.key)
	}
}

// TestPolicySim replays the real traces through the policy alone, with 5
// hash seeds, and prints the mean and spread of the hit ratio per
// capacity (CACHEKIT_POLICY_SIM=p3,loop,zipf; CACHEKIT_POLICY_SIM_LOG=1
// also logs the window's size every 10% of the trace).
func TestPolicySim(t *testing.T) {
	only := os.Getenv("CACHEKIT_POLICY_SIM")
	if only == "" {
		t.Skip("set CACHEKIT_POLICY_SIM=p3 (or loop, zipf, a list) to run the policy simulation")
	}
	logWindow := os.Getenv("CACHEKIT_POLICY_SIM_LOG") != ""
	type job struct {
		name  string
		trace []uint64
		caps  []int
	}
	var jobs []job
	if strings.Contains(only, "p3") {
		jobs = append(jobs, job{"p3", readTrace(t, "arc-p3.gz", true), []int{25_000, 50_000, 100_000, 200_000, 300_000, 400_000, 500_000, 600_000}})
	}
	if strings.Contains(only, "loop") {
		jobs = append(jobs, job{"loop", readTrace(t, "lirs-loop.gz", false), []int{250, 500, 750, 1000, 1250, 1500, 1750, 2000}})
	}
	if strings.Contains(only, "zipf") {
		jobs = append(jobs, job{"zipf0.99", exactZipf(0.99, 10, 1_000_000), []int{1000, 2500, 5000, 10_000, 20_000, 50_000}})
		jobs = append(jobs, job{"zipf1.01", exactZipf(1.01, 11, 1_000_000), []int{1000, 2500, 5000, 10_000, 20_000, 50_000}})
	}
	seeds := 5
	if s := os.Getenv("CACHEKIT_POLICY_SIM_CAPS"); s != "" {
		var caps []int
		for f := range strings.SplitSeq(s, ",") {
			c, _ := strconv.Atoi(f)
			caps = append(caps, c)
		}
		for i := range jobs {
			jobs[i].caps = caps
		}
	}
	if s := os.Getenv("CACHEKIT_POLICY_SIM_SEEDS"); s != "" {
		seeds, _ = strconv.Atoi(s)
	}
	for _, j := range jobs {
		for _, c := range j.caps {
			res := make([]float64, seeds)
			logs := make([]string, seeds)
			var wg sync.WaitGroup
			sem := make(chan struct{}, 2)
			for i := range seeds {
				wg.Go(func() {
					sem <- struct{}{}
					defer func() { <-sem }()
					s := &seededSim{policySim: *newPolicySim(uint64(c)), seed: mix64(uint64(i+1) * 0x9e3779b97f4a7c15)}
					var b strings.Builder
					for r, k := range j.trace {
						s.request(k)
						if logWindow && (r+1)%(len(j.trace)/10) == 0 {
							fmt.Fprintf(&b, " %d", s.p.maxWindow)
						}
					}
					res[i] = float64(s.hits) / float64(len(j.trace))
					logs[i] = b.String()
				})
			}
			wg.Wait()
			lo, hi, sum := 1.0, 0.0, 0.0
			for _, r := range res {
				lo, hi, sum = min(lo, r), max(hi, r), sum+r
			}
			t.Logf("%s\t%d\tmean %.4f\tspread %.4f\t%v", j.name, c, sum/float64(seeds), hi-lo, fmtRatios(res))
			if logWindow {
				for i, l := range logs {
					t.Logf("  seed %d window:%s", i, l)
				}
			}
		}
	}
}

func fmtRatios(rs []float64) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, " %.4f", r)
	}
	return b.String()
}
