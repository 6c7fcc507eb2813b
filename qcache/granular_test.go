package qcache_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/cachetest"
	"github.com/cachekit/cachekit/internal/dbtest"
	"github.com/cachekit/cachekit/memory"
	"github.com/cachekit/cachekit/qcache"
)

type genv struct {
	inner *dbtest.SQLite
	db    *sql.DB // wrapped
	plain *sql.DB
	errs  atomic.Int64
}

func newGEnv(t *testing.T, store cachekit.Store, opts qcache.GranularOptions) *genv {
	t.Helper()
	dsn := "file:" + filepath.Join(t.TempDir(), "db.sqlite") + "?_journal_mode=WAL&_busy_timeout=10000&_txlock=immediate"
	g := &genv{inner: &dbtest.SQLite{DSN: dsn}}
	if store == nil {
		store = must(memory.NewStore(memory.StoreOptions{}))
		t.Cleanup(func() { store.Close() })
	}
	opts.Store = store
	opts.Dialect = qcache.SQLite
	p, err := qcache.NewGranularPolicy(opts)
	if err != nil {
		t.Fatal(err)
	}
	g.db = sql.OpenDB(qcache.Wrap(g.inner, qcache.Options{
		Policy:  p,
		OnError: func(err error) { g.errs.Add(1); t.Logf("OnError: %v", err) },
	}))
	t.Cleanup(func() { g.db.Close() })
	g.plain = must(sql.Open("sqlite3", dsn))
	t.Cleanup(func() { g.plain.Close() })
	for _, s := range []string{
		`CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER, title TEXT, tag TEXT)`,
		`INSERT INTO posts (user_id, title, tag) VALUES (1, 'a1', 'x'), (1, 'a2', 'y'), (2, 'b1', 'x'), (2, 'b2', NULL), (3, 'c1', '5')`,
	} {
		if _, err := g.plain.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	return g
}

const selByUser = `SELECT id, title FROM posts WHERE user_id = ? ORDER BY id`

// read runs query through the wrapper, checks its result against the
// unwrapped database and reports whether it was served from the cache.
func (g *genv) read(t *testing.T, query string, args ...any) (cached bool) {
	t.Helper()
	return readChecked(t, g.db, g.plain, &g.inner.Queries, query, args...)
}

func (g *genv) exec(t *testing.T, query string, args ...any) {
	t.Helper()
	if _, err := g.db.Exec(query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// warm reads each (query, args) twice and checks the second read hits.
func (g *genv) warm(t *testing.T, query string, argss ...any) {
	t.Helper()
	for _, a := range argss {
		g.read(t, query, a)
		if !g.read(t, query, a) {
			t.Fatalf("%s %v: second read not cached", query, a)
		}
	}
}

func (g *genv) expect(t *testing.T, query string, arg any, cached bool) {
	t.Helper()
	if got := g.read(t, query, arg); got != cached {
		t.Fatalf("%s %v: cached = %v, want %v", query, arg, got, cached)
	}
}

func TestGranularUpdateOneBucket(t *testing.T) {
	g := newGEnv(t, nil, qcache.GranularOptions{})
	g.warm(t, selByUser, 1, 2)
	g.exec(t, `UPDATE posts SET title = 'new' WHERE id = ?`, 3) // user 2
	g.expect(t, selByUser, 1, true)
	g.expect(t, selByUser, 2, false)
	g.expect(t, selByUser, 2, true)
}

func TestGranularRowMovesBetweenBuckets(t *testing.T) {
	g := newGEnv(t, nil, qcache.GranularOptions{})
	g.warm(t, selByUser, 1, 2, 3)
	g.exec(t, `UPDATE posts SET user_id = 2 WHERE id = 1`)
	g.expect(t, selByUser, 1, false)
	g.expect(t, selByUser, 2, false)
	g.expect(t, selByUser, 3, true)
}

func TestGranularInsertDelete(t *testing.T) {
	g := newGEnv(t, nil, qcache.GranularOptions{})
	g.warm(t, selByUser, 1, 2, 4)
	g.exec(t, `INSERT INTO posts (user_id, title) VALUES (?, ?)`, 1, "a3")
	g.expect(t, selByUser, 1, false)
	g.expect(t, selByUser, 2, true)
	g.exec(t, `INSERT INTO posts (user_id, title) VALUES (4, 'd1')`) // literal values
	g.expect(t, selByUser, 4, false)
	g.expect(t, selByUser, 2, true)
	g.warm(t, selByUser, 1)
	g.exec(t, `DELETE FROM posts WHERE id = ?`, 3) // user 2
	g.expect(t, selByUser, 2, false)
	g.expect(t, selByUser, 1, true)
	g.expect(t, selByUser, 4, true)
	// Multi-row and upsert inserts bump the table epoch.
	g.warm(t, selByUser, 1, 2)
	g.exec(t, `INSERT INTO posts (user_id, title) VALUES (5, 'e1'), (5, 'e2')`)
	g.expect(t, selByUser, 1, false)
	g.expect(t, selByUser, 2, false)
	g.warm(t, selByUser, 1, 2)
	g.exec(t, `INSERT OR REPLACE INTO posts (id, user_id, title) VALUES (1, 5, 'r')`)
	g.expect(t, selByUser, 1, false)
}

func TestGranularMassWrites(t *testing.T) {
	g := newGEnv(t, nil, qcache.GranularOptions{})
	g.warm(t, selByUser, 1, 2, 3)
	g.exec(t, `UPDATE posts SET title = title || '!'`)
	g.expect(t, selByUser, 1, false)
	g.expect(t, selByUser, 2, false)
	g.expect(t, selByUser, 3, false)
	g.warm(t, selByUser, 1, 2, 3)
	g.exec(t, `DELETE FROM posts WHERE tag = 'x'`) // users 1 and 2
	g.expect(t, selByUser, 1, false)
	g.expect(t, selByUser, 2, false)
	g.expect(t, selByUser, 3, true)
	g.warm(t, selByUser, 1, 2)
	g.exec(t, `UPDATE posts SET user_id = 1 WHERE user_id IN (2, 7)`)
	g.expect(t, selByUser, 1, false)
	g.expect(t, selByUser, 2, false)
	g.expect(t, selByUser, 3, true)

	// Past MaxImages the table epoch is bumped.
	g2 := newGEnv(t, nil, qcache.GranularOptions{MaxImages: 1})
	g2.warm(t, selByUser, 1, 3)
	g2.exec(t, `UPDATE posts SET title = 'z' WHERE user_id = 2`)
	g2.expect(t, selByUser, 1, false)
	g2.expect(t, selByUser, 3, false)
}

func TestGranularTransactions(t *testing.T) {
	g := newGEnv(t, nil, qcache.GranularOptions{})
	ctx := context.Background()
	g.warm(t, selByUser, 1, 2)
	tx := must(g.db.BeginTx(ctx, nil))
	if _, err := tx.Exec(`UPDATE posts SET user_id = 1 WHERE id = ?`, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`INSERT INTO posts (user_id, title) VALUES (?, ?)`, 2, "b3"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	g.expect(t, selByUser, 1, false)
	g.expect(t, selByUser, 2, false)

	g.warm(t, selByUser, 1, 2, 3)
	tx = must(g.db.BeginTx(ctx, nil))
	if _, err := tx.Exec(`DELETE FROM posts WHERE user_id = ?`, 3); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	g.expect(t, selByUser, 1, true)
	g.expect(t, selByUser, 2, true)
	g.expect(t, selByUser, 3, true)

	tx = must(g.db.BeginTx(ctx, nil))
	if _, err := tx.Exec(`DELETE FROM posts WHERE user_id = ?`, 3); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	g.expect(t, selByUser, 1, true)
	g.expect(t, selByUser, 3, false)
}

func TestGranularUnaffectedStaysCached(t *testing.T) {
	g := newGEnv(t, nil, qcache.GranularOptions{})
	const selTag = `SELECT id FROM posts WHERE tag = ? AND user_id = 1 ORDER BY id`
	g.warm(t, selByUser, 1, 2)
	g.warm(t, selTag, "x", "y")
	g.exec(t, `UPDATE posts SET title = 'q' WHERE user_id = 3`)
	g.exec(t, `INSERT INTO posts (user_id, title, tag) VALUES (3, 'c2', 'x')`)
	g.exec(t, `DELETE FROM posts WHERE id = 999`)
	g.exec(t, `UPDATE posts SET title = 'q' WHERE id = 2`) // user 1, tag y
	g.expect(t, selByUser, 2, true)
	g.expect(t, selTag, "x", true)
	g.expect(t, selTag, "y", false)
	g.expect(t, selByUser, 1, false)
}

// A query argument and a row value of another type that SQLite finds equal
// share a stamp.
func TestGranularCanonicalValues(t *testing.T) {
	g := newGEnv(t, nil, qcache.GranularOptions{})
	const selTag = `SELECT id FROM posts WHERE tag = ? ORDER BY id`
	g.warm(t, selByUser, "2", 1)
	g.warm(t, selTag, 5, "X")
	g.exec(t, `UPDATE posts SET title = 'n' WHERE id = ?`, 3) // user_id 2 (integer)
	g.expect(t, selByUser, "2", false)
	g.expect(t, selByUser, 1, true)
	g.exec(t, `DELETE FROM posts WHERE id = 5`) // tag '5' (text)
	g.expect(t, selTag, 5, false)
	g.exec(t, `UPDATE posts SET tag = 'x' WHERE id = 4`) // tag becomes 'x'
	g.expect(t, selTag, "X", false)                      // lower-cased: shares the stamp
}

// Two policies on one store (two processes): a write through one
// invalidates what the other cached.
func TestGranularSharedStore(t *testing.T) {
	store := must(memory.NewStore(memory.StoreOptions{}))
	defer store.Close()
	g := newGEnv(t, store, qcache.GranularOptions{})
	p2 := must(qcache.NewGranularPolicy(qcache.GranularOptions{Store: store, Dialect: qcache.SQLite}))
	other := sql.OpenDB(qcache.Wrap(&dbtest.SQLite{DSN: g.inner.DSN}, qcache.Options{Policy: p2}))
	defer other.Close()
	g.warm(t, selByUser, 1, 2)
	if _, err := other.Exec(`UPDATE posts SET user_id = 2 WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	g.expect(t, selByUser, 1, false)
	g.expect(t, selByUser, 2, false)
}

func TestGranularRandomized(t *testing.T) {
	g := newGEnv(t, nil, qcache.GranularOptions{})
	ctx := context.Background()
	r := rand.New(rand.NewPCG(1, 2))
	type read struct {
		q    string
		args []any
	}
	var reads []read
	for u := range 4 {
		reads = append(reads,
			read{selByUser, []any{u}},
			read{selByUser, []any{fmt.Sprint(u)}},
			read{`SELECT id, title FROM posts WHERE user_id = ? AND tag = 'x' ORDER BY id`, []any{u}},
			read{`SELECT count(*) FROM posts WHERE user_id = ? OR tag IS NULL`, []any{u}},
			read{`SELECT title FROM posts WHERE id = ?`, []any{u + 1}},
		)
	}
	for _, tag := range []any{"x", "y", "5", 5, nil} {
		reads = append(reads, read{`SELECT id FROM posts WHERE tag = ? ORDER BY id`, []any{tag}})
	}
	reads = append(reads,
		read{`SELECT count(*), sum(user_id) FROM posts`, nil},
		read{`SELECT id FROM posts WHERE tag IS NULL ORDER BY id`, nil},
		read{`SELECT id FROM posts WHERE user_id IN (1, 2) AND title > 'b' ORDER BY id`, nil},
	)
	tags := []any{"x", "y", "5", 5, nil, "X"}
	randWrite := func() (string, []any) {
		u, tag, id := r.IntN(4), tags[r.IntN(len(tags))], r.IntN(12)+1
		switch r.IntN(9) {
		case 0:
			return `INSERT INTO posts (user_id, title, tag) VALUES (?, ?, ?)`, []any{u, fmt.Sprint("t", r.IntN(5)), tag}
		case 1:
			return `UPDATE posts SET user_id = ? WHERE id = ?`, []any{u, id}
		case 2:
			return `UPDATE posts SET tag = ? WHERE user_id = ?`, []any{tag, u}
		case 3:
			return `UPDATE posts SET title = title || 'z' WHERE tag = ?`, []any{tag}
		case 4:
			return `DELETE FROM posts WHERE id = ?`, []any{id}
		case 5:
			return `DELETE FROM posts WHERE user_id = ? AND tag = ?`, []any{u, tag}
		case 6:
			return `UPDATE posts SET user_id = user_id + 1 WHERE id IN (?, ?)`, []any{id, id + 1}
		case 7:
			return `INSERT INTO posts (id, user_id, title) VALUES (?, ?, 'p') ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id`, []any{id, u}
		default:
			return `UPDATE posts SET title = 'w' WHERE title > ?`, []any{"b"}
		}
	}
	hits := 0
	for i := range 400 {
		switch r.IntN(4) {
		case 0: // transaction
			tx := must(g.db.BeginTx(ctx, nil))
			for range r.IntN(3) + 1 {
				q, args := randWrite()
				if _, err := tx.Exec(q, args...); err != nil {
					t.Fatalf("%s %v: %v", q, args, err)
				}
			}
			if r.IntN(2) == 0 {
				if err := tx.Rollback(); err != nil {
					t.Fatal(err)
				}
			} else if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
		default:
			q, args := randWrite()
			g.exec(t, q, args...)
		}
		for _, rd := range reads {
			if g.read(t, rd.q, rd.args...) {
				hits++
			}
		}
		_ = i
	}
	if g.errs.Load() != 0 {
		t.Fatalf("%d errors reported", g.errs.Load())
	}
	t.Logf("%d of %d reads served from the cache", hits, 400*len(reads))
	if hits == 0 {
		t.Fatal("nothing served from the cache")
	}
}

// A scheme list lost (expired, or overwritten by a concurrent reader) hides
// the scheme from writers; re-adding it must kill the entries filled under
// it.
func TestGranularLostSchemeList(t *testing.T) {
	store := must(memory.NewStore(memory.StoreOptions{}))
	defer store.Close()
	g := newGEnv(t, store, qcache.GranularOptions{})
	ctx := context.Background()
	g.warm(t, selByUser, 1, 2)
	if _, err := store.Delete(ctx, "qc:l:{posts}"); err != nil {
		t.Fatal(err)
	}
	g.exec(t, `UPDATE posts SET title = 'lost' WHERE id = 1`) // sees no scheme
	g.expect(t, selByUser, 1, false)
	g.expect(t, selByUser, 2, false)
	g.expect(t, selByUser, 2, true)
}

// Writes sent through Query: outside a transaction the post images are read
// when the rows close; inside one the table epoch is bumped. (RETURNING is
// not read by sqldeps yet: such statements bump the global epoch.)
func TestGranularWriteThroughQuery(t *testing.T) {
	g := newGEnv(t, nil, qcache.GranularOptions{})
	ctx := context.Background()
	g.warm(t, selByUser, 1, 2)
	all(t, ctx, g.db, `INSERT INTO posts (user_id, title) VALUES (?, 'r')`, 1)
	g.expect(t, selByUser, 1, false)
	g.expect(t, selByUser, 2, true)
	g.warm(t, selByUser, 1)
	tx := must(g.db.BeginTx(ctx, nil))
	all(t, ctx, tx, `UPDATE posts SET user_id = 2 WHERE id = ?`, 1)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	g.expect(t, selByUser, 1, false)
	g.expect(t, selByUser, 2, false)
	g.warm(t, selByUser, 1, 2)
	all(t, ctx, g.db, `INSERT INTO posts (user_id, title) VALUES (?, 'r') RETURNING id`, 1)
	g.expect(t, selByUser, 1, false)
	g.expect(t, selByUser, 2, false)
	g.warm(t, selByUser, 1, 2)
	all(t, ctx, g.db, `INSERT INTO posts (user_id, title) VALUES (?, 'r') RETURNING id`, 1)
	g.expect(t, selByUser, 1, false)
	g.expect(t, selByUser, 2, false)
}

// Concurrent readers and writers on several connections: once they are
// done, every query served from the cache equals the database.
func TestGranularConcurrent(t *testing.T) {
	g := newGEnv(t, nil, qcache.GranularOptions{})
	ctx := context.Background()
	const selTag = `SELECT id FROM posts WHERE tag = ? ORDER BY id`
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 9))
			for range 150 {
				var err error
				u, id := r.IntN(4), r.IntN(10)+1
				switch r.IntN(6) {
				case 0:
					_, err = g.db.ExecContext(ctx, `UPDATE posts SET user_id = ? WHERE id = ?`, u, id)
				case 1:
					_, err = g.db.ExecContext(ctx, `INSERT INTO posts (user_id, title, tag) VALUES (?, 'c', 'x')`, u)
				case 2:
					_, err = g.db.ExecContext(ctx, `DELETE FROM posts WHERE id = ?`, id)
				default:
					q, arg := selByUser, any(u)
					if r.IntN(2) == 0 {
						q, arg = selTag, []any{"x", "y", nil}[r.IntN(3)]
					}
					var rows *sql.Rows
					if rows, err = g.db.QueryContext(ctx, q, arg); err == nil {
						for rows.Next() {
						}
						err = rows.Close()
					}
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for u := range 4 {
		g.read(t, selByUser, u)
	}
	for _, tag := range []any{"x", "y", nil} {
		g.read(t, selTag, tag)
	}
}

// A failing write outside a transaction ends the transaction the policy
// opened around it, invalidates conservatively and leaves the connection
// usable.
func TestGranularFailedWrite(t *testing.T) {
	g := newGEnv(t, nil, qcache.GranularOptions{})
	g.db.SetMaxOpenConns(1)
	g.warm(t, selByUser, 1, 2)
	if _, err := g.db.Exec(`UPDATE posts SET id = 2 WHERE id = ?`, 1); err == nil {
		t.Fatal("UPDATE violating the primary key succeeded")
	}
	g.expect(t, selByUser, 1, false)
	g.expect(t, selByUser, 2, false)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := g.db.ExecContext(ctx, `DELETE FROM posts WHERE id = ?`, 3); err == nil {
		t.Fatal("DELETE on a canceled context succeeded")
	}
	g.exec(t, `UPDATE posts SET user_id = 1 WHERE id = ?`, 3)
	g.expect(t, selByUser, 1, false)
	g.expect(t, selByUser, 2, false)
	tx := must(g.db.Begin()) // no transaction left open on the connection
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
}

// Schemes expire when no lookup uses them, and lookups extend them.
func TestGranularSchemeExpiry(t *testing.T) {
	clock := cachetest.NewFakeClock(time.Unix(1e9, 0))
	store := must(memory.NewStore(memory.StoreOptions{Clock: clock}))
	defer store.Close()
	g := newGEnv(t, store, qcache.GranularOptions{SchemeTTL: time.Hour, TTL: 10 * time.Hour, Now: clock.Now})
	ctx := context.Background()
	g.warm(t, selByUser, 1, 2)

	// Extended by a lookup past half its lifetime: still honoured by
	// writers after the first deadline.
	clock.Advance(40 * time.Minute)
	g.expect(t, selByUser, 1, true)
	clock.Advance(40 * time.Minute)
	g.exec(t, `UPDATE posts SET title = 'e' WHERE id = 1`)
	g.expect(t, selByUser, 1, false)
	g.expect(t, selByUser, 2, true)

	// Unused past its deadline: writers skip it, readers re-add it and
	// drop their old entries.
	clock.Advance(3 * time.Hour)
	g.exec(t, `UPDATE posts SET title = 'f' WHERE id = 3`) // user 2
	g.expect(t, selByUser, 2, false)
	g.expect(t, selByUser, 1, false)
	g.expect(t, selByUser, 1, true)
	if _, err := store.Get(ctx, "qc:l:{posts}"); err != nil {
		t.Fatalf("scheme list not renewed: %v", err)
	}

	// The same with the list itself still alive (another scheme in use).
	const selTag = `SELECT id FROM posts WHERE tag = ? ORDER BY id`
	g.warm(t, selTag, "x")
	clock.Advance(50 * time.Minute)
	g.warm(t, selTag, "y") // extends the list, not the user_id scheme
	clock.Advance(50 * time.Minute)
	g.exec(t, `UPDATE posts SET title = 'g' WHERE id = 1`) // user 1: skipped
	g.expect(t, selByUser, 1, false)
}

// A write the SQLite grammar cannot read (RETURNING, an upsert, as GORM
// sends them) invalidates its own table, and leaves the others cached.
func TestGranularUnreadWriteBumpsItsTable(t *testing.T) {
	g := newGEnv(t, nil, qcache.GranularOptions{})
	if _, err := g.plain.Exec(`CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)`); err != nil {
		t.Fatal(err)
	}
	if _, err := g.plain.Exec(`INSERT INTO users (id, name) VALUES (1, 'ann'), (2, 'bob')`); err != nil {
		t.Fatal(err)
	}
	const selUser = `SELECT name FROM users WHERE id = ?`
	for _, w := range []struct {
		sql  string
		args []any
	}{
		{"INSERT INTO `posts` (`user_id`,`title`) VALUES (?,?) RETURNING `id`", []any{1, "r1"}},
		{`INSERT INTO posts (id, user_id, title) VALUES (1, 1, 'up') ON CONFLICT (id) DO UPDATE SET title = excluded.title`, nil},
		{`INSERT OR REPLACE INTO posts (id, user_id, title) VALUES (2, 1, 'rep')`, nil},
		{`DELETE FROM posts WHERE title = 'r1' RETURNING id`, nil},
	} {
		g.warm(t, selByUser, 1)
		g.warm(t, selUser, 1)
		rows, err := g.db.Query(w.sql, w.args...)
		if err != nil {
			t.Fatalf("%s: %v", w.sql, err)
		}
		for rows.Next() {
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
		g.expect(t, selByUser, 1, false) // compared with the database
		g.expect(t, selUser, 1, true)
	}
}
