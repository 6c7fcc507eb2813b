package qcache_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/cachekit/cachekit/qcache"
)

// pgWriteReads are the cached queries of the granular write tests, on
// pgSetup's posts: (id, user_id, status, n) = (1, 1, new, 1), (2, 1,
// done, 2), (3, 2, new, 3), (4, 2, NULL, 4), (5, 3, done, NULL).
var pgWriteReads = []struct {
	q    string
	args []any
}{
	0: {`SELECT id, status, n FROM posts WHERE user_id = $1 ORDER BY id`, []any{int64(1)}},
	1: {`SELECT id, status, n FROM posts WHERE user_id = $1 ORDER BY id`, []any{int64(2)}},
	2: {`SELECT id, n FROM posts WHERE status = $1 ORDER BY id`, []any{"new"}},
	3: {`SELECT id, n FROM posts WHERE status = $1 ORDER BY id`, []any{"done"}},
	4: {`SELECT id FROM posts WHERE user_id = $1 AND status = $2 ORDER BY id`, []any{int64(1), "new"}},
	5: {`SELECT status, n FROM posts WHERE id = $1`, []any{int64(5)}},
	6: {`SELECT id, status, n FROM posts WHERE user_id = $1 ORDER BY id`, []any{int64(3)}},
}

// warm fills the cache with every read of pgWriteReads and checks that the
// second run is served from it.
func (e *pgEnv) warm(t *testing.T) {
	t.Helper()
	for _, r := range pgWriteReads {
		e.read(t, r.q, r.args...)
		if !e.read(t, r.q, r.args...) {
			t.Fatalf("%s %v: not cached after a fill", r.q, r.args)
		}
	}
}

// checkReads checks every read of pgWriteReads against the database and
// that the reads of kept were served from the cache.
func (e *pgEnv) checkReads(t *testing.T, kept []int) {
	t.Helper()
	for i, r := range pgWriteReads {
		cached := e.read(t, r.q, r.args...)
		if slices.Contains(kept, i) && !cached {
			t.Errorf("read %d (%s %v) was invalidated by a write that cannot affect it", i, r.q, r.args)
		}
	}
	if n := e.errs.Load(); n != 0 {
		t.Fatalf("%d errors reported", n)
	}
}

