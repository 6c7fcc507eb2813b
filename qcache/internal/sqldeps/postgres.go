//go:build cgo

package sqldeps

import (
	"slices"
	"strconv"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// pgVolatile lists PostgreSQL functions whose result may change between two
// executions of the same statement. User-defined functions are assumed
// stable: the catalog is not consulted.
var pgVolatile = map[string]bool{
	"now": true, "random": true, "random_normal": true, "setseed": true, "nextval": true,
	"currval": true, "lastval": true, "setval": true, "clock_timestamp": true,
	"statement_timestamp": true, "transaction_timestamp": true, "timeofday": true,
	"gen_random_uuid": true, "uuid_generate_v1": true, "uuid_generate_v4": true,
	"uuidv4": true, "uuidv7": true, "txid_current": true, "pg_current_xact_id": true,
	"pg_sleep": true, "pg_backend_pid": true, "current_setting": true, "set_config": true,
	"pg_advisory_lock": true, "pg_try_advisory_lock": true, "dblink": true,
	"pg_current_wal_lsn": true, "pg_current_wal_insert_lsn": true, "pg_current_wal_flush_lsn": true,
	"pg_last_wal_replay_lsn": true, "pg_last_wal_receive_lsn": true, "pg_current_snapshot": true,
	"txid_current_snapshot": true, "pg_logical_emit_message": true, "pg_xact_status": true,
	"txid_status": true, "pg_current_xact_id_if_assigned": true, "txid_current_if_assigned": true,
	"pg_postmaster_start_time": true, "pg_conf_load_time": true, "inet_client_port": true,
}

// pgParseOne parses sql, which must hold exactly one statement, and
// returns the tree and the statement.
func pgParseOne(sql string) (*pg.ParseResult, *pg.Node, error) {
	res, err := pg.Parse(sql)
	if err != nil {
		return nil, nil, unsupported("postgres: %v", err)
	}
	if len(res.Stmts) != 1 {
		return nil, nil, unsupported("postgres: %d statements", len(res.Stmts))
	}
	return res, res.Stmts[0].Stmt, nil
}

func analyzePostgres(sql string) (*Query, error) {
	_, root, err := pgParseOne(sql)
	if err != nil {
		return nil, err
	}
	reason := ""
	walkPB(root.ProtoReflect(), func(m protoreflect.Message) bool {
		if reason != "" {
			return false
		}
		switch n := m.Interface().(type) {
		case *pg.FuncCall:
			if name := pgName(n.Funcname); pgVolatile[name] {
				reason = "volatile function " + name + "()"
			}
		case *pg.SQLValueFunction:
			reason = "current time, date or user"
		case *pg.SelectStmt:
			if len(n.LockingClause) > 0 {
				reason = "locking clause"
			}
		case *pg.RangeFunction, *pg.RangeTableFunc, *pg.RangeTableSample:
			reason = "function in FROM"
		}
		return true
	})
	// A write with a data-modifying WITH writes tables beyond its target.
	var with *pg.WithClause
	switch {
	case root.GetInsertStmt() != nil:
		with = root.GetInsertStmt().WithClause
	case root.GetUpdateStmt() != nil:
		with = root.GetUpdateStmt().WithClause
	case root.GetDeleteStmt() != nil:
		with = root.GetDeleteStmt().WithClause
	}
	for _, c := range with.GetCtes() {
		if c.GetCommonTableExpr().GetCtequery().GetSelectStmt() == nil {
			return nil, unsupported("postgres: data-modifying WITH")
		}
	}
	switch {
	case root.GetSelectStmt() != nil:
		ir, err := pgSelect(root.GetSelectStmt())
		if err != nil {
			return nil, err
		}
		a := newAnalyzer()
		a.selectStmt(ir, nil, nil)
		if into := root.GetSelectStmt().IntoClause; into != nil {
			return &Query{Kind: KindDDL, Tables: []string{pgTable(into.Rel)}}, nil
		}
		q := &Query{Kind: KindSelect, Deps: a.finish(), Cacheable: reason == "", Reason: reason}
		q.checkTemp("pg_temp.")
		q.checkNoTable()
		return q, nil
	case root.GetInsertStmt() != nil:
		return &Query{Kind: KindInsert, Tables: []string{pgTable(root.GetInsertStmt().Relation)}}, nil
	case root.GetUpdateStmt() != nil:
		u := root.GetUpdateStmt()
		return pgWhereWrite(KindUpdate, u.Relation, u.WhereClause, len(u.FromClause) > 0)
	case root.GetDeleteStmt() != nil:
		d := root.GetDeleteStmt()
		return pgWhereWrite(KindDelete, d.Relation, d.WhereClause, len(d.UsingClause) > 0)
	case root.GetTruncateStmt() != nil:
		q := &Query{Kind: KindTruncate}
		for _, r := range root.GetTruncateStmt().Relations {
			if rv := r.GetRangeVar(); rv != nil {
				q.Tables = append(q.Tables, pgTable(rv))
			}
		}
		slices.Sort(q.Tables)
		return q, nil
	case root.GetTransactionStmt() != nil, root.GetVariableSetStmt() != nil,
		root.GetVariableShowStmt() != nil, root.GetListenStmt() != nil,
		root.GetPrepareStmt() != nil, root.GetDeallocateStmt() != nil:
		return &Query{Kind: KindOther}, nil
	}
	// Anything else may change data or schema: DDL, with the table when the
	// statement names exactly one.
	q := &Query{Kind: KindDDL}
	switch {
	case root.GetCreateStmt() != nil:
		q.Tables = []string{pgTable(root.GetCreateStmt().Relation)}
	case root.GetAlterTableStmt() != nil:
		q.Tables = []string{pgTable(root.GetAlterTableStmt().Relation)}
	case root.GetIndexStmt() != nil:
		q.Tables = []string{pgTable(root.GetIndexStmt().Relation)}
	case root.GetDropStmt() != nil && root.GetDropStmt().RemoveType == pg.ObjectType_OBJECT_TABLE:
		for _, o := range root.GetDropStmt().Objects {
			var names []string
			for _, n := range o.GetList().GetItems() {
				names = append(names, n.GetString_().GetSval())
			}
			if len(names) > 0 {
				rv := &pg.RangeVar{Relname: names[len(names)-1]}
				if len(names) > 1 {
					rv.Schemaname = names[len(names)-2]
				}
				q.Tables = append(q.Tables, pgTable(rv))
			}
		}
		slices.Sort(q.Tables)
	}
	return q, nil
}

func pgWhereWrite(kind Kind, rel *pg.RangeVar, where *pg.Node, joined bool) (*Query, error) {
	t := pgTable(rel)
	q := &Query{Kind: kind, Tables: []string{t}}
	if joined || where == nil {
		q.Where = DNF{Conj{}}
		return q, nil
	}
	alias := rel.Relname
	if rel.Alias != nil {
		alias = rel.Alias.Aliasname
	}
	ir := &selectIR{from: []*fromItem{{table: t, alias: alias}}, where: pgExpr(where)}
	var err error
	if ir.subs, err = pgSubs(where); err != nil {
		return nil, err
	}
	a := newAnalyzer()
	a.selectStmt(ir, nil, nil)
	q.Where = a.finish()[t]
	return q, nil
}

func walkPB(m protoreflect.Message, f func(protoreflect.Message) bool) {
	if !f(m) {
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind || fd.IsMap() {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				walkPB(l.Get(i).Message(), f)
			}
		} else {
			walkPB(v.Message(), f)
		}
		return true
	})
}

