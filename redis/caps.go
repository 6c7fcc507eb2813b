package redis

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/cachekit/cachekit"
)

// Lua scripts for the operations Redis has no single command for. Each
// touches one key, so it runs on that key's node in a cluster.
var (
	// incrScript is INCRBY that refuses to create the key: the cachekit
	// contract wants ErrMiss for an absent key. INCRBY keeps the TTL.
	incrScript = rueidis.NewLuaScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
return redis.pcall('INCRBY', KEYS[1], ARGV[1])`)

	// persistScript removes a live key's TTL and reports whether the key
	// exists (PERSIST alone answers 0 both for an absent key and for a key
	// without a TTL).
	persistScript = rueidis.NewLuaScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('PERSIST', KEYS[1])
return 1`)

	// releaseScript deletes a lease only if it still holds the owner's
	// token, so a late release never frees the next owner's lease.
	releaseScript = rueidis.NewLuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

	// getExpiryScript reads a value and its remaining TTL atomically.
	getExpiryScript = rueidis.NewLuaScript(`
local v = redis.call('GET', KEYS[1])
if not v then return false end
return {v, redis.call('PTTL', KEYS[1])}`)
)

// Add stores val under key only if the key is absent (SET NX), and reports
// whether it stored. A negative ttl stores nothing and reports false.
func (s *Store) Add(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	rctx, cancel, err := s.begin(ctx, "add", key, true)
	if err != nil {
		return false, err
	}
	defer cancel()
	if err := s.checkValue("add", key, val); err != nil {
		return false, err
	}
	if ttl < 0 {
		return false, nil
	}
	err = s.client.Do(rctx, s.setCmd(key, val, ttl, true)).Error()
	switch {
	case err == nil:
		return true, nil
	case rueidis.IsRedisNil(err):
		return false, nil
	}
	return false, s.fail(ctx, "add", key, err)
}

// Touch gives a live key a new TTL (PEXPIRE; zero or [cachekit.NoExpiry]
// removes its TTL; negative deletes it) and reports whether the key was
// live.
func (s *Store) Touch(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	rctx, cancel, err := s.begin(ctx, "touch", key, true)
	if err != nil {
		return false, err
	}
	defer cancel()
	var r rueidis.RedisResult
	switch {
	case ttl < 0:
		r = s.client.Do(rctx, s.client.B().Unlink().Key(s.key(key)).Build())
	case noExpiry(ttl):
		r = persistScript.Exec(rctx, s.client, []string{s.key(key)}, nil)
	default:
		r = s.client.Do(rctx, s.client.B().Pexpire().Key(s.key(key)).Milliseconds(pxMillis(ttl)).Build())
	}
	n, err := r.AsInt64()
	if err != nil {
		return false, s.fail(ctx, "touch", key, err)
	}
	return n > 0, nil
}

// IncrBy adds delta to the decimal integer under key, atomically and
// keeping its TTL, and returns the new value. It returns an error wrapping
// [cachekit.ErrMiss] when the key is absent, and [cachekit.ErrNotInteger]
// when the value is not an integer by Redis's rules (decimal, no sign but
// '-', no leading zeros or spaces) or the result would overflow int64.
func (s *Store) IncrBy(ctx context.Context, key string, delta int64) (int64, error) {
	rctx, cancel, err := s.begin(ctx, "incr", key, true)
	if err != nil {
		return 0, err
	}
	defer cancel()
	n, err := incrScript.Exec(rctx, s.client, []string{s.key(key)}, []string{strconv.FormatInt(delta, 10)}).AsInt64()
	if err == nil {
		return n, nil
	}
	if rueidis.IsRedisNil(err) {
		return 0, s.opErr("incr", key, cachekit.ErrMiss)
	}
	if re, ok := rueidis.IsRedisErr(err); ok {
		if msg := re.Error(); strings.Contains(msg, "not an integer") || strings.Contains(msg, "overflow") ||
			strings.HasPrefix(msg, "WRONGTYPE") {
			return 0, s.opErr("incr", key, fmt.Errorf("%w: %w", cachekit.ErrNotInteger, err))
		}
	}
	return 0, s.fail(ctx, "incr", key, err)
}

