package memcached_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/cachetest"
	"github.com/cachekit/cachekit/internal/testserver"
	"github.com/cachekit/cachekit/memcached"
)

// testPrefix returns a prefix owned by t: a readable part of its name plus
// a random suffix.
func testPrefix(t testing.TB) string {
	name := []byte(t.Name())
	for i, c := range name {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			name[i] = '_'
		}
	}
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	return "t-" + string(name) + "-" + rand.Text()[:10]
}

// newStore opens a Store on addrs with o's other fields and a prefix of
// t's own (unless o sets one). The store is closed when t ends, after its
// prefix has been cleared (memcached cannot delete by prefix: clearing
// retires the test's keys, and LRU reclaims them).
func newStore(t testing.TB, addrs []string, o memcached.Options) *memcached.Store {
	t.Helper()
	o.Addrs = addrs
	if o.Prefix == "" {
		o.Prefix = testPrefix(t)
	}
	s, err := memcached.New(context.Background(), o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Clear(ctx); err != nil && !errors.Is(err, cachekit.ErrClosed) && !errors.Is(err, cachekit.ErrUnavailable) {
			t.Errorf("Clear at cleanup: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// conformance runs cachetest against stores on addrs.
func conformance(t *testing.T, addrs []string) {
	cachetest.RunConfig(t, cachetest.Config{
		New: func(t *testing.T, _ cachekit.Clock) cachekit.Store {
			// A generous timeout: the suite runs every case in parallel on
			// a shared machine, under -race.
			return newStore(t, addrs, memcached.Options{Timeout: 5 * time.Second})
		},
		RealTime:     true,
		MaxValueSize: memcached.DefaultMaxValueSize,
	})
}

func TestConformance(t *testing.T) {
	t.Parallel()
	conformance(t, []string{testserver.Memcached(t)})
}

func TestConformancePool(t *testing.T) {
	t.Parallel()
	conformance(t, testserver.MemcachedPool(t))
}

// TestPoolSpreadsKeys checks that a pool store puts keys on every server,
// with a raw gomemcache client per server.
func TestPoolSpreadsKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	addrs := testserver.MemcachedPool(t)
	s := newStore(t, addrs, memcached.Options{})
	for i := range 40 {
		if err := s.Set(ctx, "k"+strconv.Itoa(i), []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	for _, addr := range addrs {
		c := memcache.New(addr)
		var keys []string
		for i := range 40 {
			keys = append(keys, s.Prefix()+":k"+strconv.Itoa(i))
		}
		got, err := c.GetMulti(keys)
		if err != nil {
			t.Fatalf("%s: GetMulti: %v", addr, err)
		}
		if len(got) == 0 || len(got) == 40 {
			t.Errorf("%s holds %d of the 40 keys; want some, not all", addr, len(got))
		}
		c.Close()
	}
}

// TestClearKeepsOtherPrefixes clears one prefix of a pool and checks that
// another prefix's keys, on the same servers, are untouched, and that two
// Stores of one prefix (two processes) see each other's Clear.
func TestClearKeepsOtherPrefixes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	addrs := testserver.MemcachedPool(t)
	prefix := testPrefix(t)
	a := newStore(t, addrs, memcached.Options{Prefix: prefix})
	b := newStore(t, addrs, memcached.Options{Prefix: prefix}) // another process
	other := newStore(t, addrs, memcached.Options{Prefix: prefix + "x"})

	const n = 30
	for i := range n {
		k := "k" + strconv.Itoa(i)
		if err := a.Set(ctx, k, []byte("a"), 0); err != nil {
			t.Fatal(err)
		}
		if err := other.Set(ctx, k, []byte("other"), 0); err != nil {
			t.Fatal(err)
		}
	}
	if v, err := b.Get(ctx, "k1"); err != nil || string(v) != "a" {
		t.Fatalf("b.Get(k1) before Clear = %q, %v; want a", v, err)
	}
	if err := a.Clear(ctx); err != nil {
		t.Fatalf("Clear: %v", err)
	}
	for i := range n {
		k := "k" + strconv.Itoa(i)
		for name, s := range map[string]*memcached.Store{"a": a, "b": b} {
			if v, err := s.Get(ctx, k); !errors.Is(err, cachekit.ErrMiss) {
				t.Fatalf("%s.Get(%s) after Clear = %q, %v; want ErrMiss", name, k, v, err)
			}
		}
		if v, err := other.Get(ctx, k); err != nil || string(v) != "other" {
			t.Fatalf("other.Get(%s) = %q, %v; want other", k, v, err)
		}
	}
	// b has read since the Clear: its writes are visible to a.
	if err := b.Set(ctx, "k1", []byte("b"), 0); err != nil {
		t.Fatal(err)
	}
	if v, err := a.Get(ctx, "k1"); err != nil || string(v) != "b" {
		t.Fatalf("a.Get(k1) after b's Set = %q, %v; want b", v, err)
	}
	if n, err := a.Delete(ctx, "k1", "k2"); err != nil || n != 1 {
		t.Fatalf("Delete(k1 live, k2 retired) = %d, %v; want 1", n, err)
	}
}

// TestClearRace checks that no Get that starts after Clear returned ever
// sees a value written before it, while other processes keep writing and
// reading.
func TestClearRace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	addrs := testserver.MemcachedPool(t)
	prefix := testPrefix(t)
	stores := make([]*memcached.Store, 3)
	for i := range stores {
		stores[i] = newStore(t, addrs, memcached.Options{Prefix: prefix})
	}
	// Values carry the number of Clears done before they were written.
	// Writers hold gen's read lock while they write, so a value numbered g
	// was written completely before Clear g+1 began; a reader that saw g
	// after Clear g returned must never get a value numbered below g.
	var (
		mu    sync.RWMutex // protects gen; held for reading across a Set
		gen   int
		wg    sync.WaitGroup
		stop  = make(chan struct{})
		errCh = make(chan error, 16)
	)
	for w, s := range stores[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := "k" + strconv.Itoa(i%8)
				if i%2 == w%2 {
					mu.RLock()
					err := s.Set(ctx, k, []byte(strconv.Itoa(gen)), 0)
					mu.RUnlock()
					if err != nil {
						errCh <- err
						return
					}
					continue
				}
				mu.RLock()
				g := gen
				mu.RUnlock()
				v, err := s.Get(ctx, k)
				if errors.Is(err, cachekit.ErrMiss) {
					continue
				}
				if err != nil {
					errCh <- err
					return
				}
				if got, _ := strconv.Atoi(string(v)); got < g {
					errCh <- fmt.Errorf("Get(%s) after Clear %d returned %q, written before it", k, g, v)
					return
				}
			}
		}()
	}
	for range 20 {
		time.Sleep(10 * time.Millisecond)
		mu.Lock()
		err := stores[0].Clear(ctx)
		gen++
		mu.Unlock()
		if err != nil {
			t.Errorf("Clear: %v", err)
			break
		}
	}
	close(stop)
	wg.Wait()
	close(errCh)
	for err := range errCh {
		t.Error(err)
	}
}

// TestIncrConcurrent runs IncrBy from many goroutines of two Stores (two
// processes) on one key and checks the exact total.
func TestIncrConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	addrs := testserver.MemcachedPool(t)
	prefix := testPrefix(t)
	o := memcached.Options{Prefix: prefix, Timeout: 10 * time.Second}
	stores := []*memcached.Store{newStore(t, addrs, o), newStore(t, addrs, o)}
	if err := stores[0].Set(ctx, "n", []byte("-100"), time.Hour); err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 40
	var wg sync.WaitGroup
	for _, s := range stores {
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range each {
					if _, err := s.IncrBy(ctx, "n", 1); err != nil {
						t.Errorf("IncrBy: %v", err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	want := strconv.Itoa(-100 + 2*workers*each)
	for i, s := range stores {
		if v, err := s.Get(ctx, "n"); err != nil || string(v) != want {
			t.Fatalf("store %d: Get(n) = %q, %v; want %s", i, v, err, want)
		}
	}
	_, exp, err := stores[1].GetWithExpiry(ctx, "n")
	if err != nil || time.Until(exp) < 50*time.Minute || time.Until(exp) > time.Hour {
		t.Fatalf("expiry after the increments = %v, %v; want about an hour from now", exp, err)
	}
	// Negative results are allowed (memcached's own decr stops at 0).
	if n, err := stores[0].IncrBy(ctx, "n", -1000); err != nil || n != int64(-100+2*workers*each-1000) {
		t.Fatalf("IncrBy(-1000) = %d, %v", n, err)
	}
}

// TestLongTTL checks TTLs past memcached's 30-day limit for relative
// expiry, which go as absolute Unix times, and TTLs past 2038, capped.
func TestLongTTL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, []string{testserver.Memcached(t)}, memcached.Options{})
	for _, tc := range []struct {
		name string
		ttl  time.Duration
		want time.Time // zero: about now + ttl
	}{
		{"30d", 30 * 24 * time.Hour, time.Time{}},
		{"40d", 40 * 24 * time.Hour, time.Time{}},
		{"10y", 10 * 365 * 24 * time.Hour, time.Time{}},
		{"100y", 100 * 365 * 24 * time.Hour, time.Unix(1<<31-1, 0)},
	} {
		want := tc.want
		if want.IsZero() {
			want = time.Now().Add(tc.ttl)
		}
		if err := s.Set(ctx, tc.name, []byte(tc.name), tc.ttl); err != nil {
			t.Fatalf("Set(%s): %v", tc.name, err)
		}
		v, exp, err := s.GetWithExpiry(ctx, tc.name)
		if err != nil || string(v) != tc.name {
			t.Fatalf("GetWithExpiry(%s) = %q, %v; want the value back (an expiry read as a past Unix time would lose it)", tc.name, v, err)
		}
		if d := exp.Sub(want); d < -5*time.Second || d > 5*time.Second {
			t.Errorf("%s: expiry %v, want about %v", tc.name, exp, want)
		}
		// Touch and IncrBy keep such TTLs too.
		if ok, err := s.Touch(ctx, tc.name, tc.ttl); err != nil || !ok {
			t.Fatalf("Touch(%s) = %v, %v", tc.name, ok, err)
		}
		if _, err := s.Get(ctx, tc.name); err != nil {
			t.Fatalf("Get(%s) after Touch: %v", tc.name, err)
		}
	}
	if err := s.Set(ctx, "n", []byte("1"), 40*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if n, err := s.IncrBy(ctx, "n", 1); err != nil || n != 2 {
		t.Fatalf("IncrBy on a 40-day key = %d, %v", n, err)
	}
	if v, err := s.Get(ctx, "n"); err != nil || string(v) != "2" {
		t.Fatalf("Get after IncrBy = %q, %v", v, err)
	}
}

// TestShortTTL checks that a sub-second TTL is kept to (memcached itself
// counts whole seconds).
func TestShortTTL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, []string{testserver.Memcached(t)}, memcached.Options{})
	start := time.Now()
	if err := s.Set(ctx, "k", []byte("v"), 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := s.Get(ctx, "k")
		if errors.Is(err, cachekit.ErrMiss) {
			if d := time.Since(start); d < 300*time.Millisecond {
				t.Fatalf("expired after %v, before its TTL", d)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Since(start) > 1500*time.Millisecond {
			t.Fatal("a 300 ms TTL still live after 1.5 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTooLarge checks that the default limit fits memcached's item limit
// even under the longest key, and that a value over it is refused before
// the server sees it, keeping the old value.
func TestTooLarge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, []string{testserver.Memcached(t)}, memcached.Options{})
	long := strings.Repeat("k", 300) // shortened to 250 bytes
	for _, k := range []string{"short", long} {
		if err := s.Set(ctx, k, []byte("old"), 0); err != nil {
			t.Fatal(err)
		}
		err := s.Set(ctx, k, make([]byte, memcached.DefaultMaxValueSize+1), 0)
		if !errors.Is(err, cachekit.ErrTooLarge) {
			t.Fatalf("Set of MaxValueSize+1 bytes: got %v, want ErrTooLarge", err)
		}
		var oe *cachekit.OpError
		if !errors.As(err, &oe) || oe.Backend != "memcached" || oe.Key != k {
			t.Fatalf("error %v: want a *cachekit.OpError for backend memcached and the key", err)
		}
		if v, err := s.Get(ctx, k); err != nil || string(v) != "old" {
			t.Fatalf("Get after the refused Set = %q, %v; want old", v, err)
		}
		if ok, err := s.Add(ctx, k+"-add", make([]byte, memcached.DefaultMaxValueSize+1), 0); ok || !errors.Is(err, cachekit.ErrTooLarge) {
			t.Fatalf("Add of MaxValueSize+1 bytes = %v, %v; want ErrTooLarge", ok, err)
		}
		big := bytes.Repeat([]byte{0xfe}, memcached.DefaultMaxValueSize)
		if err := s.Set(ctx, k, big, 0); err != nil {
			t.Fatalf("Set of exactly MaxValueSize bytes under a %d-byte key: %v", len(k), err)
		}
		if v, err := s.Get(ctx, k); err != nil || !bytes.Equal(v, big) {
			t.Fatalf("Get of the largest value: %d bytes, %v", len(v), err)
		}
	}
	if err := s.SetMany(ctx, map[string][]byte{"a": []byte("1"), "b": make([]byte, memcached.DefaultMaxValueSize+1)}, 0); !errors.Is(err, cachekit.ErrTooLarge) {
		t.Fatalf("SetMany with one value too large: got %v, want ErrTooLarge", err)
	}
	if _, err := s.Get(ctx, "a"); !errors.Is(err, cachekit.ErrMiss) {
		t.Fatalf("SetMany with one value too large stored another: %v", err)
	}
}

// TestHostileKeys checks long keys, keys with bytes memcached refuses
// (including protocol injection attempts) and keys crafted to collide.
func TestHostileKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	addrs := testserver.MemcachedPool(t)
	s := newStore(t, addrs, memcached.Options{})
	long := strings.Repeat("x", 1000)
	keys := []string{
		"plain",
		long,
		long + "y",
		strings.Repeat("é", 300),
		"with space",
		"with_space",
		"inject\r\nset evil 0 0 1\r\nx",
		"inject\r\nset evil 0 0 1\r\ny",
		"nul\x00byte",
		"nul\x01byte",
		"\x7f",
		strings.Repeat(" ", 251),
		strings.Repeat("x", 250-len(s.Prefix())-1), // exactly 250 bytes with the prefix
		strings.Repeat("x", 250-len(s.Prefix())),   // one over
		"#ns0", ":#ns0", "ns0",
	}
	// A key that spells the shortened form of another key must not alias it.
	full := s.Prefix() + ":" + long
	short, err := cachekit.MemcachedKey(full)
	if err != nil {
		t.Fatal(err)
	}
	keys = append(keys, strings.TrimPrefix(short, s.Prefix()+":"))

	for i, k := range keys {
		if err := s.Set(ctx, k, []byte(strconv.Itoa(i)), time.Minute); err != nil {
			t.Fatalf("Set(%q): %v", k, err)
		}
	}
	for i, k := range keys {
		if v, err := s.Get(ctx, k); err != nil || string(v) != strconv.Itoa(i) {
			t.Fatalf("Get(%q) = %q, %v; want %d", k, v, err, i)
		}
	}
	got, err := s.GetMany(ctx, keys)
	if err != nil || len(got) != len(keys) {
		t.Fatalf("GetMany = %d keys, %v; want %d", len(got), err, len(keys))
	}
	for _, addr := range addrs {
		if _, err := memcache.New(addr).Get("evil"); !errors.Is(err, memcache.ErrCacheMiss) {
			t.Fatalf("%s: the key injection stored a key: %v", addr, err)
		}
	}
	if n, err := s.Delete(ctx, keys...); err != nil || n != len(keys) {
		t.Fatalf("Delete(all) = %d, %v; want %d", n, err, len(keys))
	}
	if _, err := s.Get(ctx, ""); !errors.Is(err, cachekit.ErrInvalidKey) {
		t.Fatalf(`Get("") = %v; want ErrInvalidKey`, err)
	}

	// Keys of different prefixes never meet, even when prefix and key
	// together spell the same string.
	ab := newStore(t, addrs, memcached.Options{Prefix: s.Prefix() + "b"})
	if err := s.Set(ctx, "b:k", []byte("s"), 0); err != nil {
		t.Fatal(err)
	}
	if err := ab.Set(ctx, "k", []byte("ab"), 0); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get(ctx, "b:k"); err != nil || string(v) != "s" {
		t.Fatalf("Get(b:k) = %q, %v; want s", v, err)
	}
}

// TestForeignValue checks that bytes written by another client under a
// store's key read as ErrCorrupt, not as a value.
func TestForeignValue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	addr := testserver.Memcached(t)
	s := newStore(t, []string{addr}, memcached.Options{})
	c := memcache.New(addr)
	defer c.Close()
	if err := c.Set(&memcache.Item{Key: s.Prefix() + ":raw", Value: []byte("raw"), Expiration: 60}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "raw"); !errors.Is(err, cachekit.ErrCorrupt) {
		t.Fatalf("Get of a foreign value: %v; want ErrCorrupt", err)
	}
	if n, err := s.Delete(ctx, "raw"); err != nil || n != 1 {
		t.Fatalf("Delete of a foreign value = %d, %v; want 1", n, err)
	}
}

// TestNamespaceEvicted deletes a server's namespace key, as an eviction
// would: the values written under it read as misses, never as hits, and
// the store recovers with the next write.
func TestNamespaceEvicted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	addr := testserver.Memcached(t)
	s := newStore(t, []string{addr}, memcached.Options{})
	if err := s.Set(ctx, "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	c := memcache.New(addr)
	defer c.Close()
	if err := c.Delete(s.Prefix() + "#ns0"); err != nil {
		t.Fatalf("delete the namespace key: %v", err)
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, cachekit.ErrMiss) {
		t.Fatalf("Get after the namespace key went: %v; want ErrMiss", err)
	}
	if ok, err := s.Add(ctx, "k", []byte("added"), 0); err != nil || !ok {
		t.Fatalf("Add over a retired value = %v, %v; want true", ok, err)
	}
	if v, err := s.Get(ctx, "k"); err != nil || string(v) != "added" {
		t.Fatalf("Get = %q, %v; want added", v, err)
	}
}

// TestFlushOnClear checks the opt-in flush_all on a private server (it
// removes every key there).
func TestFlushOnClear(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := testserver.StartMemcached(t)
	s := newStore(t, []string{p.Addr}, memcached.Options{FlushOnClear: true})
	other := newStore(t, []string{p.Addr}, memcached.Options{})
	for _, st := range []*memcached.Store{s, other} {
		if err := st.Set(ctx, "k", []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	for _, st := range []*memcached.Store{s, other} {
		if _, err := st.Get(ctx, "k"); !errors.Is(err, cachekit.ErrMiss) {
			t.Fatalf("Get after a flushing Clear: %v; want ErrMiss", err)
		}
	}
	if err := s.Set(ctx, "k", []byte("after"), 0); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get(ctx, "k"); err != nil || string(v) != "after" {
		t.Fatalf("Get after Clear and Set = %q, %v", v, err)
	}
}

func TestOptions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	addrs := []string{"127.0.0.1:11211"}
	for _, tc := range []struct {
		name string
		o    memcached.Options
		ok   bool
	}{
		{"defaults", memcached.Options{Addrs: addrs}, true},
		{"no servers", memcached.Options{}, false},
		{"bad address", memcached.Options{Addrs: []string{"no-port"}}, false},
		{"prefix with colon", memcached.Options{Addrs: addrs, Prefix: "a:b"}, false},
		{"prefix with hash", memcached.Options{Addrs: addrs, Prefix: "a#b"}, false},
		{"prefix with space", memcached.Options{Addrs: addrs, Prefix: "a b"}, false},
		{"prefix too long", memcached.Options{Addrs: addrs, Prefix: strings.Repeat("p", memcached.MaxPrefixLen+1)}, false},
		{"longest prefix", memcached.Options{Addrs: addrs, Prefix: strings.Repeat("p", memcached.MaxPrefixLen)}, true},
		{"negative timeout", memcached.Options{Addrs: addrs, Timeout: -1}, false},
		{"negative max value", memcached.Options{Addrs: addrs, MaxValueSize: -1}, false},
		{"negative idle", memcached.Options{Addrs: addrs, MaxIdleConns: -1}, false},
		{"client", memcached.Options{Client: memcache.New(addrs...)}, true},
		{"client and addrs", memcached.Options{Client: memcache.New(addrs...), Addrs: addrs}, false},
		{"client and idle", memcached.Options{Client: memcache.New(addrs...), MaxIdleConns: 3}, false},
		{"selector", memcached.Options{Selector: serverList(t, addrs...)}, true},
		{"selector and addrs", memcached.Options{Selector: serverList(t, addrs...), Addrs: addrs}, false},
		{"empty selector", memcached.Options{Selector: new(memcache.ServerList)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := memcached.New(ctx, tc.o)
			if (err == nil) != tc.ok {
				t.Fatalf("New: got err=%v, want ok=%v", err, tc.ok)
			}
			if s != nil {
				s.Close()
			}
		})
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := memcached.New(cancelled, memcached.Options{Addrs: addrs}); !errors.Is(err, context.Canceled) {
		t.Fatalf("New with a cancelled context: %v", err)
	}
}

func serverList(t *testing.T, addrs ...string) *memcache.ServerList {
	t.Helper()
	ss := new(memcache.ServerList)
	if err := ss.SetServers(addrs...); err != nil {
		t.Fatal(err)
	}
	return ss
}

// TestClientOption runs the conformance suite on stores over a caller's
// Client without a Selector: one namespace key for the whole pool.
func TestClientOption(t *testing.T) {
	t.Parallel()
	c := memcache.New(testserver.MemcachedPool(t)...)
	c.Timeout = 5 * time.Second
	c.MaxIdleConns = 8
	t.Cleanup(func() { c.Close() })
	cachetest.RunConfig(t, cachetest.Config{
		New: func(t *testing.T, _ cachekit.Clock) cachekit.Store {
			s, err := memcached.New(context.Background(), memcached.Options{Client: c, Prefix: testPrefix(t), Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		RealTime:     true,
		MaxValueSize: memcached.DefaultMaxValueSize,
	})
}

// TestSelectorChange uses a caller's Selector whose servers change at run
// time: the store follows, and a Clear still retires every value.
func TestSelectorChange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	addrs := testserver.MemcachedPool(t)
	ss := serverList(t, addrs[:1]...)
	s, err := memcached.New(ctx, memcached.Options{Selector: ss, Prefix: testPrefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	keys := make([]string, 20)
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(i)
	}
	set := func(v string) {
		t.Helper()
		for _, k := range keys {
			if err := s.Set(ctx, k, []byte(v), time.Minute); err != nil {
				t.Fatal(err)
			}
		}
	}
	set("one")
	if err := ss.SetServers(addrs...); err != nil {
		t.Fatal(err)
	}
	set("two")
	for _, k := range keys {
		if v, err := s.Get(ctx, k); err != nil || string(v) != "two" {
			t.Fatalf("Get(%s) after the servers changed = %q, %v; want two", k, v, err)
		}
	}
	if err := s.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetMany(ctx, keys)
	if err != nil || len(got) != 0 {
		t.Fatalf("GetMany after Clear = %q, %v; want nothing", got, err)
	}
}
