package qcache_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cachekit/cachekit/internal/dbtest"
	"github.com/cachekit/cachekit/internal/testserver"
	"github.com/cachekit/cachekit/memory"
	"github.com/cachekit/cachekit/qcache"
)

type pgEnv struct {
	inner *dbtest.Postgres
	db    *sql.DB // wrapped
	plain *sql.DB
	errs  atomic.Int64
}

// newPGEnv creates a schema of its own on the shared server (dropped in
// t.Cleanup), runs setup in it and opens a wrapped database (GranularPolicy,
// dialect Postgres, memory store) and an unwrapped one on it.
func newPGEnv(t *testing.T, setup ...string) *pgEnv {
	t.Helper()
	_, connector := dbtest.PostgresSchema(t, testserver.Postgres(t))
	e := &pgEnv{inner: &dbtest.Postgres{Inner: connector()}}
	e.plain = sql.OpenDB(connector())
	t.Cleanup(func() { e.plain.Close() })
	for _, s := range setup {
		if _, err := e.plain.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	store := must(memory.NewStore(memory.StoreOptions{}))
	t.Cleanup(func() { store.Close() })
	p, err := qcache.NewGranularPolicy(qcache.GranularOptions{Store: store, Dialect: qcache.Postgres})
	if err != nil {
		t.Fatal(err)
	}
	e.db = sql.OpenDB(qcache.Wrap(e.inner, qcache.Options{
		Policy:  p,
		OnError: func(err error) { e.errs.Add(1); t.Logf("OnError: %v", err) },
	}))
	t.Cleanup(func() { e.db.Close() })
	return e
}

// read runs query through the wrapper, checks its result against the
// unwrapped database and reports whether it was served from the cache.
func (e *pgEnv) read(t *testing.T, query string, args ...any) (cached bool) {
	t.Helper()
	return readChecked(t, e.db, e.plain, &e.inner.Queries, query, args...)
}

func (e *pgEnv) exec(t *testing.T, query string, args ...any) {
	t.Helper()
	if _, err := e.db.Exec(query, args...); err != nil {
		t.Fatalf("%s %v: %v", query, args, err)
	}
}

var pgSetup = []string{
	`CREATE TABLE posts (id serial PRIMARY KEY, user_id int, status text, n int)`,
	`CREATE TABLE users (id int PRIMARY KEY, name text)`,
	`INSERT INTO users (id, name) VALUES (0, 'zero'), (1, 'one'), (2, 'two'), (3, 'three')`,
	`INSERT INTO posts (user_id, status, n) VALUES (1, 'new', 1), (1, 'done', 2), (2, 'new', 3), (2, NULL, 4), (3, 'done', NULL)`,
}

func TestPostgresRandomized(t *testing.T) {
	e := newPGEnv(t, pgSetup...)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(3, 4))
	type read struct {
		q    string
		args []any
	}
	var reads []read
	// int64, not int: see TestPostgresServedFromCache/int args.
	for u := range int64(4) {
		reads = append(reads,
			read{`SELECT id, status, n FROM posts WHERE user_id = $1 ORDER BY id`, []any{u}},
			read{`SELECT id FROM posts WHERE user_id = $1 AND status = 'new' ORDER BY id`, []any{u}},
			read{`SELECT count(*) FROM posts WHERE user_id = $1 OR status IS NULL`, []any{u}},
			read{`SELECT status, n FROM posts WHERE id = $1`, []any{u + 1}},
			read{`SELECT p.id, u.name FROM posts p JOIN users u ON u.id = p.user_id WHERE u.id = $1 ORDER BY p.id`, []any{u}},
		)
	}
	for _, st := range []string{"new", "done", "old"} {
		reads = append(reads, read{`SELECT id FROM posts WHERE status = $1 ORDER BY id`, []any{st}})
	}
	reads = append(reads,
		read{`SELECT count(*), sum(n) FROM posts`, nil},
		read{`SELECT id FROM posts WHERE status IS NULL ORDER BY id`, nil},
		read{`SELECT id, user_id FROM posts WHERE user_id IN (1, 2) ORDER BY id`, nil},
		read{`SELECT id FROM posts WHERE user_id = ANY($1) ORDER BY id`, []any{"{0,3}"}},
		read{`SELECT id, n FROM posts WHERE user_id = 1 OR n IS NULL ORDER BY id`, nil},
		read{`SELECT id, user_id FROM posts ORDER BY n DESC NULLS LAST, id LIMIT 3`, nil},
		read{`SELECT u.name, count(p.id) FROM users u LEFT JOIN posts p ON p.user_id = u.id GROUP BY u.name ORDER BY u.name`, nil},
		read{`SELECT name FROM users WHERE id = $1`, []any{int64(2)}},
	)
	statuses := []any{"new", "done", "old", nil}
	randWrite := func() (string, []any) {
		u, st, id := r.Int64N(4), statuses[r.IntN(len(statuses))], r.Int64N(12)+1
		switch r.IntN(14) {
		case 0:
			return `INSERT INTO posts (user_id, status, n) VALUES ($1, $2, $3)`, []any{u, st, r.Int64N(10)}
		case 1:
			return `UPDATE posts SET user_id = $1 WHERE id = $2`, []any{u, id}
		case 2:
			return `UPDATE posts SET status = $1 WHERE user_id = $2`, []any{st, u}
		case 3:
			return `UPDATE posts SET n = coalesce(n, 0) + 1 WHERE status = $1`, []any{st}
		case 4:
			return `DELETE FROM posts WHERE id = $1`, []any{id}
		case 5:
			return `DELETE FROM posts WHERE user_id = $1 AND status IS NOT DISTINCT FROM $2`, []any{u, st}
		case 6:
			return `UPDATE posts SET user_id = (user_id + 1) % 4 WHERE id IN ($1, $2)`, []any{id, id + 1}
		case 7:
			return `INSERT INTO posts (id, user_id, status) VALUES ($1, $2, 'up') ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id`, []any{id + 100, u}
		case 8:
			return `INSERT INTO posts (user_id, status, n) SELECT user_id, 'copy', n FROM posts WHERE id = $1`, []any{id}
		case 9:
			return `UPDATE users SET name = name || 'x' WHERE id = $1`, []any{u}
		case 10: // sent through Query
			return `INSERT INTO posts (user_id, status) VALUES ($1, $2) RETURNING id`, []any{u, st}
		case 11: // sent through Query
			return `UPDATE posts SET user_id = $1 WHERE id = $2 RETURNING id, user_id`, []any{u, id}
		case 12:
			return `UPDATE posts p SET status = u.name FROM users u WHERE u.id = p.user_id AND u.id = $1`, []any{u}
		default:
			return `UPDATE posts SET n = NULL WHERE n > $1`, []any{int64(5)}
		}
	}
	// write runs a statement; one with RETURNING goes through Query.
	write := func(db interface {
		ExecContext(context.Context, string, ...any) (sql.Result, error)
		QueryContext(context.Context, string, ...any) (*sql.Rows, error)
	}, q string, args []any) {
		t.Helper()
		if strings.Contains(q, "RETURNING") {
			all(t, ctx, db, q, args...)
			return
		}
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s %v: %v", q, args, err)
		}
	}
	hits := 0
	const rounds = 150
	for range rounds {
		switch r.IntN(4) {
		case 0: // transaction, with a savepoint now and then
			tx := must(e.db.BeginTx(ctx, nil))
			// Before it writes, the transaction may be served from the
			// cache and sees what a fresh snapshot sees.
			rd := reads[r.IntN(len(reads))]
			if got, want := all(t, ctx, tx, rd.q, rd.args...), all(t, ctx, e.plain, rd.q, rd.args...); !reflect.DeepEqual(got, want) {
				t.Fatalf("in tx before writing: %s %v:\n got %v\nwant %v", rd.q, rd.args, got, want)
			}
			for range r.IntN(3) + 1 {
				sp := r.IntN(3) == 0
				if sp {
					if _, err := tx.Exec(`SAVEPOINT sp`); err != nil {
						t.Fatal(err)
					}
				}
				q, args := randWrite()
				write(tx, q, args)
				if sp {
					stmt := `RELEASE SAVEPOINT sp`
					if r.IntN(2) == 0 {
						stmt = `ROLLBACK TO SAVEPOINT sp`
					}
					if _, err := tx.Exec(stmt); err != nil {
						t.Fatal(err)
					}
				}
			}
			// Once it has written, it sees its own writes.
			for range 2 {
				rd := reads[r.IntN(len(reads))]
				got := all(t, ctx, tx, rd.q, rd.args...)
				want := all(t, qcache.Bypass(ctx), tx, rd.q, rd.args...)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("in tx after writing: %s %v:\n got %v\nwant %v", rd.q, rd.args, got, want)
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
			write(e.db, q, args)
		}
		for _, rd := range reads {
			if e.read(t, rd.q, rd.args...) {
				hits++
			}
		}
	}
	if n := e.errs.Load(); n != 0 {
		t.Fatalf("%d errors reported", n)
	}
	t.Logf("%d of %d reads served from the cache", hits, rounds*len(reads))
	if hits == 0 {
		t.Fatal("nothing served from the cache")
	}
}

