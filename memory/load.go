package memory

import (
	"context"
	"errors"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/internal/flight"
)

// GetOrLoad returns the value under key, calling load to produce it on a
// miss and storing the result with the default TTL. Concurrent calls for
// the same key share one load (single flight).
//
// The load runs on a context that no caller can cancel
// (context.WithoutCancel of the first caller's ctx), bounded by
// Options.LoadTimeout: a caller whose ctx ends gets ctx.Err() at once and
// the others keep waiting. A load error is returned to every waiter and
// nothing is cached. A panicking load gives every waiter a
// *[cachekit.PanicError]; the process survives.
//
// A write to key made while its load runs (Set, Add, Delete, Clear, a
// negative-TTL write) wins: the load's result is still returned to the
// callers that were waiting for it, but it is not stored, and callers that
// arrive after a Delete or Clear start a fresh load. On a miss, a ctx
// already done gives ctx.Err() without starting a load; after Close,
// GetOrLoad returns [cachekit.ErrClosed].
func (c *Cache[K, V]) GetOrLoad(ctx context.Context, key K, load func(context.Context, K) (V, error)) (V, error) {
	if n := c.c.get(key); n != nil {
		return c.c.valueOf(n), nil
	}
	return c.c.load(ctx, key, load)
}

func (c *core[K, V]) load(ctx context.Context, key K, load func(context.Context, K) (V, error)) (V, error) {
	var zero V
	if err := ctx.Err(); err != nil {
		return zero, err // do not start a load nobody waits for
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return zero, cachekit.ErrClosed
	}
	c.callers.Add(1) // under mu with !closed: Close's Wait comes after
	c.mu.Unlock()
	defer c.callers.Done()

	v, err, _ := c.group.Do(ctx, key, c.loadTimeout, func(ctx context.Context) (V, error) {
		return c.runLoad(ctx, key, load)
	})
	var pe *flight.PanicError
	if errors.As(err, &pe) {
		return zero, &cachekit.PanicError{Value: pe.Value, Stack: pe.Stack}
	}
	return v, err
}

// runLoad is the body of one shared load.
//
// Stale-load protection: before calling load, runLoad takes a ticket for
// key (a sequence number in c.loads) under c.mu. Every write to key
// (setLocked, delete, update, clear) calls invalidateLoad, which drops the
// ticket. After load returns, runLoad stores the value only if its ticket
// is still the current one. Since the ticket is taken before load reads
// its source, any write that might be newer than the loaded value comes
// after the ticket and cancels the store:
//
//	loader: ticket=7 ─ load() reads v1 ──────────────── store? ticket gone → no
//	writer:                    Set(v2) / Delete ─ drops ticket 7
func (c *core[K, V]) runLoad(ctx context.Context, key K, load func(context.Context, K) (V, error)) (v V, err error) {
	c.mu.Lock()
	if _, n := c.index.find(c.hashOf(key), key); n != nil && c.live(n) {
		// Filled between the caller's miss and this load starting.
		v = c.valueOf(n)
		c.mu.Unlock()
		return v, nil
	}
	if c.loads == nil {
		c.loads = make(map[K]uint64)
	}
	c.loadSeq++
	ticket := c.loadSeq
	c.loads[key] = ticket
	c.loading.Store(int32(len(c.loads)))
	c.mu.Unlock()
	if c.stats {
		c.loadCount.Add(1)
	}

	finished := false
	defer func() {
		if finished && err == nil {
			return // the success path below handled the ticket
		}
		// Error, or panic on its way to flight's recover: drop the ticket.
		c.mu.Lock()
		if c.loads[key] == ticket {
			delete(c.loads, key)
			c.loading.Store(int32(len(c.loads)))
		}
		c.mu.Unlock()
		if c.stats {
			c.loadErrors.Add(1)
		}
	}()

	v, err = load(ctx, key)
	finished = true
	if err != nil {
		return v, err
	}
	var ev []evicted[K, V]
	c.mu.Lock()
	if c.loads[key] == ticket {
		delete(c.loads, key)
		c.loading.Store(int32(len(c.loads)))
		c.setLocked(key, c.hashOf(key), v, c.deadline(c.ttl), nil, false, &ev)
	}
	c.mu.Unlock()
	c.notify(ev)
	return v, nil
}

// invalidateLoad makes a load of key in progress drop its result, and makes
// later callers start a new load instead of joining it. c.mu must be held.
func (c *core[K, V]) invalidateLoad(key K) {
	if len(c.loads) == 0 {
		return
	}
	if _, ok := c.loads[key]; ok {
		delete(c.loads, key)
		c.loading.Store(int32(len(c.loads)))
		c.group.Forget(key)
	}
}
