package qcache

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"
)

// Query is a statement as the wrapper hands it to a [Policy]: its SQL text,
// its arguments after database/sql converted them, and the per-query
// controls found in the context.
type Query struct {
	// SQL is the statement text exactly as the application sent it.
	SQL string

	// Args are the converted arguments (driver values; a driver's
	// NamedValueChecker may produce types beyond the standard ones).
	Args []driver.NamedValue

	// TTL is the lifetime requested with [WithTTL]; zero means the policy's
	// default.
	TTL time.Duration
}

// Fill completes a miss that [Policy.Lookup] reported. The wrapper calls
// it exactly once for every Fill it receives:
//
//   - with the result encoded by the wrapper and a nil abandoned, once the
//     application has read every row (when it closes the rows early, the
//     wrapper reads the rest itself, up to [Options.MaxRows]);
//   - with a nil result and a non-nil abandoned saying why the result is
//     not offered to the cache: the query or the reading of its rows failed
//     (that error), the result has more rows than MaxRows (an error
//     wrapping [ErrResultTooLarge]), a value the encoding does not know,
//     several result sets, or a query inside a transaction.
//
// A policy may hold something for the miss until then (other readers of
// the same entry waiting for it, a lease in the store) and must release it
// in either case. Fill is called on the goroutine that reads the rows, with
// the query's context. Its error is reported to [Options.OnError] and never
// to the application.
type Fill func(ctx context.Context, result []byte, abandoned error) error

// ErrResultTooLarge is wrapped by the abandoned error a [Fill] receives when
// the result has more rows than [Options.MaxRows].
var ErrResultTooLarge = errors.New("qcache: result larger than Options.MaxRows")

// Invalidation is what a statement invalidates. The wrapper applies it
// after the statement has run, outside a transaction, or right after Commit
// inside one (and drops it on Rollback). Apply runs on a context that is
// not canceled with the caller's: once the database has changed, the cache
// must hear of it.
type Invalidation interface {
	// Apply makes every cached result the statement may have changed
	// unreachable. An error means the invalidation may be lost; the policy
	// must then stop serving what it may have covered.
	Apply(ctx context.Context) error
}

// Policy decides what the wrapper caches and what each write invalidates.
// It is the seam between the driver mechanics (the wrapper) and the
// dependency tracking ([GranularPolicy]'s row-level stamps, [TablePolicy]'s
// table stamps). Implementations are safe for concurrent use.
type Policy interface {
	// Lookup is called before a read that may be served from the cache. It
	// returns the cached encoded result on a hit; on a miss of a cacheable
	// query it returns nil and a Fill; for a query it does not cache it
	// returns nil, nil (the wrapper then treats the query as a possible
	// write and calls Writes). An error means the cache cannot be consulted:
	// the wrapper reports it to Options.OnError and runs the query uncached.
	// On a miss, Lookup may wait (bounded, see GranularOptions.LockWait)
	// for another reader's fill of the same query: the dog-pile lock.
	Lookup(ctx context.Context, q Query) (hit []byte, fill Fill, err error)

	// Writes is called before every statement that is not served from the
	// cache: every Exec, and every Query that Lookup declined or that
	// bypassed the cache. It returns the invalidation the statement needs
	// once it has run, or nil when it writes nothing. An error stops the
	// statement before it reaches the database and is returned to the
	// application, so that the database never changes without the cache
	// being told.
	Writes(ctx context.Context, q Query) (Invalidation, error)
}

// Options configures [Wrap] and [Open]. The zero value is valid: without a
// Policy, the wrapper passes every call through uncached.
type Options struct {
	// Policy decides what is cached and invalidated. Default: nil, no
	// caching. See [NewTablePolicy].
	Policy Policy

	// MaxRows is the largest result, in rows, that is captured for the
	// cache; a larger result streams through uncached. When the application
	// closes a cacheable result before its end (QueryRow reads one row),
	// the wrapper reads the rest, up to MaxRows, so that it can store it.
	// Default: DefaultMaxRows. Negative means no limit.
	MaxRows int

	// OnError receives the cache errors the wrapper does not return to the
	// application (lookup, fill, decode and invalidation failures). It must
	// be safe for concurrent use. Default: nil, errors are dropped.
	OnError func(error)
}

