// Package prometheus exports the metrics of cachekit's caches to
// Prometheus (github.com/prometheus/client_golang). It lives in its own
// module so that the cachekit module does not depend on client_golang.
//
// A [Metrics] is a prometheus.Collector around a [metrics.Set], whose Memo
// and Memory methods, with qcachemetrics.Observer for a qcache policy, give
// the caches their event sources, each under a cache name (the "cache"
// label):
//
//	m, err := prometheus.New(reg, prometheus.Options{})
//	f := memo.Must(cache, "users.Get", load, memo.Options{Observer: m.Memo("users")})
//	policy, err := qcache.NewGranularPolicy(qcache.GranularOptions{..., Observer: qcachemetrics.Observer(&m.Set, "sql")})
//	local := memory.Must(memory.Options[string, *User]{Stats: true, OnEvict: prometheus.OnEvict[string, *User](m, "local")})
//	m.Memory("local", local)
//	load = prometheus.TimeLoad(m, "users", load) // the load latency histogram
//
// Sources that share a cache name are summed. Importers usually rename
// the package (import cacheprom "github.com/cachekit/cachekit/metrics/prometheus"),
// since client_golang's package has the same name.
//
// # Metrics
//
// Every metric has the label cache.
//
//   - cachekit_hits_total (counter): reads served a usable value: memo Hit
//     and NegativeHit, qcache Hit, memory.Cache Stats().Hits.
//   - cachekit_misses_total (counter): reads that found nothing usable and
//     load: memo Miss, qcache Miss, memory.Cache Stats().Misses. Stale
//     values served are not misses.
//   - cachekit_stale_served_total (counter, label reason): stale values
//     served by a memo.Func, reason "revalidate" (inside the
//     stale-while-revalidate window, a refresh runs in the background) or
//     "error" (inside the stale-if-error window, the refresh failed).
//   - cachekit_evictions_total (counter, label reason): entries that left a
//     memory.Cache, by memory.Reason: "evicted" (size bound), "expired",
//     "deleted", "replaced", "cleared", "rejected".
//   - cachekit_invalidations_total (counter, label kind): invalidations
//     applied: qcache's "rows", "table", "global", httpcache's "url" and
//     "tag".
//   - cachekit_uncached_total (counter, label reason): qcache reads
//     neither served from the cache nor stored in it, by qcache.Reason:
//     "parse", "not-cacheable", "too-large", "not-opted-in".
//   - cachekit_events_total (counter, label kind): every event of a memo or
//     qcache observer, by its kind's name ("hit", "coalesced",
//     "refresh-ok", "store-error", "stored", "dropped", "uncached", ...);
//     a kind appears once it has been seen.
//   - cachekit_entries (gauge): the entries a memory.Cache holds.
//   - cachekit_load_duration_seconds (histogram, label result "ok" or
//     "error"): the duration of the loads wrapped by [TimeLoad], with
//     buckets from 10µs to about 10s by default (metrics.LoadBuckets,
//     Options.Buckets).
//
// # Caveats
//
// A source is never removed: a Metrics keeps reading a memory.Cache given
// to [metrics.Set.Memory] (and keeps it reachable) for as long as the Metrics
// lives, and series never disappear. Give each cache a Metrics that lives
// as long as the process, or as long as its caches.
//
// The load histogram counts what [TimeLoad] wraps, not the observers'
// events: memo reports a compute time only for refreshes, qcache none.
// Wrap the function given to memo.New (it then times misses and
// refreshes) or the loader given to memory.Cache.GetOrLoad.
package prometheus

import (
	"context"
	"fmt"
	"time"

	prom "github.com/prometheus/client_golang/prometheus"

	"github.com/cachekit/cachekit/memory"
	"github.com/cachekit/cachekit/metrics"
)

// Options configures [New]. The zero value is valid.
type Options struct {
	// Buckets are the upper bounds of the load duration histogram, in
	// seconds, increasing. Default: metrics.LoadBuckets.
	Buckets []float64

	// ConstLabels are added to every metric (an instance or service name,
	// say). Default: none.
	ConstLabels prom.Labels
}

// Metrics counts the events of cachekit's caches and exports them as a
// prometheus.Collector. It is safe for concurrent use.
type Metrics struct {
	metrics.Set // the event sources: Memo, Memory (and qcachemetrics.Observer)

	descs [metrics.NumFamilies]*prom.Desc
	types [metrics.NumFamilies]prom.ValueType
	loads *prom.HistogramVec
}

