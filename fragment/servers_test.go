package fragment_test

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/disk"
	"github.com/cachekit/cachekit/fragment"
	"github.com/cachekit/cachekit/internal/testserver"
	"github.com/cachekit/cachekit/memcached"
	"github.com/cachekit/cachekit/redis"
)

// TestRealStores shares fragments between two Caches (two processes, in
// effect) over each real store: on disk, Redis and Memcached, fragments
// are encoded, and InvalidateAll increments the name's generation with the
// store's counter.
func TestRealStores(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"disk", "redis", "memcached"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var opts fragment.Options
			var err error
			switch name {
			case "disk":
				opts.Store, err = disk.New(t.Context(), disk.Options{Dir: t.TempDir()})
			case "redis":
				opts.Store, err = redis.New(t.Context(), redis.Options{Addrs: []string{testserver.Redis(t)},
					Prefix: "cachekit-test:fragment:" + rand.Text() + ":", Timeout: 5 * time.Second})
			case "memcached":
				opts.KeyPolicy = cachekit.MemcachedKey
				opts.Store, err = memcached.New(t.Context(), memcached.Options{Addrs: []string{testserver.Memcached(t)},
					Prefix: "fragment-" + rand.Text()[:10], Timeout: 5 * time.Second})
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if c, ok := opts.Store.(cachekit.Clearer); ok {
					c.Clear(context.Background()) // the keys of this test's prefix only
				}
				opts.Store.Close()
			})
			// Two caches over one store: two processes, in effect.
			var one, two *fragment.Cache
			for _, fc := range []**fragment.Cache{&one, &two} {
				if *fc, err = fragment.New(opts); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { (*fc).Close() })
			}
			ctx := t.Context()
			c := &counter{text: "<b>&</b>"}
			long := string(make([]byte, 300)) // past memcached's key length: hashed by the key policy
			for _, vary := range [][]string{{"a b"}, {"a", "b"}, {long}} {
				c.n.Store(0)
				for i, fc := range []*fragment.Cache{one, two, one} {
					if got := get(t, fc, "f", vary, c.render); got != "<b>&</b>#1" {
						t.Fatalf("vary %q, call %d: got %q, want the first render <b>&</b>#1", vary, i, got)
					}
				}
			}
			c.n.Store(0)
			if err := two.InvalidateAll(ctx, "f"); err != nil {
				t.Fatal(err)
			}
			if got := get(t, one, "f", []string{"a", "b"}, c.render); got != "<b>&</b>#1" {
				t.Errorf("after InvalidateAll: got %q, want a new render", got)
			}
			if err := one.Invalidate(ctx, "f", "a", "b"); err != nil {
				t.Fatal(err)
			}
			if got := get(t, two, "f", []string{"a", "b"}, c.render); got != "<b>&</b>#2" {
				t.Errorf("after Invalidate: got %q, want a new render", got)
			}
			if got := get(t, two, "f", []string{"a b"}, c.render); got != "<b>&</b>#3" {
				t.Errorf("other variant after InvalidateAll: got %q, want a new render", got)
			}
		})
	}
}
