// Package metrics counts the events of cachekit's caches by cache name, for
// any metrics system. The adapters metrics/prometheus and metrics/otel (each
// its own module, so that this one depends on neither) export a [Set]'s
// counters under their ecosystem's names; [Set.Snapshot] serves any other
// exporter (expvar, statsd, logs).
//
// A [Set] gives each cache an event source: [Set.Memo] returns a memo
// observer, [Set.HTTPCache] an httpcache observer, [OnEvict] a memory.Options.OnEvict function, [Set.Memory]
// reads a memory.Cache's Stats, and metrics/qcachemetrics.Observer returns
// a qcache observer (in its own package, so that importing this one does
// not build qcache's SQL parsers). Each source keeps its own
// atomic counters, indexed by event kind, so that an event costs one or
// two atomic adds and no allocation; Snapshot reads them all and sums the
// sources that share a cache name. Adding an event source is a function
// that maps its event kinds to the [Family] values over [Set.Source].
//
// # Caveats
//
// A source is never removed: a Set keeps reading a memory.Cache given to
// [Set.Memory] (and keeps it reachable) for as long as the Set lives.
package metrics

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cachekit/cachekit/httpcache"
	"github.com/cachekit/cachekit/memo"
	"github.com/cachekit/cachekit/memory"
)

// Family is a metric family; the adapters map each to their own names.
type Family uint8

// The families. The Label of a [Sample] is empty unless stated.
const (
	// Hits: reads served a usable value (memo Hit and NegativeHit, qcache
	// Hit, memory.Stats Hits, httpcache Hit).
	Hits Family = iota
	// Misses: reads that found nothing usable and load (memo Miss, qcache
	// Miss, memory.Stats Misses, httpcache Miss).
	Misses
	// StaleServed: stale values served; Label is "revalidate" (inside the
	// stale-while-revalidate window) or "error" (the refresh failed).
	StaleServed
	// Evictions: entries that left a memory.Cache; Label is the
	// memory.Reason ("evicted", "expired", ...).
	Evictions
	// Invalidations: invalidations applied; Label is "rows", "table" or
	// "global" (qcache), or "url" or "tag" (httpcache).
	Invalidations
	// Uncached: qcache reads neither served from the cache nor stored in
	// it; Label is the qcache.Reason ("parse", "not-cacheable",
	// "too-large", "not-opted-in").
	Uncached
	// Events: every observed event; Label is its kind's name ("hit",
	// "refresh-ok", "invalidate-rows", ...).
	Events
	// Entries: a gauge, the entries a memory.Cache holds.
	Entries

	NumFamilies // the number of families, for arrays indexed by Family
)

// Labeled reports whether the series of f have a Label.
func (f Family) Labeled() bool {
	return f != Hits && f != Misses && f != Entries
}

// Sample is the value of one series.
type Sample struct {
	Family Family
	Cache  string
	Label  string
	Value  uint64
}

// source is one event source of a Set.
type source interface {
	// collect passes every series of the source to emit.
	collect(emit func(f Family, label string, v uint64))
	cache() string
}

// Set is the event sources of an exporter. Its zero value is ready to use;
// it is safe for concurrent use and must not be copied after first use.
type Set struct {
	mu      sync.Mutex // protects sources
	sources []source
}

func (s *Set) add(src source) {
	s.mu.Lock()
	s.sources = append(s.sources, src)
	s.mu.Unlock()
}

// Snapshot returns the current value of every series, summed over the
// sources that share a cache name, sorted by family, cache and label.
func (s *Set) Snapshot() []Sample {
	s.mu.Lock()
	sources := slices.Clone(s.sources)
	s.mu.Unlock()
	type id struct {
		f            Family
		cache, label string
	}
	sums := make(map[id]uint64)
	for _, src := range sources { // outside the lock: Stats may take the cache's
		name := src.cache()
		src.collect(func(f Family, label string, v uint64) {
			sums[id{f, name, label}] += v
		})
	}
	out := make([]Sample, 0, len(sums))
	for k, v := range sums {
		out = append(out, Sample{Family: k.f, Cache: k.cache, Label: k.label, Value: v})
	}
	slices.SortFunc(out, func(a, b Sample) int {
		return cmp.Or(cmp.Compare(a.Family, b.Family), cmp.Compare(a.Cache, b.Cache), cmp.Compare(a.Label, b.Label))
	})
	return out
}

