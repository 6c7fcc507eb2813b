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
	return (&keysInvalidation{p: p, keys: []string{p.global}}).Apply(ctx)
}

// InvalidateTables invalidates every cached query reading one of tables.
func (p *GranularPolicy) InvalidateTables(ctx context.Context, tables ...string) error {
	inv := &keysInvalidation{p: p}
	for _, t := range tables {
		inv.keys = append(inv.keys, p.epochKey(t))
	}
	return inv.Apply(ctx)
}

// keysInvalidation deletes keys.
type keysInvalidation struct {
	p    *GranularPolicy
	keys []string
}

func (inv *keysInvalidation) Apply(ctx context.Context) error {
	return inv.p.deleteStamps(ctx, inv.keys)
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
		return &keysInvalidation{p: p, keys: []string{p.global}}, nil
	}
	switch a.Kind {
	case sqldeps.KindSelect, sqldeps.KindOther:
		return nil, nil
	case sqldeps.KindInsert, sqldeps.KindUpdate, sqldeps.KindDelete:
	default:
		return &keysInvalidation{p: p, keys: []string{p.global}}, nil
	}
	if len(a.Tables) != 1 {
		inv := &keysInvalidation{p: p}
		for _, t := range a.Tables {
			inv.keys = append(inv.keys, p.epochKey(t), p.wholeKey(t))
		}
		if len(inv.keys) == 0 {
			inv.keys = []string{p.global}
		}
		return inv, nil
	}
	t := a.Tables[0]
	inv := &rowInvalidation{p: p, table: t, keys: []string{p.wholeKey(t)}}
	list, err := p.opts.Store.Get(ctx, p.listKey(t))
	if err != nil && !errors.Is(err, cachekit.ErrMiss) {
		return nil, err
	}
	inv.list = string(list)
	inv.live = liveSchemes(list, p.opts.Now())
	for _, s := range inv.live {
		inv.schemes = append(inv.schemes, strings.Split(s, ","))
	}
	if len(inv.schemes) == 0 {
		return inv, nil // only whole-table readers: nothing row-level to find
	}
	if c == nil || p.dialect != sqldeps.SQLite {
		// Row images need the connection, and (for now) SQLite's rowid and
		// BEGIN IMMEDIATE: PostgreSQL writes bump the table epoch.
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
	canon := make(map[string]string, len(inv.cols))
	for i, c := range inv.cols {
		cv, ok := canonical(vals[i])
		if !ok {
			return false
		}
		canon[c] = cv
	}
	for _, s := range inv.schemes {
		vs := make([]string, len(s))
		for i, c := range s {
			vs[i] = canon[c]
		}
		inv.keys = append(inv.keys, inv.p.stampKey(inv.table, s, vs))
	}
	return true
}

// AfterWrite implements [AfterWriter]: it reads the post-images, and
// commits the transaction WritesConn opened.
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
	if inv.post != postNone || inv.coarse {
		keys = append(keys, p.epochKey(inv.table))
	} else {
		// A reader may have added a scheme after the write was planned:
		// its stamps were not computed, bump the epoch then.
		// (A scheme dropped from the list since is harmless: adding it
		// back rotates its generation.)
		list, err := p.opts.Store.Get(ctx, p.listKey(inv.table))
		if err != nil && !errors.Is(err, cachekit.ErrMiss) {
			keys = append(keys, p.epochKey(inv.table))
		} else if string(list) != inv.list {
			for _, s := range liveSchemes(list, p.opts.Now()) {
				if !slices.Contains(inv.live, s) {
					keys = append(keys, p.epochKey(inv.table))
					break
				}
			}
		}
	}
	return p.deleteStamps(ctx, keys)
}
