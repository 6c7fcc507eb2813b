package memory

import "math/bits"

// sketch is a count-min sketch of 4-bit counters with depth 4 that
// estimates how often each key was used recently. The table is split into
// blocks of 8 words (64 bytes, one cache line): a key maps to one block,
// and to one counter in each of the block's 4 rows of 2 words (32 counters
// a row), so an increment or a lookup touches a single cache line. The
// key's frequency is the minimum of its 4 counters. After sampleSize
// increments every counter is halved, so that the sketch forgets old
// popularity (the "periodic reset" of TinyLFU).
type sketch struct {
	table      []uint64
	blockMask  uint64 // number of blocks - 1
	additions  int
	sampleSize int
	capacity   int // the policy's capacity, capped at sketchMaxWords
	maxWords   int // the table never grows past this
	perEntry   int // words per entry of capacity: 1 or 2
}

const (
	sketchBlockWords = 8 // 64 bytes
	sketchMinWords   = 16
	sketchMaxWords   = 1 << 27 // 1 GiB: far beyond any count we expect
	sketchOneMask    = 0x1111111111111111
	sketchHalfMask   = 0x7777777777777777
	// A cache of up to sketchSmallCache entries has 2 words (32 counters)
	// of sketch per entry, a larger one 1, rounded up to a power of two.
	// One word per entry everywhere, as in Caffeine, cost 0.0011–0.0017
	// of hit ratio on Zipf (1k–50k entries) and up to 0.007 on LIRS LOOP at
	// 250; two words everywhere cost 8.4 bytes per entry more at 1M
	// entries (93.4 against 85.0 bytes, against otter's 90.4). On ARC P3
	// (100k–600k) the difference stayed within the spread between runs
	// (D38).
	sketchSmallCache = 1 << 16
	// sketchSampleFactor times the capacity is the number of increments
	// between two halvings.
	sketchSampleFactor = 10
)

// newSketch returns a sketch that grows with the number of entries, up to
// perEntry words per entry of capacity. The table starts small
// so that a large but mostly empty cache costs little.
func newSketch(capacity uint64) sketch {
	perEntry := 1
	if capacity <= sketchSmallCache {
		perEntry = 2
	}
	limit := uint64(sketchMaxWords / perEntry)
	if capacity < limit {
		limit = max(capacity, sketchMinWords)
	}
	s := sketch{maxWords: perEntry << bits.Len64(limit-1), capacity: int(limit), perEntry: perEntry}
	s.resize(min(sketchMinWords, s.maxWords))
	return s
}

// ensureCapacity grows the table when the cache holds more entries than it
// has room for, and to its full size once the cache holds half its
// capacity, so that a cache about to fill does not forget its counts again
// (a count-min sketch cannot be rehashed). It grows O(log n) times while a
// cache fills.
func (s *sketch) ensureCapacity(entries int) {
	if len(s.table) >= s.maxWords {
		return
	}
	if 2*entries >= s.capacity {
		s.resize(s.maxWords)
		return
	}
	if s.perEntry*entries <= len(s.table) {
		return
	}
	s.resize(min(s.perEntry<<bits.Len(uint(entries-1)), s.maxWords))
}

func (s *sketch) resize(words int) {
	s.table = make([]uint64, words)
	s.blockMask = uint64(words/sketchBlockWords - 1)
	s.additions = 0
	// A count-bounded cache halves every 10x its capacity in increments
	// once full; a weighted one every 10x the entries the table was last
	// sized for.
	s.sampleSize = sketchSampleFactor * min(words/s.perEntry, s.capacity)
}

// block returns the index of the first word of h's block, and the hash
// that picks its counters in the block (8 bits per row).
func (s *sketch) block(h uint64) (int, uint64) {
	// The block comes from the high bits of a multiplicative hash and the
	// counters from a full avalanche mix of h, so that keys sharing a block
	// do not also tend to share counters.
	b := int(((h * 0x9e3779b97f4a7c15) >> 32 & s.blockMask) * sketchBlockWords)
	c := (h ^ h>>30) * 0xbf58476d1ce4e5b9
	c = (c ^ c>>27) * 0x94d049bb133111eb
	return b, c ^ c>>31
}

// slot returns the word (relative to the block) and the bit offset of row
// i's counter for counter hash c: row i owns words 2i and 2i+1.
func slot(c uint64, i int) (int, uint) {
	r := c >> (uint(i) * 8)
	return i<<1 | int(r&1), uint((r>>1)&15) << 2
}

// increment adds one to the key's counters that are not saturated. (A
// conservative update, raising only the smallest counters, gains 0.003 on
// Zipf but makes LIRS LOOP churn: 0.19 instead of 0.23 at 250 entries.)
func (s *sketch) increment(h uint64) {
	b, c := s.block(h)
	blk := s.table[b : b+sketchBlockWords : b+sketchBlockWords]
	added := false
	for i := range 4 {
		w, off := slot(c, i)
		if (blk[w]>>off)&0xf != 0xf {
			blk[w] += 1 << off
			added = true
		}
	}
	if added {
		s.additions++
		if s.additions >= s.sampleSize {
			s.halve()
		}
	}
}

// frequency returns the estimated count of the key (0 to 15).
func (s *sketch) frequency(h uint64) uint64 {
	b, c := s.block(h)
	blk := s.table[b : b+sketchBlockWords : b+sketchBlockWords]
	f := uint64(0xf)
	for i := range 4 {
		w, off := slot(c, i)
		f = min(f, (blk[w]>>off)&0xf)
	}
	return f
}

// peek loads the first word of h's block.
func (s *sketch) peek(h uint64) uint64 {
	b, _ := s.block(h)
	return s.table[b]
}

// halve divides every counter by two.
func (s *sketch) halve() {
	odd := 0
	for i, w := range s.table {
		odd += bits.OnesCount64(w & sketchOneMask)
		s.table[i] = (w >> 1) & sketchHalfMask
	}
	s.additions = (s.additions - odd/4) / 2
}
