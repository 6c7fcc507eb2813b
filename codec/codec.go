package codec

import (
	"errors"
	"fmt"
	"reflect"
)

// Codec encodes values for byte stores. Implementations are safe for
// concurrent use.
//
// Marshal returns an error wrapping [ErrUnsupported] when the codec cannot
// represent v. Unmarshal decodes data into v, which must be a non-nil
// pointer to the caller's type; it returns an error wrapping
// [ErrUnsupported] when v is nil, not a pointer, or points to a type the
// codec cannot fill, and an error wrapping [ErrDecode] when data is not a
// valid encoding for that type. Unmarshal never panics, whatever data
// holds.
type Codec interface {
	// Name returns the codec's short name: "gob", "json" or "raw".
	Name() string

	// Marshal returns the encoding of v. The caller owns the returned slice,
	// except that [Raw] returns the bytes of v itself.
	Marshal(v any) ([]byte, error)

	// Unmarshal decodes data into the value v points to. It does not modify
	// data; [Raw] keeps referring to it.
	Unmarshal(data []byte, v any) error
}

// ErrUnsupported reports a value or target type the codec cannot handle,
// such as an int given to [Raw], a channel given to [JSON], or an Unmarshal
// target that is nil or not a pointer.
var ErrUnsupported = errors.New("codec: unsupported type")

// ErrDecode reports bytes that are not a valid encoding for the target
// type: garbage, truncated or empty input, trailing data, or a type
// mismatch. Every decoding failure wraps ErrDecode together with the
// underlying error, so errors.Is and errors.As see both.
var ErrDecode = errors.New("codec: cannot decode")

// checkTarget returns v as a reflect.Value after checking that it is a
// non-nil pointer, the one thing every Unmarshal requires.
func checkTarget(name string, v any) (reflect.Value, error) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer {
		return reflect.Value{}, fmt.Errorf("codec: %s: Unmarshal into non-pointer %T: %w", name, v, ErrUnsupported)
	}
	if rv.IsNil() {
		return reflect.Value{}, fmt.Errorf("codec: %s: Unmarshal into nil %T: %w", name, v, ErrUnsupported)
	}
	return rv, nil
}

// recoverDecode turns a panic during decoding, such as one raised by a
// caller's GobDecode or UnmarshalJSON method, into an error wrapping
// ErrDecode. Use it as "defer recoverDecode(name, &err)": recover only
// works in the deferred call itself.
func recoverDecode(name string, err *error) {
	r := recover()
	if r == nil {
		return
	}
	if e, ok := r.(error); ok {
		*err = fmt.Errorf("codec: %s: %w: panic: %w", name, ErrDecode, e)
		return
	}
	*err = fmt.Errorf("codec: %s: %w: panic: %v", name, ErrDecode, r)
}
