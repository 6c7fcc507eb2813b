package qcache

import (
	"testing"

	"github.com/cachekit/cachekit/qcache/internal/sqldeps"
)

func TestWriteTarget(t *testing.T) {
	for _, c := range []struct {
		d     sqldeps.Dialect
		sql   string
		table string // "" = not recognised
	}{
		{sqldeps.SQLite, "INSERT INTO `posts` (`title`) VALUES (?) RETURNING `id`", "posts"},
		{sqldeps.SQLite, `INSERT INTO "Posts" ("id") VALUES (1) ON CONFLICT ("id") DO UPDATE SET "title"="excluded"."title" RETURNING "id"`, "posts"},
		{sqldeps.SQLite, "insert or replace into main.Posts values (1)", "posts"},
		{sqldeps.SQLite, "REPLACE INTO t VALUES (1)", "t"},
		{sqldeps.SQLite, "/* c */ -- x\n UPDATE OR IGNORE t SET a = 1 RETURNING *;", "t"},
		{sqldeps.SQLite, "UPDATE only SET a = 1", "only"},
		{sqldeps.SQLite, "DELETE FROM temp.t WHERE a = 1 RETURNING a", "temp.t"},
		{sqldeps.SQLite, "DELETE FROM [t] RETURNING a", "t"},
		{sqldeps.Postgres, `UPDATE ONLY "Users" SET a = 1`, "Users"},
		{sqldeps.Postgres, `DELETE FROM public.users`, "users"},
		{sqldeps.Postgres, `INSERT INTO s.T VALUES (1)`, "s.t"},
		{sqldeps.SQLite, "WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x", ""},
		{sqldeps.SQLite, "INSERT INTO a VALUES (1); DELETE FROM b", ""},
		{sqldeps.SQLite, "INSERT INTO a VALUES (';')", ""}, // a ";" in a literal: not recognised
		{sqldeps.SQLite, "SELECT * FROM t", ""},
		{sqldeps.SQLite, "INSERT t VALUES (1)", ""},
		{sqldeps.SQLite, "DELETE t", ""},
		{sqldeps.SQLite, "UPDATE", ""},
		{sqldeps.SQLite, "PRAGMA table_info(t)", ""},
	} {
		got, ok := writeTarget(c.d, c.sql)
		if ok != (c.table != "") || got != c.table {
			t.Errorf("writeTarget(%v, %q) = %q, %v; want %q", c.d, c.sql, got, ok, c.table)
		}
	}
}
