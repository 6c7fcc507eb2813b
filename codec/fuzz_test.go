package codec_test

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/cachekit/cachekit/codec"
)

// fuzzRecord has a field of each kind the decoders treat differently.
type fuzzRecord struct {
	Name  string
	Count int
	Tags  []string
	Attrs map[string]int
	Next  *fuzzRecord
}

// fuzzTargets returns fresh pointers to the types the fuzzers decode into.
func fuzzTargets() []any {
	return []any{new(fuzzRecord), new(map[string]any), new([]int), new(int64), new(string)}
}

// fuzzSeeds returns values whose encodings seed the fuzzers.
func fuzzSeeds() []any {
	return []any{
		fuzzRecord{Name: "n", Count: 3, Tags: []string{"a", "b"}, Attrs: map[string]int{"k": 1},
			Next: &fuzzRecord{Name: "next", Attrs: map[string]int{"j": 2}}},
		map[string]any{"s": "x", "i": 1, "f": 2.5, "b": true, "l": []int{1, 2}},
		[]int{1, -2, 3},
		int64(-1 << 40),
		"a string",
		"",
	}
}

func addSeeds(f *testing.F, c codec.Codec) {
	f.Helper()
	for _, v := range fuzzSeeds() {
		data, err := c.Marshal(v)
		if errors.Is(err, codec.ErrUnsupported) && c == codec.Raw {
			continue
		}
		if err != nil {
			f.Fatalf("Marshal(%#v) error = %v", v, err)
		}
		f.Add(data)
	}
	for _, garbage := range []string{"", "\x00", "\xff\xff\xff", "{", "[1,2", "null", `{"Next":{"Next":{}}}`, "\x03\x04\x00\x02"} {
		f.Add([]byte(garbage))
	}
}

// fuzzDecode decodes data into every fuzz target with c. A failure must
// wrap ErrDecode; a success must survive re-encoding and decoding again,
// and with sameAgain the second decoding must equal the first.
func fuzzDecode(t *testing.T, c codec.Codec, data []byte, sameAgain bool) {
	for _, target := range fuzzTargets() {
		if err := c.Unmarshal(data, target); err != nil {
			if !errors.Is(err, codec.ErrDecode) {
				t.Errorf("Unmarshal(%q, %T) error = %v, want ErrDecode", data, target, err)
			}
			continue
		}
		again, err := c.Marshal(target)
		if err != nil {
			t.Fatalf("Marshal of decoded %#v error = %v", target, err)
		}
		target2 := reflect.New(reflect.TypeOf(target).Elem()).Interface()
		if err := c.Unmarshal(again, target2); err != nil {
			t.Fatalf("Unmarshal of re-encoded %q into %T error = %v", again, target2, err)
		}
		if sameAgain && !reflect.DeepEqual(target2, target) {
			t.Errorf("decoded again = %#v, want %#v", target2, target)
		}
	}
}

// FuzzGobDecode checks that no input makes Gob panic or accept bytes it
// cannot produce again. Gob's decoding is not compared with the original:
// gob does not tell nil from empty slices and maps.
func FuzzGobDecode(f *testing.F) {
	addSeeds(f, codec.Gob)
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzDecode(t, codec.Gob, data, false)
	})
}

// FuzzJSONDecode checks that no input makes JSON panic, and that whatever
// it decodes encodes and decodes again to the same value.
func FuzzJSONDecode(f *testing.F) {
	addSeeds(f, codec.JSON)
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzDecode(t, codec.JSON, data, true)
	})
}

// FuzzRawDecode checks that Raw hands back any bytes unchanged into the
// types it supports and refuses the others with ErrUnsupported.
func FuzzRawDecode(f *testing.F) {
	addSeeds(f, codec.Raw)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, target := range []any{new([]byte), new(string), new(token), new(blob)} {
			if err := codec.Raw.Unmarshal(data, target); err != nil {
				t.Fatalf("Unmarshal(%q, %T) error = %v", data, target, err)
			}
			again, err := codec.Raw.Marshal(target)
			if err != nil || !bytes.Equal(again, data) {
				t.Errorf("Marshal of decoded %T = %q, %v; want %q, nil", target, again, err, data)
			}
		}
		for _, target := range fuzzTargets()[:4] {
			if err := codec.Raw.Unmarshal(data, target); !errors.Is(err, codec.ErrUnsupported) {
				t.Errorf("Unmarshal(%q, %T) error = %v, want ErrUnsupported", data, target, err)
			}
		}
	})
}
