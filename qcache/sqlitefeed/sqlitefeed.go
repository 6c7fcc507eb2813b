package sqlitefeed

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/cachekit/cachekit/qcache"
)

// ErrNoPreUpdateHook is returned by [Open] in a build without the
// sqlite_preupdate_hook build tag (or without cgo).
var ErrNoPreUpdateHook = errors.New("sqlitefeed: mattn/go-sqlite3 built without the sqlite_preupdate_hook build tag")

// Foreign says how writes to the file by other processes are detected.
type Foreign int

const (
	// ChangeLog logs every row change with triggers and invalidates
	// exactly the rows other processes changed (see the package
	// documentation). It is the default.
	ChangeLog Foreign = iota
	// DataVersion bumps the global epoch whenever another connection,
	// of this process or another one, commits.
	DataVersion
	// NoForeign does not poll: only the database returned by Open
	// writes the file.
	NoForeign
)

// Defaults of [Options].
const (
	DefaultPollInterval = 10 * time.Millisecond
	DefaultMaxImages    = 1000
	DefaultLogRetention = time.Minute
)

// Options configures [Open]. The zero value is valid.
type Options struct {
	// MaxRows and OnError are passed to qcache.Wrap (see qcache.Options).
	// OnError also receives the errors of the poller.
	MaxRows int
	OnError func(error)

	// Foreign is how writes by other processes are detected. Default:
	// ChangeLog.
	Foreign Foreign

	// PollInterval is how often PRAGMA data_version is read: the bound
	// on how long a write by another process may go unseen. Default:
	// DefaultPollInterval. Ignored with NoForeign.
	PollInterval time.Duration

	// MaxImages is the largest number of row images (an UPDATE gives two
	// per row) kept per table and statement; past it the statement bumps
	// the table's epoch. Default: DefaultMaxImages.
	MaxImages int

	// LogRetention is how long ChangeLog entries are kept; a poller that
	// falls further behind bumps the global epoch. Default:
	// DefaultLogRetention.
	LogRetention time.Duration
}

// Open opens the SQLite database dsn (a mattn/go-sqlite3 DSN) with its
// results cached by policy, which must have the SQLite dialect, and its
// row changes taken from the pre-update hook. It starts the poller of
// writes by other processes (see [Options.Foreign]), which Close on the
// returned database stops. Open returns an error wrapping
// [ErrNoPreUpdateHook] in a build without the sqlite_preupdate_hook tag.
func Open(dsn string, policy *qcache.GranularPolicy, opts Options) (*sql.DB, error) {
	db, _, err := open(dsn, policy, opts)
	return db, err
}

