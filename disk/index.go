package disk

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"iter"
	"time"

	"github.com/cachekit/cachekit/codec"
)

// Index: a persistent, insertion-ordered map (DiskCache's Index).
//
// Schema. One SQLite file, index.db, in a directory of its own, holding
//
//	CREATE TABLE entries (rowid INTEGER PRIMARY KEY, key BLOB UNIQUE NOT NULL, value BLOB)
//
// The order of the entries is the order of rowid, which SQLite assigns as
// max(rowid)+1 on insert. Set updates an existing key in place (an UPSERT
// that UPDATEs, never REPLACE, which would delete and re-insert), so a key
// keeps its position; a deleted and re-added key moves to the end. Keys are
// stored as the bytes of the Go string. Push and Pull use keys
// prefix-NNNNNNNNNNNNNNN, whose byte order is their numeric order, and find
// a queue's ends with a range scan of the key index.
//
// Concurrency. As for [Deque]: every change, including the read-then-write
// ones (SetDefault, Pop, PopItem, Push, Pull), is one BEGIN IMMEDIATE
// transaction, atomic across goroutines, handles and processes; reads are
// single statements; Options.Timeout and ctx bound every wait.

// IndexOptions configures [NewIndex]. The zero value of every field except
// Dir means its default.
type IndexOptions struct {
	// Dir is the index's own directory, created if missing; the database is
	// Dir/index.db. Required. Handles opened on the same directory, in one
	// process or several, share the entries.
	Dir string

	// Codec encodes the values. Default: codec.Gob. Every handle on a
	// directory must use the same codec and value type.
	Codec codec.Codec

	// Timeout bounds how long an operation waits for the database's write
	// lock (held by another process or handle, or by other goroutines on
	// this handle) or for a busy database; past it the operation fails with
	// an error wrapping cachekit.ErrTimeout and changes nothing. The ctx of
	// each call bounds the wait too. Default: 60 seconds (DiskCache's
	// default).
	Timeout time.Duration

	// DirMode is the mode of directories NewIndex creates, before the umask.
	// Default: 0700 (owner only). Existing directories are left as they are.
	DirMode fs.FileMode

	// FileMode is the mode of the database file (and its -wal and -shm
	// files) when NewIndex creates it, before the umask. Default: 0600.
	FileMode fs.FileMode
}

// Index is a persistent, process-safe map from string keys to V values
// that remembers insertion order, stored in a SQLite database. Every method
// is atomic and safe for concurrent use by many goroutines and processes;
// methods that touch the disk take a context, and return ctx.Err()
// (wrapped) once it ends, an error wrapping [cachekit.ErrTimeout] when the
// database stays locked past Options.Timeout, and an error wrapping
// [cachekit.ErrClosed] after Close. Stored bytes that do not decode give an
// error wrapping [cachekit.ErrCorrupt].
type Index[V any] struct {
	p *persistDB
}

// NewIndex opens the index in opts.Dir, creating the directory and the
// database when missing. A file there that is not a database gives an error
// wrapping [cachekit.ErrCorrupt]; a directory or database that cannot be
// created or written gives an error wrapping [fs.ErrPermission].
func NewIndex[V any](ctx context.Context, opts IndexOptions) (*Index[V], error) {
	p, err := persistOpen(ctx, persistConfig{
		name:     "disk: index",
		dir:      opts.Dir,
		file:     "index.db",
		schema:   "CREATE TABLE IF NOT EXISTS entries (rowid INTEGER PRIMARY KEY, key BLOB UNIQUE NOT NULL, value BLOB)",
		codec:    opts.Codec,
		timeout:  opts.Timeout,
		dirMode:  opts.DirMode,
		fileMode: opts.FileMode,
	})
	if err != nil {
		return nil, err
	}
	return &Index[V]{p: p}, nil
}

// Queue keys, as DiskCache's push and pull: prefix-NNNNNNNNNNNNNNN, the
// first one 500000000000000, counting up at the back and down at the front.
const (
	indexQueueStart  = 500_000_000_000_000
	indexQueueMax    = 999_999_999_999_999
	indexQueueDigits = 15
)

