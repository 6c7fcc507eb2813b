package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// hitTrace is one trace of the hit-ratio simulation and the capacities it
// is replayed at.
type hitTrace struct {
	name       string
	about      string
	capacities []int
	main       int // the capacity of the headline table column; 0: none
	load       func() ([]int, error)
}

// zipfHitTrace is a synthetic Zipf trace: 1M requests over 1M keys.
func zipfHitTrace(name string, s float64, seed uint64, caps []int) hitTrace {
	return hitTrace{
		name:       name,
		about:      fmt.Sprintf("Zipf s=%.2f over 1M keys, 1M requests, seed %d", s, seed),
		capacities: caps,
		main:       10_000,
		load:       func() ([]int, error) { return newZipf(1_000_000, s, seed).trace(1_000_000), nil },
	}
}

// hitTraces lists the traces and capacities of a run.
func hitTraces(cfg config) []hitTrace {
	zipfCaps := []int{1000, 2500, 5000, 10_000, 20_000, 50_000}
	p3Caps := []int{25_000, 50_000, 100_000, 200_000, 300_000, 400_000, 500_000, 600_000}
	loopCaps := []int{250, 500, 750, 1000, 1250, 1500, 1750, 2000}
	p3About, p3Len := "ARC paper's workstation disk trace P3 (3.9M block requests)", 0
	if cfg.quick {
		zipfCaps = []int{1000, 10_000, 50_000}
		p3Caps = []int{25_000, 100_000}
		p3About, p3Len = "ARC paper's workstation disk trace P3, its first 600k block requests only (-quick)", 600_000
		loopCaps = []int{250, 750, 1000, 2000}
	}
	return []hitTrace{
		zipfHitTrace("zipf-0.99", 0.99, 10, zipfCaps),
		zipfHitTrace("zipf-1.01", 1.01, 11, zipfCaps),
		{
			name:       "arc-p3",
			about:      p3About,
			capacities: p3Caps,
			load: func() ([]int, error) {
				t, err := readGzip(filepath.Join(cfg.traceDir, "arc-p3.gz"), readARC)
				if p3Len > 0 && len(t) > p3Len {
					t = t[:p3Len]
				}
				return t, err
			},
		},
		{
			name:       "lirs-loop",
			about:      "LIRS paper's looping trace (505k requests)",
			capacities: loopCaps,
			load: func() ([]int, error) {
				return readGzip(filepath.Join(cfg.traceDir, "lirs-loop.gz"), readLIRS)
			},
		},
	}
}

// hitRatio is the result of one contender on one trace at one capacity.
type hitRatio struct {
	trace     string
	capacity  int
	contender string
	ratio     float64
	maxLen    int // most entries seen held (sampled every 256 requests); -1: unknown
}

// simulate replays trace through a fresh cache of the given capacity on
// this goroutine: a hit counts, a miss is answered by Set.
// It also returns the most entries the cache was seen to hold, sampled
// every 256 requests (-1 for a cache that cannot tell): a cache whose
// maintenance lags may hold more than its capacity for a while.
func simulate(c contender, trace []int, capacity int) (ratio float64, maxLen int, err error) {
	if c.name == cOptimal {
		return float64(optimalHits(trace, capacity)) / float64(len(trace)), capacity, nil
	}
	ch, err := c.open(capacity)
	if err != nil {
		return 0, 0, err
	}
	defer ch.Close()
	sz, canSize := ch.(sizer)
	maxLen = -1
	hits := 0
	for i, k := range trace {
		if _, ok := ch.Get(k); ok {
			hits++
		} else {
			ch.Set(k, k)
		}
		if canSize && i&255 == 255 {
			maxLen = max(maxLen, sz.Len())
		}
	}
	return float64(hits) / float64(len(trace)), maxLen, nil
}

// runHitRatios runs every selected contender on every trace and capacity,
// one simulation at a time.
func runHitRatios(cfg config) ([]hitRatio, []string) {
	var out []hitRatio
	var problems []string
	for _, ht := range hitTraces(cfg) {
		if !cfg.wantTrace(ht.name) {
			continue
		}
		t0 := time.Now()
		trace, err := ht.load()
		if err != nil {
			problems = append(problems, fmt.Sprintf("trace %s: %v", ht.name, err))
			continue
		}
		for _, capacity := range ht.capacities {
			for _, name := range hitContenders {
				if !cfg.wantContender(name) {
					continue
				}
				s0 := time.Now()
				r, maxLen, err := simulate(contenders[name], trace, capacity)
				if err != nil {
					problems = append(problems, fmt.Sprintf("hit ratio %s/%d %s: %v", ht.name, capacity, name, err))
					continue
				}
				logf(cfg, "hit ratio %-10s cap %7d %-15s %.4f  max held %7d  %s", ht.name, capacity, name, r, maxLen,
					time.Since(s0).Round(time.Millisecond))
				out = append(out, hitRatio{ht.name, capacity, name, r, maxLen})
			}
		}
		fmt.Fprintf(os.Stderr, "hit ratio %s: %d requests, %d capacities, %s\n", ht.name, len(trace), len(ht.capacities),
			time.Since(t0).Round(time.Second))
	}
	return out, problems
}
