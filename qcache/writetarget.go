package qcache

import (
	"strings"

	"github.com/cachekit/cachekit/qcache/internal/sqldeps"
)

// writeTarget reads the table a write the extractor cannot parse modifies,
// from its leading keywords: INSERT [OR …] INTO t, REPLACE INTO t,
// UPDATE [OR …] [ONLY] t, DELETE FROM [ONLY] t (ONLY on PostgreSQL, where
// it is reserved), with t an identifier
// (quoted or not) optionally qualified by a schema. It is the fallback for
// syntax the SQLite grammar does not read (RETURNING, ON CONFLICT upserts,
// INSERT OR REPLACE), so that such a write bumps its table's epoch rather
// than the global one. The name is spelled as sqldeps spells tables: lower
// case on SQLite, folded unless quoted on PostgreSQL, without the default
// schema. ok is false for anything else, a WITH clause and several
// statements among them.
func writeTarget(d sqldeps.Dialect, sql string) (table string, ok bool) {
	l := lexer{s: sql}
	switch {
	case l.keyword("INSERT"):
		l.orConflict()
		if !l.keyword("INTO") {
			return "", false
		}
	case l.keyword("REPLACE"):
		if !l.keyword("INTO") {
			return "", false
		}
	case l.keyword("UPDATE"):
		l.orConflict()
		l.only(d)
	case l.keyword("DELETE"):
		if !l.keyword("FROM") {
			return "", false
		}
		l.only(d)
	default:
		return "", false
	}
	parts := make([]string, 0, 2)
	for {
		l.skip()
		quoted := l.i < len(l.s) && (l.s[l.i] == '"' || l.s[l.i] == '`' || l.s[l.i] == '[')
		name, ok := l.ident()
		if !ok || name == "" {
			return "", false
		}
		if d == sqldeps.SQLite || !quoted {
			name = strings.ToLower(name)
		}
		parts = append(parts, name)
		if l.skip(); l.i >= len(l.s) || l.s[l.i] != '.' || len(parts) == 2 {
			break
		}
		l.i++
	}
	if !l.single() {
		return "", false
	}
	if len(parts) == 2 && (d == sqldeps.SQLite && parts[0] == "main" || d == sqldeps.Postgres && parts[0] == "public") {
		parts = parts[1:]
	}
	return strings.Join(parts, "."), true
}

// orConflict reads SQLite's optional OR ROLLBACK|ABORT|REPLACE|FAIL|IGNORE.
func (l *lexer) orConflict() {
	save := l.i
	if !l.keyword("OR") {
		return
	}
	for _, kw := range []string{"ROLLBACK", "ABORT", "REPLACE", "FAIL", "IGNORE"} {
		if l.keyword(kw) {
			return
		}
	}
	l.i = save
}

// only reads PostgreSQL's ONLY (on SQLite "only" may name a table).
func (l *lexer) only(d sqldeps.Dialect) {
	if d == sqldeps.Postgres {
		l.keyword("ONLY")
	}
}
