package codec_test

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/cachekit/cachekit/codec"
)

// record is a struct with one field of each shape the codecs must handle.
type record struct {
	Name  string
	Count int
	Tags  []string
	Attrs map[string]int
	Next  *record
}

// token and blob are named types over string and []byte, which Raw accepts.
type (
	token string
	blob  []byte
)

var codecs = []codec.Codec{codec.Gob, codec.JSON, codec.Raw}

// roundTripCases lists values with a function returning a pointer to a
// fresh target of the same type. raw marks the values Raw supports.
func roundTripCases() []struct {
	name      string
	value     any
	newTarget func() any
	raw       bool
} {
	rec := record{
		Name:  "alpha",
		Count: -7,
		Tags:  []string{"a", "b"},
		Attrs: map[string]int{"x": 1, "y": 2},
		Next:  &record{Name: "beta", Count: 1, Tags: []string{"c"}, Attrs: map[string]int{"z": 3}},
	}
	str, byt := "héllo, wörld ✓", []byte("bytes \x00\xff\xfe")
	return []struct {
		name      string
		value     any
		newTarget func() any
		raw       bool
	}{
		{"int", 42, func() any { return new(int) }, false},
		{"int64 min", int64(math.MinInt64), func() any { return new(int64) }, false},
		{"float64", 3.25, func() any { return new(float64) }, false},
		{"bool", true, func() any { return new(bool) }, false},
		{"string", "héllo, wörld ✓", func() any { return new(string) }, true},
		{"empty string", "", func() any { return new(string) }, true},
		{"bytes", []byte("bytes \x00\xff\xfe"), func() any { return new([]byte) }, true},
		{"pointer to string", &str, func() any { return new(string) }, true},
		{"pointer to bytes", &byt, func() any { return new([]byte) }, true},
		{"named string", token("tok-1"), func() any { return new(token) }, true},
		{"named bytes", blob("blob\x00"), func() any { return new(blob) }, true},
		{"struct", rec, func() any { return new(record) }, false},
		{"pointer to struct", &rec, func() any { return new(*record) }, false},
		{"nested maps and slices", map[string][]map[string]int{"a": {{"b": 1}, {"c": 2, "d": 3}}, "e": {{"f": 4}}},
			func() any { return new(map[string][]map[string]int) }, false},
		{"slice of structs", []record{{Name: "a", Count: 1}, {Name: "b", Count: 2}}, func() any { return new([]record) }, false},
		{"time", time.Date(2024, 2, 29, 12, 30, 15, 123456789, time.FixedZone("X", 3600)),
			func() any { return new(time.Time) }, false},
	}
}

// wantValue returns what a round trip of v must give: v itself, or what v
// points to when the target is not a pointer type.
func wantValue(v any, target any) any {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer && reflect.TypeOf(target).Elem() != rv.Type() {
		return rv.Elem().Interface()
	}
	return v
}

func equal(got, want any) bool {
	if w, ok := want.(time.Time); ok {
		g, ok := got.(time.Time)
		return ok && g.Equal(w)
	}
	return reflect.DeepEqual(got, want)
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, c := range codecs {
		for _, tc := range roundTripCases() {
			t.Run(c.Name()+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				data, err := c.Marshal(tc.value)
				if c == codec.Raw && !tc.raw {
					if !errors.Is(err, codec.ErrUnsupported) {
						t.Fatalf("Marshal(%T) error = %v, want ErrUnsupported", tc.value, err)
					}
					err := c.Unmarshal([]byte("x"), tc.newTarget())
					if !errors.Is(err, codec.ErrUnsupported) {
						t.Fatalf("Unmarshal into %T error = %v, want ErrUnsupported", tc.newTarget(), err)
					}
					return
				}
				if err != nil {
					t.Fatalf("Marshal(%T) error = %v", tc.value, err)
				}
				target := tc.newTarget()
				if err := c.Unmarshal(data, target); err != nil {
					t.Fatalf("Unmarshal(%q) error = %v", data, err)
				}
				got := reflect.ValueOf(target).Elem().Interface()
				if want := wantValue(tc.value, target); !equal(got, want) {
					t.Errorf("round trip = %#v, want %#v", got, want)
				}
			})
		}
	}
}

