package qcache

import (
	"context"
	"database/sql"
	"database/sql/driver"
)

// txState is the state of a connection's open transaction. database/sql
// uses a connection from one goroutine at a time, so it needs no lock.
type txState struct {
	noCache bool           // isolation REPEATABLE READ or stricter
	dirty   bool           // the transaction has run a statement that may write
	queued  []Invalidation // applied after Commit, dropped on Rollback
}

// queue marks the transaction as having written and queues inv (when not
// nil) until Commit.
func (s *txState) queue(inv Invalidation) {
	s.dirty = true
	if inv != nil {
		s.queued = append(s.queued, inv)
	}
}

// begin records the transaction t just opened on c.
func (c *conn) begin(t driver.Tx, lvl sql.IsolationLevel) driver.Tx {
	c.tx = &txState{noCache: lvl >= sql.LevelRepeatableRead}
	return &tx{c: c, inner: t, state: c.tx}
}

// tx wraps an inner transaction.
type tx struct {
	c     *conn
	inner driver.Tx
	state *txState
}

func (t *tx) Commit() error {
	err := t.inner.Commit()
	t.end()
	// Applied even when Commit fails: the outcome may be unknown (a lost
	// connection after the server committed), and a spare invalidation is
	// harmless.
	t.c.apply(context.Background(), t.state.queued...)
	return err
}

func (t *tx) Rollback() error {
	err := t.inner.Rollback()
	t.end()
	return err
}

func (t *tx) end() {
	if t.c.tx == t.state {
		t.c.tx = nil
	}
}
