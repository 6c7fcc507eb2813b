package main

import (
	"flag"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/cachekit/cachekit/bench/internal/report"
)

func TestOptimalHits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		trace    []int
		capacity int
		want     int
	}{
		// 1 2 miss; 3 is used never again: not admitted; then 1 2 hit;
		// 4 never again: not admitted; 1 2 hit.
		{[]int{1, 2, 3, 1, 2, 4, 1, 2}, 2, 4},
		// One slot: 1 is kept (back at 3 and 6), everything else declined.
		{[]int{1, 2, 3, 1, 2, 4, 1, 2}, 1, 2},
		// At 3, keeping 2 (back at 3) and 1 (at 4) beats admitting 3
		// (back at 5): 2 and 1 hit, 3 misses.
		{[]int{1, 2, 3, 2, 1, 3}, 2, 2},
		// 3 is admitted in place of 1, whose next use (5) is farther than
		// 3's (4) and 2's (3).
		{[]int{1, 2, 3, 2, 3, 1}, 2, 2},
		{[]int{1, 1, 1}, 0, 0},
		{nil, 3, 0},
	} {
		if got := optimalHits(tc.trace, tc.capacity); got != tc.want {
			t.Errorf("optimalHits(%v, %d) = %d, want %d", tc.trace, tc.capacity, got, tc.want)
		}
	}
}

// bruteHits is the most hits any policy gets on trace with capacity keys,
// trying every choice on every miss: decline, or admit (evicting any
// resident key when full).
func bruteHits(trace []int, capacity int, resident []int) int {
	if len(trace) == 0 {
		return 0
	}
	k, rest := trace[0], trace[1:]
	if slices.Contains(resident, k) {
		return 1 + bruteHits(rest, capacity, resident)
	}
	best := bruteHits(rest, capacity, resident)
	if len(resident) < capacity {
		return max(best, bruteHits(rest, capacity, append(slices.Clone(resident), k)))
	}
	for i := range resident {
		r := slices.Clone(resident)
		r[i] = k
		best = max(best, bruteHits(rest, capacity, r))
	}
	return best
}

func TestOptimalHitsMatchesBruteForce(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		trace := make([]int, 4+rng.IntN(7))
		for i := range trace {
			trace[i] = rng.IntN(5)
		}
		capacity := 1 + rng.IntN(3)
		if got, want := optimalHits(trace, capacity), bruteHits(trace, capacity, nil); got != want {
			t.Fatalf("optimalHits(%v, %d) = %d, want %d (brute force)", trace, capacity, got, want)
		}
	}
}

func TestNextUses(t *testing.T) {
	t.Parallel()
	got := nextUses([]int{7, 8, 7, 9, 8})
	if want := []int{2, 4, 5, 5, 5}; !slices.Equal(got, want) {
		t.Errorf("nextUses = %v, want %v", got, want)
	}
}