// Series reports the series of a [Source] from its counts: kind(k) is the
// number of events of kind k, sub(i) the number counted under the second
// index i; emit passes one series.
type Series func(kind, sub func(uint8) uint64, emit func(Family, string, uint64))

// Source counts the events of one observer by kind (memo's, qcache's and
// httpcache's kinds are uint8), and some of them by a second index whose
// meaning the source defines (memo: why a stale value was served; qcache:
// why a read was uncached). Observers of other packages build on it: see
// [Set.Source].
type Source struct {
	name     string
	kinds    [256]atomic.Uint64
	sub      [256]atomic.Uint64
	series   Series
	kindName func(uint8) string
}

// Source adds an event source named cache, for an observer of a package
// this one does not import (metrics/qcachemetrics is one). kindName names
// the kinds for the Events family (every kind seen gets a series); series
// maps the counts to the other families. The observer calls [Source.Count]
// for each event.
func (s *Set) Source(cache string, kindName func(uint8) string, series Series) *Source {
	o := &Source{name: cache, series: series, kindName: kindName}
	s.add(o)
	return o
}

// NoSub is the second index of an event counted by kind only.
const NoSub = -1

// Count counts one event of kind k and, unless sub is NoSub, one under the
// second index sub (0 to 255). It is safe for concurrent use.
func (o *Source) Count(k uint8, sub int) {
	o.kinds[k].Add(1)
	if sub != NoSub {
		o.sub[uint8(sub)].Add(1)
	}
}

func (o *Source) cache() string { return o.name }

func (o *Source) collect(emit func(Family, string, uint64)) {
	o.series(func(k uint8) uint64 { return o.kinds[k].Load() }, func(i uint8) uint64 { return o.sub[i].Load() }, emit)
	for i := range o.kinds {
		if v := o.kinds[i].Load(); v > 0 {
			emit(Events, o.kindName(uint8(i)), v)
		}
	}
}

// The sub indexes of memo's StaleServed events.
const (
	staleRevalidate = iota // inside the stale-while-revalidate window
	staleError             // in place of a failed refresh
)

// Memo returns an observer for memo.Options.Observer that counts the
// events of the cache named cache.
func (s *Set) Memo(cache string) memo.Observer {
	o := s.Source(cache, func(i uint8) string { return memo.EventKind(i).String() },
		func(kind, sub func(uint8) uint64, emit func(Family, string, uint64)) {
			emit(Hits, "", kind(uint8(memo.Hit))+kind(uint8(memo.NegativeHit)))
			emit(Misses, "", kind(uint8(memo.Miss)))
			emit(StaleServed, "revalidate", sub(staleRevalidate))
			emit(StaleServed, "error", sub(staleError))
		})
	return memo.ObserverFunc(func(e memo.Event) {
		sub := NoSub
		if e.Kind == memo.StaleServed {
			sub = staleRevalidate
			if e.Err != nil {
				sub = staleError
			}
		}
		o.Count(uint8(e.Kind), sub)
	})
}

// The sub indexes of httpcache's events besides StaleServed's.
const (
	invalidatedURL = staleError + 1 + iota // an Invalidated event of a URL
	invalidatedTag                         // an Invalidated event of a tag
)

