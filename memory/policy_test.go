package memory

import (
	"container/list"
	"math/rand/v2"
	"testing"
	"time"
)

// lru is a plain LRU reference for the hit-ratio comparison.
type lru struct {
	cap   int
	ll    *list.List // front: most recent; values are keys
	items map[uint64]*list.Element
}

func newLRU(capacity int) *lru {
	return &lru{cap: capacity, ll: list.New(), items: make(map[uint64]*list.Element)}
}

func (l *lru) get(k uint64) bool {
	e, ok := l.items[k]
	if ok {
		l.ll.MoveToFront(e)
	}
	return ok
}

func (l *lru) set(k uint64) {
	l.items[k] = l.ll.PushFront(k)
	if l.ll.Len() > l.cap {
		old := l.ll.Back()
		l.ll.Remove(old)
		delete(l.items, old.Value.(uint64))
	}
}

// zipfTrace returns n keys drawn from Zipf(s) over [0, keys).
func zipfTrace(seed uint64, s float64, keys uint64, n int) []uint64 {
	z := rand.NewZipf(rand.New(rand.NewPCG(seed, seed)), s, 1, keys-1)
	trace := make([]uint64, n)
	for i := range trace {
		trace[i] = z.Uint64()
	}
	return trace
}

// TestHitRatioZipf checks that W-TinyLFU keeps clearly more hits than LRU on
// a skewed trace (miss → Set, single goroutine).
func TestHitRatioZipf(t *testing.T) {
	t.Parallel()
	const capacity = 1000
	trace := zipfTrace(10, 1.01, 100_000, 200_000)

	c := newCache(t, Options[uint64, uint64]{MaxEntries: capacity})
	ref := newLRU(capacity)
	ours, theirs := 0, 0
	for _, k := range trace {
		if _, ok := c.Get(k); ok {
			ours++
		} else {
			c.Set(k, k)
		}
		if ref.get(k) {
			theirs++
		} else {
			ref.set(k)
		}
	}
	n := float64(len(trace))
	our, lruRatio := float64(ours)/n, float64(theirs)/n
	t.Logf("Zipf s=1.01, 100k keys, capacity %d, %d requests: W-TinyLFU hit ratio %.4f, LRU %.4f", capacity, len(trace), our, lruRatio)
	if our < lruRatio+0.04 {
		t.Fatalf("W-TinyLFU hit ratio %.4f does not beat LRU's %.4f by 4 points", our, lruRatio)
	}
}

// TestGetAllocs: a hit allocates nothing, with or without an expiry.
func TestGetAllocs(t *testing.T) {
	// Not parallel: AllocsPerRun refuses to run in parallel tests.
	c := newCache(t, Options[string, *int]{MaxEntries: 100, Stats: true})
	v := 1
	c.Set("k", &v)
	c.SetWithTTL("ttl", &v, time.Hour)
	for _, k := range []string{"k", "ttl"} {
		if n := testing.AllocsPerRun(1000, func() {
			if _, ok := c.Get(k); !ok {
				panic("miss")
			}
		}); n != 0 {
			t.Errorf("Get(%q) hit: %v allocations, want 0", k, n)
		}
	}
	ci := newCache(t, Options[int, int]{MaxEntries: 100})
	ci.Set(1, 1)
	if n := testing.AllocsPerRun(1000, func() { ci.Get(1); ci.Get(2) }); n != 0 {
		t.Errorf("int Get hit and miss: %v allocations, want 0", n)
	}
}

func TestSketch(t *testing.T) {
	t.Parallel()
	s := newSketch(1024)
	s.ensureCapacity(1024)
	if len(s.table) != s.perEntry*1024 {
		t.Fatalf("table words = %d, want %d", len(s.table), s.perEntry*1024)
	}
	const hot, cold = 0x9e3779b97f4a7c15, 0xbf58476d1ce4e5b9
	for range 20 {
		s.increment(hot)
	}
	s.increment(cold)
	if f := s.frequency(hot); f != 15 {
		t.Fatalf("frequency of a key seen 20 times = %d, want 15 (saturated)", f)
	}
	if f := s.frequency(cold); f != 1 {
		t.Fatalf("frequency of a key seen once = %d, want 1", f)
	}
	s.halve()
	if f := s.frequency(hot); f != 7 {
		t.Fatalf("frequency after halving = %d, want 7", f)
	}
	// The periodic reset halves everything after sampleSize additions.
	r := rand.New(rand.NewPCG(1, 1))
	for range s.sampleSize {
		s.increment(r.Uint64())
	}
	if f := s.frequency(hot); f > 4 {
		t.Fatalf("frequency after a reset period = %d, want <= 4", f)
	}
}