// open is Open, also returning the connector (for tests).
func open(dsn string, policy *qcache.GranularPolicy, opts Options) (*sql.DB, *connector, error) {
	if !hookSupported {
		return nil, nil, ErrNoPreUpdateHook
	}
	if policy == nil {
		return nil, nil, errors.New("sqlitefeed: nil policy")
	}
	if opts.PollInterval < 0 || opts.MaxImages < 0 || opts.LogRetention < 0 {
		return nil, nil, errors.New("sqlitefeed: negative Options duration or limit")
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.MaxImages == 0 {
		opts.MaxImages = DefaultMaxImages
	}
	if opts.LogRetention == 0 {
		opts.LogRetention = DefaultLogRetention
	}
	c := &connector{dsn: dsn, p: policy, opts: opts, d: &sqlite3.SQLiteDriver{}, own: map[int64]int64{}}
	if opts.Foreign != NoForeign {
		if err := c.startPoller(); err != nil {
			return nil, nil, err
		}
	}
	return sql.OpenDB(qcache.Wrap(c, qcache.Options{Policy: policy, MaxRows: opts.MaxRows, OnError: opts.OnError})), c, nil
}

// connector opens the feeding connections. It is an io.Closer: closing
// the *sql.DB stops its poller.
type connector struct {
	dsn  string
	p    *qcache.GranularPolicy
	opts Options
	d    *sqlite3.SQLiteDriver

	poll *poller // nil with NoForeign

	mu  sync.Mutex      // protects own
	own map[int64]int64 // change-log entries this database's connections committed: seq to nonce
}

// Connect implements driver.Connector.
func (c *connector) Connect(ctx context.Context) (driver.Conn, error) {
	ic, err := c.d.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	sc, ok := ic.(*sqlite3.SQLiteConn)
	if !ok {
		ic.Close()
		return nil, fmt.Errorf("sqlitefeed: unexpected connection type %T", ic)
	}
	fc := &feedConn{SQLiteConn: sc, c: c, changes: map[tableKey]*tableChanges{}, cols: map[tableKey][]string{}}
	fc.register()
	return fc, nil
}

// Driver implements driver.Connector.
func (c *connector) Driver() driver.Driver { return c.d }

// Close stops the poller.
func (c *connector) Close() error {
	if c.poll != nil {
		return c.poll.stop()
	}
	return nil
}

// addOwn records change-log entries committed by this database's
// connections, which the poller then skips.
func (c *connector) addOwn(entries []logEntry) {
	if len(entries) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range entries {
		c.own[e.seq] = e.nonce
	}
}

// isOwn reports whether the entry seq with nonce was committed by this
// database, and forgets it. The nonce (random, from the entry's default)
// tells an entry recorded here from another one with the same seq: an
// entry recorded for a statement that was rolled back after all (a
// transaction the wrapper was in doubt about) frees its seq for the next
// writer.
func (c *connector) isOwn(seq, nonce int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.own[seq]
	delete(c.own, seq)
	return ok && n == nonce
}

// logEntry identifies a change-log entry.
type logEntry struct{ seq, nonce int64 }

// forgetOwn forgets the entries up to seq (the poller has passed them).
func (c *connector) forgetOwn(seq int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for s := range c.own {
		if s <= seq {
			delete(c.own, s)
		}
	}
}

// tableKey names a table: its schema ("main", "temp", an attached name)
// and its name.
type tableKey struct{ db, table string }

// name is the table's name as the policy's SQL grammar spells it.
func (k tableKey) name() string {
	if strings.EqualFold(k.db, "main") {
		return k.table
	}
	return k.db + "." + k.table
}

// tableChanges are the row images of one table captured since the last
// TakeChanges.
type tableChanges struct {
	images [][]any // old and new images, values copied
	width  int     // columns per image, as the hook counted them
	coarse bool    // too many images or an unreadable one: bump the epoch
}

// feedConn is a mattn connection with a pre-update hook. Like every
// driver.Conn it is used by one goroutine at a time; the hook runs on
// that goroutine, inside SQLite.
type feedConn struct {
	*sqlite3.SQLiteConn
	c *connector

	mu      sync.Mutex // protects changes, seqs (hook vs TakeChanges)
	changes map[tableKey]*tableChanges
	seqs    []logEntry // change-log entries written by this connection

	// Used only by TakeChanges, on the connection's goroutine.
	cols      map[tableKey][]string // column names, valid under schemaVer
	schemaVer int64
}

var _ qcache.ChangeFeed = (*feedConn)(nil)

// TakeChanges implements [qcache.ChangeFeed].
func (fc *feedConn) TakeChanges(ctx context.Context) qcache.Invalidation {
	fc.mu.Lock()
	changes, seqs := fc.changes, fc.seqs
	if len(changes) > 0 {
		fc.changes = map[tableKey]*tableChanges{}
	}
	fc.seqs = nil
	fc.mu.Unlock()
	if len(changes) == 0 && len(seqs) == 0 {
		return nil
	}
	inv := &invalidation{p: fc.c.p, c: fc.c, seqs: seqs}
	if len(changes) > 0 {
		fc.checkSchema(ctx)
	}
	for k, tc := range changes {
		ti := tableInvalidation{table: k.name(), coarse: tc.coarse}
		if !ti.coarse {
			cols, err := fc.columns(ctx, k)
			if err != nil || len(cols) != tc.width {
				ti.coarse = true
			} else {
				for _, img := range tc.images {
					vals := make([]driver.Value, len(img))
					for i, v := range img {
						vals[i] = v
					}
					ti.images = append(ti.images, qcache.RowImage{Columns: cols, Values: vals})
				}
			}
		}
		inv.tables = append(inv.tables, ti)
	}
	return inv
}

// checkSchema forgets the cached column names when the schema changed.
func (fc *feedConn) checkSchema(ctx context.Context) {
	v, err := fc.queryInt(ctx, "PRAGMA schema_version")
	if err != nil || v != fc.schemaVer {
		clear(fc.cols)
		fc.schemaVer = v
	}
}

// columns returns the column names of a table, from PRAGMA table_info.
func (fc *feedConn) columns(ctx context.Context, k tableKey) ([]string, error) {
	if cols, ok := fc.cols[k]; ok {
		return cols, nil
	}
	rows, err := fc.SQLiteConn.QueryContext(ctx, "PRAGMA "+quoteIdent(k.db)+".table_info("+quoteIdent(k.table)+")", nil)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cols []string
	dest := make([]driver.Value, len(rows.Columns()))
	for {
		if err := rows.Next(dest); err != nil {
			break
		}
		switch name := dest[1].(type) {
		case string:
			cols = append(cols, name)
		case []byte:
			cols = append(cols, string(name))
		default:
			return nil, fmt.Errorf("sqlitefeed: table_info of %s: column name %T", k.name(), dest[1])
		}
	}
	fc.cols[k] = cols
	return cols, nil
}

// queryInt runs a query returning one integer on the inner connection.
func (fc *feedConn) queryInt(ctx context.Context, query string) (int64, error) {
	rows, err := fc.SQLiteConn.QueryContext(ctx, query, nil)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	dest := make([]driver.Value, 1)
	if err := rows.Next(dest); err != nil {
		return 0, err
	}
	n, ok := dest[0].(int64)
	if !ok {
		return 0, fmt.Errorf("sqlitefeed: %s returned %T", query, dest[0])
	}
	return n, nil
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// invalidation is what one statement's row changes invalidate.
type invalidation struct {
	p      *qcache.GranularPolicy
	c      *connector
	tables []tableInvalidation
	seqs   []logEntry // change-log entries the statement wrote
}

type tableInvalidation struct {
	table  string
	coarse bool
	images []qcache.RowImage
}

// Apply implements [qcache.Invalidation].
func (inv *invalidation) Apply(ctx context.Context) error {
	// Recorded first: the poller skips them from now on (if it reads them
	// before, it invalidates them again, which is harmless).
	inv.c.addOwn(inv.seqs)
	var errs []error
	for _, t := range inv.tables {
		if t.coarse {
			errs = append(errs, inv.p.InvalidateTables(ctx, t.table))
			continue
		}
		errs = append(errs, inv.p.InvalidateImages(ctx, t.table, t.images...))
	}
	return errors.Join(errs...)
}
