package sqldeps

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/mysql"
	"github.com/pingcap/tidb/pkg/parser/opcode"
	"github.com/pingcap/tidb/pkg/parser/test_driver"
)

// sqliteMode makes the MySQL grammar closer to SQLite's: "x" is an
// identifier, || concatenates, a backslash in a string is an ordinary
// character.
const sqliteMode = mysql.ModeANSIQuotes | mysql.ModePipesAsConcat | mysql.ModeNoBackslashEscapes

// sqliteVolatile lists the SQLite functions whose result may change between
// two executions of the same statement (the date functions read 'now').
var sqliteVolatile = map[string]bool{
	"random": true, "randomblob": true, "changes": true, "total_changes": true,
	"last_insert_rowid": true, "date": true, "time": true, "datetime": true,
	"julianday": true, "unixepoch": true, "strftime": true, "timediff": true,
	"current_timestamp": true, "current_date": true, "current_time": true,
	"now": true, "localtime": true, "localtimestamp": true, "sysdate": true,
	"curdate": true, "curtime": true, "utc_timestamp": true, "rand": true, "uuid": true,
	"sqlite_offset": true, "load_extension": true,
}

// parserPool holds TiDB parsers (one is not safe for concurrent use, and
// creating one costs more than parsing a short statement).
var parserPool = sync.Pool{New: func() any {
	p := parser.New()
	p.SetSQLMode(sqliteMode)
	return p
}}

func analyzeSQLite(sql string) (*Query, error) {
	// MySQL executes the text of /*! ... */ and TiDB the text of
	// /*T! ... */ comments, which SQLite ignores: refuse them rather than
	// read conditions SQLite does not apply.
	if strings.Contains(sql, "/*!") || strings.Contains(strings.ToUpper(sql), "/*T!") {
		return nil, unsupported("sqlite: MySQL executable comment")
	}
	// The statements share memory with the parser: return it only when
	// they are no longer used.
	p := parserPool.Get().(*parser.Parser)
	defer parserPool.Put(p)
	stmts, _, err := p.Parse(sql, "", "")
	if err != nil {
		return nil, fmt.Errorf("%w: sqlite: %v", ErrUnsupported, err)
	}
	if len(stmts) != 1 {
		return nil, unsupported("sqlite: %d statements", len(stmts))
	}
	return sqliteStmt(stmts[0])
}

// checker walks a whole statement for what makes it uncacheable or
// unanalysable.
type checker struct {
	reason string
	bad    string
	params []*test_driver.ParamMarkerExpr
}

func (c *checker) Enter(n ast.Node) (ast.Node, bool) {
	switch n := n.(type) {
	case *ast.FuncCallExpr:
		if sqliteVolatile[n.FnName.L] && c.reason == "" {
			c.reason = "volatile function " + n.FnName.L + "()"
		}
	case *ast.SelectStmt:
		if n.LockInfo != nil && n.LockInfo.LockType != ast.SelectLockNone && c.reason == "" {
			c.reason = "locking clause"
		}
		if n.Kind != ast.SelectStmtKindSelect {
			c.bad = "TABLE or VALUES statement"
		}
	case *ast.VariableExpr:
		c.bad = "variable or named parameter " + n.Name
	case *test_driver.ParamMarkerExpr:
		c.params = append(c.params, n)
	case *ast.ColumnName:
		// MySQL reads SQLite's $name and $1 parameters as identifiers.
		if strings.HasPrefix(n.Name.O, "$") || strings.HasPrefix(n.Table.O, "$") {
			c.bad = "parameter " + n.Name.O
		}
	}
	return n, false
}

func (c *checker) Leave(n ast.Node) (ast.Node, bool) { return n, true }

func sqliteStmt(stmt ast.StmtNode) (*Query, error) {
	var ck checker
	stmt.Accept(&ck)
	if ck.bad != "" {
		return nil, unsupported("sqlite: %s", ck.bad)
	}
	// The parser leaves the numbering of ? to its planner: number them in
	// text order, as SQLite does.
	slices.SortFunc(ck.params, func(a, b *test_driver.ParamMarkerExpr) int { return a.Offset - b.Offset })
	for i, p := range ck.params {
		p.Order = i
	}
	switch s := stmt.(type) {
	case *ast.SelectStmt, *ast.SetOprStmt:
		ir, err := tidbSelect(s)
		if err != nil {
			return nil, err
		}
		a := newAnalyzer()
		a.selectStmt(ir, nil, nil)
		q := &Query{Kind: KindSelect, Deps: a.finish(), Cacheable: ck.reason == "", Reason: ck.reason}
		q.checkTemp("temp.")
		q.checkNoTable()
		return q, nil
	case *ast.InsertStmt:
		t, err := tidbSingleTable(s.Table)
		if err != nil {
			return nil, err
		}
		return &Query{Kind: KindInsert, Tables: []string{t.table}}, nil
	case *ast.UpdateStmt:
		return tidbWhereWrite(KindUpdate, s.TableRefs, s.Where)
	case *ast.DeleteStmt:
		if s.IsMultiTable {
			return nil, unsupported("sqlite: multi-table DELETE")
		}
		return tidbWhereWrite(KindDelete, s.TableRefs, s.Where)
	case *ast.TruncateTableStmt:
		return &Query{Kind: KindTruncate, Tables: []string{tidbTableName(s.Table)}}, nil
	case ast.DDLNode:
		q := &Query{Kind: KindDDL}
		switch d := s.(type) {
		case *ast.CreateTableStmt:
			q.Tables = []string{tidbTableName(d.Table)}
		case *ast.AlterTableStmt:
			q.Tables = []string{tidbTableName(d.Table)}
		case *ast.DropTableStmt:
			for _, t := range d.Tables {
				q.Tables = append(q.Tables, tidbTableName(t))
			}
		case *ast.CreateIndexStmt:
			q.Tables = []string{tidbTableName(d.Table)}
		}
		slices.Sort(q.Tables)
		return q, nil
	}
	return &Query{Kind: KindOther}, nil
}

