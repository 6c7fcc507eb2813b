package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cachekit/cachekit/httpcache"
	"github.com/cachekit/cachekit/memo"
	"github.com/cachekit/cachekit/qcache"
)

// maxInvalidations is how many recent invalidations /debug/cache lists.
const maxInvalidations = 20

// Invalidation is one invalidation a cache layer reported, as
// /debug/cache lists it.
type Invalidation struct {
	At     time.Time
	Layer  string // "query", "memo", …
	Kind   string // the layer's name for it: "invalidate-rows", "invalidate-table", …
	What   string // the statement that wrote, or the key or tags dropped
	Tables []string
}

// Counts are a cache layer's read counters.
type Counts struct {
	Hits, Misses uint64
}

// Ratio is the share of reads that were hits, in [0, 1]; 0 with no read.
func (c Counts) Ratio() float64 {
	if c.Hits+c.Misses == 0 {
		return 0
	}
	return float64(c.Hits) / float64(c.Hits+c.Misses)
}

// recorder keeps what the cache layers' observers report for /debug/cache:
// the memoized functions' counts and the recent invalidations of every
// layer. The query cache's counts come from its policy's Stats.
type recorder struct {
	now func() time.Time

	mu sync.Mutex // protects the fields below
	// memo counts the memoized functions' reads by function name.
	memo map[string]Counts
	// views counts the view cache's reads; fragments the sidebar
	// fragment's.
	views, fragments Counts
	// recent is a ring of the last maxInvalidations invalidations; next is
	// where the next one goes, and n how many it holds.
	recent  [maxInvalidations]Invalidation
	next, n int
}

func newRecorder() *recorder {
	return &recorder{now: time.Now, memo: make(map[string]Counts)}
}

// invalidated records one invalidation.
func (r *recorder) invalidated(inv Invalidation) {
	if inv.At.IsZero() {
		inv.At = r.now()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recent[r.next] = inv
	r.next = (r.next + 1) % len(r.recent)
	r.n = min(r.n+1, len(r.recent))
}

// reset forgets the recorded invalidations and counts: the app calls it
// once the schema and seed content are in place, so that /debug/cache
// starts with what the requests did.
func (r *recorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recent = [maxInvalidations]Invalidation{}
	r.next, r.n = 0, 0
	clear(r.memo)
	r.views, r.fragments = Counts{}, Counts{}
}

// invalidations returns the recorded invalidations, newest first.
func (r *recorder) invalidations() []Invalidation {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Invalidation, 0, r.n)
	for i := 1; i <= r.n; i++ {
		out = append(out, r.recent[(r.next-i+len(r.recent))%len(r.recent)])
	}
	return out
}

// counts returns a copy of the view, fragment and memoized functions'
// counts.
func (r *recorder) counts() (views, fragments Counts, memo map[string]Counts) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.views, r.fragments, maps.Clone(r.memo)
}

// count adds a hit or a miss to c.
func (c *Counts) count(hit bool) {
	if hit {
		c.Hits++
	} else {
		c.Misses++
	}
}

// fragmentObserver counts the sidebar fragment's hits and misses (a
// render because its rows changed is a miss).
func (r *recorder) fragmentObserver() memo.Observer {
	return memo.ObserverFunc(func(e memo.Event) {
		if e.Func != "sidebar" || (e.Kind != memo.Hit && e.Kind != memo.Miss) {
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.fragments.count(e.Kind == memo.Hit)
	})
}

// viewObserver counts the view cache's hits and misses and records its
// invalidations (of URLs, by unsafe requests; the invalidations by rows
// are the query cache's).
func (r *recorder) viewObserver() httpcache.Observer {
	return httpcache.ObserverFunc(func(e httpcache.Event) {
		switch e.Kind {
		case httpcache.Hit, httpcache.StaleServed, httpcache.Miss:
			r.mu.Lock()
			defer r.mu.Unlock()
			r.views.count(e.Kind != httpcache.Miss)
		case httpcache.Invalidated:
			r.invalidated(Invalidation{Layer: "view", Kind: "invalidate-" + e.Reason, What: e.URL})
		}
	})
}

// queryObserver records the query cache's invalidations.
func (r *recorder) queryObserver() qcache.Observer {
	return qcache.ObserverFunc(func(e qcache.Event) {
		switch e.Kind {
		case qcache.InvalidateRows, qcache.InvalidateTable, qcache.InvalidateGlobal:
			what := strings.Join(strings.Fields(e.SQL), " ")
			if what == "" {
				what = "(manual)"
			}
			r.invalidated(Invalidation{Layer: "query", Kind: e.Kind.String(), What: what, Tables: e.Tables})
		}
	})
}

// memoObserver counts the memoized functions' hits and misses.
func (r *recorder) memoObserver() memo.Observer {
	return memo.ObserverFunc(func(e memo.Event) {
		var hit bool
		switch e.Kind {
		case memo.Hit, memo.StaleServed, memo.NegativeHit:
			hit = true
		case memo.Miss:
		default:
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		c := r.memo[e.Func]
		c.count(hit)
		r.memo[e.Func] = c
	})
}

// DebugLayer is one cache layer's line on /debug/cache.
type DebugLayer struct {
	Name   string
	Hits   uint64
	Misses uint64
	Ratio  float64
	Note   string
}

// DebugState is what /debug/cache shows and /debug/cache.json returns.
type DebugState struct {
	Backend       string
	Layers        []DebugLayer
	Invalidations []Invalidation
	At            time.Time
}

// debugState collects the layers' counters and the recent invalidations.
func (a *App) debugState() DebugState {
	s := DebugState{Backend: a.backend, At: time.Now(), Invalidations: a.debug.invalidations()}
	now, base := a.policy.Stats(), a.qbase
	uncached := func(s qcache.Stats) uint64 {
		return s.UncachedParse + s.UncachedNotCacheable + s.UncachedTooLarge + s.UncachedNotOptedIn
	}
	q := Counts{Hits: now.Hits - base.Hits, Misses: now.Misses - base.Misses}
	s.Layers = append(s.Layers, DebugLayer{Name: "query cache (qcache)", Hits: q.Hits, Misses: q.Misses, Ratio: q.Ratio(),
		Note: fmt.Sprintf("stored %d, uncached %d; invalidations: rows %d, tables %d, global %d",
			now.Stored-base.Stored, uncached(now)-uncached(base), now.InvalidatedRows-base.InvalidatedRows,
			now.InvalidatedTables-base.InvalidatedTables, now.InvalidatedGlobal-base.InvalidatedGlobal)})
	views, frags, mc := a.debug.counts()
	s.Layers = append(s.Layers,
		DebugLayer{Name: "view cache (httpcache)", Hits: views.Hits, Misses: views.Misses, Ratio: views.Ratio(),
			Note: "whole pages; Cache-Status on every response"},
		DebugLayer{Name: "fragment: sidebar", Hits: frags.Hits, Misses: frags.Misses, Ratio: frags.Ratio()})
	for _, n := range slices.Sorted(maps.Keys(mc)) {
		c := mc[n]
		s.Layers = append(s.Layers, DebugLayer{Name: "memoized " + n, Hits: c.Hits, Misses: c.Misses, Ratio: c.Ratio()})
	}
	return s
}
