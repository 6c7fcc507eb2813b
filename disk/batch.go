package disk

import (
	"context"
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
//
// Every change to the database goes through this queue, transactions too
// (as exclusive entries, run alone): the leader commits and then publishes
// the change to the L1s before the next change starts, so this process's L1
// sees its changes in commit order.

// batcher is a Store's queue of pending writes.
type batcher struct {
	mu      sync.Mutex // protects queue and leading
	queue   []*pending
	leading bool // a caller is applying a batch

	commits, writes atomic.Uint64 // batches applied and writes in them (for tests)
}

// pending is one queued write.
type pending struct {
	ctx       context.Context
	fn        func(ctx context.Context, q execer) error // applies the write through q
	exclusive bool                                      // runs alone, through s.wdb: a transaction of its own
	err       error
	done      chan struct{} // closed when the write is applied (or failed)
	promote   chan struct{} // closed when this caller must lead the next batch
	promoted  bool          // set under batcher.mu before promote is closed
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
	return s.enqueue(&pending{ctx: ctx, fn: fn})
}

// exclusive runs fn in its turn among the Store's writes, alone: fn opens
// its own transaction on s.wdb and publishes its changes before the next
// write starts.
func (s *Store) exclusive(ctx context.Context, fn func(ctx context.Context) error) error {
	return s.enqueue(&pending{ctx: ctx, exclusive: true, fn: func(ctx context.Context, _ execer) error { return fn(ctx) }})
}

func (s *Store) enqueue(p *pending) error {
	ctx := p.ctx
	p.done, p.promote = make(chan struct{}), make(chan struct{})
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
	s.lead()
	return p.err
}

// lead applies the queue in order (runs of ordinary writes together,
// exclusive entries alone), then hands the lead on or gives it up.
func (s *Store) lead() {
	b := &s.batch
	b.mu.Lock()
	queue := b.queue
	b.queue = nil
	b.mu.Unlock()
	for len(queue) > 0 {
		n := 1
		if !queue[0].exclusive {
			for n < len(queue) && !queue[n].exclusive {
				n++
			}
		}
		s.apply(queue[:n])
		b.commits.Add(1)
		b.writes.Add(uint64(n))
		queue = queue[n:]
	}
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
func (s *Store) apply(batch []*pending) {
	defer func() {
		for _, p := range batch {
			close(p.done)
		}
	}()
	if len(batch) == 1 {
		batch[0].err = batch[0].fn(batch[0].ctx, s.wdb)
		return
	}
	// The transaction must not end with any one caller's context.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(batch[0].ctx), s.opts.Timeout)
	defer cancel()
	// Each write's own failure is its own (the transaction goes on without
	// it); a failure to begin or commit is every write's.
	err := s.runTx(ctx, "write", "", func(t *txExec) error {
		for _, p := range batch {
			p.err = p.fn(ctx, t)
		}
		return nil
	})
	if err != nil {
		for _, p := range batch {
			if p.err == nil {
				p.err = err
			}
		}
	}
}
