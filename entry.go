package cachekit

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Entry is the envelope every value travels in. [Cache] wraps each value in
// one before it reaches the store, so that stale-while-revalidate,
// probabilistic early refresh, negative caching and O(1) group invalidation
// work the same on every store: they read only the envelope.
//
// The object tier keeps the Entry itself, with the Go value inside; byte
// stores keep its binary form (a small header, then the codec's bytes).
type Entry[V any] struct {
	// Value is the cached value.
	Value V

	// Created is when the value was written.
	Created time.Time

	// FreshUntil is when the value turns stale; the zero time means it stays
	// fresh until it expires. Between FreshUntil and Expires a stale value
	// may still be served (stale-while-revalidate, stale-if-error).
	FreshUntil time.Time

	// Expires is the hard expiry recorded at write time; zero means never. A
	// Touch since the write changes the store's expiry, not this field.
	Expires time.Time

	// ComputeTime is how long the value took to compute (XFetch's δ); zero
	// when the value was set directly.
	ComputeTime time.Duration

	// Negative marks a cached absence ("not found" remembered for a while).
	Negative bool

	// Stamps are the group generations the value was filled under; the value
	// is valid only while every group still has the same generation.
	Stamps []Stamp
}

// Stamp records the generation of one invalidation group at fill time.
type Stamp struct {
	Group string
	Gen   uint64
}

// Envelope wire format (version 1), all integers varint-encoded:
//
//	0xCE 0x01 flags created freshUntil expires computeTime nStamps
//	{len(group) group gen}*  payload
//
// Times are Unix nanoseconds, 0 for the zero time. The magic byte 0xCE is
// never the first byte of a bare decimal integer, so both forms can share a
// key space (see [Cache] on integer values).
const (
	envMagic   = 0xCE
	envVersion = 1

	flagNegative = 1 << 0

	// maxStamps bounds decoding work on damaged input.
	maxStamps = 1 << 12
)

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// appendEnvelope appends the envelope header of e (without its value)
// followed by payload.
func appendEnvelope[V any](dst []byte, e *Entry[V], payload []byte) []byte {
	var flags byte
	if e.Negative {
		flags |= flagNegative
	}
	dst = append(dst, envMagic, envVersion, flags)
	dst = binary.AppendVarint(dst, unixNano(e.Created))
	dst = binary.AppendVarint(dst, unixNano(e.FreshUntil))
	dst = binary.AppendVarint(dst, unixNano(e.Expires))
	dst = binary.AppendVarint(dst, int64(e.ComputeTime))
	dst = binary.AppendUvarint(dst, uint64(len(e.Stamps)))
	for _, s := range e.Stamps {
		dst = binary.AppendUvarint(dst, uint64(len(s.Group)))
		dst = append(dst, s.Group...)
		dst = binary.AppendUvarint(dst, s.Gen)
	}
	return append(dst, payload...)
}

// isEnvelope reports whether b starts like an envelope.
func isEnvelope(b []byte) bool { return len(b) > 0 && b[0] == envMagic }

// decodeEnvelope fills every field of e except Value and returns the
// payload (a subslice of b). Damaged input gives an error wrapping
// ErrCorrupt, never a panic.
func decodeEnvelope[V any](b []byte, e *Entry[V]) (payload []byte, err error) {
	corrupt := func(what string) error {
		return fmt.Errorf("%w: envelope: %s", ErrCorrupt, what)
	}
	if len(b) < 3 || b[0] != envMagic {
		return nil, corrupt("bad magic")
	}
	if b[1] != envVersion {
		return nil, corrupt(fmt.Sprintf("unknown version %d", b[1]))
	}
	e.Negative = b[2]&flagNegative != 0
	b = b[3:]
	var ints [4]int64
	for i := range ints {
		v, n := binary.Varint(b)
		if n <= 0 {
			return nil, corrupt("truncated header")
		}
		ints[i], b = v, b[n:]
	}
	e.Created, e.FreshUntil, e.Expires = fromUnixNano(ints[0]), fromUnixNano(ints[1]), fromUnixNano(ints[2])
	e.ComputeTime = time.Duration(ints[3])
	ns, n := binary.Uvarint(b)
	if n <= 0 || ns > maxStamps {
		return nil, corrupt("bad stamp count")
	}
	b = b[n:]
	e.Stamps = nil
	if ns > 0 {
		e.Stamps = make([]Stamp, 0, ns)
	}
	for range ns {
		l, n := binary.Uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return nil, corrupt("truncated stamp")
		}
		group := string(b[n : n+int(l)])
		b = b[n+int(l):]
		gen, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, corrupt("truncated stamp")
		}
		b = b[n:]
		e.Stamps = append(e.Stamps, Stamp{Group: group, Gen: gen})
	}
	return b, nil
}
