package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/viccon/sturdyc"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/bench/internal/report"
	"github.com/cachekit/cachekit/memo"
	"github.com/cachekit/cachekit/memory"
)

// version is the value of the expiry workload: which computation made it
// and when that computation ended (monotonic clock). A read that returns a
// value finished after the read began had to wait for that computation:
// the value did not exist when it started.
type version struct {
	seq      int64
	finished time.Time
}

// expirySession is one contender ready for one expiry run.
type expirySession struct {
	call func(ctx context.Context) (*version, error)
	// close waits for the background refreshes, then releases the
	// contender.
	close func() error
}

type expiryContender struct {
	name  string
	about string
	open  func(cfg config, load func(context.Context) (*version, error), idle func() bool) (*expirySession, error)
}

// sturdycRetryBaseDelay is sturdyc's retryBaseDelay, the value of its
// README's examples. A read that triggers a background refresh moves the
// next one this far ahead (doubling per refresh started, reset by a
// successful Set), whether or not the first has finished.
const sturdycRetryBaseDelay = 10 * time.Millisecond

// expiryContenders is the expiry workload's table, in report order. Each
// run opens its contender afresh.
var expiryContenders = []expiryContender{
	{
		name:  "cachekit-memo-ttl",
		about: "memo.Func, Options{TTL}: the value expires, the next callers wait for one computation (coalesced)",
		open:  openMemoExpiry(func(ttl time.Duration) memo.Options { return memo.Options{TTL: ttl} }),
	},
	{
		name:  "cachekit-memo-xfetch",
		about: "memo.Func, Options{TTL, XFetch: true} (Beta 1): fresh values recomputed early in the background, probability rising toward expiry",
		open:  openMemoExpiry(func(ttl time.Duration) memo.Options { return memo.Options{TTL: ttl, XFetch: true} }),
	},
	{
		name:  "cachekit-memo-swr",
		about: "memo.Func, Options{TTL, StaleWhileRevalidate: TTL}: past its TTL the value is served while one caller recomputes it",
		open: openMemoExpiry(func(ttl time.Duration) memo.Options {
			return memo.Options{TTL: ttl, StaleWhileRevalidate: ttl}
		}),
	},
	{
		name: "sturdyc-early-refresh",
		about: fmt.Sprintf("sturdyc GetOrFetch, ttl 2×TTL, WithEarlyRefreshes(TTL, TTL, 2×TTL, %v): a read past TTL refreshes in the background",
			sturdycRetryBaseDelay),
		open: openSturdycExpiry,
	},
}

func expiryNames() []string {
	out := make([]string, len(expiryContenders))
	for i, c := range expiryContenders {
		out[i] = c.name
	}
	return out
}

func expiryWorkload(cfg config) string {
	return fmt.Sprintf("expiry/ttl%v/%dg", cfg.ttl, cfg.readers)
}

func openMemoExpiry(opts func(ttl time.Duration) memo.Options) func(config, func(context.Context) (*version, error), func() bool) (*expirySession, error) {
	return func(cfg config, load func(context.Context) (*version, error), _ func() bool) (*expirySession, error) {
		st, err := memory.NewStore(memory.StoreOptions{})
		if err != nil {
			return nil, err
		}
		c, err := cachekit.New[*version](st, cachekit.Options{})
		if err != nil {
			return nil, errors.Join(err, st.Close())
		}
		f, err := memo.New(c, "expiry.get", func(ctx context.Context, _ string) (*version, error) { return load(ctx) }, opts(cfg.ttl))
		if err != nil {
			return nil, errors.Join(err, c.Close())
		}
		return &expirySession{
			call:  func(ctx context.Context) (*version, error) { return f.Call(ctx, "k") },
			close: func() error { return errors.Join(f.Close(), c.Close()) }, // Close waits for the refreshes
		}, nil
	}
}

func openSturdycExpiry(cfg config, load func(context.Context) (*version, error), idle func() bool) (*expirySession, error) {
	c := sturdyc.New[*version](1024, 1, 2*cfg.ttl, 10, sturdyc.WithNoContinuousEvictions(),
		sturdyc.WithEarlyRefreshes(cfg.ttl, cfg.ttl, 2*cfg.ttl, sturdycRetryBaseDelay))
	return &expirySession{
		call: func(ctx context.Context) (*version, error) { return c.GetOrFetch(ctx, "k", load) },
		// sturdyc has no Close: wait until no computation runs (its
		// background refreshes call load).
		close: func() error {
			deadline := time.Now().Add(workerTimeout)
			for !idle() {
				if time.Now().After(deadline) {
					return errors.New("sturdyc: a refresh still runs")
				}
				time.Sleep(time.Millisecond)
			}
			return nil
		},
	}, nil
}

// expiryRound runs every contender once, in an order rotated by k.
func expiryRound(ctx context.Context, cfg config, res *results, k int) (problems []string) {
	w := expiryWorkload(cfg)
	for _, name := range rotate(expiryNames(), cfg.contenders, k) {
		ec := expiryContenders[indexOf(expiryNames(), name)]
		c := cell{kind: wExpiry, workload: w, contender: name}
		f, firstErr, err := expiryRun(ctx, cfg, ec)
		if err != nil {
			res.note(c, err.Error())
			problems = append(problems, fmt.Sprintf("%s %s: %v", w, name, err))
			continue
		}
		if firstErr != "" {
			res.note(c, "first error: "+firstErr)
			problems = append(problems, fmt.Sprintf("%s %s: %v reads failed: %s", w, name, f["errors"], firstErr))
		}
		res.add(c, f)
		logf(cfg, "%s %-26s %.2f computations/TTL, %.1f waiting/TTL, max burst %v, p99 %.1f µs, max %.2f ms",
			w, name, f["computations-per-ttl"], f["waiting-per-ttl"], f["max-burst"], f["read-p99"], f["read-max"])
	}
	return problems
}

