package codec

import (
	"encoding/json"
	"errors"
	"fmt"
)

// JSON encodes with encoding/json. Its output is readable by other
// languages and by people, at the price of size and speed; []byte values
// travel as base64 strings, and decoding into an interface (any) yields
// map[string]any, []any, float64, string, bool or nil.
//
// Marshal reports values JSON cannot represent (channels, functions,
// complex numbers, NaN and infinities, cyclic values) as [ErrUnsupported].
// Unmarshal rejects trailing data after the value.
var JSON Codec = jsonCodec{}

type jsonCodec struct{}

// Name returns "json".
func (jsonCodec) Name() string { return "json" }

// Marshal returns the JSON encoding of v.
func (jsonCodec) Marshal(v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		var typeErr *json.UnsupportedTypeError
		var valueErr *json.UnsupportedValueError
		if errors.As(err, &typeErr) || errors.As(err, &valueErr) {
			return nil, fmt.Errorf("codec: json: %w: %w", ErrUnsupported, err)
		}
		return nil, fmt.Errorf("codec: json: %w", err)
	}
	return data, nil
}

// Unmarshal decodes one JSON value into v, which must be a non-nil pointer.
func (jsonCodec) Unmarshal(data []byte, v any) (err error) {
	if _, err := checkTarget("json", v); err != nil {
		return err
	}
	defer recoverDecode("json", &err)
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("codec: json: %w: %w", ErrDecode, err)
	}
	return nil
}
