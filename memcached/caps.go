package memcached

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/cachekit/cachekit"
)

// Add stores a copy of val under key only if the key holds no live value,
// atomically across processes, and reports whether it stored. It is
// memcached's add; a key holding a value retired by Clear is replaced with
// a compare-and-swap, so that of many concurrent adders exactly one wins
// there too. A negative ttl stores nothing and returns false.
func (s *Store) Add(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	return run(s, ctx, "add", key, func(ctx context.Context) (bool, error) {
		l, err := s.locate(key)
		if err != nil {
			return false, err
		}
		if ttl < 0 {
			return false, nil
		}
		if err := s.checkSize(val); err != nil {
			return false, err
		}
		return s.addOne(ctx, l, val, ttl)
	})
}

// addOne is Add after the checks.
func (s *Store) addOne(ctx context.Context, l located, val []byte, ttl time.Duration) (bool, error) {
	exp, expires := expiration(time.Now(), ttl)
	var mine []byte // what an add that succeeded in doubt stored
	for {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		gen := l.slot.generation()
		ver, cached, err := s.version(ctx, l.slot)
		if err != nil {
			return false, err
		}
		it := &memcache.Item{Key: l.mkey, Value: frame(header{expires, ver}, val), Expiration: exp}
		switch err := s.add(ctx, l.slot, it); {
		case err == nil && (!cached || l.slot.generation() == gen):
			return true, nil
		case err == nil:
			// Added, but after a broken connection, under a version the
			// server (if it restarted) may not have: the value may read
			// as retired. Look again: the loop finds it live (ours), or
			// replaces it.
			mine = it.Value
			continue
		case !errors.Is(err, memcache.ErrNotStored):
			return false, err
		}
		// Something is there: a live value, or one retired by Clear.
		e, err := s.fetchOne(ctx, l)
		switch {
		case err != nil:
			return false, err
		case e.item == nil:
			continue // gone meanwhile: add again
		case e.corrupt != nil:
			return false, e.corrupt
		case e.live:
			// The frame holds this call's own expiry instant: equal bytes
			// are the value this call added.
			return mine != nil && bytes.Equal(e.item.Value, mine), nil
		}
		if !e.nsKnown {
			continue // the namespace key is gone: version() creates it
		}
		it.Value = frame(header{expires, e.nsVer}, val)
		it.CasID = e.item.CasID
		switch err := s.cas(ctx, l.slot, it); {
		case err == nil:
			return true, nil
		case errors.Is(err, memcache.ErrCASConflict), errors.Is(err, memcache.ErrNotStored), errors.Is(err, memcache.ErrCacheMiss):
			continue // changed meanwhile: look again
		default:
			return false, err
		}
	}
}

// Touch gives the live value under key a new ttl (negative: deletes it)
// without changing it, and reports whether the key was live. It rewrites
// the value with a compare-and-swap, so that the expiry GetWithExpiry
// returns stays true, and retries if the value changed meanwhile.
func (s *Store) Touch(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	return run(s, ctx, "touch", key, func(ctx context.Context) (bool, error) {
		l, err := s.locate(key)
		if err != nil {
			return false, err
		}
		for {
			if err := ctx.Err(); err != nil {
				return false, err
			}
			e, err := s.fetchOne(ctx, l)
			switch {
			case err != nil:
				return false, err
			case e.corrupt != nil:
				return false, e.corrupt
			case !e.live:
				return false, nil
			}
			it := e.item
			if ttl < 0 {
				// A negative expiration makes memcached expire the item at
				// once; with the CAS it removes exactly the value seen.
				it.Expiration = -1
			} else {
				var expires time.Time
				it.Expiration, expires = expiration(time.Now(), ttl)
				it.Value = frame(header{expires, e.h.version}, e.payload)
			}
			switch err := s.cas(ctx, l.slot, it); {
			case err == nil:
				return true, nil
			case errors.Is(err, memcache.ErrCASConflict):
				continue
			case errors.Is(err, memcache.ErrNotStored), errors.Is(err, memcache.ErrCacheMiss):
				return false, nil // expired or deleted meanwhile
			default:
				return false, err
			}
		}
	})
}

