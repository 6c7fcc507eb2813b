package qcache_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/cachekit/cachekit/memory"
	"github.com/cachekit/cachekit/qcache"
)

// TestGranularInvalidationEvents checks that every invalidation a
// GranularPolicy applies is reported with its kind and table, and counted.
func TestGranularInvalidationEvents(t *testing.T) {
	var (
		mu  sync.Mutex
		got []qcache.Event
	)
	obs := qcache.ObserverFunc(func(e qcache.Event) {
		switch e.Kind {
		case qcache.InvalidateRows, qcache.InvalidateTable, qcache.InvalidateGlobal:
			mu.Lock()
			got = append(got, e)
			mu.Unlock()
		}
	})
	store := must(memory.NewStore(memory.StoreOptions{}))
	t.Cleanup(func() { store.Close() })
	p := must(qcache.NewGranularPolicy(qcache.GranularOptions{Store: store, Dialect: qcache.SQLite, Observer: obs}))
	g := newGEnv(t, store, qcache.GranularOptions{Observer: obs})
	ctx := context.Background()

	last := func() qcache.Event {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		if len(got) == 0 {
			t.Fatal("no invalidation event")
		}
		e := got[len(got)-1]
		got = got[:0]
		return e
	}
	check := func(e qcache.Event, kind qcache.EventKind, sql string, tables ...string) {
		t.Helper()
		if e.Kind != kind || e.SQL != sql || !slices.Equal(e.Tables, tables) {
			t.Fatalf("event %+v, want kind %v, sql %q, tables %v", e, kind, sql, tables)
		}
	}

	g.warm(t, selByUser, 1) // the scheme user_id is live
	const upd = `UPDATE posts SET title = 'z' WHERE id = ?`
	g.exec(t, upd, 1)
	check(last(), qcache.InvalidateRows, upd, "posts")
	const ddl = `CREATE TABLE other (id INTEGER)`
	g.exec(t, ddl)
	check(last(), qcache.InvalidateGlobal, ddl)

	if err := p.InvalidateTables(ctx, "POSTS"); err != nil {
		t.Fatal(err)
	}
	check(last(), qcache.InvalidateTable, "", "posts")
	if err := p.InvalidateRow(ctx, "posts", map[string]any{"user_id": 1}); err != nil {
		t.Fatal(err)
	}
	check(last(), qcache.InvalidateRows, "", "posts")
	if err := p.InvalidateAll(ctx); err != nil {
		t.Fatal(err)
	}
	check(last(), qcache.InvalidateGlobal, "")
	if s := p.Stats(); s.InvalidatedRows != 1 || s.InvalidatedTables != 1 || s.InvalidatedGlobal != 1 {
		t.Fatalf("stats %+v", s)
	}
}
