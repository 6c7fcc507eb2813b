package sqldeps

import (
	"slices"
)

// The parsers' trees are lowered to this small intermediate form, which
// the dialect-independent analysis below reads.

type colRef struct{ qual, name string } // qual "" when unqualified

type opKind uint8

const (
	opOther opKind = iota // anything else: a function, an expression, an outer column
	opCol
	opVal
)

type operand struct {
	kind opKind
	col  colRef
	val  Value
}

// expr is one of andExpr, orExpr, eqExpr, inExpr, nullExpr, trueExpr.
type expr any

type (
	andExpr []expr
	orExpr  []expr
	eqExpr  struct{ l, r operand }
	inExpr  struct {
		l    operand
		vals []operand
	}
	nullExpr struct{ x operand }
	trueExpr struct{} // NOT, <, LIKE, subquery comparisons, ...
)

type cte struct {
	name string
	body *selectIR
}

type selectIR struct {
	ctes      []cte
	recursive bool
	arms      []*selectIR // set operation (UNION, ...): the arms, other fields unused
	from      []*fromItem // comma-separated items (cross joined)
	where     expr
	subs      []*selectIR // subqueries in expressions anywhere in this SELECT
}

type joinType uint8

const (
	joinInner joinType = iota
	joinLeft
	joinRight
	joinFull
)

type fromItem struct {
	// table
	table, alias string
	// derived table (subquery in FROM)
	derived *selectIR
	lateral bool
	// join
	left, right *fromItem
	jt          joinType
	on          expr
	using       []string
}

func (f *fromItem) isJoin() bool { return f.left != nil }

type colKey struct{ alias, col string }

type source struct {
	alias string
	table string // "" for a derived table or a CTE reference
	ctx   *filterCtx
}

type filterCtx struct {
	exprs   []expr
	sources []*source
}

type scope struct {
	parent  *scope
	sources map[string]*source
	list    []*source
	closed  bool // no enclosing query: unqualified columns may resolve locally
}

type cteEnv struct {
	parent *cteEnv
	names  map[string]bool
}

func (e *cteEnv) has(name string) bool {
	for ; e != nil; e = e.parent {
		if e.names[name] {
			return true
		}
	}
	return false
}

type analyzer struct {
	deps Deps
}

func newAnalyzer() *analyzer { return &analyzer{deps: Deps{}} }

func (a *analyzer) add(table string, d DNF) {
	a.deps[table] = append(a.deps[table], d...)
	if len(a.deps[table]) == 0 {
		a.deps[table] = DNF{} // present: the table is read
	}
}

func (a *analyzer) finish() Deps {
	for t, d := range a.deps {
		a.deps[t] = d.normalize()
	}
	return a.deps
}

// selectStmt analyses s, nested in parent (nil at top level).
func (a *analyzer) selectStmt(s *selectIR, parent *scope, env *cteEnv) {
	if len(s.ctes) > 0 {
		env = &cteEnv{parent: env, names: map[string]bool{}}
		if s.recursive {
			for _, c := range s.ctes {
				env.names[c.name] = true
			}
		}
		for _, c := range s.ctes {
			a.selectStmt(c.body, parent, env)
			env.names[c.name] = true
		}
	}
	if s.arms != nil {
		for _, arm := range s.arms {
			a.selectStmt(arm, parent, env)
		}
		for _, sub := range s.subs { // in the set operation's ORDER BY or LIMIT
			a.selectStmt(sub, parent, env)
		}
		return
	}
	sc := &scope{parent: parent, sources: map[string]*source{}, closed: parent == nil}
	top := &filterCtx{}
	if s.where != nil {
		top.exprs = append(top.exprs, s.where)
	}
	ctxs := []*filterCtx{top}
	for _, f := range s.from {
		a.fromItem(f, sc, top, &ctxs, env)
	}
	for _, sub := range s.subs {
		a.selectStmt(sub, sc, env)
	}
	for _, c := range ctxs {
		a.project(c, sc)
	}
}

func (a *analyzer) fromItem(f *fromItem, sc *scope, ctx *filterCtx, ctxs *[]*filterCtx, env *cteEnv) {
	switch {
	case f.isJoin():
		lctx, rctx := ctx, ctx
		switch f.jt {
		case joinLeft:
			rctx = &filterCtx{exprs: []expr{f.on}}
			*ctxs = append(*ctxs, rctx)
		case joinRight:
			lctx = &filterCtx{exprs: []expr{f.on}}
			*ctxs = append(*ctxs, lctx)
		case joinFull:
			// Every row of either side appears, joined or null-extended,
			// and neither the ON clause nor the WHERE restricts it.
			lctx, rctx = &filterCtx{}, &filterCtx{}
			*ctxs = append(*ctxs, lctx, rctx)
		default:
			if f.on != nil {
				ctx.exprs = append(ctx.exprs, f.on)
			}
		}
		a.fromItem(f.left, sc, lctx, ctxs, env)
		a.fromItem(f.right, sc, rctx, ctxs, env)
		if f.jt == joinInner && len(f.using) > 0 && !f.left.isJoin() && !f.right.isJoin() {
			for _, c := range f.using {
				ctx.exprs = append(ctx.exprs, eqExpr{
					operand{kind: opCol, col: colRef{f.left.alias, c}},
					operand{kind: opCol, col: colRef{f.right.alias, c}},
				})
			}
		}
	case f.derived != nil:
		p := sc.parent
		if f.lateral {
			p = sc
		}
		a.selectStmt(f.derived, p, env)
		sc.addSource(&source{alias: f.alias, ctx: ctx})
	default:
		src := &source{alias: f.alias, ctx: ctx}
		if !env.has(f.table) {
			src.table = f.table
		}
		sc.addSource(src)
	}
}

