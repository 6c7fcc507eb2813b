//go:build cgo

package sqldeps

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
)

// qgen builds random queries from a small grammar; args collects the
// values of the ? placeholders in text order.
type qgen struct {
	r    *rand.Rand
	args []any
}

var propCols = []string{"a", "b", "c"}

func (g *qgen) val() string {
	v := g.r.IntN(4)
	if g.r.IntN(4) == 0 {
		g.args = append(g.args, int64(v))
		return "?"
	}
	return strconv.Itoa(v)
}

func (g *qgen) col(aliases []string) string {
	c := propCols[g.r.IntN(len(propCols))]
	if len(aliases) == 0 {
		return c
	}
	return aliases[g.r.IntN(len(aliases))] + "." + c
}

func (g *qgen) atom(aliases []string) string {
	c := g.col(aliases)
	switch g.r.IntN(9) {
	case 0, 1:
		return c + " = " + g.val()
	case 2:
		v := g.val()
		return v + " = " + c
	case 3:
		n := 1 + g.r.IntN(4)
		vals := make([]string, n)
		for i := range vals {
			vals[i] = g.val()
		}
		return c + " IN (" + strings.Join(vals, ", ") + ")"
	case 4:
		return c + " IS NULL"
	case 5:
		return c + " IS NOT NULL"
	case 6:
		return c + " < " + g.val()
	case 7:
		return c + " = " + g.col(aliases)
	default:
		return c + " <> " + g.val()
	}
}

func (g *qgen) pred(aliases []string, depth int) string {
	if depth == 0 || g.r.IntN(3) == 0 {
		return g.atom(aliases)
	}
	switch g.r.IntN(5) {
	case 0, 1:
		l := g.pred(aliases, depth-1)
		return "(" + l + " AND " + g.pred(aliases, depth-1) + ")"
	case 2, 3:
		l := g.pred(aliases, depth-1)
		return "(" + l + " OR " + g.pred(aliases, depth-1) + ")"
	default:
		return "NOT (" + g.pred(aliases, depth-1) + ")"
	}
}

// query returns a random query and, per result column, the table whose
// rowid it is ("" or missing for other columns).
func (g *qgen) query() (string, []string) {
	p := func(aliases ...string) string { return g.pred(aliases, 3) }
	t1, t1t2 := []string{"t1"}, []string{"t1", "t2"}
	switch g.r.IntN(11) {
	case 0:
		return "SELECT rowid, a, b, c FROM t1 WHERE " + g.pred(nil, 3), t1
	case 1:
		return "SELECT x.rowid FROM t1 x WHERE " + p("x"), t1
	case 2:
		on := "x.a = y.b"
		if g.r.IntN(2) == 0 {
			on += " AND " + p("x", "y")
		}
		return "SELECT x.rowid, y.rowid FROM t1 x JOIN t2 y ON " + on + " WHERE " + p("x", "y"), t1t2
	case 3:
		on := "x.a = y.b AND " + p("x", "y")
		return "SELECT x.rowid, y.rowid FROM t1 x LEFT JOIN t2 y ON " + on + " WHERE " + p("x", "y"), t1t2
	case 4:
		op := []string{" AND ", " OR "}[g.r.IntN(2)]
		not := []string{"", "NOT "}[g.r.IntN(2)]
		outer := p("x")
		return "SELECT x.rowid FROM t1 x WHERE " + outer + op + not + "EXISTS (SELECT 1 FROM t2 y WHERE y.a = x.b AND " + p("y", "x") + ")", t1
	case 5:
		not := []string{"", "NOT "}[g.r.IntN(2)]
		return "SELECT x.rowid FROM t1 x WHERE x.c " + not + "IN (SELECT y.a FROM t2 y WHERE " + p("y") + ")", t1
	case 6:
		l := p("x")
		return "SELECT x.a, x.b FROM t1 x WHERE " + l + " UNION SELECT y.a, y.b FROM t2 y WHERE " + p("y"), nil
	case 7:
		w := p("y")
		return "WITH w AS (SELECT y.a AS a, y.b AS b FROM t2 y WHERE " + w + ") SELECT x.rowid, w.a FROM t1 x JOIN w ON w.a = x.b WHERE " + p("x"), t1
	case 10:
		on := "x.a = y.b AND " + p("x", "y")
		return "SELECT x.rowid, y.rowid FROM t1 x RIGHT JOIN t2 y ON " + on + " WHERE " + p("x", "y"), t1t2
	case 8:
		return "SELECT x.rowid, z.rowid FROM t1 x JOIN t1 z ON x.a = z.b WHERE " + p("x", "z"), []string{"t1", "t1"}
	default:
		inner := p("y")
		return "SELECT s.r, (SELECT count(*) FROM t1 x WHERE x.a = s.a AND " + p("x") + ") FROM (SELECT y.rowid AS r, y.a AS a FROM t2 y WHERE " + inner + ") s WHERE s.a = 1", []string{"t2"}
	}
}

