package qcache

import (
	"maps"
	"slices"

	"github.com/cachekit/cachekit/qcache/internal/sqldeps"
)

// SQLTables returns table extractors for [TableOptions].Reads and
// [TableOptions].Writes that parse the SQL with the same parser as
// [GranularPolicy] (PostgreSQL's own grammar through pg_query_go, TiDB's for
// SQLite), so that a [TablePolicy] built on them differs from a
// [GranularPolicy] only by its invalidation granularity.
//
// reads reports the tables a cacheable SELECT reads (every table of its FROM
// lists, joins, subqueries, CTEs and UNION arms), and (nil, false) for a
// statement that is not a cacheable SELECT (a parse failure, a volatile
// function, a locking read, a write). writes reports the tables an INSERT,
// UPDATE, DELETE, TRUNCATE or DDL statement writes, (nil, true) for a
// SELECT or a statement that writes no table (BEGIN, SET, SAVEPOINT), and
// (nil, false), which invalidates every cached query, for a statement it
// cannot parse and for a write whose tables it cannot name (a write of
// syntax the parser does not read reports the table its leading keywords
// name, as GranularPolicy does). Table names are
// spelled as the parser spells them (see [GranularOptions].Tables).
//
// Both functions memoize the analysis per statement text (up to 10,000
// statements, then start over) and are safe for concurrent use. An unknown
// dialect gives functions that cache nothing and invalidate everything.
//
// Without cgo, the PostgreSQL parser is missing: reads then caches nothing
// and writes invalidates everything.
func SQLTables(d Dialect) (reads func(sql string) ([]string, bool), writes func(sql string) ([]string, bool)) {
	m := &tableMemo{}
	switch d {
	case SQLite:
		m.dialect = sqldeps.SQLite
	case Postgres:
		m.dialect = sqldeps.Postgres
	}
	reads = func(sql string) ([]string, bool) {
		a := m.get(sql)
		return a.reads, a.cacheable
	}
	writes = func(sql string) ([]string, bool) {
		a := m.get(sql)
		return a.writes, a.known
	}
	return reads, writes
}

// tableMemo memoizes the table analysis of statements for [SQLTables].
type tableMemo struct {
	dialect  sqldeps.Dialect // 0 for an unknown dialect
	analyzed textMemo[tableAnalysis]
}

// tableAnalysis is what [SQLTables] reports for one statement. Its slices
// are shared by every caller and must not be modified.
type tableAnalysis struct {
	reads     []string // sorted tables of a cacheable SELECT
	cacheable bool
	writes    []string // sorted tables a write modifies
	known     bool     // writes is complete
}

// get returns the memoized analysis of sql, analysing it on first use.
func (m *tableMemo) get(sql string) tableAnalysis {
	return m.analyzed.get(sql, m.analyze)
}

// analyze parses sql and derives the tables it reads and writes.
func (m *tableMemo) analyze(sql string) tableAnalysis {
	if m.dialect == 0 {
		return tableAnalysis{}
	}
	q, err := sqldeps.Analyze(m.dialect, sql)
	if err != nil {
		// Not cacheable; a write of syntax the parser does not read
		// (RETURNING, upserts on SQLite) writes the table its leading
		// keywords name, as for GranularPolicy; anything else invalidates
		// everything.
		if t, ok := writeTarget(m.dialect, sql); ok {
			return tableAnalysis{writes: []string{t}, known: true}
		}
		return tableAnalysis{}
	}
	switch q.Kind {
	case sqldeps.KindSelect:
		a := tableAnalysis{known: true}
		if q.Cacheable && len(q.Deps) > 0 {
			a.reads = slices.Sorted(maps.Keys(q.Deps))
			a.cacheable = true
		}
		return a
	case sqldeps.KindOther:
		return tableAnalysis{known: true}
	default: // INSERT, UPDATE, DELETE, TRUNCATE, DDL
		if len(q.Tables) == 0 {
			return tableAnalysis{}
		}
		return tableAnalysis{writes: slices.Clone(q.Tables), known: true}
	}
}
