package qcache_test

import (
	"context"
	"database/sql"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cachekit/cachekit/qcache"
)

// txEnv is a wrapped database (GranularPolicy over a memory store) and an
// unwrapped one on the same data, on SQLite or PostgreSQL, with tables
// posts (id, user_id) and users (id, name): users 1 to 3, posts 1 and 2 of
// user 1, posts 3 and 4 of user 2, post 5 of user 3.
type txEnv struct {
	db, plain *sql.DB
	queries   *atomic.Int64 // queries that reached the wrapped database
	errs      *atomic.Int64
	postgres  bool
}

// forEachDB runs f on SQLite (mattn/go-sqlite3) and on PostgreSQL.
func forEachDB(t *testing.T, f func(t *testing.T, e *txEnv)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		g := newGEnv(t, nil, qcache.GranularOptions{})
		for _, s := range []string{
			`CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)`,
			`INSERT INTO users (id, name) VALUES (0, 'zero'), (1, 'one'), (2, 'two'), (3, 'three')`,
		} {
			if _, err := g.plain.Exec(s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
		f(t, &txEnv{db: g.db, plain: g.plain, queries: &g.inner.Queries, errs: &g.errs})
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		e := newPGEnv(t, pgSetup...)
		f(t, &txEnv{db: e.db, plain: e.plain, queries: &e.inner.Queries, errs: &e.errs, postgres: true})
	})
}

// q rewrites the ? placeholders of query for the dialect.
func (e *txEnv) q(query string) string {
	if !e.postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

const (
	txPostsBy  = `SELECT id, user_id FROM posts WHERE user_id = ? ORDER BY id`
	txUserName = `SELECT name FROM users WHERE id = ?`
	txSetName  = `UPDATE users SET name = ? WHERE id = ?`
	txMovePost = `UPDATE posts SET user_id = ? WHERE id = ?`
)

type querier interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}

type execer interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}

// readOn runs query on q (the wrapped database, a transaction or a pinned
// connection), checks its result against want (what the unwrapped database
// or the same transaction with the cache bypassed returns) and reports
// whether it was served from the cache.
func (e *txEnv) readOn(t *testing.T, q querier, query string, args ...any) (cached bool) {
	t.Helper()
	ctx := context.Background()
	before := e.queries.Load()
	got := all(t, ctx, q, e.q(query), args...)
	cached = e.queries.Load() == before
	want := all(t, qcache.Bypass(ctx), q, e.q(query), args...)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s %v: got %v, want %v (cached %v)", query, args, got, want, cached)
	}
	return cached
}

// read reads through the wrapped database and compares with the unwrapped
// one.
func (e *txEnv) read(t *testing.T, query string, args ...any) (cached bool) {
	t.Helper()
	ctx := context.Background()
	before := e.queries.Load()
	got := all(t, ctx, e.db, e.q(query), args...)
	cached = e.queries.Load() == before
	want := all(t, ctx, e.plain, e.q(query), args...)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s %v: got %v, want %v (cached %v)", query, args, got, want, cached)
	}
	return cached
}

func (e *txEnv) expect(t *testing.T, query string, arg any, cached bool) {
	t.Helper()
	if got := e.read(t, query, arg); got != cached {
		t.Fatalf("%s %v: cached = %v, want %v", query, arg, got, cached)
	}
}

// warm reads query with each argument until it is cached.
func (e *txEnv) warm(t *testing.T, query string, args ...any) {
	t.Helper()
	for _, a := range args {
		e.read(t, query, a)
		e.expect(t, query, a, true)
	}
}

func (e *txEnv) run(t *testing.T, x execer, query string, args ...any) {
	t.Helper()
	if _, err := x.ExecContext(context.Background(), e.q(query), args...); err != nil {
		t.Fatalf("%s %v: %v", query, args, err)
	}
}

// checkNoErrors fails when the wrapper reported an error.
func (e *txEnv) checkNoErrors(t *testing.T) {
	t.Helper()
	if n := e.errs.Load(); n != 0 {
		t.Fatalf("%d errors reported to OnError", n)
	}
}

