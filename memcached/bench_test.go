package memcached_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/cachekit/cachekit/internal/testserver"
	"github.com/cachekit/cachekit/memcached"
)

// BenchmarkGet compares a Store's Get (value and namespace key in one
// request, on a goroutine of its own) with gomemcache's bare Get.
func BenchmarkGet(b *testing.B) {
	ctx := context.Background()
	addr := testserver.Memcached(b)
	s := newStore(b, []string{addr}, memcached.Options{})
	val := make([]byte, 100)
	if err := s.Set(ctx, "k", val, time.Hour); err != nil {
		b.Fatal(err)
	}
	b.Run("store", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Get(ctx, "k"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("gomemcache", func(b *testing.B) {
		c := memcache.New(addr)
		defer c.Close()
		key := s.Prefix() + ":raw"
		if err := c.Set(&memcache.Item{Key: key, Value: val, Expiration: 3600}); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Get(key); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkSetParallel(b *testing.B) {
	ctx := context.Background()
	s := newStore(b, testserver.MemcachedPool(b), memcached.Options{})
	val := make([]byte, 100)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if err := s.Set(ctx, "k"+strconv.Itoa(i%1000), val, time.Hour); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

func BenchmarkIncrBy(b *testing.B) {
	ctx := context.Background()
	s := newStore(b, []string{testserver.Memcached(b)}, memcached.Options{})
	if err := s.Set(ctx, "n", []byte("0"), time.Hour); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.IncrBy(ctx, "n", 1); err != nil {
			b.Fatal(err)
		}
	}
}