// GetMany returns copies of the values of the keys that are present; absent
// keys are left out. One MGET on a standalone server; in a cluster, one
// pipelined GET per key, so keys in different or migrating slots never
// cause CROSSSLOT or TRYAGAIN errors. It is not a snapshot in a cluster:
// writes may interleave.
func (s *Store) GetMany(ctx context.Context, keys []string) (map[string][]byte, error) {
	rctx, cancel, err := s.begin(ctx, "getmany", "", false)
	if err != nil {
		return nil, err
	}
	defer cancel()
	for _, k := range keys {
		if k == "" {
			return nil, s.opErr("getmany", k, fmt.Errorf("%w: empty key", cachekit.ErrInvalidKey))
		}
	}
	out := make(map[string][]byte, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	full := s.keys(keys)
	var vals []rueidis.RedisResult
	if s.cluster {
		// One GET per key: a multi-key MGET fails with TRYAGAIN while its
		// slot is being migrated (TestReshard), and across slots with
		// CROSSSLOT.
		cmds := make(rueidis.Commands, len(keys))
		for i, k := range full {
			cmds[i] = s.client.B().Get().Key(k).Build()
		}
		vals = s.client.DoMulti(rctx, cmds...)
	} else {
		arr, err := s.client.Do(rctx, s.client.B().Mget().Key(full...).Build()).ToArray()
		if err != nil {
			return nil, s.fail(ctx, "getmany", "", err)
		}
		if len(arr) != len(keys) {
			return nil, s.opErr("getmany", "", fmt.Errorf("MGET returned %d values for %d keys", len(arr), len(keys)))
		}
		// Copy every value into one buffer (one allocation, not one per
		// value); each caller's slice is capped at its own length, so
		// appending to one never writes into the next.
		strs := make([]string, len(arr))
		n := 0
		for i := range arr {
			str, err := arr[i].ToString()
			switch {
			case err == nil:
				strs[i] = str
				n += len(str)
			case rueidis.IsRedisNil(err):
				strs[i] = ""
			default:
				return nil, s.fail(ctx, "getmany", keys[i], err)
			}
		}
		buf := make([]byte, 0, n)
		for i := range arr {
			if arr[i].IsNil() {
				continue
			}
			off := len(buf)
			buf = append(buf, strs[i]...)
			out[keys[i]] = buf[off:len(buf):len(buf)]
		}
		return out, nil
	}
	for i, r := range vals {
		str, err := r.ToString()
		if err != nil {
			if rueidis.IsRedisNil(err) {
				continue
			}
			return nil, s.fail(ctx, "getmany", keys[i], err)
		}
		out[keys[i]] = []byte(str)
	}
	return out, nil
}

// SetMany stores every item with the same ttl (store-level TTL semantics),
// pipelining one SET per key as GetMany does. A value larger than
// Options.MaxValueSize fails the whole call before anything is written. It
// is not atomic: after an error, some items may have been written.
func (s *Store) SetMany(ctx context.Context, items map[string][]byte, ttl time.Duration) error {
	rctx, cancel, err := s.begin(ctx, "setmany", "", false)
	if err != nil {
		return err
	}
	defer cancel()
	for k, v := range items {
		if k == "" {
			return s.opErr("setmany", k, fmt.Errorf("%w: empty key", cachekit.ErrInvalidKey))
		}
		if ttl >= 0 {
			if err := s.checkValue("setmany", k, v); err != nil {
				return err
			}
		}
	}
	if len(items) == 0 {
		return nil
	}
	keys := make([]string, 0, len(items))
	cmds := make(rueidis.Commands, 0, len(items))
	for k, v := range items {
		keys = append(keys, k)
		if ttl < 0 {
			cmds = append(cmds, s.client.B().Unlink().Key(s.key(k)).Build())
		} else {
			cmds = append(cmds, s.setCmd(k, v, ttl, false))
		}
	}
	for i, r := range s.client.DoMulti(rctx, cmds...) {
		if err := r.Error(); err != nil {
			return s.fail(ctx, "setmany", keys[i], err)
		}
	}
	return nil
}

// clearBatch is the SCAN COUNT of Clear.
const clearBatch = 1000

// Clear deletes every key under the Store's prefix, and only those: it
// walks each master node with SCAN MATCH <prefix>* (glob characters in the
// prefix escaped) and UNLINKs what it finds. It never runs FLUSHDB or
// FLUSHALL. Keys written during a Clear may survive it; in a cluster being
// resharded, a key that moves between nodes during the walk may be missed.
// Each round trip is bounded by Options.Timeout, not the whole Clear.
func (s *Store) Clear(ctx context.Context) error {
	rctx, cancel, err := s.begin(ctx, "clear", "", false)
	if err != nil {
		return err
	}
	nodes, err := s.masters(rctx)
	cancel()
	if err != nil {
		return s.fail(ctx, "clear", "", err)
	}
	pattern := escapeGlob(s.prefix) + "*"
	for _, node := range nodes {
		var cursor uint64
		for {
			if s.closed.Load() {
				return s.opErr("clear", "", cachekit.ErrClosed)
			}
			if err := ctx.Err(); err != nil {
				return s.opErr("clear", "", ctxErr(err))
			}
			rctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
			e, err := node.Do(rctx, node.B().Scan().Cursor(cursor).Match(pattern).Count(clearBatch).Build()).AsScanEntry()
			if err == nil && len(e.Elements) > 0 {
				err = s.unlinkRaw(rctx, e.Elements)
			}
			cancel()
			if err != nil {
				return s.fail(ctx, "clear", "", err)
			}
			if cursor = e.Cursor; cursor == 0 {
				break
			}
		}
	}
	return nil
}

// unlinkRaw deletes server keys (already prefixed), one command per key so
// that keys of different slots never share a command.
func (s *Store) unlinkRaw(ctx context.Context, keys []string) error {
	cmds := make(rueidis.Commands, len(keys))
	for i, k := range keys {
		cmds[i] = s.client.B().Unlink().Key(k).Build()
	}
	for _, r := range s.client.DoMulti(ctx, cmds...) {
		if err := r.Error(); err != nil {
			return err
		}
	}
	return nil
}

// escapeGlob escapes the characters special to Redis glob patterns (as in
// SCAN MATCH), so that the prefix matches only itself.
func escapeGlob(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '\\', '*', '?', '[', ']', '^', '-':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Lease takes an exclusive lease on key for ttl: SET key token NX PX ttl
// with a random token, in the same key space as values (a live value under
// key also makes ok false). release deletes key only if it still holds the
// token (compare-and-delete in a Lua script), so it never frees a lease that
// expired and passed to another owner; calling it twice is harmless. A
// negative ttl takes no lease; zero means no expiry (a crashed owner then
// holds the lease until someone deletes the key).
func (s *Store) Lease(ctx context.Context, key string, ttl time.Duration) (release func(context.Context) error, ok bool, err error) {
	noop := func(context.Context) error { return nil }
	token := "lease:" + rand.Text()
	ok, err = s.Add(ctx, key, []byte(token), ttl)
	if err != nil {
		var oe *cachekit.OpError
		if errors.As(err, &oe) {
			oe.Op = "lease"
		}
		return noop, false, err
	}
	if !ok {
		return noop, false, nil
	}
	release = func(ctx context.Context) error {
		rctx, cancel, err := s.begin(ctx, "release", key, true)
		if err != nil {
			return err
		}
		defer cancel()
		if err := releaseScript.Exec(rctx, s.client, []string{s.key(key)}, []string{token}).Error(); err != nil {
			return s.fail(ctx, "release", key, err)
		}
		return nil
	}
	return release, true, nil
}

// GetWithExpiry returns a copy of the value under key and its absolute
// expiry (the zero time if it has none), read atomically in one round trip.
// The expiry is computed from the remaining TTL the server reports and the
// local time the request was sent, so it errs early, never late.
func (s *Store) GetWithExpiry(ctx context.Context, key string) ([]byte, time.Time, error) {
	rctx, cancel, err := s.begin(ctx, "get", key, true)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer cancel()
	sent := time.Now()
	arr, err := getExpiryScript.Exec(rctx, s.client, []string{s.key(key)}, nil).ToArray()
	if err != nil {
		if rueidis.IsRedisNil(err) {
			return nil, time.Time{}, s.opErr("get", key, cachekit.ErrMiss)
		}
		return nil, time.Time{}, s.fail(ctx, "get", key, err)
	}
	if len(arr) != 2 {
		return nil, time.Time{}, s.opErr("get", key, fmt.Errorf("unexpected reply of %d elements", len(arr)))
	}
	str, err := arr[0].ToString()
	if err != nil {
		return nil, time.Time{}, s.fail(ctx, "get", key, err)
	}
	pttl, err := arr[1].AsInt64()
	if err != nil {
		return nil, time.Time{}, s.fail(ctx, "get", key, err)
	}
	var exp time.Time
	switch {
	case pttl >= 0:
		exp = sent.Add(time.Duration(pttl) * time.Millisecond)
	case pttl == -2: // expired between GET and PTTL: cannot happen in one script
		return nil, time.Time{}, s.opErr("get", key, cachekit.ErrMiss)
	}
	return []byte(str), exp, nil
}

// keys maps callers' keys to server keys with one allocation for all of
// them (substrings of one string), not one per key.
func (s *Store) keys(keys []string) []string {
	n := 0
	for _, k := range keys {
		n += len(s.prefix) + len(k)
	}
	var b strings.Builder
	b.Grow(n)
	for _, k := range keys {
		b.WriteString(s.prefix)
		b.WriteString(k)
	}
	all := b.String()
	full := make([]string, len(keys))
	off := 0
	for i, k := range keys {
		l := len(s.prefix) + len(k)
		full[i] = all[off : off+l]
		off += l
	}
	return full
}