// TestTxNestedSavepoints rolls back to nested savepoints and releases them
// inside a database/sql transaction: after Commit every read matches the
// database, and what only rolled-back writes touched stays cached.
func TestTxNestedSavepoints(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, e *txEnv) {
		ctx := context.Background()
		e.warm(t, txUserName, 1, 2, 3)
		e.warm(t, txPostsBy, 1, 2, 3)
		tx := must(e.db.BeginTx(ctx, nil))
		e.run(t, tx, `SAVEPOINT a`)
		e.run(t, tx, txSetName, "one'", 1)
		e.run(t, tx, `SAVEPOINT b`)
		e.run(t, tx, txSetName, "two'", 2)
		e.run(t, tx, `ROLLBACK TO SAVEPOINT b`) // drops users 2
		e.run(t, tx, `/* quoted */ savepoint "c"`)
		e.run(t, tx, txMovePost, 3, 1) // post 1: user 1 -> 3
		e.run(t, tx, `RELEASE c`)
		// Inside, the transaction sees its own writes.
		e.readOn(t, tx, txPostsBy, 1)
		e.readOn(t, tx, txUserName, 2)
		e.run(t, tx, `ROLLBACK TO a`) // drops users 1, post 1 (and b, c)
		e.readOn(t, tx, txPostsBy, 3)
		e.run(t, tx, txMovePost, 3, 3) // post 3: user 2 -> 3, kept
		e.run(t, tx, `RELEASE SAVEPOINT a`)
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		// Only rolled-back writes touched users.
		for _, id := range []int{1, 2, 3} {
			e.expect(t, txUserName, id, true)
		}
		e.expect(t, txPostsBy, 2, false)
		e.expect(t, txPostsBy, 3, false)
		// Whether the kept write to posts invalidates user 1's posts
		// depends on the policy's granularity: only compared.
		e.read(t, txPostsBy, 1)
		e.checkNoErrors(t)
	})
}

// TestTxGormSequence is the sequence of GORM's nested Transaction whose
// inner function fails once: the rolled-back write does not invalidate.
// The ROLLBACK TO is sent through Query, as some code does.
func TestTxGormSequence(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, e *txEnv) {
		ctx := context.Background()
		e.warm(t, txUserName, 1, 2)
		e.warm(t, txPostsBy, 1, 3)
		tx := must(e.db.BeginTx(ctx, nil))
		e.run(t, tx, `SAVEPOINT sp1`)
		e.run(t, tx, txMovePost, 3, 1) // post 1: user 1 -> 3
		rows, err := tx.QueryContext(ctx, `ROLLBACK TO SAVEPOINT sp1`)
		if err != nil {
			t.Fatal(err)
		}
		if rows.Next() {
			t.Fatal("ROLLBACK TO returned a row")
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
		e.run(t, tx, txSetName, "dos", 2)
		e.run(t, tx, `RELEASE SAVEPOINT sp1`)
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		e.expect(t, txUserName, 2, false)
		e.expect(t, txUserName, 2, true)
		e.read(t, txUserName, 1) // cached or not, depending on granularity
		// Only the rolled-back write touched posts.
		e.expect(t, txPostsBy, 1, true)
		e.expect(t, txPostsBy, 3, true)
		e.checkNoErrors(t)
	})
}

