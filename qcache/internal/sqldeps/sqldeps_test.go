package sqldeps

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
)

type depCase struct {
	name     string
	sql      string
	dialects []Dialect // nil: both
	want     map[string]string
	reason   string // non-empty: not cacheable, Reason contains it
}

var both = []Dialect{SQLite, Postgres}

func inList(n int) string {
	vals := make([]string, n)
	for i := range vals {
		vals[i] = fmt.Sprint(i)
	}
	return strings.Join(vals, ", ")
}

func orList(col string, n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf("%s = %d", col, i)
	}
	return strings.Join(parts, " OR ")
}

var depCases = []depCase{
	// Equality.
	{name: "eq", sql: "SELECT * FROM users WHERE id = 1", want: map[string]string{"users": "(id = 1)"}},
	{name: "eq reversed", sql: "SELECT * FROM users WHERE 1 = id", want: map[string]string{"users": "(id = 1)"}},
	{name: "eq string", sql: "SELECT * FROM users WHERE name = 'bo''b'", want: map[string]string{"users": "(name = 'bo''b')"}},
	{name: "eq float", sql: "SELECT * FROM users WHERE score = 1.5", want: map[string]string{"users": "(score = 1.5)"}},
	{name: "no where", sql: "SELECT count(*) FROM users", want: map[string]string{"users": "TRUE"}},
	{name: "qualified", sql: "SELECT * FROM users u WHERE u.id = 2 AND u.org = 3", want: map[string]string{"users": "(id = 2 AND org = 3)"}},
	{name: "eq null literal", sql: "SELECT * FROM users WHERE id = NULL", want: map[string]string{"users": "TRUE"}},
	{name: "pg placeholders", sql: "SELECT * FROM users WHERE id = $1 AND name = $2", dialects: []Dialect{Postgres},
		want: map[string]string{"users": "(id = $1 AND name = $2)"}},
	{name: "sqlite placeholders", sql: "SELECT * FROM users WHERE id = ? AND name = ? LIMIT ?", dialects: []Dialect{SQLite},
		want: map[string]string{"users": "(id = $1 AND name = $2)"}},
	{name: "placeholders never contradict", sql: "SELECT * FROM users WHERE id = $1 AND id = $2", dialects: []Dialect{Postgres},
		want: map[string]string{"users": "(id = $1 AND id = $2)"}},
	{name: "pg cast", sql: "SELECT * FROM users WHERE id = '5'::int AND org = $1::bigint", dialects: []Dialect{Postgres},
		want: map[string]string{"users": "(id = '5' AND org = $1)"}},
	{name: "pg bool", sql: "SELECT * FROM users WHERE active = true", dialects: []Dialect{Postgres},
		want: map[string]string{"users": "(active = true)"}},
	{name: "pg schema and quoted case", sql: `SELECT * FROM public.users JOIN "Orgs" o ON o.id = users.org WHERE users.id = 1`, dialects: []Dialect{Postgres},
		want: map[string]string{"users": "(id = 1)", "Orgs": "TRUE"}},
	{name: "sqlite case folding and main schema", sql: "SELECT * FROM main.Users WHERE ID = 1", dialects: []Dialect{SQLite},
		want: map[string]string{"users": "(id = 1)"}},
	{name: "sqlite gorm backticks", sql: "SELECT * FROM `users` WHERE `users`.`id` = ? AND `users`.`deleted_at` IS NULL ORDER BY `users`.`id` LIMIT 1", dialects: []Dialect{SQLite},
		want: map[string]string{"users": "(deleted_at IS NULL AND id = $1)"}},
	{name: "sqlite double quotes", sql: `SELECT "id" FROM "users" WHERE "users"."org" = ?`, dialects: []Dialect{SQLite},
		want: map[string]string{"users": "(org = $1)"}},

	// IN.
	{name: "in", sql: "SELECT * FROM users WHERE id IN (1, 2, 3)", want: map[string]string{"users": "(id = 1) OR (id = 2) OR (id = 3)"}},
	{name: "in at cap", sql: "SELECT * FROM users WHERE id IN (" + inList(MaxInList) + ")", want: map[string]string{"users": inDNF(MaxInList)}},
	{name: "in over cap", sql: "SELECT * FROM users WHERE id IN (" + inList(MaxInList+1) + ") AND org = 1", want: map[string]string{"users": "(org = 1)"}},
	{name: "not in", sql: "SELECT * FROM users WHERE id NOT IN (1, 2)", want: map[string]string{"users": "TRUE"}},

	// IS NULL.
	{name: "is null", sql: "SELECT * FROM users WHERE deleted_at IS NULL", want: map[string]string{"users": "(deleted_at IS NULL)"}},
	{name: "is not null", sql: "SELECT * FROM users WHERE deleted_at IS NOT NULL", want: map[string]string{"users": "TRUE"}},
	{name: "is null contradicts eq", sql: "SELECT * FROM users WHERE a IS NULL AND a = 1", want: map[string]string{"users": "FALSE"}},

	// AND / OR / NOT.
	{name: "and or", sql: "SELECT * FROM t WHERE (a = 1 OR a = 2) AND (b = 3 OR b IS NULL)",
		want: map[string]string{"t": "(a = 1 AND b IS NULL) OR (a = 1 AND b = 3) OR (a = 2 AND b IS NULL) OR (a = 2 AND b = 3)"}},
	{name: "or with true arm", sql: "SELECT * FROM t WHERE a = 1 OR b > 2", want: map[string]string{"t": "TRUE"}},
	{name: "not", sql: "SELECT * FROM t WHERE NOT (a = 1) AND b = 2", want: map[string]string{"t": "(b = 2)"}},
	{name: "not of and", sql: "SELECT * FROM t WHERE NOT (a = 1 AND b = 2)", want: map[string]string{"t": "TRUE"}},
	{name: "other predicates", sql: "SELECT * FROM t WHERE a > 5 AND b LIKE 'x%' AND lower(c) = 'y' AND d <> 1 AND e = 4",
		want: map[string]string{"t": "(e = 4)"}},
	{name: "contradiction dropped", sql: "SELECT * FROM t WHERE (a = 1 OR a = 2) AND a = 1", want: map[string]string{"t": "(a = 1)"}},
	{name: "all contradictory", sql: "SELECT * FROM t WHERE a = 1 AND a = 2", want: map[string]string{"t": "FALSE"}},
	{name: "strings kept (collations)", sql: "SELECT * FROM t WHERE a = 'x' AND a = 'y'", want: map[string]string{"t": "(a = 'x' AND a = 'y')"}},
	{name: "or explosion", sql: "SELECT * FROM t WHERE " + orList("a", MaxConjunctions+1), want: map[string]string{"t": "TRUE"}},
	{name: "and explosion drops a conjunct", sql: "SELECT * FROM t WHERE (" + orList("a", 8) + ") AND (" + orList("b", 8) + ") AND (" + orList("c", 8) + ")",
		want: map[string]string{"t": crossDNF("a", "b", 8)}},

	// Joins.
	{name: "join propagation", sql: "SELECT * FROM users u JOIN orders o ON o.user_id = u.id WHERE u.id = 5 AND o.status IN (1, 2)",
		want: map[string]string{"users": "(id = 5)", "orders": "(status = 1 AND user_id = 5) OR (status = 2 AND user_id = 5)"}},
	{name: "join propagation chain", sql: "SELECT * FROM a JOIN b ON b.x = a.x JOIN c ON c.y = b.x WHERE c.y = 7",
		want: map[string]string{"a": "(x = 7)", "b": "(x = 7)", "c": "(y = 7)"}},
	{name: "comma join", sql: "SELECT * FROM a, b WHERE a.id = b.aid AND b.aid = 3",
		want: map[string]string{"a": "(id = 3)", "b": "(aid = 3)"}},
	{name: "join using", sql: "SELECT * FROM a JOIN b USING (id) WHERE a.id = 1",
		want: map[string]string{"a": "(id = 1)", "b": "(id = 1)"}},
	{name: "join conflicting values", sql: "SELECT * FROM a JOIN b ON a.id = b.aid WHERE a.id = 1 AND b.aid = 2",
		want: map[string]string{"a": "FALSE", "b": "FALSE"}},
	{name: "self join", sql: "SELECT * FROM users a JOIN users b ON a.boss = b.id WHERE a.id = 1 AND b.org = 2",
		want: map[string]string{"users": "(id = 1) OR (org = 2)"}},
	{name: "ambiguous unqualified column", sql: "SELECT * FROM a JOIN b ON a.id = b.aid WHERE x = 1",
		want: map[string]string{"a": "TRUE", "b": "TRUE"}},
	{name: "left join", sql: "SELECT * FROM a LEFT JOIN b ON b.aid = a.id AND b.x = 3 WHERE a.id = 7",
		want: map[string]string{"a": "(id = 7)", "b": "(x = 3)"}},
	{name: "left join anti", sql: "SELECT * FROM a LEFT JOIN b ON b.aid = a.id WHERE b.id IS NULL AND a.k = 1",
		want: map[string]string{"a": "(k = 1)", "b": "TRUE"}},
	{name: "right join", sql: "SELECT * FROM a RIGHT JOIN b ON b.aid = a.id AND a.x = 3 WHERE b.id = 7",
		want: map[string]string{"a": "(x = 3)", "b": "(id = 7)"}},
	{name: "full join", sql: "SELECT * FROM a FULL JOIN b ON a.id = b.aid AND a.x = 1 AND b.y = 2 WHERE a.k = 5", dialects: []Dialect{Postgres},
		want: map[string]string{"a": "TRUE", "b": "TRUE"}},
	{name: "natural join", sql: "SELECT * FROM a NATURAL JOIN b WHERE a.x = 1",
		want: map[string]string{"a": "(x = 1)", "b": "TRUE"}},
	{name: "lateral", sql: "SELECT * FROM users u, LATERAL (SELECT * FROM orders o WHERE o.user_id = u.id AND o.status = 1) s WHERE u.id = 2", dialects: []Dialect{Postgres},
		want: map[string]string{"users": "(id = 2)", "orders": "(status = 1)"}},
	{name: "left join on preserved side only", sql: "SELECT * FROM a LEFT JOIN b ON b.aid = a.id AND a.k = 1",
		want: map[string]string{"a": "TRUE", "b": "TRUE"}},

	// Subqueries.
	{name: "in subquery", sql: "SELECT * FROM users u WHERE u.org = 1 AND u.id IN (SELECT o.user_id FROM orders o WHERE o.status = 'paid')",
		want: map[string]string{"users": "(org = 1)", "orders": "(status = 'paid')"}},
	{name: "correlated exists", sql: "SELECT * FROM users u WHERE u.active = 1 AND EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id AND o.status = 2)",
		want: map[string]string{"users": "(active = 1)", "orders": "(status = 2)"}},
	{name: "not exists", sql: "SELECT * FROM users u WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id AND o.status = 2)",
		want: map[string]string{"users": "TRUE", "orders": "(status = 2)"}},
	{name: "unqualified in subquery is ambiguous", sql: "SELECT * FROM users WHERE id IN (SELECT user_id FROM orders WHERE status = 2)",
		want: map[string]string{"users": "TRUE", "orders": "TRUE"}},
	{name: "scalar subquery in select list", sql: "SELECT u.id, (SELECT count(*) FROM orders o WHERE o.user_id = u.id) FROM users u WHERE u.id = 3",
		want: map[string]string{"users": "(id = 3)", "orders": "TRUE"}},
	{name: "subquery in from", sql: "SELECT * FROM (SELECT * FROM orders WHERE status = 1) s WHERE s.user_id = 5",
		want: map[string]string{"orders": "(status = 1)"}},
	{name: "subquery in join on", sql: "SELECT * FROM a JOIN b ON b.aid = a.id AND b.k IN (SELECT c.k FROM c WHERE c.z = 1) WHERE a.id = 2",
		want: map[string]string{"a": "(id = 2)", "b": "(aid = 2)", "c": "(z = 1)"}},
	{name: "subquery comparison", sql: "SELECT * FROM t WHERE t.a = (SELECT max(u.a) FROM u WHERE u.k = 1)",
		want: map[string]string{"t": "TRUE", "u": "(k = 1)"}},

	// CTEs.
	{name: "cte", sql: "WITH paid AS (SELECT * FROM orders WHERE status = 1) SELECT * FROM paid JOIN users u ON u.id = paid.user_id WHERE u.id = 4",
		want: map[string]string{"orders": "(status = 1)", "users": "(id = 4)"}},
	{name: "cte used twice", sql: "WITH p AS (SELECT * FROM orders WHERE status = 1) SELECT * FROM p a JOIN p b ON a.id = b.parent",
		want: map[string]string{"orders": "(status = 1)"}},
	{name: "cte shadows table in body", sql: "WITH t AS (SELECT * FROM t WHERE a = 1) SELECT * FROM t",
		want: map[string]string{"t": "(a = 1)"}},
	{name: "recursive cte", sql: "WITH RECURSIVE r(id) AS (SELECT id FROM nodes WHERE id = 1 UNION ALL SELECT n.id FROM nodes n JOIN r ON n.parent_id = r.id) SELECT * FROM r",
		want: map[string]string{"nodes": "TRUE"}},

	// UNION.
	{name: "union same table", sql: "SELECT a FROM t WHERE a = 1 UNION SELECT a FROM t WHERE a = 2",
		want: map[string]string{"t": "(a = 1) OR (a = 2)"}},
	{name: "union all tables", sql: "SELECT id FROM a WHERE x = 1 UNION ALL SELECT id FROM b WHERE y IS NULL EXCEPT SELECT id FROM c",
		want: map[string]string{"a": "(x = 1)", "b": "(y IS NULL)", "c": "TRUE"}},
	{name: "union order by subquery", sql: "SELECT a FROM t UNION SELECT a FROM u ORDER BY (SELECT max(v.a) FROM v WHERE v.k = 1)",
		want: map[string]string{"t": "TRUE", "u": "TRUE", "v": "(k = 1)"}},

	// Not cacheable.
	{name: "now", sql: "SELECT now(), id FROM t WHERE a = 1", want: map[string]string{"t": "(a = 1)"}, reason: "now"},
	{name: "no table", sql: "SELECT 1 + 1", want: map[string]string{}, reason: "no table"},
	{name: "wal position", sql: "SELECT pg_current_wal_insert_lsn()", dialects: []Dialect{Postgres}, want: map[string]string{}, reason: "volatile"},
	{name: "random", sql: "SELECT * FROM t ORDER BY random() LIMIT 1", want: map[string]string{"t": "TRUE"}, reason: "random"},
	{name: "current_timestamp", sql: "SELECT * FROM t WHERE created < CURRENT_TIMESTAMP", want: map[string]string{"t": "TRUE"}, reason: "current"},
	{name: "nextval", sql: "SELECT nextval('s')", dialects: []Dialect{Postgres}, want: map[string]string{}, reason: "nextval"},
	{name: "sqlite datetime", sql: "SELECT * FROM t WHERE created < julianday('now')", dialects: []Dialect{SQLite}, want: map[string]string{"t": "TRUE"}, reason: "julianday"},
	{name: "volatile in subquery", sql: "SELECT * FROM t WHERE t.a IN (SELECT u.a FROM u WHERE u.b < now())", want: map[string]string{"t": "TRUE", "u": "TRUE"}, reason: "now"},
	{name: "for update", sql: "SELECT * FROM t WHERE a = 1 FOR UPDATE", want: map[string]string{"t": "(a = 1)"}, reason: "locking"},
	{name: "for share", sql: "SELECT * FROM t WHERE a = 1 FOR SHARE", dialects: []Dialect{Postgres}, want: map[string]string{"t": "(a = 1)"}, reason: "locking"},
	{name: "sqlite temp schema", sql: "SELECT * FROM temp.t WHERE a = 1", dialects: []Dialect{SQLite}, want: map[string]string{"temp.t": "(a = 1)"}, reason: "temporary"},
	{name: "pg temp schema", sql: "SELECT * FROM pg_temp.t WHERE a = 1", dialects: []Dialect{Postgres}, want: map[string]string{"pg_temp.t": "(a = 1)"}, reason: "temporary"},
	{name: "function in from", sql: "SELECT * FROM generate_series(1, 3) g", dialects: []Dialect{Postgres}, want: map[string]string{}, reason: "function in FROM"},
}