// IncrBy adds delta to the decimal integer stored under key and returns the
// new value, atomically across processes and keeping the key's expiry. It
// is a compare-and-swap loop (memcached's own incr is unsigned and clamps
// at zero): read, parse, write back if unchanged, else retry. It returns
// [cachekit.ErrMiss] when the key holds no live value, and
// [cachekit.ErrNotInteger] when the value is not a decimal int64 or the sum
// would overflow, leaving the value unchanged.
func (s *Store) IncrBy(ctx context.Context, key string, delta int64) (int64, error) {
	return run(s, ctx, "incr", key, func(ctx context.Context) (int64, error) {
		l, err := s.locate(key)
		if err != nil {
			return 0, err
		}
		for {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
			e, err := s.fetchOne(ctx, l)
			switch {
			case err != nil:
				return 0, err
			case e.corrupt != nil:
				return 0, e.corrupt
			case !e.live:
				return 0, cachekit.ErrMiss
			}
			cur, err := strconv.ParseInt(string(e.payload), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%q: %w", e.payload, cachekit.ErrNotInteger)
			}
			if delta > 0 && cur > math.MaxInt64-delta || delta < 0 && cur < math.MinInt64-delta {
				return 0, fmt.Errorf("%d + %d overflows int64: %w", cur, delta, cachekit.ErrNotInteger)
			}
			n := cur + delta
			it := e.item
			it.Value = frame(e.h, strconv.AppendInt(nil, n, 10))
			it.Expiration = remaining(time.Now(), e.h.expires)
			switch err := s.cas(ctx, l.slot, it); {
			case err == nil:
				return n, nil
			case errors.Is(err, memcache.ErrCASConflict), errors.Is(err, memcache.ErrNotStored), errors.Is(err, memcache.ErrCacheMiss):
				continue // changed, expired or deleted meanwhile: read again
			default:
				return 0, err
			}
		}
	})
}

// GetMany returns the live values among keys, leaving absent ones out, in
// one GetMulti: one request per server, in parallel. It fails as a whole
// (with no partial result) when any of the servers involved fails.
func (s *Store) GetMany(ctx context.Context, keys []string) (map[string][]byte, error) {
	return run(s, ctx, "get many", "", func(ctx context.Context) (map[string][]byte, error) {
		out := make(map[string][]byte, len(keys))
		if len(keys) == 0 {
			return out, nil
		}
		ls, err := s.locateAll(keys)
		if err != nil {
			return nil, err
		}
		es, err := s.fetch(ctx, ls)
		if err != nil {
			return nil, err
		}
		for i, e := range es {
			switch {
			case e.corrupt != nil:
				return nil, fmt.Errorf("key %q: %w", ls[i].key, e.corrupt)
			case e.live:
				out[ls[i].key] = e.payload
			}
		}
		return out, nil
	})
}

// SetMany stores a copy of every item for ttl, as Set does, with up to 16
// requests in flight (memcached has no multi-set). It checks every key and
// value before writing any, so a value too large stores nothing; a failure
// while writing can leave some items written.
func (s *Store) SetMany(ctx context.Context, items map[string][]byte, ttl time.Duration) error {
	_, err := run(s, ctx, "set many", "", func(ctx context.Context) (struct{}, error) {
		ls := make([]located, 0, len(items))
		vals := make([][]byte, 0, len(items))
		for k, v := range items {
			l, err := s.locate(k)
			if err != nil {
				return struct{}{}, fmt.Errorf("key %q: %w", k, err)
			}
			if ttl >= 0 {
				if err := s.checkSize(v); err != nil {
					return struct{}{}, fmt.Errorf("key %q: %w", k, err)
				}
			}
			ls, vals = append(ls, l), append(vals, v)
		}
		return struct{}{}, parallel(ctx, len(ls), func(i int) error {
			if err := s.setOne(ctx, ls[i], vals[i], ttl); err != nil {
				return fmt.Errorf("key %q: %w", ls[i].key, err)
			}
			return nil
		})
	})
	return err
}

