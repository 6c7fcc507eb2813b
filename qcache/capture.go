package qcache

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"

	"github.com/cachekit/cachekit/qcache/internal/rowcodec"
)

// Why the wrapper abandons a fill (besides an error of the query).
var (
	errInTransaction = errors.New("qcache: read inside a transaction")
	errSeveralSets   = errors.New("qcache: several result sets")
	errClosedEarly   = errors.New("qcache: rows closed before their end")
)

// capture streams the inner rows to the application while copying them;
// once the application has read them to the end, it encodes them and calls
// fill. It calls fill exactly once: with the result, or with the reason
// the capture is abandoned as soon as it is.
type capture struct {
	typedRows
	ctx  context.Context
	fill Fill
	opts *Options
	rows [][]driver.Value
	done bool // fill has been called
}

func newCapture(ctx context.Context, rows driver.Rows, fill Fill, opts *Options) *capture {
	return &capture{typedRows: newTypedRows(rows), ctx: ctx, fill: fill, opts: opts}
}

// Close reads the rows the application left unread (QueryRow reads only
// one) so that the result can still be stored, then closes the inner rows.
// MaxRows bounds the extra reading.
func (c *capture) Close() error {
	if !c.done {
		dest := make([]driver.Value, len(c.cols))
		for !c.done {
			clear(dest)
			if err := c.Next(dest); err != nil {
				break
			}
		}
	}
	err := c.inner.Close()
	c.abandon(errClosedEarly) // when Next did not end the capture
	return err
}

func (c *capture) Next(dest []driver.Value) error {
	err := c.inner.Next(dest)
	if c.done {
		return err
	}
	switch {
	case err == io.EOF:
		if c.HasNextResultSet() {
			c.abandon(errSeveralSets)
			return err
		}
		res := rowcodec.Result{Columns: c.cols, Rows: c.rows}
		b, eerr := res.Encode()
		if eerr != nil {
			eerr = fmt.Errorf("qcache: encode result: %w", eerr)
			c.report(eerr)
			c.abandon(eerr)
			return err
		}
		c.done, c.rows = true, nil
		c.report(c.fill(c.ctx, b, nil))
	case err != nil:
		c.abandon(err)
	case c.opts.MaxRows >= 0 && len(c.rows) >= c.opts.MaxRows:
		c.abandon(fmt.Errorf("%w (%d)", ErrResultTooLarge, c.opts.MaxRows))
	default:
		row, cerr := rowcodec.CopyRow(dest)
		if cerr != nil {
			c.abandon(cerr)
			return nil
		}
		c.rows = append(c.rows, row)
	}
	return err
}

// NextResultSet abandons the capture: several result sets are not cached.
func (c *capture) NextResultSet() error {
	c.abandon(errSeveralSets)
	return c.typedRows.NextResultSet()
}

// abandon calls fill with why, unless it has been called.
func (c *capture) abandon(why error) {
	if c.done {
		return
	}
	c.done = true
	c.rows = nil
	c.report(c.fill(c.ctx, nil, why))
}

// report passes an error of fill to Options.OnError.
func (c *capture) report(err error) {
	if err != nil && c.opts.OnError != nil {
		c.opts.OnError(fmt.Errorf("qcache: fill: %w", err))
	}
}
