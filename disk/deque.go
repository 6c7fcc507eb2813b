package disk

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"iter"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/codec"
)

// Deque: a persistent double-ended queue (DiskCache's Deque).
//
// Schema. One SQLite file, deque.db, in a directory of its own, holding
//
//	CREATE TABLE deque (pos INTEGER PRIMARY KEY, value BLOB)
//
// The items are exactly the positions head..tail, with no holes: head is
// min(pos), tail is max(pos), both found in O(log n) on the primary key.
// Append writes tail+1 and AppendLeft head-1 (positions may go negative);
// item i is at head+i, so Get and Set are O(log n). Rotate renumbers the
// shorter end past the other end; Remove deletes one row and shifts the
// shorter side by one, in two UPDATEs through a free range so that no
// intermediate position collides. An empty deque starts again at 0. The
// maximum length is a property of the handle, not of the file.
//
// Concurrency. Every change is one BEGIN IMMEDIATE transaction, which takes
// the database's write lock before it reads head or tail, so changes are
// atomic across goroutines, handles and processes; trimming to MaxLen
// happens in the append's transaction. Reads are single statements, each a
// consistent snapshot (WAL readers never wait for the writer). Goroutines
// sharing a handle queue for the write lock in Go; other processes wait in
// SQLite's busy handler, retried until Options.Timeout or ctx ends.

// DequeOptions configures [NewDeque]. The zero value of every field except
// Dir means its default.
type DequeOptions struct {
	// Dir is the deque's own directory, created if missing; the database is
	// Dir/deque.db. Required. Handles opened on the same directory, in one
	// process or several, share the items.
	Dir string

	// MaxLen bounds the length. When an append makes the deque longer,
	// items fall off the other end in the same transaction, as with
	// Python's deque(maxlen=...). Zero (the default) means unbounded. It
	// belongs to this handle: another handle may use another bound.
	MaxLen int

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

	// DirMode is the mode of directories NewDeque creates, before the
	// umask. Default: 0700 (owner only). Existing directories are left as
	// they are.
	DirMode fs.FileMode

	// FileMode is the mode of the database file (and its -wal and -shm
	// files) when NewDeque creates it, before the umask. Default: 0600.
	FileMode fs.FileMode
}

// Deque is a persistent, process-safe double-ended queue of V values,
// stored in a SQLite database. Every method is atomic and safe for
// concurrent use by many goroutines and processes; methods that touch the
// disk take a context, and return ctx.Err() (wrapped) once it ends, an
// error wrapping [cachekit.ErrTimeout] when the database stays locked past
// Options.Timeout, and an error wrapping [cachekit.ErrClosed] after Close.
// Stored bytes that do not decode give an error wrapping
// [cachekit.ErrCorrupt].
type Deque[V any] struct {
	p      *persistDB
	maxLen int64
}

// NewDeque opens the deque in opts.Dir, creating the directory and the
// database when missing. A file there that is not a database gives an error
// wrapping [cachekit.ErrCorrupt]; a directory or database that cannot be
// created or written gives an error wrapping [fs.ErrPermission].
func NewDeque[V any](ctx context.Context, opts DequeOptions) (*Deque[V], error) {
	if opts.MaxLen < 0 {
		return nil, fmt.Errorf("disk: deque: negative Options.MaxLen %d", opts.MaxLen)
	}
	p, err := persistOpen(ctx, persistConfig{
		name:     "disk: deque",
		dir:      opts.Dir,
		file:     "deque.db",
		schema:   "CREATE TABLE IF NOT EXISTS deque (pos INTEGER PRIMARY KEY, value BLOB)",
		codec:    opts.Codec,
		timeout:  opts.Timeout,
		dirMode:  opts.DirMode,
		fileMode: opts.FileMode,
	})
	if err != nil {
		return nil, err
	}
	return &Deque[V]{p: p, maxLen: int64(opts.MaxLen)}, nil
}

