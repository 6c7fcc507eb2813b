package disk

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/internal/sqlitedb"
	"github.com/cachekit/cachekit/memory"
)

// Capabilities the Store promises (checked at compile time).
var (
	_ cachekit.Store        = (*Store)(nil)
	_ cachekit.Adder        = (*Store)(nil)
	_ cachekit.Toucher      = (*Store)(nil)
	_ cachekit.Counter      = (*Store)(nil)
	_ cachekit.Batcher      = (*Store)(nil)
	_ cachekit.Clearer      = (*Store)(nil)
	_ cachekit.ExpiryReader = (*Store)(nil)
	_ cachekit.Leaser       = (*Store)(nil)
)

// dbFile is the database's name inside the cache directory.
const dbFile = "cache.db"

// Store is a persistent cache in a directory: a SQLite database indexes the
// entries and holds small values; larger values live in files beside it.
// Any number of goroutines and processes may use one directory at once.
type Store struct {
	opts  Options
	db    *sql.DB // readers
	wdb   *sql.DB // the one writer connection of this process
	files files
	batch batcher   // group commit of concurrent writes
	get   *sql.Stmt // prepared hot statements: get on db, set and del on wdb
	set   *sql.Stmt
	del   *sql.Stmt

	closeMu sync.RWMutex   // orders begin's wg.Add before Close's wg.Wait
	closed  atomic.Bool    // set by Close under closeMu
	wg      sync.WaitGroup // operations in progress, so Close can wait for them

	hits, misses, evictions, expirations atomic.Uint64

	gen *genFile // the directory's shared write generation (nil where unsupported)
	l1  *l1      // optional in-process tier

	notify notifier // subscribers of Subscribe

	maint maintenance
}

// New opens (creating if needed) the cache in opts.Dir.
//
// A database file that is not a SQLite database, or is damaged, gives an
// error wrapping cachekit.ErrCorrupt unless Options.ResetCorrupt is set. A
// directory that cannot be created or written gives an error that says so.
func New(ctx context.Context, opts Options) (*Store, error) {
	if err := opts.normalize(); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("disk: %w", err)
	}
	opts.Dir = dir
	if err := os.MkdirAll(dir, opts.DirMode); err != nil {
		return nil, fmt.Errorf("disk: create cache directory: %w", err)
	}
	s := &Store{opts: opts, files: files{dir: dir, dirMode: opts.DirMode, fileMode: opts.FileMode}}
	s.maint.init(s)
	if opts.L1Size > 0 && !l1Supported {
		return nil, errors.New("disk: Options.L1Size: the L1 tier needs a unix system")
	}
	if l1Supported {
		g, err := openGen(filepath.Join(dir, genFileName), opts.FileMode)
		if err != nil {
			return nil, err
		}
		s.gen = g
		if opts.L1Size > 0 {
			if s.l1, err = newL1(g, opts.L1Size); err != nil {
				g.close()
				return nil, err
			}
		}
	}
	if err := s.open(ctx); err != nil {
		if errors.Is(err, cachekit.ErrCorrupt) && opts.ResetCorrupt {
			if rerr := s.moveAside(); rerr != nil {
				return nil, errors.Join(err, rerr)
			}
			err = s.open(ctx)
		}
		if err != nil {
			s.closeGen()
			return nil, err
		}
	}
	return s, nil
}

// busySlice is SQLite's busy timeout on the store's connections. SQLite
// cannot end its busy wait when a context ends, so it waits at most a slice
// and retry loops until Options.Timeout or the context ends.
const busySlice = 100 * time.Millisecond

// retry runs fn again while the database is locked by another connection,
// until Options.Timeout has passed or ctx ends. fn must change nothing when
// it fails with SQLITE_BUSY, which holds for one statement.
func (s *Store) retry(ctx context.Context, fn func() error) error {
	return sqlitedb.RetryFor(ctx, s.opts.Timeout, fn)
}

// genFileName is the shared generation counter's file.
const genFileName = "cache.gen"

func (s *Store) closeGen() error {
	switch {
	case s.l1 != nil:
		return s.l1.close()
	case s.gen != nil:
		return s.gen.close()
	}
	return nil
}