// DefaultMaxRows is the default for [Options.MaxRows].
const DefaultMaxRows = 10_000

// ErrInvalidation wraps an error of [Invalidation.Apply], as reported to
// [Options.OnError] after a write whose invalidation failed.
var ErrInvalidation = errors.New("qcache: invalidation failed")

type ctxKey int

const (
	bypassKey ctxKey = iota
	ttlKey
	cacheKey
)

// CacheOptions are the per-query controls of [Cache].
type CacheOptions struct {
	// TTL is the lifetime of the results stored, as with [WithTTL]. Zero
	// keeps the default: the smallest TTL of the profiles of the tables
	// read, else the policy's TTL.
	TTL time.Duration

	// Lock takes the dog-pile lock across processes on a miss (see
	// GranularOptions.Lock): the process holding the entry's lease runs the
	// query while the others wait for its result.
	Lock bool
}

// Cache returns a context under which queries opt in to the cache: a
// policy with table profiles (GranularOptions.Tables,
// TableOptions.Tables) caches their results even when a table they read
// has no profile. A policy without profiles caches every cacheable read
// anyway, and then Cache only sets TTL and Lock. Queries the policy cannot
// cache (volatile functions, locking reads, unparseable SQL) stay
// uncached, and [Bypass] wins over Cache.
func Cache(ctx context.Context, opts CacheOptions) context.Context {
	ctx = context.WithValue(ctx, cacheKey, opts)
	if opts.TTL > 0 {
		ctx = context.WithValue(ctx, ttlKey, opts.TTL)
	}
	return ctx
}

// cacheOptionsOf returns the options of [Cache] in ctx, and whether ctx
// opts in.
func cacheOptionsOf(ctx context.Context) (CacheOptions, bool) {
	o, ok := ctx.Value(cacheKey).(CacheOptions)
	return o, ok
}

// Bypass returns a context under which queries skip the cache: they are
// neither served from it nor stored in it. Writes still invalidate.
func Bypass(ctx context.Context) context.Context {
	return context.WithValue(ctx, bypassKey, true)
}

// WithTTL returns a context under which results stored in the cache live for
// d instead of the policy's default. d must be positive; a non-positive d
// leaves the default in place.
func WithTTL(ctx context.Context, d time.Duration) context.Context {
	if d <= 0 {
		return ctx
	}
	return context.WithValue(ctx, ttlKey, d)
}

func bypassed(ctx context.Context) bool {
	b, _ := ctx.Value(bypassKey).(bool)
	return b
}

func ttlOf(ctx context.Context) time.Duration {
	d, _ := ctx.Value(ttlKey).(time.Duration)
	return d
}

// Wrap returns a connector whose connections cache query results according
// to opts.Policy and invalidate them on writes, delegating everything else
// to the connections of c. Use it with [sql.OpenDB].
//
// The connections implement driver.QueryerContext, ExecerContext,
// ConnBeginTx, ConnPrepareContext, NamedValueChecker, SessionResetter,
// Validator and Pinger; where the inner connection lacks one of them they
// behave as database/sql does without it (ErrSkip, nil, true). When c
// implements io.Closer, so does the returned connector.
func Wrap(c driver.Connector, opts Options) driver.Connector {
	if opts.MaxRows == 0 {
		opts.MaxRows = DefaultMaxRows
	}
	return &connector{inner: c, opts: &opts}
}

// Open opens a database whose connections come from the registered driver
// driverName with dsn, wrapped as by [Wrap].
func Open(driverName, dsn string, opts Options) (*sql.DB, error) {
	db, err := sql.Open(driverName, dsn)
	if err != nil {
		return nil, err
	}
	d := db.Driver()
	// sql.Open connects lazily: closing db releases nothing but its
	// bookkeeping.
	if err := db.Close(); err != nil {
		return nil, err
	}
	var c driver.Connector
	if dc, ok := d.(driver.DriverContext); ok {
		if c, err = dc.OpenConnector(dsn); err != nil {
			return nil, fmt.Errorf("qcache: open %s connector: %w", driverName, err)
		}
	} else {
		c = dsnConnector{dsn: dsn, d: d}
	}
	return sql.OpenDB(Wrap(c, opts)), nil
}

