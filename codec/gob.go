package codec

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"reflect"
	"sync"
)

// Gob encodes with encoding/gob, one self-contained stream per value: type
// information travels with every value, so any single encoding decodes on
// its own. It is the default codec for byte stores.
//
// Marshal reports every encoding failure (a channel or function, a struct
// without exported fields, a nil pointer) as [ErrUnsupported], keeping the
// gob error, since gob does not tell type errors from value errors.
// Unmarshal rejects trailing bytes after the value. Interface values decode
// only into concrete types registered with [gob.Register].
var Gob Codec = gobCodec{}

type gobCodec struct{}

// maxPooledBuffer bounds the buffers kept in gobBuffers, so that one huge
// value does not pin its buffer for the life of the process.
const maxPooledBuffer = 64 << 10

// gobBuffers recycles encoding buffers. Marshal copies the result out, so a
// pooled buffer is never shared with a caller.
var gobBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Name returns "gob".
func (gobCodec) Name() string { return "gob" }

// Marshal encodes v as a gob stream holding v's type and value.
func (gobCodec) Marshal(v any) ([]byte, error) {
	// gob panics on a nil pointer instead of returning an error.
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && rv.IsNil() {
		return nil, fmt.Errorf("codec: gob: cannot marshal nil %T: %w", v, ErrUnsupported)
	}
	buf := gobBuffers.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxPooledBuffer {
			gobBuffers.Put(buf)
		}
	}()
	if err := gob.NewEncoder(buf).Encode(v); err != nil {
		return nil, fmt.Errorf("codec: gob: %w: %w", ErrUnsupported, err)
	}
	return bytes.Clone(buf.Bytes()), nil
}

// Unmarshal decodes one gob stream into v, which must be a non-nil pointer.
func (gobCodec) Unmarshal(data []byte, v any) (err error) {
	rv, err := checkTarget("gob", v)
	if err != nil {
		return err
	}
	defer recoverDecode("gob", &err)

	// gob sizes a new map from the element count in the stream before
	// reading any element, so a corrupt count of a few bytes can allocate
	// gigabytes. Skipping the value first checks every count against the
	// bytes actually present, without allocating, so the real decode
	// below only sees counts backed by data.
	if gobHasMap(rv.Type().Elem()) {
		if err := gob.NewDecoder(bytes.NewReader(data)).DecodeValue(reflect.Value{}); err != nil {
			return fmt.Errorf("codec: gob: %w: %w", ErrDecode, err)
		}
	}
	r := bytes.NewReader(data)
	if err := gob.NewDecoder(r).Decode(v); err != nil {
		return fmt.Errorf("codec: gob: %w: %w", ErrDecode, err)
	}
	// bytes.Reader is an io.ByteReader, so the decoder did not read ahead:
	// whatever is left follows the value.
	if n := r.Len(); n != 0 {
		return fmt.Errorf("codec: gob: %w: %d bytes of trailing data", ErrDecode, n)
	}
	return nil
}

// gobMapTypes caches gobHasMap per target type (reflect.Type to bool), as
// encoding/json caches its encoders. sync.Map guards itself.
var gobMapTypes sync.Map

// gobHasMap reports whether decoding into t may create a map, in t itself
// or in anything gob reaches through exported fields, pointers, slices and
// arrays. Maps inside interface values are not counted: the skipping pass
// cannot look inside those, and they hold only registered types.
func gobHasMap(t reflect.Type) bool {
	if has, ok := gobMapTypes.Load(t); ok {
		return has.(bool)
	}
	has := containsMap(t, make(map[reflect.Type]bool))
	gobMapTypes.Store(t, has)
	return has
}

func containsMap(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return false // a recursive type: its maps, if any, are found elsewhere
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Map:
		return true
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return containsMap(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() && containsMap(f.Type, seen) {
				return true
			}
		}
	}
	return false
}
