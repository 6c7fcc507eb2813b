package lock_test

import (
	"context"
	"testing"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/lock"
)

// benchStores runs f on a memory, a disk and a redis store (the last
// skipped without a server).
func benchStores(b *testing.B, f func(b *testing.B, s cachekit.Store)) {
	for _, tc := range []struct {
		name string
		open func(b *testing.B) cachekit.Store
	}{
		{"memory", func(b *testing.B) cachekit.Store { return newMemory(b, nil) }},
		{"disk", func(b *testing.B) cachekit.Store { return newDisk(b, "", nil) }},
		{"redis", func(b *testing.B) cachekit.Store { return newRedis(b, "") }},
	} {
		b.Run(tc.name, func(b *testing.B) { f(b, tc.open(b)) })
	}
}

// BenchmarkLock measures an uncontended Acquire + Release.
func BenchmarkLock(b *testing.B) {
	benchStores(b, func(b *testing.B, s cachekit.Store) {
		ctx := context.Background()
		l, err := lock.NewLock(s, "l", lock.LockOptions{})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := l.Acquire(ctx); err != nil {
				b.Fatal(err)
			}
			if err := l.Release(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkLockContended measures Acquire + Release by parallel owners of
// one lock, with and without early wake-ups from the store's notifier.
func BenchmarkLockContended(b *testing.B) {
	benchStores(b, func(b *testing.B, s cachekit.Store) {
		for _, notify := range []bool{true, false} {
			name := "notify"
			if !notify {
				name = "backoff-only"
			}
			b.Run(name, func(b *testing.B) {
				ctx := context.Background()
				b.SetParallelism(2)
				b.RunParallel(func(pb *testing.PB) {
					l, err := lock.NewLock(s, "l", lock.LockOptions{NoNotify: !notify})
					if err != nil {
						b.Error(err)
						return
					}
					for pb.Next() {
						if err := l.Acquire(ctx); err != nil {
							b.Error(err)
							return
						}
						if err := l.Release(ctx); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	})
}

// BenchmarkAveragerAdd measures one guarded read-modify-write.
func BenchmarkAveragerAdd(b *testing.B) {
	benchStores(b, func(b *testing.B, s cachekit.Store) {
		ctx := context.Background()
		a, err := lock.NewAverager(s, "avg", lock.AveragerOptions{})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := a.Add(ctx, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
}