// dsnConnector is the connector of a driver without DriverContext, as
// database/sql builds it.
type dsnConnector struct {
	dsn string
	d   driver.Driver
}

func (c dsnConnector) Connect(context.Context) (driver.Conn, error) { return c.d.Open(c.dsn) }
func (c dsnConnector) Driver() driver.Driver                        { return c.d }

// Querier runs a query on the wrapped driver connection itself, bypassing
// the cache, inside the connection's current transaction when it has one.
// It is what a [ConnPolicy] uses to read the rows a write is about to
// change.
type Querier interface {
	QueryInner(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error)

	// ExecInner runs a statement on the wrapped connection, bypassing the
	// cache (a policy may open a transaction around a write with it, and
	// end it in AfterWrite).
	ExecInner(ctx context.Context, query string) error

	// InTx reports whether the connection is in a transaction: opened
	// through database/sql, or by a statement sent as SQL text (BEGIN,
	// START TRANSACTION, SQLite's SAVEPOINT outside a transaction).
	InTx() bool
}

// ConnPolicy is a [Policy] that reads the database while it plans a write.
// When the policy implements it, the wrapper calls WritesConn instead of
// Writes, with c running queries on the connection (and in the
// transaction) that is about to run the write.
type ConnPolicy interface {
	Policy
	WritesConn(ctx context.Context, q Query, c Querier) (Invalidation, error)
}

// AfterWriter is implemented by an [Invalidation] that reads the database
// once its statement has run: the wrapper calls AfterWrite right after the
// statement, on the same connection and before any Commit, with the
// statement's error. Outside a transaction it is always called (for a write
// sent through Query, when its rows are closed); inside one, a write sent
// through Query calls it only when the invalidation is a [Returner] (when
// its rows are closed), and an invalidation that is not must then assume
// the worst. An error it returns is returned to the application for an
// Exec whose statement succeeded, and reported to Options.OnError
// otherwise.
type AfterWriter interface {
	AfterWrite(ctx context.Context, c Querier, err error) error
}

// Returner is implemented by an [Invalidation] that learns the rows its
// statement changes from the statement's own result (PostgreSQL's
// RETURNING). When Returning reports ok, the wrapper runs query instead of
// the application's statement, with the same arguments, through the inner
// connection's driver.QueryerContext; it passes the last extra columns of
// every row to ReturnedRow and hides them from the application. For an
// Exec the wrapper reads every row and returns a driver.Result whose
// RowsAffected is their number (LastInsertId returns an error, as pgx's
// does); for a Query it returns the rows without the extra columns, and
// reads the rows the application leaves unread when it closes them (the
// database has run the whole statement anyway).
//
// ReturnedEnd is called exactly once after Returning reported ok, with nil
// once every row has been read, or with the error that ended the statement
// or the reading (the invalidation must then assume the worst); the
// wrapper then calls AfterWrite when the invalidation is an [AfterWriter],
// for a write sent through Query also inside a transaction, and applies or
// queues the invalidation. When the inner connection lacks QueryContext,
// ReturnedEnd receives an error and the application's statement runs as
// sent; it runs as sent as well when QueryContext itself failed and
// ReturnedEnd asks for it (rerun: the rewritten statement failed before it
// changed anything, for a reason of its own, such as a column that no
// longer exists).
type Returner interface {
	Invalidation

	// Returning returns the statement to run and the number of columns it
	// adds at the end of every row; ok false runs the application's
	// statement as sent.
	Returning() (query string, extra int, ok bool)

	// ReturnedRow receives the extra columns of one row, with their
	// database type names (driver.RowsColumnTypeDatabaseTypeName; empty
	// when the driver does not say). The wrapper reuses both slices after
	// the call.
	ReturnedRow(types []string, vals []driver.Value)

	// ReturnedEnd ends the rows, with nil when all of them were read. rerun
	// asks the wrapper to run the application's statement as sent; it is
	// honoured only for an error of QueryContext.
	ReturnedEnd(ctx context.Context, err error) (rerun bool)
}