func TestPostgresWritesGranular(t *testing.T) {
	cases := []struct {
		name     string
		write    string
		args     []any
		affected int64 // rows the statement changes
		kept     []int // reads that must stay cached
	}{
		{"update one row", `UPDATE posts SET n = n + 1 WHERE id = $1`, []any{int64(3)}, 1, []int{0, 3, 4, 5, 6}},
		{"update several rows", `UPDATE posts SET n = 0 WHERE user_id = $1`, []any{int64(2)}, 2, []int{0, 3, 4, 5, 6}},
		{"update moves a row between buckets", `UPDATE posts SET status = 'done' WHERE id = $1`, []any{int64(1)}, 1, []int{1, 5, 6}},
		{"update of a row another user owns", `UPDATE posts SET status = $1 WHERE user_id = $2 AND status = 'new'`, []any{"old", int64(2)}, 1, []int{0, 3, 4, 5, 6}},
		{"update matching nothing", `UPDATE posts SET n = 1 WHERE user_id = $1`, []any{int64(9)}, 0, []int{0, 1, 2, 3, 4, 5, 6}},
		{"update from", `UPDATE posts p SET n = 7 FROM users u WHERE u.id = p.user_id AND u.name = $1`, []any{"two"}, 2, []int{0, 3, 4, 5, 6}},
		{"update from joining twice", `UPDATE posts p SET n = 1 FROM users u WHERE u.id IN (1, 2) AND p.user_id = $1`, []any{int64(1)}, 2, []int{1, 5, 6}},
		{"update with a subquery", `UPDATE posts SET n = 8 WHERE user_id IN (SELECT id FROM users WHERE name = $1)`, []any{"one"}, 2, []int{1, 5, 6}},
		{"update with a function", `UPDATE posts SET n = 8 WHERE lower(status) = $1 AND user_id = 2`, []any{"new"}, 1, []int{0, 3, 4, 5, 6}},
		{"delete one row", `DELETE FROM posts WHERE id = $1`, []any{int64(4)}, 1, []int{0, 2, 3, 4, 5, 6}},
		{"delete several rows", `DELETE FROM posts WHERE user_id = $1`, []any{int64(1)}, 2, []int{1, 5, 6}},
		{"delete using", `DELETE FROM posts p USING users u WHERE u.id = p.user_id AND u.name = $1`, []any{"three"}, 1, []int{0, 1, 2, 4}},
		{"insert one row", `INSERT INTO posts (user_id, status, n) VALUES ($1, $2, 9)`, []any{int64(3), "old"}, 1, []int{0, 1, 2, 3, 4, 5}},
		{"insert several rows", `INSERT INTO posts (user_id, status, n) VALUES ($1, 'x', 1), (3, 'y', 2)`, []any{int64(1)}, 2, []int{1, 2, 3, 4, 5}},
		{"insert select", `INSERT INTO posts (user_id, status, n) SELECT user_id, 'copy', n FROM posts WHERE user_id = $1`, []any{int64(2)}, 2, []int{0, 2, 3, 4, 5, 6}},
		{"upsert do nothing, conflicting", `INSERT INTO posts (id, user_id, status) VALUES ($1, 3, 'new') ON CONFLICT DO NOTHING`, []any{int64(1)}, 0, []int{0, 1, 2, 3, 4, 5, 6}},
		{"upsert do nothing, inserting", `INSERT INTO posts (id, user_id, status) VALUES ($1, 3, 'new') ON CONFLICT DO NOTHING`, []any{int64(50)}, 1, []int{0, 1, 3, 4, 5}},
		{"upsert do update, inserting", `INSERT INTO posts (id, user_id, status) VALUES ($1, $2, 'new') ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id`, []any{int64(60), int64(3)}, 1, []int{0, 1, 3, 4, 5}},
		// The old image of an updated row is unknown: the table's epoch
		// is bumped (nothing is kept).
		{"upsert do update, updating", `INSERT INTO posts (id, user_id, status) VALUES ($1, $2, 'new') ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id`, []any{int64(1), int64(3)}, 1, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newPGEnv(t, pgSetup...)
			e.warm(t)
			res, err := e.db.Exec(c.write, c.args...)
			if err != nil {
				t.Fatalf("%s: %v", c.write, err)
			}
			if n, err := res.RowsAffected(); err != nil || n != c.affected {
				t.Errorf("RowsAffected = %d, %v; want %d", n, err, c.affected)
			}
			e.checkReads(t, c.kept)
		})
	}
}