// Clear retires every value of this Store's prefix, on every server, by
// moving each server's namespace version on (add if absent, then incr):
// from the moment Clear returns, no Get of any process returns a value
// written before it. The retired values stay in memory until memcached
// evicts them or they expire. With Options.FlushOnClear, Clear first sends
// flush_all to every server, which removes every key there, of every
// prefix. A server that cannot be reached makes Clear fail with
// [cachekit.ErrUnavailable]: the other servers are cleared, that one is
// not (unless it restarted, which empties it).
func (s *Store) Clear(ctx context.Context) error {
	_, err := run(s, ctx, "clear", "", func(ctx context.Context) (struct{}, error) {
		if s.flush {
			if err := s.retry(ctx, s.ns.all(), s.client.FlushAll); err != nil {
				return struct{}{}, fmt.Errorf("flush_all: %w", err)
			}
		}
		slots := s.ns.all()
		return struct{}{}, parallel(ctx, len(slots), func(i int) error {
			return s.bump(ctx, slots[i])
		})
	})
	return err
}

// bump moves the namespace version of sl on by one, creating it first if
// absent.
func (s *Store) bump(ctx context.Context, sl *slot) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		v0 := randomVersion()
		err := s.add(ctx, sl, &memcache.Item{Key: sl.key, Value: strconv.AppendUint(nil, v0, 10)})
		if err != nil && !errors.Is(err, memcache.ErrNotStored) {
			return fmt.Errorf("namespace key %q: %w", sl.key, err)
		}
		v, err := s.incr(ctx, sl, sl.key, 1)
		switch {
		case err == nil:
			sl.observe(time.Now(), v, true)
			return nil
		case !errors.Is(err, memcache.ErrCacheMiss):
			return fmt.Errorf("namespace key %q: %w", sl.key, err)
		}
		// Evicted between the add and the incr: again.
	}
}

// Lease takes an exclusive lease on key for ttl, across every process
// sharing the servers: it adds a random owner token under key (so ok is
// false while another lease, or any live value, occupies key). release
// reads the key and, if it still holds this token, expires it with a
// compare-and-swap on the version read, so it never frees a lease that
// expired and passed to another owner; calling it again is harmless. When
// ok is false, release is a no-op. A negative ttl takes no lease; zero
// means no expiry (a crashed owner then holds the lease until it is
// evicted).
func (s *Store) Lease(ctx context.Context, key string, ttl time.Duration) (release func(context.Context) error, ok bool, err error) {
	noop := func(context.Context) error { return nil }
	token := []byte(rand.Text())
	type leased struct {
		l  located
		ok bool
	}
	r, err := run(s, ctx, "lease", key, func(ctx context.Context) (leased, error) {
		l, err := s.locate(key)
		if err != nil || ttl < 0 {
			return leased{}, err
		}
		ok, err := s.addOne(ctx, l, token, ttl)
		return leased{l, ok}, err
	})
	if err != nil || !r.ok {
		return noop, false, err
	}
	release = func(ctx context.Context) error {
		_, err := run(s, ctx, "release", key, func(ctx context.Context) (struct{}, error) {
			return struct{}{}, s.release(ctx, r.l, token)
		})
		return err
	}
	return release, true, nil
}

// release expires the lease under l if it still holds token.
func (s *Store) release(ctx context.Context, l located, token []byte) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		it, err := s.get(ctx, l.slot, l.mkey)
		switch {
		case errors.Is(err, memcache.ErrCacheMiss):
			return nil
		case err != nil:
			return err
		}
		if _, payload, err := unframe(it.Value); err != nil || !bytes.Equal(payload, token) {
			return nil // another owner's lease, or another value: not ours to free
		}
		it.Expiration = -1
		switch err := s.cas(ctx, l.slot, it); {
		case err == nil, errors.Is(err, memcache.ErrNotStored), errors.Is(err, memcache.ErrCacheMiss):
			return nil
		case errors.Is(err, memcache.ErrCASConflict):
			continue // rewritten meanwhile (by a Touch?): look again
		default:
			return err
		}
	}
}
