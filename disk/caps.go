package disk

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cachekit/cachekit"
)

// IncrBy adds delta to the decimal integer under key and returns the new
// value, atomically across processes and keeping the key's TTL. It returns
// cachekit.ErrMiss when the key is absent and cachekit.ErrNotInteger when
// the value is not a decimal integer or the sum overflows int64.
func (s *Store) IncrBy(ctx context.Context, key string, delta int64) (int64, error) {
	if err := s.begin(ctx, "incr", key); err != nil {
		return 0, err
	}
	defer s.end()
	var n int64
	err := s.withTx(ctx, "incr", key, func(t *txExec) error {
		var err error
		n, err = s.incrBy(ctx, t, key, delta)
		return err
	})
	return n, err
}

func (s *Store) incrBy(ctx context.Context, q execer, key string, delta int64) (int64, error) {
	r, ok, err := s.selectRow(ctx, q, key)
	if err != nil {
		return 0, s.classify("incr", key, err)
	}
	if !ok {
		return 0, s.opErr("incr", key, cachekit.ErrMiss)
	}
	text := r.val
	if r.file.Valid {
		if text, err = s.files.read(r.file.String, r.size); err != nil {
			return 0, s.opErr("incr", key, fmt.Errorf("%w: %w", cachekit.ErrNotInteger, err))
		}
	}
	old, err := strconv.ParseInt(string(text), 10, 64)
	if err != nil {
		return 0, s.opErr("incr", key, fmt.Errorf("%w: %q", cachekit.ErrNotInteger, text))
	}
	sum := old + delta
	if (delta > 0 && sum < old) || (delta < 0 && sum > old) {
		return 0, s.opErr("incr", key, fmt.Errorf("%w: %d%+d overflows int64", cachekit.ErrNotInteger, old, delta))
	}
	// The new value is short: it goes in the row even if the old one was in
	// a file, which is released after commit.
	var prev sql.NullString
	err = q.QueryRowContext(ctx, `UPDATE cache SET value = :value, store_time = :now, size = 0,
			prev_file = filename, filename = NULL WHERE key = :key RETURNING prev_file`,
		sql.Named("value", []byte(strconv.FormatInt(sum, 10))), sql.Named("now", s.now()), sql.Named("key", key)).Scan(&prev)
	if err != nil {
		return 0, s.classify("incr", key, err)
	}
	s.afterWrite(q, prev.String)
	s.committed(q, []string{key}, false, nil)
	return sum, nil
}

// batch is how many keys one IN (...) statement carries.
const batch = 200

// GetMany returns the live values of keys; absent keys are left out.
func (s *Store) GetMany(ctx context.Context, keys []string) (map[string][]byte, error) {
	if err := s.begin(ctx, "get_many", ""); err != nil {
		return nil, err
	}
	defer s.end()
	keys = slices.Clone(keys)
	slices.Sort(keys)
	keys = slices.Compact(keys) // a key asked twice is one lookup
	out := make(map[string][]byte, len(keys))
	asked := len(keys)
	for len(keys) > 0 {
		chunk := keys[:min(len(keys), batch)]
		keys = keys[len(chunk):]
		args := make([]any, 0, len(chunk)+1)
		marks := make([]string, len(chunk))
		for i, k := range chunk {
			args = append(args, k)
			marks[i] = "?"
		}
		args = append(args, s.now())
		rows, err := s.db.QueryContext(ctx, `SELECT key, value, filename, size FROM cache WHERE key IN (`+
			strings.Join(marks, ",")+`) AND (expire_time IS NULL OR expire_time > ?)`, args...)
		if err != nil {
			return nil, s.classify("get_many", "", err)
		}
		var files []struct {
			key, name string
			size      int64
		}
		for rows.Next() {
			var (
				k    string
				v    []byte
				file sql.NullString
				size int64
			)
			if err := rows.Scan(&k, &v, &file, &size); err != nil {
				rows.Close()
				return nil, s.classify("get_many", "", err)
			}
			if file.Valid {
				files = append(files, struct {
					key, name string
					size      int64
				}{k, file.String, size})
				continue
			}
			if v == nil {
				v = []byte{}
			}
			out[k] = v
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, s.classify("get_many", "", err)
		}
		for _, f := range files {
			// A file replaced meanwhile: read the key again on its own.
			if v, _, err := s.read(ctx, s.db, "get_many", f.key); err == nil {
				out[f.key] = v
			} else if !errors.Is(err, cachekit.ErrMiss) {
				return nil, err
			}
		}
	}
	for k := range out {
		s.hit(k)
	}
	s.misses.Add(uint64(asked - len(out)))
	return out, nil
}