func inDNF(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprint(i)
	}
	slices.Sort(parts) // conditions sort by value text
	for i, p := range parts {
		parts[i] = "(id = " + p + ")"
	}
	return strings.Join(parts, " OR ")
}

func crossDNF(a, b string, n int) string {
	var parts []string
	for i := range n {
		for j := range n {
			parts = append(parts, fmt.Sprintf("(%s = %d AND %s = %d)", a, i, b, j))
		}
	}
	return strings.Join(parts, " OR ")
}

func depsString(d Deps) map[string]string {
	out := map[string]string{}
	for t, dnf := range d {
		out[t] = dnf.String()
	}
	return out
}

func TestAnalyzeSelect(t *testing.T) {
	for _, c := range depCases {
		ds := c.dialects
		if ds == nil {
			ds = both
		}
		for _, d := range ds {
			t.Run(d.String()+"/"+c.name, func(t *testing.T) {
				if d == Postgres && !cgoEnabled {
					t.Skip("PostgreSQL parser needs cgo")
				}
				q, err := Analyze(d, c.sql)
				if err != nil {
					t.Fatalf("Analyze(%q): %v", c.sql, err)
				}
				if q.Kind != KindSelect {
					t.Errorf("kind = %v, want select", q.Kind)
				}
				if got := depsString(q.Deps); !maps.Equal(got, c.want) {
					t.Errorf("Analyze(%q)\n got %v\nwant %v", c.sql, got, c.want)
				}
				if c.reason == "" && !q.Cacheable {
					t.Errorf("not cacheable: %s", q.Reason)
				}
				if c.reason != "" && (q.Cacheable || !strings.Contains(strings.ToLower(q.Reason), strings.ToLower(c.reason))) {
					t.Errorf("cacheable = %v reason %q, want not cacheable (%s)", q.Cacheable, q.Reason, c.reason)
				}
			})
		}
	}
}

