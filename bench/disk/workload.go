package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"sync"
	"time"
)

// Workload names, in report order. Each is timed per op.
const (
	wGetHit       = "get-hit"
	wGetMiss      = "get-miss"
	wSetNew       = "set-new"
	wSetOverwrite = "set-overwrite"
	wDelete       = "delete"
	wMix          = "mix-90-9-1"
)

var workloadOrder = []string{wGetHit, wGetMiss, wSetNew, wSetOverwrite, wDelete, wMix}

// Request ops: what a worker does with each key of a part.
const (
	opGet    = "get"    // Get each key
	opSet    = "set"    // Set each key
	opDelete = "delete" // Delete each key
	opMix    = "mix"    // part.Kinds[i] says g, s or d for key i
	opFill   = "fill"   // untimed Set of every key, batched where the store can
	opPurge  = "purge"  // untimed Delete of every key, batched where the store can
)

// Expectations checked per op; a mismatch counts as unexpected (for example
// a get-hit that missed because the server evicted the key).
const (
	expectHit   = "hit"   // Get finds the key
	expectMiss  = "miss"  // Get does not find it
	expectFound = "found" // Delete removes a present key
)

// mixKeys is the key space of DiskCache's own benchmark (tests/benchmark_core.py).
const mixKeys = 100

// part is the share of one thread of execution (goroutine, Python thread or
// worker process) in a phase: the key indexes it works on, in order.
type part struct {
	Keys  []int  `json:"keys"`
	Kinds string `json:"kinds,omitempty"` // per key for opMix: 'g', 's' or 'd'
}

// request is one phase, sent to a session; parts run concurrently.
type request struct {
	Cmd      string `json:"cmd"` // "run" or "close"
	Workload string `json:"workload,omitempty"`
	Op       string `json:"op,omitempty"`
	Expect   string `json:"expect,omitempty"`
	Size     int    `json:"size,omitempty"`
	Record   bool   `json:"record,omitempty"` // report per-op latencies
	Parts    []part `json:"parts,omitempty"`
}

