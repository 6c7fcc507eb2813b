package qcache_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"math/rand/v2"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cachekit/cachekit/memory"
	"github.com/cachekit/cachekit/qcache"
	"github.com/mattn/go-sqlite3"
)

const localByID = `SELECT title FROM posts WHERE id = ?`

// localRead reads query through db, checks it against the database and
// reports whether the local index served it.
func localRead(t *testing.T, r *readEnv, db *sql.DB, p *qcache.GranularPolicy, query string, args ...any) (local bool) {
	t.Helper()
	ctx := context.Background()
	before := p.Stats().LocalHits
	got := all(t, ctx, db, query, args...)
	local = p.Stats().LocalHits != before
	if want := all(t, ctx, r.plain, query, args...); !reflect.DeepEqual(got, want) {
		t.Fatalf("%s %v: got %v, want %v (local %v)", query, args, got, want, local)
	}
	return local
}

// localWarm reads query until the local index serves it.
func localWarm(t *testing.T, r *readEnv, query string, args ...any) {
	t.Helper()
	for range 3 {
		if localRead(t, r, r.db, r.policy, query, args...) {
			return
		}
	}
	t.Fatalf("%s %v: never served by the local index", query, args)
}

// localEnv is a readEnv on a memory store it returns.
func localEnv(t *testing.T) (*readEnv, *memory.Store) {
	t.Helper()
	store := must(memory.NewStore(memory.StoreOptions{}))
	t.Cleanup(func() { store.Close() })
	return newReadEnv(t, store, qcache.GranularOptions{}), store
}

func TestLocalServesHits(t *testing.T) {
	t.Parallel()
	r, _ := localEnv(t)
	localWarm(t, r, localByID, 1)
	n := r.inner.Queries.Load()
	for range 10 {
		if !localRead(t, r, r.db, r.policy, localByID, 1) {
			t.Fatal("a repeated hit was not served by the local index")
		}
	}
	if got := r.inner.Queries.Load(); got != n {
		t.Errorf("%d queries reached the database", got-n)
	}
	if s := r.policy.Stats(); s.LocalHits > s.Hits {
		t.Errorf("Stats() = %+v: more local hits than hits", s)
	}

	off := newReadEnv(t, nil, qcache.GranularOptions{LocalEntries: -1})
	for range 3 {
		all(t, context.Background(), off.db, localByID, 1)
	}
	if s := off.policy.Stats(); s.Hits != 2 || s.LocalHits != 0 {
		t.Errorf("without the index: Stats() = %+v, want 2 hits, none local", s)
	}
}

// Every invalidation voids the local index's entries it covers.
func TestLocalNeverStale(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, c := range []struct {
		name  string
		write func(t *testing.T, r *readEnv, store *memory.Store) // changes post 1 and invalidates it
	}{
		{"row write", func(t *testing.T, r *readEnv, store *memory.Store) {
			must(r.db.Exec(`UPDATE posts SET title = 'row' WHERE id = 1`))
		}},
		{"write by another policy on the store", func(t *testing.T, r *readEnv, store *memory.Store) {
			db, _, _ := r.another(t, qcache.GranularOptions{Store: store})
			must(db.Exec(`UPDATE posts SET title = 'other' WHERE id = 1`))
		}},
		{"InvalidateRow", func(t *testing.T, r *readEnv, store *memory.Store) {
			must(r.plain.Exec(`UPDATE posts SET title = 'manual' WHERE id = 1`))
			if err := r.policy.InvalidateRow(ctx, "posts", map[string]any{"id": 1, "user_id": 1}); err != nil {
				t.Fatal(err)
			}
		}},
		{"InvalidateImages", func(t *testing.T, r *readEnv, store *memory.Store) {
			must(r.plain.Exec(`UPDATE posts SET title = 'images' WHERE id = 1`))
			img := qcache.RowImage{Columns: []string{"id", "user_id"}, Values: []driver.Value{int64(1), int64(1)}}
			if err := r.policy.InvalidateImages(ctx, "posts", img); err != nil {
				t.Fatal(err)
			}
		}},
		{"InvalidateTables", func(t *testing.T, r *readEnv, store *memory.Store) {
			must(r.plain.Exec(`UPDATE posts SET title = 'table' WHERE id = 1`))
			if err := r.policy.InvalidateTables(ctx, "posts"); err != nil {
				t.Fatal(err)
			}
		}},
		{"InvalidateAll", func(t *testing.T, r *readEnv, store *memory.Store) {
			must(r.plain.Exec(`UPDATE posts SET title = 'all' WHERE id = 1`))
			if err := r.policy.InvalidateAll(ctx); err != nil {
				t.Fatal(err)
			}
		}},
		{"write after the scheme list was lost", func(t *testing.T, r *readEnv, store *memory.Store) {
			if _, err := store.Delete(ctx, "qc:l:{posts}"); err != nil {
				t.Fatal(err)
			}
			must(r.db.Exec(`UPDATE posts SET title = 'lost' WHERE id = 1`)) // sees no scheme
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r, store := localEnv(t)
			localWarm(t, r, localByID, 1)
			localWarm(t, r, localByID, 3)
			c.write(t, r, store)
			if localRead(t, r, r.db, r.policy, localByID, 1) {
				t.Fatal("the local index served an invalidated entry")
			}
			localWarm(t, r, localByID, 1) // the store's entry enters the index again
		})
	}
}

