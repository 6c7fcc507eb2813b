package memory

import (
	"math/bits"
	"math/rand/v2"
	"testing"
)

// TestSketchBlock: an increment changes exactly 4 counters, one in each
// row (word pair) of a single 64-byte block aligned on 8 words.
func TestSketchBlock(t *testing.T) {
	t.Parallel()
	s := newSketch(4096)
	s.ensureCapacity(4096)
	r := rand.New(rand.NewPCG(3, 3))
	blocks := map[int]bool{}
	for range 1000 {
		clear(s.table)
		s.additions = 0
		h := r.Uint64()
		s.increment(h)
		var words []int
		for i, w := range s.table {
			if w != 0 {
				if bits.OnesCount64(w) != 1 {
					t.Fatalf("word %d = %#x: want one counter at 1", i, w)
				}
				words = append(words, i)
			}
		}
		if len(words) != 4 {
			t.Fatalf("hash %#x changed %d words, want 4", h, len(words))
		}
		base := words[0] &^ (sketchBlockWords - 1)
		for row, i := range words {
			if i-base >= sketchBlockWords {
				t.Fatalf("hash %#x: words %v span more than one block", h, words)
			}
			if (i-base)>>1 != row {
				t.Fatalf("hash %#x: words %v are not one per row", h, words)
			}
		}
		blocks[base] = true
		if f := s.frequency(h); f != 1 {
			t.Fatalf("frequency after one increment = %d, want 1", f)
		}
	}
	// 1000 keys over 1024 blocks: they spread (about 630 distinct expected).
	if len(blocks) < 500 {
		t.Fatalf("1000 keys used %d blocks, want >= 500", len(blocks))
	}
}

// TestSketchHalving: a full count-bounded sketch halves after 10x its
// capacity in increments, and halving divides every counter by two.
func TestSketchHalving(t *testing.T) {
	t.Parallel()
	const capacity = 1000
	s := newSketch(capacity)
	s.ensureCapacity(capacity)
	if s.sampleSize != 10*capacity {
		t.Fatalf("sampleSize = %d, want %d", s.sampleSize, 10*capacity)
	}
	const hot = 0x9e3779b97f4a7c15
	for range 12 {
		s.increment(hot)
	}
	r := rand.New(rand.NewPCG(4, 4))
	// Fill up to one increment short of the period: nothing is halved.
	for s.additions < s.sampleSize-1 {
		s.increment(r.Uint64())
	}
	if f := s.frequency(hot); f < 12 {
		t.Fatalf("frequency before the period ends = %d, want >= 12", f)
	}
	before := append([]uint64(nil), s.table...)
	s.increment(r.Uint64() | 1) // the sampleSize-th increment
	if s.additions >= s.sampleSize/2+1 {
		t.Fatalf("additions after halving = %d, want about half of %d", s.additions, s.sampleSize)
	}
	changed := 0
	for i, w := range s.table {
		for off := uint(0); off < 64; off += 4 {
			was, now := (before[i]>>off)&0xf, (w>>off)&0xf
			// One counter may have been incremented just before halving.
			if now != was>>1 && now != (was+1)>>1 {
				t.Fatalf("word %d offset %d: %d halved to %d", i, off, was, now)
			}
			if now != was {
				changed++
			}
		}
	}
	if changed == 0 {
		t.Fatal("no counter changed at the end of the period")
	}
	if f := s.frequency(hot); f < 6 || f > 7 {
		t.Fatalf("frequency of a key seen 12+ times after halving = %d, want 6 or 7", f)
	}
}
