package memo

import (
	"bytes"
	"context"
	"crypto/rand"
	"slices"
	"time"

	"github.com/cachekit/cachekit"
)

// Prefixes of the lease keys (passed through the cache's key function and
// policy, like values' keys).
const (
	leasePrefix   = "memo.lease:"   // computation of a missing value (Options.Lease)
	refreshPrefix = "memo.refresh:" // background refresh election
)

// leaser takes a lease on a store key.
type leaser func(ctx context.Context, key string, ttl time.Duration) (release func(context.Context) error, ok bool, err error)

// leaserOf returns the store's Leaser, or a lease made of Add (with a
// token checked before the delete, which is not atomic), or nil.
func leaserOf(s cachekit.Store) leaser {
	if l, ok := s.(cachekit.Leaser); ok {
		return l.Lease
	}
	a, ok := s.(cachekit.Adder)
	if !ok {
		return nil
	}
	return func(ctx context.Context, key string, ttl time.Duration) (func(context.Context) error, bool, error) {
		noop := func(context.Context) error { return nil }
		token := []byte("memo-lease:" + rand.Text())
		ok, err := a.Add(ctx, key, token, ttl)
		if err != nil || !ok {
			return noop, false, err
		}
		return func(ctx context.Context) error {
			cur, err := s.Get(ctx, key)
			if err != nil || !bytes.Equal(cur, token) {
				return missOK(err)
			}
			_, err = s.Delete(ctx, key)
			return err
		}, true, nil
	}
}

// Polling bounds of a lease waiter without (or besides) notifications.
const (
	minPoll = time.Millisecond
	maxPoll = 50 * time.Millisecond
)

// waker wakes a lease waiter when the store reports a change of the
// value's key or of the lease's key (or of everything).
type waker struct {
	ch   chan struct{} // capacity 1
	stop func()
}

// subscribe returns a waker over the store's Notifier, or nil when it has
// none or the subscription fails (the waiter then polls).
func subscribe(ctx context.Context, s cachekit.Store, keys ...string) *waker {
	n, ok := s.(cachekit.Notifier)
	if !ok {
		return nil
	}
	w := &waker{ch: make(chan struct{}, 1)}
	stop, err := n.Subscribe(ctx, func(changed []string) {
		if changed != nil && !slices.ContainsFunc(changed, func(k string) bool { return slices.Contains(keys, k) }) {
			return
		}
		select {
		case w.ch <- struct{}{}:
		default:
		}
	})
	if err != nil {
		return nil
	}
	w.stop = stop
	return w
}

func (w *waker) close() {
	if w != nil && w.stop != nil {
		w.stop()
	}
}

// wait blocks until a notification, the poll interval d, or ctx's end.
func (w *waker) wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	var ch chan struct{}
	if w != nil {
		ch = w.ch
	}
	select {
	case <-ch:
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// storeKey is key through the cache's key function and policy.
func (k *core[V]) storeKey(key string) string {
	sk, err := k.c.Key(key)
	if err != nil {
		return key
	}
	return sk
}

// leased runs compute under the computation lease of key, so that across
// processes one computes while the others wait for its value. It returns
// the value found in the cache (fresh or negative) instead when another
// process filled key first. over tells compute whether something is stored
// under key.
func (k *core[V]) leased(ctx context.Context, key string, compute func(over bool) (V, error)) (V, error) {
	var zero V
	leaseKey := leasePrefix + key
	var (
		w      *waker
		waited bool
		poll   = minPoll
	)
	defer func() { w.close() }()
	for {
		e, st, _, err := k.lookup(ctx, key)
		if err != nil {
			return zero, err
		}
		switch st {
		case fresh:
			return e.Value, nil
		case negative:
			return zero, k.negativeErr(key)
		}
		over := st != absent
		release, ok, err := k.lease(ctx, k.storeKey(leaseKey), k.opts.LeaseTTL)
		if err != nil {
			// Fail open: compute without the lease rather than not at all.
			k.observe(StoreError, key, err, 0)
			return compute(over)
		}
		if ok {
			return k.holding(ctx, key, release, compute)
		}
		if !waited {
			waited = true
			k.observe(LeaseWait, key, nil, 0)
			// Subscribe before the next read, so that no change between
			// that read and the wait goes unnoticed.
			w = subscribe(ctx, k.c.Store(), k.storeKey(key), k.storeKey(leaseKey))
			continue
		}
		if err := w.wait(ctx, poll); err != nil {
			return zero, err
		}
		poll = min(poll*2, maxPoll)
	}
}

// holding runs compute while holding the computation lease of key, then
// releases it.
func (k *core[V]) holding(ctx context.Context, key string, release func(context.Context) error, compute func(over bool) (V, error)) (V, error) {
	defer func() {
		if err := release(context.WithoutCancel(ctx)); err != nil {
			k.observe(StoreError, key, err, 0)
		}
	}()
	// The holder before us may have stored the value and released the
	// lease between our read and our lease.
	return k.computeUnlessFresh(ctx, key, compute)
}

// computeUnlessFresh returns the fresh value (or negative entry) under key,
// and otherwise runs compute, telling it whether an entry is there to
// overwrite.
func (k *core[V]) computeUnlessFresh(ctx context.Context, key string, compute func(over bool) (V, error)) (V, error) {
	e, st, _, err := k.lookup(ctx, key)
	if err != nil {
		var zero V
		return zero, err
	}
	switch st {
	case fresh:
		return e.Value, nil
	case negative:
		var zero V
		return zero, k.negativeErr(key)
	}
	return compute(st != absent)
}

// elect takes the refresh election of key: across processes one caller
// refreshes a value at a time. Without any lease capability the election
// is within this process only (which the caller ensures).
func (k *core[V]) elect(ctx context.Context, key string) (release func(context.Context) error, ok bool) {
	if k.lease == nil {
		return func(context.Context) error { return nil }, true
	}
	release, ok, err := k.lease(ctx, k.storeKey(refreshPrefix+key), k.opts.LeaseTTL)
	if err != nil {
		k.observe(StoreError, key, err, 0)
		return nil, false
	}
	return release, ok
}
