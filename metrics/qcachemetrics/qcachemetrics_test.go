package qcachemetrics_test

import (
	"fmt"
	"testing"

	"github.com/cachekit/cachekit/metrics"
	"github.com/cachekit/cachekit/metrics/qcachemetrics"
	"github.com/cachekit/cachekit/qcache"
)

func TestObserver(t *testing.T) {
	t.Parallel()
	var s metrics.Set
	o := qcachemetrics.Observer(&s, "sql")
	for _, k := range []qcache.EventKind{qcache.Hit, qcache.Miss, qcache.Stored, qcache.InvalidateRows, qcache.InvalidateRows, qcache.InvalidateGlobal} {
		o.Observe(qcache.Event{Kind: k})
	}
	o.Observe(qcache.Event{Kind: qcache.Uncached, Reason: qcache.ReasonTooLarge})
	got := map[string]uint64{}
	for _, x := range s.Snapshot() {
		got[fmt.Sprint(x.Family, "/", x.Label)] = x.Value
	}
	for key, want := range map[string]uint64{
		fmt.Sprint(metrics.Hits, "/"):                  1,
		fmt.Sprint(metrics.Misses, "/"):                1,
		fmt.Sprint(metrics.Invalidations, "/rows"):     2,
		fmt.Sprint(metrics.Invalidations, "/table"):    0,
		fmt.Sprint(metrics.Invalidations, "/global"):   1,
		fmt.Sprint(metrics.Uncached, "/too-large"):     1,
		fmt.Sprint(metrics.Uncached, "/parse"):         0,
		fmt.Sprint(metrics.Events, "/stored"):          1,
		fmt.Sprint(metrics.Events, "/uncached"):        1,
		fmt.Sprint(metrics.Events, "/invalidate-rows"): 2,
	} {
		if v, ok := got[key]; !ok || v != want {
			t.Errorf("family/label %s = %d (present %t), want %d", key, v, ok, want)
		}
	}
}

func ExampleObserver() {
	var set metrics.Set // or the Set of an adapter: &m.Set
	observer := qcachemetrics.Observer(&set, "sql")
	// Give observer to the policy: qcache.GranularOptions{Observer: observer, ...}.
	observer.Observe(qcache.Event{Kind: qcache.Hit})
	observer.Observe(qcache.Event{Kind: qcache.Uncached, Reason: qcache.ReasonNotCacheable})
	for _, s := range set.Snapshot() {
		if s.Family == metrics.Uncached && s.Value > 0 {
			fmt.Println(s.Cache, "uncached", s.Label, s.Value)
		}
	}
	// Output:
	// sql uncached not-cacheable 1
}