func TestAnalyzeWrites(t *testing.T) {
	cases := []struct {
		dialects []Dialect
		sql      string
		kind     Kind
		tables   []string
		where    string
	}{
		{both, "INSERT INTO users (id, name) VALUES (1, 'a')", KindInsert, []string{"users"}, "FALSE"},
		{both, "UPDATE users SET name = 'x' WHERE id = 3", KindUpdate, []string{"users"}, "(id = 3)"},
		{both, "UPDATE users SET name = 'x'", KindUpdate, []string{"users"}, "TRUE"},
		{both, "UPDATE users u SET name = 'x' WHERE u.id IN (1, 2) AND u.org = 4", KindUpdate, []string{"users"}, "(id = 1 AND org = 4) OR (id = 2 AND org = 4)"},
		{both, "DELETE FROM users WHERE id IN (1, 2) OR age > 3", KindDelete, []string{"users"}, "TRUE"},
		{both, "DELETE FROM users WHERE deleted_at IS NULL AND org IN (SELECT id FROM orgs WHERE x = 1)", KindDelete, []string{"users"}, "(deleted_at IS NULL)"},
		{both, "TRUNCATE TABLE users", KindTruncate, []string{"users"}, "FALSE"},
		{both, "CREATE TABLE t (id integer primary key)", KindDDL, []string{"t"}, "FALSE"},
		{both, "ALTER TABLE t ADD COLUMN x integer", KindDDL, []string{"t"}, "FALSE"},
		{both, "BEGIN", KindOther, nil, "FALSE"},
		{both, "SAVEPOINT s1", KindOther, nil, "FALSE"},
		{[]Dialect{SQLite}, "UPDATE `users` SET `name`=?,`updated_at`=? WHERE `users`.`deleted_at` IS NULL AND `id` = ?", KindUpdate, []string{"users"}, "(deleted_at IS NULL AND id = $3)"},
		{[]Dialect{SQLite}, "DROP TABLE IF EXISTS `users`", KindDDL, []string{"users"}, "FALSE"},
		{[]Dialect{Postgres}, "UPDATE users SET n = $1 WHERE id = $2 RETURNING *", KindUpdate, []string{"users"}, "(id = $2)"},
		{[]Dialect{Postgres}, "UPDATE users SET n = 1 FROM orgs WHERE orgs.id = users.org AND users.id = 1", KindUpdate, []string{"users"}, "TRUE"},
		{[]Dialect{Postgres}, "INSERT INTO users (id) VALUES ($1) ON CONFLICT (id) DO UPDATE SET n = excluded.n RETURNING id", KindInsert, []string{"users"}, "FALSE"},
		{[]Dialect{Postgres}, "TRUNCATE a, public.b", KindTruncate, []string{"a", "b"}, "FALSE"},
		{[]Dialect{Postgres}, "DROP TABLE b, public.a, s.c", KindDDL, []string{"a", "b", "s.c"}, "FALSE"},
		{[]Dialect{Postgres}, "DROP INDEX i", KindDDL, nil, "FALSE"},
		{[]Dialect{Postgres}, "SELECT * INTO b FROM a", KindDDL, []string{"b"}, "FALSE"},
	}
	for _, c := range cases {
		for _, d := range c.dialects {
			if d == Postgres && !cgoEnabled {
				continue
			}
			q, err := Analyze(d, c.sql)
			if err != nil {
				t.Errorf("%v %q: %v", d, c.sql, err)
				continue
			}
			if q.Kind != c.kind || !slices.Equal(q.Tables, c.tables) || q.Where.String() != c.where || q.Cacheable {
				t.Errorf("%v %q: kind %v tables %v where %v cacheable %v, want %v %v %v", d, c.sql, q.Kind, q.Tables, q.Where, q.Cacheable, c.kind, c.tables, c.where)
			}
		}
	}
}

