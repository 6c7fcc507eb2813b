package memo

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"math/rand/v2"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cachekit/cachekit"
)

// core is what Func and Batch share: the cache, the options, the stamps,
// the observer, the background work and its shutdown.
type core[V any] struct {
	c      *cachekit.Cache[V]
	name   string
	head   string // name, "@v<version>" if any, "(": every key starts so
	opts   Options
	stamps *stampSet
	self   *Group // the function's own generation (InvalidateAll)
	lease  leaser // nil when the store can take no lease

	// epochs count, per stripe of keys, the writes and invalidations of
	// single keys made through this value (Set, Invalidate, Refresh): a
	// computation that started before one does not store its result.
	epochs [64]atomic.Uint64
	seed   maphash.Seed

	mu         sync.Mutex          // protects closed, refreshing, bg.Add and calls.Add
	closed     bool                // Close was called
	refreshing map[string]struct{} // keys with a background refresh running
	bg         sync.WaitGroup      // background refreshes and batch loads
	calls      sync.WaitGroup      // calls that may start a shared computation
	isClosed   atomic.Bool         // == closed, for the hit path
}

func newCore[V any](c *cachekit.Cache[V], name string, opts Options) (*core[V], error) {
	if c == nil {
		return nil, errors.New("memo: nil cache")
	}
	if strings.HasPrefix(name, "memo.") {
		return nil, fmt.Errorf("memo: name %q: names beginning with \"memo.\" are reserved", name)
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	opts.setDefaults(c.DefaultTTL(), c.Clock())
	k := &core[V]{c: c, name: name, opts: opts, seed: maphash.MakeSeed(), refreshing: map[string]struct{}{}}
	k.head = name
	if opts.Version != 0 {
		k.head += "@v" + strconv.Itoa(opts.Version)
	}
	k.head += "("
	self, err := newGroup(c, funcStampPrefix+name, name, GroupOptions{MaxStale: opts.StampMaxStale, Clock: opts.Clock})
	if err != nil {
		return nil, err
	}
	k.self = self
	if k.stamps, err = newStampSet(self, opts.Groups, c.Store()); err != nil {
		return nil, err
	}
	k.lease = leaserOf(c.Store())
	if opts.Lease && k.lease == nil {
		return nil, errors.New("memo: Options.Lease: the store is neither a cachekit.Leaser nor a cachekit.Adder")
	}
	return k, nil
}

// Name returns the function's name, the head of its keys.
func (k *core[V]) Name() string { return k.name }

func (k *core[V]) observe(kind EventKind, key string, err error, d time.Duration) {
	if k.opts.Observer != nil {
		k.opts.Observer.Observe(Event{Kind: kind, Func: k.name, Key: key, Err: err, Duration: d})
	}
}

func (k *core[V]) check(ctx context.Context) error {
	if k.isClosed.Load() {
		return fmt.Errorf("memo: %s: %w", k.name, cachekit.ErrClosed)
	}
	return ctx.Err()
}

// epochOf returns the epoch counter of key's stripe.
func (k *core[V]) epochOf(key string) *atomic.Uint64 {
	return &k.epochs[maphash.String(k.seed, key)%uint64(len(k.epochs))]
}

// flightGen changes whenever the function or one of its groups is
// invalidated through this process: it is part of the keys of in-process
// computations, so that no call joins one started before an invalidation.
func (k *core[V]) flightGen() uint64 { return k.stamps.epoch() }

// state is what a lookup found under a key.
type state uint8

const (
	absent     state = iota // nothing stored
	unusable                // stored but invalid: stamps changed, expired, damaged
	fresh                   // within its TTL
	negative                // a cached not-found answer
	staleSWR                // past its TTL, inside the stale-while-revalidate window
	staleError              // past its TTL and the SWR window, inside the stale-if-error window
)

// lookup reads key and classifies what it holds. now is read only when
// the entry's freshness needs it; it is returned (zero otherwise).
func (k *core[V]) lookup(ctx context.Context, key string) (*cachekit.Entry[V], state, time.Time, error) {
	return k.lookupWith(ctx, key, nil)
}

// gensCheck is a set of current generations read once for many lookups;
// ok is false when a stamp is absent (every entry is then invalid).
type gensCheck struct {
	gens []uint64
	ok   bool
}

// lookupWith is lookup, checking stamps against gc when it is not nil.
func (k *core[V]) lookupWith(ctx context.Context, key string, gc *gensCheck) (*cachekit.Entry[V], state, time.Time, error) {
	e, err := k.c.GetEntry(ctx, key)
	switch {
	case errors.Is(err, cachekit.ErrMiss):
		return nil, absent, time.Time{}, nil
	case errors.Is(err, cachekit.ErrCorrupt):
		return nil, unusable, time.Time{}, nil
	case err != nil:
		return nil, absent, time.Time{}, err
	}
	var ok bool
	if gc != nil {
		ok = gc.ok && k.stamps.match(e.Stamps, gc.gens)
	} else if ok, err = k.stamps.valid(ctx, e.Stamps); err != nil {
		return nil, absent, time.Time{}, err
	}
	if !ok {
		return e, unusable, time.Time{}, nil
	}
	st, now := k.classify(e)
	return e, st, now, nil
}

// looked is the result of one lookup of lookupMany.
type looked[V any] struct {
	e  *cachekit.Entry[V]
	st state
}

// lookupMany looks up keys, reading the stamps once, and the entries
// concurrently on a byte store (so that a network store pipelines them).
func (k *core[V]) lookupMany(ctx context.Context, keys []string) ([]looked[V], error) {
	gens, err := k.stamps.current(ctx, false)
	if err != nil {
		return nil, err
	}
	gc := &gensCheck{gens: gens, ok: gens != nil}
	out := make([]looked[V], len(keys))
	errs := make([]error, len(keys))
	k.parallel(len(keys), func(i int) {
		out[i].e, out[i].st, _, errs[i] = k.lookupWith(ctx, keys[i], gc)
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// maxParallel bounds the goroutines of one batch's store operations.
const maxParallel = 16

// parallel runs f(0..n-1): in turn on the object tier (in process, where
// goroutines cost more than they save), else on up to maxParallel
// goroutines.
func (k *core[V]) parallel(n int, f func(i int)) {
	if n <= 1 || k.c.ObjectTier() {
		for i := range n {
			f(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(n, maxParallel) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				f(i)
			}
		})
	}
	wg.Wait()
}

// classify places a valid entry in time.
func (k *core[V]) classify(e *cachekit.Entry[V]) (state, time.Time) {
	if e.FreshUntil.IsZero() && !k.opts.XFetch {
		// No stale windows: the store enforces the expiry, and the clock is
		// not needed (the hit path stays cheap).
		if e.Negative {
			return negative, time.Time{}
		}
		return fresh, time.Time{}
	}
	now := k.opts.Clock.Now()
	if !e.Expires.IsZero() && !now.Before(e.Expires) {
		return unusable, now
	}
	if e.Negative {
		return negative, now
	}
	if e.FreshUntil.IsZero() || now.Before(e.FreshUntil) {
		return fresh, now
	}
	switch past := now.Sub(e.FreshUntil); {
	case past < k.opts.StaleWhileRevalidate:
		return staleSWR, now
	case past < k.opts.StaleIfError:
		return staleError, now
	}
	return unusable, now
}

// xfetch reports whether a fresh entry should be recomputed early: now −
// δ·β·ln(U) ≥ expiry, with U uniform in (0, 1].
func (k *core[V]) xfetch(e *cachekit.Entry[V], now time.Time) bool {
	exp := e.FreshUntil
	if exp.IsZero() {
		exp = e.Expires
	}
	if exp.IsZero() || e.ComputeTime <= 0 || now.IsZero() {
		return false
	}
	u := 1 - rand.Float64() // (0, 1]
	gap := -float64(e.ComputeTime) * k.opts.Beta * math.Log(u)
	if gap >= float64(math.MaxInt64) {
		return true
	}
	return !now.Add(time.Duration(gap)).Before(exp)
}

// negativeErr is what a negative hit returns.
func (k *core[V]) negativeErr(key string) error {
	return fmt.Errorf("memo: %s: cached not-found answer for %s: %w", k.name, key, k.opts.NotFound)
}

// isNotFound reports whether err says the record does not exist.
func (k *core[V]) isNotFound(err error) bool {
	return errors.Is(err, k.opts.NotFound)
}

// ttls returns a fresh entry's timestamps and the store TTL for a value
// computed at now.
func (k *core[V]) newEntry(v V, now time.Time, compute time.Duration, gens []uint64) (*cachekit.Entry[V], time.Duration) {
	e := &cachekit.Entry[V]{Value: v, Created: now, ComputeTime: compute, Stamps: k.stamps.stamps(gens)}
	if k.opts.TTL == cachekit.NoExpiry {
		return e, cachekit.NoExpiry
	}
	ttl := k.opts.TTL
	if k.opts.Jitter > 0 {
		ttl -= time.Duration(rand.Float64() * k.opts.Jitter * float64(ttl))
		ttl = max(ttl, 1)
	}
	window := k.opts.staleWindow()
	if window > 0 || k.opts.XFetch {
		e.FreshUntil = now.Add(ttl)
	}
	store := ttl + window
	if store < ttl { // overflow
		return e, cachekit.NoExpiry
	}
	e.Expires = now.Add(store)
	return e, store
}

// newNegative returns a not-found entry.
func (k *core[V]) newNegative(now time.Time, gens []uint64) (*cachekit.Entry[V], time.Duration) {
	e := &cachekit.Entry[V]{Created: now, Negative: true, Stamps: k.stamps.stamps(gens)}
	if k.opts.NegativeTTL != cachekit.NoExpiry {
		e.Expires = now.Add(k.opts.NegativeTTL)
	}
	return e, k.opts.NegativeTTL
}

// store writes e under key: Add when nothing was there (a value another
// writer stored meanwhile wins), Set over an old entry. Errors go to the
// observer: the caller has its value.
func (k *core[V]) store(ctx context.Context, key string, e *cachekit.Entry[V], ttl time.Duration, over bool) {
	var err error
	if over {
		err = k.c.SetEntry(ctx, key, e, ttl)
	} else {
		_, err = k.c.AddEntry(ctx, key, e, ttl)
	}
	if err != nil {
		k.observe(StoreError, key, err, 0)
	}
}

// computed is the outcome of one computation.
type computed[V any] struct {
	v        V
	err      error
	duration time.Duration
}

// settle stores the outcome of a computation of key started when the
// key's epoch was ep, under the generations gens (nil when they could not
// be read: nothing is then stored).
func (k *core[V]) settle(ctx context.Context, key string, r computed[V], start time.Time, ep uint64, gens []uint64, over bool) {
	if gens == nil || k.epochOf(key).Load() != ep {
		return // stamps unknown, or the key was invalidated or set meanwhile
	}
	if r.err != nil {
		if k.opts.NegativeTTL > 0 && k.isNotFound(r.err) {
			e, ttl := k.newNegative(start.Add(r.duration), gens)
			k.store(ctx, key, e, ttl, true)
		}
		return
	}
	if k.opts.CacheIf != nil && !k.opts.CacheIf(r.v) {
		return
	}
	e, ttl := k.newEntry(r.v, start.Add(r.duration), r.duration, gens)
	k.store(ctx, key, e, ttl, over)
}

// readGens reads (and mints) the generations before a computation. A
// failure is observed and gives nil: the value is then not stored.
func (k *core[V]) readGens(ctx context.Context, key string) []uint64 {
	gens, err := k.stamps.current(ctx, true)
	if err != nil {
		k.observe(StoreError, key, err, 0)
		return nil
	}
	return gens
}

// protect runs f, turning a panic into a *cachekit.PanicError.
func protect[T any](f func() (T, error)) (v T, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &cachekit.PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	return f()
}

// startBackground runs f in a goroutine owned by k, unless k is closed or
// key already has one running (key "" is never deduplicated). It reports
// whether f was started.
func (k *core[V]) startBackground(key string, f func()) bool {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return false
	}
	if key != "" {
		if _, busy := k.refreshing[key]; busy {
			k.mu.Unlock()
			return false
		}
		k.refreshing[key] = struct{}{}
	}
	k.bg.Add(1)
	k.mu.Unlock()
	go func() {
		defer k.bg.Done()
		if key != "" {
			defer func() {
				k.mu.Lock()
				delete(k.refreshing, key)
				k.mu.Unlock()
			}()
		}
		f()
	}()
	return true
}

// enter registers a call that may start a shared computation; it fails
// after Close. Each successful enter needs a leave.
func (k *core[V]) enter() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return fmt.Errorf("memo: %s: %w", k.name, cachekit.ErrClosed)
	}
	k.calls.Add(1) // under mu: never concurrent with close's Wait
	return nil
}

