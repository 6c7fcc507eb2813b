package cachekit_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/cachetest"
	"github.com/cachekit/cachekit/codec"
	"github.com/cachekit/cachekit/memory"
)

type user struct {
	ID   int
	Name string
}

// bytesOnly hides every capability of a store, so the facade's fallbacks
// run.
type bytesOnly struct{ s cachekit.Store }

func (b bytesOnly) Get(ctx context.Context, k string) ([]byte, error) { return b.s.Get(ctx, k) }
func (b bytesOnly) Set(ctx context.Context, k string, v []byte, ttl time.Duration) error {
	return b.s.Set(ctx, k, v, ttl)
}
func (b bytesOnly) Delete(ctx context.Context, k ...string) (int, error) {
	return b.s.Delete(ctx, k...)
}
func (b bytesOnly) Close() error { return b.s.Close() }

// setup is one store flavour the facade must work on.
type setup struct {
	name   string
	object bool // values kept by reference
	open   func(t *testing.T, clock cachekit.Clock) (cachekit.Store, cachekit.Options)
}

func memStore(t *testing.T, clock cachekit.Clock) *memory.Store {
	t.Helper()
	s, err := memory.NewStore(memory.StoreOptions{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var setups = []setup{
	{"object", true, func(t *testing.T, c cachekit.Clock) (cachekit.Store, cachekit.Options) {
		return memStore(t, c), cachekit.Options{Clock: c}
	}},
	{"gob", false, func(t *testing.T, c cachekit.Clock) (cachekit.Store, cachekit.Options) {
		return memStore(t, c), cachekit.Options{Clock: c, Codec: codec.Gob}
	}},
	{"json", false, func(t *testing.T, c cachekit.Clock) (cachekit.Store, cachekit.Options) {
		return memStore(t, c), cachekit.Options{Clock: c, Codec: codec.JSON}
	}},
	{"fallback", false, func(t *testing.T, c cachekit.Clock) (cachekit.Store, cachekit.Options) {
		return bytesOnly{memStore(t, c)}, cachekit.Options{Clock: c}
	}},
}

func newCache[V any](t *testing.T, su setup, mod func(*cachekit.Options)) (*cachekit.Cache[V], *cachetest.FakeClock) {
	t.Helper()
	clock := cachetest.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	store, opts := su.open(t, clock)
	if mod != nil {
		mod(&opts)
	}
	c, err := cachekit.New[V](store, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, clock
}

func forEachSetup(t *testing.T, fn func(t *testing.T, su setup)) {
	for _, su := range setups {
		t.Run(su.name, func(t *testing.T) {
			t.Parallel()
			fn(t, su)
		})
	}
}

func TestGetSetMiss(t *testing.T) {
	t.Parallel()
	forEachSetup(t, func(t *testing.T, su setup) {
		ctx := context.Background()
		c, _ := newCache[*user](t, su, nil)
		u, err := c.Get(ctx, "absent")
		if !errors.Is(err, cachekit.ErrMiss) || u != nil {
			t.Fatalf("Get(absent) = %v, %v; want nil, ErrMiss", u, err)
		}
		want := &user{ID: 1, Name: "ada"}
		if err := c.Set(ctx, "u1", want); err != nil {
			t.Fatal(err)
		}
		got, err := c.Get(ctx, "u1")
		if err != nil || *got != *want {
			t.Fatalf("Get = %+v, %v; want %+v", got, err, want)
		}
		if su.object && got != want {
			t.Fatalf("object tier returned %p, want the same pointer %p", got, want)
		}
		if !su.object && got == want {
			t.Fatal("byte tier returned the caller's pointer, want a decoded copy")
		}
		if ok, err := c.Has(ctx, "u1"); !ok || err != nil {
			t.Fatalf("Has(u1) = %v, %v; want true, nil", ok, err)
		}
		if ok, err := c.Has(ctx, "absent"); ok || err != nil {
			t.Fatalf("Has(absent) = %v, %v; want false, nil", ok, err)
		}
	})
}

func TestObjectTierMutationVisible(t *testing.T) {
	t.Parallel()
	c, _ := newCache[*user](t, setups[0], nil)
	ctx := context.Background()
	u := &user{ID: 1}
	if err := c.Set(ctx, "u", u); err != nil {
		t.Fatal(err)
	}
	u.Name = "changed"
	got, _ := c.Get(ctx, "u")
	if got.Name != "changed" {
		t.Fatalf("Name = %q after mutating the stored pointer, want %q", got.Name, "changed")
	}
	if !c.ObjectTier() {
		t.Fatal("ObjectTier() = false on a memory store with no codec")
	}
}

func TestTTLSemantics(t *testing.T) {
	t.Parallel()
	forEachSetup(t, func(t *testing.T, su setup) {
		ctx := context.Background()
		c, clock := newCache[string](t, su, func(o *cachekit.Options) { o.DefaultTTL = time.Minute })
		must(t, c.Set(ctx, "default", "v"))
		must(t, c.Set(ctx, "short", "v", cachekit.TTL(time.Second)))
		must(t, c.Set(ctx, "forever", "v", cachekit.TTL(cachekit.NoExpiry)))
		must(t, c.Set(ctx, "zero", "v", cachekit.TTL(0))) // zero = the default
		e, err := c.GetEntry(ctx, "default")
		if err != nil || !e.Expires.Equal(clock.Now().Add(time.Minute)) {
			t.Fatalf("entry Expires = %v, %v; want now+1m", e, err)
		}
		clock.Advance(2 * time.Second)
		wantMiss(t, c, "short")
		wantHit(t, c, "default", "v")
		clock.Advance(time.Minute)
		wantMiss(t, c, "default")
		wantMiss(t, c, "zero")
		clock.Advance(1000 * time.Hour)
		wantHit(t, c, "forever", "v")

		// A negative TTL stores nothing and deletes (Django's timeout=0).
		must(t, c.Set(ctx, "forever", "new", cachekit.TTL(cachekit.ExpireNow)))
		wantMiss(t, c, "forever")
		added, err := c.Add(ctx, "k", "v", cachekit.TTL(-time.Second))
		if added || err != nil {
			t.Fatalf("Add with a negative TTL = %v, %v; want false, nil", added, err)
		}
		wantMiss(t, c, "k")
	})
}

func TestOptionsValidation(t *testing.T) {
	t.Parallel()
	store := memStore(t, nil)
	defer store.Close()
	for _, o := range []cachekit.Options{{DefaultTTL: -1}, {LoadTimeout: -1}, {Version: -2}} {
		if _, err := cachekit.New[int](store, o); err == nil {
			t.Errorf("New(%+v) succeeded, want an error", o)
		}
	}
	if _, err := cachekit.New[int](nil, cachekit.Options{}); err == nil {
		t.Error("New(nil store) succeeded, want an error")
	}
}

func TestKeys(t *testing.T) {
	t.Parallel()
	c, _ := newCache[string](t, setups[0], func(o *cachekit.Options) { o.Prefix = "app"; o.Version = 3 })
	if k, err := c.Key("user:1"); k != "app:3:user:1" || err != nil {
		t.Fatalf("Key = %q, %v; want app:3:user:1", k, err)
	}
	if _, err := c.Key(""); !errors.Is(err, cachekit.ErrInvalidKey) {
		t.Fatalf("Key(\"\") error = %v, want ErrInvalidKey", err)
	}
	if err := c.Set(context.Background(), "", "v"); !errors.Is(err, cachekit.ErrInvalidKey) {
		t.Fatalf("Set(\"\") error = %v, want ErrInvalidKey", err)
	}
	if _, err := c.Get(context.Background(), ""); !errors.Is(err, cachekit.ErrInvalidKey) {
		t.Fatalf("Get(\"\") error = %v, want ErrInvalidKey", err)
	}
	custom, _ := newCache[string](t, setups[0], func(o *cachekit.Options) {
		o.KeyFunc = func(key, prefix string, version int) string { return fmt.Sprintf("%s/v%d/%s", prefix, version, key) }
		o.Prefix = "p"
	})
	if k, _ := custom.Key("x"); k != "p/v1/x" {
		t.Fatalf("custom KeyFunc gave %q, want p/v1/x", k)
	}
}

func TestMemcachedKeyPolicy(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 200) // 400 bytes
	cases := []struct {
		name, key string
		same      bool
	}{
		{"short clean key unchanged", "app:1:user:42", true},
		{"exactly 250 bytes unchanged", strings.Repeat("k", 250), true},
		{"251 bytes hashed", strings.Repeat("k", 251), false},
		{"space hashed", "has space", false},
		{"control byte hashed", "a\x00b", false},
		{"DEL hashed", "a\x7fb", false},
		{"long multi-byte key", long, false},
	}
	seen := map[string]string{}
	for _, tc := range cases {
		got, err := cachekit.MemcachedKey(tc.key)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if tc.same && got != tc.key {
			t.Errorf("%s: got %q, want the key unchanged", tc.name, got)
		}
		if !tc.same {
			if got == tc.key {
				t.Errorf("%s: key passed unchanged", tc.name)
			}
			if got[0] != tc.key[0] {
				t.Errorf("%s: %q lost the readable head of %q", tc.name, got, tc.key)
			}
		}
		if len(got) > cachekit.MemcachedMaxKeyLen {
			t.Errorf("%s: %d bytes, want at most 250", tc.name, len(got))
		}
		for i := 0; i < len(got); i++ {
			if got[i] <= ' ' || got[i] == 0x7f {
				t.Errorf("%s: unsafe byte %#x in %q", tc.name, got[i], got)
			}
		}
		if prev, dup := seen[got]; dup {
			t.Errorf("%q and %q map to the same key", prev, tc.key)
		}
		seen[got] = tc.key
	}
	// A safe key spelling another key's rewritten form is rewritten too.
	rewritten, _ := cachekit.MemcachedKey(strings.Repeat("k", 251))
	if again, _ := cachekit.MemcachedKey(rewritten); again == rewritten {
		t.Errorf("%q passed unchanged: it aliases the rewritten 251-byte key", rewritten)
	}
	got, _ := cachekit.MemcachedKey(long)
	if !strings.HasPrefix(got, strings.Repeat("é", 92)+"-") {
		t.Errorf("long multi-byte key: head %q is not cut on a character boundary", got[:190])
	}
	// Distinct keys that differ only in bytes the head rewrites stay distinct.
	a, _ := cachekit.MemcachedKey("x y")
	b, _ := cachekit.MemcachedKey("x\ty")
	if a == b {
		t.Errorf("%q and %q collide", "x y", "x\\ty")
	}
	if _, err := cachekit.MemcachedKey(""); !errors.Is(err, cachekit.ErrInvalidKey) {
		t.Errorf("empty key: got %v, want ErrInvalidKey", err)
	}
	c, _ := newCache[string](t, setups[1], func(o *cachekit.Options) { o.KeyPolicy = cachekit.MemcachedKey })
	ctx := context.Background()
	key := strings.Repeat("long key ", 40)
	must(t, c.Set(ctx, key, "v"))
	wantHit(t, c, key, "v")
	full, _ := c.Key(key)
	if len(full) != cachekit.MemcachedMaxKeyLen || !strings.HasPrefix(full, ":1:long_key_long_key") {
		t.Errorf("policy key %q: want 250 bytes with a readable head", full)
	}
}

func TestAddAndGetOrSet(t *testing.T) {
	t.Parallel()
	forEachSetup(t, func(t *testing.T, su setup) {
		ctx := context.Background()
		c, clock := newCache[string](t, su, nil)
		added, err := c.Add(ctx, "k", "first", cachekit.TTL(time.Second))
		if !added || err != nil {
			t.Fatalf("Add(absent) = %v, %v; want true, nil", added, err)
		}
		added, err = c.Add(ctx, "k", "second")
		if added || err != nil {
			t.Fatalf("Add(present) = %v, %v; want false, nil", added, err)
		}
		wantHit(t, c, "k", "first")
		if v, err := c.GetOrSet(ctx, "k", "other"); v != "first" || err != nil {
			t.Fatalf("GetOrSet(present) = %q, %v; want first", v, err)
		}
		clock.Advance(2 * time.Second)
		if v, err := c.GetOrSet(ctx, "k", "other"); v != "other" || err != nil {
			t.Fatalf("GetOrSet(expired) = %q, %v; want other", v, err)
		}
		wantHit(t, c, "k", "other")
	})
}

func TestGetOrLoad(t *testing.T) {
	t.Parallel()
	forEachSetup(t, func(t *testing.T, su setup) {
		ctx := context.Background()
		c, _ := newCache[string](t, su, nil)
		var calls atomic.Int32
		release := make(chan struct{})
		load := func(context.Context) (string, error) {
			calls.Add(1)
			<-release
			return "loaded", nil
		}
		var wg sync.WaitGroup
		const callers = 20
		for range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v, err := c.GetOrLoad(ctx, "k", load)
				if v != "loaded" || err != nil {
					t.Errorf("GetOrLoad = %q, %v; want loaded", v, err)
				}
			}()
		}
		for calls.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(20 * time.Millisecond) // let the other callers join the flight
		close(release)
		wg.Wait()
		if n := calls.Load(); n != 1 {
			t.Fatalf("loader ran %d times for %d concurrent callers, want 1", n, callers)
		}
		// Now cached: no further load.
		v, err := c.GetOrLoad(ctx, "k", func(context.Context) (string, error) { return "again", nil })
		if v != "loaded" || err != nil {
			t.Fatalf("GetOrLoad on a hit = %q, %v; want the cached value", v, err)
		}
		e, err := c.GetEntry(ctx, "k")
		if err != nil || e.Created.IsZero() {
			t.Fatalf("GetEntry after a load = %+v, %v", e, err)
		}
	})
}

func TestGetOrLoadErrorNotCached(t *testing.T) {
	t.Parallel()
	c, _ := newCache[int](t, setups[1], nil)
	ctx := context.Background()
	boom := errors.New("db down")
	if _, err := c.GetOrLoad(ctx, "k", func(context.Context) (int, error) { return 0, boom }); !errors.Is(err, boom) {
		t.Fatalf("GetOrLoad with a failing loader: got %v, want the loader's error", err)
	}
	wantMiss(t, c, "k")
	if v, err := c.GetOrLoad(ctx, "k", func(context.Context) (int, error) { return 7, nil }); v != 7 || err != nil {
		t.Fatalf("GetOrLoad after a failure = %d, %v; want 7", v, err)
	}
}

func TestGetOrLoadPanicReachesEveryWaiter(t *testing.T) {
	t.Parallel()
	c, _ := newCache[int](t, setups[0], nil)
	ctx := context.Background()
	start := make(chan struct{})
	var entered atomic.Int32
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = c.GetOrLoad(ctx, "k", func(context.Context) (int, error) {
				entered.Add(1)
				<-start
				panic("loader exploded")
			})
		}()
	}
	for entered.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	close(start)
	wg.Wait()
	for i, err := range errs {
		var pe *cachekit.PanicError
		if !errors.As(err, &pe) || pe.Value != "loader exploded" || len(pe.Stack) == 0 {
			t.Errorf("waiter %d: got %v, want a *PanicError carrying the panic", i, err)
		}
	}
	wantMiss(t, c, "k")
}

