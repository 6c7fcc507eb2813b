package qcache

import (
	"context"
	"database/sql/driver"
	"testing"

	"github.com/cachekit/cachekit/memory"
)

// BenchmarkLookupHit measures GranularPolicy.Lookup alone on a hit (memory
// store), without the driver and database/sql around it.
func BenchmarkLookupHit(b *testing.B) {
	store, err := memory.NewStore(memory.StoreOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	p, err := NewGranularPolicy(GranularOptions{Store: store, Dialect: SQLite})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	q := Query{SQL: `SELECT title FROM posts WHERE id = ?`, Args: []driver.NamedValue{{Ordinal: 1, Value: int64(1)}}}
	_, fill, err := p.Lookup(ctx, q)
	if err != nil || fill == nil {
		b.Fatalf("first Lookup: fill %v, err %v", fill != nil, err)
	}
	if err := fill(ctx, []byte("result"), nil); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		hit, _, err := p.Lookup(ctx, q)
		if err != nil || hit == nil {
			b.Fatalf("Lookup: hit %q, err %v", hit, err)
		}
	}
}
