package memory

import (
	"context"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

const (
	benchKeys  = 100_000
	benchTrace = 1 << 20
)

// benchCache returns a cache holding keys 0..benchKeys-1 and a Zipf(1.01)
// trace over them (each key present, so every Get hits).
func benchCache(b *testing.B) (*Cache[int, int], []int) {
	b.Helper()
	return benchCacheWith(b, Options[int, int]{MaxEntries: benchKeys})
}

// benchCacheWith is benchCache with other options.
func benchCacheWith(b *testing.B, opts Options[int, int]) (*Cache[int, int], []int) {
	b.Helper()
	c := Must(opts)
	b.Cleanup(func() { c.Close() })
	for i := range benchKeys {
		c.Set(i, i)
	}
	z := zipfTrace(1, 1.01, benchKeys, benchTrace)
	trace := make([]int, len(z))
	for i, k := range z {
		trace[i] = int(k)
	}
	return c, trace
}

func BenchmarkGet(b *testing.B) {
	c, trace := benchCache(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c.Get(trace[i&(benchTrace-1)])
		i++
	}
}

func BenchmarkGetParallel(b *testing.B) {
	c, trace := benchCache(b)
	var seed atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(rand.New(rand.NewPCG(seed.Add(1), 0)).IntN(benchTrace))
		for pb.Next() {
			c.Get(trace[i&(benchTrace-1)])
			i++
		}
	})
}

// BenchmarkSet measures updates of present keys.
func BenchmarkSet(b *testing.B) {
	c, trace := benchCache(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := trace[i&(benchTrace-1)]
		c.Set(k, i)
		i++
	}
}

func BenchmarkSetParallel(b *testing.B) {
	c, trace := benchCache(b)
	var seed atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(rand.New(rand.NewPCG(seed.Add(1), 0)).IntN(benchTrace))
		for pb.Next() {
			c.Set(trace[i&(benchTrace-1)], i)
			i++
		}
	})
}

// benchStore returns a store holding benchKeys 100-byte values and a Zipf
// trace of their keys.
func benchStore(b *testing.B) (*Store, []string) {
	b.Helper()
	s, err := NewStore(StoreOptions{MaxEntries: benchKeys})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	ctx := context.Background()
	val := make([]byte, 100)
	keys := make([]string, benchKeys)
	for i := range keys {
		keys[i] = "key:" + strconv.Itoa(i)
		s.Set(ctx, keys[i], val, 0)
	}
	z := zipfTrace(1, 1.01, benchKeys, benchTrace)
	trace := make([]string, len(z))
	for i, k := range z {
		trace[i] = keys[k]
	}
	return s, trace
}

func BenchmarkStoreGet(b *testing.B) {
	s, trace := benchStore(b)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.Get(ctx, trace[i&(benchTrace-1)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkStoreSet(b *testing.B) {
	s, trace := benchStore(b)
	ctx := context.Background()
	val := make([]byte, 100)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := s.Set(ctx, trace[i&(benchTrace-1)], val, 0); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// The Zipf benchmarks below follow the peer harness in
// /work/shared/research/memory-cache-anchors.md: Zipf(1.01) traces
// generated before the timer starts, each goroutine of b.RunParallel
// walking the trace from its own random offset.

const churnKeys = 1_000_000

// runTrace runs op over trace from a random offset per goroutine; op gets
// the key and the running index (every 4th index is a write in the mixed
// benchmarks).
func runTrace(b *testing.B, trace []int, op func(k, i int)) {
	b.Helper()
	var seed atomic.Uint64
	b.ReportAllocs()
	start := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(rand.New(rand.NewPCG(seed.Add(1), 0)).IntN(len(trace)))
		for pb.Next() {
			op(trace[i&(len(trace)-1)], i)
			i++
		}
	})
	b.StopTimer()
	// Process CPU time per op: on a shared machine, less sensitive than
	// wall time to other processes taking the CPUs.
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

// BenchmarkZipfGet: 100% Get, 100k keys prefilled, capacity 100k.
func BenchmarkZipfGet(b *testing.B) {
	c, trace := benchCache(b)
	runTrace(b, trace, func(k, _ int) { c.Get(k) })
}

// BenchmarkZipfGetStats is BenchmarkZipfGet with Stats on: every hit
// counts.
func BenchmarkZipfGetStats(b *testing.B) {
	c, trace := benchCacheWith(b, Options[int, int]{MaxEntries: benchKeys, Stats: true})
	runTrace(b, trace, func(k, _ int) { c.Get(k) })
}

// BenchmarkZipfGetTTL is BenchmarkZipfGet with a default TTL of an hour:
// every hit reads the clock.
func BenchmarkZipfGetTTL(b *testing.B) {
	c, trace := benchCacheWith(b, Options[int, int]{MaxEntries: benchKeys, TTL: time.Hour})
	runTrace(b, trace, func(k, _ int) { c.Get(k) })
}

// BenchmarkZipfGetSetTTL is BenchmarkZipfGetSet with a default TTL of an
// hour: every Set publishes a new node and re-keys the expiry heap.
func BenchmarkZipfGetSetTTL(b *testing.B) {
	c, trace := benchCacheWith(b, Options[int, int]{MaxEntries: benchKeys, TTL: time.Hour})
	runTrace(b, trace, func(k, i int) {
		if i&3 == 0 {
			c.Set(k, i)
		} else {
			c.Get(k)
		}
	})
}

// BenchmarkZipfGetSet: 75% Get / 25% Set over the same keys (every Set
// replaces a present key).
func BenchmarkZipfGetSet(b *testing.B) {
	c, trace := benchCache(b)
	runTrace(b, trace, func(k, i int) {
		if i&3 == 0 {
			c.Set(k, i)
		} else {
			c.Get(k)
		}
	})
}

// BenchmarkZipfChurn: 75% Get / 25% Set over 1M keys with capacity 100k,
// so Sets insert and evict and Gets miss.
func BenchmarkZipfChurn(b *testing.B) {
	c := Must(Options[int, int]{MaxEntries: benchKeys})
	b.Cleanup(func() { c.Close() })
	z := zipfTrace(2, 1.01, churnKeys, benchTrace)
	trace := make([]int, len(z))
	for i, k := range z {
		trace[i] = int(k)
	}
	for _, k := range trace[:benchTrace/2] {
		if _, ok := c.Get(k); !ok {
			c.Set(k, k)
		}
	}
	runTrace(b, trace, func(k, i int) {
		if i&3 == 0 {
			c.Set(k, i)
		} else {
			c.Get(k)
		}
	})
}

// BenchmarkZipfGetSetStruct is BenchmarkZipfGetSet with two-word values,
// which a write can never store in place: every Set publishes a new node
// (see value.go).
func BenchmarkZipfGetSetStruct(b *testing.B) {
	c := Must(Options[int, [2]int]{MaxEntries: benchKeys})
	b.Cleanup(func() { c.Close() })
	for i := range benchKeys {
		c.Set(i, [2]int{i, i})
	}
	z := zipfTrace(1, 1.01, benchKeys, benchTrace)
	trace := make([]int, len(z))
	for i, k := range z {
		trace[i] = int(k)
	}
	runTrace(b, trace, func(k, i int) {
		if i&3 == 0 {
			c.Set(k, [2]int{i, i})
		} else {
			c.Get(k)
		}
	})
}