// A reader that registers a scheme missing from its list rotates the
// scheme's generation, which voids the local entries under it.
func TestLocalSchemeRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, store := localEnv(t)
	localWarm(t, r, localByID, 1)
	if _, err := store.Delete(ctx, "qc:l:{posts}"); err != nil {
		t.Fatal(err)
	}
	localRead(t, r, r.db, r.policy, localByID, 2) // re-adds the scheme: rotation
	before := r.inner.Queries.Load()
	if localRead(t, r, r.db, r.policy, localByID, 1) {
		t.Fatal("the local index served an entry of a rotated generation")
	}
	if r.inner.Queries.Load() == before {
		t.Fatal("an entry of a rotated generation was served from the store")
	}
}

// A write that commits and invalidates while a miss's query runs (after
// its stamps were read, before its fill) keeps the result out of the
// store and out of the local index.
func TestLocalWriteRacingFill(t *testing.T) {
	t.Parallel()
	r := newReadEnv(t, nil, qcache.GranularOptions{})
	hc := &hookConnector{dsn: r.inner.DSN}
	db := sql.OpenDB(qcache.Wrap(hc, qcache.Options{Policy: r.policy, OnError: func(err error) { t.Logf("OnError: %v", err) }}))
	t.Cleanup(func() { db.Close() })
	var title string
	wrote := false
	race := func() {
		// The rows were read (old title); the write commits and
		// invalidates before the wrapper fills.
		wrote = true
		must(r.db.Exec(`UPDATE posts SET title = 'raced' WHERE id = 1`))
	}
	hc.afterRows.Store(&race)
	if err := db.QueryRow(localByID, 1).Scan(&title); err != nil {
		t.Fatal(err)
	}
	hc.afterRows.Store(nil)
	if !wrote || title == "raced" {
		t.Fatalf("the write did not race the query (wrote %v, read %q)", wrote, title)
	}
	if s := r.policy.Stats(); s.Dropped != 1 || s.Stored != 0 {
		t.Fatalf("the raced fill: Stats() = %+v, want it dropped", s)
	}
	for range 3 {
		if err := db.QueryRow(localByID, 1).Scan(&title); err != nil {
			t.Fatal(err)
		}
		if title != "raced" {
			t.Fatalf("read %q after the write, want %q", title, "raced")
		}
	}
	localWarm(t, r, localByID, 1)
}

// hookConnector runs afterRows (when set) once a query's rows are read to
// the end, before they report it.
type hookConnector struct {
	dsn       string
	afterRows atomic.Pointer[func()]
}

func (c *hookConnector) Connect(context.Context) (driver.Conn, error) {
	ic, err := (&sqlite3.SQLiteDriver{}).Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return &hookConn{SQLiteConn: ic.(*sqlite3.SQLiteConn), c: c}, nil
}

func (c *hookConnector) Driver() driver.Driver { return &sqlite3.SQLiteDriver{} }

type hookConn struct {
	*sqlite3.SQLiteConn
	c *hookConnector
}

func (c *hookConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	rows, err := c.SQLiteConn.QueryContext(ctx, q, args)
	if err != nil {
		return nil, err
	}
	return &hookRows{Rows: rows, c: c.c}, nil
}