func tidbWhereWrite(kind Kind, refs *ast.TableRefsClause, where ast.ExprNode) (*Query, error) {
	t, err := tidbSingleTable(refs)
	if err != nil {
		return nil, err
	}
	q := &Query{Kind: kind, Tables: []string{t.table}}
	ir := &selectIR{from: []*fromItem{t}}
	if where != nil {
		ir.where = tidbExpr(where)
		subs, err := tidbSubs(where)
		if err != nil {
			return nil, err
		}
		ir.subs = subs
	}
	a := newAnalyzer()
	a.selectStmt(ir, nil, nil)
	q.Where = a.finish()[t.table]
	return q, nil
}

func tidbSingleTable(refs *ast.TableRefsClause) (*fromItem, error) {
	if refs == nil || refs.TableRefs == nil || refs.TableRefs.Right != nil {
		return nil, unsupported("sqlite: write to more than one table")
	}
	f, err := tidbFrom(refs.TableRefs.Left)
	if err != nil {
		return nil, err
	}
	if f.table == "" {
		return nil, unsupported("sqlite: write target is not a table")
	}
	return f, nil
}

func tidbTableName(t *ast.TableName) string {
	if s := t.Schema.L; s != "" && s != "main" {
		return s + "." + t.Name.L
	}
	return t.Name.L
}

func tidbSelect(n ast.Node) (*selectIR, error) {
	switch n := n.(type) {
	case *ast.SubqueryExpr:
		return tidbSelect(n.Query)
	case *ast.SetOprStmt:
		ir, err := tidbSelect(n.SelectList)
		if err != nil {
			return nil, err
		}
		subs, err := tidbSubs(n)
		if err != nil {
			return nil, err
		}
		ir.subs = append(ir.subs, subs...)
		if n.With != nil {
			return tidbWith(n.With, ir)
		}
		return ir, nil
	case *ast.SetOprSelectList:
		ir := &selectIR{arms: []*selectIR{}}
		for _, s := range n.Selects {
			arm, err := tidbSelect(s)
			if err != nil {
				return nil, err
			}
			ir.arms = append(ir.arms, arm)
		}
		if n.With != nil {
			return tidbWith(n.With, ir)
		}
		return ir, nil
	case *ast.SelectStmt:
		ir := &selectIR{}
		if n.From != nil && n.From.TableRefs != nil {
			f, err := tidbFrom(n.From.TableRefs)
			if err != nil {
				return nil, err
			}
			ir.from = []*fromItem{f}
		}
		if n.Where != nil {
			ir.where = tidbExpr(n.Where)
		}
		subs, err := tidbSubs(n)
		if err != nil {
			return nil, err
		}
		ir.subs = subs
		if n.With != nil {
			return tidbWith(n.With, ir)
		}
		return ir, nil
	}
	return nil, unsupported("sqlite: %T as a query", n)
}

func tidbWith(w *ast.WithClause, ir *selectIR) (*selectIR, error) {
	ir.recursive = w.IsRecursive
	for _, c := range w.CTEs {
		body, err := tidbSelect(c.Query)
		if err != nil {
			return nil, err
		}
		ir.ctes = append(ir.ctes, cte{name: c.Name.L, body: body})
	}
	return ir, nil
}

