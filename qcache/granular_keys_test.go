package qcache

import (
	"net/url"
	"strings"
	"testing"
)

// hashTag must give a non-empty tag without braces (Redis would end the tag
// at a "}" or hash the whole key for "{}"), distinct for distinct names.
func FuzzHashTag(f *testing.F) {
	for _, s := range []string{"", "posts", "we}i{rd", "%", "%7B", "{", "}", "main.posts"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		tag := hashTag(name)
		if tag == "" || strings.ContainsAny(tag, "{}") {
			t.Fatalf("hashTag(%q) = %q", name, tag)
		}
		if name == "" {
			return
		}
		// The escape is URL percent-encoding of three bytes, so
		// unescaping gives the name back (injective).
		got, err := url.PathUnescape(tag)
		if err != nil || got != name {
			t.Fatalf("hashTag(%q) = %q, unescapes to %q (%v)", name, tag, got, err)
		}
	})
}
