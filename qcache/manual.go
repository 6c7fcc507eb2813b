package qcache

import (
	"context"
	"database/sql/driver"
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
	img := RowImage{Columns: make([]string, 0, len(row)), Values: make([]driver.Value, 0, len(row))}
	for col, v := range row {
		if c, err := driver.DefaultParameterConverter.ConvertValue(v); err == nil {
			v = c
		}
		img.Columns = append(img.Columns, col)
		img.Values = append(img.Values, v)
	}
	return p.InvalidateImages(ctx, table, img)
}
