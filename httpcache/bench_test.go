package httpcache

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkHit serves a stored 2 KiB response over the memory store: a
// learned-Vary read, an entry read and its stamps' read.
func BenchmarkHit(b *testing.B) {
	c := Must(Options{})
	defer c.Close()
	page := strings.Repeat("x", 2048)
	h := c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Surrogate-Key", "a b")
		fmt.Fprint(w, page)
	}))
	r := httptest.NewRequest("GET", "/bench?x=1", nil)
	h.ServeHTTP(httptest.NewRecorder(), r)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}
