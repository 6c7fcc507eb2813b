package pgxdbtx

import "testing"

func TestCommandTag(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		query string
		n     int64
		want  string
	}{
		{"insert into t values (1)", 1, "INSERT 0 1"},
		{"  -- name: X :exec\nUPDATE t SET a = 1", 3, "UPDATE 3"},
		{"/* hint */ delete from t", 0, "DELETE 0"},
		{"SELECT 1", 1, "SELECT 1"},
		{"WITH a AS (SELECT 1), b AS (DELETE FROM x RETURNING 1) INSERT INTO t SELECT * FROM a", 2, "INSERT 0 2"},
		{"WITH RECURSIVE r(n) AS (SELECT 1 UNION SELECT n+1 FROM r) SELECT * FROM r", 5, "SELECT 5"},
		{`WITH "select" AS (SELECT 'update') UPDATE t SET a = 1`, 1, "UPDATE 1"},
		{"VALUES (1), (2)", 2, "SELECT 2"},
		{"create table t (a int)", 0, "CREATE TABLE"},
		{"DROP INDEX i", 0, "DROP INDEX"},
		{"truncate t", 0, "TRUNCATE"},
		{"MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE", 4, "MERGE 4"},
		{"update t set a = 1", -1, "UPDATE 0"},
		{"", 0, ""},
	} {
		if got := commandTag(c.query, c.n).String(); got != c.want {
			t.Errorf("commandTag(%q, %d) = %q, want %q", c.query, c.n, got, c.want)
		}
	}
}
