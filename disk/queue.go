package disk

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"time"

	"github.com/cachekit/cachekit"
)

// Queue keys: Push files values under prefix + "-" + a 15-digit number,
// counting up from 500000000000000 at the back and down at the front, as
// DiskCache does, so that key order is queue order.
const (
	queueStart  = 500_000_000_000_000
	queueDigits = 15
)

// Side selects an end of a queue.
type Side int

// The two ends of a queue.
const (
	Back Side = iota
	Front
)

// PushOptions modifies [Store.Push].
type PushOptions struct {
	Side Side          // Back (default) or Front
	TTL  time.Duration // as in Set
	Tag  string
}

// queueDigitsOnly keeps the keys whose tail after the prefix and dash (from
// byte :start) is all digits, so other keys that happen to share the range
// and length are not taken for queue items.
const queueDigitsOnly = `CAST(substr(CAST(key AS BLOB), :start) AS TEXT) NOT GLOB '*[^0-9]*'`

func queueKey(prefix string, n int64) string {
	return fmt.Sprintf("%s-%0*d", prefix, queueDigits, n)
}

// queueRange is the key range of prefix's queue and the length of its keys.
func queueRange(prefix string) (lo, hi string, n int) {
	return prefix + "-", prefix + ".", len(prefix) + 1 + queueDigits
}

// Push adds val to the queue named prefix, at its back or front, and
// returns the key it was filed under. Atomic across processes.
func (s *Store) Push(ctx context.Context, prefix string, val []byte, o PushOptions) (string, error) {
	if err := s.begin(ctx, "push", prefix); err != nil {
		return "", err
	}
	defer s.end()
	var key string
	err := s.withTx(ctx, "push", prefix, func(t *txExec) error {
		lo, hi, n := queueRange(prefix)
		order := "DESC"
		if o.Side == Front {
			order = "ASC"
		}
		var last string
		err := t.QueryRowContext(ctx, `SELECT key FROM cache WHERE key >= :lo AND key < :hi
			AND length(CAST(key AS BLOB)) = :n AND `+queueDigitsOnly+` ORDER BY key `+order+` LIMIT 1`,
			sql.Named("lo", lo), sql.Named("hi", hi), sql.Named("n", n), sql.Named("start", len(lo)+1)).Scan(&last)
		num := int64(queueStart)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		default:
			cur, perr := strconv.ParseInt(last[len(lo):], 10, 64)
			if perr != nil {
				return fmt.Errorf("disk: push: malformed queue key %q", last)
			}
			if o.Side == Front {
				num = cur - 1
			} else {
				num = cur + 1
			}
			if num < 0 || num > 999_999_999_999_999 {
				return fmt.Errorf("disk: push: queue %q is full", prefix)
			}
		}
		key = queueKey(prefix, num)
		_, err = s.write(ctx, t, "push", key, val, nil, SetOptions{TTL: o.TTL, Tag: o.Tag}, false)
		return err
	})
	return key, err
}

// Pull removes and returns the item at the given end of the queue named
// prefix (expired items are skipped and removed). An empty queue gives
// cachekit.ErrMiss.
func (s *Store) Pull(ctx context.Context, prefix string, side Side) (key string, val []byte, err error) {
	return s.pullOrPeek(ctx, "pull", prefix, side, true)
}

// Peek returns the item at the given end of the queue without removing it.
func (s *Store) Peek(ctx context.Context, prefix string, side Side) (key string, val []byte, err error) {
	return s.pullOrPeek(ctx, "peek", prefix, side, false)
}

