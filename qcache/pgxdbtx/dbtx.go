package pgxdbtx

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"reflect"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Runner is what [DB] and [Tx] run statements on: *sql.DB, *sql.Conn and
// *sql.Tx implement it.
type Runner interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// DBTX is the interface sqlc generates in its pgx/v5 mode; [DB] and [Tx]
// implement it.
type DBTX interface {
	Exec(ctx context.Context, query string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, query string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, query string, args ...any) pgx.Row
}

var (
	_ DBTX = (*DB)(nil)
	_ DBTX = (*Tx)(nil)
)

// DB runs sqlc's pgx/v5 code on a database/sql handle, normally a *sql.DB
// opened on a connector wrapped by qcache.Wrap. It is safe for concurrent
// use when its handle is (a *sql.DB is, a *sql.Conn is not).
type DB struct {
	r Runner
}

// New returns a DB over r: a *sql.DB, or a *sql.Conn to pin one
// connection. Use [DB.Begin] for a transaction rather than passing a
// *sql.Tx, so that Commit and Rollback are at hand.
func New(r Runner) *DB {
	return &DB{r: r}
}

// Exec runs a statement and returns its command tag (see the package
// documentation for how it is built).
func (d *DB) Exec(ctx context.Context, query string, args ...any) (pgconn.CommandTag, error) {
	return execOn(ctx, d.r, query, args)
}

// Query runs a statement and returns its rows, which the caller must close
// (or read to the end). An error of the statement is returned by Query or
// by the rows' Err.
func (d *DB) Query(ctx context.Context, query string, args ...any) (pgx.Rows, error) {
	return queryOn(ctx, d.r, query, args)
}

// QueryRow runs a statement expected to return at most one row; its Scan
// returns [pgx.ErrNoRows] (which matches [sql.ErrNoRows] too) when there is
// none, and reads only the first row otherwise.
func (d *DB) QueryRow(ctx context.Context, query string, args ...any) pgx.Row {
	return queryRowOn(ctx, d.r, query, args)
}

// Begin starts a transaction with the default options. It needs a DB over
// a *sql.DB or a *sql.Conn.
func (d *DB) Begin(ctx context.Context) (*Tx, error) {
	return d.BeginTx(ctx, nil)
}

// BeginTx starts a transaction with opts (nil: the defaults). It needs a
// DB over a *sql.DB or a *sql.Conn. The transaction is rolled back if ctx
// is canceled before Commit, as with database/sql.
func (d *DB) BeginTx(ctx context.Context, opts *sql.TxOptions) (*Tx, error) {
	b, ok := d.r.(interface {
		BeginTx(context.Context, *sql.TxOptions) (*sql.Tx, error)
	})
	if !ok {
		return nil, fmt.Errorf("pgxdbtx: begin: %T cannot start a transaction", d.r)
	}
	tx, err := b.BeginTx(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("pgxdbtx: begin: %w", err)
	}
	return &Tx{tx: tx}, nil
}

// Tx is a transaction: pass it to sqlc's generated New to run queries in
// it. Its statements see the transaction as database/sql's do, and qcache
// applies their invalidations at Commit. A Tx is not safe for concurrent
// use, as *sql.Tx's statements must not overlap with open rows.
type Tx struct {
	tx *sql.Tx
}

// Exec runs a statement in the transaction; see [DB.Exec].
func (t *Tx) Exec(ctx context.Context, query string, args ...any) (pgconn.CommandTag, error) {
	return execOn(ctx, t.tx, query, args)
}

// Query runs a statement in the transaction; see [DB.Query].
func (t *Tx) Query(ctx context.Context, query string, args ...any) (pgx.Rows, error) {
	return queryOn(ctx, t.tx, query, args)
}

// QueryRow runs a statement in the transaction; see [DB.QueryRow].
func (t *Tx) QueryRow(ctx context.Context, query string, args ...any) pgx.Row {
	return queryRowOn(ctx, t.tx, query, args)
}

// Commit commits the transaction. ctx is unused (database/sql's Commit
// takes none); it is there to match pgx.Tx. Committing a transaction that
// is already done returns an error wrapping [pgx.ErrTxClosed].
func (t *Tx) Commit(ctx context.Context) error {
	if err := t.tx.Commit(); err != nil {
		return txErr("commit", err)
	}
	return nil
}

// Rollback rolls the transaction back. As with pgx, rolling back a
// transaction that is already committed or rolled back returns an error
// wrapping [pgx.ErrTxClosed], so that `defer tx.Rollback(ctx)` is safe.
func (t *Tx) Rollback(ctx context.Context) error {
	if err := t.tx.Rollback(); err != nil {
		return txErr("rollback", err)
	}
	return nil
}

// SQL returns the underlying *sql.Tx.
func (t *Tx) SQL() *sql.Tx { return t.tx }

func txErr(op string, err error) error {
	if errors.Is(err, sql.ErrTxDone) {
		return fmt.Errorf("pgxdbtx: %s: %w (%w)", op, pgx.ErrTxClosed, err)
	}
	return fmt.Errorf("pgxdbtx: %s: %w", op, err)
}

func execOn(ctx context.Context, r Runner, query string, args []any) (pgconn.CommandTag, error) {
	res, err := r.ExecContext(ctx, query, convertArgs(args)...)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		// The driver knows no count: the tag then carries none.
		n = -1
	}
	return commandTag(query, n), nil
}

func queryOn(ctx context.Context, r Runner, query string, args []any) (pgx.Rows, error) {
	rows, err := r.QueryContext(ctx, query, convertArgs(args)...)
	if err != nil {
		return nil, err
	}
	return newRows(query, rows)
}

func queryRowOn(ctx context.Context, r Runner, query string, args []any) pgx.Row {
	rows, err := queryOn(ctx, r, query, args)
	return &row{rows: rows, err: err}
}

// convertArgs replaces the arguments that implement driver.Valuer by their
// values, as database/sql does for drivers without a NamedValueChecker:
// the pgx driver would take pgtype values as they are, and the query cache
// would then drop the conditions on them (table-wide invalidation).
func convertArgs(args []any) []any {
	var out []any // a copy, made at the first Valuer: args is the caller's
	for i, a := range args {
		v, ok := a.(driver.Valuer)
		if !ok {
			continue
		}
		if out == nil {
			out = append([]any(nil), args...)
		}
		out[i] = valuerValue(v)
	}
	if out == nil {
		return args
	}
	return out
}

// valuerValue calls v.Value, treating a nil pointer whose Value method has
// a value receiver as NULL (as database/sql does). When Value fails, v is
// passed on as it is, so that the driver reports the error.
func valuerValue(v driver.Valuer) any {
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && rv.IsNil() &&
		rv.Type().Elem().Implements(reflect.TypeFor[driver.Valuer]()) {
		return nil
	}
	val, err := v.Value()
	if err != nil {
		return v
	}
	return val
}

// row is the pgx.Row of QueryRow.
type row struct {
	rows pgx.Rows
	err  error
}

func (r *row) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	r.rows.Close()
	return r.rows.Err()
}
