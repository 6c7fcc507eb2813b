package cachekit

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"unicode/utf8"
)

// KeyFunc builds the full store key from the caller's key, the cache's
// prefix and its version, as Django's KEY_FUNCTION does. [DefaultKeyFunc]
// is used when Options.KeyFunc is nil.
type KeyFunc func(key, prefix string, version int) string

// DefaultKeyFunc joins prefix, version and key with ':' (Django's default
// "prefix:version:key").
func DefaultKeyFunc(key, prefix string, version int) string {
	return prefix + ":" + strconv.Itoa(version) + ":" + key
}

// KeyPolicy maps a full key to the key the store receives, or refuses it
// with an error wrapping [ErrInvalidKey]. A policy must be deterministic and
// should keep distinct keys distinct. A nil policy passes keys unchanged:
// that is the memory tier's policy (no key validation at all).
type KeyPolicy func(key string) (string, error)

// MemcachedMaxKeyLen is the longest key memcached accepts.
const MemcachedMaxKeyLen = 250

// memcachedHead is how much of a rewritten key stays readable: the rest of
// the 250 bytes is "-" and 64 hex digits of SHA-256.
const memcachedHead = MemcachedMaxKeyLen - 1 - sha256.Size*2

// MemcachedKey is the memcached-safe [KeyPolicy]. A key of at most 250 bytes
// with no control characters, spaces or DEL passes unchanged. Any other key
// keeps a readable head (at most 185 bytes, unsafe bytes replaced by '_',
// cut on a UTF-8 boundary) followed by "-" and the SHA-256 hex of the whole
// original key, so the result is safe, at most 250 bytes, and distinct keys
// stay distinct. A safe short key that already ends like a rewritten one
// ("-" and 64 lowercase hex digits) is rewritten too, so that no key can be
// crafted to equal another key's rewritten form: the mapping is one-to-one.
// The empty key is refused.
func MemcachedKey(key string) (string, error) {
	if key == "" {
		return "", &OpError{Op: "key", Backend: "cachekit", Err: ErrInvalidKey}
	}
	if len(key) <= MemcachedMaxKeyLen && memcachedSafe(key) && !memcachedHashed(key) {
		return key, nil
	}
	cut := min(len(key), memcachedHead)
	// Do not cut a multi-byte character in half: back off (at most three
	// bytes) to the start of the character that straddles the cut.
	for i := 0; i < utf8.UTFMax-1 && cut < len(key) && cut > 0 && !utf8.RuneStart(key[cut]); i++ {
		cut--
	}
	head := []byte(key[:cut])
	for i, c := range head {
		if c <= ' ' || c == 0x7f {
			head[i] = '_'
		}
	}
	sum := sha256.Sum256([]byte(key))
	out := make([]byte, 0, len(head)+1+sha256.Size*2)
	out = append(out, head...)
	out = append(out, '-')
	out = hex.AppendEncode(out, sum[:])
	return string(out), nil
}

// memcachedHashed reports whether key ends like a key MemcachedKey
// rewrote: "-" and 64 lowercase hex digits.
func memcachedHashed(key string) bool {
	const tail = 1 + 2*sha256.Size
	if len(key) < tail || key[len(key)-tail] != '-' {
		return false
	}
	for i := len(key) - tail + 1; i < len(key); i++ {
		if c := key[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func memcachedSafe(key string) bool {
	for i := 0; i < len(key); i++ {
		if c := key[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}
