package disk

import (
	"context"
	"database/sql"
	"slices"
	"sync"
	"sync/atomic"
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
	fn       func(ctx context.Context, q execer) error // applies the write through q
	err      error
	done     chan struct{} // closed when the write is applied (or failed)
	promote  chan struct{} // closed when this caller must lead the next batch
	promoted bool          // set under batcher.mu before promote is closed
}

// batched applies fn through the Store's writer, coalescing it with
// concurrent writes. fn receives s.wdb and the caller's ctx when it runs
// alone, and a transaction and a context no caller can cancel when it runs
// with others (one caller's cancel must not roll back the others' writes);
// it must record post-commit work through afterWrite and committed, which
// handle both. A caller whose ctx ends while its write is still queued
// withdraws it and gets ctx.Err(); once a batch has taken the write, the
// caller waits for it.
func (s *Store) batched(ctx context.Context, fn func(ctx context.Context, q execer) error) error {
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
		case <-ctx.Done():
			b.mu.Lock()
			if i := slices.Index(b.queue, p); i >= 0 && !p.promoted {
				b.queue = slices.Delete(b.queue, i, i+1)
				b.mu.Unlock()
				return ctx.Err()
			}
			b.mu.Unlock()
			select { // taken by a batch, or made the leader
			case <-p.done:
				return p.err
			case <-p.promote:
			}
		}
	} else {
		b.leading = true
		b.mu.Unlock()
	}
	s.lead(ctx)
	return p.err
}

// lead applies the queue, then hands the lead on or gives it up. ctx is the
// leader's own, used when its write runs alone.
func (s *Store) lead(ctx context.Context) {
	b := &s.batch
	b.mu.Lock()
	batch := b.queue
	b.queue = nil
	b.mu.Unlock()
	s.apply(ctx, batch)
	b.commits.Add(1)
	b.writes.Add(uint64(len(batch)))
	b.mu.Lock()
	if len(b.queue) > 0 {
		next := b.queue[0]
		next.promoted = true
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
func (s *Store) apply(leaderCtx context.Context, batch []*pending) {
	defer func() {
		for _, p := range batch {
			close(p.done)
		}
	}()
	if len(batch) == 1 { // the leader's own write (it is always in its batch)
		batch[0].err = batch[0].fn(leaderCtx, s.wdb)
		return
	}
	// The transaction must not end with any one caller's context.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(leaderCtx), s.opts.Timeout)
	defer cancel()
	var tx *sql.Tx
	err := s.retry(ctx, func() error {
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
		p.err = p.fn(ctx, t)
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
		s.publish(t.keys, t.all, t.sets)
	}
}