var _ prom.Collector = (*Metrics)(nil)

// New returns a Metrics, registered with reg unless reg is nil (then
// register it yourself). It fails when reg already holds metrics of the
// same names and labels (another Metrics, say).
func New(reg prom.Registerer, opts Options) (*Metrics, error) {
	buckets := opts.Buckets
	if buckets == nil {
		buckets = metrics.LoadBuckets
	}
	if err := metrics.CheckBuckets(buckets); err != nil {
		return nil, fmt.Errorf("prometheus: Options.Buckets: %w", err)
	}
	m := &Metrics{
		loads: prom.NewHistogramVec(prom.HistogramOpts{
			Name:        "cachekit_load_duration_seconds",
			Help:        "Duration of the cache loads wrapped by TimeLoad, by result (ok, error).",
			Buckets:     buckets,
			ConstLabels: opts.ConstLabels,
		}, []string{"cache", "result"}),
	}
	family := func(f metrics.Family, name, help string, t prom.ValueType, label ...string) {
		m.descs[f] = prom.NewDesc(name, help, append([]string{"cache"}, label...), opts.ConstLabels)
		m.types[f] = t
	}
	family(metrics.Hits, "cachekit_hits_total", "Reads served a usable value from the cache.", prom.CounterValue)
	family(metrics.Misses, "cachekit_misses_total", "Reads that found nothing usable in the cache and load.", prom.CounterValue)
	family(metrics.StaleServed, "cachekit_stale_served_total", "Stale values served, by reason (revalidate, error).", prom.CounterValue, "reason")
	family(metrics.Evictions, "cachekit_evictions_total", "Entries that left an in-process cache, by reason.", prom.CounterValue, "reason")
	family(metrics.Invalidations, "cachekit_invalidations_total", "Invalidations applied, by kind (rows, table, global: query cache; url, tag: response cache).", prom.CounterValue, "kind")
	family(metrics.Uncached, "cachekit_uncached_total", "Query cache reads neither served from the cache nor stored in it, by reason.", prom.CounterValue, "reason")
	family(metrics.Events, "cachekit_events_total", "Events observed, by kind.", prom.CounterValue, "kind")
	family(metrics.Entries, "cachekit_entries", "Entries held by an in-process cache.", prom.GaugeValue)
	if reg != nil {
		if err := reg.Register(m); err != nil {
			return nil, fmt.Errorf("prometheus: register the cachekit metrics: %w", err)
		}
	}
	return m, nil
}

// Describe sends the descriptors of every metric (prometheus.Collector).
func (m *Metrics) Describe(ch chan<- *prom.Desc) {
	for _, d := range m.descs {
		ch <- d
	}
	m.loads.Describe(ch)
}

// Collect reads every source and sends the metrics (prometheus.Collector).
func (m *Metrics) Collect(ch chan<- prom.Metric) {
	for _, s := range m.Snapshot() {
		labels := []string{s.Cache}
		if s.Family.Labeled() {
			labels = append(labels, s.Label)
		}
		metric, err := prom.NewConstMetric(m.descs[s.Family], m.types[s.Family], float64(s.Value), labels...)
		if err != nil { // a cache name that is not valid UTF-8: the gathering reports it
			metric = prom.NewInvalidMetric(m.descs[s.Family], err)
		}
		ch <- metric
	}
	m.loads.Collect(ch)
}

// OnEvict returns a function for memory.Options.OnEvict that counts the
// evictions of a memory.Cache by reason under the cache name cache.
func OnEvict[K comparable, V any](m *Metrics, cache string) func(K, V, memory.Reason) {
	return metrics.OnEvict[K, V](&m.Set, cache)
}

// TimeLoad wraps load so that every call is observed in the load duration
// histogram under the cache name cache, with result "ok" or "error". Its
// shape is that of a memo.Func's function and of memory.Cache.GetOrLoad's
// loader.
func TimeLoad[K, V any](m *Metrics, cache string, load func(context.Context, K) (V, error)) func(context.Context, K) (V, error) {
	ok, failed := m.loads.WithLabelValues(cache, "ok"), m.loads.WithLabelValues(cache, "error")
	return func(ctx context.Context, k K) (V, error) {
		start := time.Now()
		v, err := load(ctx, k)
		h := ok
		if err != nil {
			h = failed
		}
		h.Observe(time.Since(start).Seconds())
		return v, err
	}
}
