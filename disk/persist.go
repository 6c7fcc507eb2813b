package disk

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/codec"
	"github.com/cachekit/cachekit/internal/sqlitedb"
)

// This file holds what [Deque] and [Index] share: opening a database in a
// directory of their own, the bounded write transaction, and the mapping of
// database errors onto cachekit's sentinels.

const (
	// persistBusySlice is SQLite's busy timeout on every connection, the
	// Store's busySlice (see there).
	persistBusySlice = busySlice

	// persistPageSize is how many rows an iterator reads per query.
	persistPageSize = 100
)

// persistConfig is the configuration of a Deque or Index.
type persistConfig struct {
	name     string // prefix of every error, such as "disk: deque"
	dir      string
	file     string // database file name inside dir
	schema   string // idempotent DDL run at open
	codec    codec.Codec
	timeout  time.Duration
	dirMode  fs.FileMode
	fileMode fs.FileMode
}

// persistResolve applies the defaults shared by DequeOptions and
// IndexOptions and validates them.
func persistResolve(cfg persistConfig) (persistConfig, error) {
	switch {
	case cfg.dir == "":
		return cfg, fmt.Errorf("%s: Options.Dir is empty", cfg.name)
	case cfg.timeout < 0:
		return cfg, fmt.Errorf("%s: negative Options.Timeout %v", cfg.name, cfg.timeout)
	case cfg.dirMode&^fs.ModePerm != 0 || cfg.fileMode&^fs.ModePerm != 0:
		return cfg, fmt.Errorf("%s: Options.DirMode and FileMode take permission bits only", cfg.name)
	}
	if cfg.codec == nil {
		cfg.codec = codec.Gob
	}
	if cfg.timeout == 0 {
		cfg.timeout = DefaultTimeout
	}
	if cfg.dirMode == 0 {
		cfg.dirMode = DefaultDirMode
	}
	if cfg.fileMode == 0 {
		cfg.fileMode = DefaultFileMode
	}
	return cfg, nil
}

// persistDB is one open database of a Deque or Index.
type persistDB struct {
	db      *sql.DB
	name    string
	codec   codec.Codec
	timeout time.Duration

	// writeSem holds one token while this handle runs a write transaction.
	// Goroutines of one process queue here, waking as soon as the previous
	// transaction ends, instead of polling in SQLite's sleeping busy handler;
	// only other handles and processes meet the busy handler.
	writeSem chan struct{}

	closed atomic.Bool // set by the first Close

	stmts sync.Map // query string → *sql.Stmt, prepared once per connection by database/sql
}

// persistOpen creates cfg.dir and the database file with their modes (the
// umask applies) when they are missing, opens the database and creates the
// schema.
func persistOpen(ctx context.Context, cfg persistConfig) (*persistDB, error) {
	cfg, err := persistResolve(cfg)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: open: %w", cfg.name, err)
	}
	if err := os.MkdirAll(cfg.dir, cfg.dirMode); err != nil {
		return nil, fmt.Errorf("%s: create directory: %w", cfg.name, err)
	}
	// Create the file ourselves: SQLite would create it 0644, and gives the
	// -wal and -shm files the database file's mode.
	path := filepath.Join(cfg.dir, cfg.file)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, cfg.fileMode)
	if err != nil {
		return nil, fmt.Errorf("%s: create database file: %w", cfg.name, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("%s: create database file: %w", cfg.name, err)
	}

	tctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	p := &persistDB{name: cfg.name, codec: cfg.codec, timeout: cfg.timeout, writeSem: make(chan struct{}, 1)}
	db, err := sqlitedb.Open(tctx, sqlitedb.Config{Path: path, BusyTimeout: min(cfg.timeout, persistBusySlice)})
	if err != nil {
		return nil, p.fail(ctx, "open", err) // the error names the file
	}
	err = sqlitedb.Retry(tctx, func() error {
		_, err := db.ExecContext(tctx, cfg.schema)
		return err
	})
	if err != nil {
		db.Close()
		return nil, p.fail(ctx, "create schema in "+path, err)
	}
	// Keep a few idle connections: opening one runs the WAL pragmas again.
	db.SetMaxIdleConns(4)
	p.db = db
	return p, nil
}

// close closes the database once; later calls return nil.
func (p *persistDB) close() error {
	if !p.closed.CompareAndSwap(false, true) {
		return nil
	}
	p.stmts.Range(func(_, s any) bool {
		s.(*sql.Stmt).Close()
		return true
	})
	if err := p.db.Close(); err != nil {
		return fmt.Errorf("%s: close: %w", p.name, err)
	}
	return nil
}

