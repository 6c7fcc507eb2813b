package qcache_test

import (
	"context"
	"testing"
)

// BenchmarkQuery compares a point SELECT served from the cache with the
// same SELECT on the unwrapped database.
func BenchmarkQuery(b *testing.B) {
	for _, bc := range []struct {
		name   string
		cached bool
	}{{"cached", true}, {"sqlite", false}} {
		b.Run(bc.name, func(b *testing.B) {
			e := newEnv(b)
			db := e.plain
			if bc.cached {
				db = e.db
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				var name string
				if err := db.QueryRowContext(ctx, selItem, 1).Scan(&name); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