// SQL used by more than one method. The ends are separate subqueries:
// SQLite answers a lone min() or max() from the primary key, but scans the
// table for both in one SELECT.
const (
	dequeHead = "(SELECT min(pos) FROM deque)"
	dequeTail = "(SELECT max(pos) FROM deque)"
)

// ends reads head and tail in tx; ok is false when the deque is empty.
func (d *Deque[V]) ends(ctx context.Context, tx *sql.Tx) (head, tail int64, ok bool, err error) {
	var h, t sql.NullInt64
	err = d.p.queryRow(ctx, tx, "SELECT "+dequeHead+", "+dequeTail).Scan(&h, &t)
	return h.Int64, t.Int64, h.Valid, err
}

// MaxLen returns the bound on the length given in Options.MaxLen; 0 means
// unbounded.
func (d *Deque[V]) MaxLen() int { return int(d.maxLen) }

// Append adds v at the right end. When the deque is then longer than
// MaxLen, the leftmost item falls off.
func (d *Deque[V]) Append(ctx context.Context, v V) error {
	return d.push(ctx, "append", false, []V{v})
}

// AppendLeft adds v at the left end. When the deque is then longer than
// MaxLen, the rightmost item falls off.
func (d *Deque[V]) AppendLeft(ctx context.Context, v V) error {
	return d.push(ctx, "append left", true, []V{v})
}

// Extend appends the values at the right end, in order, in one transaction:
// other readers see all of them or none. With MaxLen set, the deque keeps
// the last MaxLen items of the result.
func (d *Deque[V]) Extend(ctx context.Context, values ...V) error {
	return d.push(ctx, "extend", false, values)
}

// ExtendLeft appends each value at the left end in turn, in one
// transaction, so they end up in reverse order, as with Python's
// deque.extendleft: ExtendLeft(ctx, 1, 2, 3) puts 3, 2, 1 in front.
func (d *Deque[V]) ExtendLeft(ctx context.Context, values ...V) error {
	return d.push(ctx, "extend left", true, values)
}

// push adds values at one end and trims the other to maxLen, in one
// transaction. The values are encoded before the write lock is taken.
func (d *Deque[V]) push(ctx context.Context, op string, left bool, values []V) error {
	if len(values) == 0 {
		return d.p.check(ctx, op)
	}
	blobs := make([][]byte, len(values))
	for i, v := range values {
		b, err := d.p.encode(op, v)
		if err != nil {
			return err
		}
		blobs[i] = b
	}
	insert := "INSERT INTO deque (pos, value) VALUES (coalesce(" + dequeTail + " + 1, 0), ?)"
	trim := "DELETE FROM deque WHERE pos <= " + dequeTail + " - ?"
	if left {
		insert = "INSERT INTO deque (pos, value) VALUES (coalesce(" + dequeHead + " - 1, 0), ?)"
		trim = "DELETE FROM deque WHERE pos >= " + dequeHead + " + ?"
	}
	return d.p.write(ctx, op, func(tx *sql.Tx) error {
		for _, b := range blobs {
			if _, err := d.p.exec(ctx, tx, insert, b); err != nil {
				return err
			}
		}
		if d.maxLen == 0 {
			return nil
		}
		_, err := d.p.exec(ctx, tx, trim, d.maxLen)
		return err
	})
}

// Pop removes and returns the rightmost item. An empty deque gives an error
// wrapping [cachekit.ErrMiss]. As in DiskCache, the item is removed before
// it is decoded: bytes that do not decode are gone, and the error wraps
// [cachekit.ErrCorrupt].
func (d *Deque[V]) Pop(ctx context.Context) (V, error) {
	return d.pop(ctx, "pop", dequeTail)
}

// PopLeft removes and returns the leftmost item, as [Deque.Pop] does at the
// right end.
func (d *Deque[V]) PopLeft(ctx context.Context) (V, error) {
	return d.pop(ctx, "pop left", dequeHead)
}

