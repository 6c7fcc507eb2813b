package qcache_test

import (
	"slices"
	"testing"

	"github.com/cachekit/cachekit/qcache"
	"github.com/cachekit/cachekit/qcache/internal/sqldeps"
)

func TestSQLTables(t *testing.T) {
	t.Parallel()
	type want struct {
		reads     []string
		cacheable bool
		writes    []string
		known     bool
	}
	cases := []struct {
		name    string
		dialect qcache.Dialect
		sql     string
		want    want
		cgo     bool // needs the PostgreSQL parser
	}{
		{"sqlite select", qcache.SQLite, `SELECT * FROM users WHERE id = ?`, want{[]string{"users"}, true, nil, true}, false},
		{"sqlite join", qcache.SQLite, `SELECT p.id FROM posts p JOIN users u ON u.id = p.user_id WHERE u.id IN (?, ?)`,
			want{[]string{"posts", "users"}, true, nil, true}, false},
		{"sqlite subquery", qcache.SQLite, `SELECT id FROM users WHERE id IN (SELECT user_id FROM comments WHERE post_id = ?)`,
			want{[]string{"comments", "users"}, true, nil, true}, false},
		{"sqlite volatile", qcache.SQLite, `SELECT random() FROM users`, want{nil, false, nil, true}, false},
		{"sqlite update", qcache.SQLite, `UPDATE users SET name = ? WHERE id = ?`, want{nil, false, []string{"users"}, true}, false},
		{"sqlite insert", qcache.SQLite, `INSERT INTO posts (user_id) VALUES (?)`, want{nil, false, []string{"posts"}, true}, false},
		{"sqlite delete", qcache.SQLite, `DELETE FROM comments WHERE id = ?`, want{nil, false, []string{"comments"}, true}, false},
		{"sqlite begin", qcache.SQLite, `BEGIN`, want{nil, false, nil, true}, false},
		{"sqlite unparsable", qcache.SQLite, `THIS IS NOT SQL`, want{nil, false, nil, false}, false},
		{"sqlite insert returning", qcache.SQLite, "INSERT INTO `posts` (`user_id`) VALUES (?) RETURNING `id`",
			want{nil, false, []string{"posts"}, true}, false},
		{"unknown dialect", qcache.Dialect(99), `SELECT * FROM users`, want{nil, false, nil, false}, false},
		{"postgres select", qcache.Postgres, `SELECT u.name, count(*) FROM users u JOIN posts p ON p.user_id = u.id WHERE u.id = $1 GROUP BY u.name`,
			want{[]string{"posts", "users"}, true, nil, true}, true},
		{"postgres schema", qcache.Postgres, `SELECT * FROM app.users WHERE id = $1`, want{[]string{"app.users"}, true, nil, true}, true},
		{"postgres update returning", qcache.Postgres, `UPDATE app.users SET name = $1 WHERE id = $2 RETURNING id`,
			want{nil, false, []string{"app.users"}, true}, true},
		{"postgres locking read", qcache.Postgres, `SELECT * FROM users WHERE id = $1 FOR UPDATE`, want{nil, false, nil, true}, true},
		{"postgres truncate", qcache.Postgres, `TRUNCATE posts, comments`, want{nil, false, []string{"comments", "posts"}, true}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.cgo {
				if _, err := sqldeps.Analyze(sqldeps.Postgres, "SELECT 1"); err != nil {
					t.Skipf("PostgreSQL parser unavailable: %v", err)
				}
			}
			reads, writes := qcache.SQLTables(tc.dialect)
			for range 2 { // the second round is served from the memo
				tables, ok := reads(tc.sql)
				if !slices.Equal(tables, tc.want.reads) || ok != tc.want.cacheable {
					t.Errorf("reads(%q) = %q, %v; want %q, %v", tc.sql, tables, ok, tc.want.reads, tc.want.cacheable)
				}
				tables, ok = writes(tc.sql)
				if !slices.Equal(tables, tc.want.writes) || ok != tc.want.known {
					t.Errorf("writes(%q) = %q, %v; want %q, %v", tc.sql, tables, ok, tc.want.writes, tc.want.known)
				}
			}
		})
	}
}