// SetMany stores every item with the same ttl, in one transaction.
func (s *Store) SetMany(ctx context.Context, items map[string][]byte, ttl time.Duration) error {
	if err := s.begin(ctx, "set_many", ""); err != nil {
		return err
	}
	defer s.end()
	return s.withTx(ctx, "set_many", "", func(t *txExec) error {
		for k, v := range items {
			if _, err := s.write(ctx, t, "set_many", k, v, nil, SetOptions{TTL: ttl}, false); err != nil {
				return err
			}
		}
		return nil
	})
}

// Clear deletes every entry and value file of this cache, in batches so
// that other processes' writes interleave.
func (s *Store) Clear(ctx context.Context) error {
	if err := s.begin(ctx, "clear", ""); err != nil {
		return err
	}
	defer s.end()
	_, err := s.deleteWhere(ctx, "clear", `1`, nil)
	return err
}

// deleteWhere deletes, 100 rows per statement, the rows matching cond
// (with named args) and returns how many went.
func (s *Store) deleteWhere(ctx context.Context, op, cond string, args []any) (int, error) {
	total := 0
	q := `DELETE FROM cache WHERE rowid IN (SELECT rowid FROM cache WHERE ` + cond + ` LIMIT 100) RETURNING filename`
	for {
		if err := ctx.Err(); err != nil {
			return total, s.opErr(op, "", err)
		}
		var n int
		err := s.batched(ctx, func(ctx context.Context, x execer) error {
			var err error
			n, err = s.deleteRows(ctx, x, q, args)
			return err
		})
		total += n
		if err != nil {
			return total, s.classify(op, "", err)
		}
		if n < 100 {
			return total, nil
		}
	}
}

// deleteRows runs a DELETE … RETURNING filename statement and unlinks the
// files it released.
func (s *Store) deleteRows(ctx context.Context, q execer, query string, args []any) (int, error) {
	var names []string
	n := 0
	// The statement makes all its changes in its first step: a busy
	// failure there changed nothing and may be retried.
	err := s.retry(ctx, func() error {
		names, n = names[:0], 0
		rows, err := q.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var file sql.NullString
			if err := rows.Scan(&file); err != nil {
				return err
			}
			n++
			if file.Valid {
				names = append(names, file.String)
			}
		}
		return rows.Err()
	})
	if err == nil {
		s.afterWrite(q, names...)
	}
	if n > 0 {
		s.committed(q, nil, true, nil)
	}
	return n, err
}

// Lease takes an exclusive lease on key for ttl, across processes. release
// frees it only while this owner still holds it.
func (s *Store) Lease(ctx context.Context, key string, ttl time.Duration) (func(context.Context) error, bool, error) {
	token := []byte("lease:" + rand.Text())
	ok, err := s.Add(ctx, key, token, ttl)
	if err != nil || !ok {
		return func(context.Context) error { return nil }, false, err
	}
	release := func(ctx context.Context) error {
		if err := s.begin(ctx, "release", key); err != nil {
			return err
		}
		defer s.end()
		return s.withTx(ctx, "release", key, func(t *txExec) error {
			v, _, err := s.lookup(ctx, t, "release", key)
			if errors.Is(err, cachekit.ErrMiss) || (err == nil && !bytes.Equal(v, token)) {
				return nil // lapsed, or another owner's now
			}
			if err != nil {
				return err
			}
			_, err = s.deleteKeys(ctx, t, "release", []string{key})
			return err
		})
	}
	return release, true, nil
}

// Pop removes the entry under key and returns its value, or ErrMiss.
func (s *Store) Pop(ctx context.Context, key string) ([]byte, error) {
	if err := s.begin(ctx, "pop", key); err != nil {
		return nil, err
	}
	defer s.end()
	var v []byte
	err := s.withTx(ctx, "pop", key, func(t *txExec) error {
		var err error
		v, err = s.pop(ctx, t, key)
		return err
	})
	return v, err
}

func (s *Store) pop(ctx context.Context, q execer, key string) ([]byte, error) {
	v, _, err := s.lookup(ctx, q, "pop", key)
	if err != nil {
		return nil, err
	}
	if _, err := s.deleteKeys(ctx, q, "pop", []string{key}); err != nil {
		return nil, err
	}
	return v, nil
}
