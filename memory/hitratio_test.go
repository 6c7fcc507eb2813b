package memory

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Hit-ratio regression tests: synthetic Zipf traces and two real block
// traces replayed through the public API (miss -> Set, one goroutine).
// The floors sit just under what the adaptive W-TinyLFU policy reaches, and
// at or above what theine-go v0.6.3 and otter v2.4.0 (synchronous
// executor) reach on the same traces where we beat them.
//
// CACHEKIT_HITRATIO_TABLE=1 prints the ratio of every trace and capacity
// (3 Zipf seeds each) instead of checking floors.

const zipfKeys = 1_000_000

var (
	zipfPermOnce sync.Once
	zipfPerm     []int
)

// exactZipf returns n keys drawn from Zipf(s) over zipfKeys keys by an
// exact inverse CDF (a binary search over the cumulative sum of 1/i^s, so
// that s <= 1 works), ranks scrambled by a fixed permutation.
func exactZipf(s float64, seed uint64, n int) []uint64 {
	zipfPermOnce.Do(func() { zipfPerm = rand.New(rand.NewPCG(42, 42)).Perm(zipfKeys) })
	cdf := make([]float64, zipfKeys)
	sum := 0.0
	for i := range cdf {
		sum += 1 / math.Pow(float64(i+1), s)
		cdf[i] = sum
	}
	r := rand.New(rand.NewPCG(seed, seed))
	out := make([]uint64, n)
	for i := range out {
		k := min(sort.SearchFloat64s(cdf, r.Float64()*sum), zipfKeys-1)
		out[i] = uint64(zipfPerm[k])
	}
	return out
}

// tracesDir holds the shared real traces (see its README.md).
const tracesDir = "/work/shared/traces"

// readTrace reads a gzipped trace: one key per line, or with expand the
// ARC format "start count ..." standing for keys start..start+count-1.
func readTrace(t testing.TB, name string, expand bool) []uint64 {
	t.Helper()
	f, err := os.Open(filepath.Join(tracesDir, name))
	if err != nil {
		t.Skipf("trace not available: %v", err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(z)
	var out []uint64
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) == 0 {
			continue
		}
		start, err := strconv.ParseUint(fs[0], 10, 64)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		count := uint64(1)
		if expand {
			if len(fs) < 2 {
				t.Fatalf("%s: line %q has no count", name, sc.Text())
			}
			if count, err = strconv.ParseUint(fs[1], 10, 64); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		for k := start; k < start+count; k++ {
			out = append(out, k)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return out
}

// replay returns the hit ratio of a cache of capacity entries on trace.
func replay(t testing.TB, capacity int, trace []uint64) float64 {
	t.Helper()
	c, err := New(Options[uint64, struct{}]{MaxEntries: capacity})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	hits := 0
	for _, k := range trace {
		if _, ok := c.Get(k); ok {
			hits++
		} else {
			c.Set(k, struct{}{})
		}
	}
	return float64(hits) / float64(len(trace))
}

// hitCase is one trace replayed at one capacity, with the lowest hit
// ratio the test accepts.
type hitCase struct {
	trace    string
	capacity int
	floor    float64
}

// The full cases: Zipf is the mean of seeds 10 to 12 (1M requests each),
// the real traces are replayed whole (P3 at 4 of its 8 usual capacities,
// to keep the test near 15 s; CACHEKIT_HITRATIO_TABLE prints all 8). The
// comments give the means of measured runs on the same traces (3 runs
// each; theine-go v0.6.3 and otter v2.4.0 with a synchronous executor
// from a scratch module outside the repository; Bélády's optimum with
// bypass). The hash seed is random per cache, so runs differ: by up to
// 0.002 on Zipf and most of LOOP, but up to 0.03 on LOOP at 500 entries,
// 0.02 on P3 at 100k and 0.05 on P3 at 300k (peers alike). Floors sit
// under our lowest of 8 or more runs, which keeps some of them under the
// best peer's mean where we beat it by less than that noise.
var hitCases = []hitCase{
	{"zipf0.99", 10_000, 0.635}, // ours 0.6379; theine 0.6358, otter 0.6335, Bélády 0.6957
	{"zipf1.01", 10_000, 0.665}, // ours 0.6667–0.6702 (hash seed); theine 0.6683, otter 0.6661, Bélády 0.7237
	{"loop", 250, 0.240},        // ours 0.2448; theine 0.2337, otter 0.2340, Bélády 0.2466
	{"loop", 500, 0.410},        // ours 0.4878 to 0.4926, but 0.417 in 1 run of 30 (hash seed; the window stays under 6); theine 0.4706, otter 0.4844, Bélády 0.4936
	{"loop", 750, 0.733},        // ours 0.7391; theine 0.7274, otter 0.6868, Bélády 0.7404
	{"loop", 1000, 0.983},       // ours 0.9852; otter 0.9712, Bélády 0.9871 (theine 0.9945 beats Bélády: it holds more than 1000)
	{"loop", 2000, 0.997},       // 0.9980 for all from 1250 up: the loop of 1011 keys fits
	{"p3", 25_000, 0.148},       // ours 0.1516 to 0.1554; theine 0.1466, otter 0.1464, Bélády 0.2604
	{"p3", 100_000, 0.410},      // ours 0.4193 to 0.4242 (rejected keys back soon are admitted; 0.4016 to 0.4154 before); theine 0.4020, otter 0.4008, 2Q 0.3943, Bélády 0.6200
	{"p3", 300_000, 0.615},      // ours 0.645 to 0.702 (bimodal: the window jumps or not); theine 0.6426, otter 0.6579, LRU 0.6893, Bélády 0.7951
	{"p3", 500_000, 0.778},      // ours 0.7817 to 0.7932; theine 0.7914, otter 0.7904, LRU 0.7946, Bélády 0.8051
}

// The reduced cases, run with -short or under the race detector: one Zipf
// seed of 300k requests, the loop at two sizes, the first 300k requests
// of P3 at its smallest size.
var hitCasesShort = []hitCase{
	{"zipf0.99", 10_000, 0.609}, // ours 0.6135
	{"zipf1.01", 10_000, 0.642}, // ours 0.6459
	{"loop", 250, 0.240},
	{"loop", 750, 0.730},
	{"p3", 25_000, 0.060}, // ours 0.0657 to 0.0743 over 25 runs
}

// TestHitRatio replays each case through New, Get and Set (miss -> Set)
// and checks its hit ratio against the floor.
func TestHitRatio(t *testing.T) {
	t.Parallel()
	reduced := testing.Short() || raceEnabled
	cases, zipfRequests, zipfSeeds, p3Requests := hitCases, 1_000_000, []uint64{10, 11, 12}, 0
	if reduced {
		cases, zipfRequests, zipfSeeds, p3Requests = hitCasesShort, 300_000, []uint64{10}, 300_000
	}
	var loadOnce [2]sync.Once
	var loop, p3 []uint64
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%d", tc.trace, tc.capacity), func(t *testing.T) {
			t.Parallel()
			var ratio float64
			switch tc.trace {
			case "loop":
				loadOnce[0].Do(func() { loop = readTrace(t, "lirs-loop.gz", false) })
				if loop == nil {
					t.Skip("trace not available")
				}
				ratio = replay(t, tc.capacity, loop)
			case "p3":
				loadOnce[1].Do(func() {
					p3 = readTrace(t, "arc-p3.gz", true)
					if p3Requests > 0 {
						p3 = p3[:min(p3Requests, len(p3))]
					}
				})
				if p3 == nil {
					t.Skip("trace not available")
				}
				ratio = replay(t, tc.capacity, p3)
			default:
				s, err := strconv.ParseFloat(strings.TrimPrefix(tc.trace, "zipf"), 64)
				if err != nil {
					t.Fatal(err)
				}
				for _, seed := range zipfSeeds {
					ratio += replay(t, tc.capacity, exactZipf(s, seed, zipfRequests))
				}
				ratio /= float64(len(zipfSeeds))
			}
			t.Logf("hit ratio %.4f (floor %.4f)", ratio, tc.floor)
			if ratio < tc.floor {
				t.Errorf("hit ratio %.4f, want >= %.4f", ratio, tc.floor)
			}
		})
	}
}

