package cachetest

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/cachekit/cachekit/codec"
)

// RunCodec checks that c keeps the [codec.Codec] contract:
//
//   - Round trips: representative values (bytes, strings, named types,
//     numbers, structs, pointers, nested maps and slices, time.Time) decode
//     to what was encoded. A value whose Marshal fails with
//     [codec.ErrUnsupported] is skipped, but c must support at least one
//     of []byte, string or a struct, and must then refuse to Unmarshal into
//     the skipped type.
//   - Marshal's result belongs to the caller: later calls do not change it,
//     and Unmarshal does not modify its input.
//   - Damaged input (nil, empty, garbage, truncated, with trailing bytes)
//     never panics, and any error wraps [codec.ErrDecode] or
//     [codec.ErrUnsupported]. Such input may also decode without error,
//     since some codecs accept any bytes for some types, as [codec.Raw]
//     does.
//   - Unmarshal into nil, a nil pointer or a non-pointer returns an error
//     wrapping one of those two, without panicking.
//   - Concurrent Marshal and Unmarshal calls are safe: run with -race.
func RunCodec(t *testing.T, c codec.Codec) {
	t.Helper()
	if c.Name() == "" {
		t.Error("Name() = \"\", want a non-empty name")
	}

	// Encode every sample once, up front, to learn which ones c supports.
	var supported, unsupported []codecEncoded
	for _, s := range codecSamples() {
		var data []byte
		var err error
		if p := codecCatch(func() { data, err = c.Marshal(s.value) }); p != nil {
			t.Errorf("Marshal(%s) panicked: %v", s.name, p)
			continue
		}
		switch {
		case errors.Is(err, codec.ErrUnsupported):
			unsupported = append(unsupported, codecEncoded{s, nil})
		case err != nil:
			t.Errorf("Marshal(%s) error = %v, want nil or ErrUnsupported", s.name, err)
		default:
			supported = append(supported, codecEncoded{s, data})
		}
	}
	basic := 0
	for _, e := range supported {
		if e.basic {
			basic++
		}
	}
	if basic == 0 {
		t.Fatalf("%s supports none of []byte, string or a struct, want at least one", c.Name())
	}

	t.Run("RoundTrip", func(t *testing.T) {
		t.Parallel()
		for _, e := range unsupported {
			t.Logf("skipping %s: Marshal returned ErrUnsupported", e.name)
		}
		for _, e := range supported {
			t.Run(e.name, func(t *testing.T) {
				t.Parallel()
				input := bytes.Clone(e.data)
				got, err := codecDecode(c, e.data, e.codecSample)
				if err != nil {
					t.Fatalf("Unmarshal(%q) error = %v", e.data, err)
				}
				if !e.equal(got, e.value) {
					t.Errorf("round trip = %#v, want %#v", got, e.value)
				}
				if !bytes.Equal(e.data, input) {
					t.Errorf("Unmarshal changed its input to %q, want %q", e.data, input)
				}
			})
		}
	})

	t.Run("UnsupportedTarget", func(t *testing.T) {
		t.Parallel()
		data := supported[0].data
		for _, e := range unsupported {
			t.Run(e.name, func(t *testing.T) {
				t.Parallel()
				target := e.newTarget()
				var err error
				if p := codecCatch(func() { err = c.Unmarshal(data, target) }); p != nil {
					t.Fatalf("Unmarshal into %T panicked: %v", target, p)
				}
				if !codecIsError(err) {
					t.Errorf("Unmarshal into %T (a type Marshal refuses) error = %v, want ErrUnsupported or ErrDecode", target, err)
				}
			})
		}
	})

	t.Run("OutputOwned", func(t *testing.T) {
		t.Parallel()
		for _, e := range supported {
			data, err := c.Marshal(e.value)
			if err != nil {
				t.Fatalf("Marshal(%s) error = %v", e.name, err)
			}
			want := bytes.Clone(data)
			// Encode everything else, so that a codec reusing a buffer for
			// its results overwrites this one.
			for _, other := range supported {
				if _, err := c.Marshal(other.value); err != nil {
					t.Fatalf("Marshal(%s) error = %v", other.name, err)
				}
			}
			if !bytes.Equal(data, want) {
				t.Errorf("encoding of %s changed to %q by later calls, want %q", e.name, data, want)
			}
		}
	})

	t.Run("DamagedInput", func(t *testing.T) {
		t.Parallel()
		for name, data := range codecDamaged(supported) {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				for _, e := range supported {
					target := e.newTarget()
					var err error
					if p := codecCatch(func() { err = c.Unmarshal(data, target) }); p != nil {
						t.Errorf("Unmarshal(%q, %T) panicked: %v", data, target, p)
						continue
					}
					if err != nil && !codecIsError(err) {
						t.Errorf("Unmarshal(%q, %T) error = %v, want one wrapping ErrDecode or ErrUnsupported", data, target, err)
					}
				}
			})
		}
	})

	t.Run("BadTarget", func(t *testing.T) {
		t.Parallel()
		for _, e := range supported {
			typed := reflect.TypeOf(e.newTarget())
			targets := map[string]any{
				"nil":         nil,
				"nil pointer": reflect.Zero(typed).Interface(),
				"non-pointer": reflect.Zero(typed.Elem()).Interface(),
			}
			for name, target := range targets {
				var err error
				if p := codecCatch(func() { err = c.Unmarshal(e.data, target) }); p != nil {
					t.Errorf("Unmarshal(%s, %s %T) panicked: %v", e.name, name, target, p)
					continue
				}
				if !codecIsError(err) {
					t.Errorf("Unmarshal(%s, %s %T) error = %v, want one wrapping ErrUnsupported or ErrDecode", e.name, name, target, err)
				}
			}
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		t.Parallel()
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 20 {
					for _, e := range supported {
						data, err := c.Marshal(e.value)
						if err != nil {
							t.Errorf("Marshal(%s) error = %v", e.name, err)
							return
						}
						got, err := codecDecode(c, data, e.codecSample)
						if err != nil {
							t.Errorf("Unmarshal(%s) error = %v", e.name, err)
							return
						}
						if !e.equal(got, e.value) {
							t.Errorf("round trip of %s = %#v, want %#v", e.name, got, e.value)
							return
						}
					}
				}
			})
		}
		wg.Wait()
	})
}