func TestAnalyzeErrors(t *testing.T) {
	for _, d := range both {
		if d == Postgres && !cgoEnabled {
			continue
		}
		for _, sql := range []string{"SELEKT 1", "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", "SELECT * FROM t; SELECT * FROM u", "SELECT * FROM t WHERE"} {
			if _, err := Analyze(d, sql); !errors.Is(err, ErrUnsupported) {
				t.Errorf("%v %q: err %v, want ErrUnsupported", d, sql, err)
			}
		}
	}
	// MySQL executable comments are plain comments to SQLite.
	for _, sql := range []string{"SELECT * FROM t /*! WHERE a = 1 */", "SELECT * FROM t /*t! WHERE a = 1 */"} {
		if _, err := Analyze(SQLite, sql); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%q: err %v, want ErrUnsupported", sql, err)
		}
	}
	if _, err := Analyze(Dialect(9), "SELECT 1"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("unknown dialect: %v", err)
	}
}

func TestStrings(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{Postgres.String(), "postgres"},
		{SQLite.String(), "sqlite"},
		{Dialect(7).String(), "dialect(7)"},
		{KindUpdate.String(), "update"},
		{Kind(42).String(), "kind(42)"},
		{Value{Kind: Bytes, Lit: "ab"}.String(), "x'ab'"},
		{Value{Kind: Arg, Arg: 3}.String(), "$3"},
		{Conj{}.String(), "TRUE"},
		{DNF{}.String(), "FALSE"},
		{DNF{{{Column: "a", Value: Value{Kind: Int, Lit: "1"}}}, {}}.String(), "TRUE"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	if !(Value{Kind: Float, Lit: "1.5"}).conflicts(Value{Kind: Float, Lit: "2"}) ||
		(Value{Kind: Float, Lit: "1.0"}).conflicts(Value{Kind: Float, Lit: "1"}) ||
		(Value{Kind: Int, Lit: "1"}).conflicts(Value{Kind: String, Lit: "2"}) {
		t.Error("conflicts")
	}
}
