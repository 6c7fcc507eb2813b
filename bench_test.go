package cachekit_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/codec"
	"github.com/cachekit/cachekit/memory"
)

func benchCache(b *testing.B, opts cachekit.Options) *cachekit.Cache[*user] {
	b.Helper()
	store, err := memory.NewStore(memory.StoreOptions{MaxEntries: 1 << 16})
	if err != nil {
		b.Fatal(err)
	}
	c, err := cachekit.New[*user](store, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

func benchKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "user:" + strconv.Itoa(i)
	}
	return keys
}

// BenchmarkCacheGet measures a hit through the facade: key building, the
// store lookup and, on the byte tier, decoding.
func BenchmarkCacheGet(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts cachekit.Options
	}{{"object", cachekit.Options{}}, {"gob", cachekit.Options{Codec: codec.Gob}}, {"json", cachekit.Options{Codec: codec.JSON}}} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			c := benchCache(b, bc.opts)
			keys := benchKeys(1024)
			for i, k := range keys {
				if err := c.Set(ctx, k, &user{ID: i, Name: "name"}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := c.Get(ctx, keys[i&1023]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkCacheSet measures an overwrite through the facade.
func BenchmarkCacheSet(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts cachekit.Options
	}{{"object", cachekit.Options{}}, {"gob", cachekit.Options{Codec: codec.Gob}}} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			c := benchCache(b, bc.opts)
			keys := benchKeys(1024)
			u := &user{ID: 1, Name: "name"}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := c.Set(ctx, keys[i&1023], u); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkCacheGetOrLoadHit measures GetOrLoad when the value is cached.
func BenchmarkCacheGetOrLoadHit(b *testing.B) {
	ctx := context.Background()
	c := benchCache(b, cachekit.Options{})
	load := func(context.Context) (*user, error) { return &user{}, nil }
	if _, err := c.GetOrLoad(ctx, "k", load); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.GetOrLoad(ctx, "k", load); err != nil {
			b.Fatal(err)
		}
	}
}
