package qcache

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/qcache/internal/sqldeps"
)

// InvalidateAll invalidates every cached query.
func (p *GranularPolicy) InvalidateAll(ctx context.Context) error {
	return p.globalInvalidation("").Apply(ctx)
}

// InvalidateTables invalidates every cached query reading one of tables.
func (p *GranularPolicy) InvalidateTables(ctx context.Context, tables ...string) error {
	if len(tables) == 0 {
		return nil
	}
	folded := make([]string, len(tables))
	for i, t := range tables {
		folded[i] = p.tableName(t)
	}
	return p.tablesInvalidation("", folded).Apply(ctx)
}

// keysInvalidation deletes keys: table epochs, or the global one.
type keysInvalidation struct {
	p      *GranularPolicy
	keys   []string
	kind   EventKind // InvalidateTable or InvalidateGlobal, for events
	sql    string    // the statement, for events ("" for the manual API)
	tables []string  // for events
}

// tablesInvalidation bumps the epochs of tables for the statement sql:
// every entry reading a table depends on its epoch.
func (p *GranularPolicy) tablesInvalidation(sql string, tables []string) *keysInvalidation {
	inv := &keysInvalidation{p: p, kind: InvalidateTable, sql: sql, tables: tables}
	for _, t := range tables {
		inv.keys = append(inv.keys, p.epochKey(t))
	}
	return inv
}

// globalInvalidation bumps the global epoch for the statement sql.
func (p *GranularPolicy) globalInvalidation(sql string) *keysInvalidation {
	return &keysInvalidation{p: p, keys: []string{p.global}, kind: InvalidateGlobal, sql: sql}
}

func (inv *keysInvalidation) Apply(ctx context.Context) error {
	if err := inv.p.deleteStamps(ctx, inv.keys); err != nil {
		return err
	}
	inv.p.noteInvalidation(ctx, inv.kind, inv.sql, inv.tables)
	return nil
}

// Writes implements [Policy] without access to the connection: every write
// bumps the epochs of its tables.
func (p *GranularPolicy) Writes(ctx context.Context, q Query) (Invalidation, error) {
	return p.WritesConn(ctx, q, nil)
}

// WritesConn implements [ConnPolicy].
func (p *GranularPolicy) WritesConn(ctx context.Context, q Query, c Querier) (Invalidation, error) {
	a, err := p.analyze(q.SQL)
	if err != nil {
		if t, ok := writeTarget(p.dialect, q.SQL); ok {
			// A write of syntax the extractor does not read: its table
			// is known, its rows are not.
			return p.tablesInvalidation(q.SQL, []string{t}), nil
		}
		return p.globalInvalidation(q.SQL), nil
	}
	switch a.Kind {
	case sqldeps.KindSelect, sqldeps.KindOther:
		return nil, nil
	case sqldeps.KindInsert, sqldeps.KindUpdate, sqldeps.KindDelete:
	case sqldeps.KindTruncate:
		if len(a.Tables) == 0 {
			return p.globalInvalidation(q.SQL), nil
		}
		return p.tablesInvalidation(q.SQL, a.Tables), nil
	default:
		// DDL (rare; it may rename, drop or redefine what other tables
		// and views read) and statements of unknown effect.
		return p.globalInvalidation(q.SQL), nil
	}
	if len(a.Tables) != 1 {
		if len(a.Tables) == 0 {
			return p.globalInvalidation(q.SQL), nil
		}
		return p.tablesInvalidation(q.SQL, a.Tables), nil
	}
	t := a.Tables[0]
	inv := &rowInvalidation{p: p, sql: q.SQL, table: t, keys: []string{p.wholeKey(t)}}
	list, err := p.opts.Store.Get(ctx, p.listKey(t))
	if err != nil && !errors.Is(err, cachekit.ErrMiss) {
		if !p.opts.DegradeWrites {
			return nil, fmt.Errorf("qcache: plan the invalidation of a write to %s: %w", t, err)
		}
		inv.coarse = true
		return inv, nil
	}
	inv.list = string(list)
	inv.live = liveSchemes(list, p.opts.Now())
	for _, s := range inv.live {
		inv.schemes = append(inv.schemes, strings.Split(s, ","))
	}
	if len(inv.schemes) == 0 {
		return inv, nil // only whole-table readers: nothing row-level to find
	}
	if c == nil {
		// Row images need the connection.
		inv.coarse = true
		return inv, nil
	}
	inv.c = c
	for _, s := range inv.schemes {
		for _, col := range s {
			if !slices.Contains(inv.cols, col) {
				inv.cols = append(inv.cols, col)
			}
		}
	}
	if p.dialect == sqldeps.Postgres {
		return p.writesPostgres(ctx, a, q, c, inv)
	}
	switch a.Kind {
	case sqldeps.KindInsert:
		up := strings.ToUpper(q.SQL)
		if strings.Contains(up, "SELECT") ||
			strings.Contains(up, "REPLACE") || strings.Contains(up, "CONFLICT") {
			inv.coarse = true
			return inv, nil
		}
		inv.post = postInsert
	case sqldeps.KindUpdate, sqldeps.KindDelete:
		if len(a.Where) == 0 {
			return inv, nil // matches no row
		}
		where, args, ok := p.whereSQL(a.Where, q.Args)
		if !ok {
			inv.coarse = true
			return inv, nil
		}
		withRowid := a.Kind == sqldeps.KindUpdate
		if !c.InTx() {
			// Read the pre-images and write in one transaction, so that
			// no other connection changes the rows in between.
			if err := c.ExecInner(ctx, "BEGIN IMMEDIATE"); err != nil {
				inv.coarse = true
				return inv, nil
			}
			inv.commit = true
		}
		rowids, err := inv.images(ctx, where, args, withRowid)
		if err != nil || inv.coarse {
			inv.coarse = true
			return inv, nil
		}
		if withRowid {
			inv.rowids = rowids
			inv.post = postUpdate
		}
	}
	return inv, nil
}