func TestPostgresServedFromCache(t *testing.T) {
	e := newPGEnv(t, pgSetup...)
	ctx := context.Background()
	const q = `SELECT id, status FROM posts WHERE user_id = $1 ORDER BY id`
	// Go int arguments: pgx's CheckNamedValue passes them through as int
	// (not int64); they must key like the int64 they stand for.
	t.Run("int args", func(t *testing.T) {
		e.read(t, `SELECT name FROM users WHERE id = $1`, 1)
		if !e.read(t, `SELECT name FROM users WHERE id = $1`, 1) {
			t.Fatal("a query with a Go int argument was not served from the cache")
		}
		if !e.read(t, `SELECT name FROM users WHERE id = $1`, int64(1)) {
			t.Fatal("int64(1) does not key like int(1)")
		}
	})
	t.Run("int64 args", func(t *testing.T) {
		if e.read(t, q, int64(1)) {
			t.Fatal("first read served from the cache")
		}
		if !e.read(t, q, int64(1)) {
			t.Fatal("second read reached the database")
		}
		if e.read(t, q, int64(2)) {
			t.Fatal("other argument served from the cache")
		}
		// QueryRow reads one row; the result is still stored.
		var name string
		for i := range 2 {
			before := e.inner.Queries.Load()
			if err := e.db.QueryRow(`SELECT name FROM users WHERE id = $1`, int64(2)).Scan(&name); err != nil {
				t.Fatal(err)
			}
			if reached := e.inner.Queries.Load() != before; reached != (i == 0) || name != "two" {
				t.Fatalf("QueryRow %d: reached %v, name %q", i, reached, name)
			}
		}
		// A write to another table keeps posts cached; a write to posts
		// does not.
		e.exec(t, `UPDATE users SET name = 'deux' WHERE id = $1`, int64(2))
		if !e.read(t, q, int64(1)) {
			t.Fatal("write to users invalidated posts")
		}
		if e.read(t, `SELECT name FROM users WHERE id = $1`, int64(2)) {
			t.Fatal("read of users after a write to users served from the cache")
		}
		// A write to user 2's post keeps user 1's posts cached (row
		// granularity); a write to one of user 1's posts does not.
		e.exec(t, `UPDATE posts SET status = 'x' WHERE id = $1`, int64(3))
		if !e.read(t, q, int64(1)) {
			t.Fatal("write to another user's post invalidated user 1's posts")
		}
		e.exec(t, `UPDATE posts SET status = 'x' WHERE id = $1`, int64(1))
		if e.read(t, q, int64(1)) {
			t.Fatal("read after a write to one of its posts served from the cache")
		}
		if !e.read(t, q, int64(1)) {
			t.Fatal("refilled read reached the database")
		}
		// Rollback keeps the cache; commit invalidates.
		tx := must(e.db.BeginTx(ctx, nil))
		if _, err := tx.Exec(`DELETE FROM posts WHERE user_id = $1`, int64(1)); err != nil {
			t.Fatal(err)
		}
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		if !e.read(t, q, int64(1)) {
			t.Fatal("rolled-back write invalidated the cache")
		}
		tx = must(e.db.BeginTx(ctx, nil))
		if _, err := tx.Exec(`DELETE FROM posts WHERE user_id = $1`, int64(1)); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if e.read(t, q, int64(1)) {
			t.Fatal("read after a committed write served from the cache")
		}
		// Prepared statements are cached too.
		stmt := must(e.db.Prepare(q))
		defer stmt.Close()
		for i := range 2 {
			before := e.inner.Queries.Load()
			rows := must(stmt.Query(int64(2)))
			for rows.Next() {
			}
			if err := rows.Close(); err != nil {
				t.Fatal(err)
			}
			if reached := e.inner.Queries.Load() != before; reached != (i == 0) {
				t.Fatalf("prepared run %d: reached the database %v", i, reached)
			}
		}
	})
	if n := e.errs.Load(); n != 0 {
		t.Fatalf("%d errors reported", n)
	}
}