func TestReadARC(t *testing.T) {
	t.Parallel()
	got, err := readARC(strings.NewReader("10 3 0 0\n\n20 1 0 1\n5 0 0 2\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{10, 11, 12, 20}; !slices.Equal(got, want) {
		t.Errorf("readARC = %v, want %v", got, want)
	}
	for _, bad := range []string{"10\n", "x 1 0 0\n", "1 y 0 0\n", "1 -2 0 0\n"} {
		if _, err := readARC(strings.NewReader(bad)); err == nil {
			t.Errorf("readARC(%q): no error", bad)
		}
	}
}

func TestReadLIRS(t *testing.T) {
	t.Parallel()
	got, err := readLIRS(strings.NewReader("1\n2\n\n  3\n2\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{1, 2, 3, 2}; !slices.Equal(got, want) {
		t.Errorf("readLIRS = %v, want %v", got, want)
	}
	for _, bad := range []string{"x\n", "1 2\n"} {
		if _, err := readLIRS(strings.NewReader(bad)); err == nil {
			t.Errorf("readLIRS(%q): no error", bad)
		}
	}
}

func TestReadGzipMissing(t *testing.T) {
	t.Parallel()
	if _, err := readGzip(t.TempDir()+"/none.gz", func(io.Reader) ([]int, error) { return nil, nil }); err == nil {
		t.Error("readGzip of a missing file: no error")
	}
}

func TestZipfDeterministic(t *testing.T) {
	t.Parallel()
	a := newZipf(10_000, 0.99, 7).trace(1000)
	b := newZipf(10_000, 0.99, 7).trace(1000)
	if !slices.Equal(a, b) {
		t.Error("two Zipf traces with the same seed differ")
	}
	if c := newZipf(10_000, 0.99, 8).trace(1000); slices.Equal(a, c) {
		t.Error("Zipf traces with seeds 7 and 8 are equal")
	}
	for _, k := range a {
		if k < 0 || k >= 10_000 {
			t.Fatalf("key %d outside [0, 10000)", k)
		}
	}
}

func TestZipfFrequencies(t *testing.T) {
	t.Parallel()
	for _, s := range []float64{0.99, 1.01} {
		const n, draws = 100_000, 200_000
		z := newZipf(n, s, 3)
		var h float64
		for i := 1; i <= n; i++ {
			h += 1 / math.Pow(float64(i), s)
		}
		counts := map[int]int{}
		for range draws {
			counts[z.key()]++
		}
		for r, want := range []float64{1 / h, 1 / (h * math.Pow(2, s))} {
			got := float64(counts[z.keyOf(r)]) / draws
			if math.Abs(got-want) > 0.05*want {
				t.Errorf("s=%v: rank %d frequency %.4f, want %.4f ± 5%%", s, r+1, got, want)
			}
		}
		// The permutation scrambles ranks: the hottest key is not key 0.
		if z.keyOf(0) == 0 && z.keyOf(1) == 1 {
			t.Errorf("s=%v: ranks not scrambled", s)
		}
	}
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	cfg, err := parseFlags(flag.NewFlagSet("t", flag.ContinueOnError), []string{"-quick", "-ops", "5"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.rounds != 3 || cfg.ops != 5 || !slices.Equal(cfg.procs, []int{1, 2}) {
		t.Errorf("-quick -ops 5: rounds %d ops %d procs %v, want 3, 5, [1 2]", cfg.rounds, cfg.ops, cfg.procs)
	}
	for _, args := range [][]string{{"-parts", "nope"}, {"-cpu", "0"}, {"-contenders", "otter,otter"}, {"extra"}} {
		if _, err := parseFlags(flag.NewFlagSet("t", flag.ContinueOnError), args); err == nil {
			t.Errorf("parseFlags(%q): no error", args)
		}
	}
}

func TestRotate(t *testing.T) {
	t.Parallel()
	if got := report.Rotate([]string{"a", "b", "c"}, 4); !slices.Equal(got, []string{"b", "c", "a"}) {
		t.Errorf("report.Rotate(a b c, 4) = %v", got)
	}
}

func TestContenderNames(t *testing.T) {
	t.Parallel()
	for _, name := range slices.Concat(hitContenders, speedContenders) {
		c, ok := contenders[name]
		if !ok || c.name != name {
			t.Errorf("contender %q missing or misnamed", name)
		}
		if ours(name) != (name == cCachekit) {
			t.Errorf("ours(%q) = %v", name, ours(name))
		}
	}
}

func TestHitTargetsLeaveOutOversize(t *testing.T) {
	t.Parallel()
	hits := []hitRatio{
		{"t", 100, cCachekit, 0.50, 100},
		{"t", 100, cOtter, 0.70, 130}, // held more than its capacity
		{"t", 100, cRistretto, 0.65, -1},
		{"t", 100, cTheine, 0.499, 100},
		{"t", 100, cOptimal, 0.60, 100},
	}
	if best, who := bestPeerHit(hits, "t", 100); who != cTheine || best != 0.499 {
		t.Errorf("bestPeerHit = %v %s, want 0.499 theine (otter oversize, ristretto above Bélády)", best, who)
	}
}

// TestSimulateSmoke runs every contender on a short trace: each opens,
// answers and closes.
func TestSimulateSmoke(t *testing.T) {
	t.Parallel()
	trace := newZipf(1000, 1.01, 1).trace(5000)
	for _, name := range hitContenders {
		r, _, err := simulate(contenders[name], trace, 100)
		// ristretto's Sets land asynchronously: on so short a trace it may
		// not hit at all.
		if err != nil || r >= 1 || (r <= 0 && name != cRistretto) {
			t.Errorf("%s: hit ratio %v, %v", name, r, err)
		}
	}
}
