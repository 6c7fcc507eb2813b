package cachekit

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cachekit/cachekit/codec"
	"github.com/cachekit/cachekit/internal/flight"
)

// Cache is the typed facade over a [Store]: keys with prefix and version,
// values in an [Entry] envelope, encoded by a codec for byte stores or kept
// by reference on the object tier, TTL defaults, and Django's cache API with
// [context.Context]. A Cache is safe for concurrent use.
//
// On a byte store that is a [Counter], integer values (V of any integer
// kind) are written as bare decimal text when their envelope carries nothing
// but the value and the TTL, so that [Incr] can use the store's atomic
// counter (Redis INCRBY, memcached incr).
type Cache[V any] struct {
	*shared
	opts    Options
	version int
}

// shared is what a Cache and its version views have in common.
type shared struct {
	store   Store
	values  ValueStore // non-nil on the object tier
	codec   codec.Codec
	bareInt bool           // V is an integer kind and the store a Counter (see Cache)
	closeMu sync.RWMutex   // orders GetOrLoad's callers.Add before Close's Wait
	closed  atomic.Bool    // set by Close under closeMu
	callers sync.WaitGroup // GetOrLoad calls that may start a load
	flights flight.Group[string, any]

	degraded atomic.Uint64 // store errors turned into misses or nil (Options.Degrade)
}

// New returns a Cache over store. It validates opts; the zero Options are
// valid. The Cache owns the store: [Cache.Close] closes it.
func New[V any](store Store, opts Options) (*Cache[V], error) {
	if store == nil {
		return nil, errors.New("cachekit: New: nil store")
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	opts.setDefaults()
	sh := &shared{store: store, codec: opts.Codec}
	if vs, ok := store.(ValueStore); ok && opts.Codec == nil {
		sh.values = vs
	}
	if sh.codec == nil {
		sh.codec = codec.Gob
	}
	if _, counter := store.(Counter); counter && sh.values == nil {
		switch reflect.TypeFor[V]().Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			sh.bareInt = true
		}
	}
	return &Cache[V]{shared: sh, opts: opts, version: opts.Version}, nil
}

// Must is like [New] but panics on an error. For package-level caches.
func Must[V any](store Store, opts Options) *Cache[V] {
	c, err := New[V](store, opts)
	if err != nil {
		panic(err)
	}
	return c
}

// WithVersion returns a view of the cache whose keys carry version instead
// of the cache's own (Django's version= argument). It shares the store and
// its lifetime with c.
func (c *Cache[V]) WithVersion(version int) *Cache[V] {
	v := *c
	v.version = version
	return &v
}

// Version returns the version this cache puts in its keys.
func (c *Cache[V]) Version() int { return c.version }

// Store returns the store under the cache.
func (c *Cache[V]) Store() Store { return c.store }

// ObjectTier reports whether values are kept by reference (no codec).
func (c *Cache[V]) ObjectTier() bool { return c.values != nil }

// Key returns the store key of key: prefix, version, key function and key
// policy applied. The empty key is refused with [ErrInvalidKey].
func (c *Cache[V]) Key(key string) (string, error) {
	return c.keyAt(key, c.version)
}

func (c *Cache[V]) keyAt(key string, version int) (string, error) {
	if key == "" {
		return "", &OpError{Op: "key", Backend: "cachekit", Err: ErrInvalidKey}
	}
	k := c.opts.KeyFunc(key, c.opts.Prefix, version)
	if c.opts.KeyPolicy != nil {
		return c.opts.KeyPolicy(k)
	}
	return k, nil
}

func (c *Cache[V]) check(ctx context.Context) error {
	if c.closed.Load() {
		return ErrClosed
	}
	return ctx.Err()
}

func opErr(op, key string, err error) error {
	return &OpError{Op: op, Backend: "cachekit", Key: key, Err: err}
}

// newEntry wraps v in an envelope for a write with ttl (already resolved:
// positive or NoExpiry).
func (c *Cache[V]) newEntry(v V, ttl time.Duration) *Entry[V] {
	now := c.opts.Clock.Now()
	exp, _ := ExpiryTime(now, ttl)
	return &Entry[V]{Value: v, Created: now, Expires: exp}
}

// plain reports whether e carries nothing beyond its value and expiry.
func plain[V any](e *Entry[V]) bool {
	return e.FreshUntil.IsZero() && e.ComputeTime == 0 && !e.Negative && len(e.Stamps) == 0
}

