package fragment_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/cachekit/cachekit/fragment"
)

// FuzzVaryKey checks that two lists of vary-on values share a key only
// when they are equal. Each input string is split at "|" into a list.
func FuzzVaryKey(f *testing.F) {
	for _, seed := range [][2]string{
		{"a|b", "a:b"}, {"ab", "|ab"}, {"a|b", "ab"}, {"1:a", "1|a"}, {"", "|"},
		{`"`, `\"`}, {"2:ab", "ab|"}, {"x", "x"},
	} {
		f.Add(seed[0], seed[1])
	}
	fc, err := fragment.New(fragment.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { fc.Close() })
	f.Fuzz(func(t *testing.T, a, b string) {
		va, vb := strings.Split(a, "|"), strings.Split(b, "|")
		ka, err := fc.Key("f", va...)
		if err != nil {
			t.Fatal(err)
		}
		kb, err := fc.Key("f", vb...)
		if err != nil {
			t.Fatal(err)
		}
		if (ka == kb) != slices.Equal(va, vb) {
			t.Errorf("Key(%q) = %q, Key(%q) = %q", va, ka, vb, kb)
		}
	})
}
