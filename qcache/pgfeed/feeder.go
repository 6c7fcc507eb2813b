package pgfeed

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/qcache"
	"github.com/cachekit/cachekit/qcache/internal/pgrepl"
)

// LSN is a PostgreSQL write-ahead log position.
type LSN = pgrepl.LSN

// Defaults of [Options].
const (
	DefaultStatusInterval = 2 * time.Second
	DefaultMaxBackoff     = 5 * time.Second
	DefaultMaxImages      = 10_000
)

// ErrReplicaIdentity reports cached tables whose replica identity is not
// FULL (see [Options].EnforceReplicaIdentity); it is wrapped by
// [*IdentityError].
var ErrReplicaIdentity = errors.New("pgfeed: replica identity is not FULL")

// IdentityError lists the cached tables whose replica identity is not
// FULL. Their UPDATEs and DELETEs send only key columns (or nothing) of the
// old row, so they are invalidated coarsely: a live scheme on another
// column bumps the table's epoch on every such write.
type IdentityError struct {
	Tables []string // as the extractor spells them
}

func (e *IdentityError) Error() string {
	return fmt.Sprintf("%v: %s", ErrReplicaIdentity, strings.Join(e.Tables, ", "))
}

// Unwrap returns [ErrReplicaIdentity].
func (e *IdentityError) Unwrap() error { return ErrReplicaIdentity }

// Options configures [New].
type Options struct {
	// DSN is the connection string of the database (URL or key=value, as
	// pgx reads it). The feeder opens a replication connection
	// (replication=database) and a normal one with it; its user needs the
	// REPLICATION attribute, and CREATE on the database to create the
	// publication (FOR ALL TABLES needs a superuser). Required.
	DSN string

	// Policy receives the invalidations. Required.
	Policy *qcache.GranularPolicy

	// Slot names the persistent logical replication slot of the
	// application (lower-case letters, digits and underscores, at most 63).
	// Exactly one feeder of an application streams from it at a time:
	// those of its other processes retry until it is free (a stand-by).
	// Default: "cachekit_" followed by the letters and digits of the
	// policy's key prefix (GranularPolicy.Prefix).
	Slot string

	// Publication names the publication streamed; it is created when
	// missing (FOR ALL TABLES, or FOR TABLE Tables when those are given,
	// WITH publish_via_partition_root). An existing one is used as it is.
	// Default: Slot.
	//
	// WARNING: a table in a publication that publishes UPDATE and DELETE
	// (FOR ALL TABLES does) needs a replica identity: UPDATEs and DELETEs
	// of a table without a primary key and with REPLICA IDENTITY DEFAULT
	// then fail on the server. Give Tables, or set REPLICA IDENTITY FULL
	// on such tables, before the first start.
	Publication string

	// Tables are the cached tables, as qcache's extractor spells them
	// ("posts", "audit.events"). New checks that they exist, that the
	// publication publishes them and that their replica identity (and
	// their partitions') is FULL (see EnforceReplicaIdentity). A
	// publication New creates publishes only these: list every table a
	// cached query reads, those that triggers write among them. Default:
	// nil, no check, and a new publication is FOR ALL TABLES.
	Tables []string

	// SearchPath are the schemas whose tables the application's queries
	// name without a schema; a change to a table in another schema is
	// invalidated under "schema.table". Default: []string{"public"}.
	SearchPath []string

	// EnforceReplicaIdentity sets REPLICA IDENTITY FULL on each of Tables
	// that lacks it (an ALTER TABLE: it needs ownership of the table).
	// Otherwise those tables are reported to OnError as an
	// [*IdentityError]; their writes are then invalidated coarsely.
	EnforceReplicaIdentity bool

	// OnError receives the errors of the feeder's goroutine (a lost
	// connection, a failed invalidation; each is followed by a reconnect)
	// and the [*IdentityError] of New. It is called on the feeder's
	// goroutine (a failed WAL flush of [Feeder.WaitLSN] on the caller's),
	// never under a lock; it must be safe for concurrent use. Default:
	// nil, errors are dropped.
	OnError func(error)

	// StatusInterval is the most time between two status updates to the
	// server. Default: DefaultStatusInterval.
	StatusInterval time.Duration

	// MaxBackoff bounds the wait between reconnection attempts (it starts
	// at a tenth of a second and doubles). Default: DefaultMaxBackoff.
	MaxBackoff time.Duration

	// MaxImages is the most row images of one table in one transaction
	// that are invalidated row by row; beyond, the table's epoch is bumped
	// (and the images are not kept in memory). Default: DefaultMaxImages.
	MaxImages int
}

