package qcache_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/cachekit/cachekit/cachetest"
	"github.com/cachekit/cachekit/internal/dbtest"
	"github.com/cachekit/cachekit/memory"
	"github.com/cachekit/cachekit/qcache"
)

// The statements the tests run and the tables they read or write: the
// provisional extractor (the real one comes from the SQL parser).
const (
	selItems     = `SELECT id, name, price, data, created, note FROM items ORDER BY id`
	selItem      = `SELECT name FROM items WHERE id = ?`
	selJoin      = `SELECT i.name, t.tag FROM items i JOIN tags t ON t.item_id = i.id ORDER BY i.id, t.tag`
	selCounter   = `SELECT k, v FROM counters ORDER BY k`
	selRandom    = `SELECT name, random() IS NOT NULL FROM items ORDER BY id`
	insItem      = `INSERT INTO items (name, price, data, created, note) VALUES (?, ?, ?, ?, ?)`
	updItem      = `UPDATE items SET name = ? WHERE id = ?`
	delItem      = `DELETE FROM items WHERE id = ?`
	insTag       = `INSERT INTO tags (item_id, tag) VALUES (?, ?)`
	incCounter   = `UPDATE counters SET v = v + 1 WHERE k = ?`
	insDup       = `INSERT INTO items (id, name) VALUES (1, 'dup')`
	selMissing   = `SELECT * FROM missing`
	insReturning = `INSERT INTO items (name) VALUES (?) RETURNING id`
)

var reads = map[string][]string{
	selItems:   {"items"},
	selItem:    {"items"},
	selJoin:    {"items", "tags"},
	selCounter: {"counters"},
	selMissing: {"missing"},
}

var writes = map[string][]string{
	insItem:      {"items"},
	updItem:      {"items"},
	delItem:      {"items"},
	insTag:       {"tags"},
	incCounter:   {"counters"},
	insDup:       {"items"},
	selRandom:    nil,
	insReturning: {"items"},
}

func readTables(q string) ([]string, bool) {
	t, ok := reads[q]
	return t, ok
}

func writeTables(q string) ([]string, bool) {
	if _, ok := reads[q]; ok {
		return nil, true
	}
	t, ok := writes[q]
	return t, ok // unknown statements (DDL) invalidate everything
}

type env struct {
	inner  *dbtest.SQLite
	db     *sql.DB // wrapped
	plain  *sql.DB // the same database, unwrapped
	policy *qcache.TablePolicy
	clock  *cachetest.FakeClock
	errs   atomic.Int64 // errors reported to OnError
}