// check returns the error for an operation on a closed handle or with an
// ended ctx, and nil otherwise.
func (p *persistDB) check(ctx context.Context, op string) error {
	if p.closed.Load() {
		return fmt.Errorf("%s: %s: %w", p.name, op, cachekit.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %s: %w", p.name, op, err)
	}
	return nil
}

// retry runs fn until it returns anything but a busy error, for at most
// p.timeout after start or until ctx ends. Statements run on the caller's
// ctx: a derived one would make mattn run every statement in a goroutine of
// its own, so the deadline context is made only once fn has met a busy
// database. On timeout it returns the last busy error.
func (p *persistDB) retry(ctx context.Context, start time.Time, fn func() error) error {
	last := sqlitedb.Classify(fn())
	if !errors.Is(last, sqlitedb.ErrBusy) {
		return last
	}
	tctx, cancel := context.WithDeadline(ctx, start.Add(p.timeout))
	defer cancel()
	err := sqlitedb.Retry(tctx, func() error { last = fn(); return last })
	if err != nil && tctx.Err() != nil && ctx.Err() == nil {
		return sqlitedb.Classify(last)
	}
	return err
}

// read runs fn, which must only read, retrying while the database is busy.
// fn reports outcomes such as "no row" through its closure, not as errors.
func (p *persistDB) read(ctx context.Context, op string, fn func() error) error {
	if err := p.check(ctx, op); err != nil {
		return err
	}
	if err := p.retry(ctx, time.Now(), fn); err != nil {
		return p.fail(ctx, op, err)
	}
	return nil
}

// write runs fn in one write transaction (BEGIN IMMEDIATE, so it holds the
// database's write lock from the start and is atomic across processes). A
// busy database makes the whole transaction run again, so fn must set its
// results afresh on each call. Decode values after write returns: the lock
// is not held for it.
func (p *persistDB) write(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	if err := p.check(ctx, op); err != nil {
		return err
	}
	start := time.Now()
	if err := p.lock(ctx, start); err != nil {
		return p.fail(ctx, op, err)
	}
	defer func() { <-p.writeSem }()
	err := p.retry(ctx, start, func() error {
		tx, err := p.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			tx.Rollback()
			return err
		}
		return tx.Commit()
	})
	if err != nil {
		return p.fail(ctx, op, err)
	}
	return nil
}

// lock takes p.writeSem, waiting at most p.timeout after start.
func (p *persistDB) lock(ctx context.Context, start time.Time) error {
	select {
	case p.writeSem <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(p.timeout - time.Since(start))
	defer t.Stop()
	select {
	case p.writeSem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("waiting for this handle's other writers: %w", sqlitedb.ErrBusy)
	}
}

// stmt returns query prepared, from p.stmts.
func (p *persistDB) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if s, ok := p.stmts.Load(query); ok {
		return s.(*sql.Stmt), nil
	}
	s, err := p.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if prev, loaded := p.stmts.LoadOrStore(query, s); loaded {
		s.Close()
		return prev.(*sql.Stmt), nil
	}
	return s, nil
}

// prepared returns query prepared, bound to tx unless tx is nil.
func (p *persistDB) prepared(ctx context.Context, tx *sql.Tx, query string) (*sql.Stmt, error) {
	s, err := p.stmt(ctx, query)
	if err != nil || tx == nil {
		return s, err
	}
	return tx.StmtContext(ctx, s), nil
}

// exec runs the prepared query, in tx unless tx is nil.
func (p *persistDB) exec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	s, err := p.prepared(ctx, tx, query)
	if err != nil {
		return nil, err
	}
	return s.ExecContext(ctx, args...)
}

// query runs the prepared query, in tx unless tx is nil.
func (p *persistDB) query(ctx context.Context, tx *sql.Tx, query string, args ...any) (*sql.Rows, error) {
	s, err := p.prepared(ctx, tx, query)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(ctx, args...)
}

// queryRow runs the prepared query, in tx unless tx is nil, for one row.
func (p *persistDB) queryRow(ctx context.Context, tx *sql.Tx, query string, args ...any) persistOneRow {
	s, err := p.prepared(ctx, tx, query)
	if err != nil {
		return persistOneRow{err: err}
	}
	return persistOneRow{row: s.QueryRowContext(ctx, args...)}
}

