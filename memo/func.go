package memo

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"unsafe"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/internal/flight"
)

// Func is a cached function of one argument (use a struct for several):
// [Func.Call] returns the cached result for the argument, computing and
// storing it on a miss. A Func is safe for concurrent use; its methods take
// the context of the call first.
//
// A value is stored under the key [Func.Key] gives, in an envelope
// ([cachekit.Entry]) that records when it turns stale, how long it took to
// compute, and the generations of the function and its groups it was
// computed under.
type Func[A, V any] struct {
	*core[V]
	fn      func(context.Context, A) (V, error)
	enc     *keyEncoder
	flights flight.Group[flightKey, V]
}

// flightKey names one in-process computation: the key, and the
// invalidation generation of this process when it started.
type flightKey struct {
	key string
	gen uint64
}

// New returns fn cached in c under name. An empty name is derived from fn
// with runtime.FuncForPC ("path/pkg.Func"); a derived name that is not
// stable across builds (closures, function literals, generic
// instantiations) gives an error wrapping [ErrUnstableName]. An argument
// type A that cannot be encoded in a key (funcs, channels, unsafe
// pointers, anywhere inside A) gives an error wrapping
// [ErrUnsupportedType]. The Func does not own c: closing the Func leaves
// c open.
func New[A, V any](c *cachekit.Cache[V], name string, fn func(context.Context, A) (V, error), opts Options) (*Func[A, V], error) {
	if fn == nil {
		return nil, errors.New("memo: New: nil function")
	}
	if name == "" {
		var err error
		if name, err = funcName(fn); err != nil {
			return nil, err
		}
	}
	enc, err := newKeyEncoder(reflect.TypeFor[A]())
	if err != nil {
		return nil, fmt.Errorf("memo: %s: %w", name, err)
	}
	k, err := newCore(c, name, opts)
	if err != nil {
		return nil, err
	}
	return &Func[A, V]{core: k, fn: fn, enc: enc}, nil
}

// Must is like [New] but panics on an error. For package-level functions.
func Must[A, V any](c *cachekit.Cache[V], name string, fn func(context.Context, A) (V, error), opts Options) *Func[A, V] {
	f, err := New(c, name, fn, opts)
	if err != nil {
		panic(err)
	}
	return f
}

// Key returns the cache key of a: the function's name, "@v" and
// Options.Version if set, then the argument's canonical encoding in
// parentheses, as in `users.Get(42)` or `search.Run(Query="go",Page=2)`.
// The cache adds its prefix and the project version, and its key policy
// may shorten the result (cachekit.MemcachedKey keeps a readable head and a
// hash): [cachekit.Cache.Key] of this key is the store's key.
//
// The encoding: integers and floats in decimal (the shortest form that
// reads back exactly), strings and []byte quoted (Go syntax), byte arrays
// in hex, times in UTC (RFC 3339 with nanoseconds), durations as
// time.Duration.String, slices and arrays as [a,b], maps as {k:v} sorted by
// key, structs as {Field=value} in declaration order (the argument itself
// without braces; the tag `cache:"-"` skips a field, `cache:"name"` renames
// it), pointers followed, nil as nil, interfaces as Type(value). A value
// whose type has a CacheKey method ([Keyer]) is encoded as its quoted
// CacheKey. Distinct argument values give distinct keys, except that all
// NaNs are alike and times are compared as instants.
func (f *Func[A, V]) Key(a A) (string, error) {
	return makeKey(f.name, f.head, f.enc, a)
}

// makeKey returns head, the encoding of a, and ")".
func makeKey[A any](name, head string, enc *keyEncoder, a A) (string, error) {
	if enc.fast != fastNone {
		return fastKey(head, enc.fast, a), nil
	}
	return slowKey(name, head, enc, a)
}

// slowKey is makeKey through reflection. It is a function of its own so
// that a escapes (to the heap) only on this path.
func slowKey[A any](name, head string, enc *keyEncoder, a A) (string, error) {
	b, err := enc.encode(append(make([]byte, 0, 64), head...), &a)
	if err != nil {
		return "", fmt.Errorf("memo: %s: key: %w", name, err)
	}
	return string(append(b, ')')), nil
}

// fastKey is makeKey for scalar arguments: nothing escapes but the result.
func fastKey[A any](head string, k fastKind, a A) string {
	var buf [96]byte
	b := append(buf[:0], head...)
	b = appendFast(b, k, unsafe.Pointer(&a))
	return string(append(b, ')'))
}