// encode turns an entry into the bytes a byte store keeps.
func (c *Cache[V]) encode(e *Entry[V]) ([]byte, error) {
	if c.bareInt && plain(e) {
		return intText(e.Value), nil
	}
	payload, err := c.codec.Marshal(e.Value)
	if err != nil {
		return nil, fmt.Errorf("cachekit: encode with %s: %w", c.codec.Name(), err)
	}
	buf := make([]byte, 0, 48+len(payload))
	return appendEnvelope(buf, e, payload), nil
}

// decode turns stored bytes back into an entry.
func (c *Cache[V]) decode(b []byte) (*Entry[V], error) {
	e := new(Entry[V])
	if !isEnvelope(b) {
		if !c.bareInt {
			return nil, fmt.Errorf("%w: not an envelope", ErrCorrupt)
		}
		if err := setInt(&e.Value, b); err != nil {
			return nil, err
		}
		return e, nil
	}
	payload, err := decodeEnvelope(b, e)
	if err != nil {
		return nil, err
	}
	if err := c.codec.Unmarshal(payload, &e.Value); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, c.codec.Name(), err)
	}
	return e, nil
}

// asEntry converts a value from the object tier.
func asEntry[V any](v any) (*Entry[V], error) {
	e, ok := v.(*Entry[V])
	if !ok {
		return nil, fmt.Errorf("%w: object tier holds %T, not *cachekit.Entry[%s]", ErrCorrupt, v, reflect.TypeFor[V]())
	}
	return e, nil
}

// read fetches and decodes the entry under the full key k.
func (c *Cache[V]) read(ctx context.Context, k string) (*Entry[V], error) {
	if c.values != nil {
		v, err := c.values.GetValue(ctx, k)
		if err != nil {
			return nil, c.degradeRead("get", k, err)
		}
		return asEntry[V](v)
	}
	b, err := c.store.Get(ctx, k)
	if err != nil {
		return nil, c.degradeRead("get", k, err)
	}
	return c.decode(b)
}

// write stores e under the full key k for ttl (positive or NoExpiry).
func (c *Cache[V]) write(ctx context.Context, k string, e *Entry[V], ttl time.Duration) error {
	if c.values != nil {
		return c.degradeWrite("set", k, c.values.SetValue(ctx, k, e, ttl))
	}
	b, err := c.encode(e)
	if err != nil {
		return err
	}
	return c.degradeWrite("set", k, c.store.Set(ctx, k, b, ttl))
}

// DefaultTTL returns the TTL of writes that pass none (Options.DefaultTTL
// after defaults).
func (c *Cache[V]) DefaultTTL() time.Duration { return c.opts.DefaultTTL }

// Clock returns the cache's time source (Options.Clock after defaults).
func (c *Cache[V]) Clock() Clock { return c.opts.Clock }

// Degraded returns how many store errors Options.Degrade has turned into
// misses or successful writes.
func (c *Cache[V]) Degraded() uint64 { return c.degraded.Load() }

// unreachable reports whether err says the store could not be reached.
func unreachable(err error) bool {
	return errors.Is(err, ErrUnavailable) || errors.Is(err, ErrTimeout)
}

// degradeRead turns an unreachable store into a miss under Options.Degrade.
func (c *Cache[V]) degradeRead(op, k string, err error) error {
	if err == nil || !c.opts.Degrade || !unreachable(err) {
		return err
	}
	c.degraded.Add(1)
	if c.opts.OnError != nil {
		c.opts.OnError(op, k, err)
	}
	return fmt.Errorf("%w (degraded: %w)", ErrMiss, err)
}

// degradeWrite swallows an unreachable store's write error under
// Options.Degrade.
func (c *Cache[V]) degradeWrite(op, k string, err error) error {
	if err == nil || !c.opts.Degrade || !unreachable(err) {
		return err
	}
	c.degraded.Add(1)
	if c.opts.OnError != nil {
		c.opts.OnError(op, k, err)
	}
	return nil
}

// Get returns the value under key, or an error wrapping [ErrMiss] when it is
// absent or expired. Undecodable bytes give an error wrapping [ErrCorrupt].
func (c *Cache[V]) Get(ctx context.Context, key string) (V, error) {
	e, err := c.GetEntry(ctx, key)
	if err != nil {
		var zero V
		return zero, err
	}
	return e.Value, nil
}

