package memo_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/memo"
	"github.com/cachekit/cachekit/memory"
)

// countingStore wraps a memory store and counts the operations that reach
// it, by method. It is a byte store (not a ValueStore), so caches over it
// encode their values.
type countingStore struct {
	s  *memory.Store
	mu sync.Mutex // protects ops
	// ops counts calls by method name.
	ops map[string]int
}

var (
	_ cachekit.Store   = (*countingStore)(nil)
	_ cachekit.Adder   = (*countingStore)(nil)
	_ cachekit.Counter = (*countingStore)(nil)
	_ cachekit.Batcher = (*countingStore)(nil)
	_ cachekit.Leaser  = (*countingStore)(nil)
)

func newCountingStore(t testing.TB, clock cachekit.Clock) *countingStore {
	return &countingStore{s: newStore(t, clock), ops: map[string]int{}}
}

func (c *countingStore) count(op string) {
	c.mu.Lock()
	c.ops[op]++
	c.mu.Unlock()
}

// take returns the counts since the last take and resets them.
func (c *countingStore) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.ops
	c.ops = map[string]int{}
	return m
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func (c *countingStore) Get(ctx context.Context, key string) ([]byte, error) {
	c.count("Get")
	return c.s.Get(ctx, key)
}

func (c *countingStore) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	c.count("Set")
	return c.s.Set(ctx, key, val, ttl)
}

func (c *countingStore) Delete(ctx context.Context, keys ...string) (int, error) {
	c.count("Delete")
	return c.s.Delete(ctx, keys...)
}

func (c *countingStore) Close() error { return nil } // the memory store closes with the test

func (c *countingStore) Add(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	c.count("Add")
	return c.s.Add(ctx, key, val, ttl)
}

func (c *countingStore) IncrBy(ctx context.Context, key string, delta int64) (int64, error) {
	c.count("IncrBy")
	return c.s.IncrBy(ctx, key, delta)
}

func (c *countingStore) GetMany(ctx context.Context, keys []string) (map[string][]byte, error) {
	c.count("GetMany")
	return c.s.GetMany(ctx, keys)
}

func (c *countingStore) SetMany(ctx context.Context, items map[string][]byte, ttl time.Duration) error {
	c.count("SetMany")
	return c.s.SetMany(ctx, items, ttl)
}

func (c *countingStore) Lease(ctx context.Context, key string, ttl time.Duration) (func(context.Context) error, bool, error) {
	c.count("Lease")
	return c.s.Lease(ctx, key, ttl)
}

