//go:build sqlite_preupdate_hook && cgo

package sqlitefeed

import (
	"context"
	"database/sql"
	"path/filepath"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cachekit/cachekit/memory"
	"github.com/cachekit/cachekit/qcache"
)

// manual is a PollInterval long enough that the poller's goroutine never
// polls during a test: the test calls poll itself.
const manual = time.Hour

type env struct {
	p     *qcache.GranularPolicy
	db    *sql.DB // the feeder
	c     *connector
	plain *sql.DB // another connection to the file, standing in for another process
	dsn   string
	errs  atomic.Int64
	inv   chan qcache.Event // invalidation events
}

const schema = `
CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);
CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id) ON DELETE CASCADE, title TEXT, tag TEXT);
CREATE TABLE audit (id INTEGER PRIMARY KEY, user_id INTEGER, title TEXT);
CREATE TRIGGER posts_audit AFTER INSERT ON posts BEGIN INSERT INTO audit (user_id, title) VALUES (NEW.user_id, NEW.title); END;
INSERT INTO users (id, name) VALUES (1, 'ann'), (2, 'bob'), (3, 'cy'), (4, 'di');
INSERT INTO posts (user_id, title, tag) VALUES (1, 'a1', 'x'), (1, 'a2', 'y'), (2, 'b1', 'x'), (2, 'b2', NULL), (3, 'c1', '5');
`