// GetEntry returns the value under key with its envelope.
func (c *Cache[V]) GetEntry(ctx context.Context, key string) (*Entry[V], error) {
	if err := c.check(ctx); err != nil {
		return nil, opErr("get", key, err)
	}
	k, err := c.Key(key)
	if err != nil {
		return nil, err
	}
	e, err := c.read(ctx, k)
	if err != nil {
		return nil, opErr("get", key, err)
	}
	return e, nil
}

// Has reports whether key holds a live value.
func (c *Cache[V]) Has(ctx context.Context, key string) (bool, error) {
	_, err := c.GetEntry(ctx, key)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrMiss):
		return false, nil
	}
	return false, err
}

// Set stores v under key. The [TTL] option overrides the default TTL; a
// negative TTL deletes the key instead.
func (c *Cache[V]) Set(ctx context.Context, key string, v V, opts ...Option) error {
	if err := c.check(ctx); err != nil {
		return opErr("set", key, err)
	}
	k, err := c.Key(key)
	if err != nil {
		return err
	}
	o := c.callOpts(opts)
	if o.ttl < 0 {
		_, err := c.store.Delete(ctx, k)
		return wrapErr("set", key, err)
	}
	return wrapErr("set", key, c.write(ctx, k, c.newEntry(v, o.ttl), o.ttl))
}

// SetEntry stores e as it is (value, freshness, compute time, negative
// flag, group stamps) under key for ttl: the building block of memoizers
// and stampede defences. A zero e.Created is set to now and a zero
// e.Expires to now+ttl; ttl follows Set (zero: the default; negative:
// delete). e is not retained on byte stores; the object tier keeps it.
func (c *Cache[V]) SetEntry(ctx context.Context, key string, e *Entry[V], ttl time.Duration) error {
	if err := c.check(ctx); err != nil {
		return opErr("set", key, err)
	}
	k, err := c.Key(key)
	if err != nil {
		return err
	}
	ttl = c.resolveTTL(ttl)
	if ttl < 0 {
		_, err := c.store.Delete(ctx, k)
		return wrapErr("set", key, err)
	}
	return wrapErr("set", key, c.write(ctx, k, c.fillEntry(e, ttl), ttl))
}

// AddEntry is [Cache.SetEntry] only if key is absent or expired, atomic
// as [Cache.Add] is; it reports whether it stored.
func (c *Cache[V]) AddEntry(ctx context.Context, key string, e *Entry[V], ttl time.Duration) (bool, error) {
	if err := c.check(ctx); err != nil {
		return false, opErr("add", key, err)
	}
	k, err := c.Key(key)
	if err != nil {
		return false, err
	}
	ttl = c.resolveTTL(ttl)
	if ttl < 0 {
		return false, nil
	}
	added, err := c.addEntry(ctx, k, c.fillEntry(e, ttl), ttl)
	if err = c.degradeWrite("add", k, err); err != nil {
		return false, wrapErr("add", key, err)
	}
	return added, nil
}

// fillEntry sets the zero Created and Expires of a caller's entry.
func (c *Cache[V]) fillEntry(e *Entry[V], ttl time.Duration) *Entry[V] {
	if e.Created.IsZero() {
		e.Created = c.opts.Clock.Now()
	}
	if e.Expires.IsZero() {
		e.Expires, _ = ExpiryTime(e.Created, ttl)
	}
	return e
}

func wrapErr(op, key string, err error) error {
	if err == nil {
		return nil
	}
	return opErr(op, key, err)
}

// Add stores v under key only if the key is absent or expired, and reports
// whether it stored. It is atomic when the store is an [Adder] (or on the
// object tier); otherwise it falls back to Get then Set, which is not.
func (c *Cache[V]) Add(ctx context.Context, key string, v V, opts ...Option) (bool, error) {
	if err := c.check(ctx); err != nil {
		return false, opErr("add", key, err)
	}
	k, err := c.Key(key)
	if err != nil {
		return false, err
	}
	o := c.callOpts(opts)
	if o.ttl < 0 {
		return false, nil // nothing would be stored
	}
	added, err := c.addEntry(ctx, k, c.newEntry(v, o.ttl), o.ttl)
	if err = c.degradeWrite("add", k, err); err != nil {
		return false, wrapErr("add", key, err)
	}
	return added, nil
}