func TestHitRatioTable(t *testing.T) {
	only := os.Getenv("CACHEKIT_HITRATIO_TABLE")
	if only == "" {
		t.Skip("set CACHEKIT_HITRATIO_TABLE=1 (or zipf, loop, p3) to print the hit-ratio table")
	}
	want := func(name string) bool { return only == "1" || strings.Contains(only, name) }
	var mu sync.Mutex
	var lines []string
	var wg sync.WaitGroup
	emit := func(s string) { mu.Lock(); lines = append(lines, s); mu.Unlock() }
	for _, s := range []float64{0.99, 1.01} {
		if !want("zipf") {
			break
		}
		wg.Go(func() {
			sum := 0.0
			for seed := uint64(10); seed <= 12; seed++ {
				sum += replay(t, 10_000, exactZipf(s, seed, 1_000_000))
			}
			emit(fmt.Sprintf("zipf%.2f\t10000\t%.4f", s, sum/3))
		})
	}
	wg.Go(func() {
		if !want("loop") {
			return
		}
		tr := readTrace(t, "lirs-loop.gz", false)
		for c := 250; c <= 2000; c += 250 {
			emit(fmt.Sprintf("loop\t%d\t%.4f", c, replay(t, c, tr)))
		}
	})
	var p3 []uint64
	var p3Caps []int
	if want("p3") {
		p3 = readTrace(t, "arc-p3.gz", true)
		p3Caps = []int{25_000, 50_000, 100_000, 200_000, 300_000, 400_000, 500_000, 600_000}
	}
	for _, c := range p3Caps {
		wg.Go(func() { emit(fmt.Sprintf("p3\t%d\t%.4f", c, replay(t, c, p3))) })
	}
	wg.Wait()
	sort.Strings(lines)
	for _, l := range lines {
		t.Log(l)
	}
}