// readerStats is what one reader saw.
type readerStats struct {
	reads    int
	errors   int
	firstErr string
	lat      []int64         // ns per read
	waitedOn map[int64]int64 // computation seq → reads that waited for it
}

// expiryRun computes the value once (untimed), then lets cfg.readers
// goroutines read it for cfg.periods TTLs, and summarizes: computations
// started during the reads per TTL and per expiry (see episodes), reads
// that waited for a computation per TTL, the most reads that waited for one
// computation, reads/s, and the read latency's p99 and max.
func expiryRun(ctx context.Context, cfg config, ec expiryContender) (f figures, firstErr string, err error) {
	var (
		seq      atomic.Int64
		inflight atomic.Int64
		mu       sync.Mutex  // protects starts
		starts   []time.Time // of every computation
	)
	load := func(ctx context.Context) (*version, error) {
		inflight.Add(1)
		defer inflight.Add(-1)
		v := &version{seq: seq.Add(1)}
		now := time.Now()
		mu.Lock()
		starts = append(starts, now)
		mu.Unlock()
		t := time.NewTimer(cfg.compute)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		v.finished = time.Now() // before any reader can see v
		return v, nil
	}
	s, err := ec.open(cfg, load, func() bool { return inflight.Load() == 0 })
	if err != nil {
		return nil, "", fmt.Errorf("open: %w", err)
	}
	closed := false
	defer func() {
		if !closed {
			err = errors.Join(err, s.close())
		}
	}()
	if _, err := s.call(ctx); err != nil {
		return nil, "", fmt.Errorf("first call: %w", err)
	}

	stats := make([]readerStats, cfg.readers)
	t0 := time.Now()
	deadline := t0.Add(time.Duration(cfg.periods) * cfg.ttl)
	var wg sync.WaitGroup
	for i := range stats {
		st := &stats[i]
		st.waitedOn = map[int64]int64{}
		wg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil {
				r0 := time.Now()
				v, err := s.call(ctx)
				st.lat = append(st.lat, time.Since(r0).Nanoseconds())
				st.reads++
				switch {
				case err != nil:
					if st.errors++; st.firstErr == "" {
						st.firstErr = err.Error()
					}
				case v == nil:
					if st.errors++; st.firstErr == "" {
						st.firstErr = errWrongValue.Error()
					}
				case v.finished.After(r0):
					st.waitedOn[v.seq]++
				}
				if cfg.readPause > 0 {
					time.Sleep(cfg.readPause)
				}
			}
		})
	}
	wg.Wait()
	t1 := time.Now()
	closed = true
	if err := s.close(); err != nil {
		return nil, "", err
	}
	mu.Lock()
	var inRun []time.Duration // computations started during the reads, from t0
	for _, st := range starts {
		if !st.Before(t0) && st.Before(t1) {
			inRun = append(inRun, st.Sub(t0))
		}
	}
	mu.Unlock()
	f, firstErr = summarizeReads(stats, t1.Sub(t0), cfg.ttl)
	f["computations-per-ttl"] = float64(len(inRun)) / (float64(t1.Sub(t0)) / float64(cfg.ttl))
	if n := episodes(inRun, cfg.compute); n > 0 {
		f["computations-per-expiry"] = float64(len(inRun)) / float64(n)
	}
	return f, firstErr, nil
}

// episodes counts the groups of computation starts in which each start
// comes within gap of the one before: the computations one expiry (or one
// early refresh) caused.
func episodes(starts []time.Duration, gap time.Duration) int {
	s := slices.Clone(starts)
	slices.Sort(s)
	n := 0
	for i, t := range s {
		if i == 0 || t-s[i-1] > gap {
			n++
		}
	}
	return n
}

// summarizeReads turns the readers' stats over a run of length d into the
// expiry figures of the reads.
func summarizeReads(stats []readerStats, d, ttl time.Duration) (figures, string) {
	var lat []int64
	reads, failed, first := 0, 0, ""
	bySeq := map[int64]int64{}
	var waited int64
	for _, st := range stats {
		lat = append(lat, st.lat...)
		reads += st.reads
		failed += st.errors
		if first == "" {
			first = st.firstErr
		}
		for s, n := range st.waitedOn {
			bySeq[s] += n
			waited += n
		}
	}
	var burst int64
	for _, n := range bySeq {
		burst = max(burst, n)
	}
	slices.Sort(lat)
	periods := float64(d) / float64(ttl)
	return figures{
		"waiting-per-ttl": float64(waited) / periods,
		"max-burst":       float64(burst),
		"reads":           float64(reads) / d.Seconds(),
		"read-p99":        report.Percentile(lat, 0.99),
		"read-max":        report.Percentile(lat, 1) / 1e3,
		"errors":          float64(failed),
	}, first
}
