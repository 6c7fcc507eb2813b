package memo_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/codec"
	"github.com/cachekit/cachekit/memo"
)

type user struct {
	ID   int
	Name string
}

// TestCallCachesByArgument: a second call with the same argument is a
// hit; another argument computes.
func TestCallCachesByArgument(t *testing.T) {
	t.Parallel()
	for _, tier := range []struct {
		name string
		opts cachekit.Options
	}{{"object", cachekit.Options{}}, {"gob", cachekit.Options{Codec: codec.Gob}}} {
		t.Run(tier.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			var calls counter
			rec := &recorder{}
			c := newCache[*user](t, nil, tier.opts)
			f := newFunc(t, c, "users.Get", func(_ context.Context, id int) (*user, error) {
				calls.add()
				return &user{ID: id, Name: "u" + strconv.Itoa(id)}, nil
			}, memo.Options{Observer: rec})
			for range 3 {
				u, err := f.Call(ctx, 7)
				if err != nil || u.ID != 7 || u.Name != "u7" {
					t.Fatalf("Call(7) = %+v, %v; want user 7", u, err)
				}
			}
			if _, err := f.Call(ctx, 8); err != nil {
				t.Fatal(err)
			}
			if got := calls.get(); got != 2 {
				t.Errorf("function ran %d times, want 2", got)
			}
			if h, m := rec.count(memo.Hit), rec.count(memo.Miss); h != 2 || m != 2 {
				t.Errorf("hits, misses = %d, %d; want 2, 2", h, m)
			}
		})
	}
}