// codecSample is a value to round-trip. newTarget returns a pointer to a
// fresh zero value of the type Unmarshal fills; basic marks []byte, string
// and struct samples, one of which every codec must support.
type codecSample struct {
	name      string
	value     any
	newTarget func() any
	basic     bool
}

// codecEncoded is a sample with its encoding (nil when unsupported).
type codecEncoded struct {
	codecSample
	data []byte
}

// codecRecord is a struct with one field of each common shape. Every field
// is non-empty in the samples: gob does not tell nil from empty.
type codecRecord struct {
	Name  string
	Count int
	Ratio float64
	Tags  []string
	Attrs map[string]int
	Next  *codecRecord
}

type (
	codecName string
	codecBlob []byte
)

func codecSamples() []codecSample {
	rec := codecRecord{
		Name:  "alpha",
		Count: -7,
		Ratio: 0.25,
		Tags:  []string{"a", "b"},
		Attrs: map[string]int{"x": 1, "y": 2},
		Next:  &codecRecord{Name: "beta", Count: 1, Ratio: 1, Tags: []string{"c"}, Attrs: map[string]int{"z": 3}},
	}
	return []codecSample{
		{"bytes", []byte("binary \x00\x01\xfe\xff"), func() any { return new([]byte) }, true},
		{"string", "héllo, wörld ✓", func() any { return new(string) }, true},
		{"empty string", "", func() any { return new(string) }, false},
		{"named string", codecName("token"), func() any { return new(codecName) }, false},
		{"named bytes", codecBlob("blob\x00"), func() any { return new(codecBlob) }, false},
		{"int", 42, func() any { return new(int) }, false},
		{"int64 extremes", []int64{math.MinInt64, math.MaxInt64}, func() any { return new([]int64) }, false},
		{"float64", 3.25, func() any { return new(float64) }, false},
		{"bool", true, func() any { return new(bool) }, false},
		{"struct", rec, func() any { return new(codecRecord) }, true},
		{"pointer to struct", &rec, func() any { return new(*codecRecord) }, false},
		{"slice of structs", []codecRecord{rec, {Name: "gamma", Count: 2, Ratio: 2, Tags: []string{"d"}, Attrs: map[string]int{"w": 4}}},
			func() any { return new([]codecRecord) }, false},
		{"nested maps and slices", map[string][]map[string]int{"a": {{"b": 1}, {"c": 2, "d": 3}}, "e": {{"f": 4}}},
			func() any { return new(map[string][]map[string]int) }, false},
		{"time", time.Date(2024, 2, 29, 23, 59, 58, 123456789, time.FixedZone("UTC+1", 3600)),
			func() any { return new(time.Time) }, false},
	}
}

// equal compares a decoded value with the original: time.Time by Equal,
// everything else by reflect.DeepEqual.
func (s codecSample) equal(got, want any) bool {
	if w, ok := want.(time.Time); ok {
		g, ok := got.(time.Time)
		return ok && g.Equal(w)
	}
	return reflect.DeepEqual(got, want)
}

// codecDecode decodes data into a fresh target for s and returns the value
// the target points to. A panic is returned as an error.
func codecDecode(c codec.Codec, data []byte, s codecSample) (got any, err error) {
	target := s.newTarget()
	if p := codecCatch(func() { err = c.Unmarshal(data, target) }); p != nil {
		return nil, fmt.Errorf("panic in Unmarshal: %v", p)
	}
	if err != nil {
		return nil, err
	}
	return reflect.ValueOf(target).Elem().Interface(), nil
}

// codecDamaged returns inputs that are, for most targets, not a valid
// encoding: fixed garbage, and damaged copies of the supported encodings.
func codecDamaged(supported []codecEncoded) map[string][]byte {
	in := map[string][]byte{
		"nil":         nil,
		"empty":       {},
		"zero byte":   {0},
		"0xff":        {0xff},
		"garbage":     []byte("\xff\xfe\xfd\xfc garbage \x00\x01\x02"),
		"huge length": {0xf8, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"open brace":  []byte("{"),
	}
	for _, e := range supported {
		d := e.data
		if len(d) > 0 {
			in[e.name+"/missing last byte"] = d[:len(d)-1]
			in[e.name+"/first half"] = d[:len(d)/2]
			flipped := bytes.Clone(d)
			flipped[len(d)/2] ^= 0xff
			in[e.name+"/flipped byte"] = flipped
		}
		in[e.name+"/trailing byte"] = append(bytes.Clone(d), 0x7b)
		in[e.name+"/twice"] = append(bytes.Clone(d), d...)
	}
	return in
}

// codecIsError reports whether err wraps one of the errors a codec may
// return for input or targets it refuses.
func codecIsError(err error) bool {
	return errors.Is(err, codec.ErrDecode) || errors.Is(err, codec.ErrUnsupported)
}

// codecCatch runs f and returns what it panicked with, or nil.
func codecCatch(f func()) (panicked any) {
	defer func() { panicked = recover() }()
	f()
	return nil
}