// addEntry stores e under the full key k only if k is absent or expired.
func (c *Cache[V]) addEntry(ctx context.Context, k string, e *Entry[V], ttl time.Duration) (bool, error) {
	if c.values != nil {
		return c.values.AddValue(ctx, k, e, ttl)
	}
	b, err := c.encode(e)
	if err != nil {
		return false, err
	}
	if a, ok := c.store.(Adder); ok {
		return a.Add(ctx, k, b, ttl)
	}
	if _, err := c.store.Get(ctx, k); err == nil {
		return false, nil
	} else if !errors.Is(err, ErrMiss) {
		return false, err
	}
	return true, c.store.Set(ctx, k, b, ttl)
}

// GetOrSet returns the value under key; if there is none it adds v and
// returns it. As in Django, a value another writer stored first wins.
func (c *Cache[V]) GetOrSet(ctx context.Context, key string, v V, opts ...Option) (V, error) {
	got, err := c.Get(ctx, key)
	if err == nil || !errors.Is(err, ErrMiss) {
		return got, err
	}
	added, err := c.Add(ctx, key, v, opts...)
	if err != nil || added {
		return v, err
	}
	got, err = c.Get(ctx, key)
	if errors.Is(err, ErrMiss) { // expired or deleted in between
		return v, nil
	}
	return got, err
}

// GetOrLoad returns the value under key; on a miss it calls load, stores
// the result and returns it. Within this process load runs once per key at a
// time: concurrent callers for the same key wait for that one call and share
// its result (single flight).
//
// WARNING: load runs on a context derived from the first caller's with its
// cancellation removed and Options.LoadTimeout added, so that one caller
// giving up does not fail the others; a caller whose own ctx ends gets
// ctx.Err() while the load goes on. A load error is returned to every waiter
// and nothing is cached. A panic in load becomes a [*PanicError] for every
// waiter. Undecodable stored bytes count as a miss and are overwritten. A
// failure to store the loaded value is reported to Options.OnError, and the
// value is still returned.
func (c *Cache[V]) GetOrLoad(ctx context.Context, key string, load func(context.Context) (V, error), opts ...Option) (V, error) {
	var zero V
	if err := c.check(ctx); err != nil {
		return zero, opErr("load", key, err)
	}
	k, err := c.Key(key)
	if err != nil {
		return zero, err
	}
	e, err := c.read(ctx, k)
	if err == nil {
		return e.Value, nil
	} else if !errors.Is(err, ErrMiss) && !errors.Is(err, ErrCorrupt) {
		return zero, opErr("load", key, err)
	}
	corrupt := errors.Is(err, ErrCorrupt)
	o := c.callOpts(opts)
	c.closeMu.RLock()
	if c.closed.Load() {
		c.closeMu.RUnlock()
		return zero, opErr("load", key, ErrClosed)
	}
	c.callers.Add(1) // under the read lock: never concurrent with Close's Wait
	c.closeMu.RUnlock()
	defer c.callers.Done()
	v, err, _ := c.flights.Do(ctx, k, c.opts.LoadTimeout, func(lctx context.Context) (any, error) {
		// Another caller of this process, or another process, may have filled
		// the key between our miss and this flight.
		if e, err := c.read(lctx, k); err == nil {
			return e.Value, nil
		}
		start := c.opts.Clock.Now()
		v, err := load(lctx)
		if err != nil {
			return nil, err
		}
		if o.ttl < 0 {
			return v, nil
		}
		e := c.newEntry(v, o.ttl)
		e.ComputeTime = max(c.opts.Clock.Now().Sub(start), 0)
		if corrupt { // overwrite what cannot be read
			err = c.write(lctx, k, e, o.ttl)
		} else {
			// Add, not Set: a value another writer stored during the load
			// is newer than ours, and wins (as in Django's get_or_set).
			var added bool
			if added, err = c.addEntry(lctx, k, e, o.ttl); err == nil && !added {
				if cur, rerr := c.read(lctx, k); rerr == nil {
					return cur.Value, nil
				}
			}
		}
		if err != nil && c.opts.OnError != nil {
			c.opts.OnError("load", key, err)
		}
		return v, nil
	})
	if err != nil {
		var pe *flight.PanicError
		if errors.As(err, &pe) {
			err = &PanicError{Value: pe.Value, Stack: pe.Stack}
		}
		return zero, opErr("load", key, err)
	}
	return v.(V), nil
}