// Get returns the value under key, or an error wrapping [cachekit.ErrMiss]
// when the key is absent.
func (x *Index[V]) Get(ctx context.Context, key string) (V, error) {
	op := fmt.Sprintf("get %q", key)
	var (
		data  []byte
		found bool
	)
	err := x.p.read(ctx, op, func() error {
		err := x.p.queryRow(ctx, nil, "SELECT value FROM entries WHERE key = ?", []byte(key)).Scan(&data)
		return persistFound(err, &found)
	})
	return persistResult[V](x.p, op, data, found, err, "no such key")
}

// Has reports whether key is present.
func (x *Index[V]) Has(ctx context.Context, key string) (bool, error) {
	var found bool
	err := x.p.read(ctx, fmt.Sprintf("has %q", key), func() error {
		var one int
		err := x.p.queryRow(ctx, nil, "SELECT 1 FROM entries WHERE key = ?", []byte(key)).Scan(&one)
		return persistFound(err, &found)
	})
	return found, err
}

// Set stores v under key. A new key goes to the end of the order; an
// existing key keeps its position.
func (x *Index[V]) Set(ctx context.Context, key string, v V) error {
	op := fmt.Sprintf("set %q", key)
	b, err := x.p.encode(op, v)
	if err != nil {
		return err
	}
	return x.p.write(ctx, op, func(tx *sql.Tx) error {
		_, err := x.p.exec(ctx, tx, "INSERT INTO entries (key, value) VALUES (?, ?) "+
			"ON CONFLICT (key) DO UPDATE SET value = excluded.value", []byte(key), b)
		return err
	})
}

// SetDefault returns the value under key when present; otherwise it stores
// v under key and returns v. The check and the store are one transaction.
func (x *Index[V]) SetDefault(ctx context.Context, key string, v V) (V, error) {
	op := fmt.Sprintf("set default %q", key)
	var zero V
	b, err := x.p.encode(op, v)
	if err != nil {
		return zero, err
	}
	var (
		data    []byte
		existed bool
	)
	err = x.p.write(ctx, op, func(tx *sql.Tx) error {
		res, err := x.p.exec(ctx, tx, "INSERT INTO entries (key, value) VALUES (?, ?) "+
			"ON CONFLICT (key) DO NOTHING", []byte(key), b)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if existed = n == 0; err != nil || !existed {
			return err
		}
		return x.p.queryRow(ctx, tx, "SELECT value FROM entries WHERE key = ?", []byte(key)).Scan(&data)
	})
	switch {
	case err != nil:
		return zero, err
	case !existed:
		return v, nil
	}
	return persistDecode[V](x.p, op, data)
}

// Delete removes key and reports whether it was present.
func (x *Index[V]) Delete(ctx context.Context, key string) (bool, error) {
	var n int64
	err := x.p.write(ctx, fmt.Sprintf("delete %q", key), func(tx *sql.Tx) error {
		res, err := x.p.exec(ctx, tx, "DELETE FROM entries WHERE key = ?", []byte(key))
		if err == nil {
			n, err = res.RowsAffected()
		}
		return err
	})
	return n > 0, err
}

// Pop removes key and returns its value, or an error wrapping
// [cachekit.ErrMiss] when the key is absent. As in DiskCache, the entry is
// removed before its value is decoded: bytes that do not decode are gone,
// and the error wraps [cachekit.ErrCorrupt].
func (x *Index[V]) Pop(ctx context.Context, key string) (V, error) {
	op := fmt.Sprintf("pop %q", key)
	var (
		data  []byte
		found bool
	)
	err := x.p.write(ctx, op, func(tx *sql.Tx) error {
		err := x.p.queryRow(ctx, tx, "DELETE FROM entries WHERE key = ? RETURNING value", []byte(key)).Scan(&data)
		return persistFound(err, &found)
	})
	return persistResult[V](x.p, op, data, found, err, "no such key")
}

