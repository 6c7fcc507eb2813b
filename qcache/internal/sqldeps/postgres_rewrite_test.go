package sqldeps

import (
	"errors"
	"reflect"
	"testing"
)

func TestRewritePostgres(t *testing.T) {
	if !cgoEnabled {
		if _, err := RewritePostgres("DELETE FROM t", []string{"a"}, 10); !errors.Is(err, ErrUnsupported) {
			t.Fatalf("without cgo: got %v, want ErrUnsupported", err)
		}
		t.Skip("the PostgreSQL parser needs cgo")
	}
	cols := []string{"user_id", "Status"}
	cases := []struct {
		name, sql string
		want      Rewrite
	}{
		{name: "delete", sql: `DELETE FROM posts WHERE id = $1`, want: Rewrite{
			Returning: `DELETE FROM posts WHERE id = $1 RETURNING posts.user_id, posts."Status"`, Extra: 2}},
		{name: "delete using alias returning", sql: `DELETE FROM s.posts p USING users u WHERE u.id = p.user_id AND u.name = $1 RETURNING p.id`, want: Rewrite{
			Returning:    `DELETE FROM s.posts p USING users u WHERE u.id = p.user_id AND u.name = $1 RETURNING p.id, p.user_id, p."Status"`,
			Extra:        2,
			HadReturning: true}},
		{name: "insert", sql: `INSERT INTO posts (user_id, status) VALUES ($1, $2), (3, 'x')`, want: Rewrite{
			Returning: `INSERT INTO posts (user_id, status) VALUES ($1, $2), (3, 'x') RETURNING posts.user_id, posts."Status"`, Extra: 2}},
		{name: "insert returning star", sql: `INSERT INTO posts AS p SELECT * FROM old RETURNING *`, want: Rewrite{
			Returning: `INSERT INTO posts AS p SELECT * FROM old RETURNING *, p.user_id, p."Status"`, Extra: 2, HadReturning: true}},
		{name: "upsert nothing", sql: `INSERT INTO posts (id) VALUES (1) ON CONFLICT DO NOTHING`, want: Rewrite{
			Returning: `INSERT INTO posts (id) VALUES (1) ON CONFLICT DO NOTHING RETURNING posts.user_id, posts."Status"`, Extra: 2}},
		{name: "upsert update", sql: `INSERT INTO posts (id, n) VALUES ($1, 1) ON CONFLICT (id) DO UPDATE SET n = posts.n + excluded.n RETURNING "id"`, want: Rewrite{
			Returning:    `INSERT INTO posts (id, n) VALUES ($1, 1) ON CONFLICT (id) DO UPDATE SET n = posts.n + excluded.n RETURNING id, posts.user_id, posts."Status", posts.xmax::text <> '0'`,
			Extra:        3,
			UpdatedFlag:  true,
			HadReturning: true}},
		{name: "update", sql: `UPDATE ONLY posts SET status = $1 WHERE user_id = $2`, want: Rewrite{
			Returning:    `UPDATE ONLY posts SET status = $1 WHERE user_id = $2 RETURNING posts.user_id, posts."Status"`,
			Extra:        2,
			PreImages:    `SELECT posts.user_id, posts."Status" FROM ONLY posts WHERE user_id = $1 LIMIT 11 FOR UPDATE OF posts`,
			PreImageArgs: []int{2}}},
		{name: "update params renumbered", sql: `UPDATE posts SET n = $1 WHERE id = $3 OR id = $2 OR id = $3`, want: Rewrite{
			Returning:    `UPDATE posts SET n = $1 WHERE id = $3 OR id = $2 OR id = $3 RETURNING posts.user_id, posts."Status"`,
			Extra:        2,
			PreImages:    `SELECT posts.user_id, posts."Status" FROM posts WHERE id = $1 OR id = $2 OR id = $1 LIMIT 11 FOR UPDATE OF posts`,
			PreImageArgs: []int{3, 2}}},
		{name: "update from", sql: `UPDATE posts p SET status = u.name FROM users u WHERE u.id = p.user_id AND u.id = $1`, want: Rewrite{
			Returning:    `UPDATE posts p SET status = u.name FROM users u WHERE u.id = p.user_id AND u.id = $1 RETURNING p.user_id, p."Status"`,
			Extra:        2,
			PreImages:    `SELECT p.tableoid::int8, p.ctid::text, p.user_id, p."Status" FROM posts p, users u WHERE u.id = p.user_id AND u.id = $1 LIMIT 11 FOR UPDATE OF p`,
			PreImageArgs: []int{1},
			RowIDs:       true,
			CheckLocked:  `SELECT qcache_t.tableoid::int8, qcache_t.ctid::text FROM posts qcache_t WHERE qcache_t.ctid = ANY($1::tid[])`}},
		{name: "update subquery", sql: `UPDATE posts SET n = 1 WHERE user_id IN (SELECT id FROM users WHERE name = $1) RETURNING id`, want: Rewrite{
			Returning:    `UPDATE posts SET n = 1 WHERE user_id IN (SELECT id FROM users WHERE name = $1) RETURNING id, posts.user_id, posts."Status"`,
			Extra:        2,
			HadReturning: true,
			PreImages:    `SELECT posts.tableoid::int8, posts.ctid::text, posts.user_id, posts."Status" FROM posts WHERE user_id IN (SELECT id FROM users WHERE name = $1) LIMIT 11 FOR UPDATE OF posts`,
			PreImageArgs: []int{1},
			RowIDs:       true,
			CheckLocked:  `SELECT qcache_t.tableoid::int8, qcache_t.ctid::text FROM posts qcache_t WHERE qcache_t.ctid = ANY($1::tid[])`}},
		{name: "update function", sql: `UPDATE posts SET n = 0 WHERE lower(status) = 'x'`, want: Rewrite{
			Returning:   `UPDATE posts SET n = 0 WHERE lower(status) = 'x' RETURNING posts.user_id, posts."Status"`,
			Extra:       2,
			PreImages:   `SELECT posts.tableoid::int8, posts.ctid::text, posts.user_id, posts."Status" FROM posts WHERE lower(status) = 'x' LIMIT 11 FOR UPDATE OF posts`,
			RowIDs:      true,
			CheckLocked: `SELECT qcache_t.tableoid::int8, qcache_t.ctid::text FROM posts qcache_t WHERE qcache_t.ctid = ANY($1::tid[])`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := RewritePostgres(c.sql, cols, 10)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, c.want) {
				t.Errorf("got\n%+v\nwant\n%+v", *got, c.want)
			}
		})
	}
	for _, sql := range []string{
		`SELECT 1`,
		`WITH d AS (DELETE FROM a RETURNING *) INSERT INTO b SELECT * FROM d`,
		`WITH x AS (SELECT 1) UPDATE posts SET n = 1`,
		`UPDATE posts SET n = 1 WHERE CURRENT OF c`,
		`DELETE FROM a; DELETE FROM b`,
		`DELETE FROM`,
	} {
		if _, err := RewritePostgres(sql, cols, 10); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: got %v, want ErrUnsupported", sql, err)
		}
	}
}