// sample is the outcome of one phase: per-op latencies of all parts, and the
// wall-clock window from the first part's start to the last part's end.
type sample struct {
	LatNs      []int64 `json:"lat_ns"`
	StartNs    int64   `json:"start_ns"` // Unix ns
	EndNs      int64   `json:"end_ns"`
	Errors     int     `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
	Unexpected int     `json:"unexpected"`
}

// merge adds o to s (both from the same phase).
func (s *sample) merge(o sample) {
	s.LatNs = append(s.LatNs, o.LatNs...)
	if s.StartNs == 0 || (o.StartNs != 0 && o.StartNs < s.StartNs) {
		s.StartNs = o.StartNs
	}
	s.EndNs = max(s.EndNs, o.EndNs)
	if s.FirstError == "" {
		s.FirstError = o.FirstError
	}
	s.Errors += o.Errors
	s.Unexpected += o.Unexpected
}

// keyName is the key of index i; diskcache_bench.py builds the same string.
func keyName(prefix string, i int) string { return fmt.Sprintf("%skey-%015d", prefix, i) }

// newValue returns size random bytes (incompressible, like the anchors' runs).
func newValue(size int) []byte {
	v := make([]byte, size)
	_, _ = rand.Read(v)
	return v
}

// fillChunk is the batch size of untimed fills and purges.
const fillChunk = 500

// prepared is a request with its key strings built, ready to start.
type prepared struct {
	req  request
	keys [][]string
	val  []byte
}

// prepare builds the key strings and the value outside of any timing.
func prepare(prefix string, req request) *prepared {
	p := &prepared{req: req, keys: make([][]string, len(req.Parts)), val: newValue(req.Size)}
	for i, pt := range req.Parts {
		p.keys[i] = make([]string, len(pt.Keys))
		for j, k := range pt.Keys {
			p.keys[i][j] = keyName(prefix, k)
		}
	}
	return p
}

// run runs the parts against st, one goroutine each, released together, and
// merges what they measured.
func (p *prepared) run(ctx context.Context, st store) sample {
	out := make([]sample, len(p.keys))
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	for i := range p.keys {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			out[i] = runPart(ctx, st, p.req, p.keys[i], p.req.Parts[i].Kinds, p.val)
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
	var s sample
	for _, o := range out {
		s.merge(o)
	}
	return s
}

// runPart does one thread's share of a phase.
func runPart(ctx context.Context, st store, req request, keys []string, kinds string, val []byte) sample {
	var s sample
	fail := func(err error) {
		s.Errors++
		if s.FirstError == "" {
			s.FirstError = err.Error()
		}
	}
	s.StartNs = time.Now().UnixNano()

	switch req.Op {
	case opFill, opPurge:
		for c := range slices.Chunk(keys, fillChunk) {
			var err error
			if req.Op == opFill {
				err = setMany(ctx, st, c, val)
			} else {
				err = deleteMany(ctx, st, c)
			}
			if err != nil {
				fail(err)
			}
		}
		s.EndNs = time.Now().UnixNano()
		return s
	}

	if req.Record {
		s.LatNs = make([]int64, 0, len(keys))
	}
	// base has a monotonic reading, so time.Since(base) reads only the
	// monotonic clock: one clock read per timestamp.
	base := time.Now()
	for i, k := range keys {
		kind := req.Op
		if req.Op == opMix {
			switch kinds[i] {
			case 'g':
				kind = opGet
			case 's':
				kind = opSet
			case 'd':
				kind = opDelete
			}
		}
		var ok bool
		var err error
		t0 := time.Since(base)
		switch kind {
		case opGet:
			ok, err = st.Get(ctx, k)
		case opSet:
			ok, err = true, st.Set(ctx, k, val)
		case opDelete:
			ok, err = st.Delete(ctx, k)
		default:
			err = fmt.Errorf("unknown op %q", kind)
		}
		t1 := time.Since(base)
		if err != nil {
			fail(err)
			continue
		}
		if req.Record {
			s.LatNs = append(s.LatNs, int64(t1-t0))
		}
		if req.Expect == expectHit || req.Expect == expectFound {
			ok = !ok
		}
		if req.Expect != "" && ok {
			s.Unexpected++
		}
	}
	s.EndNs = time.Now().UnixNano()
	return s
}

func setMany(ctx context.Context, st store, keys []string, val []byte) error {
	if b, ok := st.(bulkStore); ok {
		return b.SetMany(ctx, keys, val)
	}
	for _, k := range keys {
		if err := st.Set(ctx, k, val); err != nil {
			return err
		}
	}
	return nil
}

func deleteMany(ctx context.Context, st store, keys []string) error {
	if b, ok := st.(bulkStore); ok {
		return b.DeleteMany(ctx, keys)
	}
	var errs []error
	for _, k := range keys {
		if _, err := st.Delete(ctx, k); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// group is the set of phases run on one fresh store per contender: the
// 20k-key workloads at one value size, or the mix.
type group struct {
	size int  // value size in bytes
	mix  bool // DiskCache's 90/9/1 mix over 100 keys
	conc conc
}

// conc is a concurrency setting: parts threads of execution, as goroutines
// (Python threads) in one process or as separate processes.
type conc struct {
	name  string
	parts int
	procs bool
}

var concs = []conc{{"1g", 1, false}, {"2g", 2, false}, {"2p", 2, true}}

// plan returns a group's phases in run order. Untimed fill comes first (so a
// quick run's set-new meets a nearly full store, as the full run's does), and
// a purge of the keys left at the end (run only where contender.purge says).
func (g group) plan(rng *mrand.Rand, keys, ops int) []request {
	n := g.conc.parts
	if g.mix {
		kinds := make([]byte, ops)
		mk := make([]int, ops)
		for i := range kinds {
			switch r := rng.IntN(100); {
			case r < 90:
				kinds[i] = 'g'
			case r < 99:
				kinds[i] = 's'
			default:
				kinds[i] = 'd'
			}
			mk[i] = rng.IntN(mixKeys)
		}
		parts := split(mk, n)
		off := 0
		for i := range parts {
			parts[i].Kinds = string(kinds[off : off+len(parts[i].Keys)])
			off += len(parts[i].Keys)
		}
		all := seq(0, mixKeys)
		return []request{
			{Cmd: "run", Op: opFill, Size: g.size, Parts: split(all, n)},
			{Cmd: "run", Workload: wMix, Op: opMix, Size: g.size, Record: true, Parts: parts},
			{Cmd: "run", Op: opPurge, Parts: split(all, n)},
		}
	}
	ops = min(ops, keys)
	perm := rng.Perm(keys)
	fresh, rest := perm[:ops], perm[ops:]
	sampleKeys := func() []int { return rng.Perm(keys)[:ops] }
	deleted := sampleKeys()
	left := make([]bool, keys)
	for i := range left {
		left[i] = true
	}
	for _, k := range deleted {
		left[k] = false
	}
	var remain []int
	for k, ok := range left {
		if ok {
			remain = append(remain, k)
		}
	}
	run := func(w, op, expect string, idx []int) request {
		return request{Cmd: "run", Workload: w, Op: op, Expect: expect, Size: g.size, Record: true, Parts: split(idx, n)}
	}
	return []request{
		{Cmd: "run", Op: opFill, Size: g.size, Parts: split(rest, n)},
		run(wSetNew, opSet, "", fresh),
		run(wSetOverwrite, opSet, "", sampleKeys()),
		run(wGetHit, opGet, expectHit, sampleKeys()),
		run(wGetMiss, opGet, expectMiss, seq(keys, keys+ops)),
		run(wDelete, opDelete, expectFound, deleted),
		{Cmd: "run", Op: opPurge, Parts: split(remain, n)},
	}
}

// split cuts idx into n contiguous parts (disjoint when idx has no repeats).
func split(idx []int, n int) []part {
	parts := make([]part, n)
	for i := range parts {
		parts[i].Keys = idx[i*len(idx)/n : (i+1)*len(idx)/n]
	}
	return parts
}

func seq(from, to int) []int {
	s := make([]int, 0, to-from)
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}
