// Package sqldeps extracts the data dependencies of SQL statements for the
// query cache: for every table a SELECT reads, a disjunction of equality
// conjunctions (DNF) that every row able to affect the result satisfies
// (django-cacheops semantics), and for writes the target tables and, where
// resolvable, the WHERE of an UPDATE or DELETE as a DNF.
//
// The extraction is conservative: any predicate it does not understand
// counts as TRUE (wider invalidation, never a missed one). PostgreSQL is
// parsed with pg_query_go (PostgreSQL's own grammar, cgo; without cgo
// Analyze returns ErrUnsupported for Postgres); SQLite with the TiDB
// (MySQL) parser in ANSI_QUOTES, PIPES_AS_CONCAT and NO_BACKSLASH_ESCAPES
// mode, see docs/DECISIONS.md D22 for the syntax it reads.
package sqldeps

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ErrUnsupported is wrapped by every error Analyze returns: the statement
// could not be parsed or analysed, and the caller must pass it through
// uncached (and treat a write as touching unknown tables).
var ErrUnsupported = errors.New("sqldeps: unsupported statement")

// Dialect selects the SQL grammar.
type Dialect int

const (
	// Postgres is PostgreSQL, parsed with pg_query_go (needs cgo).
	Postgres Dialect = iota + 1
	// SQLite is SQLite, parsed with the TiDB parser (see D22).
	SQLite
)

// String returns the dialect name.
func (d Dialect) String() string {
	switch d {
	case Postgres:
		return "postgres"
	case SQLite:
		return "sqlite"
	}
	return "dialect(" + strconv.Itoa(int(d)) + ")"
}

// ValueKind is the kind of a Value.
type ValueKind uint8

const (
	// Null is SQL NULL (used by IS NULL conditions).
	Null ValueKind = iota
	// Int is an integer literal; Lit holds its decimal text. SQLite's
	// TRUE and FALSE are Int 1 and 0.
	Int
	// Float is a numeric literal that is not an integer, or (PostgreSQL)
	// an integer beyond 32 bits; Lit holds its text as written.
	Float
	// String is a string literal; Lit holds its unquoted text.
	String
	// Bool is TRUE or FALSE; Lit is "true" or "false".
	Bool
	// Bytes is a blob or bit-string literal; Lit holds its text.
	Bytes
	// Arg is a placeholder; Arg holds its 1-based argument position.
	Arg
)

// Value is the right-hand side of an equality condition: a literal, or a
// placeholder that the caller binds to its argument. Values are comparable.
type Value struct {
	Kind ValueKind
	Lit  string // literal text (Int, Float, String, Bool, Bytes)
	Arg  int    // 1-based argument position (Arg): $1 and ?1 are 1, the n-th bare ? is n
}

// String renders the value as SQL-ish text ($n for placeholders).
func (v Value) String() string {
	switch v.Kind {
	case Null:
		return "NULL"
	case String:
		return "'" + strings.ReplaceAll(v.Lit, "'", "''") + "'"
	case Bytes:
		return "x'" + v.Lit + "'"
	case Arg:
		return "$" + strconv.Itoa(v.Arg)
	}
	return v.Lit
}

// conflicts reports whether col = v and col = w cannot both hold. Only
// numbers and booleans of the same kind are compared: strings may compare
// equal under a case-insensitive collation, and values of different kinds
// may compare equal after type affinity, so those are kept.
func (v Value) conflicts(w Value) bool {
	if v.Kind != w.Kind {
		return false
	}
	switch v.Kind {
	case Int, Bool:
		return v.Lit != w.Lit
	case Float:
		a, err1 := strconv.ParseFloat(v.Lit, 64)
		b, err2 := strconv.ParseFloat(w.Lit, 64)
		return err1 == nil && err2 == nil && a != b
	}
	return false
}

// Cond is one condition of a conjunction: Column = Value, or Column IS NULL
// when Value.Kind is Null. Column is the column name within its table.
type Cond struct {
	Column string
	Value  Value
}

// String renders the condition ("col = 5", "col IS NULL").
func (c Cond) String() string {
	if c.Value.Kind == Null {
		return c.Column + " IS NULL"
	}
	return c.Column + " = " + c.Value.String()
}

func cmpCond(a, b Cond) int {
	if c := strings.Compare(a.Column, b.Column); c != 0 {
		return c
	}
	if a.Value.Kind != b.Value.Kind {
		return int(a.Value.Kind) - int(b.Value.Kind)
	}
	if a.Value.Arg != b.Value.Arg {
		return a.Value.Arg - b.Value.Arg
	}
	return strings.Compare(a.Value.Lit, b.Value.Lit)
}

// Conj is a conjunction of conditions, sorted and deduplicated. An empty
// Conj is TRUE: any change to the table may affect the query.
type Conj []Cond

// String renders the conjunction ("a = 1 AND b IS NULL", or "TRUE").
func (c Conj) String() string {
	if len(c) == 0 {
		return "TRUE"
	}
	parts := make([]string, len(c))
	for i, x := range c {
		parts[i] = x.String()
	}
	return strings.Join(parts, " AND ")
}

// DNF is a disjunction of conjunctions. A DNF holding an empty Conj is
// TRUE; a DNF with no conjunction at all is FALSE (no row of the table can
// affect the result, e.g. a contradictory WHERE).
type DNF []Conj