// TestMethods covers Key, Peek, Set, Invalidate, Refresh and InvalidateAll.
func TestMethods(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	var calls counter
	c := newCache[string](t, nil, cachekit.Options{Prefix: "app", Version: 3})
	f := newFunc(t, c, "greet", func(_ context.Context, name string) (string, error) {
		n := calls.add()
		return fmt.Sprintf("hello %s #%d", name, n), nil
	}, memo.Options{Version: 2})

	key, err := f.Key("bob")
	if err != nil || key != `greet@v2("bob")` {
		t.Fatalf("Key = %q, %v; want %q", key, err, `greet@v2("bob")`)
	}
	if sk, _ := c.Key(key); sk != `app:3:greet@v2("bob")` {
		t.Errorf("store key %q, want the project version in it", sk)
	}
	if _, err := f.Peek(ctx, "bob"); !errors.Is(err, cachekit.ErrMiss) {
		t.Fatalf("Peek before any call: %v, want ErrMiss", err)
	}
	if v, _ := f.Call(ctx, "bob"); v != "hello bob #1" {
		t.Fatalf("Call = %q", v)
	}
	if v, err := f.Peek(ctx, "bob"); err != nil || v != "hello bob #1" {
		t.Fatalf("Peek = %q, %v", v, err)
	}
	// The value is in the cache under the key, readable with the cache.
	if v, err := c.Get(ctx, key); err != nil || v != "hello bob #1" {
		t.Fatalf("cache Get(%q) = %q, %v", key, v, err)
	}

	if err := f.Set(ctx, "bob", "set by hand"); err != nil {
		t.Fatal(err)
	}
	if v, _ := f.Call(ctx, "bob"); v != "set by hand" {
		t.Fatalf("Call after Set = %q", v)
	}

	if v, err := f.Refresh(ctx, "bob"); err != nil || v != "hello bob #2" {
		t.Fatalf("Refresh = %q, %v", v, err)
	}
	if v, _ := f.Call(ctx, "bob"); v != "hello bob #2" {
		t.Fatalf("Call after Refresh = %q", v)
	}

	if err := f.Invalidate(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Peek(ctx, "bob"); !errors.Is(err, cachekit.ErrMiss) {
		t.Fatalf("Peek after Invalidate: %v, want ErrMiss", err)
	}
	if v, _ := f.Call(ctx, "bob"); v != "hello bob #3" {
		t.Fatalf("Call after Invalidate = %q", v)
	}

	if _, err := f.Call(ctx, "ann"); err != nil {
		t.Fatal(err)
	}
	if err := f.InvalidateAll(ctx); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"bob", "ann"} {
		if _, err := f.Peek(ctx, name); !errors.Is(err, cachekit.ErrMiss) {
			t.Errorf("Peek(%s) after InvalidateAll: %v, want ErrMiss", name, err)
		}
	}
	before := calls.get()
	if _, err := f.Call(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if calls.get() != before+1 {
		t.Errorf("Call after InvalidateAll did not compute")
	}

	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Call(ctx, "bob"); !errors.Is(err, cachekit.ErrClosed) {
		t.Errorf("Call after Close: %v, want ErrClosed", err)
	}
}

// TestErrorsAreNotCached: a failing call caches nothing.
func TestErrorsAreNotCached(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	boom := errors.New("boom")
	var calls counter
	c := newCache[int](t, nil, cachekit.Options{})
	f := newFunc(t, c, "fails", func(context.Context, int) (int, error) {
		calls.add()
		return 0, boom
	}, memo.Options{})
	for range 2 {
		if _, err := f.Call(ctx, 1); !errors.Is(err, boom) {
			t.Fatalf("Call: %v, want boom", err)
		}
	}
	if calls.get() != 2 {
		t.Errorf("function ran %d times, want 2 (errors are not cached)", calls.get())
	}
}

// TestNegativeCaching: a not-found answer is cached for NegativeTTL, on
// its own clock.
func TestNegativeCaching(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := fakeClock()
	errNoRows := errors.New("no rows")
	var calls counter
	rec := &recorder{}
	c := newCache[*user](t, nil, cachekit.Options{Clock: clock})
	f := newFunc(t, c, "users.Find", func(_ context.Context, id int) (*user, error) {
		calls.add()
		return nil, fmt.Errorf("find %d: %w", id, errNoRows)
	}, memo.Options{TTL: time.Hour, NegativeTTL: 10 * time.Second, NotFound: errNoRows, Clock: clock, Observer: rec})

	if _, err := f.Call(ctx, 1); !errors.Is(err, errNoRows) {
		t.Fatalf("first Call: %v, want errNoRows", err)
	}
	clock.Advance(9 * time.Second)
	if _, err := f.Call(ctx, 1); !errors.Is(err, errNoRows) {
		t.Fatalf("second Call: %v, want the cached not-found", err)
	}
	if _, err := f.Peek(ctx, 1); !errors.Is(err, errNoRows) {
		t.Fatalf("Peek: %v, want the cached not-found", err)
	}
	if calls.get() != 1 || rec.count(memo.NegativeHit) != 1 {
		t.Fatalf("calls %d, negative hits %d; want 1, 1", calls.get(), rec.count(memo.NegativeHit))
	}
	clock.Advance(2 * time.Second) // past NegativeTTL, far within TTL
	if _, err := f.Call(ctx, 1); !errors.Is(err, errNoRows) {
		t.Fatal(err)
	}
	if calls.get() != 2 {
		t.Errorf("after NegativeTTL the function ran %d times in all, want 2", calls.get())
	}
}

// TestNegativeDefaultSentinel: without NotFound, memo.ErrNotFound is the
// sentinel; without NegativeTTL nothing is cached.
func TestNegativeDefaultSentinel(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	var calls counter
	fn := func(context.Context, string) (int, error) { calls.add(); return 0, memo.ErrNotFound }
	c := newCache[int](t, nil, cachekit.Options{})
	off := newFunc(t, c, "neg.off", fn, memo.Options{})
	on := newFunc(t, c, "neg.on", fn, memo.Options{NegativeTTL: time.Minute})
	for range 2 {
		off.Call(ctx, "x")
		if _, err := on.Call(ctx, "x"); !errors.Is(err, memo.ErrNotFound) {
			t.Fatalf("Call: %v, want ErrNotFound", err)
		}
	}
	if calls.get() != 3 {
		t.Errorf("function ran %d times, want 3 (2 uncached + 1 cached)", calls.get())
	}
}

// TestCacheIfNotZero: nil results are returned but never cached, as
// django-cache-utils never caches None.
func TestCacheIfNotZero(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	var calls counter
	c := newCache[*user](t, nil, cachekit.Options{})
	f := newFunc(t, c, "maybe", func(_ context.Context, id int) (*user, error) {
		calls.add()
		if id == 0 {
			return nil, nil
		}
		return &user{ID: id}, nil
	}, memo.Options{CacheIf: memo.NotZero})
	for range 2 {
		if u, err := f.Call(ctx, 0); u != nil || err != nil {
			t.Fatalf("Call(0) = %v, %v", u, err)
		}
		if _, err := f.Call(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	if calls.get() != 3 {
		t.Errorf("function ran %d times, want 3 (nil twice, 1 once)", calls.get())
	}
	for _, tc := range []struct {
		v    any
		want bool
	}{{nil, false}, {0, false}, {"", false}, {[]int(nil), false}, {(*user)(nil), false}, {1, true}, {"x", true}, {[]int{}, true}, {&user{}, true}} {
		if got := memo.NotZero(tc.v); got != tc.want {
			t.Errorf("NotZero(%#v) = %v, want %v", tc.v, got, tc.want)
		}
	}
}

// TestJitter: TTLs are shortened by at most Jitter.
func TestJitter(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := fakeClock()
	c := newCache[int](t, nil, cachekit.Options{Clock: clock})
	f := newFunc(t, c, "jitter", func(_ context.Context, i int) (int, error) { return i, nil },
		memo.Options{TTL: 100 * time.Second, Jitter: 0.2, Clock: clock})
	distinct := map[time.Time]bool{}
	for i := range 50 {
		if _, err := f.Call(ctx, i); err != nil {
			t.Fatal(err)
		}
		key, _ := f.Key(i)
		e, err := c.GetEntry(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		ttl := e.Expires.Sub(epoch)
		if ttl > 100*time.Second || ttl < 80*time.Second {
			t.Fatalf("TTL %v outside [80s, 100s]", ttl)
		}
		distinct[e.Expires] = true
	}
	if len(distinct) < 10 {
		t.Errorf("only %d distinct expiries among 50 jittered values", len(distinct))
	}
}

// TestOptionsValidation: bad options are refused by New.
func TestOptionsValidation(t *testing.T) {
	t.Parallel()
	c := newCache[int](t, nil, cachekit.Options{})
	fn := func(context.Context, int) (int, error) { return 0, nil }
	for _, o := range []memo.Options{
		{TTL: -1}, {Version: -1}, {Jitter: 1}, {Jitter: -0.1}, {StaleIfError: -1}, {Beta: -1},
		{LeaseTTL: -1}, {LoadTimeout: -1}, {NegativeTTL: -1}, {StampMaxStale: -1}, {Groups: []*memo.Group{nil}},
	} {
		if _, err := memo.New(c, "f", fn, o); err == nil {
			t.Errorf("New accepted %+v", o)
		}
	}
	if _, err := memo.New(c, "memo.func:x", fn, memo.Options{}); err == nil {
		t.Error("New accepted a reserved name")
	}
	if _, err := memo.New(nil, "f", fn, memo.Options{}); err == nil {
		t.Error("New accepted a nil cache")
	}
	if _, err := memo.New[int, int](c, "f", nil, memo.Options{}); err == nil {
		t.Error("New accepted a nil function")
	}
}

// TestProjectVersion: a cache with another version (a new deploy) does
// not see the old values.
func TestProjectVersion(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	store := newStore(t, nil)
	var calls counter
	fn := func(_ context.Context, i int) (int, error) { calls.add(); return i, nil }
	v1 := newFunc(t, newCache[int](t, store, cachekit.Options{Version: 1}), "v", fn, memo.Options{})
	v2 := newFunc(t, newCache[int](t, store, cachekit.Options{Version: 2}), "v", fn, memo.Options{})
	v1.Call(ctx, 1)
	v1.Call(ctx, 1)
	v2.Call(ctx, 1)
	if calls.get() != 2 {
		t.Errorf("function ran %d times, want 2 (once per version)", calls.get())
	}
}

// TestDerivedName: the name comes from the function, and closures are
// refused.
func TestDerivedName(t *testing.T) {
	t.Parallel()
	c := newCache[int](t, nil, cachekit.Options{})
	f, err := memo.New(c, "", double, memo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if key, _ := f.Key(2); key != "github.com/cachekit/cachekit/memo_test.double(2)" {
		t.Errorf("Key = %q", key)
	}
	var s svc
	m, err := memo.New(c, "", s.get, memo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Name() != "github.com/cachekit/cachekit/memo_test.svc.get" {
		t.Errorf("method value name %q", m.Name())
	}
	closure := func(_ context.Context, i int) (int, error) { return i, nil }
	if _, err := memo.New(c, "", closure, memo.Options{}); !errors.Is(err, memo.ErrUnstableName) {
		t.Errorf("closure: %v, want ErrUnstableName", err)
	}
	if _, err := memo.New(c, "", ident[int], memo.Options{}); !errors.Is(err, memo.ErrUnstableName) {
		t.Errorf("generic instantiation: %v, want ErrUnstableName", err)
	}
	if _, err := memo.New(c, "named.closure", closure, memo.Options{}); err != nil {
		t.Errorf("closure with an explicit name: %v", err)
	}
}

func double(_ context.Context, i int) (int, error) { return 2 * i, nil }

func ident[T any](_ context.Context, v T) (T, error) { return v, nil }

type svc struct{}

func (svc) get(_ context.Context, i int) (int, error) { return i, nil }

// TestDefaultsFromCache: a zero TTL and Clock come from the cache.
func TestDefaultsFromCache(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := fakeClock()
	c := newCache[int](t, newStore(t, clock), cachekit.Options{Clock: clock, DefaultTTL: time.Minute})
	f := newFunc(t, c, "f", func(_ context.Context, i int) (int, error) { return i, nil }, memo.Options{})
	if _, err := f.Call(ctx, 1); err != nil {
		t.Fatal(err)
	}
	clock.Advance(59 * time.Second)
	if _, err := f.Peek(ctx, 1); err != nil {
		t.Fatalf("within the cache's DefaultTTL: %v", err)
	}
	clock.Advance(2 * time.Second)
	if _, err := f.Peek(ctx, 1); !errors.Is(err, cachekit.ErrMiss) {
		t.Fatalf("past the cache's DefaultTTL: %v, want ErrMiss", err)
	}
}