func (sc *scope) addSource(s *source) {
	if s.ctx != nil {
		s.ctx.sources = append(s.ctx.sources, s)
	}
	sc.sources[s.alias] = s
	sc.list = append(sc.list, s)
}

// resolve returns the local column an operand names, if it is one.
func (sc *scope) resolve(o operand) (colKey, bool) {
	if o.kind != opCol {
		return colKey{}, false
	}
	if o.col.qual == "" {
		if sc.closed && len(sc.list) == 1 {
			return colKey{sc.list[0].alias, o.col.name}, true
		}
		return colKey{}, false
	}
	if _, ok := sc.sources[o.col.qual]; ok {
		return colKey{o.col.qual, o.col.name}, true
	}
	return colKey{}, false
}

type atomKind uint8

const (
	aEqVal atomKind = iota
	aEqCol
	aNull
)

type atom struct {
	kind atomKind
	a, b colKey
	v    Value
}

type rawDNF [][]atom

var rawTrue = rawDNF{nil}

func isRawTrue(d rawDNF) bool {
	for _, c := range d {
		if len(c) == 0 {
			return true
		}
	}
	return false
}

func (sc *scope) dnf(e expr) rawDNF {
	switch e := e.(type) {
	case andExpr:
		acc := rawTrue
		for _, x := range e {
			d := sc.dnf(x)
			if isRawTrue(d) {
				continue
			}
			if isRawTrue(acc) {
				acc = d
				continue
			}
			if len(acc)*len(d) > MaxConjunctions {
				continue // dropping a conjunct only widens
			}
			next := make(rawDNF, 0, len(acc)*len(d))
			for _, c1 := range acc {
				for _, c2 := range d {
					next = append(next, append(slices.Clip(c1), c2...))
				}
			}
			acc = next
		}
		return acc
	case orExpr:
		var acc rawDNF
		for _, x := range e {
			d := sc.dnf(x)
			if isRawTrue(d) {
				return rawTrue
			}
			acc = append(acc, d...)
			if len(acc) > MaxConjunctions {
				return rawTrue
			}
		}
		if len(acc) == 0 {
			return rawTrue
		}
		return acc
	case eqExpr:
		if at, ok := sc.eqAtom(e.l, e.r); ok {
			return rawDNF{{at}}
		}
	case inExpr:
		if len(e.vals) == 0 || len(e.vals) > MaxInList {
			return rawTrue
		}
		var acc rawDNF
		for _, v := range e.vals {
			at, ok := sc.eqAtom(e.l, v)
			if !ok {
				return rawTrue
			}
			acc = append(acc, []atom{at})
		}
		return acc
	case nullExpr:
		if k, ok := sc.resolve(e.x); ok {
			return rawDNF{{{kind: aNull, a: k}}}
		}
	}
	return rawTrue
}

func (sc *scope) eqAtom(l, r operand) (atom, bool) {
	lk, lok := sc.resolve(l)
	rk, rok := sc.resolve(r)
	switch {
	case lok && rok:
		return atom{kind: aEqCol, a: lk, b: rk}, true
	case lok && r.kind == opVal && r.val.Kind != Null:
		return atom{kind: aEqVal, a: lk, v: r.val}, true
	case rok && l.kind == opVal && l.val.Kind != Null:
		return atom{kind: aEqVal, a: rk, v: l.val}, true
	}
	return atom{}, false
}

// normalizeConj propagates values through column equalities and returns
// the conditions per source alias; ok is false for a contradiction.
func normalizeConj(c []atom) (map[string]Conj, bool) {
	parent := map[colKey]colKey{}
	var find func(k colKey) colKey
	find = func(k colKey) colKey {
		p, ok := parent[k]
		if !ok || p == k {
			parent[k] = k
			return k
		}
		r := find(p)
		parent[k] = r
		return r
	}
	for _, at := range c {
		find(at.a)
		if at.kind == aEqCol {
			ra, rb := find(at.a), find(at.b)
			if ra != rb {
				parent[ra] = rb
			}
		}
	}
	vals := map[colKey][]Value{}
	size := map[colKey]int{}
	for k := range parent {
		size[find(k)]++
	}
	for _, at := range c {
		if at.kind == aEqVal {
			r := find(at.a)
			for _, w := range vals[r] {
				if w.conflicts(at.v) {
					return nil, false
				}
			}
			vals[r] = append(vals[r], at.v)
		}
	}
	out := map[string]Conj{}
	for _, at := range c {
		if at.kind == aNull {
			r := find(at.a)
			if len(vals[r]) > 0 || size[r] > 1 {
				return nil, false // col IS NULL AND col = x
			}
			out[at.a.alias] = append(out[at.a.alias], Cond{Column: at.a.col, Value: Value{Kind: Null}})
		}
	}
	for k := range parent {
		for _, v := range vals[find(k)] {
			out[k.alias] = append(out[k.alias], Cond{Column: k.col, Value: v})
		}
	}
	return out, true
}

func (a *analyzer) project(c *filterCtx, sc *scope) {
	var tables []*source
	for _, s := range c.sources {
		if s.table != "" {
			tables = append(tables, s)
		}
	}
	if len(tables) == 0 {
		return
	}
	raw := sc.dnf(andExpr(c.exprs))
	per := map[string]DNF{}
	for _, conj := range raw {
		conds, ok := normalizeConj(conj)
		if !ok {
			continue
		}
		for _, s := range tables {
			per[s.alias] = append(per[s.alias], conds[s.alias])
		}
	}
	for _, s := range tables {
		a.add(s.table, per[s.alias])
	}
}
