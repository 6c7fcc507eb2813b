package qcache

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"reflect"

	"github.com/cachekit/cachekit/qcache/internal/rowcodec"
)

// connector wraps an inner connector.
type connector struct {
	inner driver.Connector
	opts  *Options
}

func (c *connector) Connect(ctx context.Context) (driver.Conn, error) {
	ic, err := c.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &conn{inner: ic, opts: c.opts}, nil
}

func (c *connector) Driver() driver.Driver { return &wrapDriver{inner: c.inner.Driver(), opts: c.opts} }

// Close closes the inner connector when it is an io.Closer (database/sql
// calls it from DB.Close).
func (c *connector) Close() error {
	if cl, ok := c.inner.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}

// wrapDriver is what connector.Driver returns: Open wraps the inner
// driver's connections.
type wrapDriver struct {
	inner driver.Driver
	opts  *Options
}

func (d *wrapDriver) Open(name string) (driver.Conn, error) {
	ic, err := d.inner.Open(name)
	if err != nil {
		return nil, err
	}
	return &conn{inner: ic, opts: d.opts}, nil
}

// conn wraps an inner connection. Like every driver.Conn it is used by one
// goroutine at a time.
type conn struct {
	inner driver.Conn
	opts  *Options
	tx    *txState // nil outside a transaction
}

var (
	_ driver.QueryerContext     = (*conn)(nil)
	_ driver.ExecerContext      = (*conn)(nil)
	_ driver.ConnBeginTx        = (*conn)(nil)
	_ driver.ConnPrepareContext = (*conn)(nil)
	_ driver.NamedValueChecker  = (*conn)(nil)
	_ driver.SessionResetter    = (*conn)(nil)
	_ driver.Validator          = (*conn)(nil)
	_ driver.Pinger             = (*conn)(nil)
)

func (c *conn) reportError(err error) {
	if c.opts.OnError != nil && err != nil {
		c.opts.OnError(err)
	}
}

func (c *conn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	var (
		s   driver.Stmt
		err error
	)
	if pc, ok := c.inner.(driver.ConnPrepareContext); ok {
		s, err = pc.PrepareContext(ctx, query)
	} else {
		s, err = c.inner.Prepare(query)
		if err == nil && ctx.Err() != nil {
			s.Close()
			return nil, ctx.Err()
		}
	}
	if err != nil {
		return nil, err
	}
	return &stmt{c: c, inner: s, query: query}, nil
}

func (c *conn) Close() error { return c.inner.Close() }

func (c *conn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	var (
		t   driver.Tx
		err error
	)
	if bt, ok := c.inner.(driver.ConnBeginTx); ok {
		t, err = bt.BeginTx(ctx, opts)
	} else {
		// database/sql's own fallback for drivers without ConnBeginTx.
		if opts.Isolation != driver.IsolationLevel(sql.LevelDefault) {
			return nil, errors.New("sql: driver does not support non-default isolation level")
		}
		if opts.ReadOnly {
			return nil, errors.New("sql: driver does not support read-only transactions")
		}
		//lint:ignore SA1019 fallback for old drivers
		t, err = c.inner.Begin()
	}
	if err != nil {
		return nil, err
	}
	return c.begin(t, sql.IsolationLevel(opts.Isolation)), nil
}

func (c *conn) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := c.inner.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