func TestPostgresColumnTypesAndScan(t *testing.T) {
	e := newPGEnv(t,
		`CREATE TABLE vals (id int4 PRIMARY KEY, i8 int8, s text, num numeric(10,3), b bool, ts timestamptz, raw bytea, vc varchar(12))`,
		`INSERT INTO vals VALUES
			(1, 9007199254740993, 'héllo', 12345.678, true, '2024-02-29 12:34:56.789012+01', '\x00ff10', 'abc'),
			(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
			(3, -1, '', -0.001, false, '1970-01-01 00:00:00+00', '\x', '')`,
	)
	const q = `SELECT id, i8, s, num, b, ts, raw, vc FROM vals WHERE id = ANY($1) ORDER BY id`
	type result struct {
		types   []string
		anys    [][]any
		scanned []string
	}
	run := func(db *sql.DB) result {
		rows, err := db.Query(q, "{1,2,3}")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var res result
		for _, ct := range must(rows.ColumnTypes()) {
			n, nok := ct.Nullable()
			l, lok := ct.Length()
			p, s, dok := ct.DecimalSize()
			res.types = append(res.types, fmt.Sprint(ct.Name(), " ", ct.DatabaseTypeName(), " ", ct.ScanType(), " ", n, nok, " ", l, lok, " ", p, s, dok))
		}
		for rows.Next() {
			var (
				id  int32
				i8  sql.NullInt64
				s   sql.NullString
				num sql.NullString
				b   sql.NullBool
				ts  sql.NullTime
				raw []byte
				vc  sql.NullString
			)
			if err := rows.Scan(&id, &i8, &s, &num, &b, &ts, &raw, &vc); err != nil {
				t.Fatal(err)
			}
			res.scanned = append(res.scanned, fmt.Sprintf("%d %v %v %v %v %v %d %#v %v",
				id, i8, s, num, b, ts.Valid, ts.Time.UnixNano(), raw, vc))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		res.anys = all(t, context.Background(), db, q, "{1,2,3}")
		return res
	}
	want := run(e.plain)
	miss := run(e.db)
	before := e.inner.Queries.Load()
	hit := run(e.db)
	if e.inner.Queries.Load() != before {
		t.Fatal("second run was not served from the cache")
	}
	for _, c := range []struct {
		name string
		got  result
	}{{"miss", miss}, {"hit", hit}} {
		if !reflect.DeepEqual(c.got.types, want.types) {
			t.Errorf("%s column types:\n got %v\nwant %v", c.name, c.got.types, want.types)
		}
		if !reflect.DeepEqual(c.got.scanned, want.scanned) {
			t.Errorf("%s scanned:\n got %v\nwant %v", c.name, c.got.scanned, want.scanned)
		}
		if !reflect.DeepEqual(c.got.anys, want.anys) {
			t.Errorf("%s as any:\n got %#v\nwant %#v", c.name, c.got.anys, want.anys)
		}
	}
	// The timestamptz instant and its location as Scan gives it.
	var plainTS, hitTS time.Time
	const tsq = `SELECT ts FROM vals WHERE id = $1`
	if err := e.plain.QueryRow(tsq, 1).Scan(&plainTS); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := e.db.QueryRow(tsq, 1).Scan(&hitTS); err != nil {
			t.Fatal(err)
		}
	}
	if !hitTS.Equal(plainTS) || hitTS.Location().String() != plainTS.Location().String() {
		t.Errorf("timestamptz: got %v, want %v", hitTS, plainTS)
	}
	if n := e.errs.Load(); n != 0 {
		t.Fatalf("%d errors reported", n)
	}
}