// badInputs returns inputs that are not a valid encoding of a record for
// c: empty, garbage, every proper prefix of a valid encoding, and a valid
// encoding followed by trailing data.
func badInputs(t *testing.T, c codec.Codec) map[string][]byte {
	t.Helper()
	valid, err := c.Marshal(roundTripCases()[11].value) // "struct"
	if err != nil {
		t.Fatalf("Marshal error = %v", err)
	}
	in := map[string][]byte{
		"nil":            nil,
		"empty":          {},
		"zero byte":      {0},
		"garbage":        []byte("\xff\xfe\xfd not a value \x00\x01"),
		"huge length":    {0xf8, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		"trailing data":  append(bytes.Clone(valid), 'x'),
		"value twice":    append(bytes.Clone(valid), valid...),
		"half of value":  valid[:len(valid)/2],
		"missing a byte": valid[:len(valid)-1],
	}
	for n := 1; n < len(valid); n++ {
		in[fmt.Sprintf("prefix %d", n)] = valid[:n]
	}
	return in
}

func TestUnmarshalBadInput(t *testing.T) {
	t.Parallel()
	targets := []func() any{
		func() any { return new(record) },
		func() any { return new(map[string]any) },
		func() any { return new([]int) },
		func() any { return new(int64) },
		func() any { return new(string) },
	}
	for _, c := range []codec.Codec{codec.Gob, codec.JSON} {
		for name, data := range badInputs(t, c) {
			t.Run(c.Name()+"/"+name, func(t *testing.T) {
				t.Parallel()
				for _, newTarget := range targets {
					target := newTarget()
					err := c.Unmarshal(data, target)
					if !errors.Is(err, codec.ErrDecode) {
						t.Errorf("Unmarshal(%q, %T) error = %v, want ErrDecode", data, target, err)
					}
				}
			})
		}
	}
}

func TestUnmarshalBadTarget(t *testing.T) {
	t.Parallel()
	data := map[string][]byte{}
	for _, c := range codecs {
		b, err := c.Marshal("s")
		if err != nil {
			t.Fatalf("%s: Marshal error = %v", c.Name(), err)
		}
		data[c.Name()] = b
	}
	targets := []struct {
		name   string
		target any
	}{
		{"nil", nil},
		{"non-pointer", ""},
		{"nil pointer", (*string)(nil)},
		{"nil pointer to bytes", (*[]byte)(nil)},
		{"nil pointer to named", (*token)(nil)},
	}
	for _, c := range codecs {
		for _, tc := range targets {
			t.Run(c.Name()+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				err := c.Unmarshal(data[c.Name()], tc.target)
				if !errors.Is(err, codec.ErrUnsupported) {
					t.Errorf("Unmarshal(%q, %#v) error = %v, want ErrUnsupported", data[c.Name()], tc.target, err)
				}
			})
		}
	}
}

func TestMarshalUnsupported(t *testing.T) {
	t.Parallel()
	tests := []struct {
		codec codec.Codec
		name  string
		value any
	}{
		{codec.Gob, "nil", nil},
		{codec.Gob, "nil pointer", (*record)(nil)},
		{codec.Gob, "chan", make(chan int)},
		{codec.Gob, "func", func() {}},
		{codec.Gob, "no exported fields", struct{ x int }{1}},
		{codec.JSON, "chan", make(chan int)},
		{codec.JSON, "func", func() {}},
		{codec.JSON, "complex", complex(1, 2)},
		{codec.JSON, "NaN", math.NaN()},
		{codec.Raw, "nil", nil},
		{codec.Raw, "int", 42},
		{codec.Raw, "struct", record{}},
		{codec.Raw, "nil pointer to string", (*string)(nil)},
		{codec.Raw, "nil pointer to bytes", (*[]byte)(nil)},
		{codec.Raw, "nil pointer to named", (*token)(nil)},
		{codec.Raw, "byte array", [4]byte{}},
		{codec.Raw, "pointer to pointer", new(*string)},
	}
	for _, tc := range tests {
		t.Run(tc.codec.Name()+"/"+tc.name, func(t *testing.T) {
			t.Parallel()
			data, err := tc.codec.Marshal(tc.value)
			if !errors.Is(err, codec.ErrUnsupported) {
				t.Errorf("Marshal(%#v) = %q, %v; want ErrUnsupported", tc.value, data, err)
			}
		})
	}
}