func TestPostgresWritesThroughQuery(t *testing.T) {
	ctx := context.Background()
	t.Run("GORM-style INSERT RETURNING id", func(t *testing.T) {
		t.Parallel()
		e := newPGEnv(t, pgSetup...)
		e.warm(t)
		rows := must(e.db.QueryContext(ctx, `INSERT INTO posts (user_id, status, n) VALUES ($1, $2, $3) RETURNING "id"`, int64(3), "new", int64(0)))
		if cols := must(rows.Columns()); !reflect.DeepEqual(cols, []string{"id"}) {
			t.Fatalf("columns %v, want [id]", cols)
		}
		types := must(rows.ColumnTypes())
		if len(types) != 1 || types[0].DatabaseTypeName() != "INT4" {
			t.Fatalf("column types %v", types)
		}
		var ids []int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
		var want int64
		if err := e.plain.QueryRow(`SELECT max(id) FROM posts`).Scan(&want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(ids, []int64{want}) {
			t.Fatalf("returned ids %v, want [%d]", ids, want)
		}
		e.checkReads(t, []int{0, 1, 3, 4, 5})
	})
	t.Run("UPDATE RETURNING", func(t *testing.T) {
		t.Parallel()
		e := newPGEnv(t, pgSetup...)
		e.warm(t)
		got := all(t, ctx, e.db, `UPDATE posts SET user_id = $1 WHERE id = $2 RETURNING id, user_id, status`, int64(3), int64(2))
		if want := [][]any{{int64(2), int64(3), "done"}}; !reflect.DeepEqual(got, want) {
			t.Fatalf("returned %v, want %v", got, want)
		}
		e.checkReads(t, []int{1, 2, 4, 5})
	})
	t.Run("UPDATE without RETURNING", func(t *testing.T) {
		t.Parallel()
		e := newPGEnv(t, pgSetup...)
		e.warm(t)
		rows := must(e.db.QueryContext(ctx, `UPDATE posts SET n = 0 WHERE user_id = $1`, int64(2)))
		if cols := must(rows.Columns()); len(cols) != 0 {
			t.Fatalf("columns %v, want none", cols)
		}
		if rows.Next() {
			t.Fatal("a row returned")
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
		e.checkReads(t, []int{0, 3, 4, 5, 6})
	})
	t.Run("rows closed early", func(t *testing.T) {
		t.Parallel()
		e := newPGEnv(t, pgSetup...)
		e.warm(t)
		// Two rows come back; the application reads one. The second
		// (user 2, NULL status) still invalidates.
		var id int64
		if err := e.db.QueryRowContext(ctx, `DELETE FROM posts WHERE user_id = $1 RETURNING id`, int64(2)).Scan(&id); err != nil {
			t.Fatal(err)
		}
		e.checkReads(t, []int{0, 3, 4, 5, 6})
	})
}

func TestPostgresWritesInTransaction(t *testing.T) {
	ctx := context.Background()
	for _, commit := range []bool{true, false} {
		t.Run(fmt.Sprint("commit ", commit), func(t *testing.T) {
			t.Parallel()
			e := newPGEnv(t, pgSetup...)
			e.warm(t)
			tx := must(e.db.BeginTx(ctx, nil))
			// Moves post 1 from (1, new) to (1, done).
			if _, err := tx.Exec(`UPDATE posts SET status = 'done' WHERE id = $1`, int64(1)); err != nil {
				t.Fatal(err)
			}
			// Deletes post 4 (2, NULL), through Query.
			got := all(t, ctx, tx, `DELETE FROM posts WHERE id = $1 RETURNING id`, int64(4))
			if !reflect.DeepEqual(got, [][]any{{int64(4)}}) {
				t.Fatalf("DELETE RETURNING gave %v", got)
			}
			// Inserts (3, old), through Query, read to the end.
			all(t, ctx, tx, `INSERT INTO posts (user_id, status) VALUES ($1, 'old') RETURNING id, status`, int64(3))
			// The transaction sees its own writes.
			for _, r := range pgWriteReads {
				got := all(t, ctx, tx, r.q, r.args...)
				want := all(t, qcache.Bypass(ctx), tx, r.q, r.args...)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("in tx: %s %v:\n got %v\nwant %v", r.q, r.args, got, want)
				}
			}
			if commit {
				if err := tx.Commit(); err != nil {
					t.Fatal(err)
				}
				e.checkReads(t, []int{5})
				return
			}
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
			e.checkReads(t, []int{0, 1, 2, 3, 4, 5, 6})
		})
	}
}

// TestPostgresWritesCanonicalValues checks that values PostgreSQL finds
// equal but that are spelled differently (a UUID in capitals or braces, a
// boolean as "yes" or 't', a char(n) with or without its padding, a numeric
// with another scale) invalidate each other, while the writes stay row
// granular (a read of another row stays cached).
func TestPostgresWritesCanonicalValues(t *testing.T) {
	e := newPGEnv(t,
		`CREATE TABLE items (id int PRIMARY KEY, u uuid, flag bool, code char(4), amount numeric(10, 2), f8 float8, big numeric(20, 2), v int8)`,
		`INSERT INTO items VALUES
			(1, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', true, 'ab', 1.50, 0.25, 9007199254740993, 1),
			(2, '00000000-0000-0000-0000-000000000002', false, 'cd', 2, 0.5, 2, 2)`,
	)
	reads := []struct {
		q    string
		args []any
	}{
		{`SELECT id, v FROM items WHERE u = $1`, []any{"A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"}},
		{`SELECT id, v FROM items WHERE u = $1`, []any{"{a0eebc999c0b4ef8bb6d6bb9bd380a11}"}},
		{`SELECT id, v FROM items WHERE flag = $1 ORDER BY id`, []any{"yes"}},
		{`SELECT id, v FROM items WHERE flag = $1 ORDER BY id`, []any{true}},
		{`SELECT id, v FROM items WHERE flag = 't' ORDER BY id`, nil},
		{`SELECT id, v FROM items WHERE code = $1`, []any{"ab"}},
		{`SELECT id, v FROM items WHERE code = 'ab  '`, nil},
		{`SELECT id, v FROM items WHERE amount = $1`, []any{"1.5"}},
		{`SELECT id, v FROM items WHERE amount = $1`, []any{1.5}},
		{`SELECT id, v FROM items WHERE amount = 2`, nil},
		{`SELECT id, v FROM items WHERE amount = $1`, []any{"2.000"}},
		{`SELECT id, v FROM items WHERE f8 = $1`, []any{"0.25"}},
		{`SELECT id, v FROM items WHERE big = $1`, []any{int64(9007199254740993)}},
	}
	const other = `SELECT id, v FROM items WHERE id = $1` // a row no write touches
	for _, w := range []string{
		`UPDATE items SET v = v + 1 WHERE id = 1`,
		`UPDATE items SET v = v + 1 WHERE id = 2`,
		`UPDATE items SET flag = NOT flag, code = 'ab', amount = 1.5, big = 9007199254740993 WHERE id = 2`,
		`UPDATE items SET u = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11' WHERE id = 2`,
		`DELETE FROM items WHERE id = 1`,
		`INSERT INTO items VALUES (3, '{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}', 'on', 'ab ', 2.00, 0.25, 9007199254740993, 3)`,
	} {
		for _, r := range append(reads, struct {
			q    string
			args []any
		}{other, []any{int64(99)}}) {
			e.read(t, r.q, r.args...)
			if !e.read(t, r.q, r.args...) {
				t.Fatalf("%s %v: not cached", r.q, r.args)
			}
		}
		e.exec(t, w)
		for _, r := range reads {
			e.read(t, r.q, r.args...) // fails on a stale result
		}
		if !e.read(t, other, int64(99)) {
			t.Errorf("%s: bumped the table epoch", w)
		}
		if n := e.errs.Load(); n != 0 {
			t.Fatalf("after %s: %d errors reported", w, n)
		}
	}
}

// TestPostgresWritesUncanonicalValues checks that a write whose row images
// hold a value that cannot be canonicalised (float4, compared after
// rounding; timestamptz) bumps the table epoch.
func TestPostgresWritesUncanonicalValues(t *testing.T) {
	for _, c := range []struct {
		typ, v1, v2 string
		arg         any
	}{
		{"float4", "0.1", "0.2", 0.1},
		{"timestamptz", "'2024-01-01 00:00:00+00'", "'2024-01-02 00:00:00+00'", "2024-01-01 00:00:00+00"},
	} {
		t.Run(c.typ, func(t *testing.T) {
			t.Parallel()
			e := newPGEnv(t,
				`CREATE TABLE items (id int PRIMARY KEY, x `+c.typ+`, v int)`,
				`INSERT INTO items VALUES (1, `+c.v1+`, 1), (2, `+c.v2+`, 2)`,
			)
			const q = `SELECT id, v FROM items WHERE x = $1`
			for _, w := range []string{
				`UPDATE items SET v = v + 1 WHERE id = 1`,
				`UPDATE items SET x = ` + c.v1 + `, v = 5 WHERE id = 2`,
			} {
				e.read(t, q, c.arg)
				e.exec(t, w)
				e.read(t, q, c.arg) // fails on a stale result
			}
			if n := e.errs.Load(); n != 0 {
				t.Fatalf("%d errors reported", n)
			}
		})
	}
}

// TestPostgresWritesLockedRowsChecked runs an UPDATE whose subquery picks
// a different row for the pre-image read than for the UPDATE itself (a
// sequence advances in between): same count, other rows. The check of the
// locked rows must notice it.
func TestPostgresWritesLockedRowsChecked(t *testing.T) {
	e := newPGEnv(t, append(slices.Clone(pgSetup), `CREATE SEQUENCE seq`)...)
	e.warm(t)
	// The pre-image read locks post 2 (1, done); the UPDATE changes post 1
	// (1, new), whose old image it never read.
	e.exec(t, `UPDATE posts SET status = 'old' WHERE id = (SELECT 1 + nextval('seq') % 2)`)
	e.checkReads(t, nil)
}

// TestPostgresWritesConcurrent runs writers and readers on several
// connections at once; once they are done, every cached read must agree
// with the database.
func TestPostgresWritesConcurrent(t *testing.T) {
	e := newPGEnv(t, pgSetup...)
	ctx := context.Background()
	writes := []string{
		`UPDATE posts SET status = $2 WHERE id = $1`,
		`UPDATE posts SET user_id = $1 % 4 WHERE user_id = $1 % 3 AND status = $2`,
		`DELETE FROM posts WHERE id = $1 AND status = $2`,
		`INSERT INTO posts (user_id, status, n) VALUES ($1 % 4, $2, 1)`,
		`INSERT INTO posts (id, user_id, status) VALUES ($1, 1, $2) ON CONFLICT (id) DO UPDATE SET status = excluded.status`,
		`UPDATE posts p SET status = $2 FROM users u WHERE u.id = p.user_id AND u.id = $1 % 4`,
		`INSERT INTO posts (user_id, status) SELECT user_id, $2 FROM posts WHERE id = $1`,
	}
	statuses := []string{"new", "done", "old"}
	done := make(chan struct{})
	errs := make(chan error, 16)
	var writers, readers sync.WaitGroup
	for w := range 4 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for range 40 {
				q := writes[r.IntN(len(writes))]
				args := []any{r.Int64N(12) + 1, statuses[r.IntN(len(statuses))]}
				if r.IntN(3) == 0 {
					tx, err := e.db.BeginTx(ctx, nil)
					if err != nil {
						errs <- err
						return
					}
					// Deadlocks and serialization failures are the
					// application's: only the cache's correctness matters.
					tx.ExecContext(ctx, q, args...)
					tx.ExecContext(ctx, writes[r.IntN(len(writes))], r.Int64N(12)+1, statuses[r.IntN(len(statuses))])
					if r.IntN(2) == 0 {
						tx.Commit()
					} else {
						tx.Rollback()
					}
					continue
				}
				e.db.ExecContext(ctx, q, args...)
			}
		}()
	}
	for range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				for _, rd := range pgWriteReads {
					rows, err := e.db.QueryContext(ctx, rd.q, rd.args...)
					if err != nil {
						errs <- err
						return
					}
					for rows.Next() {
					}
					rows.Close()
				}
			}
		}()
	}
	writers.Wait()
	close(done)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, rd := range pgWriteReads {
		e.read(t, rd.q, rd.args...)
	}
	if n := e.errs.Load(); n != 0 {
		t.Fatalf("%d errors reported", n)
	}
}

