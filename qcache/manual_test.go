package qcache_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/cachekit/cachekit/qcache"
)

// readTitles reads the titles of a user through the wrapper.
func (e *asEnv) readTitles(t *testing.T, user int) []string {
	t.Helper()
	got, err := titles(context.Background(), e.db, user)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// expectTitles reads the titles of a user through the wrapper, twice (so
// that a miss fills the cache), and fails unless they are want.
func (e *asEnv) expectTitles(t *testing.T, user int, want ...string) {
	t.Helper()
	for range 2 {
		if got := e.readTitles(t, user); !slices.Equal(got, want) {
			t.Fatalf("titles of user %d = %q, want %q", user, got, want)
		}
	}
}

func (e *asEnv) count(t *testing.T) (n int) {
	t.Helper()
	if err := e.db.QueryRow(`SELECT count(*) FROM posts`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// plainExec changes the database behind the wrapper's back.
func (e *asEnv) plainExec(t *testing.T, query string, args ...any) {
	t.Helper()
	if _, err := e.plain.Exec(query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func TestInvalidateRow(t *testing.T) {
	t.Parallel()
	e := newAsEnv(t)
	ctx := context.Background()
	e.expectTitles(t, 1, "a1", "a2")
	e.expectTitles(t, 2, "b1")
	e.count(t)
	if n := e.count(t); n != 4 {
		t.Fatalf("count = %d, want 4", n)
	}

	// Behind the wrapper: the cached results go stale.
	e.plainExec(t, `UPDATE posts SET title = 'a1*' WHERE id = 1`)
	e.plainExec(t, `INSERT INTO posts (user_id, title) VALUES (2, 'b2')`)
	e.expectTitles(t, 1, "a1", "a2")
	e.expectTitles(t, 2, "b1")

	if err := e.p.InvalidateRow(ctx, "Posts", map[string]any{"id": 5, "User_ID": int32(2), "title": "b2"}); err != nil {
		t.Fatal(err)
	}
	e.expectTitles(t, 2, "b1", "b2") // its scheme's stamp deleted
	e.expectTitles(t, 1, "a1", "a2") // another user's: still cached
	if n := e.count(t); n != 5 {     // the whole-table stamp deleted
		t.Fatalf("count = %d, want 5", n)
	}

	for _, row := range []map[string]any{
		{"id": 1, "title": "a1*"},             // no user_id: the epoch is bumped
		{"id": 1, "user_id": time.Unix(0, 0)}, // not canonical: the epoch is bumped
	} {
		e.plainExec(t, `UPDATE posts SET title = title || '+' WHERE id = 2`)
		fresh, err := titles(ctx, e.plain, 1)
		if err != nil {
			t.Fatal(err)
		}
		if stale := e.readTitles(t, 1); slices.Equal(stale, fresh) {
			t.Fatalf("titles of user 1 = %q, not served from the cache", stale)
		}
		if err := e.p.InvalidateRow(ctx, "posts", row); err != nil {
			t.Fatal(err)
		}
		e.expectTitles(t, 1, fresh...)
	}
}

func TestWithoutInvalidation(t *testing.T) {
	t.Parallel()
	e := newAsEnv(t)
	ctx := context.Background()
	e.expectTitles(t, 1, "a1", "a2")
	e.expectTitles(t, 2, "b1")

	batch := qcache.WithoutInvalidation(ctx)
	for _, q := range []string{
		`UPDATE posts SET title = 'a1*' WHERE id = 1`,
		`INSERT INTO posts (user_id, title) VALUES (2, 'b2')`,
	} {
		if _, err := e.db.ExecContext(batch, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// A statement sent through Query under the scope invalidates nothing
	// either.
	rows, err := e.db.QueryContext(batch, `DELETE FROM posts WHERE id = 4 RETURNING id`)
	if err != nil {
		t.Fatal(err)
	}
	rows.Close()
	// Stale until the batch's closing invalidation.
	e.expectTitles(t, 1, "a1", "a2")
	e.expectTitles(t, 2, "b1")
	if err := e.p.InvalidateTables(ctx, "posts"); err != nil {
		t.Fatal(err)
	}
	e.expectTitles(t, 1, "a1*", "a2")
	e.expectTitles(t, 2, "b1", "b2")

	// Outside the scope, writes invalidate again.
	e.exec(t, `UPDATE posts SET title = 'b1*' WHERE id = 3`)
	e.expectTitles(t, 2, "b1*", "b2")
}

// TestInvalidateRowPostgres changes rows under WithoutInvalidation, then
// invalidates them one by one with InvalidateRow.
func TestInvalidateRowPostgres(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p, db := newPGAsDB(t)
	read := func(user int32) []string {
		t.Helper()
		var out []string
		rows, err := db.QueryContext(ctx, `SELECT title FROM posts WHERE user_id = $1 ORDER BY id`, user)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	expect := func(user int32, want ...string) {
		t.Helper()
		for range 2 {
			if got := read(user); !slices.Equal(got, want) {
				t.Fatalf("titles of user %d = %q, want %q", user, got, want)
			}
		}
	}
	expect(1, "a1", "a2")
	expect(2, "b1")
	batch := qcache.WithoutInvalidation(ctx)
	for _, q := range []string{
		`UPDATE posts SET title = 'a1*' WHERE id = 1`,
		`UPDATE posts SET title = 'b1*' WHERE id = 3`,
	} {
		if _, err := db.ExecContext(batch, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	expect(1, "a1", "a2")
	expect(2, "b1")
	if err := p.InvalidateRow(ctx, "posts", map[string]any{"id": 3, "user_id": 2, "title": "b1*"}); err != nil {
		t.Fatal(err)
	}
	expect(2, "b1*")
	expect(1, "a1", "a2") // still stale: not the invalidated row
	if err := p.InvalidateRow(ctx, "posts", map[string]any{"user_id": int64(1)}); err != nil {
		t.Fatal(err)
	}
	expect(1, "a1*", "a2")
}
