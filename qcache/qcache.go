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

// Fill stores the encoded result of a query that missed. The wrapper calls
// it at most once, after the application has read every row, with the
// result encoded by the wrapper; it may never call it (rows closed early,
// an error while reading, a result too large or not encodable). Its error
// is reported to [Options.OnError] and never to the application.
type Fill func(ctx context.Context, result []byte) error

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
// It is the seam between the driver mechanics (this package) and the
// dependency tracking (table stamps now, row-level stamps from the SQL
// dependency extractor later). Implementations are safe for concurrent use.
type Policy interface {
	// Lookup is called before a read that may be served from the cache. It
	// returns the cached encoded result on a hit; on a miss of a cacheable
	// query it returns nil and a Fill; for a query it does not cache it
	// returns nil, nil (the wrapper then treats the query as a possible
	// write and calls Writes). An error means the cache cannot be consulted:
	// the wrapper reports it to Options.OnError and runs the query uncached.
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
)

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

	// InTx reports whether the connection is in a transaction opened
	// through database/sql.
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
// through Query does not call it, and the invalidation must then assume
// the worst. An error it returns is returned to the application for an
// Exec whose statement succeeded, and reported to Options.OnError
// otherwise.
type AfterWriter interface {
	AfterWrite(ctx context.Context, c Querier, err error) error
}
