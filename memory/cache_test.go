package memory

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/cachetest"
)

// newFakeClock returns a clock that moves only when told to.
func newFakeClock() *cachetest.FakeClock {
	return cachetest.NewFakeClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
}

// event is one OnEvict call.
type event struct {
	key    string
	value  int
	reason Reason
}

// recorder collects OnEvict calls.
type recorder struct {
	mu     sync.Mutex // protects events
	events []event
}

func (r *recorder) onEvict(k string, v int, reason Reason) {
	r.mu.Lock()
	r.events = append(r.events, event{k, v, reason})
	r.mu.Unlock()
}

func (r *recorder) take() []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev := r.events
	r.events = nil
	return ev
}

// newCache returns a cache closed at the end of the test.
func newCache[K comparable, V any](t *testing.T, opts Options[K, V]) *Cache[K, V] {
	t.Helper()
	c, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestPointerIdentity(t *testing.T) {
	t.Parallel()
	type user struct{ Name string }
	c := newCache(t, Options[string, *user]{})
	u := &user{Name: "ada"}
	c.Set("u", u)
	got, ok := c.Get("u")
	if !ok || got != u {
		t.Fatalf("Get = %p, %v; want the same pointer %p, true", got, ok, u)
	}
	u.Name = "grace"
	if got, _ := c.Get("u"); got.Name != "grace" {
		t.Fatalf("Name after mutation = %q, want grace", got.Name)
	}
	m := map[string]int{"a": 1}
	cm := newCache(t, Options[int, map[string]int]{})
	cm.Set(1, m)
	got2, _ := cm.Get(1)
	got2["b"] = 2
	if m["b"] != 2 {
		t.Fatal("a map came back as a copy")
	}
}

func TestTTL(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	c := newCache(t, Options[string, int]{TTL: time.Minute, Clock: clock})
	c.Set("default", 1)                           // Options.TTL: one minute
	c.SetWithTTL("zero", 2, 0)                    // zero: the default TTL too
	c.SetWithTTL("short", 3, time.Second)         // per entry
	c.SetWithTTL("long", 4, time.Hour)            // per entry, longer than the default
	c.SetWithTTL("forever", 5, cachekit.NoExpiry) // never
	c.SetWithTTL("gone", 6, cachekit.ExpireNow)   // stores nothing
	if _, ok := c.Get("gone"); ok {
		t.Fatal("a negative TTL stored a value")
	}
	if e, ok := c.GetEntry("short"); !ok || !e.Expires.Equal(clock.Now().Add(time.Second)) {
		t.Fatalf("GetEntry(short) = %+v, %v; want expiry in 1s", e, ok)
	}
	if e, _ := c.GetEntry("forever"); !e.Expires.IsZero() {
		t.Fatalf("GetEntry(forever).Expires = %v, want zero", e.Expires)
	}

	live := func() []string {
		var keys []string
		for _, k := range []string{"default", "zero", "short", "long", "forever"} {
			if _, ok := c.Get(k); ok {
				keys = append(keys, k)
			}
		}
		return keys
	}
	steps := []struct {
		advance time.Duration
		want    []string
	}{
		{999 * time.Millisecond, []string{"default", "zero", "short", "long", "forever"}},
		{time.Millisecond, []string{"default", "zero", "long", "forever"}}, // at the deadline: expired
		{time.Minute, []string{"long", "forever"}},
		{time.Hour, []string{"forever"}},
		{1000 * time.Hour, []string{"forever"}},
	}
	for _, s := range steps {
		clock.Advance(s.advance)
		if got := live(); !slices.Equal(got, s.want) {
			t.Fatalf("live keys after +%v = %v, want %v", s.advance, got, s.want)
		}
	}

	// A negative TTL deletes an existing key.
	c.Set("x", 1)
	c.SetWithTTL("x", 2, -time.Second)
	if _, ok := c.Get("x"); ok {
		t.Fatal("a negative TTL did not delete the key")
	}
}

// TestExpiryRekey: the expiry goroutine removes entries at their current
// deadline when writes moved it (the heap is lazy, expiry.go): later by
// Touch or a Set with a TTL, earlier by Touch, or away by a Set without
// TTL. Only the goroutine removes here: no Get is made before it has.
func TestExpiryRekey(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	var mu sync.Mutex
	expired := map[string]bool{}
	c := newCache(t, Options[string, int]{Clock: clock, CleanupInterval: time.Millisecond,
		OnEvict: func(k string, _ int, r Reason) {
			if r == ReasonExpired {
				mu.Lock()
				expired[k] = true
				mu.Unlock()
			}
		}})
	for _, k := range []string{"keep", "touched", "reset", "never"} {
		c.SetWithTTL(k, 1, time.Second)
	}
	c.SetWithTTL("shortened", 1, time.Hour)
	c.Touch("touched", time.Hour)
	c.SetWithTTL("reset", 2, time.Hour)
	c.Set("never", 2) // no TTL: never expires
	c.Touch("shortened", time.Second)
	waitExpired := func(want ...string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			mu.Lock()
			got := slices.Sorted(maps.Keys(expired))
			mu.Unlock()
			if slices.Equal(got, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("expired %v, want %v", got, want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	clock.Advance(2 * time.Second)
	waitExpired("keep", "shortened")
	time.Sleep(20 * time.Millisecond) // more ticks: the moved deadlines hold
	waitExpired("keep", "shortened")
	if c.Len() != 3 {
		t.Fatalf("Len = %d after the first expiries, want 3", c.Len())
	}
	clock.Advance(2 * time.Hour)
	waitExpired("keep", "reset", "shortened", "touched")
	if v, ok := c.Get("never"); !ok || v != 2 {
		t.Fatalf("Get(never) = %d, %v; want 2, true", v, ok)
	}
}

// TestHugeTTL: a TTL past the range of expiry stamps means never, on the
// system clock (stamps computed from the monotonic clock) and on another.
func TestHugeTTL(t *testing.T) {
	t.Parallel()
	for _, clock := range []cachekit.Clock{cachekit.SystemClock{}, newFakeClock()} {
		c := newCache(t, Options[string, int]{Clock: clock})
		for _, ttl := range []time.Duration{290 * 365 * 24 * time.Hour, math.MaxInt64 - 1} {
			c.SetWithTTL("k", 1, ttl)
			if _, ok := c.Get("k"); !ok {
				t.Errorf("%T: SetWithTTL(%v) then Get missed", clock, ttl)
			}
			c.Touch("k", ttl)
			if _, ok := c.Get("k"); !ok {
				t.Errorf("%T: Touch(%v) then Get missed", clock, ttl)
			}
		}
	}
}

func TestAddUpdateTouch(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	c := newCache(t, Options[string, int]{Clock: clock})
	if !c.Add("k", 1, time.Second) {
		t.Fatal("Add on an absent key = false")
	}
	if c.Add("k", 2, 0) {
		t.Fatal("Add on a live key = true")
	}
	if c.Add("neg", 1, cachekit.ExpireNow) {
		t.Fatal("Add with a negative TTL = true")
	}
	v, err := c.Update("k", func(old int) (int, error) { return old + 10, nil })
	if err != nil || v != 11 {
		t.Fatalf("Update = %d, %v; want 11, nil", v, err)
	}
	boom := errors.New("boom")
	if _, err := c.Update("k", func(int) (int, error) { return 0, boom }); !errors.Is(err, boom) {
		t.Fatalf("Update with failing fn: %v, want boom", err)
	}
	if v, _ := c.Get("k"); v != 11 {
		t.Fatalf("after a failed Update Get = %d, want 11", v)
	}
	if _, err := c.Update("absent", func(int) (int, error) { return 1, nil }); !errors.Is(err, cachekit.ErrMiss) {
		t.Fatalf("Update(absent): %v, want ErrMiss", err)
	}
	if !c.Touch("k", time.Hour) {
		t.Fatal("Touch on a live key = false")
	}
	if c.Touch("absent", time.Hour) {
		t.Fatal("Touch on an absent key = true")
	}
	clock.Advance(2 * time.Second) // past the original 1s TTL
	if v, ok := c.Get("k"); !ok || v != 11 {
		t.Fatalf("Get after Touch extended the TTL = %d, %v; want 11, true", v, ok)
	}
	// Update keeps the expiry set by Touch.
	c.Update("k", func(old int) (int, error) { return old + 1, nil })
	clock.Advance(time.Hour)
	if _, ok := c.Get("k"); ok {
		t.Fatal("entry survived its Touch TTL after an Update")
	}
	if !c.Add("k", 3, 0) {
		t.Fatal("Add on an expired key = false")
	}
	if !c.Touch("k", cachekit.ExpireNow) {
		t.Fatal("Touch with ExpireNow on a live key = false")
	}
	if _, ok := c.Get("k"); ok {
		t.Fatal("Touch with ExpireNow did not delete")
	}
}

func TestBoundByEntries(t *testing.T) {
	t.Parallel()
	for _, max := range []int{1, 2, 10, 100, 1000} {
		t.Run(fmt.Sprint(max), func(t *testing.T) {
			t.Parallel()
			var rec recorder
			c := newCache(t, Options[string, int]{MaxEntries: max, OnEvict: rec.onEvict, Stats: true})
			r := rand.New(rand.NewPCG(1, uint64(max)))
			for i := range 20 * max {
				k := fmt.Sprint(r.IntN(5 * max))
				c.Set(k, i)
				if n := c.Len(); n > max {
					t.Fatalf("Len after Set #%d = %d, want <= %d", i, n, max)
				}
				if v, ok := c.Get(k); !ok || v != i {
					t.Fatalf("Get(%s) right after Set = %d, %v; want %d, true", k, v, ok, i)
				}
			}
			evicted := 0
			for _, e := range rec.take() {
				if e.reason == ReasonEvicted {
					evicted++
				}
			}
			if got := c.Stats().Evictions; got != uint64(evicted) || evicted == 0 {
				t.Fatalf("Stats.Evictions = %d, OnEvict saw %d evictions; want equal and > 0", got, evicted)
			}
		})
	}
}

func TestBoundByWeight(t *testing.T) {
	t.Parallel()
	var rec recorder
	weigh := func(_ string, v int) uint32 { return uint32(v) }
	c := newCache(t, Options[string, int]{MaxWeight: 100, Weigher: weigh, OnEvict: rec.onEvict})
	r := rand.New(rand.NewPCG(2, 2))
	for i := range 2000 {
		k := fmt.Sprint(r.IntN(200))
		w := 1 + r.IntN(30)
		c.Set(k, w)
		if v, ok := c.Get(k); !ok || v != w {
			t.Fatalf("Get(%s) right after Set = %d, %v; want %d, true", k, v, ok, w)
		}
		total := 0
		for _, v := range c.All() {
			total += v
		}
		if total > 100 {
			t.Fatalf("total weight after Set #%d = %d, want <= 100", i, total)
		}
	}
	if e, ok := c.GetEntry(fmt.Sprint(0)); ok && e.Weight != uint32(e.Value) {
		t.Fatalf("Entry.Weight = %d, want %d", e.Weight, e.Value)
	}

	// Overweight: not stored, the old value goes, OnEvict says why. (Clear
	// first, so that storing big does not depend on the policy's state.)
	c.Clear()
	rec.take()
	c.Set("big", 5)
	c.Set("big", 101)
	if v, ok := c.Get("big"); ok {
		t.Fatalf("an entry heavier than MaxWeight was stored: %d", v)
	}
	want := []event{{"big", 5, ReasonReplaced}, {"big", 101, ReasonRejected}}
	if got := rec.take(); !slices.Equal(got, want) {
		t.Fatalf("OnEvict calls = %v, want %v", got, want)
	}
	// Update to an overweight value fails and keeps the old one.
	c.Set("u", 1)
	if _, err := c.Update("u", func(int) (int, error) { return 500, nil }); !errors.Is(err, cachekit.ErrTooLarge) {
		t.Fatalf("overweight Update: %v, want ErrTooLarge", err)
	}
	if v, _ := c.Get("u"); v != 1 {
		t.Fatalf("after an overweight Update Get = %d, want 1", v)
	}
	// An entry of exactly MaxWeight fits, alone.
	c.Set("full", 100)
	if v, ok := c.Get("full"); !ok || v != 100 || c.Len() != 1 {
		t.Fatalf("Get(full) = %d, %v with Len %d; want 100, true, 1", v, ok, c.Len())
	}
}

func TestOnEvictReasons(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	var rec recorder
	c := newCache(t, Options[string, int]{MaxEntries: 2, Clock: clock, OnEvict: rec.onEvict})
	check := func(step string, want ...event) {
		t.Helper()
		if got := rec.take(); !slices.Equal(got, want) {
			t.Fatalf("%s: OnEvict calls = %v, want %v", step, got, want)
		}
	}
	c.Set("a", 1)
	c.Set("a", 2)
	check("overwrite", event{"a", 1, ReasonReplaced})
	c.Delete("a")
	check("Delete", event{"a", 2, ReasonDeleted})
	c.Set("a", 3)
	c.SetWithTTL("a", 4, cachekit.ExpireNow)
	check("negative TTL", event{"a", 3, ReasonDeleted})
	c.SetWithTTL("e", 5, time.Second)
	clock.Advance(time.Second)
	c.Get("e")
	check("expired on read", event{"e", 5, ReasonExpired})
	c.SetWithTTL("e", 6, time.Second)
	clock.Advance(time.Second)
	c.Set("e", 7)
	check("expired entry overwritten", event{"e", 6, ReasonExpired})
	c.Set("b", 8)
	c.Set("c", 9)
	if ev := rec.take(); len(ev) != 1 || ev[0].reason != ReasonEvicted {
		t.Fatalf("third key in a cache of 2: OnEvict calls = %v, want one eviction", ev)
	}
	c.Clear()
	got := rec.take()
	slices.SortFunc(got, func(a, b event) int { return a.value - b.value })
	if len(got) != 2 || got[0].reason != ReasonCleared || got[1].reason != ReasonCleared || c.Len() != 0 {
		t.Fatalf("Clear: OnEvict calls = %v, Len %d; want two ReasonCleared, 0", got, c.Len())
	}
	c.Update("absent", func(int) (int, error) { return 0, nil })
	c.Touch("absent", time.Hour)
	check("nothing else")
}

func TestOnEvictOutsideLock(t *testing.T) {
	t.Parallel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		var c *Cache[string, int]
		calls := 0
		c = Must(Options[string, int]{
			MaxEntries: 4,
			TTL:        time.Hour,
			OnEvict: func(k string, v int, r Reason) {
				calls++
				// Each of these takes the cache's lock: a callback run under
				// it would deadlock here.
				c.Len()
				c.Get("other")
				c.Delete("nothing")
				if r == ReasonEvicted && v < 50 {
					c.Set(fmt.Sprint("re-", k), v+100)
				}
			},
		})
		defer c.Close()
		for i := range 50 {
			c.Set(fmt.Sprint(i), i)
			c.Set(fmt.Sprint(i), i) // replaced
		}
		c.Delete("49")
		c.Clear()
		if calls < 100 {
			t.Errorf("OnEvict ran %d times, want >= 100", calls)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("deadlock: OnEvict re-entering the cache did not return")
	}
}

func TestStats(t *testing.T) {
	t.Parallel()
	for _, on := range []bool{true, false} {
		t.Run(fmt.Sprint(on), func(t *testing.T) {
			t.Parallel()
			clock := newFakeClock()
			c := newCache(t, Options[int, int]{MaxEntries: 10, Stats: on, Clock: clock})
			for i := range 20 { // 10 evictions
				c.Set(i, i)
			}
			hits := 0
			for i := range 20 {
				if _, ok := c.Get(i); ok {
					hits++
				}
			}
			c.SetWithTTL(100, 1, time.Second)
			clock.Advance(time.Second)
			c.Get(100) // expired: a miss and an expiration
			want := Stats{Hits: uint64(hits), Misses: uint64(21 - hits), Evictions: 11, Expirations: 1}
			if !on {
				want = Stats{}
			}
			if got := c.Stats(); got != want {
				t.Fatalf("Stats = %+v, want %+v", got, want)
			}
			if on && (hits != 10 || want.HitRatio() != 10.0/21) {
				t.Fatalf("hits = %d, ratio %v; want 10, 10/21", hits, want.HitRatio())
			}
		})
	}
}

func TestAllKeysLenClear(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	c := newCache(t, Options[int, string]{Clock: clock})
	want := map[int]string{}
	for i := range 10 {
		c.Set(i, fmt.Sprint("v", i))
		want[i] = fmt.Sprint("v", i)
	}
	c.SetWithTTL(99, "expires", time.Second)
	clock.Advance(time.Second)
	if n := c.Len(); n != 11 {
		t.Fatalf("Len = %d, want 11 (the expired entry is still held)", n)
	}
	got := map[int]string{}
	for k, v := range c.All() {
		c.Set(k+1000, v) // the body may call the cache
		got[k] = v
	}
	for k := range want {
		if got[k] != want[k] {
			t.Fatalf("All()[%d] = %q, want %q", k, got[k], want[k])
		}
	}
	if len(got) != len(want) {
		t.Fatalf("All yielded %d entries, want %d (no expired ones)", len(got), len(want))
	}
	keys := slices.Sorted(c.Keys())
	if len(keys) != 20 || keys[0] != 0 || keys[19] != 1009 {
		t.Fatalf("Keys = %v, want 0..9 and 1000..1009", keys)
	}
	n := 0
	for range c.All() {
		n++
		break
	}
	if n != 1 {
		t.Fatal("All did not stop when the loop broke")
	}
	c.Clear()
	if n := c.Len(); n != 0 {
		t.Fatalf("Len after Clear = %d", n)
	}
	if _, ok := c.Get(1); ok {
		t.Fatal("Get after Clear hit")
	}
	c.Set(1, "again")
	if v, _ := c.Get(1); v != "again" {
		t.Fatal("Set after Clear did not store")
	}
}

func TestOptions(t *testing.T) {
	t.Parallel()
	weigh := func(int, int) uint32 { return 1 }
	bad := map[string]Options[int, int]{
		"negative MaxEntries":       {MaxEntries: -1},
		"MaxEntries and MaxWeight":  {MaxEntries: 1, MaxWeight: 1, Weigher: weigh},
		"MaxWeight without Weigher": {MaxWeight: 10},
		"Weigher without MaxWeight": {Weigher: weigh},
		"negative TTL":              {TTL: -time.Second},
		"negative LoadTimeout":      {LoadTimeout: -1},
		"negative CleanupInterval":  {CleanupInterval: -1},
	}
	for name, o := range bad {
		if _, err := New(o); err == nil {
			t.Errorf("New(%s) succeeded, want an error", name)
		}
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Must with invalid options did not panic")
			}
		}()
		Must(Options[int, int]{MaxEntries: -1})
	}()
	c := newCache(t, Options[int, int]{})
	for i := range DefaultMaxEntries + 100 {
		c.Set(i, i)
	}
	if n := c.Len(); n != DefaultMaxEntries {
		t.Fatalf("Len of a zero-Options cache after %d Sets = %d, want %d", DefaultMaxEntries+100, n, DefaultMaxEntries)
	}
}

func TestReasonString(t *testing.T) {
	t.Parallel()
	want := map[Reason]string{
		ReasonEvicted: "evicted", ReasonExpired: "expired", ReasonDeleted: "deleted",
		ReasonReplaced: "replaced", ReasonCleared: "cleared", ReasonRejected: "rejected", 0: "Reason(0)",
	}
	for r, s := range want {
		if got := r.String(); got != s {
			t.Errorf("Reason(%d).String() = %q, want %q", int(r), got, s)
		}
	}
}

func TestConcurrent(t *testing.T) {
	t.Parallel()
	var evicts sync.Map
	c := newCache(t, Options[int, *int]{
		MaxEntries: 100,
		TTL:        time.Millisecond,
		Stats:      true,
		OnEvict:    func(k int, _ *int, r Reason) { evicts.Store(r, true) },
		// A short interval makes the expiry goroutine race with the workers.
		CleanupInterval: time.Millisecond,
	})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 3))
			for i := range 3000 {
				k := r.IntN(300)
				switch i % 10 {
				case 0, 1, 2:
					v := k
					c.SetWithTTL(k, &v, time.Duration(r.IntN(3))*time.Millisecond)
				case 3:
					v := k
					c.Add(k, &v, 0)
				case 4:
					c.Delete(k)
				case 5:
					c.Update(k, func(old *int) (*int, error) { return old, nil })
				case 6:
					c.Touch(k, time.Second)
				case 7:
					for range c.All() {
						break
					}
				default:
					if v, ok := c.Get(k); ok && *v != k {
						t.Errorf("Get(%d) = %d: another key's value", k, *v)
						return
					}
				}
				if c.Len() > 100 {
					t.Errorf("Len = %d > 100", c.Len())
					return
				}
			}
		}()
	}
	wg.Wait()
	if _, ok := evicts.Load(ReasonEvicted); !ok {
		t.Error("no eviction happened")
	}
}