func TestPostgresWritesEdgeCases(t *testing.T) {
	ctx := context.Background()
	t.Run("prepared", func(t *testing.T) {
		t.Parallel()
		e := newPGEnv(t, pgSetup...)
		e.warm(t)
		stmt := must(e.db.PrepareContext(ctx, `UPDATE posts SET status = $1 WHERE id = $2`))
		defer stmt.Close()
		res := must(stmt.ExecContext(ctx, "done", int64(1)))
		if n, err := res.RowsAffected(); n != 1 || err != nil {
			t.Fatalf("RowsAffected = %d, %v", n, err)
		}
		if _, err := res.LastInsertId(); err == nil {
			t.Error("LastInsertId gave no error")
		}
		e.checkReads(t, []int{1, 5, 6})
	})
	t.Run("failed statements", func(t *testing.T) {
		t.Parallel()
		e := newPGEnv(t, pgSetup...)
		e.warm(t)
		if _, err := e.db.ExecContext(ctx, `INSERT INTO posts (id, user_id) VALUES (1, 2)`); err == nil {
			t.Fatal("duplicate key accepted")
		}
		if _, err := e.db.QueryContext(ctx, `INSERT INTO posts (id, user_id) VALUES (2, 2) RETURNING id`); err == nil {
			t.Fatal("duplicate key accepted through Query")
		}
		if _, err := e.db.ExecContext(ctx, `UPDATE posts SET id = 2 WHERE id = $1`, int64(1)); err == nil {
			t.Fatal("duplicate key accepted by UPDATE")
		}
		e.checkReads(t, nil)
		// The transaction the failed UPDATE ran in is over: this write is
		// committed and visible to other connections.
		e.exec(t, `UPDATE posts SET status = 'old' WHERE id = $1`, int64(1))
		e.checkReads(t, []int{1, 3, 5, 6})
	})
	t.Run("pre-image read fails outside a transaction", func(t *testing.T) {
		t.Parallel()
		e := newPGEnv(t, append(slices.Clone(pgSetup), `CREATE VIEW active AS SELECT * FROM posts WHERE status = 'new'`)...)
		const q = `SELECT id, n FROM active WHERE user_id = $1 ORDER BY id`
		e.read(t, q, int64(1))
		// SELECT ctid FROM a view fails: the UPDATE still runs.
		e.exec(t, `UPDATE active a SET n = 5 FROM users u WHERE u.id = a.user_id AND u.id = $1`, int64(1))
		e.read(t, q, int64(1))
		e.exec(t, `UPDATE active SET n = 6 WHERE user_id = $1`, int64(1))
		e.read(t, q, int64(1))
		if n := e.errs.Load(); n != 0 {
			t.Fatalf("%d errors reported", n)
		}
	})
	t.Run("more rows than MaxImages", func(t *testing.T) {
		t.Parallel()
		e := newPGEnv(t, append(slices.Clone(pgSetup),
			`INSERT INTO posts (user_id, status, n) SELECT 2, 'bulk', g FROM generate_series(1, 1500) g`)...)
		e.warm(t)
		e.exec(t, `UPDATE posts SET n = n + 1 WHERE user_id = $1`, int64(2))
		e.checkReads(t, nil)
		e.warm(t)
		e.exec(t, `DELETE FROM posts WHERE user_id = $1`, int64(2))
		e.checkReads(t, nil)
	})
}

