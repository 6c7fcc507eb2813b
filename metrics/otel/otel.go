// Package otel exports the metrics of cachekit's caches through
// OpenTelemetry (go.opentelemetry.io/otel/metric). It lives in its own
// module so that the cachekit module does not depend on OpenTelemetry.
//
// [New] creates the instruments on a meter of the given MeterProvider. A
// [Metrics] embeds a [metrics.Set], whose Memo and Memory methods, with
// qcachemetrics.Observer for a qcache policy, give the caches their event
// sources, each under a cache name (the cachekit.cache.name attribute):
//
//	m, err := otel.New(provider, otel.Options{})
//	defer m.Close()
//	f := memo.Must(cache, "users.Get", load, memo.Options{Observer: m.Memo("users")})
//	policy, err := qcache.NewGranularPolicy(qcache.GranularOptions{..., Observer: qcachemetrics.Observer(&m.Set, "sql")})
//	local := memory.Must(memory.Options[string, *User]{Stats: true, OnEvict: otel.OnEvict[string, *User](m, "local")})
//	m.Memory("local", local)
//	load = otel.TimeLoad(m, "users", load) // the load duration histogram
//
// Sources that share a cache name are summed. Importers usually rename
// the package (import cacheotel "github.com/cachekit/cachekit/metrics/otel"),
// since OpenTelemetry's API package has the same name.
//
// # Metrics
//
// The meter's instrumentation scope is this package's import path. Every
// data point has the attribute cachekit.cache.name. The counters are
// asynchronous: the sources count with atomic adds and a callback reports
// the totals at each collection (cumulative).
//
//   - cachekit.hits (counter, {hit}): reads served a usable value: memo
//     Hit and NegativeHit, qcache Hit, memory.Cache Stats().Hits.
//   - cachekit.misses (counter, {miss}): reads that found nothing usable
//     and load: memo Miss, qcache Miss, memory.Cache Stats().Misses. Stale
//     values served are not misses.
//   - cachekit.stale_served (counter, {read}; attribute
//     cachekit.stale.reason): stale values served by a memo.Func,
//     "revalidate" (inside the stale-while-revalidate window, a refresh runs
//     in the background) or "error" (inside the stale-if-error window, the
//     refresh failed).
//   - cachekit.evictions (counter, {entry}; attribute
//     cachekit.eviction.reason): entries that left a memory.Cache, by
//     memory.Reason: "evicted" (size bound), "expired", "deleted",
//     "replaced", "cleared", "rejected".
//   - cachekit.invalidations (counter, {invalidation}; attribute
//     cachekit.invalidation.kind): invalidations applied: qcache's
//     "rows", "table", "global", httpcache's "url" and "tag".
//   - cachekit.uncached (counter, {read}; attribute
//     cachekit.uncached.reason): qcache reads neither served from the cache
//     nor stored in it, by qcache.Reason: "parse", "not-cacheable",
//     "too-large", "not-opted-in".
//   - cachekit.events (counter, {event}; attribute cachekit.event.kind):
//     every event of a memo or qcache observer, by its kind's name ("hit",
//     "coalesced", "refresh-ok", "store-error", "stored", "dropped",
//     "uncached", ...); a kind appears once it has been seen.
//   - cachekit.entries (up-down counter, {entry}): the entries a
//     memory.Cache holds.
//   - cachekit.load.duration (histogram, s; attribute cachekit.load.result,
//     "ok" or "error"): the duration of the loads wrapped by [TimeLoad],
//     with explicit bucket boundaries from 10µs to about 10s by default
//     (metrics.LoadBuckets, Options.Buckets; a View of the MeterProvider
//     may override them).
//
// # Caveats
//
// A source is never removed: a Metrics keeps reading a memory.Cache given
// to [metrics.Set.Memory] (and keeps it reachable) until [Metrics.Close], and
// series never disappear before it.
//
// The load histogram records what [TimeLoad] wraps, not the observers'
// events: memo reports a compute time only for refreshes, qcache none.
// Wrap the function given to memo.New (it then times misses and
// refreshes) or the loader given to memory.Cache.GetOrLoad.
package otel

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/cachekit/cachekit/memory"
	"github.com/cachekit/cachekit/metrics"
)

// ScopeName is the instrumentation scope of the meter.
const ScopeName = "github.com/cachekit/cachekit/metrics/otel"

// CacheKey is the attribute of every data point: the cache name.
const CacheKey = attribute.Key("cachekit.cache.name")

// LoadResultKey is the attribute of the load duration: "ok" or "error".
const LoadResultKey = attribute.Key("cachekit.load.result")

// Options configures [New]. The zero value is valid.
type Options struct {
	// Buckets are the explicit bucket boundaries of the load duration
	// histogram, in seconds, increasing. Default: metrics.LoadBuckets.
	Buckets []float64
}

// family describes the instrument of a metrics.Family.
type family struct {
	name, unit, description string
	label                   attribute.Key // the Sample's Label; "" for none
	upDown                  bool          // an up-down counter, not a counter
}