// encode appends the encoding of *a (of the encoder's type) to b.
func (e *keyEncoder) encode(b []byte, a any) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", errKeyPanic, r)
		}
	}()
	return e.enc(b, reflect.ValueOf(a).Elem(), 0)
}

// Call returns the result of the function for a, from the cache when it
// holds a usable value, else by computing it (once per key at a time in
// this process, and across processes with Options.Lease) and storing it.
//
// A value past its TTL is returned at once inside the
// stale-while-revalidate window while one caller recomputes it in the
// background; inside the stale-if-error window the call recomputes, and
// returns the stale value if that fails. A cached not-found answer returns
// an error wrapping Options.NotFound. A panic in the function becomes a
// [*cachekit.PanicError] for every caller waiting on that computation.
//
// WARNING: a shared computation runs on a context derived from the first
// caller's with its cancellation removed and Options.LoadTimeout added, so
// that one caller giving up does not fail the others: a caller whose ctx
// ends gets ctx.Err() while the computation goes on.
func (f *Func[A, V]) Call(ctx context.Context, a A) (V, error) {
	var zero V
	key, err := f.Key(a)
	if err != nil {
		return zero, err
	}
	if err := f.check(ctx); err != nil {
		return zero, err
	}
	e, st, now, err := f.lookup(ctx, key)
	if err != nil {
		return zero, err
	}
	switch st {
	case fresh:
		f.observe(Hit, key, nil, 0)
		if f.opts.XFetch && f.xfetch(e, now) {
			f.refreshAsync(ctx, key, a)
		}
		return e.Value, nil
	case negative:
		f.observe(NegativeHit, key, nil, 0)
		return zero, f.negativeErr(key)
	case staleSWR:
		f.observe(StaleServed, key, nil, 0)
		f.refreshAsync(ctx, key, a)
		return e.Value, nil
	case staleError:
		v, err := f.load(ctx, key, a, true)
		if err == nil || f.isNotFound(err) || ctx.Err() != nil {
			return v, err
		}
		f.observe(StaleServed, key, err, 0)
		return e.Value, nil
	}
	f.observe(Miss, key, nil, 0)
	return f.load(ctx, key, a, false)
}

// load computes key, coalesced with the other callers of this process
// unless Options.NoCoalesce. refresh says a usable value is being replaced.
func (f *Func[A, V]) load(ctx context.Context, key string, a A, refresh bool) (V, error) {
	if err := f.enter(); err != nil {
		var zero V
		return zero, err
	}
	defer f.leave()
	run := func(lctx context.Context) (V, error) { return f.fill(lctx, key, a, refresh) }
	if f.opts.NoCoalesce {
		lctx, cancel := context.WithTimeout(ctx, f.opts.LoadTimeout)
		defer cancel()
		return protect(func() (V, error) { return run(lctx) })
	}
	v, err, shared := f.flights.Do(ctx, flightKey{key, f.flightGen()}, f.opts.LoadTimeout, run)
	if shared {
		f.observe(Coalesced, key, nil, 0)
	}
	var pe *flight.PanicError
	if errors.As(err, &pe) {
		err = &cachekit.PanicError{Value: pe.Value, Stack: pe.Stack}
	}
	return v, err
}

// fill is one computation of key: it checks the cache again (a
// computation that just ended, or another process, may have stored the
// value since the caller's read), then computes, under the lease with
// Options.Lease.
func (f *Func[A, V]) fill(ctx context.Context, key string, a A, refresh bool) (V, error) {
	compute := func(over bool) (V, error) { return f.compute(ctx, key, a, over, refresh) }
	if f.opts.Lease {
		return f.leased(ctx, key, compute)
	}
	return f.computeUnlessFresh(ctx, key, compute)
}

// compute runs the function for a and stores the outcome under key (over
// an old entry when over is set).
func (f *Func[A, V]) compute(ctx context.Context, key string, a A, over, refresh bool) (V, error) {
	ep := f.epochOf(key).Load()
	gens := f.readGens(ctx, key) // before the computation: see stamps.go
	if refresh {
		f.observe(RefreshStart, key, nil, 0)
	}
	start := f.opts.Clock.Now()
	v, err := protect(func() (V, error) { return f.fn(ctx, a) })
	r := computed[V]{v: v, err: err, duration: max(f.opts.Clock.Now().Sub(start), 0)}
	f.settle(ctx, key, r, start, ep, gens, over)
	if refresh {
		if err != nil && !f.isNotFound(err) {
			f.observe(RefreshFail, key, err, 0)
		} else {
			f.observe(RefreshOK, key, nil, r.duration)
		}
	}
	return v, err
}