func (c *conn) ResetSession(ctx context.Context) error {
	if r, ok := c.inner.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *conn) IsValid() bool {
	if v, ok := c.inner.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

func (c *conn) Ping(ctx context.Context) error {
	if p, ok := c.inner.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (c *conn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	qc, hasQC := c.inner.(driver.QueryerContext)
	//lint:ignore SA1019 fallback for old drivers
	q, hasQ := c.inner.(driver.Queryer)
	if !hasQC && !hasQ {
		// database/sql prepares the statement instead; stmt caches then.
		return nil, driver.ErrSkip
	}
	return c.query(ctx, query, args, func() (driver.Rows, error) {
		if hasQC {
			return qc.QueryContext(ctx, query, args)
		}
		vals, err := namedValuesToValues(args)
		if err != nil {
			return nil, err
		}
		return q.Query(query, vals)
	})
}

func (c *conn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	ec, hasEC := c.inner.(driver.ExecerContext)
	//lint:ignore SA1019 fallback for old drivers
	e, hasE := c.inner.(driver.Execer)
	if !hasEC && !hasE {
		return nil, driver.ErrSkip
	}
	return c.exec(ctx, query, args, func() (driver.Result, error) {
		if hasEC {
			return ec.ExecContext(ctx, query, args)
		}
		vals, err := namedValuesToValues(args)
		if err != nil {
			return nil, err
		}
		return e.Exec(query, vals)
	})
}

// resultLooker is a [Policy] whose hits may come decoded: lookupResult is
// Lookup, except that a hit may also (or only, with hit still set) return
// res, a decoded result shared with other readers, to replay as it is.
type resultLooker interface {
	lookupResult(ctx context.Context, q Query) (res *rowcodec.Result, hit []byte, fill Fill, err error)
}

// query runs a read through the cache: a hit is replayed; a miss runs run
// and captures its rows for the policy's fill; anything else runs run as a
// possible write.
func (c *conn) query(ctx context.Context, sqlText string, args []driver.NamedValue, run func() (driver.Rows, error)) (driver.Rows, error) {
	p := c.opts.Policy
	if p == nil {
		return run()
	}
	if rows, ok, err := c.queryControl(ctx, sqlText, run); ok {
		return rows, err
	}
	q := Query{SQL: sqlText, Args: args, TTL: ttlOf(ctx)}
	if !bypassed(ctx) && (c.tx == nil || !c.tx.dirty && !c.tx.noCache) {
		var res *rowcodec.Result
		var hit []byte
		var fill Fill
		var err error
		if rl, ok := p.(resultLooker); ok {
			res, hit, fill, err = rl.lookupResult(ctx, q)
		} else {
			hit, fill, err = p.Lookup(ctx, q)
		}
		switch {
		case err != nil:
			c.reportError(fmt.Errorf("qcache: lookup: %w", err))
		case res != nil:
			return res.Replay(), nil
		case hit != nil:
			res, err := rowcodec.Decode(hit)
			if err == nil {
				return res.Replay(), nil
			}
			c.reportError(fmt.Errorf("qcache: decode cached result: %w", err))
		case fill != nil:
			// fill is called exactly once on every path: the policy may
			// hold other readers of the entry until then.
			rows, err := run()
			if err != nil {
				c.reportError(fill(ctx, nil, err))
				return nil, err
			}
			if c.tx != nil {
				// Never fill from a transaction: its snapshot may be older
				// than the stamps read by Lookup.
				c.reportError(fill(ctx, nil, errInTransaction))
				return rows, nil
			}
			return newCapture(ctx, rows, fill, c.opts), nil
		default:
			// Not a cacheable read: fall through as a possible write.
		}
	}
	inv, err := c.writes(ctx, q)
	if err != nil {
		return nil, err
	}
	if rt, ok := inv.(Returner); ok {
		if rows, ran, err := c.queryReturning(ctx, rt, args); ran {
			return rows, err
		}
	}
	rows, err := run()
	if f, ok := inv.(*feedInvalidation); ok { // feedhook:
		return c.feedQuery(ctx, f, sqlText, rows, err) // feedhook:
	} // feedhook:
	aw, _ := inv.(AfterWriter)
	if errors.Is(err, driver.ErrSkip) {
		if aw != nil && c.tx == nil {
			c.afterWrite(ctx, aw, err)
		}
		return nil, err
	}
	if inv == nil {
		return rows, err
	}
	if c.tx != nil {
		c.tx.queue(inv)
		return rows, err
	}
	if err != nil {
		if aw != nil {
			c.afterWrite(ctx, aw, err)
		}
		c.apply(ctx, inv)
		return nil, err
	}
	// A write through Query (INSERT ... RETURNING) may run as the rows are
	// read: invalidate once they are closed.
	return &afterClose{typedRows: newTypedRows(rows), done: func() {
		if aw != nil {
			c.afterWrite(ctx, aw, nil)
		}
		c.apply(ctx, inv)
	}}, nil
}

// exec runs a statement that may write and applies or queues its
// invalidation.
func (c *conn) exec(ctx context.Context, sqlText string, args []driver.NamedValue, run func() (driver.Result, error)) (driver.Result, error) {
	p := c.opts.Policy
	if p == nil {
		return run()
	}
	if res, ok, err := c.execControl(ctx, sqlText, run); ok {
		return res, err
	}
	inv, err := c.writes(ctx, Query{SQL: sqlText, Args: args, TTL: ttlOf(ctx)})
	if err != nil {
		return nil, err
	}
	var (
		res driver.Result
		ran bool
	)
	if rt, ok := inv.(Returner); ok {
		res, ran, err = c.execReturning(ctx, rt, args)
	}
	if !ran {
		res, err = run()
	}
	if aw, ok := inv.(AfterWriter); ok {
		if aerr := aw.AfterWrite(ctx, c, err); aerr != nil {
			if err == nil {
				err = aerr
			} else {
				c.reportError(fmt.Errorf("qcache: after write: %w", aerr))
			}
		}
	}
	if errors.Is(err, driver.ErrSkip) {
		return nil, err
	}
	// Applied even when the statement failed: a failed statement may have
	// changed rows on some databases, and a spare invalidation is harmless.
	if c.tx != nil {
		c.tx.queue(inv)
	} else if inv != nil {
		c.apply(ctx, inv)
	}
	return res, err
}

// writes asks the policy what a statement about to run invalidates, with
// access to the connection when the policy wants it. Under
// WithoutInvalidation the policy is not asked: the statement invalidates
// nothing.
func (c *conn) writes(ctx context.Context, q Query) (Invalidation, error) {
	if inv, ok, err := c.feedWrites(ctx, q); ok { // feedhook:
		return inv, err // feedhook:
	} // feedhook:
	if invalidationSkipped(ctx) {
		return nil, nil
	}
	if cp, ok := c.opts.Policy.(ConnPolicy); ok {
		return cp.WritesConn(ctx, q, c)
	}
	return c.opts.Policy.Writes(ctx, q)
}

// QueryInner implements [Querier]: it runs query on the inner connection.
func (c *conn) QueryInner(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	qc, ok := c.inner.(driver.QueryerContext)
	if !ok {
		return nil, errors.New("qcache: inner connection is not a driver.QueryerContext")
	}
	return qc.QueryContext(ctx, query, args)
}

// afterWrite calls aw and reports its error.
func (c *conn) afterWrite(ctx context.Context, aw AfterWriter, err error) {
	if aerr := aw.AfterWrite(ctx, c, err); aerr != nil {
		c.reportError(fmt.Errorf("qcache: after write: %w", aerr))
	}
}

// ExecInner implements [Querier]: it runs query on the inner connection.
func (c *conn) ExecInner(ctx context.Context, query string) error {
	ec, ok := c.inner.(driver.ExecerContext)
	if !ok {
		return errors.New("qcache: inner connection is not a driver.ExecerContext")
	}
	_, err := ec.ExecContext(ctx, query, nil)
	return err
}

// InTx implements [Querier].
func (c *conn) InTx() bool { return c.tx != nil }

// apply applies invalidations on a context that the caller's cancellation
// does not cut short.
func (c *conn) apply(ctx context.Context, invs ...Invalidation) {
	ctx = context.WithoutCancel(ctx)
	for _, inv := range invs {
		if err := inv.Apply(ctx); err != nil {
			c.reportError(fmt.Errorf("%w: %w", ErrInvalidation, err))
		}
	}
}

func namedValuesToValues(args []driver.NamedValue) ([]driver.Value, error) {
	vals := make([]driver.Value, len(args))
	for i, a := range args {
		if a.Name != "" {
			return nil, errors.New("sql: driver does not support the use of Named Parameters")
		}
		vals[i] = a.Value
	}
	return vals, nil
}

// stmt wraps an inner prepared statement; its queries and execs go through
// the cache like the connection's.
type stmt struct {
	c     *conn
	inner driver.Stmt
	query string
}

var (
	_ driver.StmtQueryContext  = (*stmt)(nil)
	_ driver.StmtExecContext   = (*stmt)(nil)
	_ driver.NamedValueChecker = (*stmt)(nil)
)

func (s *stmt) Close() error  { return s.inner.Close() }
func (s *stmt) NumInput() int { return s.inner.NumInput() }

func (s *stmt) Exec(args []driver.Value) (driver.Result, error) {
	return s.ExecContext(context.Background(), valuesToNamed(args))
}

func (s *stmt) Query(args []driver.Value) (driver.Rows, error) {
	return s.QueryContext(context.Background(), valuesToNamed(args))
}

func (s *stmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	return s.c.exec(ctx, s.query, args, func() (driver.Result, error) {
		if ec, ok := s.inner.(driver.StmtExecContext); ok {
			return ec.ExecContext(ctx, args)
		}
		vals, err := namedValuesToValues(args)
		if err != nil {
			return nil, err
		}
		//lint:ignore SA1019 fallback for old drivers
		return s.inner.Exec(vals)
	})
}

func (s *stmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	return s.c.query(ctx, s.query, args, func() (driver.Rows, error) {
		if qc, ok := s.inner.(driver.StmtQueryContext); ok {
			return qc.QueryContext(ctx, args)
		}
		vals, err := namedValuesToValues(args)
		if err != nil {
			return nil, err
		}
		//lint:ignore SA1019 fallback for old drivers
		return s.inner.Query(vals)
	})
}

// CheckNamedValue delegates to the inner statement's checker, else to the
// inner connection's: database/sql asks only the statement when it has one.
func (s *stmt) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := s.inner.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return s.c.CheckNamedValue(nv)
}

func valuesToNamed(args []driver.Value) []driver.NamedValue {
	nv := make([]driver.NamedValue, len(args))
	for i, v := range args {
		nv[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	return nv
}

// typedRows forwards to inner rows and answers the column type questions
// with the answers the inner rows gave once, at the start (rows that lack
// an interface answer as database/sql assumes then).
type typedRows struct {
	inner   driver.Rows
	cols    []rowcodec.Column
	nextSet driver.RowsNextResultSet // nil when the inner rows lack it
}

// columnTyped is what capture and afterClose implement.
type columnTyped interface {
	driver.RowsColumnTypeDatabaseTypeName
	driver.RowsColumnTypeNullable
	driver.RowsColumnTypeLength
	driver.RowsColumnTypePrecisionScale
	driver.RowsColumnTypeScanType
	driver.RowsNextResultSet
}

var (
	_ columnTyped = (*capture)(nil)
	_ columnTyped = (*afterClose)(nil)
)

func newTypedRows(rows driver.Rows) typedRows {
	t := typedRows{inner: rows, cols: rowcodec.ReadColumns(rows)}
	t.nextSet, _ = rows.(driver.RowsNextResultSet)
	return t
}

func (r *typedRows) Columns() []string                       { return r.inner.Columns() }
func (r *typedRows) Next(dest []driver.Value) error          { return r.inner.Next(dest) }
func (r *typedRows) ColumnTypeDatabaseTypeName(i int) string { return r.cols[i].DatabaseTypeName }

func (r *typedRows) ColumnTypeNullable(i int) (nullable, ok bool) {
	return r.cols[i].Nullable, r.cols[i].NullableOK
}

func (r *typedRows) ColumnTypeLength(i int) (int64, bool) {
	return r.cols[i].Length, r.cols[i].LengthOK
}

func (r *typedRows) ColumnTypePrecisionScale(i int) (precision, scale int64, ok bool) {
	col := r.cols[i]
	return col.Precision, col.Scale, col.PrecisionScaleOK
}

func (r *typedRows) ColumnTypeScanType(i int) reflect.Type { return r.cols[i].ScanType }

func (r *typedRows) HasNextResultSet() bool {
	return r.nextSet != nil && r.nextSet.HasNextResultSet()
}

func (r *typedRows) NextResultSet() error {
	if r.nextSet == nil {
		return io.EOF
	}
	return r.nextSet.NextResultSet()
}

// afterClose calls done once, when the rows are closed.
type afterClose struct {
	typedRows
	done func()
}

func (r *afterClose) Close() error {
	err := r.inner.Close()
	if r.done != nil {
		r.done()
		r.done = nil
	}
	return err
}
