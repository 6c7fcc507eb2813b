package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/cachekit/cachekit/bench/internal/report"
)

// Workloads, in report order.
const (
	wGet     = "get"      // Get of a present key (a local hit for the contenders with a local tier)
	wGetMany = "get-many" // one call reading batch present keys
	wSet     = "set"      // overwrite of a present key with a value of the same size
)

var workloads = []string{wGet, wGetMany, wSet}

// keyName is the name of key i, without the contender's prefix.
func keyName(i int) string { return fmt.Sprintf("key-%07d", i) }

// newValue returns size random bytes.
func newValue(size int) []byte {
	v := make([]byte, size)
	_, _ = rand.Read(v)
	return v
}

// phasePlan is one workload at one concurrency: the key indexes of each
// goroutine, in order (for get-many, batch indexes per op, flattened). Every
// contender runs the same plan in a round.
type phasePlan struct {
	workload string
	conc     int
	batch    int     // keys per op: 1, or the get-many batch
	parts    [][]int // per goroutine
}

// ops is the number of ops of the plan, all goroutines together.
func (p phasePlan) ops() int {
	n := 0
	for _, pt := range p.parts {
		n += len(pt) / p.batch
	}
	return n
}

// plan draws the keys of ops ops of workload w at conc goroutines over a key
// space of keys. get and set pick keys uniformly (with repeats); a get-many
// op reads batch consecutive keys of a random permutation, distinct as long
// as batch <= keys. The ops are split into conc contiguous parts.
func plan(rng *mrand.Rand, w string, conc, keys, ops, batch int) phasePlan {
	p := phasePlan{workload: w, conc: conc, batch: 1}
	var idx []int
	if w == wGetMany {
		p.batch = batch
		perm := rng.Perm(keys)
		idx = make([]int, ops*batch)
		for i := range idx {
			idx[i] = perm[i%keys]
		}
	} else {
		idx = make([]int, ops)
		for i := range idx {
			idx[i] = rng.IntN(keys)
		}
	}
	p.parts = make([][]int, conc)
	for g := range conc {
		lo, hi := g*ops/conc, (g+1)*ops/conc
		p.parts[g] = idx[lo*p.batch : hi*p.batch]
	}
	return p
}

// sample is what one phase measured: per-op latencies of all goroutines and
// the wall-clock window from the first goroutine's start to the last one's
// end.
type sample struct {
	latNs          []int64
	startNs, endNs int64 // Unix ns
	errors         int
	firstError     string
	reads          int // keys read (get, get-many)
	unexpected     int // keys read that were missing, or not served by the local tier
}

func (s *sample) merge(o sample) {
	s.latNs = append(s.latNs, o.latNs...)
	if s.startNs == 0 || (o.startNs != 0 && o.startNs < s.startNs) {
		s.startNs = o.startNs
	}
	s.endNs = max(s.endNs, o.endNs)
	if s.firstError == "" {
		s.firstError = o.firstError
	}
	s.errors += o.errors
	s.reads += o.reads
	s.unexpected += o.unexpected
}

// warmConc is how many goroutines warm a local tier.
const warmConc = 16

// runPhase runs plan p against session s and records the sample. For a
// contender with a local tier, get and get-many are preceded (untimed) by a
// settle and a read of every key, so that they measure local hits, and
// every phase is followed by a settle, so that its invalidations do not run
// during the next contender's phase.
func runPhase(ctx context.Context, cfg config, res *results, s *session, p phasePlan, val []byte) error {
	lt, _ := s.cl.(localTier)
	if !s.c.local {
		lt = nil
	}
	var before uint64
	if lt != nil && p.workload != wSet {
		if err := lt.settle(ctx); err != nil {
			return fmt.Errorf("settle: %w", err)
		}
		lt.renew()
		if err := warm(ctx, s.cl, s.args); err != nil {
			return fmt.Errorf("warm: %w", err)
		}
		before = lt.remoteReads()
	}
	// Key strings are built before the clock starts.
	parts := make([][]string, len(p.parts))
	for g, pt := range p.parts {
		parts[g] = make([]string, len(pt))
		for i, k := range pt {
			parts[g][i] = s.args[k]
		}
	}
	t0 := time.Now()
	smp := runParts(ctx, s.cl, p.workload, p.batch, parts, val)
	if lt != nil {
		if p.workload != wSet {
			smp.unexpected += int(lt.remoteReads() - before)
		}
		if err := lt.settle(ctx); err != nil {
			return fmt.Errorf("settle: %w", err)
		}
	}
	if cfg.verbose {
		fmt.Fprintf(os.Stderr, "  %-21s %-9s %-4s %6.2fs %s\n", s.c.name, p.workload, concLabel(p.conc),
			time.Since(t0).Seconds(), describe(smp))
		if lt != nil {
			fmt.Fprintf(os.Stderr, "      tier counters so far: %s\n", lt.tierStats())
		}
	}
	if len(smp.latNs) == 0 && smp.errors > 0 {
		return fmt.Errorf("every op failed, first: %s", smp.firstError)
	}
	res.add(cell{p.workload, p.conc, s.c.name}, smp)
	return nil
}

