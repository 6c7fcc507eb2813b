package qcache_test

import (
	"context"
	"database/sql"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/cachekit/cachekit/internal/dbtest"
	"github.com/cachekit/cachekit/memory"
	"github.com/cachekit/cachekit/qcache"
)

// TestPostgresCoalesce runs readers of one query on two wrapped databases
// (two policies, as in two processes) sharing one store, with the lock
// on: while the first reader holds its rows, every other reader waits for
// its fill, and PostgreSQL sees one query in all.
func TestPostgresCoalesce(t *testing.T) {
	e := newPGEnv(t, pgSetup...)
	store := must(memory.NewStore(memory.StoreOptions{}))
	t.Cleanup(func() { store.Close() })
	type process struct {
		inner *dbtest.Postgres
		db    *sql.DB
		p     *qcache.GranularPolicy
		rec   *recorder
	}
	procs := make([]process, 2)
	for i := range procs {
		pr := &procs[i]
		pr.inner = &dbtest.Postgres{Inner: e.inner.Inner}
		pr.rec = newRecorder(qcache.Coalesced, qcache.LeaseWait)
		pr.p = must(qcache.NewGranularPolicy(qcache.GranularOptions{
			Store: store, Dialect: qcache.Postgres, Lock: true, LockWait: time.Hour, Observer: pr.rec,
		}))
		pr.db = sql.OpenDB(qcache.Wrap(pr.inner, qcache.Options{Policy: pr.p, OnError: func(err error) { t.Errorf("OnError: %v", err) }}))
		t.Cleanup(func() { pr.db.Close() })
	}
	ctx := context.Background()
	const q = `SELECT id, status FROM posts WHERE user_id = $1 ORDER BY id`
	want := all(t, ctx, e.plain, q, 1)

	rows := must(procs[0].db.QueryContext(ctx, q, 1))
	const n = 4 // readers per process
	var wg sync.WaitGroup
	got := make([][][]any, 2*n)
	for i := range 2 * n {
		wg.Go(func() { got[i] = all(t, ctx, procs[i%2].db, q, 1) })
	}
	// In the first process every reader follows the open one; in the
	// second, one waits for the lease and the others follow it.
	procs[0].rec.await(t, qcache.Coalesced, n)
	procs[1].rec.await(t, qcache.LeaseWait, 1)
	procs[1].rec.await(t, qcache.Coalesced, n-1)
	for rows.Next() {
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i := range got {
		if !reflect.DeepEqual(got[i], want) {
			t.Fatalf("reader %d got %v, want %v", i, got[i], want)
		}
	}
	if n0, n1 := procs[0].inner.Queries.Load(), procs[1].inner.Queries.Load(); n0 != 1 || n1 != 0 {
		t.Errorf("PostgreSQL saw %d and %d queries from the two processes, want 1 and 0", n0, n1)
	}
	s0, s1 := procs[0].p.Stats(), procs[1].p.Stats()
	if s0.Misses != 1 || s0.Stored != 1 || s0.Hits != n || s1.Misses != 0 || s1.Hits != n {
		t.Errorf("Stats() = %+v and %+v, want 1 miss, 1 stored and %d hits, then %d hits", s0, s1, n, n)
	}
}