// Feeder streams the committed row changes of a PostgreSQL database into
// the invalidations of a [qcache.GranularPolicy]. See the package
// documentation.
type Feeder struct {
	opts Options
	db   *sql.DB // normal connections: setup, slot checks, CurrentLSN

	cancel    context.CancelFunc
	done      chan struct{} // closed when the goroutine has returned
	closeOnce sync.Once
	closeErr  error

	// mu protects applied, changed and streaming.
	mu        sync.Mutex
	applied   LSN
	changed   chan struct{} // closed and replaced when applied advances
	streaming bool
}

var slotName = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

// New checks the options, creates the publication if missing, checks (or
// enforces) the replica identity of Options.Tables and starts the
// feeder's goroutine, which creates the slot if missing, bumps the global
// epoch and streams. It returns once the setup is done, before the stream
// has started: use [Feeder.WaitCaughtUp] to wait for it.
func New(ctx context.Context, opts Options) (*Feeder, error) {
	if opts.DSN == "" {
		return nil, errors.New("pgfeed: Options.DSN is required")
	}
	if opts.Policy == nil {
		return nil, errors.New("pgfeed: Options.Policy is required")
	}
	if opts.Slot == "" {
		var b strings.Builder
		b.WriteString("cachekit_")
		for _, r := range strings.ToLower(opts.Policy.Prefix()) {
			if 'a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '_' {
				b.WriteRune(r)
			}
		}
		opts.Slot = b.String()
		if len(opts.Slot) > 63 {
			opts.Slot = opts.Slot[:63]
		}
	}
	if !slotName.MatchString(opts.Slot) {
		return nil, fmt.Errorf("pgfeed: invalid slot name %q (lower-case letters, digits, _; at most 63)", opts.Slot)
	}
	if opts.Publication == "" {
		opts.Publication = opts.Slot
	}
	if opts.SearchPath == nil {
		opts.SearchPath = []string{"public"}
	}
	if opts.StatusInterval <= 0 {
		opts.StatusInterval = DefaultStatusInterval
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	if opts.MaxImages <= 0 {
		opts.MaxImages = DefaultMaxImages
	}
	cfg, err := pgx.ParseConfig(opts.DSN)
	if err != nil {
		return nil, fmt.Errorf("pgfeed: parse DSN: %w", err)
	}
	f := &Feeder{opts: opts, db: stdlib.OpenDB(*cfg), changed: make(chan struct{}), done: make(chan struct{})}
	identity, err := f.setup(ctx)
	if err != nil {
		f.db.Close()
		return nil, err
	}
	if identity != nil {
		f.report(identity)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	go f.run(runCtx)
	return f, nil
}

// Close stops the feeder's goroutine, waits for it and closes its
// connections. The slot is kept (the next start resumes from it); drop it
// with DropSlot when the application is retired, or the server retains
// WAL for it forever.
func (f *Feeder) Close() error {
	f.cancel()
	<-f.done
	f.closeOnce.Do(func() { f.closeErr = f.db.Close() })
	return f.closeErr
}

func (f *Feeder) report(err error) {
	if f.opts.OnError != nil {
		f.opts.OnError(err)
	}
}

// tableName spells a table as qcache's extractor does.
func (f *Feeder) tableName(schema, name string) string {
	if slices.Contains(f.opts.SearchPath, schema) {
		return name
	}
	return schema + "." + name
}

// setup creates the publication if missing and checks the replica
// identity of the cached tables.
func (f *Feeder) setup(ctx context.Context) (*IdentityError, error) {
	var level string
	if err := f.db.QueryRowContext(ctx, `SHOW wal_level`).Scan(&level); err != nil {
		return nil, fmt.Errorf("pgfeed: connect: %w", err)
	}
	if level != "logical" {
		return nil, fmt.Errorf("pgfeed: wal_level is %q, logical decoding needs wal_level=logical", level)
	}
	type rel struct{ schema, name, spelled string }
	var rels []rel
	for _, t := range f.opts.Tables {
		var schemas []string
		name := t
		if i := strings.IndexByte(t, '.'); i >= 0 {
			schemas, name = []string{t[:i]}, t[i+1:]
		} else {
			schemas = f.opts.SearchPath
		}
		n := len(rels)
		for _, s := range schemas {
			var ok bool
			err := f.db.QueryRowContext(ctx, `SELECT true FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
				WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`, s, name).Scan(&ok)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("pgfeed: look up table %s.%s: %w", s, name, err)
			}
			rels = append(rels, rel{s, name, t})
		}
		if len(rels) == n {
			return nil, fmt.Errorf("pgfeed: cached table %q not found (schemas %v)", t, schemas)
		}
	}
	var exists bool
	err := f.db.QueryRowContext(ctx, `SELECT true FROM pg_publication WHERE pubname = $1`, f.opts.Publication).Scan(&exists)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("pgfeed: look up publication %s: %w", f.opts.Publication, err)
	}
	if !exists {
		q := `CREATE PUBLICATION ` + pgx.Identifier{f.opts.Publication}.Sanitize()
		if len(rels) == 0 {
			q += ` FOR ALL TABLES`
		} else {
			names := make([]string, len(rels))
			for i, r := range rels {
				names[i] = pgx.Identifier{r.schema, r.name}.Sanitize()
			}
			q += ` FOR TABLE ` + strings.Join(names, ", ")
		}
		// Changes of a partition under the name of the partitioned table,
		// which the application's queries read.
		q += ` WITH (publish_via_partition_root = true)`
		if _, err := f.db.ExecContext(ctx, q); err != nil {
			var pgErr interface{ SQLState() string }
			// 42710: created concurrently by another process.
			if !errors.As(err, &pgErr) || pgErr.SQLState() != "42710" {
				return nil, fmt.Errorf("pgfeed: create publication %s: %w", f.opts.Publication, err)
			}
		}
	}
	// A cached table the publication lacks would never be invalidated.
	var unpublished []string
	for _, r := range rels {
		var ok bool
		err := f.db.QueryRowContext(ctx, `SELECT true FROM pg_publication_tables
			WHERE pubname = $1 AND schemaname = $2 AND tablename = $3`, f.opts.Publication, r.schema, r.name).Scan(&ok)
		if errors.Is(err, sql.ErrNoRows) {
			unpublished = append(unpublished, r.spelled)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("pgfeed: read tables of publication %s: %w", f.opts.Publication, err)
		}
	}
	if len(unpublished) > 0 {
		return nil, fmt.Errorf("pgfeed: publication %s does not publish the cached tables %s (or publishes their partitions without publish_via_partition_root)",
			f.opts.Publication, strings.Join(unpublished, ", "))
	}
	// The changes of a partitioned table come from its leaf partitions,
	// whose replica identity decides what the old tuple holds, and are
	// published as the partitioned table's, whose replica identity decides
	// whether pgoutput sends it as a whole row: both must be FULL.
	var leaves []rel
	for _, r := range rels {
		rows, err := f.db.QueryContext(ctx, `WITH t AS (SELECT format('%I.%I', $1::text, $2::text)::regclass AS oid)
			SELECT n.nspname::text, c.relname::text, c.relreplident::text
			FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, t
			WHERE c.oid = t.oid
			   OR c.oid IN (SELECT relid FROM pg_partition_tree(t.oid) WHERE isleaf)
			ORDER BY c.oid`, r.schema, r.name)
		if err != nil {
			return nil, fmt.Errorf("pgfeed: read replica identity of %s.%s: %w", r.schema, r.name, err)
		}
		for rows.Next() {
			var l rel
			var ident string
			if err := rows.Scan(&l.schema, &l.name, &ident); err != nil {
				rows.Close()
				return nil, fmt.Errorf("pgfeed: read replica identity of %s.%s: %w", r.schema, r.name, err)
			}
			if ident != "f" {
				leaves = append(leaves, l)
			}
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("pgfeed: read replica identity of %s.%s: %w", r.schema, r.name, err)
		}
	}
	var lacking []string
	for _, l := range leaves {
		if f.opts.EnforceReplicaIdentity {
			q := `ALTER TABLE ` + pgx.Identifier{l.schema, l.name}.Sanitize() + ` REPLICA IDENTITY FULL`
			if _, err := f.db.ExecContext(ctx, q); err != nil {
				return nil, fmt.Errorf("pgfeed: set replica identity of %s.%s: %w", l.schema, l.name, err)
			}
			continue
		}
		lacking = append(lacking, f.tableName(l.schema, l.name))
	}
	if len(lacking) > 0 {
		return &IdentityError{Tables: lacking}, nil
	}
	return nil, nil
}

