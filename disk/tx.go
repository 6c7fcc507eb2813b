package disk

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/cachekit/cachekit"
)

// txExec is a write transaction in progress (BEGIN IMMEDIATE). Value files
// that its statements stopped referencing are unlinked only after commit;
// files it wrote are removed if it rolls back.
type txExec struct {
	*sql.Tx
	unlink  []string         // files to remove after commit
	created []string         // files to remove after rollback
	keys    []string         // keys changed, for the L1s at commit
	all     bool             // any number of entries changed
	sets    map[string]l1val // new values this process's L1 may keep
}

// withTx runs fn in one write transaction, atomic across processes, in its
// turn among the Store's writes.
func (s *Store) withTx(ctx context.Context, op, key string, fn func(t *txExec) error) error {
	return s.exclusive(ctx, func(ctx context.Context) error { return s.runTx(ctx, op, key, fn) })
}

func (s *Store) runTx(ctx context.Context, op, key string, fn func(t *txExec) error) error {
	var tx *sql.Tx
	err := s.retry(ctx, func() error {
		var err error
		tx, err = s.wdb.BeginTx(ctx, nil)
		return err
	})
	if err != nil {
		return s.classify(op, key, err)
	}
	t := &txExec{Tx: tx}
	if err := fn(t); err != nil {
		tx.Rollback()
		s.files.remove(t.created...)
		var oe *cachekit.OpError
		if errors.As(err, &oe) { // already described by an inner call
			return err
		}
		return s.classify(op, key, err)
	}
	if err := tx.Commit(); err != nil {
		s.files.remove(t.created...)
		return s.classify(op, key, err)
	}
	s.files.remove(t.unlink...)
	if len(t.keys) > 0 || t.all {
		s.publish(t.keys, t.all, t.sets)
	}
	return nil
}

// Tx is the view of the store inside [Store.Transact]: its operations are
// applied together, atomically with respect to every other connection and
// process, when the function returns nil, and not at all otherwise.
type Tx struct {
	s   *Store
	t   *txExec
	ctx context.Context
}

// Transact runs fn inside one write transaction. While fn runs, other
// writers (in any process) wait; readers see the state before the
// transaction until it commits. fn must use only tx, not the Store.
func (s *Store) Transact(ctx context.Context, fn func(tx *Tx) error) error {
	if err := s.begin(ctx, "transact", ""); err != nil {
		return err
	}
	defer s.end()
	return s.withTx(ctx, "transact", "", func(t *txExec) error {
		return fn(&Tx{s: s, t: t, ctx: ctx})
	})
}

// Get is [Store.Get] inside the transaction.
func (tx *Tx) Get(key string) ([]byte, error) {
	v, _, err := tx.s.lookup(tx.ctx, tx.t, "get", key)
	return v, err
}

// Set is [Store.Set] inside the transaction.
func (tx *Tx) Set(key string, val []byte, ttl time.Duration) error {
	return tx.SetWith(key, val, SetOptions{TTL: ttl})
}

// SetWith is [Store.SetWith] inside the transaction.
func (tx *Tx) SetWith(key string, val []byte, o SetOptions) error {
	_, err := tx.s.write(tx.ctx, tx.t, "set", key, val, nil, o, false)
	return err
}

// Add is [Store.Add] inside the transaction.
func (tx *Tx) Add(key string, val []byte, ttl time.Duration) (bool, error) {
	return tx.s.write(tx.ctx, tx.t, "add", key, val, nil, SetOptions{TTL: ttl}, true)
}

// Delete is [Store.Delete] inside the transaction.
func (tx *Tx) Delete(keys ...string) (int, error) {
	return tx.s.deleteKeys(tx.ctx, tx.t, "delete", keys)
}

// IncrBy is [Store.IncrBy] inside the transaction.
func (tx *Tx) IncrBy(key string, delta int64) (int64, error) {
	return tx.s.incrBy(tx.ctx, tx.t, key, delta)
}

// Pop is [Store.Pop] inside the transaction.
func (tx *Tx) Pop(key string) ([]byte, error) {
	return tx.s.pop(tx.ctx, tx.t, key)
}