type hookRows struct {
	driver.Rows
	c *hookConnector
}

func (r *hookRows) Next(dest []driver.Value) error {
	err := r.Rows.Next(dest)
	if errors.Is(err, io.EOF) {
		if f := r.c.afterRows.Load(); f != nil {
			(*f)()
		}
	}
	return err
}

// Readers and writers (through two policies sharing the store, and out of
// band with manual invalidations) run concurrently; values only grow, so
// every read must return at least what the database held when it started
// (once that value's invalidation was applied) and at most what it holds
// after.
func TestLocalConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, store := localEnv(t)
	db2, _, p2 := r.another(t, qcache.GranularOptions{Store: store})
	must(r.plain.Exec(`CREATE TABLE kv (k INTEGER PRIMARY KEY, g INTEGER, v INTEGER)`))
	for k := range 8 {
		must(r.plain.Exec(`INSERT INTO kv (k, g, v) VALUES (?, ?, 0)`, k, k%3))
	}
	// mu orders each write with its invalidation before the database reads
	// that bound the cached reads: a write holds it exclusively until its
	// invalidation is applied.
	var mu sync.RWMutex
	plainSum := func(q string, args ...any) int64 {
		mu.RLock()
		defer mu.RUnlock()
		var n int64
		if err := r.plain.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
			t.Error(err)
		}
		return n
	}
	reads := []struct {
		q    string
		args func(*rand.Rand) []any
	}{
		{`SELECT v FROM kv WHERE k = ?`, func(x *rand.Rand) []any { return []any{x.IntN(8)} }},
		{`SELECT sum(v) FROM kv WHERE g = ?`, func(x *rand.Rand) []any { return []any{x.IntN(3)} }},
		{`SELECT sum(v) FROM kv`, func(*rand.Rand) []any { return nil }},
	}
	write := func(x *rand.Rand) error {
		mu.Lock()
		defer mu.Unlock()
		k := x.IntN(8)
		var err error
		switch x.IntN(7) {
		case 0, 1:
			_, err = r.db.ExecContext(ctx, `UPDATE kv SET v = v + 1 WHERE k = ?`, k)
		case 2:
			_, err = db2.ExecContext(ctx, `UPDATE kv SET v = v + 1 WHERE k = ?`, k)
		case 3:
			_, err = r.db.ExecContext(ctx, `UPDATE kv SET v = v + 1 WHERE g = ?`, k%3)
		case 4:
			if _, err = r.plain.ExecContext(ctx, `UPDATE kv SET v = v + 1 WHERE k = ?`, k); err == nil {
				err = p2.InvalidateRow(ctx, "kv", map[string]any{"k": k, "g": k % 3})
			}
		case 5:
			if _, err = r.plain.ExecContext(ctx, `UPDATE kv SET v = v + 2 WHERE k = ?`, k); err == nil {
				err = r.policy.InvalidateTables(ctx, "kv")
			}
		default:
			if _, err = r.plain.ExecContext(ctx, `UPDATE kv SET v = v + 1`); err == nil {
				err = r.policy.InvalidateAll(ctx)
			}
		}
		return err
	}
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			x := rand.New(rand.NewPCG(uint64(w), 42))
			for range 300 {
				if w < 2 {
					if err := write(x); err != nil {
						t.Error(err)
						return
					}
					continue
				}
				rd := reads[x.IntN(len(reads))]
				args := rd.args(x)
				db := r.db
				if w == 5 {
					db = db2
				}
				lo := plainSum(rd.q, args...)
				var got int64
				if err := db.QueryRowContext(ctx, rd.q, args...).Scan(&got); err != nil {
					t.Error(err)
					return
				}
				hi := plainSum(rd.q, args...)
				if got < lo || got > hi {
					t.Errorf("%s %v = %d, want between %d and %d", rd.q, args, got, lo, hi)
					return
				}
			}
		})
	}
	wg.Wait()
	s, s2 := r.policy.Stats(), p2.Stats()
	t.Logf("local hits %d and %d of hits %d and %d", s.LocalHits, s2.LocalHits, s.Hits, s2.Hits)
	if s.LocalHits == 0 {
		t.Error("no read was served by the local index")
	}
}
