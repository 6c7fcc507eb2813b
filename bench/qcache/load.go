package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cachekit/cachekit/bench/internal/report"
	"github.com/cachekit/cachekit/qcache"
)

// loadConfig is one phase of the hit-ratio workload.
type loadConfig struct {
	ds      dataset
	readers int
	rate    int // writes per second, 0 for none
	warm    time.Duration
	measure time.Duration
	seed    uint64
}

// loadResult is what one phase measured.
type loadResult struct {
	reads     int
	byKind    [3][]int64 // latencies (ns) of reads by readKind
	writes    int
	writeErrs int
	readErrs  int
	firstErr  error
	elapsed   time.Duration
	stats     qcache.Stats // the policy's counters over the measured time
}

// runLoad runs readers over the query shapes and paced writers on m for
// cfg.warm (not measured: the cache fills) and then cfg.measure.
func runLoad(ctx context.Context, m *modeDB, w *writer, cfg loadConfig) *loadResult {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		measuring atomic.Bool
		wg        sync.WaitGroup
		mu        sync.Mutex // protects res
		res       = &loadResult{}
	)
	fail := func(err error) {
		mu.Lock()
		if res.firstErr == nil {
			res.firstErr = err
		}
		mu.Unlock()
	}
	for i := range cfg.readers {
		wg.Go(func() {
			k := newKeys(cfg.seed*1000+uint64(i), cfg.ds)
			var lat [3][]int64
			errs := 0
			for ctx.Err() == nil {
				s := &shapes[k.r.IntN(len(shapes))]
				args := s.args(k)
				rec := &readRec{}
				t0 := time.Now()
				_, err := readAll(withRec(ctx, rec), m.db, s.sql, args...)
				d := time.Since(t0)
				if err != nil {
					if ctx.Err() == nil {
						errs++
						fail(fmt.Errorf("read %s: %w", s.name, err))
					}
					continue
				}
				if measuring.Load() {
					kind := rec.kind.Load()
					lat[kind] = append(lat[kind], d.Nanoseconds())
				}
			}
			mu.Lock()
			for i := range lat {
				res.byKind[i] = append(res.byKind[i], lat[i]...)
			}
			res.readErrs += errs
			mu.Unlock()
		})
	}
	if cfg.rate > 0 {
		// Writers keep to a schedule (one write every interval each); a
		// writer that falls behind skips the writes it missed rather than
		// bursting, and the achieved rate is reported.
		// Several writers, so that a slow write (a planning round trip, a
		// row lock, CPU contention) does not hold back the rate.
		nw := max(4, min(32, cfg.rate/25))
		interval := time.Duration(float64(time.Second) * float64(nw) / float64(cfg.rate))
		for i := range nw {
			wg.Go(func() {
				k := newKeys(cfg.seed*1000+500+uint64(i), cfg.ds)
				next := time.Now().Add(interval * time.Duration(i) / time.Duration(nw))
				n, errs := 0, 0
				for {
					if d := time.Until(next); d > 0 {
						select {
						case <-ctx.Done():
						case <-time.After(d):
						}
					}
					if ctx.Err() != nil {
						break
					}
					next = next.Add(interval)
					if now := time.Now(); next.Before(now) {
						next = now
					}
					err := w.write(ctx, m.write(), k)
					if !measuring.Load() {
						continue
					}
					if err != nil && ctx.Err() == nil {
						errs++
						fail(fmt.Errorf("write: %w", err))
					} else if err == nil {
						n++
					}
				}
				mu.Lock()
				res.writes += n
				res.writeErrs += errs
				mu.Unlock()
			})
		}
	}
	select {
	case <-ctx.Done():
	case <-time.After(cfg.warm):
	}
	s0 := m.stats()
	measuring.Store(true)
	t0 := time.Now()
	select {
	case <-ctx.Done():
	case <-time.After(cfg.measure):
	}
	measuring.Store(false)
	res.elapsed = time.Since(t0)
	s1 := m.stats()
	res.stats = qcache.Stats{
		Dropped:           s1.Dropped - s0.Dropped,
		InvalidatedRows:   s1.InvalidatedRows - s0.InvalidatedRows,
		InvalidatedTables: s1.InvalidatedTables - s0.InvalidatedTables,
		InvalidatedGlobal: s1.InvalidatedGlobal - s0.InvalidatedGlobal,
	}
	cancel()
	wg.Wait()
	for i := range res.byKind {
		res.reads += len(res.byKind[i])
	}
	return res
}

// figures turns a phase result into metrics (name → value, unit).
func (r *loadResult) figures() []metric {
	secs := r.elapsed.Seconds()
	hits := len(r.byKind[kindHit])
	ms := []metric{
		{"reads_per_s", float64(r.reads) / secs, "ops/s"},
		{"writes_per_s", float64(r.writes) / secs, "ops/s"},
		{"hit_ratio", ratio(hits, r.reads), "ratio"},
		{"db_queries_saved_per_s", float64(hits) / secs, "ops/s"},
		{"db_reads_per_s", float64(r.reads-hits) / secs, "ops/s"},
		{"errors", float64(r.readErrs + r.writeErrs), "count"},
		{"fills_dropped_per_s", float64(r.stats.Dropped) / secs, "ops/s"},
		{"invalidations_row_per_s", float64(r.stats.InvalidatedRows) / secs, "ops/s"},
		{"invalidations_table_per_s", float64(r.stats.InvalidatedTables) / secs, "ops/s"},
		{"invalidations_global_per_s", float64(r.stats.InvalidatedGlobal) / secs, "ops/s"},
	}
	for k, lat := range r.byKind {
		if len(lat) == 0 {
			continue
		}
		s := slices.Clone(lat)
		slices.Sort(s)
		ms = append(ms,
			metric{kindNames[k] + "_p50", report.Percentile(s, 0.50), "us"},
			metric{kindNames[k] + "_p99", report.Percentile(s, 0.99), "us"},
			metric{kindNames[k] + "_share", ratio(len(lat), r.reads), "ratio"})
	}
	all := slices.Concat(r.byKind[:]...)
	slices.Sort(all)
	ms = append(ms, metric{"read_p50", report.Percentile(all, 0.50), "us"}, metric{"read_p99", report.Percentile(all, 0.99), "us"})
	return ms
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// metric is one measured figure.
type metric struct {
	name  string
	value float64
	unit  string
}