// TestTxTextBeginCommit opens and ends transactions as SQL text on a
// pinned connection.
func TestTxTextBeginCommit(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, e *txEnv) {
		ctx := context.Background()
		e.warm(t, txUserName, 1)
		e.warm(t, txPostsBy, 1)
		conn := must(e.db.Conn(ctx))
		defer conn.Close()

		e.run(t, conn, `BEGIN`)
		// Not written yet: served from the cache, never filled.
		if !e.readOn(t, conn, txPostsBy, 1) {
			t.Fatal("read before writing in a text transaction not served from the cache")
		}
		e.readOn(t, conn, txUserName, 3)
		e.run(t, conn, txSetName, "uno", 1)
		if e.readOn(t, conn, txUserName, 1) {
			t.Fatal("read after writing in a text transaction served from the cache")
		}
		// Other connections still see the committed value, cached.
		e.expect(t, txUserName, 1, true)
		e.run(t, conn, `COMMIT`)
		e.expect(t, txUserName, 1, false)
		e.expect(t, txUserName, 3, false) // not filled inside the transaction
		e.expect(t, txUserName, 3, true)
		e.expect(t, txPostsBy, 1, true)

		// The connection is out of the transaction: it fills and
		// invalidates again.
		e.readOn(t, conn, txUserName, 2)
		if !e.readOn(t, conn, txUserName, 2) {
			t.Fatal("read after COMMIT not served from the cache")
		}
		e.run(t, conn, txMovePost, 2, 1)
		e.expect(t, txPostsBy, 1, false)

		// START TRANSACTION (PostgreSQL) or BEGIN IMMEDIATE (SQLite),
		// then ROLLBACK: the write does not invalidate.
		e.warm(t, txUserName, 1, 2)
		begin := `BEGIN IMMEDIATE TRANSACTION`
		if e.postgres {
			begin = `START TRANSACTION READ WRITE`
		}
		e.run(t, conn, begin)
		e.run(t, conn, txSetName, "one again", 1)
		e.run(t, conn, `-- give up
			rollback`)
		e.expect(t, txUserName, 1, true)
		e.expect(t, txUserName, 2, true)

		// END and ABORT (PostgreSQL), END TRANSACTION (SQLite).
		if e.postgres {
			e.run(t, conn, `BEGIN WORK`)
		} else {
			e.run(t, conn, `BEGIN TRANSACTION`)
		}
		e.run(t, conn, txSetName, "eins", 1)
		if e.postgres {
			e.run(t, conn, `END`)
		} else {
			e.run(t, conn, `END TRANSACTION`)
		}
		e.expect(t, txUserName, 1, false)
		e.warm(t, txUserName, 1)
		if e.postgres {
			e.run(t, conn, `BEGIN`)
			e.run(t, conn, txSetName, "uno", 1)
			e.run(t, conn, `ABORT`)
			e.expect(t, txUserName, 1, true)
		}
		e.checkNoErrors(t)
	})
}

// TestTxTextFailedBegin: a BEGIN that fails changes nothing.
func TestTxTextFailedBegin(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, e *txEnv) {
		ctx := context.Background()
		conn := must(e.db.Conn(ctx))
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, `BEGIN ISOLATION LEVEL SOMETIMES`); err == nil {
			t.Fatal("BEGIN with a bad isolation level succeeded")
		}
		e.readOn(t, conn, txUserName, 1)
		if !e.readOn(t, conn, txUserName, 1) {
			t.Fatal("read after a failed BEGIN not served from the cache")
		}
		e.run(t, conn, txSetName, "uno", 1)
		e.expect(t, txUserName, 1, false)
		e.checkNoErrors(t)
	})
}

// TestTxTextIsolation: REPEATABLE READ and SERIALIZABLE transactions opened
// as text neither read from nor fill the cache (PostgreSQL only: SQLite
// has no isolation levels).
func TestTxTextIsolation(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, e *txEnv) {
		if !e.postgres {
			t.Skip("SQLite has no BEGIN ISOLATION LEVEL")
		}
		ctx := context.Background()
		e.warm(t, txUserName, 1)
		conn := must(e.db.Conn(ctx))
		defer conn.Close()
		for _, begin := range [][]string{
			{`BEGIN ISOLATION LEVEL REPEATABLE READ`},
			{`begin transaction isolation level serializable read only`},
			{`BEGIN`, `SET TRANSACTION ISOLATION LEVEL SERIALIZABLE`},
			{`START TRANSACTION`, `set transaction isolation level repeatable read`},
		} {
			for _, s := range begin {
				e.run(t, conn, s)
			}
			if e.readOn(t, conn, txUserName, 1) {
				t.Fatalf("%q: read served from the cache", begin)
			}
			e.run(t, conn, `COMMIT`)
			if !e.readOn(t, conn, txUserName, 1) {
				t.Fatalf("%q: read after COMMIT not served from the cache", begin)
			}
		}
		// READ COMMITTED keeps the cache for reads before writes.
		e.run(t, conn, `BEGIN`)
		e.run(t, conn, `SET TRANSACTION ISOLATION LEVEL READ COMMITTED`)
		if !e.readOn(t, conn, txUserName, 1) {
			t.Fatal("READ COMMITTED: read not served from the cache")
		}
		e.run(t, conn, `COMMIT`)
		e.checkNoErrors(t)
	})
}

