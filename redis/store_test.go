package redis_test

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/cachetest"
	"github.com/cachekit/cachekit/internal/testserver"
	"github.com/cachekit/cachekit/redis"
)

// testPrefix returns a key prefix owned by t: its name plus a random
// suffix, so that no test's prefix is a string prefix of another's.
func testPrefix(t testing.TB) string {
	name := strings.NewReplacer("/", ".", " ", "_", "*", "_", "?", "_", "[", "_", "]", "_").Replace(t.Name())
	return "cachekit-test:" + name + ":" + rand.Text() + ":"
}

// open makes a Store over the shared servers at addrs with a prefix of its
// own (unless o.Prefix is set), closes it when t ends and deletes its keys
// with a fresh Store (t may have closed this one).
func open(t testing.TB, addrs []string, o redis.Options) *redis.Store {
	t.Helper()
	o.Addrs = addrs
	if o.Prefix == "" {
		o.Prefix = testPrefix(t)
	}
	s, err := redis.New(context.Background(), o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		s.Close()
		ctx := context.Background()
		c, err := redis.New(ctx, redis.Options{Addrs: addrs, Prefix: o.Prefix, DB: o.DB, Timeout: 5 * time.Second})
		if err != nil {
			t.Errorf("cleanup: New: %v", err)
			return
		}
		defer c.Close()
		if err := c.Clear(ctx); err != nil {
			t.Errorf("cleanup: Clear: %v", err)
		}
	})
	return s
}

