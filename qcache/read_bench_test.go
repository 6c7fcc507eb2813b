package qcache_test

import (
	"context"
	"testing"

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