// TestTxTextEndsSQLTx: COMMIT or ROLLBACK sent as text inside a
// database/sql transaction ends it for the cache; the Commit or Rollback
// that follows applies nothing twice.
func TestTxTextEndsSQLTx(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, e *txEnv) {
		ctx := context.Background()
		e.warm(t, txUserName, 1, 2)
		tx := must(e.db.BeginTx(ctx, nil))
		e.run(t, tx, txSetName, "uno", 1)
		e.run(t, tx, `COMMIT`)
		e.expect(t, txUserName, 1, false)
		e.warm(t, txUserName, 1)
		// Now in autocommit: a write applies at once.
		e.run(t, tx, txSetName, "dos", 2)
		e.expect(t, txUserName, 2, false)
		e.warm(t, txUserName, 1, 2)
		_ = tx.Commit() // fails on SQLite: no transaction is active
		e.expect(t, txUserName, 1, true)
		e.expect(t, txUserName, 2, true)

		tx = must(e.db.BeginTx(ctx, nil))
		e.run(t, tx, txSetName, "one", 1)
		e.run(t, tx, `ROLLBACK`)
		e.expect(t, txUserName, 1, true)
		_ = tx.Rollback()
		e.expect(t, txUserName, 1, true)
		e.checkNoErrors(t)
	})
}

// TestTxSQLiteSavepointOutsideTx: on SQLite a SAVEPOINT outside a
// transaction opens one, which RELEASE of that savepoint commits.
func TestTxSQLiteSavepointOutsideTx(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, e *txEnv) {
		ctx := context.Background()
		conn := must(e.db.Conn(ctx))
		defer conn.Close()
		if e.postgres {
			if _, err := conn.ExecContext(ctx, `SAVEPOINT outer_sp`); err == nil {
				t.Fatal("SAVEPOINT outside a transaction succeeded on PostgreSQL")
			}
			e.readOn(t, conn, txUserName, 1)
			if !e.readOn(t, conn, txUserName, 1) {
				t.Fatal("read after a failed SAVEPOINT not served from the cache")
			}
			return
		}
		e.warm(t, txUserName, 1, 2)
		e.run(t, conn, `SAVEPOINT outer_sp`)
		e.run(t, conn, txSetName, "uno", 1)
		e.run(t, conn, `SAVEPOINT inner_sp`)
		e.run(t, conn, txSetName, "dos", 2)
		e.run(t, conn, `ROLLBACK TO inner_sp`)
		e.run(t, conn, `RELEASE inner_sp`)
		e.readOn(t, conn, txUserName, 3) // not filled
		e.expect(t, txUserName, 1, true) // not committed yet
		e.run(t, conn, `RELEASE outer_sp`)
		e.expect(t, txUserName, 1, false)
		e.expect(t, txUserName, 2, true)
		e.expect(t, txUserName, 3, false)
		e.checkNoErrors(t)
	})
}

// TestTxShadowedSavepoint reuses a savepoint name: ROLLBACK TO and RELEASE
// act on the most recent savepoint of that name, so only the inner write
// is dropped.
func TestTxShadowedSavepoint(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, e *txEnv) {
		ctx := context.Background()
		e.warm(t, txUserName, 1, 2, 3)
		tx := must(e.db.BeginTx(ctx, nil))
		e.run(t, tx, `SAVEPOINT s`)
		e.run(t, tx, txSetName, "uno", 1)
		e.run(t, tx, `SAVEPOINT s`)
		e.run(t, tx, txSetName, "dos", 2)
		e.run(t, tx, `ROLLBACK TO s`) // the inner s: users 2 only
		e.run(t, tx, `RELEASE s`)     // the inner s
		e.run(t, tx, `SAVEPOINT s`)
		e.run(t, tx, `RELEASE s`)
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		e.expect(t, txUserName, 1, false)
		e.read(t, txUserName, 2)
		e.read(t, txUserName, 3)
		e.checkNoErrors(t)
	})
}