// committed is called after a change to keys (all: to any number of
// entries) commits, before the operation returns: it advances the shared
// generation so that every L1 of the directory drops what it may no longer
// serve. Inside a transaction it only records, and withTx calls it at
// commit. set, if not nil, is the new value of the single key, which this
// process's L1 then keeps instead of dropping.
func (s *Store) committed(q execer, keys []string, all bool, set *l1val) {
	var sets map[string]l1val
	if set != nil && len(keys) == 1 {
		sets = map[string]l1val{keys[0]: *set}
	}
	if t, ok := q.(*txExec); ok {
		t.keys = append(t.keys, keys...)
		t.all = t.all || all
		for _, k := range keys { // a later change in the transaction wins
			delete(t.sets, k)
		}
		if sets != nil && s.l1 != nil {
			if t.sets == nil {
				t.sets = make(map[string]l1val)
			}
			t.sets[keys[0]] = *set
		}
		return
	}
	s.publish(keys, all, sets)
}

// publish tells every L1 of the directory about committed changes: it
// bumps the shared generation and, when this process's L1 was current,
// applies the changes to it (drop keys, keep the new values of sets)
// instead of emptying it.
func (s *Store) publish(keys []string, all bool, sets map[string]l1val) {
	switch {
	case s.l1 != nil:
		var update func(c *memory.Cache[string, l1val])
		if !all {
			update = func(c *memory.Cache[string, l1val]) {
				for _, k := range keys {
					c.Delete(k)
				}
				for k, v := range sets {
					c.Set(k, v)
				}
			}
		}
		s.l1.wrote(update)
	case s.gen != nil:
		s.gen.bump()
	}
}

// open opens the database, creates the schema and prepares statements.
func (s *Store) open(ctx context.Context) error {
	path := filepath.Join(s.opts.Dir, dbFile)
	// Create the file with our mode before SQLite does (it would use 0644).
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, s.opts.FileMode); err == nil {
		f.Close()
	} else if !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("disk: open %s: %w", path, err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	mmap := max(s.opts.MmapSize, 0)
	cfg := sqlitedb.Config{Path: path, BusyTimeout: min(s.opts.Timeout, busySlice), MmapSize: mmap, CacheSizeKiB: 32 << 10}
	db, err := sqlitedb.Open(ctx, cfg)
	if err != nil {
		return s.classify("open", "", err)
	}
	// Writes go through one connection: goroutines of this process queue
	// for it in Go instead of meeting SQLite's busy handler, which sleeps
	// for milliseconds; other processes still wait on the file lock.
	wdb, err := sqlitedb.Open(ctx, cfg)
	if err != nil {
		db.Close()
		return s.classify("open", "", err)
	}
	wdb.SetMaxOpenConns(1)
	fail := func(err error) error {
		db.Close()
		wdb.Close()
		return s.classify("open", "", err)
	}
	if err := s.createSchema(ctx, wdb); err != nil {
		return fail(err)
	}
	for _, p := range []struct {
		db    *sql.DB
		stmt  **sql.Stmt
		query string
	}{{db, &s.get, sqlGet}, {wdb, &s.set, sqlUpsert}, {wdb, &s.del, sqlDelete}} {
		if *p.stmt, err = p.db.PrepareContext(ctx, p.query); err != nil {
			return fail(err)
		}
	}
	s.db, s.wdb = db, wdb
	// The WAL and shared-memory files SQLite creates get the same mode.
	for _, suffix := range []string{"-wal", "-shm"} {
		os.Chmod(path+suffix, s.opts.FileMode)
	}
	return nil
}

