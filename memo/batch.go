package memo

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"

	"github.com/cachekit/cachekit"
)

// Batch is a cached batch function, such as one that loads many records
// by id in one query: [Batch.Call] caches each record under its own key
// (the same key a [Func] of the same name and key type would use), returns
// the cached ones and computes only the others, in one call of the
// function. Overlapping calls are merged: a key that another call of this
// process is already loading is waited for, not loaded twice. A Batch is
// safe for concurrent use.
//
// Records the function leaves out of its map do not exist: they are left
// out of the result, and cached as not found when Options.NegativeTTL is
// positive. Stale records (inside Options.StaleWhileRevalidate or
// Options.StaleIfError) are returned at once and refreshed in the
// background in one batch; a failed refresh keeps them until their windows
// end. Options.Lease and Options.XFetch are not supported.
type Batch[K comparable, V any] struct {
	*core[V]
	fn  func(context.Context, []K) (map[K]V, error)
	enc *keyEncoder

	mu      sync.Mutex               // protects pending
	pending map[flightKey]*record[V] // records being loaded, by key and generation
}

// record is the outcome of loading one key, shared by every call waiting
// for it.
type record[V any] struct {
	done  chan struct{} // closed when v, found and err are set
	v     V
	found bool
	err   error
}

// item is one distinct key of a call.
type item[K comparable] struct {
	k   K
	key string
}

// NewBatch returns fn cached record by record in c under name. Names
// follow [New]; K must be encodable as [Func.Key] describes. fn receives
// the keys to load (each once) and returns the records it found.
func NewBatch[K comparable, V any](c *cachekit.Cache[V], name string, fn func(context.Context, []K) (map[K]V, error), opts Options) (*Batch[K, V], error) {
	if fn == nil {
		return nil, errors.New("memo: NewBatch: nil function")
	}
	if opts.Lease || opts.XFetch {
		return nil, errors.New("memo: NewBatch: Options.Lease and Options.XFetch are not supported")
	}
	if name == "" {
		var err error
		if name, err = funcName(fn); err != nil {
			return nil, err
		}
	}
	enc, err := newKeyEncoder(reflect.TypeFor[K]())
	if err != nil {
		return nil, fmt.Errorf("memo: %s: %w", name, err)
	}
	k, err := newCore(c, name, opts)
	if err != nil {
		return nil, err
	}
	return &Batch[K, V]{core: k, fn: fn, enc: enc, pending: map[flightKey]*record[V]{}}, nil
}

// Key returns the cache key of the record k, as [Func.Key] does.
func (b *Batch[K, V]) Key(k K) (string, error) {
	return makeKey(b.name, b.head, b.enc, k)
}

// Call returns the records of keys: cached ones from the cache, the others
// from one call of the function (shared with overlapping calls). Absent
// records are left out of the map. On an error the map holds the records
// that were available and the error says why the others are missing (a
// function's error, joined when several loads failed). A panic in the
// function becomes a [*cachekit.PanicError].
//
// The function runs on a context derived from the first caller's, with its
// cancellation removed and Options.LoadTimeout added: a caller whose ctx
// ends gets ctx.Err() while the load goes on for the others.
func (b *Batch[K, V]) Call(ctx context.Context, keys []K) (map[K]V, error) {
	if err := b.check(ctx); err != nil {
		return nil, err
	}
	items := make([]item[K], 0, len(keys))
	seen := make(map[K]struct{}, len(keys))
	for _, k := range keys {
		if _, dup := seen[k]; dup {
			continue
		}
		seen[k] = struct{}{}
		key, err := b.Key(k)
		if err != nil {
			return nil, err
		}
		items = append(items, item[K]{k, key})
	}
	strs := make([]string, len(items))
	for i, it := range items {
		strs[i] = it.key
	}
	res, err := b.lookupMany(ctx, strs)
	if err != nil {
		return nil, err
	}
	out := make(map[K]V, len(items))
	var misses, stale []item[K]
	for i, r := range res {
		it := items[i]
		switch r.st {
		case fresh:
			b.observe(Hit, it.key, nil, 0)
			out[it.k] = r.e.Value
		case negative:
			b.observe(NegativeHit, it.key, nil, 0)
		case staleSWR, staleError:
			b.observe(StaleServed, it.key, nil, 0)
			out[it.k] = r.e.Value
			stale = append(stale, it)
		default:
			b.observe(Miss, it.key, nil, 0)
			misses = append(misses, it)
		}
	}
	if len(stale) > 0 {
		b.start(ctx, stale, true)
	}
	if len(misses) == 0 {
		return out, nil
	}
	if err := b.enter(); err != nil {
		return out, err
	}
	defer b.leave()
	recs := b.start(ctx, misses, false)
	var errs []error
	for i, r := range recs {
		select {
		case <-r.done:
		case <-ctx.Done():
			return out, ctx.Err()
		}
		switch {
		case r.err != nil:
			if !containsErr(errs, r.err) {
				errs = append(errs, r.err)
			}
		case r.found:
			out[misses[i].k] = r.v
		}
	}
	return out, errors.Join(errs...)
}

func containsErr(errs []error, err error) bool {
	for _, e := range errs {
		if e == err {
			return true
		}
	}
	return false
}

