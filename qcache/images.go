package qcache

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/qcache/internal/sqldeps"
)

// RowImage is one row of a table as a change feed reports it: the old or
// the new values of a row that a write changed.
type RowImage struct {
	// Columns names the values (at least the columns of the table's live
	// schemes; others are ignored). Names are matched as the extractor
	// spells them: exactly on PostgreSQL, case-insensitively on SQLite.
	Columns []string

	// Types, when not nil, holds the database type name of each column as
	// database/sql drivers report it (driver.RowsColumnTypeDatabaseTypeName:
	// "INT8", "TEXT", "UUID", ...). On PostgreSQL, values are then
	// canonicalised by type, as the write path does for RETURNING rows;
	// without types, by their Go type alone.
	Types []string

	// Values are the row's values, in the shapes a database/sql driver
	// returns (int64, float64, bool, []byte, string, time.Time, nil).
	Values []driver.Value
}

// InvalidateImages invalidates, as one write of table, every cached query
// that a row with one of the images could affect: for each live scheme of
// the table, the stamp of each image's values, and the whole-table stamp.
// If an image lacks a column a live scheme needs, or holds a value that
// cannot be canonicalised, or the table's scheme list cannot be read, the
// table's epoch is bumped instead. Change feeds (a database's own row
// change stream) call it with the old and new images of every row a
// committed transaction changed.
func (p *GranularPolicy) InvalidateImages(ctx context.Context, table string, images ...RowImage) error {
	t := p.tableName(table)
	inv := &rowInvalidation{p: p, table: t, keys: []string{p.wholeKey(t)}}
	list, err := p.opts.Store.Get(ctx, p.listKey(t))
	if err != nil && !errors.Is(err, cachekit.ErrMiss) {
		inv.coarse = true
	}
	for _, s := range liveSchemes(list, p.opts.Now()) {
		cols := strings.Split(s, ",")
		inv.schemes = append(inv.schemes, cols)
		for _, c := range cols {
			if !slices.Contains(inv.cols, c) {
				inv.cols = append(inv.cols, c)
			}
		}
	}
	for _, img := range images {
		if inv.coarse || len(inv.schemes) == 0 {
			break
		}
		if !inv.addCanonImage(p.imageCanon(img, inv.cols)) {
			inv.coarse = true
		}
	}
	kind := InvalidateRows
	if inv.coarse {
		inv.keys = append(inv.keys, p.epochKey(t))
		kind = InvalidateTable
	}
	if err := p.deleteStamps(ctx, inv.keys); err != nil {
		return fmt.Errorf("qcache: invalidate rows of %s: %w", t, err)
	}
	p.noteInvalidation(ctx, kind, "", []string{t})
	return nil
}

// imageCanon returns the canonicaliser of img's values in the order of
// cols, for rowInvalidation.addCanonImage.
func (p *GranularPolicy) imageCanon(img RowImage, cols []string) func(i int) (string, bool) {
	idx := make([]int, len(cols))
	for i, c := range cols {
		idx[i] = slices.IndexFunc(img.Columns, func(name string) bool {
			return name == c || p.dialect == sqldeps.SQLite && strings.EqualFold(name, c)
		})
	}
	return func(i int) (string, bool) {
		j := idx[i]
		if j < 0 || j >= len(img.Values) {
			return "", false
		}
		if p.dialect == sqldeps.Postgres && j < len(img.Types) {
			return pgCanonical(img.Types[j], img.Values[j])
		}
		return canonical(img.Values[j])
	}
}