// Touch gives key a new TTL (zero: the default; negative: expire it now) and
// reports whether the key was present. Atomic when the store is a
// [Toucher]; otherwise it rewrites the value, which is not.
func (c *Cache[V]) Touch(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if err := c.check(ctx); err != nil {
		return false, opErr("touch", key, err)
	}
	k, err := c.Key(key)
	if err != nil {
		return false, err
	}
	if ttl == 0 {
		ttl = c.opts.DefaultTTL
	}
	if t, ok := c.store.(Toucher); ok {
		touched, err := t.Touch(ctx, k, ttl)
		return touched, wrapErr("touch", key, err)
	}
	if ttl < 0 {
		n, err := c.store.Delete(ctx, k)
		return n > 0, wrapErr("touch", key, err)
	}
	b, err := c.store.Get(ctx, k)
	if errors.Is(err, ErrMiss) {
		return false, nil
	} else if err != nil {
		return false, opErr("touch", key, err)
	}
	return true, wrapErr("touch", key, c.store.Set(ctx, k, b, ttl))
}

// Delete removes key and reports whether it was present.
func (c *Cache[V]) Delete(ctx context.Context, key string) (bool, error) {
	n, err := c.DeleteMany(ctx, key)
	return n > 0, err
}

// DeleteMany removes the keys and returns how many were present.
func (c *Cache[V]) DeleteMany(ctx context.Context, keys ...string) (int, error) {
	if err := c.check(ctx); err != nil {
		return 0, opErr("delete", "", err)
	}
	full := make([]string, len(keys))
	for i, key := range keys {
		k, err := c.Key(key)
		if err != nil {
			return 0, err
		}
		full[i] = k
	}
	n, err := c.store.Delete(ctx, full...)
	return n, wrapErr("delete", "", err)
}

// GetMany returns the live values of keys; absent keys are left out of the
// map. One round trip when the store is a [Batcher].
func (c *Cache[V]) GetMany(ctx context.Context, keys ...string) (map[string]V, error) {
	if err := c.check(ctx); err != nil {
		return nil, opErr("get_many", "", err)
	}
	out := make(map[string]V, len(keys))
	full := make(map[string]string, len(keys)) // store key -> caller's key
	for _, key := range keys {
		k, err := c.Key(key)
		if err != nil {
			return nil, err
		}
		full[k] = key
	}
	b, batch := c.store.(Batcher)
	if c.values != nil || !batch {
		for k, key := range full {
			e, err := c.read(ctx, k)
			if errors.Is(err, ErrMiss) {
				continue
			} else if err != nil {
				return nil, opErr("get_many", key, err)
			}
			out[key] = e.Value
		}
		return out, nil
	}
	ks := make([]string, 0, len(full))
	for k := range full {
		ks = append(ks, k)
	}
	raw, err := b.GetMany(ctx, ks)
	if err := c.degradeRead("get_many", "", err); errors.Is(err, ErrMiss) {
		return out, nil
	} else if err != nil {
		return nil, opErr("get_many", "", err)
	}
	for k, val := range raw {
		e, err := c.decode(val)
		if err != nil {
			return nil, opErr("get_many", full[k], err)
		}
		out[full[k]] = e.Value
	}
	return out, nil
}

// SetMany stores every item with the same TTL. One round trip when the
// store is a [Batcher]. It is not atomic: on an error some items may have
// been stored.
func (c *Cache[V]) SetMany(ctx context.Context, items map[string]V, opts ...Option) error {
	if err := c.check(ctx); err != nil {
		return opErr("set_many", "", err)
	}
	o := c.callOpts(opts)
	if o.ttl < 0 {
		keys := make([]string, 0, len(items))
		for key := range items {
			keys = append(keys, key)
		}
		_, err := c.DeleteMany(ctx, keys...)
		return err
	}
	b, batch := c.store.(Batcher)
	enc := make(map[string][]byte, len(items))
	for key, v := range items {
		k, err := c.Key(key)
		if err != nil {
			return err
		}
		e := c.newEntry(v, o.ttl)
		if c.values != nil || !batch {
			if err := c.write(ctx, k, e, o.ttl); err != nil {
				return opErr("set_many", key, err)
			}
			continue
		}
		if enc[k], err = c.encode(e); err != nil {
			return opErr("set_many", key, err)
		}
	}
	if len(enc) == 0 {
		return nil
	}
	return wrapErr("set_many", "", c.degradeWrite("set_many", "", b.SetMany(ctx, enc, o.ttl)))
}

