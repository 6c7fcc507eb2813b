package qcache

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
)

// errNoQueryer is what a [Returner] hears when the inner connection cannot
// run its statement.
var errNoQueryer = errors.New("qcache: inner connection is not a driver.QueryerContext")

// execReturning runs the statement of rt in place of an Exec's: it reads
// every row, feeding the extra columns to rt, and returns their count as
// the result. ran is false when the application's statement must run
// instead (rt declined, or the inner connection cannot query).
func (c *conn) execReturning(ctx context.Context, rt Returner, args []driver.NamedValue) (res driver.Result, ran bool, err error) {
	rows, extra, ran, err := c.runReturning(ctx, rt, args)
	if rows == nil {
		return nil, ran, err
	}
	r := newReturningRows(ctx, rows, extra, rt)
	err = r.drain()
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	rt.ReturnedEnd(ctx, err)
	if err != nil {
		return nil, true, err
	}
	return returnedResult(r.n), true, nil
}

// runReturning runs the statement of rt on the inner connection, with
// the number of extra columns it appends. ran is false when the
// application's statement must run instead (rt declined, the inner
// connection cannot query, or rt asked for a rerun after an error); when
// the statement failed, ran is true, rows nil and rt has been told.
func (c *conn) runReturning(ctx context.Context, rt Returner, args []driver.NamedValue) (rows driver.Rows, extra int, ran bool, err error) {
	query, extra, ok := rt.Returning()
	if !ok {
		return nil, 0, false, nil
	}
	qc, ok := c.inner.(driver.QueryerContext)
	if !ok {
		rt.ReturnedEnd(ctx, errNoQueryer)
		return nil, 0, false, nil
	}
	rows, err = qc.QueryContext(ctx, query, args)
	if err != nil {
		if rt.ReturnedEnd(ctx, err) {
			return nil, 0, false, nil
		}
		return nil, extra, true, err
	}
	return rows, extra, true, nil
}

// queryReturning runs the statement of rt in place of a Query's and
// returns its rows without the extra columns. ran is false when the
// application's statement must run instead. Once the rows are closed,
// AfterWrite is called (also inside a transaction: the invalidation then
// knows every row) and the invalidation is applied, or queued at once
// inside a transaction.
func (c *conn) queryReturning(ctx context.Context, rt Returner, args []driver.NamedValue) (rows driver.Rows, ran bool, err error) {
	inner, extra, ran, err := c.runReturning(ctx, rt, args)
	if !ran {
		return nil, false, nil
	}
	aw, _ := rt.(AfterWriter)
	inTx := c.tx != nil
	if inTx {
		// Queued now: the transaction has written, whatever follows.
		c.tx.queue(rt)
	}
	finish := func(err error) {
		if aw != nil {
			c.afterWrite(ctx, aw, err)
		}
		if !inTx {
			c.apply(ctx, rt)
		}
	}
	if err != nil {
		finish(err)
		return nil, true, err
	}
	r := newReturningRows(ctx, inner, extra, rt)
	r.done = finish
	return r, true, nil
}

// returnedResult is the result of an Exec run as a query: its number of
// rows.
type returnedResult int64

func (n returnedResult) LastInsertId() (int64, error) {
	return 0, errors.New("qcache: LastInsertId is not supported for a statement run with RETURNING")
}

func (n returnedResult) RowsAffected() (int64, error) { return int64(n), nil }

// returningRows are the rows of a statement a [Returner] rewrote: the
// last extra columns of each row go to the Returner and are hidden from
// the application. Close reads the rows left unread.
type returningRows struct {
	typedRows
	ctx     context.Context
	rt      Returner
	visible int            // the application's columns
	types   []string       // database types of the extra columns
	buf     []driver.Value // a whole inner row
	n       int64          // rows read
	end     error          // io.EOF once read to the end, or the error that ended them
	closed  bool
	done    func(err error) // called once, on Close, after ReturnedEnd
}

var _ columnTyped = (*returningRows)(nil)

func newReturningRows(ctx context.Context, rows driver.Rows, extra int, rt Returner) *returningRows {
	r := &returningRows{typedRows: newTypedRows(rows), ctx: ctx, rt: rt}
	all := len(rows.Columns())
	r.buf = make([]driver.Value, all)
	r.visible = all - extra
	if r.visible < 0 {
		r.visible = 0
		r.end = fmt.Errorf("qcache: the rewritten statement returned %d columns, fewer than the %d it adds", all, extra)
		return r
	}
	for _, col := range r.cols[r.visible:] {
		r.types = append(r.types, col.DatabaseTypeName)
	}
	return r
}

// next reads one inner row and hands its extra columns to the Returner.
func (r *returningRows) next() error {
	if r.end != nil {
		return r.end
	}
	clear(r.buf)
	if err := r.inner.Next(r.buf); err != nil {
		r.end = err
		return err
	}
	r.n++
	r.rt.ReturnedRow(r.types, r.buf[r.visible:])
	return nil
}

// drain reads the remaining rows; it returns nil once they are all read.
func (r *returningRows) drain() error {
	for r.next() == nil {
	}
	if r.end == io.EOF {
		return nil
	}
	return r.end
}

func (r *returningRows) Columns() []string { return r.inner.Columns()[:r.visible] }

func (r *returningRows) Next(dest []driver.Value) error {
	if r.visible == 0 {
		// The application's statement returns no rows (it had no
		// RETURNING): all of them are ours.
		if err := r.drain(); err != nil {
			return err
		}
		return io.EOF
	}
	if err := r.next(); err != nil {
		return err
	}
	copy(dest, r.buf[:r.visible])
	return nil
}

func (r *returningRows) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	// PostgreSQL has run the whole statement: the unread rows are changes
	// too.
	err := r.drain()
	cerr := r.inner.Close()
	if err == nil {
		err = cerr
	}
	r.rt.ReturnedEnd(r.ctx, err)
	if r.done != nil {
		r.done(err)
	}
	return err
}

// The column type answers of the application's columns come from
// typedRows: the hidden columns are the last ones.

func (r *returningRows) HasNextResultSet() bool { return false }

func (r *returningRows) NextResultSet() error { return io.EOF }
