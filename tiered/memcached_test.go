package tiered_test

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"testing"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/cachetest"
	"github.com/cachekit/cachekit/internal/testserver"
	"github.com/cachekit/cachekit/memcached"
	"github.com/cachekit/cachekit/tiered"
)

// overMemcached stacks a tiered store over the memcached pool, with
// invalidations on a Redis pub/sub Bus: one such stack per "process".
func overMemcached(t *testing.T, prefix, channel string) *tiered.Store {
	t.Helper()
	l2, err := memcached.New(bg, memcached.Options{Addrs: testserver.MemcachedPool(t), Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	r := newRedis(t, testserver.Redis(t), randomPrefix(t))
	s, err := tiered.New(bg, l2, tiered.Options{L1Size: 16 << 20, Bus: r.Bus(channel)})
	if err != nil {
		l2.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Clear(bg)
		s.Close()
	})
	return s
}

// memcachedPrefix is a namespace of its own (memcached prefixes may not
// contain ':').
func memcachedPrefix() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "tt" + hex.EncodeToString(b)
}

func TestConformanceOverMemcached(t *testing.T) {
	t.Parallel()
	cachetest.RunConfig(t, cachetest.Config{
		RealTime:     true,
		MaxValueSize: memcached.DefaultMaxValueSize,
		New: func(t *testing.T, _ cachekit.Clock) cachekit.Store {
			p := memcachedPrefix()
			return overMemcached(t, p, "inv-"+p)
		},
	})
}

// Two stacks over one memcached namespace and one bus: B caches, A
// overwrites, and B reads the new value once the bound has passed.
func TestCoherenceOverMemcachedWithBus(t *testing.T) {
	t.Parallel()
	p := memcachedPrefix()
	a := overMemcached(t, p, "inv-"+p)
	b := overMemcached(t, p, "inv-"+p)
	for i := range 20 {
		old := "v" + strconv.Itoa(i)
		if err := a.Set(bg, "k", []byte(old), 0); err != nil {
			t.Fatal(err)
		}
		time.Sleep(bound)
		for try := 0; ; try++ {
			got, err := b.Get(bg, "k")
			if err != nil || string(got) != old {
				t.Fatalf("round %d: B read %q, %v; want %q", i, got, err, old)
			}
			if b.Stats().L1Hits > 0 && try > 0 {
				break
			}
			if try == 50 {
				t.Fatal("B's L1 never served the key")
			}
			time.Sleep(time.Millisecond)
		}
		want := "w" + strconv.Itoa(i)
		if err := a.Set(bg, "k", []byte(want), 0); err != nil {
			t.Fatal(err)
		}
		time.Sleep(bound)
		if got, err := b.Get(bg, "k"); err != nil || string(got) != want {
			t.Fatalf("round %d: B read %q, %v after A's write of %q, want the new value", i, got, err, want)
		}
	}
}
