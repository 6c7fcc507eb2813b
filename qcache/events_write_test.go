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

// TestEventContext checks that read events carry the context of the query
// (fills: the context they complete with) and invalidations that of the
// write, so that an observer can attribute them to a request.
func TestEventContext(t *testing.T) {
	type reqKey struct{}
	var (
		mu  sync.Mutex
		got = map[qcache.EventKind][]any{}
	)
	obs := qcache.ObserverFunc(func(e qcache.Event) {
		var v any
		if e.Ctx != nil {
			v = e.Ctx.Value(reqKey{})
		}
		mu.Lock()
		got[e.Kind] = append(got[e.Kind], v)
		mu.Unlock()
	})
	g := newGEnv(t, nil, qcache.GranularOptions{Observer: obs})
	req := func(id string) context.Context { return context.WithValue(context.Background(), reqKey{}, id) }
	read := func(ctx context.Context) {
		t.Helper()
		var title string
		if err := g.db.QueryRowContext(ctx, `SELECT title FROM posts WHERE id = ?`, 1).Scan(&title); err != nil {
			t.Fatal(err)
		}
	}
	read(req("r1")) // miss, stored
	read(req("r2")) // hit
	if _, err := g.db.ExecContext(req("w1"), `UPDATE posts SET title = 'z' WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for kind, want := range map[qcache.EventKind][]any{
		qcache.Miss: {"r1"}, qcache.Stored: {"r1"}, qcache.Hit: {"r2"}, qcache.InvalidateRows: {"w1"},
	} {
		if !slices.Equal(got[kind], want) {
			t.Errorf("%v events with request IDs %v, want %v", kind, got[kind], want)
		}
	}
}
