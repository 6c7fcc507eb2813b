package main

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
)

// zipf draws keys 0..n-1 with P(rank i) ∝ 1/i^s (i = 1..n), for any s > 0:
// a uniform draw is looked up in the exact CDF by binary search
// (math/rand's Zipf needs s > 1). Ranks are scrambled by a fixed
// permutation, so the hot keys are spread over the key space rather than
// being 0, 1, 2, ...
type zipf struct {
	cdf  []float64 // cdf[i] = P(rank <= i+1)
	perm []int     // rank-1 → key
	rng  *rand.Rand
}

// permSeed fixes the rank → key permutation of every Zipf trace.
const permSeed = 0x5eed

func newZipf(n int, s float64, seed uint64) *zipf {
	cdf := make([]float64, n)
	var sum float64
	for i := range n {
		sum += 1 / math.Pow(float64(i+1), s)
		cdf[i] = sum
	}
	for i := range cdf {
		cdf[i] /= sum
	}
	cdf[n-1] = 1
	perm := rand.New(rand.NewPCG(permSeed, uint64(n))).Perm(n)
	return &zipf{cdf: cdf, perm: perm, rng: rand.New(rand.NewPCG(seed, 0))}
}

// rank returns the 0-based rank of the next draw.
func (z *zipf) rank() int {
	u := z.rng.Float64()
	return sort.SearchFloat64s(z.cdf, u)
}

// key returns the next key.
func (z *zipf) key() int { return z.perm[z.rank()] }

// keyOf returns the key of 0-based rank r (0: the most frequent).
func (z *zipf) keyOf(r int) int { return z.perm[r] }

// trace returns the next n keys.
func (z *zipf) trace(n int) []int {
	t := make([]int, n)
	for i := range t {
		t[i] = z.key()
	}
	return t
}

// readARC reads a trace of the ARC paper's format: one request per line,
// "start count ignored reqid", which expands to the keys start, start+1,
// ..., start+count-1.
func readARC(r io.Reader) ([]int, error) {
	var keys []int
	err := eachLine(r, func(line int, f []string) error {
		if len(f) < 2 {
			return fmt.Errorf("line %d: want \"start count ...\", got %q", line, strings.Join(f, " "))
		}
		start, err1 := strconv.Atoi(f[0])
		count, err2 := strconv.Atoi(f[1])
		if err1 != nil || err2 != nil || count < 0 {
			return fmt.Errorf("line %d: bad start or count in %q", line, strings.Join(f, " "))
		}
		for i := range count {
			keys = append(keys, start+i)
		}
		return nil
	})
	return keys, err
}

// readLIRS reads a trace of the LIRS paper's format: one integer key per
// line.
func readLIRS(r io.Reader) ([]int, error) {
	var keys []int
	err := eachLine(r, func(line int, f []string) error {
		if len(f) != 1 {
			return fmt.Errorf("line %d: want one key, got %q", line, strings.Join(f, " "))
		}
		k, err := strconv.Atoi(f[0])
		if err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		keys = append(keys, k)
		return nil
	})
	return keys, err
}

// eachLine calls fn with the fields of every non-blank line of r and its
// 1-based number, stopping at the first error.
func eachLine(r io.Reader, fn func(line int, fields []string) error) error {
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if err := fn(n, f); err != nil {
			return err
		}
	}
	return sc.Err()
}

// readGzip opens a gzip-compressed trace file and reads it with read.
func readGzip(path string, read func(io.Reader) ([]int, error)) ([]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	keys, err := read(zr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return keys, nil
}