func TestRawUnmarshalUnsupported(t *testing.T) {
	t.Parallel()
	for _, target := range []any{new(int), new(record), new([4]byte), new(*string), new(any), new([]rune)} {
		if err := codec.Raw.Unmarshal([]byte("x"), target); !errors.Is(err, codec.ErrUnsupported) {
			t.Errorf("Unmarshal into %T error = %v, want ErrUnsupported", target, err)
		}
	}
}

func TestRawAnyBytes(t *testing.T) {
	t.Parallel()
	for _, data := range [][]byte{nil, {}, {0}, []byte("\xff\xfe garbage")} {
		var b []byte
		if err := codec.Raw.Unmarshal(data, &b); err != nil || !bytes.Equal(b, data) {
			t.Errorf("Unmarshal(%q, *[]byte) = %q, %v; want %q, nil", data, b, err, data)
		}
		var s string
		if err := codec.Raw.Unmarshal(data, &s); err != nil || s != string(data) {
			t.Errorf("Unmarshal(%q, *string) = %q, %v; want %q, nil", data, s, err, data)
		}
		var tok token
		if err := codec.Raw.Unmarshal(data, &tok); err != nil || string(tok) != string(data) {
			t.Errorf("Unmarshal(%q, *token) = %q, %v; want %q, nil", data, tok, err, data)
		}
	}
}

// TestRawZeroCopy checks that Raw shares memory as documented, in both
// directions.
func TestRawZeroCopy(t *testing.T) {
	t.Parallel()
	in := []byte("payload")
	out, err := codec.Raw.Marshal(in)
	if err != nil || unsafe.SliceData(out) != unsafe.SliceData(in) {
		t.Errorf("Marshal([]byte) = %p, %v; want the input slice %p", out, err, in)
	}
	s := "a string payload"
	out, err = codec.Raw.Marshal(s)
	if err != nil || unsafe.SliceData(out) != unsafe.StringData(s) || string(out) != s {
		t.Errorf("Marshal(string) = %q, %v; want the string's own bytes", out, err)
	}
	b := blob("named")
	out, err = codec.Raw.Marshal(&b)
	if err != nil || unsafe.SliceData(out) != unsafe.SliceData(b) {
		t.Errorf("Marshal(*blob) = %p, %v; want the blob's bytes %p", out, err, b)
	}

	var got string
	if err := codec.Raw.Unmarshal(in, &got); err != nil || unsafe.StringData(got) != unsafe.SliceData(in) {
		t.Errorf("Unmarshal(*string) = %q, %v; want a string over the input", got, err)
	}
	var gotBytes []byte
	if err := codec.Raw.Unmarshal(in, &gotBytes); err != nil || unsafe.SliceData(gotBytes) != unsafe.SliceData(in) {
		t.Errorf("Unmarshal(*[]byte) = %p, %v; want the input slice %p", gotBytes, err, in)
	}
}

// TestGobOutputOwned checks that Marshal's result does not alias a pooled
// buffer that a later Marshal overwrites.
func TestGobOutputOwned(t *testing.T) {
	t.Parallel()
	first, err := codec.Gob.Marshal("first value")
	if err != nil {
		t.Fatalf("Marshal error = %v", err)
	}
	want := bytes.Clone(first)
	for i := range 100 {
		if _, err := codec.Gob.Marshal(fmt.Sprintf("value %d overwriting buffers", i)); err != nil {
			t.Fatalf("Marshal error = %v", err)
		}
	}
	if !bytes.Equal(first, want) {
		t.Errorf("first encoding changed to %q, want %q", first, want)
	}
}

// probeDecoded counts the GobDecode calls of probeAllowed and probeForeign.
var probeDecoded atomic.Int32

// probeAllowed is registered with gob; probeForeign never is, although it
// is a gob.GobDecoder linked into the test binary. Their names have the
// same length, so that renaming one into the other in a gob stream keeps
// the stream well formed.
type (
	probeAllowed struct{ X int }
	probeForeign struct{ X int }
)

