package qcache

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/qcache/internal/sqldeps"
)

// noInvalidationKey is the context key of WithoutInvalidation.
type noInvalidationKey struct{}

// WithoutInvalidation returns a context under which statements run through
// the wrapper invalidate nothing: the policy is not asked what they write,
// so a [GranularPolicy] neither reads row images nor deletes stamps. It is
// meant for batch jobs that change many rows and then invalidate once,
// with InvalidateTables or InvalidateAll (on [GranularPolicy] or
// [TablePolicy]) when they are done.
//
// WARNING: until that closing invalidation, every result cached before or
// during the batch, by any process, may be served stale, and results read
// meanwhile may be cached again from the half-written data. The closing
// invalidation must run after the batch's last write has committed and
// must cover every table the batch wrote. Inside a transaction, a
// statement sent through Query under this context does not mark the
// transaction as having written, so the transaction's later queries may
// be served from the cache.
func WithoutInvalidation(ctx context.Context) context.Context {
	return context.WithValue(ctx, noInvalidationKey{}, true)
}

// invalidationSkipped reports whether ctx was made with
// WithoutInvalidation.
func invalidationSkipped(ctx context.Context) bool {
	b, _ := ctx.Value(noInvalidationKey{}).(bool)
	return b
}

// InvalidateRow invalidates the cached queries (and [CachedAs] values)
// that a row of table with the given column values may affect, as a write
// of that row through the wrapper would: for every live scheme of the
// table, the stamp of the row's values, and the table's whole-table stamp,
// are deleted. Call it for a row changed behind the wrapper's back (by
// another program, a trigger, a batch run under [WithoutInvalidation]):
// once with its old values and once with its new ones for an UPDATE.
//
// row maps column names to values, converted as database/sql converts
// arguments and canonicalised as the policy's row images are (see
// [GranularPolicy]); columns no scheme uses may be left out. On SQLite
// column and table names match case-insensitively; on PostgreSQL they
// must be spelled as the extractor folds them (lower case when unquoted).
// If the row lacks a column that a live scheme needs, or holds a value
// that cannot be canonicalised (a time.Time, say), or the table's scheme
// list cannot be read, the table's epoch is bumped instead, which
// invalidates every cached query reading the table.
func (p *GranularPolicy) InvalidateRow(ctx context.Context, table string, row map[string]any) error {
	t := p.tableName(table)
	keys := []string{p.wholeKey(t)}
	kind := InvalidateRows
	list, err := p.opts.Store.Get(ctx, p.listKey(t))
	if err != nil && !errors.Is(err, cachekit.ErrMiss) || !p.addRowStamps(&keys, t, list, row) {
		keys = append(keys, p.epochKey(t))
		kind = InvalidateTable
	}
	if err := p.deleteStamps(ctx, keys); err != nil {
		return fmt.Errorf("qcache: invalidate a row of %s: %w", t, err)
	}
	p.noteInvalidation(kind, "", []string{t})
	return nil
}

// addRowStamps appends to keys the stamps of row under the live schemes of
// list; false means a value is missing or cannot be canonicalised.
func (p *GranularPolicy) addRowStamps(keys *[]string, t string, list []byte, row map[string]any) bool {
	canon := map[string]string{}
	for _, sc := range liveSchemes(list, p.opts.Now()) {
		cols := strings.Split(sc, ",")
		vals := make([]string, len(cols))
		for i, c := range cols {
			cv, ok := canon[c]
			if !ok {
				v, found := p.rowValue(row, c)
				if !found {
					return false
				}
				if cv, ok = canonical(v); !ok {
					return false
				}
				canon[c] = cv
			}
			vals[i] = cv
		}
		*keys = append(*keys, p.stampKey(t, cols, vals))
	}
	return true
}

// rowValue returns the value of column col in row, converted as
// database/sql converts arguments.
func (p *GranularPolicy) rowValue(row map[string]any, col string) (any, bool) {
	v, ok := row[col]
	if !ok && p.dialect == sqldeps.SQLite {
		for k, x := range row {
			if strings.EqualFold(k, col) {
				v, ok = x, true
				break
			}
		}
	}
	if !ok {
		return nil, false
	}
	if c, err := driver.DefaultParameterConverter.ConvertValue(v); err == nil {
		v = c
	}
	return v, true
}