// TestTxMultiStatement sends transaction control hidden behind another
// statement in one text: the wrapper cannot follow it and stays on the
// safe side.
func TestTxMultiStatement(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, e *txEnv) {
		ctx := context.Background()
		e.warm(t, txUserName, 1, 2)
		tx := must(e.db.BeginTx(ctx, nil))
		e.run(t, tx, `SAVEPOINT a`)
		e.run(t, tx, `UPDATE users SET name = 'uno' WHERE id = 1; SAVEPOINT a`)
		e.run(t, tx, txSetName, "dos", 2)
		e.run(t, tx, `ROLLBACK TO a`) // the second a: users 1 stays written
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		e.expect(t, txUserName, 1, false)

		// BEGIN in front of a write, outside a transaction.
		e.warm(t, txUserName, 1, 3)
		conn := must(e.db.Conn(ctx))
		defer conn.Close()
		e.run(t, conn, `BEGIN; UPDATE users SET name = 'one' WHERE id = 1`)
		e.readOn(t, conn, txUserName, 3)
		e.read(t, txUserName, 1) // may refill the committed value
		e.run(t, conn, `COMMIT`)
		e.read(t, txUserName, 1) // compared with the database
		e.checkNoErrors(t)
	})
}

// TestTxRandomSavepoints runs random transactions (database/sql or text
// BEGIN) with nested and shadowed savepoints, rolled back to and released
// at random, and checks every cached read against the database after each.
func TestTxRandomSavepoints(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, e *txEnv) {
		ctx := context.Background()
		r := rand.New(rand.NewPCG(5, 6))
		type read struct {
			q   string
			arg any
		}
		var reads []read
		for id := range int64(4) {
			reads = append(reads, read{txUserName, id}, read{txPostsBy, id})
		}
		randWrite := func() (string, []any) {
			u, id := r.Int64N(4), r.Int64N(8)+1
			switch r.IntN(4) {
			case 0:
				return txSetName, []any{"n" + strconv.Itoa(r.IntN(100)), u}
			case 1:
				return txMovePost, []any{u, id}
			case 2:
				return `INSERT INTO posts (user_id) VALUES (?)`, []any{u}
			default:
				return `DELETE FROM posts WHERE id = ?`, []any{id}
			}
		}
		conn := must(e.db.Conn(ctx))
		defer conn.Close()
		hits := 0
		for range 300 {
			var (
				x interface {
					querier
					execer
				}
				tx   *sql.Tx
				text = r.IntN(2) == 0
			)
			if text {
				e.run(t, conn, `BEGIN`)
				x = conn
			} else {
				tx = must(conn.BeginTx(ctx, nil))
				x = tx
			}
			var stack []string // the open savepoints, as the database has them
			for range r.IntN(8) + 1 {
				switch op := r.IntN(5); {
				case op == 0 || len(stack) == 0 && op >= 3:
					name := string(rune('a' + r.IntN(2)))
					e.run(t, x, `SAVEPOINT `+name)
					stack = append(stack, name)
				case op >= 3:
					name := stack[r.IntN(len(stack))]
					i := len(stack) - 1
					for stack[i] != name {
						i--
					}
					if op == 3 {
						e.run(t, x, `RELEASE SAVEPOINT `+name)
						stack = stack[:i]
					} else {
						e.run(t, x, `ROLLBACK TO SAVEPOINT `+name)
						stack = stack[:i+1]
					}
				default:
					q, args := randWrite()
					e.run(t, x, q, args...)
				}
				rd := reads[r.IntN(len(reads))]
				e.readOn(t, x, rd.q, rd.arg)
			}
			commit := r.IntN(3) != 0
			switch {
			case text && commit:
				e.run(t, conn, `COMMIT`)
			case text:
				e.run(t, conn, `ROLLBACK`)
			case commit:
				if err := tx.Commit(); err != nil {
					t.Fatal(err)
				}
			default:
				if err := tx.Rollback(); err != nil {
					t.Fatal(err)
				}
			}
			for _, rd := range reads {
				if e.read(t, rd.q, rd.arg) {
					hits++
				}
			}
		}
		t.Logf("%d of %d reads after a transaction served from the cache", hits, 300*len(reads))
		if hits == 0 {
			t.Fatal("no read served from the cache")
		}
		e.checkNoErrors(t)
	})
}
