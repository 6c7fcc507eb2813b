package memcached

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/cachekit/cachekit"
)

// Keys. A caller's key k becomes prefix + ":" + k, passed through
// cachekit.MemcachedKey (long or unsafe keys keep a readable head plus "-"
// and the SHA-256 hex of the whole key; a key that already looks like that
// is rewritten too, so the mapping is one-to-one). Namespace keys are
// prefix + "#ns" + n; the prefix holds neither ':' nor '#', so keys of
// different prefixes, and value and namespace keys, never meet.

// storeKey maps a caller's key to the memcached key, or refuses it with an
// error wrapping cachekit.ErrInvalidKey (only the empty key is refused).
func storeKey(prefix, key string) (string, error) {
	if key == "" {
		return "", fmt.Errorf("empty key: %w", cachekit.ErrInvalidKey)
	}
	return cachekit.MemcachedKey(prefix + ":" + key)
}

// nsKey is the name of the n-th candidate namespace key of prefix.
func nsKey(prefix string, n int) string {
	return prefix + "#ns" + strconv.Itoa(n)
}

// Frames. Every value is stored as a 17-byte header and the caller's bytes:
//
//	byte 0      frameMagic
//	bytes 1-8   absolute expiry, Unix nanoseconds, big-endian (0: none)
//	bytes 9-16  namespace version the writer saw, big-endian
//	bytes 17-   payload

const (
	frameMagic = 0xCB
	frameLen   = 17
)

// header is a decoded frame header.
type header struct {
	expires time.Time // zero: never
	version uint64
}

// frame returns a new slice holding the header and a copy of payload.
func frame(h header, payload []byte) []byte {
	b := make([]byte, frameLen+len(payload))
	b[0] = frameMagic
	if !h.expires.IsZero() {
		binary.BigEndian.PutUint64(b[1:], uint64(h.expires.UnixNano()))
	}
	binary.BigEndian.PutUint64(b[9:], h.version)
	copy(b[frameLen:], payload)
	return b
}

// unframe splits b into its header and payload (a subslice of b). Bytes
// not written by this package give an error wrapping cachekit.ErrCorrupt.
func unframe(b []byte) (header, []byte, error) {
	if len(b) < frameLen || b[0] != frameMagic {
		return header{}, nil, fmt.Errorf("%d bytes without a cachekit frame: %w", len(b), cachekit.ErrCorrupt)
	}
	var h header
	if ns := int64(binary.BigEndian.Uint64(b[1:])); ns != 0 {
		h.expires = time.Unix(0, ns)
	}
	h.version = binary.BigEndian.Uint64(b[9:])
	return h, b[frameLen:], nil
}

// TTL. A value expires at the instant recorded in its frame, by the clock
// of the process reading it. memcached counts expiry in whole seconds of its
// own clock and may end the current second at any moment, so it is asked
// to keep the item for the TTL rounded up to whole seconds plus one: it
// never drops a value before its recorded expiry, and frees it less than
// two seconds after. Beyond 30 days memcached reads the expiry as an
// absolute Unix time, which ends in January 2038 (int32): later expiries
// are capped there.

// maxRelative is memcached's REALTIME_MAXDELTA: larger expiries are Unix
// times.
const maxRelative = 30 * 24 * 60 * 60

// expiration converts a store-level ttl (not negative) into the memcached
// expiration and the absolute expiry recorded in the frame (zero: never).
func expiration(now time.Time, ttl time.Duration) (int32, time.Time) {
	if ttl == 0 || ttl == cachekit.NoExpiry {
		return 0, time.Time{}
	}
	secs := int64(ttl / time.Second)
	if ttl%time.Second != 0 {
		secs++
	}
	if secs+1 <= maxRelative {
		return int32(secs + 1), now.Add(ttl)
	}
	unix := now.Unix() + secs + 1 // secs < 2^34: no overflow
	if unix >= math.MaxInt32 {
		return math.MaxInt32, time.Unix(math.MaxInt32, 0)
	}
	return int32(unix), now.Add(ttl)
}

// remaining is the memcached expiration that keeps an item until expires
// (zero: never), for a rewrite that must keep the item's TTL. An expiry
// already past, by this host's clock, still gets one second: the rewrite
// keeps what memcached would have kept.
func remaining(now, expires time.Time) int32 {
	if expires.IsZero() {
		return 0
	}
	d := expires.Sub(now)
	if d < time.Second {
		d = time.Second
	}
	exp, _ := expiration(now, d)
	return exp
}