// warm reads every key once from warmConc goroutines.
func warm(ctx context.Context, cl client, keys []string) error {
	errs := make([]error, warmConc)
	var wg sync.WaitGroup
	for g := range warmConc {
		wg.Go(func() {
			for i := g; i < len(keys); i += warmConc {
				hit, err := cl.get(ctx, keys[i])
				if err == nil && !hit {
					err = fmt.Errorf("key %q missing", keys[i])
				}
				if err != nil {
					errs[g] = err
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// burstConc and burstOps shape the untimed burst on a freshly opened client.
const burstConc, burstOps = 32, 20

// burst reads burstOps keys from each of burstConc goroutines at once.
func burst(ctx context.Context, cl client, keys []string) error {
	errs := make([]error, burstConc)
	var wg sync.WaitGroup
	for g := range burstConc {
		wg.Go(func() {
			for i := range burstOps {
				if _, err := cl.get(ctx, keys[(g*burstOps+i)%len(keys)]); err != nil {
					errs[g] = err
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// runParts runs one goroutine per part, released together, and merges what
// they measured.
func runParts(ctx context.Context, cl client, w string, batch int, parts [][]string, val []byte) sample {
	out := make([]sample, len(parts))
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	for g := range parts {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			out[g] = runPart(ctx, cl, w, batch, parts[g], val)
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

// runPart does one goroutine's share of a phase, timing every op.
func runPart(ctx context.Context, cl client, w string, batch int, keys []string, val []byte) sample {
	s := sample{latNs: make([]int64, 0, len(keys)/batch)}
	s.startNs = time.Now().UnixNano()
	// base has a monotonic reading, so time.Since(base) reads only the
	// monotonic clock: one clock read per timestamp.
	base := time.Now()
	for i := 0; i+batch <= len(keys); i += batch {
		var hits int
		var err error
		t0 := time.Since(base)
		switch w {
		case wGet:
			var hit bool
			hit, err = cl.get(ctx, keys[i])
			if hit {
				hits = 1
			}
		case wGetMany:
			hits, err = cl.getMany(ctx, keys[i:i+batch])
		case wSet:
			err = cl.set(ctx, keys[i], val)
		}
		t1 := time.Since(base)
		if err != nil {
			s.errors++
			if s.firstError == "" {
				s.firstError = err.Error()
			}
			continue
		}
		s.latNs = append(s.latNs, int64(t1-t0))
		if w != wSet {
			s.reads += batch
			s.unexpected += batch - hits
		}
	}
	s.endNs = time.Now().UnixNano()
	return s
}

// describe summarizes one sample for -v, with the mean and the maximum that
// the report leaves out.
func describe(s sample) string {
	if len(s.latNs) == 0 {
		return fmt.Sprintf("no ops, %d errors", s.errors)
	}
	l := report.Summarize(s.latNs, s.startNs, s.endNs)
	return fmt.Sprintf("n=%d median=%.2f p99=%.1f max=%.1f mean=%.2f µs, %.0f ops/s, %d unexpected, %d errors",
		l.N, l.Median, l.P99, l.Max, l.Mean, l.Throughput, s.unexpected, s.errors)
}