// refreshAsync recomputes key in the background, if no refresh of it runs
// in this process and this caller wins the election across processes. A
// failed refresh keeps the election until it expires (Options.LeaseTTL),
// which spaces out the retries of a failing function.
func (f *Func[A, V]) refreshAsync(ctx context.Context, key string, a A) {
	bctx := context.WithoutCancel(ctx)
	f.startBackground(key, func() {
		ctx, cancel := context.WithTimeout(bctx, f.opts.LoadTimeout)
		defer cancel()
		release, ok := f.elect(ctx, key)
		if !ok {
			return
		}
		if _, err := f.compute(ctx, key, a, true, true); err != nil && !f.isNotFound(err) {
			return
		}
		if err := release(ctx); err != nil {
			f.observe(StoreError, key, err, 0)
		}
	})
}

// Refresh recomputes the value for a now, whatever the cache holds, stores
// it and returns it (django-cache-utils' force_recalc). It does not join a
// computation already in flight (which may predate the caller's reason to
// refresh), and computations that started before it do not overwrite its
// result. The computation runs on ctx, bounded by Options.LoadTimeout.
func (f *Func[A, V]) Refresh(ctx context.Context, a A) (V, error) {
	var zero V
	key, err := f.Key(a)
	if err != nil {
		return zero, err
	}
	if err := f.check(ctx); err != nil {
		return zero, err
	}
	if err := f.enter(); err != nil {
		return zero, err
	}
	defer f.leave()
	f.epochOf(key).Add(1)
	f.flights.Forget(flightKey{key, f.flightGen()})
	ctx, cancel := context.WithTimeout(ctx, f.opts.LoadTimeout)
	defer cancel()
	return f.compute(ctx, key, a, true, true)
}

// Peek returns the cached value for a without computing anything: a fresh
// value, or a stale one still inside a stale window. It returns an error
// wrapping [cachekit.ErrMiss] when there is none, and one wrapping
// Options.NotFound for a cached not-found answer.
func (f *Func[A, V]) Peek(ctx context.Context, a A) (V, error) {
	key, err := f.Key(a)
	if err != nil {
		var zero V
		return zero, err
	}
	return f.peek(ctx, key)
}

// Set stores v as the result for a, fresh for the TTL, as if just
// computed (cacheops' f.key(a).set(v)). Computations in flight for a do
// not overwrite it.
func (f *Func[A, V]) Set(ctx context.Context, a A, v V) error {
	key, err := f.Key(a)
	if err != nil {
		return err
	}
	return f.set(ctx, key, v)
}

// Invalidate removes the result for a (django-cache-utils' invalidate):
// the next call computes it again. Computations of this process in flight
// for a are not joined by later calls and do not store their result.
//
// NOTE: a computation running in another process when Invalidate is
// called may still store its (older) result afterwards. [Func.InvalidateAll]
// and [Group.Invalidate] have no such window.
func (f *Func[A, V]) Invalidate(ctx context.Context, a A) error {
	key, err := f.Key(a)
	if err != nil {
		return err
	}
	if err := f.check(ctx); err != nil {
		return err
	}
	f.flights.Forget(flightKey{key, f.flightGen()})
	return f.invalidateKeys(ctx, key)
}

// InvalidateAll makes every result of the function, in every process,
// read as a miss, with one store operation (see [Group.Invalidate]): the
// function's generation stamp changes.
func (f *Func[A, V]) InvalidateAll(ctx context.Context) error {
	if err := f.check(ctx); err != nil {
		return err
	}
	return f.invalidateAll(ctx)
}

// Close waits for the background refreshes and the computations in flight
// (each bounded by Options.LoadTimeout), after which calls fail with an
// error wrapping [cachekit.ErrClosed]. It does not close the cache. A
// second Close returns nil.
func (f *Func[A, V]) Close() error {
	f.close() // after it no call can start a computation
	f.flights.Wait()
	return nil
}
