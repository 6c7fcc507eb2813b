package memory

import (
	"reflect"
	"sync/atomic"
	"unsafe"
)

// This file lets a write replace the value of a published node in place
// when the value is one machine word: a pointer (the usual object-cache
// value), a map, a channel, or an 8-byte number on a 64-bit platform.
// Readers then load the value with an atomic load, so they never see a
// torn value, and the writer (holding c.mu) stores it atomically. Any
// other value type is never written after publication: a write publishes
// a new node instead (see publish). In-place writes save the allocation,
// the index store and the policy relink of a replacement; they apply only
// when the expiry and the weight stay the same (those fields are read
// without atomics).

// valueKind tells how a value of type V can be stored in place.
type valueKind uint8

const (
	valueOther   valueKind = iota // never written after publication
	valuePointer                  // one pointer word: atomic pointer load/store
	valueWord                     // one 8-byte number: atomic 64-bit load/store
)

func valueKindOf[V any]() valueKind {
	t := reflect.TypeFor[V]()
	switch t.Kind() {
	case reflect.Pointer, reflect.UnsafePointer, reflect.Map, reflect.Chan:
		return valuePointer
	case reflect.Int, reflect.Int64, reflect.Uint, reflect.Uint64, reflect.Uintptr, reflect.Float64:
		// 64-bit atomics need 8-byte alignment, which only 64-bit
		// platforms guarantee for a struct field.
		if t.Size() == 8 && unsafe.Sizeof(uintptr(0)) == 8 {
			return valueWord
		}
	}
	return valueOther
}

// valueOf returns n's value; safe without c.mu.
func (c *core[K, V]) valueOf(n *node[K, V]) V {
	switch c.vkind {
	case valuePointer:
		p := atomic.LoadPointer((*unsafe.Pointer)(unsafe.Pointer(&n.value)))
		return *(*V)(unsafe.Pointer(&p))
	case valueWord:
		x := atomic.LoadUint64((*uint64)(unsafe.Pointer(&n.value)))
		return *(*V)(unsafe.Pointer(&x))
	}
	return n.value
}

// storeValue replaces n's value in place. c.vkind must not be valueOther;
// c.mu must be held.
func (c *core[K, V]) storeValue(n *node[K, V], v V) {
	switch c.vkind {
	case valuePointer:
		atomic.StorePointer((*unsafe.Pointer)(unsafe.Pointer(&n.value)), *(*unsafe.Pointer)(unsafe.Pointer(&v)))
	case valueWord:
		atomic.StoreUint64((*uint64)(unsafe.Pointer(&n.value)), *(*uint64)(unsafe.Pointer(&v)))
	default:
		panic("memory: storeValue of a value that is not one word")
	}
}

// inPlace reports whether old can take value v in place: one-word values,
// same weight, and no expiry on either side (a new expiry means a new
// node).
func (c *core[K, V]) inPlace(old *node[K, V], w uint32, expiresZero bool) bool {
	return c.vkind != valueOther && old.weight == w && expiresZero && old.expires == 0
}
