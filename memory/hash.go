package memory

import (
	"hash/maphash"
	"reflect"
	"unsafe"
)

// hasher returns the 64-bit hash function used for keys of type K. Keys
// whose underlying type is an integer or a string get a specialized
// function (a multiply-xorshift mix of the integer, maphash.String of the
// string); any other comparable type falls back to maphash.Comparable. The
// choice is made once, from K's kind, so the hot path carries no type
// switch. Every function is seeded per cache. (The most common case,
// 8-byte integers, is also inlined by keyHasher.)
//
// The index uses both ends of the hash (top bits pick the shard, low bits
// the slot), so the integer mix must spread every input bit over the whole
// word; splitmix64's finalizer does.
func hasher[K comparable](seed maphash.Seed) func(K) uint64 {
	s := intSeed(seed)
	t := reflect.TypeFor[K]()
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		switch t.Size() {
		case 8:
			return func(k K) uint64 { return mix64(*(*uint64)(unsafe.Pointer(&k)) ^ s) }
		case 4:
			return func(k K) uint64 { return mix64(uint64(*(*uint32)(unsafe.Pointer(&k))) ^ s) }
		case 2:
			return func(k K) uint64 { return mix64(uint64(*(*uint16)(unsafe.Pointer(&k))) ^ s) }
		case 1:
			return func(k K) uint64 { return mix64(uint64(*(*uint8)(unsafe.Pointer(&k))) ^ s) }
		}
	case reflect.String:
		return func(k K) uint64 { return maphash.String(seed, *(*string)(unsafe.Pointer(&k))) }
	}
	return func(k K) uint64 { return maphash.Comparable(seed, k) }
}

// mix64 is the splitmix64 finalizer: a bijection whose every output bit
// depends on every input bit.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// intSeed is the per-cache seed integer keys are mixed with.
func intSeed(seed maphash.Seed) uint64 { return maphash.Comparable(seed, uint64(0x9e3779b97f4a7c15)) }

// keyHasher hashes keys: 8-byte integer keys inline, without the indirect
// call to fn.
type keyHasher[K comparable] struct {
	fn   func(K) uint64
	word bool   // K is an 8-byte integer: hash is mix64(key ^ seed)
	seed uint64 // the integer seed used by fn for word keys
}

func newKeyHasher[K comparable](seed maphash.Seed) keyHasher[K] {
	t := reflect.TypeFor[K]()
	word := false
	switch t.Kind() {
	case reflect.Int, reflect.Int64, reflect.Uint, reflect.Uint64, reflect.Uintptr:
		word = t.Size() == 8
	}
	return keyHasher[K]{fn: hasher[K](seed), word: word, seed: intSeed(seed)}
}

// hash returns the key's hash, never 0 (0 marks a never-used index slot).
func (h *keyHasher[K]) hash(key K) uint64 {
	var x uint64
	if h.word {
		x = mix64(*(*uint64)(unsafe.Pointer(&key)) ^ h.seed)
	} else {
		x = h.fn(key)
	}
	if x == 0 {
		x = 1
	}
	return x
}
