package qcache

import (
	"context"
	"database/sql/driver"
	"fmt"
	"io"

	"github.com/cachekit/cachekit/qcache/internal/rowcodec"
)

// capture streams the inner rows to the application while copying them;
// once the application has read them to the end, it encodes them and calls
// fill.
type capture struct {
	typedRows
	ctx    context.Context
	fill   Fill
	opts   *Options
	rows   [][]driver.Value
	failed bool // capture abandoned: too many rows, unsupported value, error
	filled bool
}

func newCapture(ctx context.Context, rows driver.Rows, fill Fill, opts *Options) *capture {
	return &capture{typedRows: newTypedRows(rows), ctx: ctx, fill: fill, opts: opts}
}

// Close reads the rows the application left unread (QueryRow reads only
// one) so that the result can still be stored, then closes the inner rows.
// MaxRows bounds the extra reading.
func (c *capture) Close() error {
	if !c.failed && !c.filled {
		dest := make([]driver.Value, len(c.cols))
		for !c.failed && !c.filled {
			clear(dest)
			if err := c.Next(dest); err != nil {
				break
			}
		}
	}
	return c.inner.Close()
}

func (c *capture) Next(dest []driver.Value) error {
	err := c.inner.Next(dest)
	if c.failed || c.filled {
		return err
	}
	switch {
	case err == io.EOF:
		if c.HasNextResultSet() {
			c.failed = true // several result sets: not cacheable
			return err
		}
		c.filled = true
		res := rowcodec.Result{Columns: c.cols, Rows: c.rows}
		b, eerr := res.Encode()
		if eerr == nil {
			eerr = c.fill(c.ctx, b)
		}
		if eerr != nil && c.opts.OnError != nil {
			c.opts.OnError(fmt.Errorf("qcache: fill: %w", eerr))
		}
	case err != nil:
		c.failed = true
	case c.opts.MaxRows >= 0 && len(c.rows) >= c.opts.MaxRows:
		c.failed = true
		c.rows = nil
	default:
		row, cerr := rowcodec.CopyRow(dest)
		if cerr != nil {
			c.failed = true
			c.rows = nil
			return nil
		}
		c.rows = append(c.rows, row)
	}
	return err
}

// NextResultSet abandons the capture: several result sets are not cached.
func (c *capture) NextResultSet() error {
	c.failed = true
	c.rows = nil
	return c.typedRows.NextResultSet()
}