// Applied returns the position up to which every committed transaction
// has been invalidated (0 before the stream has started).
func (f *Feeder) Applied() LSN {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applied
}

// advance records that every commit up to lsn has been invalidated.
func (f *Feeder) advance(lsn LSN) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if lsn <= f.applied {
		return
	}
	f.applied = lsn
	close(f.changed)
	f.changed = make(chan struct{})
}

// WaitLSN returns once every transaction that committed up to lsn has
// been invalidated, or with ctx's error, or with [cachekit.ErrClosed] after
// Close. A writer gets lsn from [CurrentLSN] right after its commit: once
// WaitLSN has returned, no reader sharing the policy's store is served a
// result from before the write. While the feeder cannot stream (the
// server is down, another process holds the slot) it waits.
//
// The server streams a position only once its WAL is flushed; WAL that
// other sessions inserted after the commit (an open transaction's rows)
// is flushed by the next commit or when its page fills. So when lsn is not
// reached after a moment, WaitLSN commits an empty logical message
// (pg_logical_emit_message, never streamed to the feeder) with
// synchronous_commit on, which flushes everything before it.
func (f *Feeder) WaitLSN(ctx context.Context, lsn LSN) error {
	var nudge *time.Timer
	defer func() {
		if nudge != nil {
			nudge.Stop()
		}
	}()
	for {
		f.mu.Lock()
		applied, changed := f.applied, f.changed
		f.mu.Unlock()
		if applied >= lsn {
			return nil
		}
		if nudge == nil {
			nudge = time.NewTimer(nudgeAfter)
		}
		select {
		case <-changed:
		case <-nudge.C:
			if err := f.flushWAL(ctx); err != nil && ctx.Err() == nil {
				f.report(err)
			}
			nudge.Reset(nudgeEvery)
		case <-ctx.Done():
			return ctx.Err()
		case <-f.done:
			return fmt.Errorf("pgfeed: wait for %s: %w", lsn, cachekit.ErrClosed)
		}
	}
}

