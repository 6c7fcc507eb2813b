package lock_test

import (
	"context"
	"crypto/rand"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/cachetest"
	"github.com/cachekit/cachekit/disk"
	"github.com/cachekit/cachekit/internal/testserver"
	"github.com/cachekit/cachekit/memcached"
	"github.com/cachekit/cachekit/memory"
	"github.com/cachekit/cachekit/redis"
)

// epoch is where fake clocks start.
var epoch = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// newMemory returns a memory store on clock (nil: the wall clock), closed
// with the test.
func newMemory(t testing.TB, clock cachekit.Clock) *memory.Store {
	t.Helper()
	s, err := memory.NewStore(memory.StoreOptions{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// newDisk returns a disk store in dir (a fresh one when empty) on clock
// (nil: the wall clock), closed with the test.
func newDisk(t testing.TB, dir string, clock cachekit.Clock) *disk.Store {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	s, err := disk.New(context.Background(), disk.Options{Dir: dir, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// redisPrefix returns a key prefix owned by t.
func redisPrefix(t testing.TB) string {
	name := strings.NewReplacer("/", ".", " ", "_", "*", "_", "?", "_", "[", "_", "]", "_").Replace(t.Name())
	return "cachekit-test:" + name + ":" + rand.Text() + ":"
}

// newRedis returns a store on the shared Redis server (skipping t when
// there is none) under prefix (t's own when empty); the keys under it are
// deleted when the test ends.
func newRedis(t testing.TB, prefix string) *redis.Store {
	t.Helper()
	addr := testserver.Redis(t)
	if prefix == "" {
		prefix = redisPrefix(t)
	}
	s, err := redis.New(context.Background(), redis.Options{Addrs: []string{addr}, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Clear(ctx); err != nil {
			t.Errorf("cleanup: Clear: %v", err)
		}
		s.Close()
	})
	return s
}

// newMemcached returns a store on the shared Memcached server (skipping t
// when there is none) with a prefix of t's own, cleared when the test ends.
func newMemcached(t testing.TB) *memcached.Store {
	t.Helper()
	addr := testserver.Memcached(t)
	s, err := memcached.New(context.Background(), memcached.Options{
		Addrs: []string{addr}, Prefix: "lock-" + rand.Text()[:16], Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Clear(ctx); err != nil {
			t.Errorf("cleanup: Clear: %v", err)
		}
		s.Close()
	})
	return s
}

// eachStore runs f in parallel subtests on a memory, a disk, a redis and a
// memcached store (the last two skipped without a server), all on the
// wall clock. (Not on a tiered store: see the package Caveats.)
func eachStore(t *testing.T, f func(t *testing.T, s cachekit.Store)) {
	t.Helper()
	for _, tc := range []struct {
		name string
		open func(t *testing.T) cachekit.Store
	}{
		{"memory", func(t *testing.T) cachekit.Store { return newMemory(t, nil) }},
		{"disk", func(t *testing.T) cachekit.Store { return newDisk(t, "", nil) }},
		{"redis", func(t *testing.T) cachekit.Store { return newRedis(t, "") }},
		{"memcached", func(t *testing.T) cachekit.Store { return newMemcached(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f(t, tc.open(t))
		})
	}
}

// eachFakeClockStore runs f in parallel subtests on a memory and a disk
// store whose expiry follows a fake clock.
func eachFakeClockStore(t *testing.T, f func(t *testing.T, s cachekit.Store, clock *cachetest.FakeClock)) {
	t.Helper()
	for _, tc := range []struct {
		name string
		open func(t *testing.T, c cachekit.Clock) cachekit.Store
	}{
		{"memory", func(t *testing.T, c cachekit.Clock) cachekit.Store { return newMemory(t, c) }},
		{"disk", func(t *testing.T, c cachekit.Clock) cachekit.Store { return newDisk(t, "", c) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := cachetest.NewFakeClock(epoch)
			f(t, tc.open(t, clock), clock)
		})
	}
}

// testContext bounds one test.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// incrUnsafe adds one to the decimal counter under key with a plain Get,
// parse and Set: a read-modify-write that loses updates unless the caller
// holds a lock.
func incrUnsafe(ctx context.Context, s cachekit.Store, key string) error {
	n := 0
	v, err := s.Get(ctx, key)
	switch {
	case errors.Is(err, cachekit.ErrMiss):
	case err != nil:
		return err
	default:
		if n, err = strconv.Atoi(string(v)); err != nil {
			return err
		}
	}
	// Let another goroutine run between the read and the write, so that
	// a missing lock shows.
	time.Sleep(50 * time.Microsecond)
	return s.Set(ctx, key, []byte(strconv.Itoa(n+1)), 0)
}

// counter reads the counter incrUnsafe writes.
func counter(t *testing.T, ctx context.Context, s cachekit.Store, key string) int {
	t.Helper()
	v, err := s.Get(ctx, key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	n, err := strconv.Atoi(string(v))
	if err != nil {
		t.Fatal(err)
	}
	return n
}
