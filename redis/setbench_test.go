package redis_test

import (
	"context"
	"testing"
	"time"

	"github.com/cachekit/cachekit/internal/testserver"
	"github.com/cachekit/cachekit/redis"
)

// BenchmarkSetParallel compares a Set through the Store (which bounds
// each call with a context timer unless the caller's deadline comes
// first) with the raw client's SET without and with such a timer. A
// context with a Done channel sends rueidis's pipelined calls through a
// select, which is most of the Store's overhead at high concurrency.
func BenchmarkSetParallel(b *testing.B) {
	s := open(b, []string{testserver.Redis(b)}, redis.Options{})
	c := s.Client()
	val := make([]byte, 100)
	ctx := context.Background()
	key := s.Prefix() + "raw"
	b.Run("store", func(b *testing.B) {
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := s.Set(ctx, "k", val, 0); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	fast := open(b, []string{testserver.Redis(b)}, redis.Options{ContextTimeoutOnly: true})
	b.Run("store-context-timeout-only", func(b *testing.B) {
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := fast.Set(ctx, "k", val, 0); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("store-timer", func(b *testing.B) {
		// A deadline later than Options.Timeout: the Store arms a timer.
		lctx, cancel := context.WithTimeout(ctx, time.Hour)
		defer cancel()
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := s.Set(lctx, "k", val, 0); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("raw", func(b *testing.B) {
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				c.Do(ctx, c.B().Set().Key(key).Value(string(val)).Build())
			}
		})
	})
	b.Run("raw-with-timer", func(b *testing.B) {
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				tctx, cancel := context.WithTimeout(ctx, time.Second)
				c.Do(tctx, c.B().Set().Key(key).Value(string(val)).Build())
				cancel()
			}
		})
	})
}
