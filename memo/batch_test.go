package memo_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/codec"
	"github.com/cachekit/cachekit/memo"
)

// batchLog records the key lists a batch function was called with.
type batchLog struct {
	mu    sync.Mutex // protects calls
	calls [][]int
}

func (l *batchLog) add(ids []int) {
	l.mu.Lock()
	l.calls = append(l.calls, slices.Sorted(slices.Values(ids)))
	l.mu.Unlock()
}

func (l *batchLog) get() [][]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

func newBatch[K comparable, V any](t testing.TB, c *cachekit.Cache[V], name string, fn func(context.Context, []K) (map[K]V, error), opts memo.Options) *memo.Batch[K, V] {
	t.Helper()
	b, err := memo.NewBatch(c, name, fn, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestBatchCachesEachRecord: records are cached one by one; a later call
// loads only the missing ones; absent records are left out (and cached as
// not found with NegativeTTL).
func TestBatchCachesEachRecord(t *testing.T) {
	t.Parallel()
	for _, tier := range []struct {
		name string
		opts cachekit.Options
	}{{"object", cachekit.Options{}}, {"gob", cachekit.Options{Codec: codec.Gob}}} {
		t.Run(tier.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			var log batchLog
			c := newCache[string](t, nil, tier.opts)
			b := newBatch(t, c, "users.Names", func(_ context.Context, ids []int) (map[int]string, error) {
				log.add(ids)
				out := map[int]string{}
				for _, id := range ids {
					if id%10 != 0 { // multiples of 10 do not exist
						out[id] = fmt.Sprint("user", id)
					}
				}
				return out, nil
			}, memo.Options{NegativeTTL: time.Minute})

			got, err := b.Call(ctx, []int{1, 2, 10, 2})
			if err != nil {
				t.Fatal(err)
			}
			if want := map[int]string{1: "user1", 2: "user2"}; !maps.Equal(got, want) {
				t.Fatalf("Call = %v, want %v", got, want)
			}
			got, err = b.Call(ctx, []int{1, 2, 3, 10})
			if err != nil {
				t.Fatal(err)
			}
			if want := map[int]string{1: "user1", 2: "user2", 3: "user3"}; !maps.Equal(got, want) {
				t.Fatalf("second Call = %v, want %v", got, want)
			}
			if want := [][]int{{1, 2, 10}, {3}}; !slices.EqualFunc(log.get(), want, slices.Equal) {
				t.Errorf("function called with %v, want %v", log.get(), want)
			}
			// The records are in the cache under Func-style keys.
			if v, err := b.Peek(ctx, 3); err != nil || v != "user3" {
				t.Errorf("Peek(3) = %q, %v", v, err)
			}
			if _, err := b.Peek(ctx, 10); !errors.Is(err, memo.ErrNotFound) {
				t.Errorf("Peek(10) = %v, want the cached not-found", err)
			}
			key, _ := b.Key(3)
			if v, err := c.Get(ctx, key); err != nil || v != "user3" || key != "users.Names(3)" {
				t.Errorf("cache Get(%q) = %q, %v", key, v, err)
			}
			// Invalidate and InvalidateAll.
			if err := b.Invalidate(ctx, 1); err != nil {
				t.Fatal(err)
			}
			b.Call(ctx, []int{1, 2})
			if err := b.InvalidateAll(ctx); err != nil {
				t.Fatal(err)
			}
			b.Call(ctx, []int{2, 3})
			if want := [][]int{{1, 2, 10}, {3}, {1}, {2, 3}}; !slices.EqualFunc(log.get(), want, slices.Equal) {
				t.Errorf("function called with %v, want %v", log.get(), want)
			}
			if err := b.Set(ctx, 99, "set"); err != nil {
				t.Fatal(err)
			}
			if got, _ := b.Call(ctx, []int{99}); got[99] != "set" {
				t.Errorf("Call after Set = %v", got)
			}
		})
	}
}

// TestBatchMergesInFlight: a key another batch is already loading is
// waited for, not loaded twice.
func TestBatchMergesInFlight(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	var log batchLog
	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	rec := &recorder{}
	c := newCache[int](t, nil, cachekit.Options{})
	b := newBatch(t, c, "sq", func(_ context.Context, ids []int) (map[int]int, error) {
		log.add(ids)
		once.Do(func() { close(started); <-release })
		out := map[int]int{}
		for _, id := range ids {
			out[id] = id * id
		}
		return out, nil
	}, memo.Options{Observer: rec})

	first := make(chan map[int]int)
	go func() {
		m, err := b.Call(ctx, []int{1, 2, 3})
		if err != nil {
			t.Error(err)
		}
		first <- m
	}()
	<-started
	second := make(chan map[int]int)
	go func() {
		m, err := b.Call(ctx, []int{2, 3, 4})
		if err != nil {
			t.Error(err)
		}
		second <- m
	}()
	waitFor(t, "the second batch to load its own key", func() bool { return len(log.get()) == 2 })
	close(release)
	if m := <-first; !maps.Equal(m, map[int]int{1: 1, 2: 4, 3: 9}) {
		t.Errorf("first = %v", m)
	}
	if m := <-second; !maps.Equal(m, map[int]int{2: 4, 3: 9, 4: 16}) {
		t.Errorf("second = %v", m)
	}
	if want := [][]int{{1, 2, 3}, {4}}; !slices.EqualFunc(log.get(), want, slices.Equal) {
		t.Errorf("function called with %v, want %v (2 and 3 merged)", log.get(), want)
	}
	if n := rec.count(memo.Coalesced); n != 2 {
		t.Errorf("Coalesced %d times, want 2", n)
	}
}

// TestBatchErrorsAndPanics: a failing or panicking load fails every
// waiter of its keys, and caches nothing.
func TestBatchErrorsAndPanics(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	boom := errors.New("boom")
	c := newCache[int](t, nil, cachekit.Options{})
	fail := newBatch(t, c, "fail", func(context.Context, []int) (map[int]int, error) { return nil, boom }, memo.Options{})
	if _, err := fail.Call(ctx, []int{1}); !errors.Is(err, boom) {
		t.Errorf("Call: %v, want boom", err)
	}
	panics := newBatch(t, c, "panics", func(context.Context, []int) (map[int]int, error) { panic("kaboom") }, memo.Options{})
	var pe *cachekit.PanicError
	if _, err := panics.Call(ctx, []int{1, 2}); !errors.As(err, &pe) || pe.Value != "kaboom" {
		t.Errorf("Call: %v, want a PanicError", err)
	}
}

// TestBatchStale: stale records are served at once and refreshed in one
// background batch.
func TestBatchStale(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := fakeClock()
	var log batchLog
	gen := 0
	var mu sync.Mutex
	rec := &recorder{}
	c := newCache[string](t, nil, cachekit.Options{Clock: clock})
	b := newBatch(t, c, "stale", func(_ context.Context, ids []int) (map[int]string, error) {
		log.add(ids)
		mu.Lock()
		gen++
		g := gen
		mu.Unlock()
		out := map[int]string{}
		for _, id := range ids {
			out[id] = fmt.Sprint(id, "@", g)
		}
		return out, nil
	}, memo.Options{TTL: time.Minute, StaleWhileRevalidate: time.Minute, Clock: clock, Observer: rec})
	b.Call(ctx, []int{1, 2})
	clock.Advance(90 * time.Second)
	got, err := b.Call(ctx, []int{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[int]string{1: "1@1", 2: "2@1"}; got[1] != want[1] || got[2] != want[2] {
		t.Errorf("stale Call = %v, want the stale 1 and 2", got)
	}
	waitFor(t, "the background refresh", func() bool { return rec.count(memo.RefreshOK) == 2 })
	got, _ = b.Call(ctx, []int{1, 2, 3})
	if got[1] == "1@1" || got[2] == "2@1" {
		t.Errorf("after the refresh = %v, want new values", got)
	}
	if calls := log.get(); len(calls) != 3 {
		t.Errorf("function called %v, want 3 batches (first, miss of 3, refresh of 1 and 2)", calls)
	}
}