// IsTrue reports whether the DNF contains the empty conjunction.
func (d DNF) IsTrue() bool {
	for _, c := range d {
		if len(c) == 0 {
			return true
		}
	}
	return false
}

// String renders the DNF ("(a = 1) OR (a = 2)", "TRUE", "FALSE").
func (d DNF) String() string {
	if len(d) == 0 {
		return "FALSE"
	}
	if d.IsTrue() {
		return "TRUE"
	}
	parts := make([]string, len(d))
	for i, c := range d {
		parts[i] = "(" + c.String() + ")"
	}
	return strings.Join(parts, " OR ")
}

// Deps maps each table a query reads to its DNF. Table names are lower
// case for SQLite (identifiers are case-insensitive there) and as PostgreSQL
// folds them; a schema prefix is kept ("s.t") except PostgreSQL's "public"
// and SQLite's "main", which are dropped.
type Deps map[string]DNF

// Kind classifies a statement.
type Kind int

const (
	// KindOther is any statement that neither reads nor writes tables as far
	// as the cache is concerned (BEGIN, SAVEPOINT, SET, ...).
	KindOther Kind = iota
	// KindSelect is a query.
	KindSelect
	// KindInsert is an INSERT (or REPLACE).
	KindInsert
	// KindUpdate is an UPDATE.
	KindUpdate
	// KindDelete is a DELETE.
	KindDelete
	// KindTruncate is a TRUNCATE.
	KindTruncate
	// KindDDL is a schema change (CREATE, ALTER, DROP, ...).
	KindDDL
)

var kindNames = [...]string{"other", "select", "insert", "update", "delete", "truncate", "ddl"}

// String returns the kind's name.
func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Query is the result of Analyze.
type Query struct {
	// Kind classifies the statement.
	Kind Kind
	// Cacheable is true for a SELECT whose result may be cached.
	Cacheable bool
	// Reason says why a SELECT is not cacheable ("" when it is).
	Reason string
	// Deps is, for a SELECT, every table it reads with its DNF.
	Deps Deps
	// Tables lists the tables a write modifies (sorted). For DDL it holds
	// the tables named when the parser exposes them; empty means unknown.
	Tables []string
	// Where is, for an UPDATE or DELETE of one table, the DNF its WHERE
	// implies on that table (TRUE when there is no WHERE or it is not
	// resolvable, e.g. UPDATE … FROM): every row the statement changes
	// satisfies it. It is nil for other statements.
	Where DNF
}

// Limits on the size of the DNFs built.
const (
	// MaxInList is the largest IN list turned into a disjunction; a longer
	// one counts as TRUE.
	MaxInList = 50
	// MaxConjunctions is the largest number of conjunctions a DNF may reach
	// while it is built: an OR that would exceed it collapses to TRUE, an
	// AND operand whose distribution would exceed it is left out (both
	// only widen the DNF), and a table's final DNF longer than it is TRUE.
	MaxConjunctions = 64
)

// Analyze parses one SQL statement and extracts what the cache needs. A
// statement the parser cannot read, more than one statement, or a construct
// the analysis cannot follow returns an error wrapping ErrUnsupported.
//
// The result depends only on the text (placeholders are argument
// positions), so callers should memoize it per statement text and treat it
// as read-only: BenchmarkAnalyze measured a two-table join with an IN list
// at about 25 µs for SQLite and 100 µs for PostgreSQL (pg_query_go returns
// the tree as protobuf), close to the cost of a PostgreSQL point query.
// Analyze is safe for concurrent use.
func Analyze(d Dialect, sql string) (*Query, error) {
	switch d {
	case Postgres:
		return analyzePostgres(sql)
	case SQLite:
		return analyzeSQLite(sql)
	}
	return nil, fmt.Errorf("%w: unknown dialect %v", ErrUnsupported, d)
}

func unsupported(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrUnsupported}, args...)...)
}

func (d DNF) normalize() DNF {
	if d.IsTrue() || len(d) > MaxConjunctions {
		return DNF{Conj{}}
	}
	for i := range d {
		slices.SortFunc(d[i], cmpCond)
		d[i] = slices.CompactFunc(d[i], func(a, b Cond) bool { return a == b })
	}
	slices.SortFunc(d, func(a, b Conj) int {
		return slices.CompareFunc(a, b, cmpCond)
	})
	return slices.CompactFunc(d, func(a, b Conj) bool { return slices.Equal(a, b) })
}

// checkNoTable marks a query that reads no table as not cacheable: no
// write could ever invalidate it, and what it computes (the server's
// state, a function of the session) is cheap and may change.
func (q *Query) checkNoTable() {
	if q.Kind == KindSelect && q.Cacheable && len(q.Deps) == 0 {
		q.Cacheable, q.Reason = false, "reads no table"
	}
}

// checkTemp marks a query reading a table in the temporary schema as not
// cacheable (temporary tables are private to a connection). Temporary
// tables named without their schema are not recognised: that needs the
// catalog.
func (q *Query) checkTemp(prefix string) {
	for t := range q.Deps {
		if strings.HasPrefix(t, prefix) && q.Cacheable {
			q.Cacheable, q.Reason = false, "temporary table "+t
		}
	}
}