// Clear deletes every key of the store (only the store's own keys on a
// shared server). It returns [ErrNotSupported] when the store is not a
// [Clearer].
func (c *Cache[V]) Clear(ctx context.Context) error {
	if err := c.check(ctx); err != nil {
		return opErr("clear", "", err)
	}
	cl, ok := c.store.(Clearer)
	if !ok {
		return opErr("clear", "", ErrNotSupported)
	}
	return wrapErr("clear", "", cl.Clear(ctx))
}

// IncrVersion moves the value under key from this cache's version to
// version+delta (keeping its remaining TTL) and returns the new version, as
// Django's incr_version. It returns [ErrMiss] when the key is absent. Read
// the moved value through [Cache.WithVersion]. Not atomic.
func (c *Cache[V]) IncrVersion(ctx context.Context, key string, delta int) (int, error) {
	if err := c.check(ctx); err != nil {
		return 0, opErr("incr_version", key, err)
	}
	oldKey, err := c.Key(key)
	if err != nil {
		return 0, err
	}
	newVersion := c.version + delta
	newKey, err := c.keyAt(key, newVersion)
	if err != nil {
		return 0, err
	}
	if delta == 0 {
		if _, err := c.read(ctx, oldKey); err != nil {
			return 0, opErr("incr_version", key, err)
		}
		return newVersion, nil
	}
	e, ttl, err := c.readWithTTL(ctx, oldKey)
	if err != nil {
		return 0, opErr("incr_version", key, err)
	}
	if err := c.write(ctx, newKey, e, ttl); err != nil {
		return 0, opErr("incr_version", key, err)
	}
	if _, err := c.store.Delete(ctx, oldKey); err != nil {
		return 0, opErr("incr_version", key, err)
	}
	return newVersion, nil
}

// DecrVersion is IncrVersion with -delta.
func (c *Cache[V]) DecrVersion(ctx context.Context, key string, delta int) (int, error) {
	return c.IncrVersion(ctx, key, -delta)
}

// readWithTTL reads the entry under k with its remaining TTL: from the
// store when it is an [ExpiryReader], else from the envelope. A bare integer
// on a store that cannot tell its expiry gets the default TTL (bounded
// rather than forever).
func (c *Cache[V]) readWithTTL(ctx context.Context, k string) (*Entry[V], time.Duration, error) {
	var (
		e   *Entry[V]
		exp time.Time
		err error
	)
	if r, ok := c.store.(ExpiryReader); ok && c.values == nil {
		var b []byte
		if b, exp, err = r.GetWithExpiry(ctx, k); err != nil {
			return nil, 0, err
		}
		if e, err = c.decode(b); err != nil {
			return nil, 0, err
		}
	} else {
		if e, err = c.read(ctx, k); err != nil {
			return nil, 0, err
		}
		exp = e.Expires
	}
	if exp.IsZero() {
		if _, expiryKnown := c.store.(ExpiryReader); !expiryKnown && c.values == nil && e.Created.IsZero() {
			return e, c.opts.DefaultTTL, nil // a bare integer: its expiry is unknown
		}
		return e, NoExpiry, nil
	}
	ttl := exp.Sub(c.opts.Clock.Now())
	if ttl <= 0 {
		return nil, 0, ErrMiss
	}
	return e, ttl, nil
}

// Close waits for loads in flight (each bounded by Options.LoadTimeout) and
// closes the store. Later calls return [ErrClosed]; a second Close returns
// nil. Closing a [Cache.WithVersion] view closes the cache it came from.
func (c *Cache[V]) Close() error {
	c.closeMu.Lock()
	already := c.closed.Swap(true)
	c.closeMu.Unlock()
	if already {
		return nil
	}
	// Once every GetOrLoad caller has returned no new load can start; then
	// wait for loads whose callers gave up.
	c.callers.Wait()
	c.flights.Wait()
	return c.store.Close()
}