type propRow struct {
	rowid int64
	vals  map[string]*int64
}

func satisfies(t *testing.T, d DNF, row propRow, args []any) bool {
	for _, conj := range d {
		ok := true
		for _, c := range conj {
			v := row.vals[c.Column]
			switch c.Value.Kind {
			case Null:
				ok = ok && v == nil
			case Int:
				n, _ := strconv.ParseInt(c.Value.Lit, 10, 64)
				ok = ok && v != nil && *v == n
			case Arg:
				ok = ok && v != nil && *v == args[c.Value.Arg-1].(int64)
			default:
				t.Fatalf("unexpected value %v", c.Value)
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func runQuery(t *testing.T, conn *sql.Conn, q string, args []any) (string, [][]any) {
	rows, err := conn.QueryContext(context.Background(), q, args...)
	if err != nil {
		t.Fatalf("%s %v: %v", q, args, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	var all [][]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprint(vals...))
		all = append(all, vals)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return strings.Join(out, "|"), all
}

// TestPropertyDNF checks on random tables, rows and queries that every row
// the database returns satisfies the query's DNF for its table, that a row
// whose deletion changes a query's result satisfies it too (this covers
// NOT EXISTS, NOT IN and outer joins, where an absent row matters), and
// that a table missing from Deps never changes the result.
func TestPropertyDNF(t *testing.T) {
	db, err := sql.Open("sqlite3", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	exec := func(q string, args ...any) {
		if _, err := conn.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SQLDEPS_SEED"); s != "" { // to replay a failure
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 42))
	tables := []string{"t1", "t2"}
	for _, tb := range tables {
		exec("CREATE TABLE " + tb + " (a INTEGER, b INTEGER, c INTEGER)")
	}
	deadline := time.Now().Add(4 * time.Second)
	queries, checked, returned := 0, 0, 0
	for db := 0; time.Now().Before(deadline); db++ {
		data := map[string][]propRow{}
		for _, tb := range tables {
			exec("DELETE FROM " + tb)
			for range 3 + r.IntN(5) {
				vals := map[string]*int64{}
				args := make([]any, len(propCols))
				for i, c := range propCols {
					if r.IntN(5) > 0 {
						v := int64(r.IntN(4))
						vals[c], args[i] = &v, v
					}
				}
				res, err := conn.ExecContext(ctx, "INSERT INTO "+tb+" (a, b, c) VALUES (?, ?, ?)", args...)
				if err != nil {
					t.Fatal(err)
				}
				id, _ := res.LastInsertId()
				data[tb] = append(data[tb], propRow{rowid: id, vals: vals})
			}
		}
		for range 20 {
			g := &qgen{r: r}
			q, ids := g.query()
			an, err := Analyze(SQLite, q)
			if err != nil {
				t.Fatalf("Analyze(%q): %v", q, err)
			}
			if !an.Cacheable {
				t.Fatalf("%q not cacheable: %s", q, an.Reason)
			}
			queries++
			want, res := runQuery(t, conn, q, g.args)
			// Every row the database says the query returns satisfies a
			// conjunction of its table's DNF.
			for _, vals := range res {
				for i, tb := range ids {
					id, ok := vals[i].(int64)
					if !ok {
						continue // NULL: a LEFT JOIN's missing row
					}
					row := slices.IndexFunc(data[tb], func(r propRow) bool { return r.rowid == id })
					if !satisfies(t, an.Deps[tb], data[tb][row], g.args) {
						t.Fatalf("%s row %d %v is returned by\n  %s\n  args %v\nbut does not satisfy its DNF %v", tb, id, fmtRow(data[tb][row]), q, g.args, an.Deps[tb])
					}
					returned++
				}
			}
			for _, tb := range tables {
				dnf, read := an.Deps[tb]
				for _, row := range data[tb] {
					if read && satisfies(t, dnf, row, g.args) {
						continue
					}
					checked++
					exec("SAVEPOINT p")
					exec("DELETE FROM "+tb+" WHERE rowid = ?", row.rowid)
					got, _ := runQuery(t, conn, q, g.args)
					exec("ROLLBACK TO p")
					exec("RELEASE p")
					if got != want {
						t.Fatalf("deleting %s row %d %v changes\n  %s\n  args %v\nbut the row does not satisfy its DNF %v (read %v)\n  before: %s\n  after:  %s",
							tb, row.rowid, fmtRow(row), q, g.args, dnf, read, want, got)
					}
				}
			}
		}
	}
	t.Logf("%d queries, %d returned rows checked, %d deletions of rows outside their DNF checked", queries, returned, checked)
}

func fmtRow(r propRow) string {
	var parts []string
	for _, c := range propCols {
		if v := r.vals[c]; v != nil {
			parts = append(parts, fmt.Sprintf("%s=%d", c, *v))
		} else {
			parts = append(parts, c+"=NULL")
		}
	}
	return strings.Join(parts, " ")
}
