package qcache_test

import (
	"context"
	"database/sql/driver"
	"testing"

	"github.com/cachekit/cachekit/memory"
	"github.com/cachekit/cachekit/qcache"
)

func TestInvalidateImages(t *testing.T) {
	store := must(memory.NewStore(memory.StoreOptions{}))
	t.Cleanup(func() { store.Close() })
	g := newGEnv(t, store, qcache.GranularOptions{})
	p := must(qcache.NewGranularPolicy(qcache.GranularOptions{Store: store, Dialect: qcache.SQLite}))
	ctx := context.Background()

	g.warm(t, selByUser, 1, 2)
	img := qcache.RowImage{Columns: []string{"ID", "User_ID"}, Values: []driver.Value{int64(9), "1"}}
	if err := p.InvalidateImages(ctx, "Posts", img); err != nil {
		t.Fatal(err)
	}
	g.expect(t, selByUser, 1, false)
	g.expect(t, selByUser, 2, true)

	// An image without the scheme's column bumps the table.
	g.warm(t, selByUser, 1)
	if err := p.InvalidateImages(ctx, "posts", qcache.RowImage{Columns: []string{"id"}, Values: []driver.Value{int64(3)}}); err != nil {
		t.Fatal(err)
	}
	g.expect(t, selByUser, 1, false)
	g.expect(t, selByUser, 2, false)
	if s := p.Stats(); s.InvalidatedRows != 1 || s.InvalidatedTables != 1 {
		t.Fatalf("stats %+v", s)
	}
}
