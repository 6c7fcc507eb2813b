package sqldeps

import (
	"strings"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
)

func classifySQLite(sql string) (Op, error) {
	p := parserPool.Get().(*parser.Parser)
	defer parserPool.Put(p)
	stmts, _, err := p.Parse(sql, "", "")
	if err != nil {
		return 0, unsupported("sqlite: %v", err)
	}
	if len(stmts) != 1 {
		return 0, unsupported("sqlite: %d statements", len(stmts))
	}
	switch s := stmts[0].(type) {
	case *ast.SelectStmt:
		return tidbOp(s), nil
	case *ast.SetOprStmt:
		return OpFetch, nil
	}
	return 0, unsupported("sqlite: not a SELECT")
}

func tidbOp(s *ast.SelectStmt) Op {
	if s.Fields == nil {
		return OpFetch
	}
	fields := s.Fields.Fields
	if len(fields) == 1 && s.GroupBy == nil && s.Having == nil {
		switch e := fields[0].Expr.(type) {
		case *ast.AggregateFuncExpr:
			if strings.EqualFold(e.F, "count") {
				return OpCount
			}
		case *ast.ExistsSubqueryExpr:
			if s.From == nil && !e.Not {
				return OpExists
			}
		}
	}
	if s.GroupBy != nil || s.Having != nil {
		return OpAggregate
	}
	consts := true
	for _, f := range fields {
		if f.Expr == nil {
			consts = false
			continue
		}
		var v aggFinder
		f.Expr.Accept(&v)
		if v.found {
			return OpAggregate
		}
		if _, ok := f.Expr.(ast.ValueExpr); !ok {
			consts = false
		}
	}
	if consts && s.Limit != nil && s.Limit.Offset == nil {
		if v, ok := s.Limit.Count.(ast.ValueExpr); ok && v.GetValue() == uint64(1) {
			return OpExists
		}
	}
	return OpFetch
}

// aggFinder finds an aggregate function outside subqueries and window
// functions.
type aggFinder struct{ found bool }

func (f *aggFinder) Enter(n ast.Node) (ast.Node, bool) {
	switch n := n.(type) {
	case *ast.SubqueryExpr, *ast.WindowFuncExpr:
		return n, true
	case *ast.AggregateFuncExpr:
		f.found = true
	case *ast.FuncCallExpr:
		if aggregates[n.FnName.L] {
			f.found = true
		}
	}
	return n, f.found
}

func (f *aggFinder) Leave(n ast.Node) (ast.Node, bool) { return n, true }