// TestPostgresWritesDroppedColumn drops a column that a scheme uses behind
// the wrapper's back: the rewritten writes would fail. Outside a
// transaction the application's statement runs as sent; inside one the
// first write fails and drops the scheme list, so the next transaction
// succeeds.
func TestPostgresWritesDroppedColumn(t *testing.T) {
	ctx := context.Background()
	for _, inTx := range []bool{false, true} {
		t.Run(fmt.Sprint("in tx ", inTx), func(t *testing.T) {
			t.Parallel()
			e := newPGEnv(t, pgSetup...)
			e.warm(t)
			for _, w := range []string{
				`INSERT INTO posts (user_id, status) VALUES (3, 'new')`,
				`DELETE FROM posts WHERE id = 2`,
				`UPDATE posts SET n = 9 WHERE id = 1`,
				`UPDATE posts p SET n = 10 FROM users u WHERE u.id = p.user_id AND u.id = 2`,
			} {
				for _, ddl := range []string{`ALTER TABLE posts ADD COLUMN tag text`, `SELECT id FROM posts WHERE tag = 'x'`, `ALTER TABLE posts DROP COLUMN tag`} {
					if ddl[0] == 'S' {
						e.read(t, ddl) // a scheme on tag
					} else if _, err := e.plain.Exec(ddl); err != nil {
						t.Fatal(err)
					}
				}
				if !inTx {
					e.exec(t, w)
					continue
				}
				for attempt := 0; ; attempt++ {
					tx := must(e.db.BeginTx(ctx, nil))
					_, err := tx.ExecContext(ctx, w)
					if err == nil {
						if err := tx.Commit(); err != nil {
							t.Fatal(err)
						}
						break
					}
					tx.Rollback()
					if attempt > 0 {
						t.Fatalf("%s failed twice: %v", w, err)
					}
				}
			}
			for _, r := range pgWriteReads {
				e.read(t, r.q, r.args...)
			}
			if n := e.errs.Load(); n != 0 {
				t.Fatalf("%d errors reported", n)
			}
		})
	}
}