func pgName(nodes []*pg.Node) string {
	if len(nodes) == 0 {
		return ""
	}
	return strings.ToLower(nodes[len(nodes)-1].GetString_().GetSval())
}

func pgTable(rv *pg.RangeVar) string {
	if rv == nil {
		return ""
	}
	if rv.Schemaname != "" && rv.Schemaname != "public" {
		return rv.Schemaname + "." + rv.Relname
	}
	return rv.Relname
}

func pgSelect(s *pg.SelectStmt) (*selectIR, error) {
	var ir *selectIR
	if s.Op != pg.SetOperation_SETOP_NONE && s.Op != pg.SetOperation_SET_OPERATION_UNDEFINED {
		l, err := pgSelect(s.Larg)
		if err != nil {
			return nil, err
		}
		r, err := pgSelect(s.Rarg)
		if err != nil {
			return nil, err
		}
		ir = &selectIR{arms: []*selectIR{l, r}}
		if ir.subs, err = pgSubs(s); err != nil {
			return nil, err
		}
	} else {
		ir = &selectIR{}
		for _, n := range s.FromClause {
			f, err := pgFrom(n)
			if err != nil {
				return nil, err
			}
			ir.from = append(ir.from, f)
		}
		if s.WhereClause != nil {
			ir.where = pgExpr(s.WhereClause)
		}
		var err error
		if ir.subs, err = pgSubs(s); err != nil {
			return nil, err
		}
	}
	if w := s.WithClause; w != nil {
		ir.recursive = w.Recursive
		for _, c := range w.Ctes {
			ce := c.GetCommonTableExpr()
			if ce == nil {
				return nil, unsupported("postgres: WITH item")
			}
			sel := ce.Ctequery.GetSelectStmt()
			if sel == nil {
				return nil, unsupported("postgres: data-modifying WITH")
			}
			body, err := pgSelect(sel)
			if err != nil {
				return nil, err
			}
			ir.ctes = append(ir.ctes, cte{name: ce.Ctename, body: body})
		}
	}
	return ir, nil
}