func (k *core[V]) leave() { k.calls.Done() }

// close stops new calls and background work, and waits for the calls that
// may start computations and for the background work.
func (k *core[V]) close() {
	k.mu.Lock()
	k.closed = true
	k.isClosed.Store(true)
	k.mu.Unlock()
	k.calls.Wait()
	k.bg.Wait()
}

// invalidateKeys deletes keys and keeps computations in flight from
// storing their (older) results.
func (k *core[V]) invalidateKeys(ctx context.Context, keys ...string) error {
	for _, key := range keys {
		k.epochOf(key).Add(1)
	}
	_, err := k.c.DeleteMany(ctx, keys...)
	for _, key := range keys {
		k.epochOf(key).Add(1) // a computation that read between the bumps
	}
	if err != nil {
		return fmt.Errorf("memo: %s: invalidate: %w", k.name, err)
	}
	return nil
}

// set stores v under key as if computed now.
func (k *core[V]) set(ctx context.Context, key string, v V) error {
	if err := k.check(ctx); err != nil {
		return err
	}
	k.epochOf(key).Add(1)
	gens, err := k.stamps.current(ctx, true)
	if err != nil {
		return fmt.Errorf("memo: %s: set: %w", k.name, err)
	}
	e, ttl := k.newEntry(v, k.opts.Clock.Now(), 0, gens)
	if err := k.c.SetEntry(ctx, key, e, ttl); err != nil {
		return fmt.Errorf("memo: %s: set: %w", k.name, err)
	}
	return nil
}

// peek returns the cached value under key without computing.
func (k *core[V]) peek(ctx context.Context, key string) (V, error) {
	var zero V
	if err := k.check(ctx); err != nil {
		return zero, err
	}
	e, st, _, err := k.lookup(ctx, key)
	switch {
	case err != nil:
		return zero, err
	case st == negative:
		return zero, k.negativeErr(key)
	case st == fresh || st == staleSWR || st == staleError:
		return e.Value, nil
	}
	return zero, fmt.Errorf("memo: %s: peek %s: %w", k.name, key, cachekit.ErrMiss)
}

// invalidateAll orphans every value of the function.
func (k *core[V]) invalidateAll(ctx context.Context) error {
	if err := k.self.Invalidate(ctx); err != nil {
		return fmt.Errorf("memo: %s: invalidate all: %w", k.name, err)
	}
	return nil
}