// start returns the records of items: those another call of this process
// is loading, and new ones loaded in one background call of the function.
// A refresh (of stale items) loads only the items nobody loads yet.
func (b *Batch[K, V]) start(ctx context.Context, items []item[K], refresh bool) []*record[V] {
	gen := b.flightGen()
	recs := make([]*record[V], len(items))
	var mine []item[K]
	var mineRecs []*record[V]
	var joined []string
	b.mu.Lock()
	for i, it := range items {
		fk := flightKey{it.key, gen}
		if r, ok := b.pending[fk]; ok {
			recs[i] = r
			joined = append(joined, it.key)
			continue
		}
		r := &record[V]{done: make(chan struct{})}
		b.pending[fk] = r
		recs[i] = r
		mine = append(mine, it)
		mineRecs = append(mineRecs, r)
	}
	b.mu.Unlock()
	if !refresh {
		for _, key := range joined {
			b.observe(Coalesced, key, nil, 0)
		}
	}
	if len(mine) == 0 {
		return recs
	}
	bctx := context.WithoutCancel(ctx)
	if !b.startBackground("", func() { b.load(bctx, gen, mine, mineRecs, refresh) }) {
		b.finish(gen, mine, mineRecs, fmt.Errorf("memo: %s: %w", b.name, cachekit.ErrClosed))
	}
	return recs
}

// finish publishes the records of items (setting err on each first, if
// not nil) and forgets them.
func (b *Batch[K, V]) finish(gen uint64, items []item[K], recs []*record[V], err error) {
	b.mu.Lock()
	for i, it := range items {
		if fk := (flightKey{it.key, gen}); b.pending[fk] == recs[i] {
			delete(b.pending, fk)
		}
	}
	b.mu.Unlock()
	for _, r := range recs {
		if err != nil {
			r.err = err
		}
		close(r.done)
	}
}

// load loads items in one call of the function and stores each record.
func (b *Batch[K, V]) load(ctx context.Context, gen uint64, items []item[K], recs []*record[V], refresh bool) {
	ctx, cancel := context.WithTimeout(ctx, b.opts.LoadTimeout)
	defer cancel()
	var failed error
	defer func() { b.finish(gen, items, recs, failed) }()

	// Check again: a load that just ended, or another process, may have
	// stored some of them since the caller's read.
	strs := make([]string, len(items))
	for i, it := range items {
		strs[i] = it.key
	}
	res, err := b.lookupMany(ctx, strs)
	if err != nil {
		failed = err
		return
	}
	var todo []int
	over := make([]bool, len(items))
	for i, r := range res {
		switch r.st {
		case fresh:
			recs[i].v, recs[i].found = r.e.Value, true
		case negative:
		default:
			todo = append(todo, i)
			over[i] = r.st != absent
		}
	}
	if len(todo) == 0 {
		return
	}
	eps := make([]uint64, len(items))
	ks := make([]K, len(todo))
	for j, i := range todo {
		eps[i] = b.epochOf(items[i].key).Load()
		ks[j] = items[i].k
	}
	gens := b.readGens(ctx, items[todo[0]].key) // before the computation
	if refresh {
		for _, i := range todo {
			b.observe(RefreshStart, items[i].key, nil, 0)
		}
	}
	start := b.opts.Clock.Now()
	m, err := protect(func() (map[K]V, error) { return b.fn(ctx, ks) })
	d := max(b.opts.Clock.Now().Sub(start), 0)
	if err != nil {
		failed = err
		if refresh {
			for _, i := range todo {
				b.observe(RefreshFail, items[i].key, err, 0)
			}
		}
		return
	}
	b.parallel(len(todo), func(j int) {
		i := todo[j]
		r := computed[V]{duration: d}
		if v, ok := m[items[i].k]; ok {
			recs[i].v, recs[i].found = v, true
			r.v = v
		} else {
			r.err = b.opts.NotFound
		}
		b.settle(ctx, items[i].key, r, start, eps[i], gens, over[i])
		if refresh {
			b.observe(RefreshOK, items[i].key, nil, d)
		}
	})
}

// Peek returns the cached record k without loading anything, as
// [Func.Peek] does.
func (b *Batch[K, V]) Peek(ctx context.Context, k K) (V, error) {
	key, err := b.Key(k)
	if err != nil {
		var zero V
		return zero, err
	}
	return b.peek(ctx, key)
}

// Set stores v as the record k, as if just loaded.
func (b *Batch[K, V]) Set(ctx context.Context, k K, v V) error {
	key, err := b.Key(k)
	if err != nil {
		return err
	}
	return b.set(ctx, key, v)
}

// Invalidate removes the records of keys; loads of this process in flight
// for them do not store their results (see [Func.Invalidate]).
func (b *Batch[K, V]) Invalidate(ctx context.Context, keys ...K) error {
	if err := b.check(ctx); err != nil {
		return err
	}
	strs := make([]string, len(keys))
	gen := b.flightGen()
	b.mu.Lock()
	for i, k := range keys {
		key, err := b.Key(k)
		if err != nil {
			b.mu.Unlock()
			return err
		}
		strs[i] = key
		delete(b.pending, flightKey{key, gen}) // later calls start a new load
	}
	b.mu.Unlock()
	return b.invalidateKeys(ctx, strs...)
}

// InvalidateAll makes every record read as a miss, with one store
// operation (see [Func.InvalidateAll]).
func (b *Batch[K, V]) InvalidateAll(ctx context.Context) error {
	if err := b.check(ctx); err != nil {
		return err
	}
	return b.invalidateAll(ctx)
}

// Close waits for the loads and refreshes in flight (each bounded by
// Options.LoadTimeout); later calls fail with an error wrapping
// [cachekit.ErrClosed]. It does not close the cache.
func (b *Batch[K, V]) Close() error {
	b.close()
	return nil
}