func TestAnalyzePostgresDataModifyingWith(t *testing.T) {
	if !cgoEnabled {
		t.Skip("the PostgreSQL parser needs cgo")
	}
	for _, sql := range []string{
		`WITH d AS (DELETE FROM a RETURNING *) INSERT INTO b SELECT * FROM d`,
		`WITH d AS (UPDATE a SET x = 1 RETURNING id) DELETE FROM b WHERE id IN (SELECT id FROM d)`,
		`WITH d AS (INSERT INTO a VALUES (1) RETURNING id) UPDATE b SET x = 2 WHERE id IN (SELECT id FROM d)`,
	} {
		if q, err := Analyze(Postgres, sql); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: got %+v, %v, want ErrUnsupported (it writes two tables)", sql, q, err)
		}
	}
	q, err := Analyze(Postgres, `WITH d AS (SELECT id FROM a) DELETE FROM b WHERE id IN (SELECT id FROM d)`)
	if err != nil || q.Kind != KindDelete || len(q.Tables) != 1 || q.Tables[0] != "b" {
		t.Errorf("read-only WITH: got %+v, %v", q, err)
	}
}

// BenchmarkRewritePostgres measures the rewrite of a write (parse, edit,
// deparse), which the query cache runs for every PostgreSQL write of a
// table with live schemes.
func BenchmarkRewritePostgres(b *testing.B) {
	if !cgoEnabled {
		b.Skip("the PostgreSQL parser needs cgo")
	}
	for _, sql := range []string{
		`UPDATE posts SET status = $1 WHERE user_id = $2 AND id = $3`,
		`INSERT INTO posts (user_id, status, n) VALUES ($1, $2, $3) RETURNING "id"`,
	} {
		b.Run(sql[:6], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := RewritePostgres(sql, []string{"user_id", "status", "id"}, 1000); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
