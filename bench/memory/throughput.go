package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cachekit/cachekit/bench/internal/report"
)

// traceLen is the length of every throughput trace; each goroutine walks
// it from a random offset, wrapping around.
const traceLen = 1 << 20

// speedWorkload is one throughput workload.
type speedWorkload struct {
	name     string
	about    string
	keys     int  // Zipf(1.01) key space
	capacity int  // the cache's bound, prefilled with the capacity most frequent keys
	sets     bool // every 4th op is Set(k, k), the others Get(k)
	seed     uint64
}

// Throughput workload names.
const (
	wRead  = "read"
	wMix   = "mix75-25"
	wChurn = "mix75-25-churn"
)

var speedWorkloads = []speedWorkload{
	{name: wRead, about: "100% Get, Zipf 1.01 over 100k keys, cap 100k, prefilled (all hits)", keys: 100_000, capacity: 100_000, seed: 1},
	{name: wMix, about: "75% Get / 25% Set, same keys (every Set an update)", keys: 100_000, capacity: 100_000, sets: true, seed: 1},
	{name: wChurn, about: "75% Get / 25% Set, Zipf 1.01 over 1M keys, cap 100k (inserts and evictions)", keys: 1_000_000, capacity: 100_000, sets: true, seed: 2},
}

// speedResult is one timed cell: a workload at a GOMAXPROCS for one
// contender in one round.
type speedResult struct {
	workload  string
	procs     int
	contender string
	nsPerOp   float64 // wall time / ops, all goroutines together
	allocs    float64 // allocations per op, the cache's goroutines included
}

// waiter is a cache whose Sets are applied asynchronously (ristretto):
// Wait returns once the ones made so far are.
type waiter interface{ Wait() }

func (c ristrettoCache) Wait() { c.c.Wait() }

// prefill stores the capacity most frequent keys of z.
func prefill(ch cache, z *zipf, n int) {
	w, async := ch.(waiter)
	for r := range n {
		k := z.keyOf(r)
		ch.Set(k, k)
		if async && r%1024 == 1023 {
			w.Wait() // keep ristretto's set buffer from dropping the fill
		}
	}
	if async {
		w.Wait()
	}
}

// setBenchOps makes testing.Benchmark run exactly ops iterations.
func setBenchOps(ops int) error {
	testing.Init()
	return flag.CommandLine.Set("test.benchtime", fmt.Sprintf("%dx", ops))
}

// timeCell measures one contender on one workload at GOMAXPROCS procs with
// testing.Benchmark and b.RunParallel: a fresh, prefilled cache; each
// goroutine walks trace from an offset drawn before its loop.
func timeCell(c contender, w speedWorkload, z *zipf, trace []int, procs int) (speedResult, error) {
	ch, err := c.open(w.capacity)
	if err != nil {
		return speedResult{}, err
	}
	defer ch.Close()
	prefill(ch, z, min(w.keys, w.capacity))
	runtime.GC()

	mask := len(trace) - 1
	var seq atomic.Uint64
	body := func(pb *testing.PB) {
		i := rand.New(rand.NewPCG(w.seed, seq.Add(1))).IntN(len(trace))
		if !w.sets {
			for pb.Next() {
				ch.Get(trace[i&mask])
				i++
			}
			return
		}
		for pb.Next() {
			k := trace[i&mask]
			if i&3 == 0 {
				ch.Set(k, k)
			} else {
				ch.Get(k)
			}
			i++
		}
	}
	prev := runtime.GOMAXPROCS(procs)
	res := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(body)
	})
	runtime.GOMAXPROCS(prev)
	if res.N == 0 {
		return speedResult{}, fmt.Errorf("benchmark failed")
	}
	return speedResult{
		workload:  w.name,
		procs:     procs,
		contender: c.name,
		nsPerOp:   float64(res.T.Nanoseconds()) / float64(res.N),
		allocs:    float64(res.MemAllocs) / float64(res.N),
	}, nil
}