func tidbFrom(n ast.ResultSetNode) (*fromItem, error) {
	switch n := n.(type) {
	case *ast.Join:
		if n.Right == nil {
			return tidbFrom(n.Left)
		}
		l, err := tidbFrom(n.Left)
		if err != nil {
			return nil, err
		}
		r, err := tidbFrom(n.Right)
		if err != nil {
			return nil, err
		}
		f := &fromItem{left: l, right: r}
		switch n.Tp {
		case ast.LeftJoin:
			f.jt = joinLeft
		case ast.RightJoin:
			f.jt = joinRight
		}
		if n.On != nil {
			f.on = tidbExpr(n.On.Expr)
		}
		if !n.NaturalJoin {
			for _, c := range n.Using {
				f.using = append(f.using, c.Name.L)
			}
		}
		return f, nil
	case *ast.TableSource:
		switch src := n.Source.(type) {
		case *ast.TableName:
			name := tidbTableName(src)
			alias := src.Name.L
			if n.AsName.L != "" {
				alias = n.AsName.L
			}
			return &fromItem{table: name, alias: alias}, nil
		default:
			sub, err := tidbSelect(src)
			if err != nil {
				return nil, err
			}
			return &fromItem{derived: sub, alias: n.AsName.L}, nil
		}
	}
	return nil, unsupported("sqlite: %T in FROM", n)
}

// subFinder collects the subqueries of expressions, not descending into
// FROM items and WITH clauses (analysed separately).
type subFinder struct {
	root ast.Node
	subs []*selectIR
	err  error
}

func (f *subFinder) Enter(n ast.Node) (ast.Node, bool) {
	if n == f.root {
		return n, false
	}
	switch n := n.(type) {
	case *ast.SubqueryExpr:
		s, err := tidbSelect(n.Query)
		if err != nil && f.err == nil {
			f.err = err
		}
		if s != nil {
			f.subs = append(f.subs, s)
		}
		return n, true
	case *ast.TableRefsClause, *ast.WithClause, *ast.TableSource, *ast.SelectStmt, *ast.SetOprStmt, *ast.SetOprSelectList:
		return n, true
	}
	return n, false
}

func (f *subFinder) Leave(n ast.Node) (ast.Node, bool) { return n, true }

func tidbSubs(n ast.Node) ([]*selectIR, error) {
	f := &subFinder{root: n}
	n.Accept(f)
	if sel, ok := n.(*ast.SelectStmt); ok && sel.From != nil && sel.From.TableRefs != nil {
		// ON conditions of joins live under the FROM clause.
		var walk func(r ast.ResultSetNode)
		walk = func(r ast.ResultSetNode) {
			if j, ok := r.(*ast.Join); ok {
				if j.On != nil {
					g := &subFinder{root: j.On.Expr}
					j.On.Expr.Accept(g)
					f.subs = append(f.subs, g.subs...)
					if g.err != nil && f.err == nil {
						f.err = g.err
					}
				}
				walk(j.Left)
				if j.Right != nil {
					walk(j.Right)
				}
			}
		}
		walk(sel.From.TableRefs)
	}
	return f.subs, f.err
}

func tidbExpr(e ast.ExprNode) expr {
	switch e := e.(type) {
	case *ast.ParenthesesExpr:
		return tidbExpr(e.Expr)
	case *ast.BinaryOperationExpr:
		switch e.Op {
		case opcode.LogicAnd:
			return andExpr{tidbExpr(e.L), tidbExpr(e.R)}
		case opcode.LogicOr:
			return orExpr{tidbExpr(e.L), tidbExpr(e.R)}
		case opcode.EQ:
			return eqExpr{tidbOperand(e.L), tidbOperand(e.R)}
		}
	case *ast.PatternInExpr:
		if e.Not || e.Sel != nil {
			return trueExpr{}
		}
		in := inExpr{l: tidbOperand(e.Expr)}
		for _, v := range e.List {
			in.vals = append(in.vals, tidbOperand(v))
		}
		return in
	case *ast.IsNullExpr:
		if !e.Not {
			return nullExpr{tidbOperand(e.Expr)}
		}
	}
	return trueExpr{}
}

func tidbOperand(e ast.ExprNode) operand {
	switch e := e.(type) {
	case *ast.ParenthesesExpr:
		return tidbOperand(e.Expr)
	case *ast.ColumnNameExpr:
		if e.Name.Schema.L != "" && e.Name.Schema.L != "main" {
			return operand{} // schema.table.col: not resolved
		}
		return operand{kind: opCol, col: colRef{qual: e.Name.Table.L, name: e.Name.Name.L}}
	case *test_driver.ParamMarkerExpr:
		return operand{kind: opVal, val: Value{Kind: Arg, Arg: e.Order + 1}}
	case *test_driver.ValueExpr:
		switch v := e.GetValue().(type) {
		case nil:
			return operand{kind: opVal, val: Value{Kind: Null}}
		case int64:
			return operand{kind: opVal, val: Value{Kind: Int, Lit: strconv.FormatInt(v, 10)}}
		case uint64:
			return operand{kind: opVal, val: Value{Kind: Int, Lit: strconv.FormatUint(v, 10)}}
		case float64:
			return operand{kind: opVal, val: Value{Kind: Float, Lit: strconv.FormatFloat(v, 'g', -1, 64)}}
		case string:
			return operand{kind: opVal, val: Value{Kind: String, Lit: v}}
		case fmt.Stringer:
			return operand{kind: opVal, val: Value{Kind: Float, Lit: v.String()}}
		}
	}
	return operand{}
}