// pop removes the item at end, dequeHead or dequeTail.
func (d *Deque[V]) pop(ctx context.Context, op, end string) (V, error) {
	var (
		data  []byte
		found bool
	)
	err := d.p.write(ctx, op, func(tx *sql.Tx) error {
		err := d.p.queryRow(ctx, tx, "DELETE FROM deque WHERE pos = "+end+" RETURNING value").Scan(&data)
		return persistFound(err, &found)
	})
	return persistResult[V](d.p, op, data, found, err, "deque is empty")
}

// Peek returns the rightmost item without removing it. An empty deque
// gives an error wrapping [cachekit.ErrMiss].
func (d *Deque[V]) Peek(ctx context.Context) (V, error) {
	return d.lookup(ctx, "peek", "SELECT value FROM deque WHERE pos = "+dequeTail, "deque is empty")
}

// PeekLeft returns the leftmost item without removing it. An empty deque
// gives an error wrapping [cachekit.ErrMiss].
func (d *Deque[V]) PeekLeft(ctx context.Context) (V, error) {
	return d.lookup(ctx, "peek left", "SELECT value FROM deque WHERE pos = "+dequeHead, "deque is empty")
}

// Get returns item i, counting from the left from 0 or, when i is
// negative, from the right: -1 is the rightmost item, as in Python. An
// index out of range gives an error wrapping [cachekit.ErrMiss]. Get costs
// O(log n).
func (d *Deque[V]) Get(ctx context.Context, i int) (V, error) {
	q, arg := dequeIndexPos(i)
	return d.lookup(ctx, fmt.Sprintf("get %d", i), "SELECT value FROM deque WHERE pos = "+q, "index out of range", arg)
}

// dequeIndexPos returns the SQL expression for the position of item i and
// its argument.
func dequeIndexPos(i int) (string, int64) {
	if i < 0 {
		return dequeTail + " + 1 + ?", int64(i)
	}
	return dequeHead + " + ?", int64(i)
}

// lookup reads one value with query.
func (d *Deque[V]) lookup(ctx context.Context, op, query, missing string, args ...any) (V, error) {
	var (
		data  []byte
		found bool
	)
	err := d.p.read(ctx, op, func() error {
		return persistFound(d.p.queryRow(ctx, nil, query, args...).Scan(&data), &found)
	})
	return persistResult[V](d.p, op, data, found, err, missing)
}

// Set replaces item i (negative i counts from the right, as in [Deque.Get]).
// An index out of range gives an error wrapping [cachekit.ErrMiss] and
// changes nothing.
func (d *Deque[V]) Set(ctx context.Context, i int, v V) error {
	op := fmt.Sprintf("set %d", i)
	b, err := d.p.encode(op, v)
	if err != nil {
		return err
	}
	q, arg := dequeIndexPos(i)
	var n int64
	err = d.p.write(ctx, op, func(tx *sql.Tx) error {
		res, err := d.p.exec(ctx, tx, "UPDATE deque SET value = ? WHERE pos = "+q, b, arg)
		if err == nil {
			n, err = res.RowsAffected()
		}
		return err
	})
	if err == nil && n == 0 {
		err = fmt.Errorf("%s: %s: index out of range: %w", d.p.name, op, cachekit.ErrMiss)
	}
	return err
}

// Len returns the number of items, in O(log n).
func (d *Deque[V]) Len(ctx context.Context) (int, error) {
	var n int64
	err := d.p.read(ctx, "len", func() error {
		return d.p.queryRow(ctx, nil, "SELECT coalesce("+dequeTail+" - "+dequeHead+" + 1, 0)").Scan(&n)
	})
	return int(n), err
}

// Rotate rotates the deque n steps to the right (to the left when n is
// negative), as Python's deque.rotate: Rotate(ctx, 1) moves the rightmost
// item to the left end. n may exceed the length. It renumbers the
// min(k, len-k) items at one end, where k is n modulo the length.
func (d *Deque[V]) Rotate(ctx context.Context, n int) error {
	return d.p.write(ctx, fmt.Sprintf("rotate %d", n), func(tx *sql.Tx) error {
		head, tail, ok, err := d.ends(ctx, tx)
		if err != nil || !ok {
			return err
		}
		size := tail - head + 1
		k := (int64(n)%size + size) % size
		switch {
		case k == 0:
			return nil
		case k <= size-k: // the last k items go before head
			_, err = d.p.exec(ctx, tx, "UPDATE deque SET pos = pos - ? WHERE pos > ?", size, tail-k)
		default: // the first size-k items go after tail
			_, err = d.p.exec(ctx, tx, "UPDATE deque SET pos = pos + ? WHERE pos < ?", size, head+size-k)
		}
		return err
	})
}

