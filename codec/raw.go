package codec

import (
	"fmt"
	"reflect"
	"unsafe"
)

// Raw passes bytes through without encoding or copying. Marshal accepts
// []byte, string, types whose underlying type is one of those, and non-nil
// pointers to any of them; Unmarshal accepts pointers to []byte, string and
// such named types. Everything else gives [ErrUnsupported]. Any bytes are a
// valid encoding, so Raw never returns [ErrDecode].
//
// WARNING: Raw shares memory instead of copying it. Marshal of a []byte
// returns that slice, Marshal of a string returns the string's own bytes
// (which must never be written), and Unmarshal into a string or []byte
// keeps referring to data. This is safe because stores never modify the
// bytes they are given and return fresh slices the caller owns; code that
// calls Raw directly must follow the same rules. See the package Caveats.
var Raw Codec = rawCodec{}

type rawCodec struct{}

// Name returns "raw".
func (rawCodec) Name() string { return "raw" }

// Marshal returns the bytes of v without copying them.
func (rawCodec) Marshal(v any) ([]byte, error) {
	switch v := v.(type) {
	case []byte:
		return v, nil
	case string:
		return stringBytes(v), nil
	case *[]byte:
		if v != nil {
			return *v, nil
		}
	case *string:
		if v != nil {
			return stringBytes(*v), nil
		}
	default:
		// Named types such as "type Token string", and pointers to them.
		rv := reflect.ValueOf(v)
		if rv.Kind() == reflect.Pointer && !rv.IsNil() {
			rv = rv.Elem()
		}
		switch {
		case rv.Kind() == reflect.String:
			return stringBytes(rv.String()), nil
		case isByteSlice(rv):
			return rv.Bytes(), nil
		}
	}
	return nil, fmt.Errorf("codec: raw: cannot marshal %T: %w", v, ErrUnsupported)
}

// Unmarshal makes the value v points to refer to data, without copying.
func (rawCodec) Unmarshal(data []byte, v any) error {
	switch p := v.(type) {
	case *[]byte:
		if p != nil {
			*p = data
			return nil
		}
	case *string:
		if p != nil {
			*p = bytesString(data)
			return nil
		}
	}
	rv, err := checkTarget("raw", v)
	if err != nil {
		return err
	}
	switch e := rv.Elem(); {
	case e.Kind() == reflect.String:
		e.SetString(bytesString(data))
		return nil
	case isByteSlice(e):
		e.SetBytes(data)
		return nil
	}
	return fmt.Errorf("codec: raw: cannot unmarshal into %T: %w", v, ErrUnsupported)
}

// isByteSlice reports whether v holds a []byte or a type defined from it
// (any slice whose element kind is uint8). v may be the zero Value.
func isByteSlice(v reflect.Value) bool {
	return v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8
}

// stringBytes returns the bytes of s without copying; they must not be
// modified.
func stringBytes(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// bytesString returns b as a string without copying; b must not be modified
// afterwards.
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}