func (s *Store) pullOrPeek(ctx context.Context, op, prefix string, side Side, remove bool) (key string, val []byte, err error) {
	if err := s.begin(ctx, op, prefix); err != nil {
		return "", nil, err
	}
	defer s.end()
	lo, hi, n := queueRange(prefix)
	order := "ASC"
	if side == Back {
		order = "DESC"
	}
	err = s.withTx(ctx, op, prefix, func(t *txExec) error {
		for {
			err := t.QueryRowContext(ctx, `SELECT key FROM cache WHERE key >= :lo AND key < :hi
				AND length(CAST(key AS BLOB)) = :n AND `+queueDigitsOnly+` AND `+live+` ORDER BY key `+order+` LIMIT 1`,
				sql.Named("lo", lo), sql.Named("hi", hi), sql.Named("n", n), sql.Named("start", len(lo)+1),
				sql.Named("now", s.now())).Scan(&key)
			if errors.Is(err, sql.ErrNoRows) {
				return s.opErr(op, prefix, cachekit.ErrMiss)
			}
			if err != nil {
				return err
			}
			val, _, err = s.lookup(ctx, t, op, key)
			if errors.Is(err, cachekit.ErrMiss) { // its file is gone: drop the entry
				if _, err := s.deleteKeys(ctx, t, op, []string{key}); err != nil {
					return err
				}
				continue
			}
			if err != nil {
				return err
			}
			if remove {
				_, err = s.deleteKeys(ctx, t, op, []string{key})
			}
			return err
		}
	})
	if err != nil {
		return "", nil, err
	}
	return key, val, nil
}

// PeekItem returns the most recently (last) or least recently first stored
// live entry, in insertion order (DiskCache's peekitem).
func (s *Store) PeekItem(ctx context.Context, last bool) (key string, val []byte, err error) {
	if err := s.begin(ctx, "peekitem", ""); err != nil {
		return "", nil, err
	}
	defer s.end()
	order := "ASC"
	if last {
		order = "DESC"
	}
	for range 3 {
		err := s.db.QueryRowContext(ctx, `SELECT key FROM cache WHERE `+live+` ORDER BY rowid `+order+` LIMIT 1`,
			sql.Named("now", s.now())).Scan(&key)
		if errors.Is(err, sql.ErrNoRows) {
			break
		}
		if err != nil {
			return "", nil, s.classify("peekitem", "", err)
		}
		val, _, err = s.lookup(ctx, s.db, "peekitem", key)
		if errors.Is(err, cachekit.ErrMiss) { // removed meanwhile
			continue
		}
		return key, val, err
	}
	return "", nil, s.opErr("peekitem", "", cachekit.ErrMiss)
}

// Keys returns an iterator over the live keys in key order (bytewise) and a
// function reporting the error that ended the iteration, if any: range over
// the iterator, then call the function, as with sql.Rows.Err (the idiom of
// [Deque.All] and [Index.All]). It reads 100 keys per query, holding no
// connection while the loop body runs; entries changed during the
// iteration may or may not be seen.
func (s *Store) Keys(ctx context.Context) (iter.Seq[string], func() error) {
	return pageKeys(ctx, s, `SELECT key, key FROM cache WHERE key > :after AND `+live+` ORDER BY key LIMIT 100`, "")
}

// KeysInStoreOrder is like Keys, in the order the keys were first stored
// (an overwrite keeps a key's place), like iterating a DiskCache.
func (s *Store) KeysInStoreOrder(ctx context.Context) (iter.Seq[string], func() error) {
	return pageKeys(ctx, s, `SELECT rowid, key FROM cache WHERE rowid > :after AND `+live+` ORDER BY rowid LIMIT 100`, int64(-1<<63))
}

// pageKeys runs query (which selects the paging column, of type T, and the
// key) page after page.
func pageKeys[T string | int64](ctx context.Context, s *Store, query string, start T) (iter.Seq[string], func() error) {
	var failed error
	seq := func(yield func(string) bool) {
		failed = nil
		after := start
		for {
			if err := s.begin(ctx, "keys", ""); err != nil {
				failed = err
				return
			}
			rows, err := s.db.QueryContext(ctx, query, sql.Named("after", after), sql.Named("now", s.now()))
			if err != nil {
				s.end()
				failed = s.classify("keys", "", err)
				return
			}
			var page []string
			for rows.Next() {
				var key string
				if err = rows.Scan(&after, &key); err != nil {
					break
				}
				page = append(page, key)
			}
			if err == nil {
				err = rows.Err()
			}
			rows.Close()
			s.end()
			if err != nil {
				failed = s.classify("keys", "", err)
				return
			}
			for _, k := range page {
				if !yield(k) {
					return
				}
			}
			if len(page) < 100 {
				return
			}
		}
	}
	return seq, func() error { return failed }
}
