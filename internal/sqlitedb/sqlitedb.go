// Package sqlitedb opens SQLite databases for cachekit's disk store with the
// settings every connection needs (WAL, synchronous=NORMAL, a busy timeout,
// BEGIN IMMEDIATE for transactions, memory-mapped I/O) and classifies
// SQLite's errors. It hides which driver is in use: github.com/mattn/go-sqlite3
// (cgo, the default) or modernc.org/sqlite (pure Go; build with CGO_ENABLED=0
// or the tag cachekit_purego).
package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Config describes how to open one database file.
type Config struct {
	// Path is the database file.
	Path string

	// BusyTimeout is how long a statement waits for another connection's
	// lock before failing with SQLITE_BUSY. Set on every connection.
	BusyTimeout time.Duration

	// MmapSize is the memory-mapped I/O size in bytes (PRAGMA mmap_size).
	MmapSize int64

	// CacheSizeKiB is the page cache size per connection in KiB
	// (PRAGMA cache_size=-N).
	CacheSizeKiB int
}

// Driver names the SQLite driver compiled in: "mattn" or "modernc".
const Driver = driverName

// Open opens (creating if needed) the database at cfg.Path. Every connection
// of the returned pool has the busy timeout, WAL journal, synchronous=NORMAL,
// the mmap and cache sizes, and opens transactions with BEGIN IMMEDIATE.
// Open checks the file by reading its schema, retrying while another process
// holds a lock (until ctx ends); a file that is not a database gives an error
// wrapping [ErrCorrupt].
func Open(ctx context.Context, cfg Config) (*sql.DB, error) {
	if cfg.BusyTimeout <= 0 {
		cfg.BusyTimeout = 5 * time.Second
	}
	db, err := open(cfg)
	if err != nil {
		return nil, err
	}
	err = Retry(ctx, func() error {
		var n int
		return db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&n)
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlitedb: open %s: %w", cfg.Path, err)
	}
	return db, nil
}

// Errors a caller may test for with errors.Is on errors returned from the
// database (the classification works for both drivers).
var (
	// ErrBusy: the database stayed locked by another connection past the
	// busy timeout (SQLITE_BUSY, SQLITE_LOCKED).
	ErrBusy = errors.New("sqlite: database is busy")
	// ErrCorrupt: the file is not a database or is damaged
	// (SQLITE_CORRUPT, SQLITE_NOTADB).
	ErrCorrupt = errors.New("sqlite: database is corrupt")
	// ErrReadOnly: the database cannot be written (SQLITE_READONLY,
	// SQLITE_CANTOPEN, SQLITE_PERM).
	ErrReadOnly = errors.New("sqlite: database cannot be opened for writing")
)

// SQLite primary result codes used by Classify.
const (
	codeBusy     = 5
	codeLocked   = 6
	codeReadOnly = 8
	codeCorrupt  = 11
	codeCantOpen = 14
	codePerm     = 3
	codeNotADB   = 26
)

// Classify wraps err so that errors.Is finds ErrBusy, ErrCorrupt or
// ErrReadOnly when SQLite's result code says so; other errors (and nil)
// come back unchanged.
func Classify(err error) error {
	if err == nil || errors.Is(err, ErrBusy) || errors.Is(err, ErrCorrupt) || errors.Is(err, ErrReadOnly) {
		return err // nil, or classified already
	}
	code, ok := resultCode(err)
	if !ok {
		return err
	}
	switch code & 0xff {
	case codeBusy, codeLocked:
		return fmt.Errorf("%w: %w", ErrBusy, err)
	case codeCorrupt, codeNotADB:
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	case codeReadOnly, codeCantOpen, codePerm:
		return fmt.Errorf("%w: %w", ErrReadOnly, err)
	}
	return err
}

// Retry runs fn until it returns an error other than a busy/locked one, or
// ctx ends. Use it around DDL and pragmas, which SQLite's busy timeout does
// not always cover, and around BEGIN IMMEDIATE.
func Retry(ctx context.Context, fn func() error) error {
	return RetryFor(ctx, 0, fn)
}

// RetryFor is Retry bounded by timeout as well (no bound if timeout <= 0):
// past it, it returns the last busy error, which wraps ErrBusy.
//
// Neither driver ends SQLite's own busy wait when ctx ends, so a caller that
// wants ctx to bound its waits opens connections with a short BusyTimeout
// (a slice of, say, 100 ms) and retries with RetryFor.
func RetryFor(ctx context.Context, timeout time.Duration, fn func() error) error {
	var deadline time.Time
	delay := time.Millisecond
	for {
		err := Classify(fn())
		if !errors.Is(err, ErrBusy) {
			return err
		}
		if timeout > 0 {
			if deadline.IsZero() {
				deadline = time.Now().Add(timeout)
			} else if time.Now().After(deadline) {
				return err
			}
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}