// TestAdmission: keys used often survive a stream of keys used once or
// twice, which TinyLFU refuses to admit in their place. A plain segmented
// LRU (admitting every candidate) loses them all.
func TestAdmission(t *testing.T) {
	t.Parallel()
	c := newCache(t, Options[int, int]{MaxEntries: 100})
	access := func(k int) {
		if _, ok := c.Get(k); !ok {
			c.Set(k, k)
		}
	}
	for range 20 {
		for k := range 100 {
			access(k)
		}
	}
	for i := range 300 {
		access(1000 + i)
		if i > 0 {
			access(1000 + i - 1) // a second use, once the key has left the window
		}
	}
	kept := 0
	for k := range 100 {
		if _, ok := c.Get(k); ok {
			kept++
		}
	}
	if kept < 90 {
		t.Fatalf("%d of 100 frequently used keys survived a stream of rare ones, want >= 90", kept)
	}
}

// TestRejectedSet: a rejected hash is remembered for at least half and at
// most one period of rotation, and a key rejected by admission that comes
// back soon is admitted in place of a more frequent victim.
func TestRejectedSet(t *testing.T) {
	var r rejectedSet
	if r.has(1) {
		t.Fatal("has(1) on a new set")
	}
	r.add(2, 0) // the first add sizes a table
	if !r.has(2) {
		t.Fatal("has(2) = false right after add")
	}
	r.rotate(50)
	if !r.has(2) {
		t.Fatal("has(2) = false one rotation after add")
	}
	r.rotate(100)
	if r.has(2) {
		t.Fatal("has(2) = true two rotations after add")
	}
	fp := 0
	for h := uint64(0); h < 100_000; h++ {
		if r.has(mix64(h)) {
			fp++
		}
	}
	if fp != 0 {
		t.Fatalf("%d false positives on an empty set", fp)
	}
	r.rotate(150)
	if r.room != rejectedMinKeys {
		t.Fatalf("after an empty period the table is sized for %d keys, want %d", r.room, rejectedMinKeys)
	}
	for h := uint64(0); h < 100; h++ {
		r.add(mix64(h), 150)
	}
	for h := uint64(1000); h < 101_000; h++ {
		if r.has(mix64(h)) {
			fp++
		}
	}
	// 128 bits a key, 4 probes: about 1e-6 when full.
	if fp > 2 {
		t.Fatalf("%d false positives in 100000 lookups with 100 keys", fp)
	}
	r.rotate(200)
	if r.room != 125 {
		t.Fatalf("after a period of 100 rejections the table is sized for %d keys, want 125", r.room)
	}
	// A burst of rejections past twice the table's size rotates early: the
	// burst's keys are still remembered (in prev).
	for h := uint64(0); h < 300; h++ {
		r.add(mix64(h+5000), 200)
	}
	if r.since != 200 || r.room != 312 {
		t.Fatalf("after a burst of 300: since %d, room %d; want an early rotation at 200 sized for 312", r.since, r.room)
	}
	for h := uint64(0); h < 300; h++ {
		if !r.has(mix64(h + 5000)) {
			t.Fatalf("key %d of the burst forgotten", h)
		}
	}

	// Through the policy: a cache of 100 full of keys used 3 times; a
	// new key is rejected (its frequency 1 < 3), and admitted when it
	// comes back within the horizon.
	s := newPolicySim(100)
	for range 3 {
		for k := uint64(0); k < 100; k++ {
			s.request(k)
		}
	}
	s.request(500) // enters the window; the window's previous tail is rejected
	s.request(501) // 500 is rejected
	if _, ok := s.data[500]; ok {
		t.Fatal("key 500 admitted on its first use")
	}
	s.request(500)
	s.request(502) // 500 leaves the window again: admitted this time
	if _, ok := s.data[500]; !ok {
		t.Fatal("key 500, back soon after its rejection, was not admitted")
	}
}