func TestGetOrLoadCallerCancel(t *testing.T) {
	t.Parallel()
	c, _ := newCache[string](t, setups[0], nil)
	ctx, cancel := context.WithCancel(context.Background())
	started, finish := make(chan struct{}), make(chan struct{})
	var loadCtxErr atomic.Value
	go func() {
		<-started
		cancel()
	}()
	_, err := c.GetOrLoad(ctx, "k", func(lctx context.Context) (string, error) {
		close(started)
		<-finish
		if lctx.Err() != nil {
			loadCtxErr.Store(lctx.Err())
		}
		return "v", nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller got %v, want context.Canceled", err)
	}
	// A second caller shares the same, still running load.
	done := make(chan string)
	go func() {
		v, err := c.GetOrLoad(context.Background(), "k", func(context.Context) (string, error) { return "other", nil })
		if err != nil {
			t.Errorf("second caller: %v", err)
		}
		done <- v
	}()
	time.Sleep(20 * time.Millisecond)
	close(finish)
	if v := <-done; v != "v" {
		t.Fatalf("second caller got %q, want v from the shared load", v)
	}
	if e := loadCtxErr.Load(); e != nil {
		t.Fatalf("the load's context ended with the caller's: %v", e)
	}
	wantHit(t, c, "k", "v")
}

func TestCorruptValues(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, _ := newCache[user](t, setups[1], nil)
	k, _ := c.Key("u")
	for _, garbage := range [][]byte{nil, {}, []byte("not an envelope"), {0xCE}, {0xCE, 1, 0, 0, 0, 0, 0, 0, 0xff, 0xff}} {
		if err := c.Store().Set(ctx, k, garbage, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Get(ctx, "u"); !errors.Is(err, cachekit.ErrCorrupt) {
			t.Fatalf("Get of %q: got %v, want ErrCorrupt", garbage, err)
		}
	}
	// GetOrLoad treats corrupt bytes as a miss and overwrites them.
	v, err := c.GetOrLoad(ctx, "u", func(context.Context) (user, error) { return user{ID: 9}, nil })
	if err != nil || v.ID != 9 {
		t.Fatalf("GetOrLoad over corrupt bytes = %+v, %v; want the loaded value", v, err)
	}
	if got, err := c.Get(ctx, "u"); err != nil || got.ID != 9 {
		t.Fatalf("Get after the reload = %+v, %v", got, err)
	}

	// A nil pointer cannot be gob-encoded: a clear error, the old value kept.
	pc, _ := newCache[*user](t, setups[1], nil)
	must(t, pc.Set(ctx, "p", &user{ID: 1}))
	if err := pc.Set(ctx, "p", nil); err == nil {
		t.Fatal("Set(nil pointer) with gob succeeded, want an encode error")
	}
	if got, err := pc.Get(ctx, "p"); err != nil || got.ID != 1 {
		t.Fatalf("after a failed Set: %+v, %v; want the old value", got, err)
	}
	// On the object tier nil is an ordinary value.
	oc, _ := newCache[*user](t, setups[0], nil)
	must(t, oc.Set(ctx, "p", nil))
	if got, err := oc.Get(ctx, "p"); got != nil || err != nil {
		t.Fatalf("object tier nil = %v, %v; want nil, nil", got, err)
	}
}

func TestIncrDecr(t *testing.T) {
	t.Parallel()
	forEachSetup(t, func(t *testing.T, su setup) {
		ctx := context.Background()
		c, clock := newCache[int64](t, su, nil)
		if _, err := cachekit.Incr(ctx, c, "n", 1); !errors.Is(err, cachekit.ErrMiss) {
			t.Fatalf("Incr(absent): got %v, want ErrMiss", err)
		}
		must(t, c.Set(ctx, "n", 10, cachekit.TTL(time.Minute)))
		if v, err := cachekit.Incr(ctx, c, "n", 5); v != 15 || err != nil {
			t.Fatalf("Incr = %d, %v; want 15", v, err)
		}
		if v, err := cachekit.Decr(ctx, c, "n", 20); v != -5 || err != nil {
			t.Fatalf("Decr = %d, %v; want -5", v, err)
		}
		wantHit(t, c, "n", int64(-5))
		clock.Advance(2 * time.Minute) // the TTL survived the increments
		wantMiss(t, c, "n")

		must(t, c.Set(ctx, "max", math.MaxInt64))
		if _, err := cachekit.Incr(ctx, c, "max", 1); !errors.Is(err, cachekit.ErrNotInteger) {
			t.Fatalf("Incr past MaxInt64: got %v, want ErrNotInteger", err)
		}

		small, _ := newCache[int8](t, su, nil)
		must(t, small.Set(ctx, "b", 120))
		if _, err := cachekit.Incr(ctx, small, "b", 10); !errors.Is(err, cachekit.ErrNotInteger) {
			t.Fatalf("int8 overflow: got %v, want ErrNotInteger", err)
		}
		u, _ := newCache[uint](t, su, nil)
		must(t, u.Set(ctx, "u", 3))
		if _, err := cachekit.Decr(ctx, u, "u", 5); !errors.Is(err, cachekit.ErrNotInteger) {
			t.Fatalf("uint below zero: got %v, want ErrNotInteger", err)
		}
	})
}

func TestIncrAtomic(t *testing.T) {
	t.Parallel()
	for _, su := range setups[:2] { // object tier and a Counter store
		t.Run(su.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			c, _ := newCache[int](t, su, nil)
			must(t, c.Set(ctx, "n", 0))
			var wg sync.WaitGroup
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range 100 {
						if _, err := cachekit.Incr(ctx, c, "n", 1); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			wantHit(t, c, "n", 800)
		})
	}
}

func TestVersions(t *testing.T) {
	t.Parallel()
	forEachSetup(t, func(t *testing.T, su setup) {
		ctx := context.Background()
		c, clock := newCache[string](t, su, nil)
		must(t, c.Set(ctx, "k", "v", cachekit.TTL(time.Hour)))
		nv, err := c.IncrVersion(ctx, "k", 1)
		if nv != 2 || err != nil {
			t.Fatalf("IncrVersion = %d, %v; want 2", nv, err)
		}
		wantMiss(t, c, "k")
		v2 := c.WithVersion(2)
		wantHit(t, v2, "k", "v")
		if nv, err := v2.DecrVersion(ctx, "k", 1); nv != 1 || err != nil {
			t.Fatalf("DecrVersion = %d, %v; want 1", nv, err)
		}
		wantHit(t, c, "k", "v")
		wantMiss(t, v2, "k")
		if _, err := c.IncrVersion(ctx, "absent", 1); !errors.Is(err, cachekit.ErrMiss) {
			t.Fatalf("IncrVersion(absent): got %v, want ErrMiss", err)
		}
		clock.Advance(61 * time.Minute) // the remaining TTL moved with the value
		wantMiss(t, c, "k")
	})
}

func TestManyAndDelete(t *testing.T) {
	t.Parallel()
	forEachSetup(t, func(t *testing.T, su setup) {
		ctx := context.Background()
		c, _ := newCache[string](t, su, nil)
		must(t, c.SetMany(ctx, map[string]string{"a": "1", "b": "2", "c": "3"}))
		got, err := c.GetMany(ctx, "a", "b", "c", "absent")
		if err != nil || len(got) != 3 || got["a"] != "1" || got["c"] != "3" {
			t.Fatalf("GetMany = %v, %v", got, err)
		}
		if ok, err := c.Delete(ctx, "a"); !ok || err != nil {
			t.Fatalf("Delete(a) = %v, %v; want true", ok, err)
		}
		if ok, err := c.Delete(ctx, "a"); ok || err != nil {
			t.Fatalf("Delete(a) again = %v, %v; want false", ok, err)
		}
		if n, err := c.DeleteMany(ctx, "b", "c", "absent"); n != 2 || err != nil {
			t.Fatalf("DeleteMany = %d, %v; want 2", n, err)
		}
		if got, _ := c.GetMany(ctx, "a", "b", "c"); len(got) != 0 {
			t.Fatalf("GetMany after deletes = %v, want empty", got)
		}
	})
}

func TestTouchAndClear(t *testing.T) {
	t.Parallel()
	forEachSetup(t, func(t *testing.T, su setup) {
		ctx := context.Background()
		c, clock := newCache[string](t, su, nil)
		must(t, c.Set(ctx, "k", "v", cachekit.TTL(time.Second)))
		if ok, err := c.Touch(ctx, "k", time.Hour); !ok || err != nil {
			t.Fatalf("Touch = %v, %v; want true", ok, err)
		}
		if ok, err := c.Touch(ctx, "absent", time.Hour); ok || err != nil {
			t.Fatalf("Touch(absent) = %v, %v; want false", ok, err)
		}
		clock.Advance(time.Minute)
		wantHit(t, c, "k", "v")
		if ok, err := c.Touch(ctx, "k", cachekit.ExpireNow); !ok || err != nil {
			t.Fatalf("Touch(ExpireNow) = %v, %v; want true", ok, err)
		}
		wantMiss(t, c, "k")

		must(t, c.Set(ctx, "x", "1"))
		err := c.Clear(ctx)
		if su.name == "fallback" {
			if !errors.Is(err, cachekit.ErrNotSupported) {
				t.Fatalf("Clear without a Clearer: got %v, want ErrNotSupported", err)
			}
			return
		}
		must(t, err)
		wantMiss(t, c, "x")
	})
}

func TestClosedAndCancelled(t *testing.T) {
	t.Parallel()
	forEachSetup(t, func(t *testing.T, su setup) {
		c, _ := newCache[int](t, su, nil)
		cancelled, cancel := context.WithCancel(context.Background())
		cancel()
		ops := map[string]func(ctx context.Context) error{
			"Get":       func(ctx context.Context) error { _, err := c.Get(ctx, "k"); return err },
			"Set":       func(ctx context.Context) error { return c.Set(ctx, "k", 1) },
			"Add":       func(ctx context.Context) error { _, err := c.Add(ctx, "k", 1); return err },
			"GetOrLoad": func(ctx context.Context) error { _, err := c.GetOrLoad(ctx, "k", loadOne); return err },
			"Touch":     func(ctx context.Context) error { _, err := c.Touch(ctx, "k", 0); return err },
			"Delete":    func(ctx context.Context) error { _, err := c.Delete(ctx, "k"); return err },
			"GetMany":   func(ctx context.Context) error { _, err := c.GetMany(ctx, "k"); return err },
			"SetMany":   func(ctx context.Context) error { return c.SetMany(ctx, map[string]int{"k": 1}) },
			"Incr":      func(ctx context.Context) error { _, err := cachekit.Incr(ctx, c, "k", 1); return err },
			"Version":   func(ctx context.Context) error { _, err := c.IncrVersion(ctx, "k", 1); return err },
			"Clear":     func(ctx context.Context) error { return c.Clear(ctx) },
		}
		for name, op := range ops {
			if err := op(cancelled); !errors.Is(err, context.Canceled) {
				t.Errorf("%s with a cancelled context: got %v, want context.Canceled", name, err)
			}
		}
		must(t, c.Close())
		for name, op := range ops {
			if err := op(context.Background()); !errors.Is(err, cachekit.ErrClosed) {
				t.Errorf("%s after Close: got %v, want ErrClosed", name, err)
			}
		}
		must(t, c.Close())
	})
}

func loadOne(context.Context) (int, error) { return 1, nil }

func TestCodecsThroughCache(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, cd := range []codec.Codec{codec.Gob, codec.JSON} {
		c, _ := newCache[map[string][]int](t, setups[1], func(o *cachekit.Options) { o.Codec = cd })
		want := map[string][]int{"a": {1, 2}, "b": nil}
		must(t, c.Set(ctx, "m", want))
		got, err := c.Get(ctx, "m")
		if err != nil || len(got) != 2 || len(got["a"]) != 2 || got["a"][1] != 2 {
			t.Fatalf("%s: Get = %v, %v; want %v", cd.Name(), got, err, want)
		}
	}
	raw, _ := newCache[[]byte](t, setups[1], func(o *cachekit.Options) { o.Codec = codec.Raw })
	must(t, raw.Set(ctx, "b", []byte{0, 1, 2, 255}))
	if got, err := raw.Get(ctx, "b"); err != nil || string(got) != "\x00\x01\x02\xff" {
		t.Fatalf("raw: Get = %q, %v", got, err)
	}
	rawInt, _ := newCache[struct{ A int }](t, setups[1], func(o *cachekit.Options) { o.Codec = codec.Raw })
	if err := rawInt.Set(ctx, "x", struct{ A int }{1}); !errors.Is(err, codec.ErrUnsupported) {
		t.Fatalf("raw codec with a struct: got %v, want codec.ErrUnsupported", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantHit[V comparable](t *testing.T, c *cachekit.Cache[V], key string, want V) {
	t.Helper()
	got, err := c.Get(context.Background(), key)
	if err != nil || got != want {
		t.Fatalf("Get(%q) = %v, %v; want %v", key, got, err, want)
	}
}

func wantMiss[V any](t *testing.T, c *cachekit.Cache[V], key string) {
	t.Helper()
	got, err := c.Get(context.Background(), key)
	if !errors.Is(err, cachekit.ErrMiss) {
		t.Fatalf("Get(%q) = %v, %v; want ErrMiss", key, got, err)
	}
}