// pgSubs collects the subqueries in expressions of root, not descending into
// FROM items (RangeSubselect), WITH clauses or other SELECTs.
func pgSubs(root protoreflect.ProtoMessage) ([]*selectIR, error) {
	var subs []*selectIR
	var err error
	rootM := root.ProtoReflect()
	walkPB(rootM, func(m protoreflect.Message) bool {
		if m == rootM {
			return true
		}
		switch n := m.Interface().(type) {
		case *pg.SubLink:
			if n.Testexpr != nil {
				more, e := pgSubs(n.Testexpr)
				subs = append(subs, more...)
				if e != nil && err == nil {
					err = e
				}
			}
			sel := n.Subselect.GetSelectStmt()
			if sel == nil {
				if err == nil {
					err = unsupported("postgres: subquery")
				}
				return false
			}
			s, e := pgSelect(sel)
			if e != nil && err == nil {
				err = e
			}
			if s != nil {
				subs = append(subs, s)
			}
			return false
		case *pg.RangeSubselect, *pg.WithClause, *pg.SelectStmt, *pg.RangeVar:
			return false
		}
		return true
	})
	return subs, err
}

func pgFrom(n *pg.Node) (*fromItem, error) {
	switch {
	case n.GetRangeVar() != nil:
		rv := n.GetRangeVar()
		alias := rv.Relname
		if rv.Alias != nil {
			alias = rv.Alias.Aliasname
		}
		return &fromItem{table: pgTable(rv), alias: alias}, nil
	case n.GetRangeSubselect() != nil:
		rs := n.GetRangeSubselect()
		sel := rs.Subquery.GetSelectStmt()
		if sel == nil {
			return nil, unsupported("postgres: subquery in FROM")
		}
		sub, err := pgSelect(sel)
		if err != nil {
			return nil, err
		}
		return &fromItem{derived: sub, alias: rs.GetAlias().GetAliasname(), lateral: rs.Lateral}, nil
	case n.GetJoinExpr() != nil:
		j := n.GetJoinExpr()
		l, err := pgFrom(j.Larg)
		if err != nil {
			return nil, err
		}
		r, err := pgFrom(j.Rarg)
		if err != nil {
			return nil, err
		}
		f := &fromItem{left: l, right: r}
		switch j.Jointype {
		case pg.JoinType_JOIN_INNER:
		case pg.JoinType_JOIN_LEFT:
			f.jt = joinLeft
		case pg.JoinType_JOIN_RIGHT:
			f.jt = joinRight
		case pg.JoinType_JOIN_FULL:
			f.jt = joinFull
		default:
			return nil, unsupported("postgres: join type %v", j.Jointype)
		}
		if j.Quals != nil {
			f.on = pgExpr(j.Quals)
		}
		if !j.IsNatural {
			for _, u := range j.UsingClause {
				f.using = append(f.using, u.GetString_().GetSval())
			}
		}
		return f, nil
	case n.GetRangeFunction() != nil:
		// A function in FROM reads no table we know of (the statement is
		// marked uncacheable).
		return &fromItem{alias: n.GetRangeFunction().GetAlias().GetAliasname()}, nil
	}
	return nil, unsupported("postgres: FROM item")
}