// TestGroupInvalidateIsO1: invalidating a group of 10 values and one of
// 100,000 costs the same number of store operations (one), and every value
// of the group reads as a miss afterwards, in every function of the group.
func TestGroupInvalidateIsO1(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	store := newCountingStore(t, nil)
	ci := newCache[string](t, store, cachekit.Options{})
	cs := newCache[int](t, store, cachekit.Options{})
	small, err := memo.NewGroup(ci, "small", memo.GroupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	large, err := memo.NewGroup(ci, "large", memo.GroupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	str := func(_ context.Context, i int) (string, error) { return fmt.Sprint(i), nil }
	fSmall := newFunc(t, ci, "small.f", str, memo.Options{Groups: []*memo.Group{small}})
	fLarge := newFunc(t, ci, "large.f", str, memo.Options{Groups: []*memo.Group{large}})
	// A function of another type in the same group, and one outside it.
	fLarge2 := newFunc(t, cs, "large.g", func(_ context.Context, s string) (int, error) { return len(s), nil },
		memo.Options{Groups: []*memo.Group{large}})
	fOther := newFunc(t, ci, "other.f", str, memo.Options{})

	const nSmall, nLarge = 10, 100_000
	for i := range nSmall {
		if _, err := fSmall.Call(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	for i := range nLarge - 10 {
		if _, err := fLarge.Call(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 {
		if _, err := fLarge2.Call(ctx, strings.Repeat("x", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := fOther.Call(ctx, 1); err != nil {
		t.Fatal(err)
	}

	store.take()
	if err := small.Invalidate(ctx); err != nil {
		t.Fatal(err)
	}
	opsSmall := store.take()
	if err := large.Invalidate(ctx); err != nil {
		t.Fatal(err)
	}
	opsLarge := store.take()
	if !maps.Equal(opsSmall, opsLarge) || total(opsLarge) != 1 {
		t.Fatalf("store operations of Invalidate: %v for %d values, %v for %d; want the same single operation",
			opsSmall, nSmall, opsLarge, nLarge)
	}
	t.Logf("Invalidate of %d and of %d values: %v", nSmall, nLarge, opsLarge)

	for i := range nSmall {
		if _, err := fSmall.Peek(ctx, i); !errors.Is(err, cachekit.ErrMiss) {
			t.Fatalf("small.f(%d) after the group's invalidation: %v, want ErrMiss", i, err)
		}
	}
	for i := range nLarge - 10 {
		if _, err := fLarge.Peek(ctx, i); !errors.Is(err, cachekit.ErrMiss) {
			t.Fatalf("large.f(%d) after the group's invalidation: %v, want ErrMiss", i, err)
		}
	}
	for i := range 10 {
		if _, err := fLarge2.Peek(ctx, strings.Repeat("x", i)); !errors.Is(err, cachekit.ErrMiss) {
			t.Fatalf("large.g after the group's invalidation: %v, want ErrMiss", err)
		}
	}
	if _, err := fOther.Peek(ctx, 1); err != nil {
		t.Errorf("a function outside the group lost its value: %v", err)
	}
	// The function's own InvalidateAll is O(1) too.
	if _, err := fOther.Call(ctx, 2); err != nil {
		t.Fatal(err)
	}
	store.take()
	if err := fOther.InvalidateAll(ctx); err != nil {
		t.Fatal(err)
	}
	if ops := store.take(); total(ops) != 1 {
		t.Errorf("InvalidateAll: %v, want one operation", ops)
	}
}

// TestStampReadsAreBatched: a hit of a function with several groups reads
// the entry and all the generations in one GetMany.
func TestStampReadsAreBatched(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	store := newCountingStore(t, nil)
	c := newCache[int](t, store, cachekit.Options{})
	var groups []*memo.Group
	for _, name := range []string{"a", "b", "c"} {
		g, err := memo.NewGroup(c, name, memo.GroupOptions{})
		if err != nil {
			t.Fatal(err)
		}
		groups = append(groups, g)
	}
	f := newFunc(t, c, "f", func(_ context.Context, i int) (int, error) { return i, nil }, memo.Options{Groups: groups})
	if _, err := f.Call(ctx, 1); err != nil {
		t.Fatal(err)
	}
	store.take()
	if _, err := f.Call(ctx, 1); err != nil {
		t.Fatal(err)
	}
	ops := store.take()
	if want := map[string]int{"Get": 1, "GetMany": 1}; !maps.Equal(ops, want) {
		t.Errorf("a hit with 3 groups: %v, want %v", ops, want)
	}
}

// TestMissingStampInvalidates: a generation that disappears (evicted,
// cleared) makes its values misses, then a new one is minted.
func TestMissingStampInvalidates(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	store := newCountingStore(t, nil) // not process-local: the stamp is reread
	c := newCache[int](t, store, cachekit.Options{Prefix: "p"})
	g, err := memo.NewGroup(c, "g", memo.GroupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var calls counter
	f := newFunc(t, c, "f", func(_ context.Context, i int) (int, error) { calls.add(); return i, nil },
		memo.Options{Groups: []*memo.Group{g}})
	f.Call(ctx, 1)
	f.Call(ctx, 1)
	stampKey, _ := c.Key("memo.group:g")
	if n, err := store.Delete(ctx, stampKey); n != 1 || err != nil {
		t.Fatalf("Delete(%q) = %d, %v; want the group's generation there", stampKey, n, err)
	}
	if _, err := f.Peek(ctx, 1); !errors.Is(err, cachekit.ErrMiss) {
		t.Fatalf("Peek with the stamp gone: %v, want ErrMiss", err)
	}
	f.Call(ctx, 1)
	f.Call(ctx, 1)
	if calls.get() != 2 {
		t.Errorf("function ran %d times, want 2", calls.get())
	}
}

// TestStampMaxStale: cached generations save reads; invalidations through
// the same value are seen at once, others within the bound.
func TestStampMaxStale(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := fakeClock()
	store := newCountingStore(t, clock)
	c := newCache[int](t, store, cachekit.Options{Clock: clock})
	fn := func(_ context.Context, i int) (int, error) { return i, nil }
	a := newFunc(t, c, "f", fn, memo.Options{StampMaxStale: 10 * time.Second, TTL: time.Hour, Clock: clock})
	// "Another process": the same data through another store value, which
	// this process's shared stamp state does not connect to a's.
	other := &countingStore{s: store.s, ops: map[string]int{}}
	b := newFunc(t, newCache[int](t, other, cachekit.Options{Clock: clock}), "f", fn, memo.Options{TTL: time.Hour, Clock: clock})

	a.Call(ctx, 1)
	store.take()
	a.Call(ctx, 1)
	if ops := store.take(); !maps.Equal(ops, map[string]int{"Get": 1}) {
		t.Errorf("a hit with a cached generation: %v, want one Get", ops)
	}
	if err := b.InvalidateAll(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Peek(ctx, 1); !errors.Is(err, cachekit.ErrMiss) {
		t.Fatalf("b sees its own invalidation: %v", err)
	}
	if _, err := a.Peek(ctx, 1); err != nil {
		t.Fatalf("a within StampMaxStale: %v, want the old value (documented bound)", err)
	}
	clock.Advance(10 * time.Second)
	if _, err := a.Peek(ctx, 1); !errors.Is(err, cachekit.ErrMiss) {
		t.Fatalf("a after StampMaxStale: %v, want ErrMiss", err)
	}
	a.Call(ctx, 2)
	if err := a.InvalidateAll(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Peek(ctx, 2); !errors.Is(err, cachekit.ErrMiss) {
		t.Fatalf("a after its own InvalidateAll: %v, want ErrMiss at once", err)
	}
}

// TestInvalidateDuringComputation: a value computed across an invalidation
// is not served afterwards.
func TestInvalidateDuringComputation(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"Invalidate", "InvalidateAll", "Group"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			c := newCache[int](t, nil, cachekit.Options{})
			g, err := memo.NewGroup(c, "g", memo.GroupOptions{})
			if err != nil {
				t.Fatal(err)
			}
			started, release := make(chan struct{}), make(chan struct{})
			var calls counter
			f := newFunc(t, c, "f", func(context.Context, int) (int, error) {
				n := calls.add()
				if n == 1 {
					close(started)
					<-release
				}
				return int(n), nil
			}, memo.Options{Groups: []*memo.Group{g}})
			done := make(chan int)
			go func() {
				v, _ := f.Call(ctx, 1)
				done <- v
			}()
			<-started
			switch how {
			case "Invalidate":
				err = f.Invalidate(ctx, 1)
			case "InvalidateAll":
				err = f.InvalidateAll(ctx)
			case "Group":
				err = g.Invalidate(ctx)
			}
			if err != nil {
				t.Fatal(err)
			}
			// A call after the invalidation does not join the old computation.
			if v, _ := f.Call(ctx, 1); v != 2 {
				t.Errorf("Call after %s = %d, want a new computation (2)", how, v)
			}
			close(release)
			if v := <-done; v != 1 {
				t.Errorf("the caller before the invalidation got %d, want 1", v)
			}
			if v, _ := f.Call(ctx, 1); v != 2 {
				t.Errorf("Call after the old computation ended = %d, want 2: the old value must not be stored", v)
			}
		})
	}
}

// TestGroupOnAnotherStore is refused.
func TestGroupOnAnotherStore(t *testing.T) {
	t.Parallel()
	g, err := memo.NewGroup(newCache[int](t, nil, cachekit.Options{}), "g", memo.GroupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := newCache[int](t, nil, cachekit.Options{})
	_, err = memo.New(c, "f", func(_ context.Context, i int) (int, error) { return i, nil }, memo.Options{Groups: []*memo.Group{g}})
	if err == nil {
		t.Fatal("New accepted a group on another store")
	}
	if g.Name() != "g" {
		t.Errorf("Name = %q", g.Name())
	}
}

// TestDamagedStamp: a generation that is not a number invalidates its
// values; the next computation replaces it, and Invalidate still works.
func TestDamagedStamp(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	store := newCountingStore(t, nil) // not process-local: the stamp is reread
	c := newCache[int](t, store, cachekit.Options{})
	g, err := memo.NewGroup(c, "g", memo.GroupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var calls counter
	f := newFunc(t, c, "f", func(_ context.Context, i int) (int, error) { calls.add(); return i, nil },
		memo.Options{Groups: []*memo.Group{g}})
	f.Call(ctx, 1)
	stampKey, _ := c.Key("memo.group:g")
	if err := store.Set(ctx, stampKey, []byte("garbage"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Peek(ctx, 1); !errors.Is(err, cachekit.ErrMiss) {
		t.Fatalf("Peek with a damaged stamp: %v, want ErrMiss", err)
	}
	f.Call(ctx, 1)
	f.Call(ctx, 1)
	if calls.get() != 2 {
		t.Fatalf("function ran %d times, want 2 (the damaged stamp replaced)", calls.get())
	}
	if err := store.Set(ctx, stampKey, []byte("garbage"), 0); err != nil {
		t.Fatal(err)
	}
	if err := g.Invalidate(ctx); err != nil {
		t.Fatalf("Invalidate over a damaged stamp: %v", err)
	}
	f.Call(ctx, 1)
	f.Call(ctx, 1)
	if calls.get() != 3 {
		t.Fatalf("function ran %d times, want 3", calls.get())
	}
}

// TestProcessLocalTrustsStamp: on a process-local store a hit reads no
// stamp, and an invalidation through any Func of the same name in this
// process is seen at once.
func TestProcessLocalTrustsStamp(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	store := newStore(t, nil)
	var gets atomic.Int64
	c := newCache[int](t, getCounter{store, &gets}, cachekit.Options{})
	fn := func(_ context.Context, i int) (int, error) { return i, nil }
	a := newFunc(t, c, "f", fn, memo.Options{TTL: time.Hour})
	b := newFunc(t, c, "f", fn, memo.Options{TTL: time.Hour})
	a.Call(ctx, 1)
	gets.Store(0)
	a.Call(ctx, 1)
	if n := gets.Load(); n != 1 {
		t.Errorf("a hit read %d values, want 1 (no stamp read)", n)
	}
	if err := b.InvalidateAll(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Peek(ctx, 1); !errors.Is(err, cachekit.ErrMiss) {
		t.Fatalf("a after b's InvalidateAll: %v, want ErrMiss at once", err)
	}
}

// getCounter counts reads of a process-local store and stays process-local.
type getCounter struct {
	*memory.Store
	n *atomic.Int64
}

func (g getCounter) GetValue(ctx context.Context, key string) (any, error) {
	g.n.Add(1)
	return g.Store.GetValue(ctx, key)
}

func (g getCounter) Get(ctx context.Context, key string) ([]byte, error) {
	g.n.Add(1)
	return g.Store.Get(ctx, key)
}