// PopItem removes the last entry in insertion order (the first when last
// is false) and returns its key and value. An empty index gives an error
// wrapping [cachekit.ErrMiss]. Undecodable bytes are removed, as in
// [Index.Pop]; the key is returned with the error.
func (x *Index[V]) PopItem(ctx context.Context, last bool) (string, V, error) {
	end := "min"
	if last {
		end = "max"
	}
	var (
		key, data []byte
		found     bool
	)
	err := x.p.write(ctx, "pop item", func(tx *sql.Tx) error {
		err := x.p.queryRow(ctx, tx, "DELETE FROM entries WHERE rowid = (SELECT "+end+"(rowid) FROM entries) "+
			"RETURNING key, value").Scan(&key, &data)
		return persistFound(err, &found)
	})
	v, err := persistResult[V](x.p, "pop item", data, found, err, "index is empty")
	return string(key), v, err
}

// PeekItem returns the key and value of the last entry in insertion order
// (the first when last is false) without removing it. An empty index gives
// an error wrapping [cachekit.ErrMiss].
func (x *Index[V]) PeekItem(ctx context.Context, last bool) (string, V, error) {
	order := "ASC"
	if last {
		order = "DESC"
	}
	var (
		key, data []byte
		found     bool
	)
	err := x.p.read(ctx, "peek item", func() error {
		err := x.p.queryRow(ctx, nil, "SELECT key, value FROM entries ORDER BY rowid "+order+" LIMIT 1").
			Scan(&key, &data)
		return persistFound(err, &found)
	})
	v, err := persistResult[V](x.p, "peek item", data, found, err, "index is empty")
	return string(key), v, err
}

// Push adds v to the queue named prefix and returns its generated key,
// prefix + "-" + a 15-digit number, as DiskCache's push: the first key is
// prefix-500000000000000, later ones count up at the back or, when front
// is true, down at the front. Keys of the queue sort in queue order. Other
// keys of the same shape (prefix, "-", 15 digits) take part in the queue.
// Like any new key, the entry goes to the end of the insertion order.
func (x *Index[V]) Push(ctx context.Context, prefix string, v V, front bool) (string, error) {
	op := fmt.Sprintf("push %q", prefix)
	b, err := x.p.encode(op, v)
	if err != nil {
		return "", err
	}
	var key string
	err = x.p.write(ctx, op, func(tx *sql.Tx) error {
		_, num, ok, err := x.queueEnd(ctx, tx, prefix, front)
		switch {
		case err != nil:
			return err
		case !ok:
			num = indexQueueStart
		case front:
			num--
		default:
			num++
		}
		if num < 0 || num > indexQueueMax {
			return fmt.Errorf("queue %q has no key left at that end", prefix)
		}
		key = fmt.Sprintf("%s-%0*d", prefix, indexQueueDigits, num)
		_, err = x.p.exec(ctx, tx, "INSERT INTO entries (key, value) VALUES (?, ?)", []byte(key), b)
		return err
	})
	if err != nil {
		return "", err
	}
	return key, nil
}

// Pull removes and returns the first entry of the queue named prefix (the
// smallest key) or, when front is false, the last one, with its key. Push
// at the back and Pull from the front make a FIFO queue. An empty queue
// gives an error wrapping [cachekit.ErrMiss]. Undecodable bytes are
// removed, as in [Index.Pop]; the key is returned with the error.
func (x *Index[V]) Pull(ctx context.Context, prefix string, front bool) (string, V, error) {
	op := fmt.Sprintf("pull %q", prefix)
	var (
		key   string
		data  []byte
		found bool
	)
	err := x.p.write(ctx, op, func(tx *sql.Tx) error {
		var err error
		key, _, found, err = x.queueEnd(ctx, tx, prefix, front)
		if err != nil || !found {
			return err
		}
		return x.p.queryRow(ctx, tx, "DELETE FROM entries WHERE key = ? RETURNING value", []byte(key)).Scan(&data)
	})
	v, err := persistResult[V](x.p, op, data, found, err, "queue is empty")
	return key, v, err
}