func (s *Store) createSchema(ctx context.Context, db *sql.DB) error {
	return sqlitedb.Retry(ctx, func() error {
		var version int
		err := db.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = 'schema_version'`).Scan(&version)
		if err == nil && version != schemaVersion {
			return fmt.Errorf("disk: schema version %d, this package reads %d", version, schemaVersion)
		}
		// auto_vacuum must be chosen before the first table exists; NONE
		// keeps deletes cheap (FULL made DiskCache's delete p99 14-22 ms).
		if _, err := db.ExecContext(ctx, `PRAGMA auto_vacuum = NONE`); err != nil {
			return err
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		ddl := append([]string(nil), schemaDDL...)
		if s.opts.TagIndex {
			ddl = append(ddl, tagIndexDDL)
		}
		for _, q := range ddl {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		return tx.Commit()
	})
}

// moveAside renames a damaged database (and its WAL files) out of the way.
func (s *Store) moveAside() error {
	path := filepath.Join(s.opts.Dir, dbFile)
	suffix := ".corrupt-" + time.Now().UTC().Format("20060102T150405.000000000")
	for _, ext := range []string{"", "-wal", "-shm"} {
		if err := os.Rename(path+ext, path+suffix+ext); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("disk: move damaged database aside: %w", err)
		}
	}
	return nil
}

// Dir returns the cache directory.
func (s *Store) Dir() string { return s.opts.Dir }

// begin starts an operation: it fails after Close and on a done context,
// and makes Close wait for the operation. Call end when done.
func (s *Store) begin(ctx context.Context, op, key string) error {
	s.closeMu.RLock()
	if s.closed.Load() {
		s.closeMu.RUnlock()
		return s.opErr(op, key, cachekit.ErrClosed)
	}
	s.wg.Add(1) // under the read lock: never concurrent with Close's Wait
	s.closeMu.RUnlock()
	if err := ctx.Err(); err != nil {
		s.wg.Done()
		return s.opErr(op, key, err)
	}
	return nil
}

func (s *Store) end() { s.wg.Done() }

func (s *Store) opErr(op, key string, err error) error {
	return &cachekit.OpError{Op: op, Backend: "disk", Key: key, Err: err}
}

// classify turns a database error into the package's errors: busy past
// the timeout → ErrTimeout, damage → ErrCorrupt.
func (s *Store) classify(op, key string, err error) error {
	if err == nil {
		return nil
	}
	err = sqlitedb.Classify(err)
	switch {
	case errors.Is(err, sqlitedb.ErrBusy):
		err = fmt.Errorf("%w: database locked by another connection for over %v: %w", cachekit.ErrTimeout, s.opts.Timeout, err)
	case errors.Is(err, sqlitedb.ErrCorrupt):
		err = fmt.Errorf("%w: %w", cachekit.ErrCorrupt, err)
	case errors.Is(err, sqlitedb.ErrReadOnly):
		err = fmt.Errorf("%w: %w", fs.ErrPermission, err)
	case errors.Is(err, errTooLarge):
		err = cachekit.ErrTooLarge
	}
	return s.opErr(op, key, err)
}

// now returns the current time in Unix nanoseconds.
func (s *Store) now() int64 { return s.opts.Clock.Now().UnixNano() }

// expiry converts a store-level ttl to an expire_time (nil = never) and
// reports ok=false for a negative ttl.
func (s *Store) expiry(now int64, ttl time.Duration) (any, bool) {
	d, ok := cachekit.ExpiryTime(time.Unix(0, now), ttl)
	if !ok {
		return nil, false
	}
	if d.IsZero() {
		return nil, true
	}
	return d.UnixNano(), true
}

// Get returns the value under key, or an error wrapping cachekit.ErrMiss.
// A value file that has gone missing or was cut short reads as a miss.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	v, _, err := s.getWithExpiry(ctx, "get", key)
	return v, err
}

// GetWithExpiry returns the value under key and its expiry (the zero time
// when it never expires).
func (s *Store) GetWithExpiry(ctx context.Context, key string) ([]byte, time.Time, error) {
	return s.getWithExpiry(ctx, "get", key)
}

func (s *Store) getWithExpiry(ctx context.Context, op, key string) ([]byte, time.Time, error) {
	if err := s.begin(ctx, op, key); err != nil {
		return nil, time.Time{}, err
	}
	defer s.end()
	if s.l1 == nil {
		return s.lookup(ctx, s.db, op, key)
	}
	if v, exp, ok := s.l1.get(key, s.now); ok {
		s.hit(key)
		return v, exp, nil
	}
	g := s.l1.snapshot()
	v, exp, err := s.lookup(ctx, s.db, op, key)
	if err == nil {
		var e int64
		if !exp.IsZero() {
			e = exp.UnixNano()
		}
		s.l1.fill(g, key, v, e)
	}
	return v, exp, err
}

// row is an entry as the get statement returns it.
type row struct {
	val  []byte
	file sql.NullString
	size int64
	exp  sql.NullInt64
}

// selectRow runs the get statement on q; ok is false when no live row.
func (s *Store) selectRow(ctx context.Context, q execer, key string) (r row, ok bool, err error) {
	args := []any{sql.Named("key", key), sql.Named("now", s.now())}
	err = s.retry(ctx, func() error {
		if q == execer(s.db) {
			return s.get.QueryRowContext(ctx, args...).Scan(&r.val, &r.file, &r.size, &r.exp)
		}
		return q.QueryRowContext(ctx, sqlGet, args...).Scan(&r.val, &r.file, &r.size, &r.exp)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return r, false, nil
	}
	return r, err == nil, err
}

// lookup reads the value under key through q, with its expiry, and counts
// the hit or miss.
func (s *Store) lookup(ctx context.Context, q execer, op, key string) ([]byte, time.Time, error) {
	v, exp, err := s.read(ctx, q, op, key)
	switch {
	case err == nil:
		s.hit(key)
	case errors.Is(err, cachekit.ErrMiss):
		s.misses.Add(1)
	}
	return v, exp, err
}

// read is lookup without the statistics.
func (s *Store) read(ctx context.Context, q execer, op, key string) ([]byte, time.Time, error) {
	// A value file can be replaced between the SELECT and the read; look
	// again a few times before calling it a miss.
	for range 3 {
		r, ok, err := s.selectRow(ctx, q, key)
		if err != nil {
			return nil, time.Time{}, s.classify(op, key, err)
		}
		if !ok {
			break
		}
		var expires time.Time
		if r.exp.Valid {
			expires = time.Unix(0, r.exp.Int64)
		}
		if !r.file.Valid {
			if r.val == nil {
				r.val = []byte{}
			}
			return r.val, expires, nil
		}
		data, err := s.files.read(r.file.String, r.size)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errTorn) {
			continue
		}
		if err != nil {
			return nil, time.Time{}, s.opErr(op, key, err)
		}
		return data, expires, nil
	}
	return nil, time.Time{}, cachekit.ErrMiss
}

// Has reports whether key holds a live entry, without reading its value.
func (s *Store) Has(ctx context.Context, key string) (bool, error) {
	if err := s.begin(ctx, "has", key); err != nil {
		return false, err
	}
	defer s.end()
	var one int
	err := s.retry(ctx, func() error {
		return s.db.QueryRowContext(ctx, `SELECT 1 FROM cache WHERE key = :key AND `+live,
			sql.Named("key", key), sql.Named("now", s.now())).Scan(&one)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, s.classify("has", key, err)
}

// Read opens the value under key for reading, without loading it into
// memory when it lives in a file: the result is then an *os.File, which
// stays readable even if the entry is overwritten or deleted meanwhile.
// The caller must close it.
func (s *Store) Read(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := s.begin(ctx, "read", key); err != nil {
		return nil, err
	}
	defer s.end()
	for range 3 {
		r, ok, err := s.selectRow(ctx, s.db, key)
		if err != nil {
			return nil, s.classify("read", key, err)
		}
		if !ok {
			break
		}
		if !r.file.Valid {
			s.hit(key)
			return io.NopCloser(bytes.NewReader(r.val)), nil
		}
		f, err := s.files.open(r.file.String, r.size)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errTorn) {
			continue
		}
		if err != nil {
			return nil, s.opErr("read", key, err)
		}
		s.hit(key)
		return f, nil
	}
	s.misses.Add(1)
	return nil, cachekit.ErrMiss
}

func (s *Store) hit(key string) {
	s.hits.Add(1)
	if s.maint.recording { // skip the clock read when reads are not recorded
		s.maint.touched(key, s.now())
	}
}

// Set stores val under key for ttl (zero or cachekit.NoExpiry: no expiry;
// negative: delete the key).
func (s *Store) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	return s.SetWith(ctx, key, val, SetOptions{TTL: ttl})
}

// SetWith is Set with a tag.
func (s *Store) SetWith(ctx context.Context, key string, val []byte, o SetOptions) error {
	if err := s.begin(ctx, "set", key); err != nil {
		return err
	}
	defer s.end()
	_, err := s.write(ctx, s.wdb, "set", key, val, nil, o, false)
	return err
}

// SetReader stores the contents of r under key, streaming values of
// MinFileSize bytes or more to their file without holding them in memory.
func (s *Store) SetReader(ctx context.Context, key string, r io.Reader, o SetOptions) error {
	if err := s.begin(ctx, "set", key); err != nil {
		return err
	}
	defer s.end()
	// Read up to MinFileSize bytes to learn whether the value is small.
	head := make([]byte, s.opts.MinFileSize)
	n, err := io.ReadFull(r, head)
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		_, err = s.write(ctx, s.wdb, "set", key, head[:n], nil, o, false)
		return err
	case err != nil:
		return s.opErr("set", key, err)
	}
	_, err = s.write(ctx, s.wdb, "set", key, head, r, o, false)
	return err
}

// Add stores val under key only if the key is absent or expired, and
// reports whether it did; atomic across processes.
func (s *Store) Add(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	if err := s.begin(ctx, "add", key); err != nil {
		return false, err
	}
	defer s.end()
	return s.write(ctx, s.wdb, "add", key, val, nil, SetOptions{TTL: ttl}, true)
}

// execer is what writes need: a *sql.DB or a *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// write stores one value read from r (n bytes, or -1 when unknown and at
// least MinFileSize). With add it stores only over an absent or expired
// entry and reports whether it stored.
// write stores one value: val, or, when rest is not nil, val followed by
// what rest yields (a streamed value of at least MinFileSize bytes). The
// store never retains val. With add it stores only over an absent or
// expired entry and reports whether it stored.
func (s *Store) write(ctx context.Context, q execer, op, key string, val []byte, rest io.Reader, o SetOptions, add bool) (bool, error) {
	now := s.now()
	exp, ok := s.expiry(now, o.TTL)
	if !ok {
		if add {
			return false, nil
		}
		_, err := s.deleteKeys(ctx, q, op, []string{key})
		return false, err
	}
	n := int64(len(val))
	if s.opts.MaxValueSize > 0 && n > s.opts.MaxValueSize {
		return false, s.opErr(op, key, cachekit.ErrTooLarge)
	}
	var (
		value any = val // bound by the driver, which copies it
		file  any       // NULL
		size  int64
	)
	if val == nil {
		value = []byte{}
	}
	if rest != nil || n >= int64(s.opts.MinFileSize) {
		var r io.Reader = bytes.NewReader(val)
		if rest != nil {
			r, n = io.MultiReader(r, rest), -1
		}
		name, sz, err := s.files.write(r, s.opts.MaxValueSize)
		if err != nil {
			return false, s.classify(op, key, err)
		}
		value, file, size = nil, name, sz
	}
	var tag any
	if o.Tag != "" {
		tag = o.Tag
	}
	args := []any{sql.Named("key", key), sql.Named("now", now), sql.Named("exp", exp), sql.Named("tag", tag),
		sql.Named("size", size), sql.Named("file", file), sql.Named("value", value)}
	if q != execer(s.wdb) {
		return s.apply1(ctx, q, op, key, args, add, value, file, exp, n)
	}
	var stored, ran bool
	err := s.batched(ctx, func(ctx context.Context, q execer) error {
		var err error
		ran = true
		stored, err = s.apply1(ctx, q, op, key, args, add, value, file, exp, n)
		return err
	})
	if name, ok := file.(string); ok && !ran {
		s.files.remove(name) // withdrawn from the queue before it ran
	}
	var oe *cachekit.OpError
	if err != nil && !errors.As(err, &oe) { // ctx.Err() of a withdrawn write
		err = s.opErr(op, key, err)
	}
	return stored, err
}

// apply1 runs one write's statement through q and records what must
// happen after commit.
func (s *Store) apply1(ctx context.Context, q execer, op, key string, args []any, add bool, value, file, exp any, n int64) (bool, error) {
	var prev sql.NullString
	err := s.retry(ctx, func() error {
		switch {
		case add:
			return q.QueryRowContext(ctx, sqlAdd, args...).Scan(&prev)
		case q == execer(s.wdb):
			return s.set.QueryRowContext(ctx, args...).Scan(&prev)
		}
		return q.QueryRowContext(ctx, sqlUpsert, args...).Scan(&prev)
	})
	if t, ok := q.(*txExec); ok && err == nil {
		if name, ok := file.(string); ok {
			t.created = append(t.created, name)
		}
	}
	if add && errors.Is(err, sql.ErrNoRows) {
		err = nil
		if name, ok := file.(string); ok {
			s.files.remove(name)
		}
		return false, nil
	}
	if err != nil {
		if name, ok := file.(string); ok {
			s.files.remove(name)
		}
		return false, s.classify(op, key, err)
	}
	s.afterWrite(q, prev.String)
	var keep *l1val
	if v, ok := value.([]byte); ok && s.l1 != nil {
		e, _ := exp.(int64)
		keep = &l1val{val: append([]byte(nil), v...), exp: e}
	}
	s.committed(q, []string{key}, false, keep)
	s.maint.wrote(ctx, q, n)
	return true, nil
}

// afterWrite unlinks a replaced value file once its removal is committed:
// now for a single statement, at commit inside a transaction.
func (s *Store) afterWrite(q execer, names ...string) {
	var drop []string
	for _, n := range names {
		if n != "" {
			drop = append(drop, n)
		}
	}
	if len(drop) == 0 {
		return
	}
	if t, ok := q.(*txExec); ok {
		t.unlink = append(t.unlink, drop...)
		return
	}
	s.files.remove(drop...)
}

// Delete removes the keys and returns how many held live entries.
func (s *Store) Delete(ctx context.Context, keys ...string) (int, error) {
	if err := s.begin(ctx, "delete", ""); err != nil {
		return 0, err
	}
	defer s.end()
	return s.deleteKeys(ctx, s.wdb, "delete", keys)
}

func (s *Store) deleteKeys(ctx context.Context, q execer, op string, keys []string) (int, error) {
	if q != execer(s.wdb) {
		return s.deleteKeysQ(ctx, q, op, keys)
	}
	var n int
	err := s.batched(ctx, func(ctx context.Context, q execer) error {
		var err error
		n, err = s.deleteKeysQ(ctx, q, op, keys)
		return err
	})
	return n, err
}

// deleteKeysQ deletes keys through q.
func (s *Store) deleteKeysQ(ctx context.Context, q execer, op string, keys []string) (int, error) {
	n := 0
	for _, key := range keys {
		var (
			file  sql.NullString
			alive bool
			err   error
		)
		args := []any{sql.Named("key", key), sql.Named("now", s.now())}
		err = s.retry(ctx, func() error {
			if q == execer(s.wdb) {
				return s.del.QueryRowContext(ctx, args...).Scan(&file, &alive)
			}
			return q.QueryRowContext(ctx, sqlDelete, args...).Scan(&file, &alive)
		})
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return n, s.classify(op, key, err)
		}
		if alive {
			n++
		}
		s.afterWrite(q, file.String)
		s.committed(q, []string{key}, false, nil)
	}
	return n, nil
}

// Touch gives a live key a new TTL and reports whether it was live. A
// negative ttl deletes the key.
func (s *Store) Touch(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if err := s.begin(ctx, "touch", key); err != nil {
		return false, err
	}
	defer s.end()
	now := s.now()
	exp, ok := s.expiry(now, ttl)
	if !ok {
		n, err := s.deleteKeys(ctx, s.wdb, "touch", []string{key})
		return n > 0, err
	}
	var n int64
	err := s.batched(ctx, func(ctx context.Context, q execer) error {
		return s.retry(ctx, func() error {
			res, err := q.ExecContext(ctx, sqlTouch, sql.Named("exp", exp), sql.Named("key", key), sql.Named("now", now))
			if err != nil {
				return err
			}
			if n, err = res.RowsAffected(); n > 0 {
				s.committed(q, []string{key}, false, nil)
			}
			return err
		})
	})
	return n > 0, s.classify("touch", key, err)
}

// Close waits for operations in progress, writes recorded accesses, and
// closes the database. Later calls return cachekit.ErrClosed; a second
// Close returns nil.
func (s *Store) Close() error {
	s.closeMu.Lock()
	already := s.closed.Swap(true)
	s.closeMu.Unlock()
	if already {
		return nil
	}
	s.wg.Wait()
	s.stopNotify()
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
	defer cancel()
	err := s.maint.flush(ctx, s.wdb)
	for _, st := range []*sql.Stmt{s.get, s.set, s.del} {
		st.Close()
	}
	return errors.Join(err, s.wdb.Close(), s.db.Close(), s.closeGen())
}