// runThroughput times every selected contender on every workload and
// GOMAXPROCS, round after round; within a round the contenders of each
// cell run one after another in an order that rotates with the round, so
// background load hits them alike.
func runThroughput(cfg config) ([]speedResult, []string) {
	if err := setBenchOps(cfg.ops); err != nil {
		return nil, []string{"throughput: " + err.Error()}
	}
	type prepared struct {
		z     *zipf
		trace []int
	}
	prep := map[string]prepared{}
	for _, w := range speedWorkloads {
		z := newZipf(w.keys, 1.01, w.seed)
		prep[w.name] = prepared{z, z.trace(traceLen)}
	}
	names := filter(speedContenders, cfg.wantContender)
	var out []speedResult
	var problems []string
	for r := range cfg.rounds {
		t0 := time.Now()
		k := r
		for _, w := range speedWorkloads {
			for _, procs := range cfg.procs {
				for _, name := range report.Rotate(names, k) {
					res, err := timeCell(contenders[name], w, prep[w.name].z, prep[w.name].trace, procs)
					if err != nil {
						problems = append(problems, fmt.Sprintf("throughput %s/cpu%d %s: %v", w.name, procs, name, err))
						continue
					}
					logf(cfg, "round %d %-15s cpu%d %-15s %7.1f ns/op %5.2f allocs/op", r+1, w.name, procs, name, res.nsPerOp, res.allocs)
					out = append(out, res)
				}
				k++
			}
		}
		fmt.Fprintf(os.Stderr, "throughput round %d/%d  %5.1fs\n", r+1, cfg.rounds, time.Since(t0).Seconds())
	}
	return out, problems
}

// memResult is the heap one contender holds per resident entry.
type memResult struct {
	contender string
	resident  int
	perEntry  float64 // bytes
}

// memoryPerEntry fills a fresh cache of capacity n with n int keys and
// values and returns the live heap it added (after GC) per resident entry.
func memoryPerEntry(c contender, n int) (memResult, error) {
	h0 := settledHeap()
	ch, err := c.open(n)
	if err != nil {
		return memResult{}, err
	}
	w, async := ch.(waiter)
	for k := range n {
		ch.Set(k, k)
		if async && k%1024 == 1023 {
			w.Wait()
		}
	}
	if async {
		w.Wait()
	}
	resident := 0
	for k := range n {
		if v, ok := ch.Get(k); ok && v == k {
			resident++
		}
	}
	h1 := settledHeap()
	runtime.KeepAlive(ch)
	ch.Close()
	if resident == 0 {
		return memResult{}, fmt.Errorf("no entry resident after %d Sets", n)
	}
	heap := float64(int64(h1) - int64(h0))
	return memResult{contender: c.name, resident: resident, perEntry: heap / float64(resident)}, nil
}

// settledHeap collects garbage until the live heap stops shrinking and
// returns it. A closed cache's goroutines may hold it for a while after
// Close returns; one GC would count what is left of the previous contender
// against the next one.
func settledHeap() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	prev := m.HeapAlloc
	for range 50 {
		time.Sleep(20 * time.Millisecond)
		runtime.GC()
		runtime.ReadMemStats(&m)
		if m.HeapAlloc+64<<10 >= prev {
			return m.HeapAlloc
		}
		prev = m.HeapAlloc
	}
	return m.HeapAlloc
}

// runMemory measures memoryPerEntry for every selected contender.
func runMemory(cfg config) ([]memResult, []string) {
	var out []memResult
	var problems []string
	for _, name := range filter(speedContenders, cfg.wantContender) {
		t0 := time.Now()
		m, err := memoryPerEntry(contenders[name], cfg.memEntries)
		if err != nil {
			problems = append(problems, fmt.Sprintf("memory %s: %v", name, err))
			continue
		}
		logf(cfg, "memory %-15s %d resident, %.1f B/entry  %s", name, m.resident, m.perEntry, time.Since(t0).Round(time.Millisecond))
		out = append(out, m)
	}
	return out, problems
}