// persistOneRow is a *sql.Row, or the error that prevented the query.
type persistOneRow struct {
	row *sql.Row
	err error
}

// Scan is [sql.Row.Scan].
func (r persistOneRow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	return r.row.Scan(dest...)
}

// persistRow is one row read by persistDB.scan.
type persistRow struct {
	id         int64
	key, value []byte
}

// scan calls fn with each row of query, in order of id, reading
// persistPageSize rows per query so that a long table is never loaded at
// once. query selects an integer id and two BLOBs (either may be NULL) and
// takes two arguments: the lower bound, exclusive, and the page size. fn
// runs between queries, holding no connection; it returns false to stop.
func (p *persistDB) scan(ctx context.Context, op, query string, fn func(persistRow) (bool, error)) error {
	after := int64(math.MinInt64)
	for {
		var page []persistRow
		err := p.read(ctx, op, func() error {
			page = page[:0]
			rows, err := p.query(ctx, nil, query, after, persistPageSize)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var r persistRow
				if err := rows.Scan(&r.id, &r.key, &r.value); err != nil {
					return err
				}
				page = append(page, r)
			}
			return rows.Err()
		})
		if err != nil {
			return err
		}
		for _, r := range page {
			if more, err := fn(r); err != nil || !more {
				return err
			}
		}
		if len(page) < persistPageSize {
			return nil
		}
		after = page[len(page)-1].id
	}
}

// fail maps an error of the database onto the sentinels callers test for:
// cachekit.ErrClosed after Close, the caller's ctx.Err() when ctx ended,
// cachekit.ErrTimeout when the database stayed busy past the timeout,
// cachekit.ErrCorrupt when the file is not a database or is damaged, and
// fs.ErrPermission when it cannot be written (sqlitedb.ErrReadOnly is
// internal).
func (p *persistDB) fail(ctx context.Context, op string, err error) error {
	switch {
	case p.closed.Load():
		return fmt.Errorf("%s: %s: %w", p.name, op, cachekit.ErrClosed)
	case ctx.Err() != nil:
		return fmt.Errorf("%s: %s: %w", p.name, op, ctx.Err())
	}
	if !errors.Is(err, sqlitedb.ErrBusy) && !errors.Is(err, sqlitedb.ErrCorrupt) && !errors.Is(err, sqlitedb.ErrReadOnly) {
		err = sqlitedb.Classify(err)
	}
	switch {
	case errors.Is(err, sqlitedb.ErrBusy):
		return fmt.Errorf("%s: %s: database busy for %v: %w: %w", p.name, op, p.timeout, cachekit.ErrTimeout, err)
	case errors.Is(err, sqlitedb.ErrCorrupt):
		return fmt.Errorf("%s: %s: %w: %w", p.name, op, cachekit.ErrCorrupt, err)
	case errors.Is(err, sqlitedb.ErrReadOnly):
		return fmt.Errorf("%s: %s: %w: %w", p.name, op, fs.ErrPermission, err)
	}
	return fmt.Errorf("%s: %s: %w", p.name, op, err)
}

// encode encodes v with the codec. It never returns a nil slice, so that
// stored values are never NULL and compare with "=".
func (p *persistDB) encode(op string, v any) ([]byte, error) {
	b, err := p.codec.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", p.name, op, err)
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

// persistFound records in found whether a single-row query found its row,
// and returns err unless it only says "no rows".
func persistFound(err error, found *bool) error {
	*found = err == nil
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	return err
}

// persistResult turns the outcome of a lookup into a value or an error:
// err as it is, an error wrapping cachekit.ErrMiss (saying what was
// missing) when nothing was found, or the decoded data.
func persistResult[V any](p *persistDB, op string, data []byte, found bool, err error, missing string) (V, error) {
	var zero V
	switch {
	case err != nil:
		return zero, err
	case !found:
		return zero, fmt.Errorf("%s: %s: %s: %w", p.name, op, missing, cachekit.ErrMiss)
	}
	return persistDecode[V](p, op, data)
}

// persistDecode decodes stored bytes into a V; a failure wraps
// cachekit.ErrCorrupt.
func persistDecode[V any](p *persistDB, op string, data []byte) (V, error) {
	var v V
	if err := p.codec.Unmarshal(data, &v); err != nil {
		var zero V
		return zero, fmt.Errorf("%s: %s: %w: %w", p.name, op, cachekit.ErrCorrupt, err)
	}
	return v, nil
}
