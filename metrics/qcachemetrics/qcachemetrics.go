// Package qcachemetrics counts the events of a qcache policy in a
// [metrics.Set]. It is a package of its own so that metrics, and the
// Prometheus and OpenTelemetry adapters, do not make every program build
// qcache's SQL parsers.
package qcachemetrics

import (
	"github.com/cachekit/cachekit/metrics"
	"github.com/cachekit/cachekit/qcache"
)

// reasons are the reasons of qcache's Uncached events.
var reasons = []qcache.Reason{qcache.ReasonParse, qcache.ReasonNotCacheable, qcache.ReasonTooLarge, qcache.ReasonNotOptedIn}

// Observer returns an observer for a qcache policy (TableOptions.Observer,
// GranularOptions.Observer) that counts its reads and invalidations in s
// under the cache name cache: Hit in metrics.Hits, Miss in metrics.Misses,
// InvalidateRows, InvalidateTable and InvalidateGlobal in
// metrics.Invalidations ("rows", "table", "global"), Uncached in
// metrics.Uncached by qcache.Reason, and every kind in metrics.Events.
// With an adapter, s is its embedded Set: Observer(&m.Set, "sql").
func Observer(s *metrics.Set, cache string) qcache.Observer {
	o := s.Source(cache, func(i uint8) string { return qcache.EventKind(i).String() },
		func(kind, sub func(uint8) uint64, emit func(metrics.Family, string, uint64)) {
			emit(metrics.Hits, "", kind(uint8(qcache.Hit)))
			emit(metrics.Misses, "", kind(uint8(qcache.Miss)))
			emit(metrics.Invalidations, "rows", kind(uint8(qcache.InvalidateRows)))
			emit(metrics.Invalidations, "table", kind(uint8(qcache.InvalidateTable)))
			emit(metrics.Invalidations, "global", kind(uint8(qcache.InvalidateGlobal)))
			for _, r := range reasons {
				emit(metrics.Uncached, r.String(), sub(uint8(r)))
			}
		})
	return qcache.ObserverFunc(func(e qcache.Event) {
		sub := metrics.NoSub
		if e.Kind == qcache.Uncached {
			sub = int(e.Reason)
		}
		o.Count(uint8(e.Kind), sub)
	})
}