var (
	_ gob.GobDecoder = (*probeAllowed)(nil)
	_ gob.GobDecoder = (*probeForeign)(nil)
)

func (*probeAllowed) GobDecode([]byte) error    { probeDecoded.Add(1); return nil }
func (probeAllowed) GobEncode() ([]byte, error) { return []byte{1}, nil }
func (*probeForeign) GobDecode([]byte) error    { probeDecoded.Add(1); return nil }
func (probeForeign) GobEncode() ([]byte, error) { return []byte{1}, nil }

type holder struct{ V any }

// TestGobUnregisteredInterface proves that gob data naming a type the
// program did not register fails with ErrDecode instead of creating a value
// of that type or running its GobDecode.
func TestGobUnregisteredInterface(t *testing.T) {
	gob.Register(probeAllowed{})
	data, err := codec.Gob.Marshal(holder{V: probeAllowed{X: 1}})
	if err != nil {
		t.Fatalf("Marshal error = %v", err)
	}
	var ok holder
	if err := codec.Gob.Unmarshal(data, &ok); err != nil {
		t.Fatalf("Unmarshal of the registered type error = %v", err)
	}
	if _, isProbe := ok.V.(probeAllowed); !isProbe || probeDecoded.Load() != 1 {
		t.Fatalf("registered type decoded to %#v with %d GobDecode calls, want probeAllowed and 1", ok.V, probeDecoded.Load())
	}

	// Rename the value's type to the name gob.Register(probeForeign{})
	// would have used.
	allowed := reflect.TypeFor[probeAllowed]().String()
	foreign := reflect.TypeFor[probeForeign]().String()
	forged := bytes.ReplaceAll(data, []byte(allowed), []byte(foreign))
	if bytes.Equal(forged, data) {
		t.Fatalf("type name %q not found in the gob stream %q", allowed, data)
	}
	var got holder
	err = codec.Gob.Unmarshal(forged, &got)
	if !errors.Is(err, codec.ErrDecode) {
		t.Errorf("Unmarshal of an unregistered type error = %v, want ErrDecode", err)
	}
	if got.V != nil || probeDecoded.Load() != 1 {
		t.Errorf("unregistered type decoded to %#v with %d GobDecode calls in all, want nil and 1", got.V, probeDecoded.Load())
	}
}

// TestJSONInterfaceDecodesToPlainValues shows that JSON never creates a
// type named by the data: any becomes maps, slices and scalars.
func TestJSONInterfaceDecodesToPlainValues(t *testing.T) {
	t.Parallel()
	var got holder
	err := codec.JSON.Unmarshal([]byte(`{"V":{"type":"probeForeign","X":[1,"a",true,null]}}`), &got)
	if err != nil {
		t.Fatalf("Unmarshal error = %v", err)
	}
	want := map[string]any{"type": "probeForeign", "X": []any{1.0, "a", true, nil}}
	if !reflect.DeepEqual(got.V, want) {
		t.Errorf("Unmarshal = %#v, want %#v", got.V, want)
	}
}

// panicky panics when decoded, like a buggy GobDecode or UnmarshalJSON.
type panicky struct{}

func (panicky) GobEncode() ([]byte, error)   { return []byte{1}, nil }
func (*panicky) GobDecode([]byte) error      { panic("boom") }
func (panicky) MarshalJSON() ([]byte, error) { return []byte("1"), nil }
func (*panicky) UnmarshalJSON([]byte) error  { panic(errors.New("boom")) }

func TestUnmarshalRecoversPanic(t *testing.T) {
	t.Parallel()
	for _, c := range []codec.Codec{codec.Gob, codec.JSON} {
		data, err := c.Marshal(panicky{})
		if err != nil {
			t.Fatalf("%s: Marshal error = %v", c.Name(), err)
		}
		var p panicky
		if err := c.Unmarshal(data, &p); !errors.Is(err, codec.ErrDecode) {
			t.Errorf("%s: Unmarshal of a panicking decoder error = %v, want ErrDecode", c.Name(), err)
		}
	}
}