func TestPostgresVolatileUncached(t *testing.T) {
	e := newPGEnv(t, pgSetup...)
	e.exec(t, `CREATE SEQUENCE seq`)
	reached := func(f func()) bool {
		before := e.inner.Queries.Load()
		f()
		return e.inner.Queries.Load() != before
	}
	t.Run("now", func(t *testing.T) {
		var prev time.Time
		for i := range 3 {
			var ts time.Time
			if !reached(func() {
				if err := e.db.QueryRow(`SELECT clock_timestamp()`).Scan(&ts); err != nil {
					t.Fatal(err)
				}
			}) {
				t.Fatalf("run %d of clock_timestamp() served from the cache", i)
			}
			if !ts.After(prev) {
				t.Fatalf("clock_timestamp() = %v, not after %v", ts, prev)
			}
			prev = ts
			var ok bool
			if !reached(func() {
				if err := e.db.QueryRow(`SELECT now() <= clock_timestamp()`).Scan(&ok); err != nil {
					t.Fatal(err)
				}
			}) || !ok {
				t.Fatalf("now(): cached or wrong (%v)", ok)
			}
		}
	})
	t.Run("random", func(t *testing.T) {
		seen := map[float64]bool{}
		for i := range 3 {
			var f float64
			if !reached(func() {
				if err := e.db.QueryRow(`SELECT random() FROM posts WHERE user_id = $1 LIMIT 1`, int64(1)).Scan(&f); err != nil {
					t.Fatal(err)
				}
			}) {
				t.Fatalf("run %d of random() served from the cache", i)
			}
			seen[f] = true
		}
		if len(seen) < 2 {
			t.Fatalf("random() gave %v", seen)
		}
	})
	t.Run("nextval", func(t *testing.T) {
		for i := range 3 {
			var v int64
			if !reached(func() {
				if err := e.db.QueryRow(`SELECT nextval('seq')`).Scan(&v); err != nil {
					t.Fatal(err)
				}
			}) {
				t.Fatalf("run %d of nextval served from the cache", i)
			}
			if v != int64(i+1) {
				t.Fatalf("nextval = %d, want %d", v, i+1)
			}
		}
	})
	t.Run("data-modifying CTE", func(t *testing.T) {
		const sel = `SELECT id FROM posts WHERE user_id = $1 ORDER BY id`
		e.read(t, sel, int64(2))
		if !e.read(t, sel, int64(2)) {
			t.Fatal("not cached")
		}
		var n int
		if err := e.db.QueryRow(`WITH d AS (DELETE FROM posts WHERE user_id = $1 RETURNING id) SELECT count(*) FROM d`, int64(2)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Fatal("CTE deleted nothing")
		}
		e.read(t, sel, int64(2)) // fails unless the CTE invalidated posts
		var m int
		if err := e.db.QueryRow(`WITH d AS (DELETE FROM posts WHERE user_id = $1 RETURNING id) SELECT count(*) FROM d`, int64(2)).Scan(&m); err != nil || m != 0 {
			t.Fatalf("second CTE: %d, %v (served from the cache?)", m, err)
		}
	})
	t.Run("unparseable", func(t *testing.T) {
		for range 2 {
			_, err := e.db.Query(`SELEC id FROM posts`)
			if err == nil || !strings.Contains(err.Error(), "syntax error") {
				t.Fatalf("got %v, want a syntax error", err)
			}
		}
		// Valid SQL the analysis may not handle is answered correctly.
		for range 2 {
			e.read(t, `SELECT id, status FROM posts WHERE (user_id, n) IN (SELECT 1, 1 UNION SELECT $1::int, 3) ORDER BY id`, int64(2))
			e.read(t, `SELECT user_id, string_agg(status, ',' ORDER BY id) FROM posts GROUP BY user_id ORDER BY user_id`)
			e.read(t, `SELECT id FROM posts WHERE status LIKE $1 ORDER BY id`, "d%")
			e.read(t, `SELECT x FROM generate_series(1, $1::int) AS x`, int64(3))
		}
	})
	if n := e.errs.Load(); n != 0 {
		t.Fatalf("%d errors reported", n)
	}
}
