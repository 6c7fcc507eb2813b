// Package codec turns typed Go values into bytes for the byte stores (disk,
// redis, memcached) and back.
//
// A [Codec] has a name, a Marshal and an Unmarshal. Three are provided:
//
//   - [Gob], encoding/gob: any Go value with exported fields, compact for
//     repeated structure, readable only by Go. The default for byte stores.
//   - [JSON], encoding/json: readable by other languages and by people.
//   - [Raw]: no encoding at all, for values that already are bytes or
//     strings; it shares memory instead of copying it.
//
// # Errors
//
// Marshal or Unmarshal of a type the codec cannot handle returns an error
// wrapping [ErrUnsupported]; so does Unmarshal into a nil or non-pointer
// target. Every decoding failure, whether garbage, truncated or empty input,
// trailing data or a type mismatch, returns an error wrapping [ErrDecode]
// and the underlying error. Unmarshal never panics: a panic raised while
// decoding (say by a caller's UnmarshalJSON) becomes an ErrDecode error.
//
// # Decoding fills the caller's type
//
// Decoding only ever fills the caller's type: no codec instantiates
// arbitrary types or runs code chosen by the stored bytes. Unmarshal writes
// into the value its pointer argument points to, and the only methods it
// calls are the decoding methods (GobDecode, UnmarshalJSON, UnmarshalBinary,
// UnmarshalText) of the caller's types and of types the program registered
// with gob. Interface values are where other formats let the data pick a
// type; here:
//
//   - Gob decodes an interface field only into a concrete type registered
//     with [gob.Register] (by this program, under that name); any other
//     type name fails with ErrDecode.
//   - JSON decodes an interface (any) into map[string]any, []any, float64,
//     string, bool or nil, never into a type named by the data.
//   - Raw fills only []byte and string kinds.
//
// # Caveats
//
// Raw aliases memory in both directions. Marshal of a []byte returns that
// very slice, and Marshal of a string returns the string's own bytes, which
// must never be written: Go strings are immutable and the runtime may place
// them in read-only memory. Unmarshal into a []byte or string keeps
// referring to data; a later write to data changes a string that was meant
// to be immutable. This is safe with cachekit's stores, which never modify
// the bytes they are given and return fresh slices the caller owns, but any
// code that calls Raw directly must follow the same two rules.
//
// Gob and JSON outputs are owned by the caller; Gob reuses internal buffers
// between calls but copies the result out of them.
//
// Gob carries type information in every value, so each encoding decodes
// alone but small values cost tens of bytes of overhead. Like encoding/gob
// itself, Gob is not hardened against hostile input. It does check element
// counts against the input length before creating maps, so that a corrupt
// count cannot allocate gigabytes; this costs a second, cheaper pass over
// the input when the target type contains a map (about half again the
// decoding time). Deeply nested recursive values, and maps inside values of
// registered interface types, are trusted. Use byte stores that only
// this program writes to, or JSON for bytes from elsewhere.
package codec