// gobUint decodes the unsigned integer at the start of b as gob encodes it
// (one byte below 0x80, else a negated byte count and big-endian bytes)
// and returns it with its encoded size.
func gobUint(b []byte) (n uint64, size int) {
	if b[0] < 0x80 {
		return uint64(b[0]), 1
	}
	size = 1 + int(-int8(b[0]))
	for _, c := range b[1:size] {
		n = n<<8 | uint64(c)
	}
	return n, size
}

// appendGobUint appends n as gob encodes it.
func appendGobUint(b []byte, n uint64) []byte {
	if n < 0x80 {
		return append(b, byte(n))
	}
	var be []byte
	for ; n > 0; n >>= 8 {
		be = append([]byte{byte(n)}, be...)
	}
	return append(append(b, byte(-int8(len(be)))), be...)
}

// TestGobMapCountBomb feeds gob a map whose element count says 2^28 while
// the stream holds one element. encoding/gob alone sizes the map from the
// count first, which takes gigabytes and most of a minute; Gob must refuse
// it at once.
func TestGobMapCountBomb(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		value     any
		newTarget func() any
	}{
		{"top-level map", map[string]int{"a": 1}, func() any { return new(map[string]int) }},
		{"map field", record{Name: "n", Attrs: map[string]int{"a": 1}}, func() any { return new(record) }},
		{"map in slice", []map[string]int{{"a": 1}}, func() any { return new([]map[string]int) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data, err := codec.Gob.Marshal(tc.value)
			if err != nil {
				t.Fatalf("Marshal error = %v", err)
			}
			// Find the last message (the value): messages are a length
			// followed by that many bytes.
			var msgStart, bodyStart int
			for off := 0; off < len(data); {
				n, size := gobUint(data[off:])
				msgStart, bodyStart = off, off+size
				off += size + int(n)
			}
			body := data[bodyStart:]
			// The map's only element is count 1, key "a" (length 1, 'a').
			i := bytes.LastIndex(body, []byte{1, 1, 'a'})
			if i < 0 {
				t.Fatalf("map element not found in %q", body)
			}
			newBody := appendGobUint(bytes.Clone(body[:i]), 1<<28)
			newBody = append(newBody, body[i+1:]...)
			forged := appendGobUint(bytes.Clone(data[:msgStart]), uint64(len(newBody)))
			forged = append(forged, newBody...)

			start := time.Now()
			err = codec.Gob.Unmarshal(forged, tc.newTarget())
			if !errors.Is(err, codec.ErrDecode) {
				t.Errorf("Unmarshal error = %v, want ErrDecode", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Unmarshal took %v, want well under a second", d)
			}
		})
	}
}

// small is the small struct the benchmarks encode.
type small struct {
	ID    int64
	Name  string
	Score float64
	Tags  []string
}

func BenchmarkMarshal(b *testing.B) {
	values := []struct {
		name  string
		value any
	}{
		{"small struct", small{ID: 7, Name: "benchmark", Score: 0.5, Tags: []string{"a", "b"}}},
		{"4KiB bytes", bytes.Repeat([]byte{0xa5}, 4<<10)},
	}
	for _, c := range codecs {
		for _, v := range values {
			b.Run(c.Name()+"/"+v.name, func(b *testing.B) {
				if _, err := c.Marshal(v.value); err != nil {
					b.Skipf("Marshal error = %v", err)
				}
				b.ReportAllocs()
				for b.Loop() {
					if _, err := c.Marshal(v.value); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkUnmarshal(b *testing.B) {
	values := []struct {
		name      string
		value     any
		newTarget func() any
	}{
		{"small struct", small{ID: 7, Name: "benchmark", Score: 0.5, Tags: []string{"a", "b"}}, func() any { return new(small) }},
		{"4KiB bytes", bytes.Repeat([]byte{0xa5}, 4<<10), func() any { return new([]byte) }},
	}
	for _, c := range codecs {
		for _, v := range values {
			b.Run(c.Name()+"/"+v.name, func(b *testing.B) {
				data, err := c.Marshal(v.value)
				if err != nil {
					b.Skipf("Marshal error = %v", err)
				}
				b.ReportAllocs()
				for b.Loop() {
					if err := c.Unmarshal(data, v.newTarget()); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
