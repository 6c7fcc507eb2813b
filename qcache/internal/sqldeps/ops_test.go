package sqldeps

import "testing"

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		sql string
		op  Op
	}{
		{`SELECT id, title FROM posts WHERE user_id = 1`, OpFetch},
		{`SELECT * FROM posts`, OpFetch},
		{`SELECT count(*) FROM posts WHERE user_id = 1`, OpCount},
		{`SELECT COUNT(DISTINCT user_id) FROM posts`, OpCount},
		{`SELECT count(*) FROM posts GROUP BY user_id`, OpAggregate},
		{`SELECT user_id, count(*) FROM posts GROUP BY user_id`, OpAggregate},
		{`SELECT max(id), min(id) FROM posts`, OpAggregate},
		{`SELECT sum(n) + 1 FROM posts`, OpAggregate},
		{`SELECT user_id FROM posts GROUP BY user_id`, OpAggregate},
		{`SELECT EXISTS (SELECT 1 FROM posts WHERE user_id = 1)`, OpExists},
		{`SELECT 1 AS a FROM posts WHERE user_id = 1 LIMIT 1`, OpExists},
		{`SELECT 1 FROM posts LIMIT 2`, OpFetch},
		{`SELECT id FROM posts WHERE id = (SELECT max(id) FROM posts)`, OpFetch},
		{`SELECT id, (SELECT count(*) FROM users) FROM posts`, OpFetch},
		{`SELECT id, count(*) OVER () FROM posts`, OpFetch},
		{`SELECT id FROM posts UNION SELECT id FROM users`, OpFetch},
	} {
		for _, d := range []Dialect{SQLite, Postgres} {
			got, err := Classify(d, c.sql)
			if err != nil {
				if d == Postgres && !cgoEnabled {
					continue
				}
				t.Errorf("%v %s: %v", d, c.sql, err)
				continue
			}
			if got != c.op {
				t.Errorf("%v %s: got %v, want %v", d, c.sql, got, c.op)
			}
		}
	}
	if _, err := Classify(SQLite, `UPDATE posts SET n = 1`); err == nil {
		t.Error("Classify of an UPDATE: no error")
	}
}
