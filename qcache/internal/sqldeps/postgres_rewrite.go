//go:build cgo

package sqldeps

import (
	"slices"

	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// RewritePostgres prepares a PostgreSQL INSERT, UPDATE or DELETE of one
// table to report the images of the rows it changes: cols are columns of
// the target table, limit the largest number of pre-images worth reading.
// The statements are built from the parse tree and deparsed. A statement
// that is not such a write, that has a WITH clause, or an UPDATE … WHERE
// CURRENT OF, returns an error wrapping ErrUnsupported.
func RewritePostgres(sql string, cols []string, limit int) (*Rewrite, error) {
	res, root, err := pgParseOne(sql)
	if err != nil {
		return nil, err
	}
	rw := &Rewrite{}
	switch {
	case root.GetInsertStmt() != nil:
		s := root.GetInsertStmt()
		if s.WithClause != nil {
			return nil, unsupported("postgres: INSERT with WITH")
		}
		alias := pgAlias(s.Relation)
		rw.HadReturning = len(s.ReturningList) > 0
		s.ReturningList = append(s.ReturningList, pgColTargets(alias, cols)...)
		if oc := s.OnConflictClause; oc != nil && oc.Action == pg.OnConflictAction_ONCONFLICT_UPDATE {
			// A row that was updated rather than inserted carries the
			// updating transaction in xmax: an inserted row has 0.
			flag, err := pgSnippet(pgFlagSnippet)
			if err != nil {
				return nil, err
			}
			pgRequalify(flag, alias)
			s.ReturningList = append(s.ReturningList, pg.MakeResTargetNodeWithVal(flag, -1))
			rw.UpdatedFlag = true
		}
	case root.GetDeleteStmt() != nil:
		s := root.GetDeleteStmt()
		if s.WithClause != nil {
			return nil, unsupported("postgres: DELETE with WITH")
		}
		rw.HadReturning = len(s.ReturningList) > 0
		s.ReturningList = append(s.ReturningList, pgColTargets(pgAlias(s.Relation), cols)...)
	case root.GetUpdateStmt() != nil:
		s := root.GetUpdateStmt()
		if s.WithClause != nil {
			return nil, unsupported("postgres: UPDATE with WITH")
		}
		if pgHas(s, func(m protoreflect.Message) bool {
			_, ok := m.Interface().(*pg.CurrentOfExpr)
			return ok
		}) {
			return nil, unsupported("postgres: WHERE CURRENT OF")
		}
		alias := pgAlias(s.Relation)
		// The rows an UPDATE locks stay matched when it runs if its WHERE
		// reads nothing but the target row: no FROM, subquery or function.
		rw.RowIDs = len(s.FromClause) > 0 || s.WhereClause != nil && pgHas(s.WhereClause, func(m protoreflect.Message) bool {
			switch m.Interface().(type) {
			case *pg.SubLink, *pg.FuncCall, *pg.SQLValueFunction:
				return true
			}
			return false
		})
		pre, err := pgPreImages(rw, s, alias, cols, limit, res.Version)
		if err != nil {
			return nil, err
		}
		rw.PreImages = pre
		if rw.RowIDs {
			if rw.CheckLocked, err = pgCheckLocked(s.Relation, res.Version); err != nil {
				return nil, err
			}
		}
		rw.HadReturning = len(s.ReturningList) > 0
		s.ReturningList = append(s.ReturningList, pgColTargets(alias, cols)...)
	default:
		return nil, unsupported("postgres: not an INSERT, UPDATE or DELETE")
	}
	rw.Extra = len(cols)
	if rw.UpdatedFlag {
		rw.Extra++
	}
	if rw.Returning, err = pg.Deparse(res); err != nil {
		return nil, unsupported("postgres: deparse: %v", err)
	}
	return rw, nil
}

// pgAlias is the name a statement's target is referred to by.
func pgAlias(rel *pg.RangeVar) string {
	if rel.Alias != nil && rel.Alias.Aliasname != "" {
		return rel.Alias.Aliasname
	}
	return rel.Relname
}

func pgColRef(qual, col string) *pg.Node {
	return pg.MakeColumnRefNode([]*pg.Node{pg.MakeStrNode(qual), pg.MakeStrNode(col)}, -1)
}

func pgColTargets(alias string, cols []string) []*pg.Node {
	out := make([]*pg.Node, len(cols))
	for i, c := range cols {
		out[i] = pg.MakeResTargetNodeWithVal(pgColRef(alias, c), -1)
	}
	return out
}

// pgSnippet parses a one-item SELECT and returns its expression.
func pgSnippet(sql string) (*pg.Node, error) {
	sel, err := pgSnippetSelect(sql)
	if err != nil {
		return nil, err
	}
	return sel.TargetList[0].GetResTarget().Val, nil
}

func pgSnippetSelect(sql string) (*pg.SelectStmt, error) {
	res, err := pg.Parse(sql)
	if err != nil {
		return nil, unsupported("postgres: snippet: %v", err)
	}
	return res.Stmts[0].Stmt.GetSelectStmt(), nil
}

// The statements the rewrites start from.
const (
	pgFlagSnippet  = "SELECT qcache_t.xmax::text <> '0'"
	pgPreSnippet   = "SELECT qcache_t.tableoid::int8, qcache_t.ctid::text FROM qcache_t FOR UPDATE OF qcache_t LIMIT 1"
	pgCheckSnippet = "SELECT qcache_t.tableoid::int8, qcache_t.ctid::text FROM qcache_t WHERE qcache_t.ctid = ANY($1::tid[])"
)

// pgRequalify replaces the qualifier qcache_t of every column reference
// under n by alias.
func pgRequalify(n *pg.Node, alias string) {
	walkPB(n.ProtoReflect(), func(m protoreflect.Message) bool {
		if c, ok := m.Interface().(*pg.ColumnRef); ok && len(c.Fields) == 2 &&
			c.Fields[0].GetString_().GetSval() == "qcache_t" {
			c.Fields[0] = pg.MakeStrNode(alias)
		}
		return true
	})
}

// pgHas reports whether a node under root satisfies f.
func pgHas(root protoreflect.ProtoMessage, f func(protoreflect.Message) bool) bool {
	found := false
	walkPB(root.ProtoReflect(), func(m protoreflect.Message) bool {
		if !found && f(m) {
			found = true
		}
		return !found
	})
	return found
}

// pgPreImages builds the SELECT of the rows an UPDATE matches: its
// relation, FROM list and WHERE, FOR UPDATE OF its target.
func pgPreImages(rw *Rewrite, u *pg.UpdateStmt, alias string, cols []string, limit int, version int32) (string, error) {
	sel, err := pgSnippetSelect(pgPreSnippet)
	if err != nil {
		return "", err
	}
	ids := sel.TargetList
	sel.TargetList = nil
	if rw.RowIDs {
		for _, t := range ids {
			pgRequalify(t, alias)
		}
		sel.TargetList = ids
	}
	sel.TargetList = append(sel.TargetList, pgColTargets(alias, cols)...)
	if len(sel.TargetList) == 0 {
		sel.TargetList = []*pg.Node{pg.MakeResTargetNodeWithVal(pg.MakeAConstIntNode(1, -1), -1)}
	}
	rel := proto.Clone(u.Relation).(*pg.RangeVar)
	sel.FromClause = []*pg.Node{{Node: &pg.Node_RangeVar{RangeVar: rel}}}
	for _, f := range u.FromClause {
		sel.FromClause = append(sel.FromClause, proto.Clone(f).(*pg.Node))
	}
	if u.WhereClause != nil {
		sel.WhereClause = proto.Clone(u.WhereClause).(*pg.Node)
	}
	// The SELECT takes only the parameters it uses (PostgreSQL cannot
	// type an unused one), renumbered in order of first use.
	renum := map[int32]int32{}
	for _, n := range append(slices.Clone(sel.FromClause[1:]), sel.WhereClause) {
		if n == nil {
			continue
		}
		walkPB(n.ProtoReflect(), func(m protoreflect.Message) bool {
			if pr, ok := m.Interface().(*pg.ParamRef); ok {
				if _, seen := renum[pr.Number]; !seen {
					renum[pr.Number] = int32(len(rw.PreImageArgs) + 1)
					rw.PreImageArgs = append(rw.PreImageArgs, int(pr.Number))
				}
				pr.Number = renum[pr.Number]
			}
			return true
		})
	}
	for _, lc := range sel.LockingClause {
		for _, r := range lc.GetLockingClause().LockedRels {
			r.GetRangeVar().Relname = alias
		}
	}
	sel.LimitCount = pg.MakeAConstIntNode(int64(limit)+1, -1)
	return pgDeparseSelect(sel, version)
}

// pgCheckLocked builds the query that, after an UPDATE, returns the rows
// still visible at the given ctids: the rows the pre-image read locked and
// the UPDATE did not change.
func pgCheckLocked(rel *pg.RangeVar, version int32) (string, error) {
	sel, err := pgSnippetSelect(pgCheckSnippet)
	if err != nil {
		return "", err
	}
	r := proto.Clone(rel).(*pg.RangeVar)
	r.Alias = &pg.Alias{Aliasname: "qcache_t"}
	sel.FromClause = []*pg.Node{{Node: &pg.Node_RangeVar{RangeVar: r}}}
	return pgDeparseSelect(sel, version)
}

func pgDeparseSelect(sel *pg.SelectStmt, version int32) (string, error) {
	out, err := pg.Deparse(&pg.ParseResult{Version: version, Stmts: []*pg.RawStmt{{Stmt: &pg.Node{Node: &pg.Node_SelectStmt{SelectStmt: sel}}}}})
	if err != nil {
		return "", unsupported("postgres: deparse: %v", err)
	}
	return out, nil
}