// queueEnd finds the smallest (front) or largest queue key of prefix
// and its number. It scans the key range in order and skips keys of the
// right length whose tail is not all digits.
func (x *Index[V]) queueEnd(ctx context.Context, tx *sql.Tx, prefix string, front bool) (string, int64, bool, error) {
	order := "DESC"
	if front {
		order = "ASC"
	}
	lo := fmt.Sprintf("%s-%0*d", prefix, indexQueueDigits, 0)
	hi := fmt.Sprintf("%s-%0*d", prefix, indexQueueDigits, indexQueueMax)
	rows, err := x.p.query(ctx, tx, "SELECT key FROM entries WHERE key BETWEEN ? AND ? AND length(key) = ? "+
		"ORDER BY key "+order, []byte(lo), []byte(hi), len(lo))
	if err != nil {
		return "", 0, false, err
	}
	defer rows.Close()
	for rows.Next() {
		var key []byte
		if err := rows.Scan(&key); err != nil {
			return "", 0, false, err
		}
		if n, ok := indexQueueNum(key[len(prefix)+1:]); ok {
			return string(key), n, true, nil
		}
	}
	return "", 0, false, rows.Err()
}

// indexQueueNum parses the digits of a queue key.
func indexQueueNum(digits []byte) (int64, bool) {
	var n int64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// Len returns the number of entries. SQLite counts them with a scan of the
// smallest b-tree: fast, but proportional to the number of entries.
func (x *Index[V]) Len(ctx context.Context) (int, error) {
	var n int
	err := x.p.read(ctx, "len", func() error {
		return x.p.queryRow(ctx, nil, "SELECT count(*) FROM entries").Scan(&n)
	})
	return n, err
}

// Clear removes every entry.
func (x *Index[V]) Clear(ctx context.Context) error {
	return x.p.write(ctx, "clear", func(tx *sql.Tx) error {
		_, err := x.p.exec(ctx, tx, "DELETE FROM entries")
		return err
	})
}

// All returns an iterator over the entries in insertion order, yielding key
// and value, and a function reporting the error that ended the last
// iteration, if any: range over the iterator, then call the function, as
// with sql.Rows.Err. The iterator reads 100 entries per query; it is not a
// snapshot: entries other writers add meanwhile may or may not be seen, an
// entry deleted meanwhile may still be seen if its page was already read,
// and a key deleted and set again meanwhile may be seen twice (it moved to
// the end). Call the error function only after the loop ends, from the same
// goroutine. It is the idiom of [Deque.All].
func (x *Index[V]) All(ctx context.Context) (iter.Seq2[string, V], func() error) {
	var err error
	seq := func(yield func(string, V) bool) {
		err = x.p.scan(ctx, "iterate", "SELECT rowid, key, value FROM entries WHERE rowid > ? ORDER BY rowid LIMIT ?",
			func(r persistRow) (bool, error) {
				v, err := persistDecode[V](x.p, fmt.Sprintf("iterate %q", r.key), r.value)
				if err != nil {
					return false, err
				}
				return yield(string(r.key), v), nil
			})
	}
	return seq, func() error { return err }
}

// Keys returns an iterator over the keys in insertion order and a function
// reporting the error that ended the last iteration, as [Index.All] does.
func (x *Index[V]) Keys(ctx context.Context) (iter.Seq[string], func() error) {
	var err error
	seq := func(yield func(string) bool) {
		err = x.p.scan(ctx, "keys", "SELECT rowid, key, NULL FROM entries WHERE rowid > ? ORDER BY rowid LIMIT ?",
			func(r persistRow) (bool, error) { return yield(string(r.key)), nil })
	}
	return seq, func() error { return err }
}

// Close closes the index's database. Later calls on the index return
// errors wrapping [cachekit.ErrClosed]; a second Close returns nil. Close
// does not wait for calls in progress in other goroutines; they finish or
// fail with ErrClosed.
func (x *Index[V]) Close() error { return x.p.close() }