// HTTPCache returns an observer for httpcache.Options.Observer that counts
// the events of the response cache named cache: hits, misses, stale
// responses served (label "error" when served in place of a failed
// response, else "revalidate") and invalidations by URL or by tag (the
// tag's name is not a label: the number of series stays bounded).
func (s *Set) HTTPCache(cache string) httpcache.Observer {
	o := s.Source(cache, func(i uint8) string { return httpcache.EventKind(i).String() },
		func(kind, sub func(uint8) uint64, emit func(Family, string, uint64)) {
			emit(Hits, "", kind(uint8(httpcache.Hit)))
			emit(Misses, "", kind(uint8(httpcache.Miss)))
			emit(StaleServed, "revalidate", sub(staleRevalidate))
			emit(StaleServed, "error", sub(staleError))
			emit(Invalidations, "url", sub(invalidatedURL))
			emit(Invalidations, "tag", sub(invalidatedTag))
		})
	return httpcache.ObserverFunc(func(e httpcache.Event) {
		sub := NoSub
		switch e.Kind {
		case httpcache.StaleServed:
			sub = staleRevalidate
			if e.Err != nil || e.Status >= 500 {
				sub = staleError
			}
		case httpcache.Invalidated:
			sub = invalidatedURL
			if strings.HasPrefix(e.Reason, "tag:") {
				sub = invalidatedTag
			}
		}
		o.Count(uint8(e.Kind), sub)
	})
}

// Evictions returns a counter of the evictions of the memory.Cache named
// cache, by reason; [OnEvict] adapts it to memory.Options.OnEvict.
func (s *Set) Evictions(cache string) func(memory.Reason) {
	o := &evictSource{name: cache}
	s.add(o)
	return func(r memory.Reason) {
		if r > 0 && int(r) < len(o.reasons) {
			o.reasons[r].Add(1)
		}
	}
}

// OnEvict returns a function for memory.Options.OnEvict that counts the
// evictions of the cache named cache by reason.
func OnEvict[K comparable, V any](s *Set, cache string) func(K, V, memory.Reason) {
	count := s.Evictions(cache)
	return func(_ K, _ V, r memory.Reason) { count(r) }
}

// evictReasons is the largest memory.Reason counted plus one.
const evictReasons = int(memory.ReasonRejected) + 1

type evictSource struct {
	name    string
	reasons [evictReasons]atomic.Uint64
}

func (o *evictSource) cache() string { return o.name }

func (o *evictSource) collect(emit func(Family, string, uint64)) {
	for r := memory.ReasonEvicted; int(r) < evictReasons; r++ {
		emit(Evictions, r.String(), o.reasons[r].Load())
	}
}

// StatsReader is what [Set.Memory] reads: a *memory.Cache of any type.
type StatsReader interface {
	Stats() memory.Stats
	Len() int
}

// Memory adds the hits and misses of c's Stats (c must be created with
// memory.Options.Stats) and its entry count, read at every snapshot, under
// the name cache. Evictions are not read from Stats: count them with
// [OnEvict], which also gives the reasons Stats has no counter for.
func (s *Set) Memory(cache string, c StatsReader) {
	s.add(&memorySource{name: cache, c: c})
}

type memorySource struct {
	name string
	c    StatsReader
}

func (o *memorySource) cache() string { return o.name }

func (o *memorySource) collect(emit func(Family, string, uint64)) {
	st := o.c.Stats()
	emit(Hits, "", st.Hits)
	emit(Misses, "", st.Misses)
	emit(Entries, "", uint64(o.c.Len()))
}

// LoadBuckets are the adapters' default bucket boundaries of the load
// duration histogram, in seconds: 10µs to about 10s, each 2.5 times the
// last (16 boundaries), which spans an in-process computation, a SQLite
// point query and a slow remote call.
var LoadBuckets = []float64{
	10e-6, 25e-6, 62.5e-6, 156.25e-6, 390.625e-6, 976.5625e-6,
	2.44140625e-3, 6.103515625e-3, 15.2587890625e-3, 38.14697265625e-3, 95.367431640625e-3,
	238.4185791015625e-3, 596.04644775390625e-3, 1.490116119384765625, 3.7252902984619140625, 9.31322574615478515625,
}

// CheckBuckets returns an error unless b holds at least one boundary, each
// finite and greater than the one before.
func CheckBuckets(b []float64) error {
	if len(b) == 0 {
		return errors.New("metrics: no bucket boundaries")
	}
	for i, v := range b {
		if math.IsNaN(v) || math.IsInf(v, 0) || i > 0 && v <= b[i-1] {
			return fmt.Errorf("metrics: bucket boundary %d (%g) is not finite and above the one before", i, v)
		}
	}
	return nil
}
