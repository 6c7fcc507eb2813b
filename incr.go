package cachekit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
)

// Integer is the set of types [Incr] and [Decr] work on.
type Integer interface {
	~int | ~int8 | ~int16 | ~int32 | ~int64 | ~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~uintptr
}

// Incr adds delta to the integer under key and returns the new value,
// keeping the key's TTL. It returns an error wrapping [ErrMiss] when the key
// is absent (Django raises ValueError) and [ErrNotInteger] when the result
// does not fit V or int64. It is atomic on the object tier and on stores
// that are a [Counter]; otherwise it reads, adds and writes, which is not.
func Incr[V Integer](ctx context.Context, c *Cache[V], key string, delta V) (V, error) {
	d := int64(delta)
	if delta > 0 && d < 0 { // an unsigned delta beyond int64
		return 0, opErr("incr", key, ErrNotInteger)
	}
	return incrBy(ctx, c, key, d)
}

// Decr subtracts delta from the integer under key; see [Incr].
func Decr[V Integer](ctx context.Context, c *Cache[V], key string, delta V) (V, error) {
	d := int64(delta)
	if (delta > 0 && d < 0) || d == math.MinInt64 { // -d would not fit int64
		return 0, opErr("decr", key, ErrNotInteger)
	}
	return incrBy(ctx, c, key, -d)
}

// fit converts n to V, failing when it does not fit.
func fit[V Integer](n int64) (V, error) {
	v := V(n)
	if int64(v) != n || (v < 0) != (n < 0) {
		return 0, fmt.Errorf("%w: %d overflows %s", ErrNotInteger, n, reflect.TypeFor[V]())
	}
	return v, nil
}

func add64(a, b int64) (int64, error) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, fmt.Errorf("%w: %d%+d overflows int64", ErrNotInteger, a, b)
	}
	return s, nil
}

func incrBy[V Integer](ctx context.Context, c *Cache[V], key string, delta int64) (V, error) {
	if err := c.check(ctx); err != nil {
		return 0, opErr("incr", key, err)
	}
	k, err := c.Key(key)
	if err != nil {
		return 0, err
	}
	if c.values != nil {
		nv, err := c.values.UpdateValue(ctx, k, func(old any) (any, error) {
			e, err := asEntry[V](old)
			if err != nil {
				return nil, err
			}
			n, err := add64(int64(e.Value), delta)
			if err != nil {
				return nil, err
			}
			v, err := fit[V](n)
			if err != nil {
				return nil, err
			}
			ne := *e
			ne.Value = v
			return &ne, nil
		})
		if err != nil {
			return 0, opErr("incr", key, err)
		}
		return nv.(*Entry[V]).Value, nil
	}
	if ctr, ok := c.store.(Counter); ok {
		n, err := ctr.IncrBy(ctx, k, delta)
		if err != nil {
			return 0, opErr("incr", key, err)
		}
		v, err := fit[V](n)
		if err != nil {
			// The store's counter is int64; V is narrower. Take the step back
			// so that the stored value still fits V (not atomic with the
			// first step: another increment may have come in between).
			if _, uerr := ctr.IncrBy(ctx, k, -delta); uerr != nil {
				err = errors.Join(err, uerr)
			}
		}
		return v, wrapErr("incr", key, err)
	}
	// Fallback: read, add, write; not atomic.
	e, ttl, err := c.readWithTTL(ctx, k)
	if err != nil {
		return 0, opErr("incr", key, err)
	}
	n, err := add64(int64(e.Value), delta)
	if err != nil {
		return 0, opErr("incr", key, err)
	}
	v, err := fit[V](n)
	if err != nil {
		return 0, opErr("incr", key, err)
	}
	e.Value = v
	return v, wrapErr("incr", key, c.write(ctx, k, e, ttl))
}

// intText formats an integer-kind value as decimal text.
func intText(v any) []byte {
	rv := reflect.ValueOf(v)
	if rv.CanInt() {
		return strconv.AppendInt(nil, rv.Int(), 10)
	}
	return strconv.AppendUint(nil, rv.Uint(), 10)
}

// setInt parses decimal text into *p, an integer kind.
func setInt(p any, text []byte) error {
	rv := reflect.ValueOf(p).Elem()
	if rv.CanInt() {
		n, err := strconv.ParseInt(string(text), 10, 64)
		if err != nil || rv.OverflowInt(n) {
			return errors.Join(fmt.Errorf("%w: bare integer %q does not fit %s", ErrCorrupt, text, rv.Type()), err)
		}
		rv.SetInt(n)
		return nil
	}
	n, err := strconv.ParseUint(string(text), 10, 64)
	if err != nil || rv.OverflowUint(n) {
		return errors.Join(fmt.Errorf("%w: bare integer %q does not fit %s", ErrCorrupt, text, rv.Type()), err)
	}
	rv.SetUint(n)
	return nil
}