var families = [metrics.NumFamilies]family{
	metrics.Hits:          {"cachekit.hits", "{hit}", "Reads served a usable value from the cache.", "", false},
	metrics.Misses:        {"cachekit.misses", "{miss}", "Reads that found nothing usable in the cache and load.", "", false},
	metrics.StaleServed:   {"cachekit.stale_served", "{read}", "Stale values served, by reason (revalidate, error).", "cachekit.stale.reason", false},
	metrics.Evictions:     {"cachekit.evictions", "{entry}", "Entries that left an in-process cache, by reason.", "cachekit.eviction.reason", false},
	metrics.Invalidations: {"cachekit.invalidations", "{invalidation}", "Invalidations applied, by kind (rows, table, global: query cache; url, tag: response cache).", "cachekit.invalidation.kind", false},
	metrics.Uncached:      {"cachekit.uncached", "{read}", "Query cache reads neither served from the cache nor stored in it, by reason.", "cachekit.uncached.reason", false},
	metrics.Events:        {"cachekit.events", "{event}", "Events observed, by kind.", "cachekit.event.kind", false},
	metrics.Entries:       {"cachekit.entries", "{entry}", "Entries held by an in-process cache.", "", true},
}

// Metrics counts the events of cachekit's caches and reports them to an
// OpenTelemetry meter. It is safe for concurrent use.
type Metrics struct {
	metrics.Set // the event sources: Memo, Memory (and qcachemetrics.Observer)

	instruments  [metrics.NumFamilies]metric.Int64Observable
	registration metric.Registration
	loads        metric.Float64Histogram
}

// New creates the instruments on provider's meter for [ScopeName] and
// registers the callback that reports the counters. Call [Metrics.Close]
// to unregister it.
func New(provider metric.MeterProvider, opts Options) (*Metrics, error) {
	if provider == nil {
		return nil, errors.New("otel: nil MeterProvider")
	}
	buckets := opts.Buckets
	if buckets == nil {
		buckets = metrics.LoadBuckets
	}
	if err := metrics.CheckBuckets(buckets); err != nil {
		return nil, fmt.Errorf("otel: Options.Buckets: %w", err)
	}
	meter := provider.Meter(ScopeName)
	m := &Metrics{}
	var err error
	m.loads, err = meter.Float64Histogram("cachekit.load.duration",
		metric.WithUnit("s"),
		metric.WithDescription("Duration of the cache loads wrapped by TimeLoad, by result (ok, error)."),
		metric.WithExplicitBucketBoundaries(buckets...))
	if err != nil {
		return nil, fmt.Errorf("otel: cachekit.load.duration: %w", err)
	}
	observables := make([]metric.Observable, 0, len(families))
	for f, d := range families {
		var inst metric.Int64Observable
		if d.upDown {
			inst, err = meter.Int64ObservableUpDownCounter(d.name, metric.WithUnit(d.unit), metric.WithDescription(d.description))
		} else {
			inst, err = meter.Int64ObservableCounter(d.name, metric.WithUnit(d.unit), metric.WithDescription(d.description))
		}
		if err != nil {
			return nil, fmt.Errorf("otel: %s: %w", d.name, err)
		}
		m.instruments[f] = inst
		observables = append(observables, inst)
	}
	m.registration, err = meter.RegisterCallback(m.observe, observables...)
	if err != nil {
		return nil, fmt.Errorf("otel: register callback: %w", err)
	}
	return m, nil
}

// observe reports every series (the metric.Callback).
func (m *Metrics) observe(_ context.Context, o metric.Observer) error {
	for _, s := range m.Snapshot() {
		d := families[s.Family]
		attrs := attribute.NewSet(CacheKey.String(s.Cache))
		if d.label != "" {
			attrs = attribute.NewSet(CacheKey.String(s.Cache), d.label.String(s.Label))
		}
		o.ObserveInt64(m.instruments[s.Family], int64(s.Value), metric.WithAttributeSet(attrs))
	}
	return nil
}

// Close unregisters the callback: the counters are no longer reported.
// The sources go on counting, and TimeLoad's histogram stays.
func (m *Metrics) Close() error {
	if err := m.registration.Unregister(); err != nil {
		return fmt.Errorf("otel: unregister callback: %w", err)
	}
	return nil
}

// OnEvict returns a function for memory.Options.OnEvict that counts the
// evictions of a memory.Cache by reason under the cache name cache.
func OnEvict[K comparable, V any](m *Metrics, cache string) func(K, V, memory.Reason) {
	return metrics.OnEvict[K, V](&m.Set, cache)
}

// TimeLoad wraps load so that every call is recorded in the load duration
// histogram under the cache name cache, with result "ok" or "error". Its
// shape is that of a memo.Func's function and of memory.Cache.GetOrLoad's
// loader. The measurement is recorded with the call's context.
func TimeLoad[K, V any](m *Metrics, cache string, load func(context.Context, K) (V, error)) func(context.Context, K) (V, error) {
	ok := metric.WithAttributeSet(attribute.NewSet(CacheKey.String(cache), LoadResultKey.String("ok")))
	failed := metric.WithAttributeSet(attribute.NewSet(CacheKey.String(cache), LoadResultKey.String("error")))
	return func(ctx context.Context, k K) (V, error) {
		start := time.Now()
		v, err := load(ctx, k)
		attrs := ok
		if err != nil {
			attrs = failed
		}
		m.loads.Record(ctx, time.Since(start).Seconds(), attrs)
		return v, err
	}
}