func newEnv(t testing.TB) *env {
	t.Helper()
	dsn := "file:" + filepath.Join(t.TempDir(), "db.sqlite") + "?_journal_mode=WAL&_busy_timeout=10000&_txlock=immediate"
	e := &env{inner: &dbtest.SQLite{DSN: dsn}, clock: cachetest.NewFakeClock(time.Unix(1e9, 0))}
	store, err := memory.NewStore(memory.StoreOptions{MaxEntries: 10_000, Clock: e.clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e.policy, err = qcache.NewTablePolicy(qcache.TableOptions{Store: store, Reads: readTables, Writes: writeTables})
	if err != nil {
		t.Fatal(err)
	}
	e.db = sql.OpenDB(qcache.Wrap(e.inner, qcache.Options{
		Policy:  e.policy,
		OnError: func(err error) { e.errs.Add(1); t.Logf("OnError: %v", err) },
	}))
	t.Cleanup(func() { e.db.Close() })
	e.plain, err = sql.Open("sqlite3", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.plain.Close() })
	for _, s := range []string{
		`CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL, data BLOB, created DATETIME, note)`,
		`CREATE TABLE tags (item_id INTEGER, tag TEXT)`,
		`CREATE TABLE counters (k INTEGER PRIMARY KEY, v INTEGER NOT NULL)`,
		`INSERT INTO items (name, price, data, created, note) VALUES ('a', 1.5, x'00ff', '2024-02-29 13:04:05', NULL), ('b', NULL, NULL, NULL, 7)`,
		`INSERT INTO tags VALUES (1, 'x'), (2, 'y')`,
	} {
		if _, err := e.plain.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	return e
}

// readChecked runs query through db, checks its result against plain (an
// unwrapped database) and reports whether it was served from the cache:
// whether no query reached the driver, whose count is queries.
func readChecked(t *testing.T, db, plain *sql.DB, queries *atomic.Int64, query string, args ...any) (cached bool) {
	t.Helper()
	ctx := context.Background()
	before := queries.Load()
	got := all(t, ctx, db, query, args...)
	cached = queries.Load() == before
	if want := all(t, ctx, plain, query, args...); !reflect.DeepEqual(got, want) {
		t.Fatalf("%s %v:\n got %v\nwant %v (cached %v)", query, args, got, want, cached)
	}
	return cached
}

// all runs query on db and returns every row scanned into []any.
func all(t *testing.T, ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, query string, args ...any) [][]any {
	t.Helper()
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	n := len(must(rows.Columns()))
	var out [][]any
	for rows.Next() {
		dest := make([]any, n)
		ptrs := make([]any, n)
		for i := range dest {
			ptrs[i] = &dest[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out = append(out, dest)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// check runs query through the wrapper and unwrapped, and fails unless both
// agree. It reports whether the wrapper reached the database.
func (e *env) check(t *testing.T, ctx context.Context, query string, args ...any) (reachedDB bool) {
	t.Helper()
	before := e.inner.Queries.Load()
	got := all(t, ctx, e.db, query, args...)
	reached := e.inner.Queries.Load() != before
	want := all(t, context.Background(), e.plain, query, args...)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s %v:\n got %#v\nwant %#v", query, args, got, want)
	}
	return reached
}

func TestSelectServedFromCache(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	if !e.check(t, ctx, selItems) {
		t.Error("first query: did not reach the database")
	}
	if e.check(t, ctx, selItems) {
		t.Error("second query: reached the database, want a cache hit")
	}
	if !e.check(t, ctx, selItem, 1) {
		t.Error("same SQL, new argument: did not reach the database")
	}
	if e.check(t, ctx, selItem, 1) {
		t.Error("same SQL and argument: reached the database")
	}
	if !e.check(t, ctx, selItem, 2) {
		t.Error("other argument: served from cache")
	}
	for i := range 2 {
		if !e.check(t, ctx, selRandom) {
			t.Errorf("uncacheable query, run %d: served from cache", i+1)
		}
	}
	if n := e.errs.Load(); n != 0 {
		t.Errorf("OnError called %d times", n)
	}
}

func TestColumnTypesOnHit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	types := func(db *sql.DB) []string {
		rows, err := db.Query(selItems)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for _, ct := range must(rows.ColumnTypes()) {
			n, nok := ct.Nullable()
			l, lok := ct.Length()
			p, s, dok := ct.DecimalSize()
			out = append(out, fmt.Sprint(ct.Name(), ct.DatabaseTypeName(), ct.ScanType(), n, nok, l, lok, p, s, dok))
		}
		for rows.Next() {
		}
		return out
	}
	want := types(e.plain)
	miss := types(e.db)
	before := e.inner.Queries.Load()
	hit := types(e.db)
	if e.inner.Queries.Load() != before {
		t.Fatal("second query was not a hit")
	}
	if !reflect.DeepEqual(miss, want) || !reflect.DeepEqual(hit, want) {
		t.Errorf("column types:\nmiss %v\n hit %v\nwant %v", miss, hit, want)
	}
}

func TestWritesInvalidate(t *testing.T) {
	t.Parallel()
	created := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name string
		sql  string
		args []any
	}{
		{"insert", insItem, []any{"c", 2.25, []byte("blob"), created, "n"}},
		{"update", updItem, []any{"renamed", 1}},
		{"delete", delItem, []any{2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			ctx := context.Background()
			e.check(t, ctx, selItems)
			e.check(t, ctx, selJoin)
			e.check(t, ctx, selItem, 1)
			if _, err := e.db.Exec(tc.sql, tc.args...); err != nil {
				t.Fatal(err)
			}
			for _, q := range []struct {
				sql  string
				args []any
			}{{selItems, nil}, {selJoin, nil}, {selItem, []any{1}}} {
				if !e.check(t, ctx, q.sql, q.args...) {
					t.Errorf("%s after %s: served from cache", q.sql, tc.name)
				}
			}
		})
	}
}

func TestWriteToOtherTableKeepsCache(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.check(t, ctx, selItems)
	e.check(t, ctx, selJoin)
	if _, err := e.db.Exec(insTag, 1, "z"); err != nil {
		t.Fatal(err)
	}
	if e.check(t, ctx, selItems) {
		t.Error("items query after a write to tags: reached the database")
	}
	if !e.check(t, ctx, selJoin) {
		t.Error("join of items and tags after a write to tags: served from cache")
	}
}

func TestPreparedStatements(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	sel := must(e.db.Prepare(selItem))
	defer sel.Close()
	upd := must(e.db.Prepare(updItem))
	defer upd.Close()
	before := e.inner.Queries.Load()
	get := func() string {
		var s string
		if err := sel.QueryRowContext(ctx, 1).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	get()
	get()
	if n := e.inner.Queries.Load() - before; n != 1 {
		t.Errorf("two prepared queries reached the database %d times, want 1", n)
	}
	if _, err := upd.Exec("p", 1); err != nil {
		t.Fatal(err)
	}
	if got := get(); got != "p" {
		t.Errorf("after prepared update: got %q, want %q", got, "p")
	}
}

func TestTransactionInvalidatesOnCommit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.check(t, ctx, selItems)
	tx := must(e.db.BeginTx(ctx, nil))
	if _, err := tx.Exec(updItem, "in-tx", 1); err != nil {
		t.Fatal(err)
	}
	// Not committed: the database still answers the old rows, and so does
	// the cache.
	if e.check(t, ctx, selItems) {
		t.Error("before Commit: reached the database, want the cached result")
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if !e.check(t, ctx, selItems) {
		t.Error("after Commit: served from cache")
	}
}

func TestTransactionRollbackKeepsCache(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.check(t, ctx, selItems)
	tx := must(e.db.BeginTx(ctx, nil))
	if _, err := tx.Exec(delItem, 1); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if e.check(t, ctx, selItems) {
		t.Error("after Rollback: reached the database, want the cached result")
	}
}

func TestQueryInWrittenTransactionBypassesCache(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.check(t, ctx, selItem, 1)
	tx := must(e.db.BeginTx(ctx, nil))
	defer tx.Rollback()
	// Before the transaction writes, its reads may be served from the cache.
	before := e.inner.Queries.Load()
	var name string
	if err := tx.QueryRow(selItem, 1).Scan(&name); err != nil {
		t.Fatal(err)
	}
	if e.inner.Queries.Load() != before || name != "a" {
		t.Errorf("clean transaction: got %q, reached db %v; want the cached %q", name, e.inner.Queries.Load() != before, "a")
	}
	if _, err := tx.Exec(updItem, "own-write", 1); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		before := e.inner.Queries.Load()
		if err := tx.QueryRow(selItem, 1).Scan(&name); err != nil {
			t.Fatal(err)
		}
		if e.inner.Queries.Load() == before {
			t.Error("query in a written transaction: served from cache")
		}
		if name != "own-write" {
			t.Errorf("query in a written transaction: got %q, want its own write %q", name, "own-write")
		}
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	// Nothing the transaction read was stored.
	if e.check(t, ctx, selItem, 1) {
		t.Error("after Rollback: reached the database")
	}
}

func TestBypassAndTTL(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.check(t, ctx, selItems)
	if !e.check(t, qcache.Bypass(ctx), selItems) {
		t.Error("Bypass: served from cache")
	}
	if e.check(t, ctx, selItems) {
		t.Error("after a bypassed query: cache entry lost")
	}

	short := qcache.WithTTL(ctx, time.Second)
	if !e.check(t, short, selItem, 2) || e.check(t, short, selItem, 2) {
		t.Error("WithTTL: not cached")
	}
	e.clock.Advance(2 * time.Second)
	if !e.check(t, ctx, selItem, 2) {
		t.Error("WithTTL: served after the TTL")
	}
	// The default TTL is much longer than a second.
	if e.check(t, ctx, selItems) {
		t.Error("default TTL: expired after two seconds")
	}
}

func TestInnerErrorsUnchanged(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tc := range []struct {
		name string
		run  func(db *sql.DB) error
	}{
		{"query", func(db *sql.DB) error { _, err := db.Query(selMissing); return err }},
		{"exec", func(db *sql.DB) error { _, err := db.Exec(insDup); return err }},
		{"prepare", func(db *sql.DB) error { _, err := db.Prepare(`SELEC nonsense`); return err }},
	} {
		got, want := tc.run(e.db), tc.run(e.plain)
		var gs, ws sqlite3.Error
		if !errors.As(got, &gs) || !errors.As(want, &ws) {
			t.Errorf("%s: got %v, want %v (both sqlite3.Error)", tc.name, got, want)
			continue
		}
		if gs.Code != ws.Code || gs.ExtendedCode != ws.ExtendedCode || got.Error() != want.Error() {
			t.Errorf("%s: got %v (%d/%d), want %v (%d/%d)", tc.name, got, gs.Code, gs.ExtendedCode, want, ws.Code, ws.ExtendedCode)
		}
	}
}

// TestConcurrentReadsNeverStale runs writers and readers at once: a read
// that starts after a write returned must see that write.
func TestConcurrentReadsNeverStale(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const writers, readers, incs = 3, 4, 300
	for k := range writers {
		if _, err := e.plain.Exec(`INSERT INTO counters VALUES (?, 0)`, k); err != nil {
			t.Fatal(err)
		}
	}
	var committed [writers]atomic.Int64
	ctx := context.Background()
	var wg sync.WaitGroup
	var done atomic.Bool
	for k := range writers {
		wg.Go(func() {
			for i := range incs {
				if k == 0 && i%2 == 0 { // half of writer 0's writes in transactions
					tx, err := e.db.BeginTx(ctx, nil)
					if err != nil {
						t.Error(err)
						return
					}
					if _, err := tx.Exec(incCounter, k); err != nil {
						tx.Rollback()
						t.Error(err)
						return
					}
					if err := tx.Commit(); err != nil {
						t.Error(err)
						return
					}
				} else if _, err := e.db.Exec(incCounter, k); err != nil {
					t.Error(err)
					return
				}
				committed[k].Store(int64(i + 1))
			}
		})
	}
	var hits, reads atomic.Int64
	var rwg sync.WaitGroup
	for range readers {
		rwg.Go(func() {
			for !done.Load() {
				var floor [writers]int64
				for k := range floor {
					floor[k] = committed[k].Load()
				}
				before := e.inner.Queries.Load()
				rows, err := e.db.QueryContext(ctx, selCounter)
				if err != nil {
					t.Error(err)
					return
				}
				var got [][2]int64
				for rows.Next() {
					var kv [2]int64
					if err := rows.Scan(&kv[0], &kv[1]); err != nil {
						t.Error(err)
					}
					got = append(got, kv)
				}
				if err := rows.Err(); err != nil {
					t.Error(err)
				}
				rows.Close()
				if e.inner.Queries.Load() == before {
					hits.Add(1)
				}
				reads.Add(1)
				for _, kv := range got {
					k, v := kv[0], kv[1]
					if v < floor[k] {
						t.Errorf("counter %d: read %d after a write of %d had returned", k, v, floor[k])
					}
				}
			}
		})
	}
	wg.Wait()
	done.Store(true)
	rwg.Wait()
	t.Logf("%d reads, about %d served from cache", reads.Load(), hits.Load())
	e.check(t, ctx, selCounter)
}

func TestOpen(t *testing.T) {
	t.Parallel()
	store := must(memory.NewStore(memory.StoreOptions{}))
	defer store.Close()
	p := must(qcache.NewTablePolicy(qcache.TableOptions{Store: store, Reads: readTables, Writes: writeTables}))
	db, err := qcache.Open("sqlite3", ":memory:", qcache.Options{Policy: p})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE counters (k INTEGER PRIMARY KEY, v INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO counters VALUES (1, 1)`); err != nil {
		t.Fatal(err)
	}
	var k, v int64
	for want := range int64(3) {
		if err := db.QueryRow(selCounter).Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		if v != want+1 {
			t.Errorf("got v=%d, want %d", v, want+1)
		}
		if _, err := db.Exec(incCounter, 1); err != nil {
			t.Fatal(err)
		}
	}
}

func TestWriteThroughQueryInvalidates(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.check(t, ctx, selItems)
	var id int64
	if err := e.db.QueryRow(insReturning, "returned").Scan(&id); err != nil {
		t.Fatal(err)
	}
	if id != 3 {
		t.Errorf("RETURNING id: got %d, want 3", id)
	}
	if !e.check(t, ctx, selItems) {
		t.Error("after INSERT ... RETURNING through Query: served from cache")
	}
}

func TestUnknownWriteInvalidatesEverything(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.check(t, ctx, selItems)
	e.check(t, ctx, selCounter)
	if _, err := e.db.Exec(`CREATE INDEX items_name ON items (name)`); err != nil {
		t.Fatal(err)
	}
	if !e.check(t, ctx, selItems) || !e.check(t, ctx, selCounter) {
		t.Error("after a statement the extractor cannot read: served from cache")
	}
}

func TestMaxRows(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	db := sql.OpenDB(qcache.Wrap(e.inner, qcache.Options{Policy: e.policy, MaxRows: 1}))
	defer db.Close()
	ctx := context.Background()
	for i := range 2 {
		before := e.inner.Queries.Load()
		if got := all(t, ctx, db, selItems); len(got) != 2 {
			t.Fatalf("got %d rows, want 2", len(got))
		}
		if e.inner.Queries.Load() == before {
			t.Errorf("run %d: a result over MaxRows was served from cache", i+1)
		}
	}
	all(t, ctx, db, selItem, 1)
	before := e.inner.Queries.Load()
	all(t, ctx, db, selItem, 1)
	if e.inner.Queries.Load() != before {
		t.Error("a one-row result was not cached with MaxRows 1")
	}
}

// flakyStore is a memory store whose Delete can be made to fail, as a store
// that is down would.
type flakyStore struct {
	*memory.Store
	down atomic.Bool
}

var errDown = errors.New("store down")

func (s *flakyStore) Delete(ctx context.Context, keys ...string) (int, error) {
	if s.down.Load() {
		return 0, errDown
	}
	return s.Store.Delete(ctx, keys...)
}

func TestLostInvalidationStopsServing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	store := &flakyStore{Store: must(memory.NewStore(memory.StoreOptions{}))}
	defer store.Close()
	p := must(qcache.NewTablePolicy(qcache.TableOptions{Store: store, Reads: readTables, Writes: writeTables}))
	var reported []error
	var mu sync.Mutex
	db := sql.OpenDB(qcache.Wrap(e.inner, qcache.Options{Policy: p, OnError: func(err error) {
		mu.Lock()
		defer mu.Unlock()
		reported = append(reported, err)
	}}))
	defer db.Close()
	ctx := context.Background()
	all(t, ctx, db, selItems)
	store.down.Store(true)
	if _, err := db.Exec(updItem, "while-down", 1); err != nil {
		t.Fatalf("write while the store is down: %v", err)
	}
	mu.Lock()
	if len(reported) != 1 || !errors.Is(reported[0], qcache.ErrInvalidation) || !errors.Is(reported[0], errDown) {
		t.Errorf("OnError got %v, want one error wrapping ErrInvalidation and the store's error", reported)
	}
	mu.Unlock()
	// The stale entry must not be served, store down or back up.
	for _, down := range []bool{true, false} {
		store.down.Store(down)
		before := e.inner.Queries.Load()
		got := all(t, ctx, db, selItems)
		if e.inner.Queries.Load() == before {
			t.Errorf("store down=%v: served from cache after a lost invalidation", down)
		}
		if want := all(t, ctx, e.plain, selItems); !reflect.DeepEqual(got, want) {
			t.Errorf("store down=%v: got %v, want %v", down, got, want)
		}
	}
	before := e.inner.Queries.Load()
	all(t, ctx, db, selItems)
	if e.inner.Queries.Load() != before {
		t.Error("store back up: caching did not resume")
	}
}

func TestPassthroughWithoutPolicy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	db := sql.OpenDB(qcache.Wrap(e.inner, qcache.Options{}))
	defer db.Close()
	for range 2 {
		before := e.inner.Queries.Load()
		all(t, context.Background(), db, selItems)
		if e.inner.Queries.Load() == before {
			t.Error("without a Policy: served from cache")
		}
	}
}

func TestStrictIsolationBypassesCache(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.check(t, ctx, selItem, 1)
	tx := must(e.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelSerializable}))
	defer tx.Rollback()
	before := e.inner.Queries.Load()
	var name string
	if err := tx.QueryRow(selItem, 1).Scan(&name); err != nil {
		t.Fatal(err)
	}
	if e.inner.Queries.Load() == before {
		t.Error("SERIALIZABLE transaction: served from cache")
	}
}

// TestRandomOperationsMatchDatabase runs a seeded random sequence of writes
// (alone, or in transactions that commit or roll back) and reads, and
// checks after each step that every query answers what the database does.
func TestRandomOperationsMatchDatabase(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	queries := []struct {
		sql  string
		args []any
	}{{selItems, nil}, {selJoin, nil}, {selItem, []any{1}}, {selItem, []any{2}}, {selItem, []any{3}}}
	type execer interface {
		ExecContext(context.Context, string, ...any) (sql.Result, error)
	}
	write := func(x execer) {
		var err error
		switch rng.IntN(4) {
		case 0:
			_, err = x.ExecContext(ctx, insItem, fmt.Sprint("n", rng.IntN(100)), rng.Float64(), nil, nil, nil)
		case 1:
			_, err = x.ExecContext(ctx, updItem, fmt.Sprint("u", rng.IntN(100)), 1+rng.IntN(4))
		case 2:
			_, err = x.ExecContext(ctx, delItem, 1+rng.IntN(6))
		case 3:
			_, err = x.ExecContext(ctx, insTag, 1+rng.IntN(4), fmt.Sprint("t", rng.IntN(10)))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	hits := 0
	for step := range 300 {
		switch r := rng.IntN(10); {
		case r < 4:
			write(e.db)
		case r < 6:
			tx := must(e.db.BeginTx(ctx, nil))
			for range 1 + rng.IntN(3) {
				write(tx)
			}
			all(t, ctx, tx, selItems)
			var err error
			if rng.IntN(2) == 0 {
				err = tx.Commit()
			} else {
				err = tx.Rollback()
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		for _, q := range queries {
			if !e.check(t, ctx, q.sql, q.args...) {
				hits++
			}
		}
		if t.Failed() {
			t.Fatalf("mismatch at step %d", step)
		}
	}
	t.Logf("%d of %d reads served from cache", hits, 300*len(queries))
	if hits == 0 {
		t.Error("no read was served from cache")
	}
}

func TestWriteThroughQueryKeepsColumnTypes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	typeNames := func(db *sql.DB) []string {
		rows, err := db.Query(insReturning, "typed")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for _, ct := range must(rows.ColumnTypes()) {
			out = append(out, ct.DatabaseTypeName()+" "+ct.ScanType().String())
		}
		for rows.Next() {
		}
		return out
	}
	if got, want := typeNames(e.db), typeNames(e.plain); !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestManualInvalidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.check(t, ctx, selItems)
	e.check(t, ctx, selCounter)
	if err := e.policy.InvalidateTables(ctx, "counters"); err != nil {
		t.Fatal(err)
	}
	if e.check(t, ctx, selItems) {
		t.Error("InvalidateTables(counters): items query reached the database")
	}
	if !e.check(t, ctx, selCounter) {
		t.Error("InvalidateTables(counters): counters query served from cache")
	}
	if err := e.policy.InvalidateAll(ctx); err != nil {
		t.Fatal(err)
	}
	if !e.check(t, ctx, selItems) || !e.check(t, ctx, selCounter) {
		t.Error("InvalidateAll: served from cache")
	}
}
