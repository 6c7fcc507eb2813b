package metrics

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/cachekit/cachekit/httpcache"
	"github.com/cachekit/cachekit/memo"
	"github.com/cachekit/cachekit/memory"
)

// value returns the sample of family f, cache and label, or -1.
func value(samples []Sample, f Family, cache, label string) int64 {
	for _, s := range samples {
		if s.Family == f && s.Cache == cache && s.Label == label {
			return int64(s.Value)
		}
	}
	return -1
}

func TestSnapshotSumsSourcesByName(t *testing.T) {
	t.Parallel()
	var s Set
	a, b := s.Memo("users"), s.Memo("users")
	a.Observe(memo.Event{Kind: memo.Hit})
	b.Observe(memo.Event{Kind: memo.NegativeHit})
	b.Observe(memo.Event{Kind: memo.Miss})
	a.Observe(memo.Event{Kind: memo.StaleServed})
	a.Observe(memo.Event{Kind: memo.StaleServed, Err: errors.New("down")})
	src := s.Source("sql", func(k uint8) string { return fmt.Sprint("kind", k) },
		func(kind, sub func(uint8) uint64, emit func(Family, string, uint64)) {
			emit(Hits, "", kind(1))
			emit(Invalidations, "rows", sub(7))
			emit(Invalidations, "global", sub(8))
		})
	src.Count(1, NoSub)
	src.Count(2, 7)
	OnEvict[string, int](&s, "users")("k", 1, memory.ReasonExpired)

	got := s.Snapshot()
	for _, c := range []struct {
		f            Family
		cache, label string
		want         int64
	}{
		{Hits, "users", "", 2},
		{Misses, "users", "", 1},
		{StaleServed, "users", "revalidate", 1},
		{StaleServed, "users", "error", 1},
		{Events, "users", "negative-hit", 1},
		{Evictions, "users", "expired", 1},
		{Evictions, "users", "evicted", 0},
		{Hits, "sql", "", 1},
		{Invalidations, "sql", "rows", 1},
		{Invalidations, "sql", "global", 0},
		{Events, "sql", "kind2", 1},
		{Events, "sql", "kind3", -1}, // kinds never seen have no series
	} {
		if v := value(got, c.f, c.cache, c.label); v != c.want {
			t.Errorf("family %d cache %q label %q = %d, want %d", c.f, c.cache, c.label, v, c.want)
		}
	}
	for i := 1; i < len(got); i++ {
		p, s := got[i-1], got[i]
		if p.Family > s.Family || p.Family == s.Family && (p.Cache > s.Cache || p.Cache == s.Cache && p.Label >= s.Label) {
			t.Fatalf("snapshot not sorted at %d: %+v after %+v", i, s, p)
		}
	}
}

func TestMemoryStats(t *testing.T) {
	t.Parallel()
	c := memory.Must(memory.Options[string, int]{Stats: true})
	defer c.Close()
	var s Set
	s.Memory("local", c)
	c.Set("a", 1)
	c.Get("a")
	c.Get("b")
	got := s.Snapshot()
	if h, m, n := value(got, Hits, "local", ""), value(got, Misses, "local", ""), value(got, Entries, "local", ""); h != 1 || m != 1 || n != 1 {
		t.Errorf("hits, misses, entries = %d, %d, %d, want 1, 1, 1", h, m, n)
	}
}

// TestConcurrentObserve counts events from several goroutines while
// snapshots are taken (run it with -race), then checks the totals.
func TestConcurrentObserve(t *testing.T) {
	t.Parallel()
	const goroutines, events = 4, 1000
	var s Set
	stop, done := make(chan struct{}), make(chan struct{})
	go func() { // snapshots while the events are counted
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if v := value(s.Snapshot(), Hits, "users", ""); v > goroutines*events {
				t.Errorf("hits = %d, more than were counted", v)
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			o := s.Memo("users")
			for range events {
				o.Observe(memo.Event{Kind: memo.Hit})
				o.Observe(memo.Event{Kind: memo.StaleServed, Err: errors.New("down")})
			}
		})
	}
	wg.Wait()
	close(stop)
	<-done
	got := s.Snapshot()
	if h, e := value(got, Hits, "users", ""), value(got, StaleServed, "users", "error"); h != goroutines*events || e != goroutines*events {
		t.Errorf("hits, stale errors = %d, %d, want %d each", h, e, goroutines*events)
	}
}

func BenchmarkMemoObserve(b *testing.B) {
	var s Set
	o := s.Memo("users")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			o.Observe(memo.Event{Kind: memo.Hit, Func: "users", Key: "users(1)"})
		}
	})
}

func TestLoadBuckets(t *testing.T) {
	t.Parallel()
	if err := CheckBuckets(LoadBuckets); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(LoadBuckets); i++ {
		if r := LoadBuckets[i] / LoadBuckets[i-1]; math.Abs(r-2.5) > 1e-9 {
			t.Errorf("LoadBuckets[%d]/LoadBuckets[%d] = %g, want 2.5", i, i-1, r)
		}
	}
	for _, b := range [][]float64{nil, {1, 1}, {2, 1}, {math.NaN()}, {1, math.Inf(1)}} {
		if CheckBuckets(b) == nil {
			t.Errorf("CheckBuckets(%v) = nil, want an error", b)
		}
	}
}

// TestHTTPCache drives a real httpcache middleware and counts its events:
// a miss, a hit, and invalidations by URL and by tag.
func TestHTTPCache(t *testing.T) {
	t.Parallel()
	var s Set
	c, err := httpcache.New(httpcache.Options{Observer: s.HTTPCache("pages")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h := c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Surrogate-Key", "posts")
		fmt.Fprint(w, "hello")
	}))
	get := func() string {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://example.com/a", nil))
		return rec.Header().Get("Cache-Status")
	}
	get()
	if cs := get(); !strings.Contains(cs, "hit") {
		t.Fatalf("second GET: Cache-Status %q, want a hit", cs)
	}
	ctx := t.Context()
	if err := c.InvalidateURL(ctx, "http://example.com/a"); err != nil {
		t.Fatal(err)
	}
	if err := c.InvalidateTags(ctx, "posts"); err != nil {
		t.Fatal(err)
	}
	snap := s.Snapshot()
	for _, tc := range []struct {
		f     Family
		label string
		want  int64
	}{
		{Hits, "", 1},
		{Misses, "", 1},
		{Invalidations, "url", 1},
		{Invalidations, "tag", 1},
	} {
		if got := value(snap, tc.f, "pages", tc.label); got != tc.want {
			t.Errorf("family %d label %q = %d, want %d", tc.f, tc.label, got, tc.want)
		}
	}
}