func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	e := &env{inv: make(chan qcache.Event, 1024)}
	e.dsn = "file:" + filepath.Join(t.TempDir(), "db.sqlite") + "?_journal_mode=WAL&_busy_timeout=10000&_txlock=immediate&_foreign_keys=1"
	var err error
	e.plain, err = sql.Open("sqlite3", e.dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.plain.Close() })
	if _, err := e.plain.Exec(schema); err != nil {
		t.Fatal(err)
	}
	store, err := memory.NewStore(memory.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e.p, err = qcache.NewGranularPolicy(qcache.GranularOptions{
		Store: store, Dialect: qcache.SQLite,
		Observer: qcache.ObserverFunc(func(ev qcache.Event) {
			switch ev.Kind {
			case qcache.InvalidateRows, qcache.InvalidateTable, qcache.InvalidateGlobal:
				select {
				case e.inv <- ev:
				default:
				}
			}
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	opts.OnError = func(err error) { e.errs.Add(1); t.Logf("OnError: %v", err) }
	e.db, e.c, err = open(e.dsn, e.p, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.db.Close(); err != nil {
			t.Error(err)
		}
		if n := e.errs.Load(); n > 0 {
			t.Errorf("%d errors reported", n)
		}
	})
	return e
}

func rowsOf(t *testing.T, db interface {
	Query(string, ...any) (*sql.Rows, error)
}, query string, args ...any) [][]any {
	t.Helper()
	rows, err := db.Query(query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out [][]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			if b, ok := v.([]byte); ok {
				vals[i] = string(b)
			}
		}
		out = append(out, vals)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// read runs query through the feeder, checks its result against the plain
// connection and reports whether it was served from the cache.
func (e *env) read(t *testing.T, query string, args ...any) (cached bool) {
	t.Helper()
	before := e.p.Stats().Hits
	got := rowsOf(t, e.db, query, args...)
	cached = e.p.Stats().Hits == before+1
	want := rowsOf(t, e.plain, query, args...)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s %v: got %v, want %v (cached %v)", query, args, got, want, cached)
	}
	return cached
}

func (e *env) exec(t *testing.T, db interface {
	Exec(string, ...any) (sql.Result, error)
}, query string, args ...any) {
	t.Helper()
	if _, err := db.Exec(query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// warm reads query with each argument until it is cached.
func (e *env) warm(t *testing.T, query string, args ...any) {
	t.Helper()
	for _, a := range args {
		e.read(t, query, a)
		if !e.read(t, query, a) {
			t.Fatalf("%s %v: second read not cached", query, a)
		}
	}
}

func (e *env) expect(t *testing.T, query string, arg any, cached bool) {
	t.Helper()
	if got := e.read(t, query, arg); got != cached {
		t.Fatalf("%s %v: cached = %v, want %v", query, arg, got, cached)
	}
}

// poll runs one poll of the poller on the test's goroutine.
func (e *env) poll(t *testing.T) {
	t.Helper()
	if err := e.c.poll.poll(context.Background()); err != nil {
		t.Fatal(err)
	}
}

const (
	postsBy = `SELECT id, title FROM posts WHERE user_id = ? ORDER BY id`
	auditBy = `SELECT count(*) FROM audit WHERE user_id = ?`
	userBy  = `SELECT name FROM users WHERE id = ?`
)

func TestPlainWrites(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{PollInterval: manual})
	e.warm(t, postsBy, 1, 2, 3)
	e.exec(t, e.db, `UPDATE posts SET title = 'new' WHERE id = ?`, 3) // user 2
	e.expect(t, postsBy, 1, true)
	e.expect(t, postsBy, 2, false)
	e.expect(t, postsBy, 3, true)

	e.exec(t, e.db, `UPDATE posts SET user_id = 3 WHERE id = 1`) // moves from 1 to 3
	e.expect(t, postsBy, 1, false)
	e.expect(t, postsBy, 2, true)
	e.expect(t, postsBy, 3, false)

	e.exec(t, e.db, `INSERT INTO posts (user_id, title) VALUES (?, ?), (?, ?)`, 2, "b3", 2, "b4")
	e.expect(t, postsBy, 1, true)
	e.expect(t, postsBy, 2, false)
	e.expect(t, postsBy, 3, true)

	e.exec(t, e.db, `DELETE FROM posts WHERE tag = 'y'`) // post 2, user 1
	e.expect(t, postsBy, 1, false)
	e.expect(t, postsBy, 2, true)
	e.expect(t, postsBy, 3, true)

	// A mass update the policy's grammar would bump the table for.
	e.exec(t, e.db, `UPDATE posts SET title = title || '!' WHERE title LIKE 'b%'`)
	e.expect(t, postsBy, 1, true)
	e.expect(t, postsBy, 2, false)
	e.expect(t, postsBy, 3, true)

	// DELETE without WHERE: the hook sees every row (no truncate
	// optimisation while a pre-update hook is registered).
	e.warm(t, postsBy, 1, 2, 4)
	e.warm(t, userBy, 1)
	e.exec(t, e.db, `DELETE FROM posts`)
	e.expect(t, postsBy, 1, true) // user 1 has no post left since the moves above
	e.expect(t, postsBy, 2, false)
	e.expect(t, postsBy, 3, false)
	e.expect(t, postsBy, 4, true)
	e.expect(t, userBy, 1, true)
}

func TestReturningAndUpserts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{PollInterval: manual})
	e.warm(t, postsBy, 1, 2, 3)

	var id int64
	if err := e.db.QueryRow(`INSERT INTO posts (user_id, title) VALUES (?, ?) RETURNING id`, 1, "a3").Scan(&id); err != nil {
		t.Fatal(err)
	}
	e.expect(t, postsBy, 1, false)
	e.expect(t, postsBy, 2, true)
	e.expect(t, postsBy, 3, true)

	// GORM's Create with an upsert: backticks, ON CONFLICT, RETURNING.
	e.warm(t, postsBy, 1)
	rows, err := e.db.Query("INSERT INTO `posts` (`id`,`user_id`,`title`) VALUES (?,?,?) ON CONFLICT (`id`) DO UPDATE SET `user_id`=`excluded`.`user_id`,`title`=`excluded`.`title` RETURNING `id`", 3, 3, "moved")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	// Post 3 moved from user 2 to user 3.
	e.expect(t, postsBy, 1, true)
	e.expect(t, postsBy, 2, false)
	e.expect(t, postsBy, 3, false)

	// INSERT OR REPLACE deletes the old row: its old image is seen.
	e.warm(t, postsBy, 1, 2, 3)
	e.exec(t, e.db, `INSERT OR REPLACE INTO posts (id, user_id, title) VALUES (1, 4, 'r')`) // post 1 of user 1
	e.expect(t, postsBy, 1, false)
	e.expect(t, postsBy, 2, true)
	e.expect(t, postsBy, 3, true)
	e.expect(t, postsBy, 4, false)

	// An upsert that does nothing invalidates nothing.
	e.warm(t, postsBy, 1, 2, 3, 4)
	e.exec(t, e.db, `INSERT INTO posts (id, user_id, title) VALUES (1, 9, 'z') ON CONFLICT DO NOTHING`)
	for u := 1; u <= 4; u++ {
		e.expect(t, postsBy, u, true)
	}
}

func TestTriggersAndCascades(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{PollInterval: manual})
	e.warm(t, auditBy, 1, 2)
	e.warm(t, postsBy, 1, 2, 3)
	e.warm(t, userBy, 1, 2)

	// The trigger writes audit: only user 1's audit count changes.
	e.exec(t, e.db, `INSERT INTO posts (user_id, title) VALUES (1, 'a3')`)
	e.expect(t, auditBy, 1, false)
	e.expect(t, auditBy, 2, true)
	e.expect(t, postsBy, 1, false)
	e.expect(t, postsBy, 2, true)

	// ON DELETE CASCADE removes user 2's posts.
	e.exec(t, e.db, `DELETE FROM users WHERE id = ?`, 2)
	e.expect(t, userBy, 2, false)
	e.expect(t, userBy, 1, true)
	e.expect(t, postsBy, 2, false)
	e.expect(t, postsBy, 1, true)
	e.expect(t, postsBy, 3, true)
	e.expect(t, auditBy, 1, true)
}

func TestTransactions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{PollInterval: manual})
	ctx := context.Background()
	e.warm(t, postsBy, 1, 2, 3)

	// Commit: applied after COMMIT, not before.
	tx, err := e.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.exec(t, tx, `UPDATE posts SET title = 'tx' WHERE user_id = ?`, 2)
	e.expect(t, postsBy, 2, true) // another connection: the write is not committed
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	e.expect(t, postsBy, 2, false)
	e.expect(t, postsBy, 1, true)

	// Rollback: nothing invalidated.
	e.warm(t, postsBy, 2)
	tx, err = e.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.exec(t, tx, `DELETE FROM posts WHERE user_id = ?`, 2)
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	for u := 1; u <= 3; u++ {
		e.expect(t, postsBy, u, true)
	}

	// Savepoints: ROLLBACK TO drops what was captured since.
	tx, err = e.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.exec(t, tx, `UPDATE posts SET title = 'sp' WHERE user_id = 1`)
	e.exec(t, tx, `SAVEPOINT a`)
	e.exec(t, tx, `UPDATE posts SET title = 'sp' WHERE user_id = 2`)
	var n int
	if err := tx.QueryRow(`DELETE FROM posts WHERE user_id = 3 RETURNING id`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	e.exec(t, tx, `ROLLBACK TO a`)
	e.exec(t, tx, `RELEASE a`)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	e.expect(t, postsBy, 1, false)
	e.expect(t, postsBy, 2, true)
	e.expect(t, postsBy, 3, true)

	// Transactions as SQL text, with RETURNING through Query.
	e.warm(t, postsBy, 1)
	conn, err := e.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, s := range []string{`BEGIN`, `UPDATE posts SET title = 'text' WHERE user_id = 3`} {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := conn.QueryRowContext(ctx, `UPDATE posts SET title = 'text' WHERE id = 1 RETURNING user_id`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	e.expect(t, postsBy, 3, true)
	// The transaction reads its own writes, not the cache.
	var title string
	if err := conn.QueryRowContext(ctx, `SELECT title FROM posts WHERE user_id = ? ORDER BY id LIMIT 1`, 3).Scan(&title); err != nil {
		t.Fatal(err)
	}
	if title != "text" {
		t.Fatalf("title in the transaction = %q, want %q", title, "text")
	}
	if _, err := conn.ExecContext(ctx, `COMMIT`); err != nil {
		t.Fatal(err)
	}
	e.expect(t, postsBy, 1, false)
	e.expect(t, postsBy, 2, true)
	e.expect(t, postsBy, 3, false)
}

func TestNoPreImageReads(t *testing.T) {
	t.Parallel()
	// The policy's own write path is not used: it would bump the table's
	// epoch for an UPDATE with RETURNING (its grammar cannot read it);
	// through the feeder the write is exact.
	e := newEnv(t, Options{PollInterval: manual})
	e.warm(t, postsBy, 1, 2)
	before := e.p.Stats()
	e.exec(t, e.db, `UPDATE posts SET tag = 'z' WHERE id IN (SELECT id FROM posts WHERE title = 'b1') RETURNING id`)
	after := e.p.Stats()
	if got := after.InvalidatedTables - before.InvalidatedTables; got != 0 {
		t.Fatalf("table invalidations = %d, want 0", got)
	}
	if got := after.InvalidatedRows - before.InvalidatedRows; got != 1 {
		t.Fatalf("row invalidations = %d, want 1", got)
	}
	e.expect(t, postsBy, 1, true)
	e.expect(t, postsBy, 2, false)
}

func TestDDL(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{PollInterval: manual})
	e.warm(t, postsBy, 1)
	e.warm(t, userBy, 1)
	e.exec(t, e.db, `DROP TABLE audit`)
	e.expect(t, postsBy, 1, false) // DDL bumps the global epoch
	e.expect(t, userBy, 1, false)
	// A column added: the feeder reads the new column list.
	e.exec(t, e.db, `ALTER TABLE users ADD COLUMN email TEXT`)
	e.warm(t, userBy, 1, 2)
	e.exec(t, e.db, `UPDATE users SET email = 'x' WHERE id = 2`)
	e.expect(t, userBy, 1, true)
	e.expect(t, userBy, 2, false)
}

func TestMaxImages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{PollInterval: manual, MaxImages: 3})
	e.warm(t, postsBy, 1, 2, 4)
	e.warm(t, userBy, 1)
	e.exec(t, e.db, `UPDATE posts SET title = 'm' WHERE user_id = 2`) // 2 rows, 4 images
	e.expect(t, postsBy, 1, false)                                    // the table's epoch
	e.expect(t, postsBy, 4, false)
	e.expect(t, userBy, 1, true)
}

func TestWithoutInvalidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{PollInterval: manual})
	ctx := context.Background()
	e.warm(t, postsBy, 1, 2)
	if _, err := e.db.ExecContext(qcache.WithoutInvalidation(ctx), `UPDATE posts SET title = 'q' WHERE user_id = 1`); err != nil {
		t.Fatal(err)
	}
	// The changes were dropped, not handed to the next statement.
	e.exec(t, e.db, `UPDATE posts SET title = 'r' WHERE user_id = 2`)
	if err := e.p.InvalidateTables(ctx, "posts"); err != nil {
		t.Fatal(err)
	}
	e.warm(t, postsBy, 1, 2)
	e.exec(t, e.db, `UPDATE posts SET title = 's' WHERE user_id = 2`)
	e.expect(t, postsBy, 1, true)
}