// whereSQL renders a DNF as SQL with the placeholders of the dialect.
func (p *GranularPolicy) whereSQL(d sqldeps.DNF, qargs []driver.NamedValue) (string, []driver.NamedValue, bool) {
	if d.IsTrue() {
		return "", nil, true
	}
	var (
		b    strings.Builder
		args []driver.NamedValue
	)
	for i, conj := range d {
		if i > 0 {
			b.WriteString(" OR ")
		}
		b.WriteString("(")
		for j, c := range conj {
			if j > 0 {
				b.WriteString(" AND ")
			}
			b.WriteString(quoteIdent(c.Column))
			if c.Value.Kind == sqldeps.Null {
				b.WriteString(" IS NULL")
				continue
			}
			v, ok := resolveValue(c.Value, qargs)
			if !ok {
				return "", nil, false
			}
			args = append(args, driver.NamedValue{Ordinal: len(args) + 1, Value: v})
			b.WriteString(" = " + p.placeholder(len(args)))
		}
		b.WriteString(")")
	}
	return b.String(), args, true
}

func (p *GranularPolicy) placeholder(n int) string {
	if p.dialect == sqldeps.Postgres {
		return "$" + strconv.Itoa(n)
	}
	return "?"
}

func quoteIdent(name string) string {
	parts := strings.Split(name, ".")
	for i, s := range parts {
		parts[i] = `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
	}
	return strings.Join(parts, ".")
}

type postKind int

const (
	postNone postKind = iota
	postInsert
	postUpdate
)

// rowInvalidation deletes the stamps of the images of the rows a write
// changes, or bumps the table's epoch.
type rowInvalidation struct {
	p       *GranularPolicy
	sql     string // the statement, for events
	table   string
	list    string     // the scheme list when the write was planned
	live    []string   // its live schemes
	schemes [][]string // parsed list
	cols    []string   // union of the schemes' columns
	c       Querier
	keys    []string // stamps to delete
	rowids  []int64  // UPDATE: rows to re-read
	post    postKind // post-images still to read
	commit  bool     // AfterWrite commits the transaction WritesConn opened
	coarse  bool     // bump the table epoch

	// PostgreSQL (see writesPostgres).
	rw       *sqldeps.Rewrite
	kind     sqldeps.Kind
	pending  bool                // rows or checks still to come: until AfterWrite, Apply bumps the epoch
	ended    bool                // ReturnedEnd was called
	returned int                 // rows the rewritten statement returned
	locked   map[string]struct{} // UPDATE: the rows the pre-image read locked, "tableoid:ctid" (RowIDs) or nil
	nLocked  int                 // UPDATE: how many rows it locked
	dropList bool                // Apply deletes the scheme list: a scheme column may be gone
}

var _ AfterWriter = (*rowInvalidation)(nil)

// images reads the rows matching where and adds their stamps; it returns
// their rowids when withRowid. More than MaxImages rows, or a value that
// cannot be canonicalised, sets coarse.
func (inv *rowInvalidation) images(ctx context.Context, where string, args []driver.NamedValue, withRowid bool) ([]int64, error) {
	sel := make([]string, 0, len(inv.cols)+1)
	if withRowid {
		sel = append(sel, "rowid")
	}
	for _, c := range inv.cols {
		sel = append(sel, quoteIdent(c))
	}
	query := "SELECT " + strings.Join(sel, ", ") + " FROM " + quoteIdent(inv.table)
	if where != "" {
		query += " WHERE " + where
	}
	query += " LIMIT " + strconv.Itoa(inv.p.opts.MaxImages+1)
	rows, err := inv.c.QueryInner(ctx, query, args)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	dest := make([]driver.Value, len(sel))
	var (
		rowids []int64
		n      int
	)
	for {
		clear(dest)
		if err := rows.Next(dest); err == io.EOF {
			break
		} else if err != nil {
			return nil, err
		}
		if n++; n > inv.p.opts.MaxImages {
			inv.coarse = true
			return nil, nil
		}
		vals := dest
		if withRowid {
			id, ok := dest[0].(int64)
			if !ok {
				inv.coarse = true
				return nil, nil
			}
			rowids = append(rowids, id)
			vals = dest[1:]
		}
		if !inv.addImage(vals) {
			inv.coarse = true
			return nil, nil
		}
	}
	return rowids, nil
}

// addImage adds the stamps of one row image (values in inv.cols order).
func (inv *rowInvalidation) addImage(vals []driver.Value) bool {
	return inv.addCanonImage(func(i int) (string, bool) { return canonical(vals[i]) })
}

// AfterWrite implements [AfterWriter]: it reads the post-images (SQLite)
// or checks the rows returned (PostgreSQL), and commits the transaction
// WritesConn opened.
func (inv *rowInvalidation) AfterWrite(ctx context.Context, c Querier, err error) error {
	ctx = context.WithoutCancel(ctx)
	post := inv.post
	inv.post = postNone
	switch {
	case post == postNone || inv.coarse:
	case err != nil:
		inv.coarse = true
	default:
		inv.readPost(ctx, c, post)
	}
	if inv.pending {
		inv.afterPostgres(ctx, c, err)
		inv.pending = false
	}
	if !inv.commit {
		return nil
	}
	inv.commit = false
	if cerr := c.ExecInner(ctx, "COMMIT"); cerr != nil {
		inv.coarse = true
		c.ExecInner(ctx, "ROLLBACK")
		return fmt.Errorf("qcache: commit the write: %w", cerr)
	}
	return nil
}

// readPost reads the post-images.
func (inv *rowInvalidation) readPost(ctx context.Context, c Querier, post postKind) {
	switch post {
	case postInsert:
		rows, err := c.QueryInner(ctx, "SELECT changes(), last_insert_rowid()", nil)
		if err != nil {
			inv.coarse = true
			return
		}
		dest := make([]driver.Value, 2)
		err = rows.Next(dest)
		rows.Close()
		n, _ := dest[0].(int64)
		id, ok := dest[1].(int64)
		if err != nil || n != 1 || !ok {
			inv.coarse = true
			return
		}
		inv.rowids = []int64{id}
	case postUpdate:
		if len(inv.rowids) == 0 {
			return
		}
	}
	var (
		b    strings.Builder
		args = make([]driver.NamedValue, len(inv.rowids))
	)
	b.WriteString("rowid IN (")
	for i, id := range inv.rowids {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("?")
		args[i] = driver.NamedValue{Ordinal: i + 1, Value: id}
	}
	b.WriteString(")")
	inv.c = c
	got, ierr := inv.images(ctx, b.String(), args, true)
	if ierr != nil || len(got) != len(inv.rowids) {
		inv.coarse = true
	}
}

// Apply implements [Invalidation].
func (inv *rowInvalidation) Apply(ctx context.Context) error {
	p := inv.p
	keys := inv.keys
	if inv.dropList {
		keys = append(keys, p.listKey(inv.table))
	}
	kind := InvalidateRows
	if inv.post != postNone || inv.coarse || inv.pending {
		keys = append(keys, p.epochKey(inv.table))
		kind = InvalidateTable
	} else {
		// A reader may have added a scheme after the write was planned:
		// its stamps were not computed, bump the epoch then.
		// (A scheme dropped from the list since is harmless: adding it
		// back rotates its generation.)
		list, err := p.opts.Store.Get(ctx, p.listKey(inv.table))
		if err != nil && !errors.Is(err, cachekit.ErrMiss) {
			keys = append(keys, p.epochKey(inv.table))
			kind = InvalidateTable
		} else if string(list) != inv.list {
			for _, s := range liveSchemes(list, p.opts.Now()) {
				if !slices.Contains(inv.live, s) {
					keys = append(keys, p.epochKey(inv.table))
					kind = InvalidateTable
					break
				}
			}
		}
	}
	if err := p.deleteStamps(ctx, keys); err != nil {
		return err
	}
	p.noteInvalidation(ctx, kind, inv.sql, []string{inv.table})
	return nil
}

var _ Returner = (*rowInvalidation)(nil)

// rewritten is a memoized sqldeps.RewritePostgres.
type rewritten struct {
	rw  *sqldeps.Rewrite // read-only: shared by every write of the statement
	err error
}

// rewrite returns the rewrite of a PostgreSQL write for the scheme columns
// cols, memoized per statement and columns: parsing and deparsing costs
// 50–180 µs a statement (BenchmarkRewritePostgres), as much as the write.
func (p *GranularPolicy) rewrite(sql string, cols []string) (*sqldeps.Rewrite, error) {
	r := p.rewrites.get(strings.Join(cols, ",")+"\x00"+sql, func(string) rewritten {
		rw, err := sqldeps.RewritePostgres(sql, cols, p.opts.MaxImages)
		return rewritten{rw, err}
	})
	return r.rw, r.err
}

// writesPostgres plans a PostgreSQL write of one table with live schemes.
// The statement runs rewritten with the scheme columns appended to its
// RETURNING list: a DELETE returns the old images, an INSERT the new ones
// (an upsert flags the rows it updated, whose old images are unknown: the
// epoch is bumped then), an UPDATE the new ones, its old ones read before
// by a SELECT … FOR UPDATE OF the target in the same transaction (opened
// here outside one, committed by AfterWrite).
func (p *GranularPolicy) writesPostgres(ctx context.Context, a *sqldeps.Query, q Query, c Querier, inv *rowInvalidation) (Invalidation, error) {
	if a.Kind != sqldeps.KindInsert && len(a.Where) == 0 {
		return inv, nil // matches no row
	}
	rw, err := p.rewrite(q.SQL, inv.cols)
	if err != nil {
		inv.coarse = true
		return inv, nil
	}
	inv.kind = a.Kind
	if a.Kind == sqldeps.KindUpdate {
		if !c.InTx() {
			// Lock the pre-images until the UPDATE has run: no other
			// transaction changes them in between.
			if err := c.ExecInner(ctx, "BEGIN"); err != nil {
				inv.coarse = true
				return inv, nil
			}
			inv.commit = true
		}
		if err := inv.preImages(ctx, c, rw, q.Args); err != nil {
			if schemaError(err) {
				// A scheme column may be gone: drop the list, so that the
				// next write does not fail alike.
				inv.dropList = true
			}
			if !inv.commit {
				// The application's transaction is aborted, and the
				// UPDATE, reading the same rows, would mostly fail alike.
				if inv.dropList {
					inv.p.deleteStamps(context.WithoutCancel(ctx), []string{inv.p.listKey(inv.table), inv.p.epochKey(inv.table)})
				}
				return nil, fmt.Errorf("qcache: read the rows the update changes: %w", err)
			}
			inv.commit = false
			c.ExecInner(context.WithoutCancel(ctx), "ROLLBACK")
			inv.coarse = true
			return inv, nil
		}
		if inv.coarse {
			return inv, nil // the original statement runs; AfterWrite commits
		}
	}
	inv.rw = rw
	inv.pending = true
	return inv, nil
}

// preImages runs the pre-image read of an UPDATE and adds the stamps of
// the rows it locks. More than MaxImages rows, or a value that cannot be
// canonicalised, sets coarse.
func (inv *rowInvalidation) preImages(ctx context.Context, c Querier, rw *sqldeps.Rewrite, args []driver.NamedValue) error {
	pre := make([]driver.NamedValue, len(rw.PreImageArgs))
	for i, n := range rw.PreImageArgs {
		if n < 1 || n > len(args) || args[n-1].Name != "" {
			inv.coarse = true
			return nil
		}
		pre[i] = driver.NamedValue{Ordinal: i + 1, Value: args[n-1].Value}
	}
	rows, err := c.QueryInner(ctx, rw.PreImages, pre)
	if err != nil {
		return err
	}
	defer rows.Close()
	types := columnTypeNames(rows)
	dest := make([]driver.Value, len(rows.Columns()))
	skip := 0
	if rw.RowIDs {
		skip = 2
		inv.locked = map[string]struct{}{}
	}
	if len(dest) != skip+len(inv.cols) {
		inv.coarse = true
		return nil
	}
	for n := 0; ; n++ {
		clear(dest)
		if err := rows.Next(dest); err == io.EOF {
			break
		} else if err != nil {
			return err
		}
		if n >= inv.p.opts.MaxImages {
			inv.coarse = true
			return nil
		}
		if rw.RowIDs {
			oid, ok1 := dest[0].(int64)
			ctid, ok2 := dest[1].(string)
			if !ok1 || !ok2 {
				inv.coarse = true
				return nil
			}
			id := strconv.FormatInt(oid, 10) + ":" + ctid
			if _, seen := inv.locked[id]; seen {
				continue // the same row, joined more than once
			}
			inv.locked[id] = struct{}{}
		}
		inv.nLocked++
		if !inv.addTypedImage(types[skip:], dest[skip:]) {
			inv.coarse = true
			return nil
		}
	}
	return nil
}

// columnTypeNames returns the database type names of the columns of rows
// ("" where the driver does not say).
func columnTypeNames(rows driver.Rows) []string {
	names := make([]string, len(rows.Columns()))
	if t, ok := rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		for i := range names {
			names[i] = t.ColumnTypeDatabaseTypeName(i)
		}
	}
	return names
}

// addTypedImage adds the stamps of one PostgreSQL row image (values in
// inv.cols order, with their database types).
func (inv *rowInvalidation) addTypedImage(types []string, vals []driver.Value) bool {
	return inv.addCanonImage(func(i int) (string, bool) { return pgCanonical(types[i], vals[i]) })
}

// addCanonImage adds the stamps of one row image whose i-th value (in
// inv.cols order) canonicalises to canon(i); false when one does not.
func (inv *rowInvalidation) addCanonImage(canon func(i int) (string, bool)) bool {
	byCol := make(map[string]string, len(inv.cols))
	for i, c := range inv.cols {
		cv, ok := canon(i)
		if !ok {
			return false
		}
		byCol[c] = cv
	}
	for _, s := range inv.schemes {
		vs := make([]string, len(s))
		for i, c := range s {
			vs[i] = byCol[c]
		}
		inv.keys = append(inv.keys, inv.p.stampKey(inv.table, s, vs))
	}
	return true
}

// Returning implements [Returner].
func (inv *rowInvalidation) Returning() (string, int, bool) {
	if inv.rw == nil || inv.coarse {
		return "", 0, false
	}
	return inv.rw.Returning, inv.rw.Extra, true
}

// ReturnedRow implements [Returner]: the row is an old image (DELETE) or a
// new one.
func (inv *rowInvalidation) ReturnedRow(types []string, vals []driver.Value) {
	inv.returned++
	if inv.coarse {
		return
	}
	if inv.returned > inv.p.opts.MaxImages || len(vals) != inv.rw.Extra || len(types) != len(vals) {
		inv.coarse = true
		return
	}
	if inv.rw.UpdatedFlag {
		n := len(vals) - 1
		if updated, ok := vals[n].(bool); !ok || updated {
			inv.coarse = true // its old image is unknown
			return
		}
		types, vals = types[:n], vals[:n]
	}
	if !inv.addTypedImage(types, vals) {
		inv.coarse = true
	}
}

// ReturnedEnd implements [Returner]. When the rewritten statement failed
// for a reason of its own (a scheme column that no longer exists, say),
// the table's scheme list is dropped with its epoch; outside the
// application's transaction the application's statement then runs as
// sent, inside one (which the failure aborted) the error is the
// application's.
func (inv *rowInvalidation) ReturnedEnd(ctx context.Context, err error) (rerun bool) {
	inv.ended = true
	if err == nil {
		return false
	}
	inv.coarse = true
	if !schemaError(err) {
		return false
	}
	// Dropped now: inside a transaction the invalidation is queued, and
	// the failed transaction will be rolled back.
	inv.dropList = true
	inv.p.deleteStamps(context.WithoutCancel(ctx), []string{inv.p.listKey(inv.table), inv.p.epochKey(inv.table)})
	if inv.c.InTx() {
		return false
	}
	if inv.commit {
		// The UPDATE's transaction is aborted: end it, and let the
		// statement run on its own.
		inv.commit = false
		if inv.c.ExecInner(context.WithoutCancel(ctx), "ROLLBACK") != nil {
			return false
		}
	}
	return true
}

// schemaError reports whether err is a PostgreSQL error of class 42
// (syntax error or access rule violation: an undefined column or table, a
// missing privilege), raised before a statement changes anything.
func schemaError(err error) bool {
	var s interface{ SQLState() string }
	return errors.As(err, &s) && strings.HasPrefix(s.SQLState(), "42")
}

// afterPostgres checks, once a rewritten statement has run, that its rows
// were all seen and, for an UPDATE, that it changed exactly the rows whose
// pre-images were read.
func (inv *rowInvalidation) afterPostgres(ctx context.Context, c Querier, err error) {
	switch {
	case inv.coarse:
		return
	case !inv.ended || err != nil:
		inv.coarse = true
		return
	case inv.kind != sqldeps.KindUpdate:
		return
	case inv.returned != inv.nLocked:
		// A row committed by another transaction between the pre-image
		// read and the UPDATE now matches, or a row locked no longer does.
		inv.coarse = true
		return
	case inv.locked == nil || inv.nLocked == 0:
		// The WHERE reads only the target row: every locked row still
		// matches, so equal counts mean the same rows.
		return
	}
	// With a FROM list or a subquery, a locked row may no longer match
	// while another does: the rows still visible at the locked ctids are
	// the locked rows the UPDATE did not change.
	var b strings.Builder
	b.WriteString("{")
	for id := range inv.locked {
		if b.Len() > 1 {
			b.WriteString(",")
		}
		_, ctid, _ := strings.Cut(id, ":")
		b.WriteString(`"` + ctid + `"`)
	}
	b.WriteString("}")
	rows, qerr := c.QueryInner(ctx, inv.rw.CheckLocked, []driver.NamedValue{{Ordinal: 1, Value: b.String()}})
	if qerr != nil {
		inv.coarse = true
		return
	}
	defer rows.Close()
	dest := make([]driver.Value, 2)
	for {
		clear(dest)
		if err := rows.Next(dest); err == io.EOF {
			break
		} else if err != nil {
			inv.coarse = true
			return
		}
		oid, _ := dest[0].(int64)
		ctid, _ := dest[1].(string)
		if _, ok := inv.locked[strconv.FormatInt(oid, 10)+":"+ctid]; ok {
			inv.coarse = true
			return
		}
	}
}
