package qcache_test

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/cachekit/cachekit/internal/testserver"

	"github.com/cachekit/cachekit/qcache"
)

// BenchmarkGranularHit is a point SELECT served from the cache by a
// GranularPolicy on the memory store (the hit path of Lookup).
func BenchmarkGranularHit(b *testing.B) {
	r := newReadEnv(b, nil, qcache.GranularOptions{})
	ctx := context.Background()
	const q = `SELECT title FROM posts WHERE id = ?`
	var title string
	if err := r.db.QueryRowContext(ctx, q, 1).Scan(&title); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := r.db.QueryRowContext(ctx, q, 1).Scan(&title); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGranularHitRedis is BenchmarkGranularHit on a Redis store (one
// GetMany of the stamps, scheme lists and entry per hit).
func BenchmarkGranularHitRedis(b *testing.B) {
	store := openRedis(b, []string{testserver.Redis(b)}, "bench:"+rand.Text()+":", time.Second)
	r := newReadEnv(b, store, qcache.GranularOptions{})
	ctx := context.Background()
	const q = `SELECT title FROM posts WHERE id = ?`
	var title string
	if err := r.db.QueryRowContext(ctx, q, 1).Scan(&title); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := r.db.QueryRowContext(ctx, q, 1).Scan(&title); err != nil {
			b.Fatal(err)
		}
	}
}
