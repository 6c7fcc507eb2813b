package disk

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"

	"github.com/cachekit/cachekit/internal/sqlitedb"
)

// Group commit. Writes of one Store that arrive while another is running
// are queued; the caller running (the leader) then applies the whole queue
// in one transaction, so that N concurrent writes cost one commit instead
// of N. A lone write runs as a single autocommit statement, as before.
// After its batch the leader hands the lead to the first queued caller and
// returns, so no caller works for others for long.

// batcher is a Store's queue of pending writes.
type batcher struct {
	mu      sync.Mutex // protects queue and leading
	queue   []*pending
	leading bool // a caller is applying a batch

	commits, writes atomic.Uint64 // batches applied and writes in them (for tests)
}

// pending is one queued write.
type pending struct {
	fn      func(q execer) error // applies the write through q
	err     error
	done    chan struct{} // closed when the write is applied (or failed)
	promote chan struct{} // closed when this caller must lead the next batch
}

// batched applies fn through the Store's writer, coalescing it with
// concurrent writes. fn receives s.wdb when it runs alone and a
// transaction when it runs with others; it must record post-commit work
// through afterWrite and committed, which handle both.
func (s *Store) batched(fn func(q execer) error) error {
	p := &pending{fn: fn, done: make(chan struct{}), promote: make(chan struct{})}
	b := &s.batch
	b.mu.Lock()
	b.queue = append(b.queue, p)
	if b.leading {
		b.mu.Unlock()
		select {
		case <-p.done:
			return p.err
		case <-p.promote:
		}
	} else {
		b.leading = true
		b.mu.Unlock()
	}
	s.lead()
	return p.err
}

// lead applies the queue, then hands the lead on or gives it up.
func (s *Store) lead() {
	b := &s.batch
	b.mu.Lock()
	batch := b.queue
	b.queue = nil
	b.mu.Unlock()
	s.apply(batch)
	b.commits.Add(1)
	b.writes.Add(uint64(len(batch)))
	b.mu.Lock()
	if len(b.queue) > 0 {
		next := b.queue[0]
		b.mu.Unlock()
		close(next.promote)
		return
	}
	b.leading = false
	b.mu.Unlock()
}

// apply runs a batch: alone as an autocommit statement, together in one
// transaction. A write that fails alone fails only itself; a failed commit
// fails every write of the batch.
func (s *Store) apply(batch []*pending) {
	defer func() {
		for _, p := range batch {
			close(p.done)
		}
	}()
	if len(batch) == 1 {
		batch[0].err = batch[0].fn(s.wdb)
		return
	}
	// The transaction must not end with any one caller's context.
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
	defer cancel()
	var tx *sql.Tx
	err := sqlitedb.Retry(ctx, func() error {
		var err error
		tx, err = s.wdb.BeginTx(ctx, nil)
		return err
	})
	if err != nil {
		err = s.classify("set", "", err)
		for _, p := range batch {
			p.err = err
		}
		return
	}
	t := &txExec{Tx: tx}
	for _, p := range batch {
		p.err = p.fn(t)
	}
	if err := tx.Commit(); err != nil {
		s.files.remove(t.created...)
		err = s.classify("set", "", err)
		for _, p := range batch {
			if p.err == nil {
				p.err = err
			}
		}
		return
	}
	s.files.remove(t.unlink...)
	if len(t.keys) > 0 || t.all {
		s.committed(s.wdb, t.keys, t.all, nil)
	}
}