// Remove removes the first item (from the left) whose encoding equals that
// of v, and reports whether there was one. It finds the item in O(n) and
// closes the gap by renumbering the shorter side.
func (d *Deque[V]) Remove(ctx context.Context, v V) (bool, error) {
	b, err := d.p.encode("remove", v)
	if err != nil {
		return false, err
	}
	var found bool
	err = d.p.write(ctx, "remove", func(tx *sql.Tx) error {
		var p int64
		err := d.p.queryRow(ctx, tx, "SELECT pos FROM deque WHERE value = ? ORDER BY pos LIMIT 1", b).Scan(&p)
		if err := persistFound(err, &found); err != nil || !found {
			return err
		}
		head, tail, _, err := d.ends(ctx, tx)
		if err != nil {
			return err
		}
		if _, err := d.p.exec(ctx, tx, "DELETE FROM deque WHERE pos = ?", p); err != nil {
			return err
		}
		// Shift the shorter side one step towards the gap. UPDATE ... SET
		// pos = pos + 1 could hit a position not yet moved, so first move
		// the side past the other end by size (free positions), then back
		// by size, plus or minus 1.
		size := tail - head + 1
		steps := [2]string{"UPDATE deque SET pos = pos + ? WHERE pos > ?", "UPDATE deque SET pos = pos - ? WHERE pos > ?"}
		args := [2][2]int64{{size, p}, {size + 1, tail}}
		if p-head < tail-p {
			steps = [2]string{"UPDATE deque SET pos = pos - ? WHERE pos < ?", "UPDATE deque SET pos = pos + ? WHERE pos < ?"}
			args = [2][2]int64{{size, p}, {size + 1, head}}
		}
		for i, q := range steps {
			if _, err := d.p.exec(ctx, tx, q, args[i][0], args[i][1]); err != nil {
				return err
			}
		}
		return nil
	})
	return found, err
}

// Clear removes every item.
func (d *Deque[V]) Clear(ctx context.Context) error {
	return d.p.write(ctx, "clear", func(tx *sql.Tx) error {
		_, err := d.p.exec(ctx, tx, "DELETE FROM deque")
		return err
	})
}

// All returns an iterator over the items from left to right, yielding each
// item's index and value, and a function reporting the error that ended the
// last iteration, if any: range over the iterator, then call the function,
// as with sql.Rows.Err. The iterator reads 100 items per query; it is not a
// snapshot: when other writers change the deque meanwhile, the index is
// simply the count of items yielded so far, and items may be missed or,
// after a Rotate, seen twice. Call the error function only after the loop
// ends, from the same goroutine.
func (d *Deque[V]) All(ctx context.Context) (iter.Seq2[int, V], func() error) {
	var err error
	seq := func(yield func(int, V) bool) {
		i := 0
		err = d.p.scan(ctx, "iterate", "SELECT pos, NULL, value FROM deque WHERE pos > ? ORDER BY pos LIMIT ?",
			func(r persistRow) (bool, error) {
				v, err := persistDecode[V](d.p, "iterate", r.value)
				if err != nil {
					return false, err
				}
				i++
				return yield(i-1, v), nil
			})
	}
	return seq, func() error { return err }
}

// Close closes the deque's database. Later calls on the deque return errors
// wrapping [cachekit.ErrClosed]; a second Close returns nil. Close does not
// wait for calls in progress in other goroutines; they finish or fail with
// ErrClosed.
func (d *Deque[V]) Close() error { return d.p.close() }
