package memo_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/disk"
	"github.com/cachekit/cachekit/internal/testserver"
	"github.com/cachekit/cachekit/memcached"
	"github.com/cachekit/cachekit/memo"
	"github.com/cachekit/cachekit/redis"
)

// TestRealStores runs functions, groups and batches over each real store:
// disk, Redis and Memcached (django-cache-utils' memcached group backend).
func TestRealStores(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		open func(t *testing.T) cachekit.Store
	}{
		{"disk", func(t *testing.T) cachekit.Store {
			s, err := disk.New(t.Context(), disk.Options{Dir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}},
		{"redis", func(t *testing.T) cachekit.Store {
			addr := testserver.Redis(t)
			prefix := "cachekit-test:memo:" + rand.Text() + ":"
			s, err := redis.New(t.Context(), redis.Options{Addrs: []string{addr}, Prefix: prefix, Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Clear(context.Background()); s.Close() })
			return s
		}},
		{"memcached", func(t *testing.T) cachekit.Store {
			addr := testserver.Memcached(t)
			s, err := memcached.New(t.Context(), memcached.Options{Addrs: []string{addr}, Prefix: "memo-" + rand.Text()[:10], Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Clear(context.Background()); s.Close() })
			return s
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			store := tc.open(t)
			opts := cachekit.Options{Prefix: "app", Version: 2}
			if tc.name == "memcached" {
				opts.KeyPolicy = cachekit.MemcachedKey
			}
			c := newCache[string](t, store, opts) // the store's cleanup closes it
			realStoreScenario(t, c)
		})
	}
}

func realStoreScenario(t *testing.T, c *cachekit.Cache[string]) {
	ctx := t.Context()
	g, err := memo.NewGroup(c, "docs", memo.GroupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var calls counter
	f := newFunc(t, c, "docs.Render", func(_ context.Context, q string) (string, error) {
		calls.add()
		if q == "missing" {
			return "", memo.ErrNotFound
		}
		return "rendered " + q, nil
	}, memo.Options{TTL: time.Minute, Groups: []*memo.Group{g}, NegativeTTL: time.Minute, Lease: true})

	long := strings.Repeat("a very long argument ", 20) // past memcached's 250 bytes
	for _, q := range []string{"a", "b c", long} {
		for range 2 {
			v, err := f.Call(ctx, q)
			if err != nil || v != "rendered "+q {
				t.Fatalf("Call(%.20q) = %.30q, %v", q, v, err)
			}
		}
	}
	for range 2 {
		if _, err := f.Call(ctx, "missing"); !errors.Is(err, memo.ErrNotFound) {
			t.Fatalf("Call(missing): %v", err)
		}
	}
	if n := calls.get(); n != 4 {
		t.Fatalf("function ran %d times, want 4", n)
	}
	if err := g.Invalidate(ctx); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"a", "b c", long, "missing"} {
		if _, err := f.Peek(ctx, q); !errors.Is(err, cachekit.ErrMiss) {
			t.Fatalf("Peek(%.20q) after the group's invalidation: %v, want ErrMiss", q, err)
		}
	}
	if _, err := f.Call(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := f.InvalidateAll(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Peek(ctx, "a"); !errors.Is(err, cachekit.ErrMiss) {
		t.Fatalf("Peek after InvalidateAll: %v, want ErrMiss", err)
	}

	var batches counter
	b := newBatch(t, c, "docs.Titles", func(_ context.Context, ids []int) (map[int]string, error) {
		batches.add()
		out := map[int]string{}
		for _, id := range ids {
			out[id] = fmt.Sprint("title ", id)
		}
		return out, nil
	}, memo.Options{Groups: []*memo.Group{g}})
	ids := make([]int, 50)
	want := map[int]string{}
	for i := range ids {
		ids[i] = i
		want[i] = fmt.Sprint("title ", i)
	}
	for range 2 {
		got, err := b.Call(ctx, ids)
		if err != nil || !maps.Equal(got, want) {
			t.Fatalf("batch Call = %d records, %v", len(got), err)
		}
	}
	if batches.get() != 1 {
		t.Errorf("batch function ran %d times, want 1", batches.get())
	}
}
