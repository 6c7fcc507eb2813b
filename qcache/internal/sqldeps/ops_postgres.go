//go:build cgo

package sqldeps

import (
	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

func classifyPostgres(sql string) (Op, error) {
	_, root, err := pgParseOne(sql)
	if err != nil {
		return 0, err
	}
	s := root.GetSelectStmt()
	if s == nil {
		return 0, unsupported("postgres: not a SELECT")
	}
	return pgOp(s), nil
}

func pgOp(s *pg.SelectStmt) Op {
	if s.Op != pg.SetOperation_SETOP_NONE && s.Op != pg.SetOperation_SET_OPERATION_UNDEFINED {
		return OpFetch
	}
	if len(s.ValuesLists) > 0 {
		return OpFetch
	}
	grouped := len(s.GroupClause) > 0 || s.HavingClause != nil
	if len(s.TargetList) == 1 && !grouped {
		switch v := s.TargetList[0].GetResTarget().GetVal(); {
		case v.GetFuncCall() != nil && v.GetFuncCall().Over == nil && pgName(v.GetFuncCall().Funcname) == "count":
			return OpCount
		case v.GetSubLink().GetSubLinkType() == pg.SubLinkType_EXISTS_SUBLINK && len(s.FromClause) == 0:
			return OpExists
		}
	}
	if grouped {
		return OpAggregate
	}
	consts := true
	for _, t := range s.TargetList {
		v := t.GetResTarget().GetVal()
		if pgHasAggregate(v) {
			return OpAggregate
		}
		if v.GetAConst() == nil {
			consts = false
		}
	}
	if consts && s.LimitOffset == nil && s.LimitCount.GetAConst().GetIval().GetIval() == 1 {
		return OpExists
	}
	return OpFetch
}

// pgHasAggregate reports whether an expression calls an aggregate outside
// subqueries and window functions.
func pgHasAggregate(n *pg.Node) bool {
	if n == nil {
		return false
	}
	found := false
	walkPB(n.ProtoReflect(), func(m protoreflect.Message) bool {
		switch x := m.Interface().(type) {
		case *pg.SubLink:
			return false
		case *pg.FuncCall:
			if x.Over != nil {
				return false
			}
			if x.AggStar || x.AggDistinct || x.AggFilter != nil || len(x.AggOrder) > 0 || aggregates[pgName(x.Funcname)] {
				found = true
			}
		}
		return !found
	})
	return found
}