// TRUNCATE invalidates the tables it empties and only those.
func TestPostgresTruncate(t *testing.T) {
	e := newPGEnv(t, pgSetup...)
	const byUser = `SELECT id, status FROM posts WHERE user_id = $1 ORDER BY id`
	const userName = `SELECT name FROM users WHERE id = $1`
	for _, q := range []string{byUser, userName} {
		e.read(t, q, int64(1))
		if !e.read(t, q, int64(1)) {
			t.Fatalf("%s: second read not cached", q)
		}
	}
	e.exec(t, `TRUNCATE posts`)
	if e.read(t, byUser, int64(1)) {
		t.Fatal("read of posts after TRUNCATE posts served from the cache")
	}
	if !e.read(t, userName, int64(1)) {
		t.Fatal("TRUNCATE posts invalidated a read of users")
	}
}

// An argument that the driver passes through as a driver.Valuer (pgx lets
// sql.NullString through) keys and invalidates like the value it stands
// for: a write to another bucket keeps the query cached.
func TestPostgresValuerArgs(t *testing.T) {
	e := newPGEnv(t, pgSetup...)
	const q = `SELECT id, n FROM posts WHERE status = $1 ORDER BY id`
	arg := sql.NullString{String: "new", Valid: true}
	e.read(t, q, arg)
	if !e.read(t, q, arg) {
		t.Fatal("second read not cached")
	}
	if !e.read(t, q, "new") {
		t.Fatal("the same query with a plain string argument was not served from the same entry")
	}
	e.exec(t, `UPDATE posts SET n = n + 1 WHERE status = 'done'`)
	if !e.read(t, q, arg) {
		t.Fatal("a write to another bucket invalidated the query")
	}
	e.exec(t, `UPDATE posts SET n = n + 1 WHERE status = 'new'`)
	if e.read(t, q, arg) {
		t.Fatal("a write to the query's bucket left it cached")
	}
}