// How long WaitLSN waits before it flushes the WAL, and then between
// flushes.
const (
	nudgeAfter = 20 * time.Millisecond
	nudgeEvery = 500 * time.Millisecond
)

// flushWAL commits a transaction that writes WAL, synchronously: the
// server flushes all WAL inserted before its commit record.
func (f *Feeder) flushWAL(ctx context.Context) error {
	tx, err := f.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("pgfeed: flush WAL: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SET LOCAL synchronous_commit = on`); err != nil {
		return fmt.Errorf("pgfeed: flush WAL: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_logical_emit_message(true, 'cachekit.pgfeed', '')`); err != nil {
		return fmt.Errorf("pgfeed: flush WAL: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("pgfeed: flush WAL: %w", err)
	}
	return nil
}

// WaitCaughtUp waits until the feeder has invalidated every transaction
// committed before the call.
func (f *Feeder) WaitCaughtUp(ctx context.Context) error {
	lsn, err := CurrentLSN(ctx, f.db)
	if err != nil {
		return err
	}
	return f.WaitLSN(ctx, lsn)
}

// Querier runs a query: a *sql.DB, *sql.Conn or *sql.Tx.
type Querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// ParseLSN parses an LSN in PostgreSQL's text form ("16/B374D848"), as
// [LSN.String] writes it: a writer in another process can pass the LSN of
// its commit (from CurrentLSN) to a reader here, which waits for it with
// [Feeder.WaitLSN] before it reads.
func ParseLSN(s string) (LSN, error) { return pgrepl.ParseLSN(s) }

// CurrentLSN returns the server's current WAL insert position. Called on
// any connection to the database after a commit has returned, it is at or
// past the end of that commit's record, also under synchronous_commit=off
// (which pg_current_wal_lsn, the write position, is not): pass it to
// [Feeder.WaitLSN]. On a connection through qcache it bypasses the cache.
//
// When nothing has been inserted on the current WAL page yet, the insert
// position lies past the page's header, where no record may end until
// more WAL is written; CurrentLSN then returns the page's start, where the
// last record ended, so that WaitLSN does not wait for unrelated WAL.
func CurrentLSN(ctx context.Context, q Querier) (LSN, error) {
	var (
		s              string
		block, segment uint64
	)
	err := q.QueryRowContext(qcache.Bypass(ctx), `SELECT pg_current_wal_insert_lsn()::text,
		current_setting('wal_block_size')::int8, pg_size_bytes(current_setting('wal_segment_size'))`).Scan(&s, &block, &segment)
	if err != nil {
		return 0, fmt.Errorf("pgfeed: read current WAL position: %w", err)
	}
	lsn, err := pgrepl.ParseLSN(s)
	if err != nil {
		return 0, fmt.Errorf("pgfeed: read current WAL position: %w", err)
	}
	return pageStart(lsn, block, segment), nil
}

// The sizes of WAL page headers on 64-bit servers (MAXALIGNed
// XLogPageHeaderData and XLogLongPageHeaderData): a long one starts each
// segment, a short one each other page.
const (
	shortPageHeader = 24
	longPageHeader  = 40
)

// pageStart returns the start of the page when lsn is the first record
// position of an empty page, and lsn otherwise. On a page with a short
// header, a record (at least 24 bytes) or the remainder of one spanning
// pages (MAXALIGNed) cannot end at offset 24.
func pageStart(lsn LSN, block, segment uint64) LSN {
	if block == 0 || segment == 0 {
		return lsn
	}
	switch {
	case uint64(lsn)%segment == longPageHeader:
		return lsn - longPageHeader
	case uint64(lsn)%segment >= block && uint64(lsn)%block == shortPageHeader:
		return lsn - shortPageHeader
	}
	return lsn
}

// DropSlot drops the application's slot (and nothing else), if it
// exists; call it when the application is retired. While a connection
// streams from the slot, it retries until ctx is done: the server releases
// the slot of a closed feeder a moment after Close has returned.
func DropSlot(ctx context.Context, dsn, slot string) error {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return fmt.Errorf("pgfeed: parse DSN: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	for {
		_, err := db.ExecContext(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`, slot)
		if err == nil {
			return nil
		}
		if sqlState(err) != "55006" {
			return fmt.Errorf("pgfeed: drop slot %s: %w", slot, err)
		}
		t := time.NewTimer(10 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("pgfeed: drop slot %s: %w", slot, errors.Join(err, ctx.Err()))
		case <-t.C:
		}
	}
}