func pgExpr(n *pg.Node) expr {
	switch {
	case n.GetBoolExpr() != nil:
		b := n.GetBoolExpr()
		var out []expr
		for _, a := range b.Args {
			out = append(out, pgExpr(a))
		}
		switch b.Boolop {
		case pg.BoolExprType_AND_EXPR:
			return andExpr(out)
		case pg.BoolExprType_OR_EXPR:
			return orExpr(out)
		}
	case n.GetAExpr() != nil:
		e := n.GetAExpr()
		if pgName(e.Name) != "=" {
			return trueExpr{}
		}
		switch e.Kind {
		case pg.A_Expr_Kind_AEXPR_OP:
			return eqExpr{pgOperand(e.Lexpr), pgOperand(e.Rexpr)}
		case pg.A_Expr_Kind_AEXPR_IN:
			in := inExpr{l: pgOperand(e.Lexpr)}
			list := e.Rexpr.GetList()
			if list == nil {
				return trueExpr{}
			}
			for _, v := range list.Items {
				in.vals = append(in.vals, pgOperand(v))
			}
			return in
		}
	case n.GetNullTest() != nil:
		t := n.GetNullTest()
		if t.Nulltesttype == pg.NullTestType_IS_NULL {
			return nullExpr{pgOperand(t.Arg)}
		}
	}
	return trueExpr{}
}

func pgOperand(n *pg.Node) operand {
	switch {
	case n == nil:
	case n.GetColumnRef() != nil:
		var names []string
		for _, f := range n.GetColumnRef().Fields {
			s := f.GetString_()
			if s == nil {
				return operand{} // a star
			}
			names = append(names, s.Sval)
		}
		switch len(names) {
		case 1:
			return operand{kind: opCol, col: colRef{name: names[0]}}
		case 2:
			return operand{kind: opCol, col: colRef{qual: names[0], name: names[1]}}
		}
	case n.GetParamRef() != nil:
		return operand{kind: opVal, val: Value{Kind: Arg, Arg: int(n.GetParamRef().Number)}}
	case n.GetTypeCast() != nil:
		// 'x'::type and $1::type: the cast value, canonicalised later by
		// the column type like any other value.
		if op := pgOperand(n.GetTypeCast().Arg); op.kind == opVal {
			return op
		}
	case n.GetAConst() != nil:
		c := n.GetAConst()
		switch {
		case c.Isnull:
			return operand{kind: opVal, val: Value{Kind: Null}}
		case c.GetIval() != nil:
			return operand{kind: opVal, val: Value{Kind: Int, Lit: strconv.FormatInt(int64(c.GetIval().Ival), 10)}}
		case c.GetFval() != nil:
			return operand{kind: opVal, val: Value{Kind: Float, Lit: c.GetFval().Fval}}
		case c.GetSval() != nil:
			return operand{kind: opVal, val: Value{Kind: String, Lit: c.GetSval().Sval}}
		case c.GetBoolval() != nil:
			lit := "false"
			if c.GetBoolval().Boolval {
				lit = "true"
			}
			return operand{kind: opVal, val: Value{Kind: Bool, Lit: lit}}
		case c.GetBsval() != nil:
			return operand{kind: opVal, val: Value{Kind: Bytes, Lit: c.GetBsval().Bsval}}
		default:
			// A_Const without a value set is integer 0.
			return operand{kind: opVal, val: Value{Kind: Int, Lit: "0"}}
		}
	}
	return operand{}
}