// openPrivate makes a Store over a private server the test owns (no
// cleanup of keys: the server dies with the test).
func openPrivate(t testing.TB, addrs []string, o redis.Options) *redis.Store {
	t.Helper()
	o.Addrs = addrs
	if o.Prefix == "" {
		o.Prefix = testPrefix(t)
	}
	s, err := redis.New(context.Background(), o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

const testMaxValue = 1 << 20

func conformance(t *testing.T, addrs []string) {
	cachetest.RunConfig(t, cachetest.Config{
		RealTime:     true,
		MaxValueSize: testMaxValue,
		New: func(t *testing.T, _ cachekit.Clock) cachekit.Store {
			return open(t, addrs, redis.Options{MaxValueSize: testMaxValue})
		},
	})
}

func TestConformance(t *testing.T) {
	t.Parallel()
	conformance(t, []string{testserver.Redis(t)})
}

func TestConformanceCluster(t *testing.T) {
	t.Parallel()
	conformance(t, testserver.RedisCluster(t))
}

func TestNewOptions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, o := range map[string]redis.Options{
		"no address":      {},
		"empty address":   {Addrs: []string{""}},
		"negative DB":     {Addrs: []string{"127.0.0.1:1"}, DB: -1},
		"negative time":   {Addrs: []string{"127.0.0.1:1"}, Timeout: -1},
		"client and addr": {Addrs: []string{"127.0.0.1:1"}, Client: fakeClient()},
	} {
		if s, err := redis.New(ctx, o); err == nil {
			s.Close()
			t.Errorf("New with %s: got nil error", name)
		}
	}
}

// fakeClient returns a non-nil rueidis.Client value that is never used.
func fakeClient() rueidis.Client {
	var c struct{ rueidis.Client }
	return c
}

// TestNewUnreachable: no server → ErrUnavailable, within the context.
func TestNewUnreachable(t *testing.T) {
	t.Parallel()
	p := testserver.StartRedis(t)
	p.Kill() // a port nobody listens on
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	_, err := redis.New(ctx, redis.Options{Addrs: []string{p.Addr}})
	if !errors.Is(err, cachekit.ErrUnavailable) {
		t.Fatalf("New on a dead port: got %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("New on a dead port took %v", d)
	}
}

func TestStandaloneAndClusterMode(t *testing.T) {
	t.Parallel()
	s := open(t, []string{testserver.Redis(t)}, redis.Options{})
	if m := s.Client().Mode(); m != rueidis.ClientModeStandalone {
		t.Errorf("one standalone address: mode %s, want standalone", m)
	}
	// One address of a cluster node is enough for a cluster client.
	c := open(t, testserver.RedisCluster(t)[:1], redis.Options{})
	if m := c.Client().Mode(); m != rueidis.ClientModeCluster {
		t.Errorf("one cluster address: mode %s, want cluster", m)
	}
}

// TestUserClient: a Client passed in Options is used and not closed.
func TestUserClient(t *testing.T) {
	t.Parallel()
	addr := testserver.Redis(t)
	client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	prefix := testPrefix(t)
	ctx := context.Background()
	s, err := redis.New(ctx, redis.Options{Client: client, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := redis.New(ctx, redis.Options{Addrs: []string{addr}, Prefix: prefix})
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		defer c.Close()
		if err := c.Clear(ctx); err != nil {
			t.Errorf("cleanup: Clear: %v", err)
		}
	})
	if err := s.Set(ctx, "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	// The user's client (with client-side caching on, the rueidis default)
	// also works for tracking: the Store turns its OPTIN tracking off on the
	// dedicated connection first.
	got := make(chan []string, 10)
	stop, err := s.Subscribe(ctx, func(keys []string) { got <- keys })
	if err != nil {
		t.Fatalf("Subscribe over a user client: %v", err)
	}
	defer stop()
	if err := s.Set(ctx, "k", []byte("w"), time.Minute); err != nil {
		t.Fatal(err)
	}
	waitKey(t, got, "k")
	stop()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	v, err := client.Do(ctx, client.B().Get().Key(prefix+"k").Build()).ToString()
	if err != nil || v != "w" {
		t.Fatalf("user client after Store.Close: GET = %q, %v; want w (the Store must not close it)", v, err)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	s := open(t, []string{testserver.Redis(t)}, redis.Options{MaxValueSize: 10})
	ctx := context.Background()
	calls := map[string]func() error{
		"Get":    func() error { _, err := s.Get(ctx, ""); return err },
		"Set":    func() error { return s.Set(ctx, "", nil, 0) },
		"Delete": func() error { _, err := s.Delete(ctx, "a", ""); return err },
		"Add":    func() error { _, err := s.Add(ctx, "", nil, 0); return err },
		"Touch":  func() error { _, err := s.Touch(ctx, "", 0); return err },
		"IncrBy": func() error { _, err := s.IncrBy(ctx, "", 1); return err },
		"GetMany": func() error {
			_, err := s.GetMany(ctx, []string{""})
			return err
		},
		"SetMany":       func() error { return s.SetMany(ctx, map[string][]byte{"": nil}, 0) },
		"Lease":         func() error { _, _, err := s.Lease(ctx, "", time.Second); return err },
		"GetWithExpiry": func() error { _, _, err := s.GetWithExpiry(ctx, ""); return err },
	}
	for name, call := range calls {
		err := call()
		if !errors.Is(err, cachekit.ErrInvalidKey) {
			t.Errorf("%s with an empty key: got %v, want ErrInvalidKey", name, err)
		}
		var oe *cachekit.OpError
		if !errors.As(err, &oe) || oe.Backend != "redis" {
			t.Errorf("%s: got %T %v, want a *cachekit.OpError with Backend redis", name, err, err)
		}
	}
	if err := s.Set(ctx, "k", []byte("old"), 0); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 11)
	if err := s.Set(ctx, "k", big, 0); !errors.Is(err, cachekit.ErrTooLarge) {
		t.Errorf("Set too large: %v", err)
	}
	if _, err := s.Add(ctx, "k2", big, 0); !errors.Is(err, cachekit.ErrTooLarge) {
		t.Errorf("Add too large: %v", err)
	}
	if err := s.SetMany(ctx, map[string][]byte{"k": []byte("new"), "k3": big}, 0); !errors.Is(err, cachekit.ErrTooLarge) {
		t.Errorf("SetMany with one value too large: %v", err)
	}
	if v, err := s.Get(ctx, "k"); err != nil || string(v) != "old" {
		t.Errorf("after refused writes: Get = %q, %v; want old", v, err)
	}
	// A value of another type under the prefix is a server error, not a panic.
	if err := s.Client().Do(ctx, s.Client().B().Lpush().Key(s.Prefix()+"list").Element("x").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "list"); err == nil || errors.Is(err, cachekit.ErrMiss) || errors.Is(err, cachekit.ErrUnavailable) {
		t.Errorf("Get of a list: got %v, want a server error", err)
	}
	if _, err := s.IncrBy(ctx, "list", 1); !errors.Is(err, cachekit.ErrNotInteger) {
		t.Errorf("IncrBy of a list: got %v, want ErrNotInteger", err)
	}
}

// TestDB: Options.DB selects the database; Clear and GetMany use it too.
func TestDB(t *testing.T) {
	t.Parallel()
	addrs := []string{testserver.Redis(t)}
	ctx := context.Background()
	db1 := open(t, addrs, redis.Options{DB: 1})
	db0 := open(t, addrs, redis.Options{Prefix: db1.Prefix()})
	if err := db1.Set(ctx, "k", []byte("one"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := db0.Set(ctx, "k", []byte("zero"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if v, err := db1.Get(ctx, "k"); err != nil || string(v) != "one" {
		t.Fatalf("DB 1: Get = %q, %v", v, err)
	}
	if err := db1.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if m, err := db1.GetMany(ctx, []string{"k"}); err != nil || len(m) != 0 {
		t.Fatalf("DB 1 after Clear: %q, %v", m, err)
	}
	if v, err := db0.Get(ctx, "k"); err != nil || string(v) != "zero" {
		t.Fatalf("DB 0 after DB 1's Clear: Get = %q, %v", v, err)
	}
}

// TestSubMillisecondTTL: a TTL below 1 ms is kept as 1 ms, not as "never".
func TestSubMillisecondTTL(t *testing.T) {
	t.Parallel()
	s := open(t, []string{testserver.Redis(t)}, redis.Options{})
	ctx := context.Background()
	for _, ttl := range []time.Duration{time.Nanosecond, 500 * time.Microsecond, 1500 * time.Microsecond} {
		if err := s.Set(ctx, "k", []byte("v"), ttl); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(2 * time.Second)
		for {
			_, err := s.Get(ctx, "k")
			if errors.Is(err, cachekit.ErrMiss) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("Set with ttl %v: still there after 2 s (err %v)", ttl, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// Touch rounds up as well.
	if err := s.Set(ctx, "t", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Touch(ctx, "t", time.Microsecond); err != nil || !ok {
		t.Fatalf("Touch = %v, %v", ok, err)
	}
	time.Sleep(20 * time.Millisecond)
	if _, err := s.Get(ctx, "t"); !errors.Is(err, cachekit.ErrMiss) {
		t.Fatalf("Get after a 1 µs Touch: %v, want ErrMiss", err)
	}
}

// TestClearPrefixes: Clear deletes its own prefix only, with glob
// characters in the prefix taken literally. A store whose prefix is a
// string prefix of another's owns that store's keys too (documented).
func TestClearPrefixes(t *testing.T) {
	t.Parallel()
	for name, addrs := range map[string]func(testing.TB) []string{
		"standalone": func(t testing.TB) []string { return []string{testserver.Redis(t)} },
		"cluster":    testserver.RedisCluster,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			addrs := addrs(t)
			base := testPrefix(t)
			ctx := context.Background()
			glob := open(t, addrs, redis.Options{Prefix: base + "[ab]*?\\:"})
			literal := open(t, addrs, redis.Options{Prefix: base + "a-x\\:"}) // matched by the unescaped glob
			short := open(t, addrs, redis.Options{Prefix: base + "s:"})
			long := open(t, addrs, redis.Options{Prefix: base + "s:b:"})
			set := func(s *redis.Store, keys ...string) {
				t.Helper()
				for _, k := range keys {
					if err := s.Set(ctx, k, []byte(k), 0); err != nil {
						t.Fatal(err)
					}
				}
			}
			present := func(s *redis.Store, k string, want bool) {
				t.Helper()
				_, err := s.Get(ctx, k)
				if got := err == nil; got != want || (err != nil && !errors.Is(err, cachekit.ErrMiss)) {
					t.Errorf("%s%s: present=%v (err %v), want %v", s.Prefix(), k, got, err, want)
				}
			}
			var many []string
			for i := range 2500 { // more than one SCAN batch
				many = append(many, "m"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+string(rune('0'+i%10))+rand.Text()[:4])
			}
			set(glob, many...)
			set(literal, "k1", "k2")
			set(short, "k1", "b:k2")
			set(long, "k1")

			if err := glob.Clear(ctx); err != nil {
				t.Fatal(err)
			}
			for _, k := range many[:20] {
				present(glob, k, false)
			}
			if m, err := glob.GetMany(ctx, many); err != nil || len(m) != 0 {
				t.Fatalf("after Clear: %d of %d keys left (err %v)", len(m), len(many), err)
			}
			present(literal, "k1", true)
			present(literal, "k2", true)

			// The longer prefix's Clear leaves the shorter one's keys alone,
			// except those under the longer prefix: the short store's key
			// "b:k2" is the long store's key "k2" (see the package doc).
			present(long, "k2", true)
			if err := long.Clear(ctx); err != nil {
				t.Fatal(err)
			}
			present(long, "k1", false)
			present(short, "k1", true)
			present(short, "b:k2", false)

			// The shorter prefix owns the longer prefix's key space.
			set(long, "k1")
			present(short, "b:k1", true)
			if err := short.Clear(ctx); err != nil {
				t.Fatal(err)
			}
			present(short, "k1", false)
			present(long, "k1", false)
			present(literal, "k1", true)
		})
	}
}

func BenchmarkGet(b *testing.B) {
	s := open(b, []string{testserver.Redis(b)}, redis.Options{})
	ctx := context.Background()
	if err := s.Set(ctx, "k", []byte("value"), time.Minute); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Get(ctx, "k"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetParallel(b *testing.B) {
	s := open(b, []string{testserver.Redis(b)}, redis.Options{})
	ctx := context.Background()
	if err := s.Set(ctx, "k", []byte("value"), time.Minute); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Get(ctx, "k"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
