package httpcache

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// hello answers "hello <path>?<query>" with whatever headers set adds.
func hello(set func(h http.Header)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if set != nil {
			set(w.Header())
		}
		fmt.Fprintf(w, "hello %s", r.URL.RequestURI())
	}
}

func TestGetStoredThenHit(t *testing.T) {
	f := newFixture(t, Options{})
	h := f.c.Middleware(f.handler(hello(nil)))

	w := do(h, "GET", "/a")
	if w.Code != 200 || body(t, w) != "hello /a" {
		t.Fatalf("first: %d %q", w.Code, body(t, w))
	}
	if !hasStatus(w, "fwd=uri-miss") || !hasStatus(w, "stored") {
		t.Errorf("first Cache-Status = %q", w.Header().Get("Cache-Status"))
	}
	f.clock.Advance(3 * time.Second)
	w = do(h, "GET", "/a")
	if body(t, w) != "hello /a" || !hasStatus(w, "cachekit; hit; ttl=297") {
		t.Errorf("second: %q, Cache-Status %q", body(t, w), w.Header().Get("Cache-Status"))
	}
	if got := w.Header().Get("Age"); got != "3" {
		t.Errorf("Age = %q, want 3", got)
	}
	// Headers added when absent (as Django's patch_response_headers).
	if got := w.Header().Get("Cache-Control"); got != "max-age=300" {
		t.Errorf("Cache-Control = %q", got)
	}
	for _, k := range []string{"ETag", "Last-Modified", "Expires", "Date"} {
		if w.Header().Get(k) == "" {
			t.Errorf("%s missing", k)
		}
	}
	if etag := w.Header().Get("ETag"); strings.HasPrefix(etag, "W/") {
		t.Errorf("ETag %q is weak", etag)
	}
	if n := f.runs.Load(); n != 1 {
		t.Errorf("handler ran %d times, want 1", n)
	}
	if f.count(Hit) != 1 || f.count(Miss) != 1 || f.count(Stored) != 1 {
		t.Errorf("events: %+v", f.events)
	}
}

// TestStorageRules checks what a shared cache may store (RFC 9111 section
// 3) and the Options that narrow it.
func TestStorageRules(t *testing.T) {
	big := strings.Repeat("x", 100)
	tests := []struct {
		name   string
		opts   Options
		status int
		header []string // response header pairs
		req    []string // request header pairs
		body   string
		flush  bool
		stored bool
		reason string
	}{
		{name: "200 stored", status: 200, stored: true},
		{name: "201 not in Statuses", status: 201, reason: "status"},
		{name: "301 in Statuses", opts: Options{Statuses: []int{200, 301}}, status: 301, stored: true},
		{name: "404 without NegativeTTL", status: 404, reason: "status"},
		// 206 and 304 answer the request's Range or conditionals, which
		// the key lacks (RFC 9111 section 3.3, RFC 9110 section 15.4.5).
		{name: "206 though listed", opts: Options{Statuses: []int{200, 206}}, status: 206, reason: "partial"},
		{name: "304 though listed", opts: Options{Statuses: []int{200, 304}}, status: 304, reason: "not-modified"},
		{name: "404 with NegativeTTL", opts: Options{NegativeTTL: time.Second}, status: 404, stored: true},
		{name: "500", opts: Options{NegativeTTL: time.Second}, status: 500, reason: "status"},
		// RFC 9111 section 5.2.2.5. Django's cache middleware stored these.
		{name: "no-store not stored", status: 200, header: []string{"Cache-Control", "no-store"}, reason: "no-store"},
		{name: "no-store among others", status: 200, header: []string{"Cache-Control", "public, max-age=60", "Cache-Control", "no-store"}, reason: "no-store"},
		{name: "private", status: 200, header: []string{"Cache-Control", "private, max-age=60"}, reason: "private"},
		{name: "private with fields", status: 200, header: []string{"Cache-Control", `private="Set-Cookie"`}, reason: "private"},
		{name: "no-cache", status: 200, header: []string{"Cache-Control", "no-cache"}, reason: "no-cache"},
		{name: "Set-Cookie", status: 200, header: []string{"Set-Cookie", "sid=1"}, reason: "set-cookie"},
		// RFC 9111 section 4.1: Vary: * never matches.
		{name: "Vary star", status: 200, header: []string{"Vary", "Accept, *"}, reason: "vary-star"},
		{name: "too large", opts: Options{MaxBodySize: 50}, status: 200, body: big, reason: "too-large"},
		{name: "at the size limit", opts: Options{MaxBodySize: 100}, status: 200, body: big, stored: true},
		{name: "streaming", status: 200, flush: true, reason: "streaming"},
		{name: "max-age=0", status: 200, header: []string{"Cache-Control", "max-age=0"}, reason: "expired"},
		{name: "Expires in the past", status: 200, header: []string{"Expires", "Thu, 01 Jan 1970 00:00:00 GMT"}, reason: "expired"},
		// RFC 9111 section 3.5.
		{name: "Authorization", status: 200, req: []string{"Authorization", "Bearer x"}, reason: "authorization"},
		{name: "Authorization public", status: 200, req: []string{"Authorization", "Bearer x"}, header: []string{"Cache-Control", "public"}, stored: true},
		{name: "Authorization s-maxage", status: 200, req: []string{"Authorization", "Bearer x"}, header: []string{"Cache-Control", "s-maxage=60"}, stored: true},
		{name: "Authorization max-age only", status: 200, req: []string{"Authorization", "Bearer x"}, header: []string{"Cache-Control", "max-age=60"}, reason: "authorization"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.opts)
			h := f.c.Middleware(f.handler(func(w http.ResponseWriter, r *http.Request) {
				for i := 0; i+1 < len(tt.header); i += 2 {
					w.Header().Add(tt.header[i], tt.header[i+1])
				}
				w.WriteHeader(tt.status)
				w.Write([]byte(tt.body))
				if tt.flush {
					w.(http.Flusher).Flush()
				}
			}))
			first := do(h, "GET", "/r", tt.req...)
			if first.Code != tt.status || body(t, first) != tt.body {
				t.Fatalf("first response %d %q", first.Code, body(t, first))
			}
			second := do(h, "GET", "/r", tt.req...)
			wantRuns := int64(2)
			if tt.stored {
				wantRuns = 1
			}
			if n := f.runs.Load(); n != wantRuns {
				t.Errorf("handler ran %d times, want %d", n, wantRuns)
			}
			if second.Code != tt.status || body(t, second) != tt.body {
				t.Errorf("second response %d %q", second.Code, body(t, second))
			}
			if got := f.reasons(NotStored); !tt.stored && (len(got) == 0 || got[0] != tt.reason) {
				t.Errorf("not-stored reasons %q, want %q", got, tt.reason)
			}
			if !tt.stored && !hasStatus(first, `detail="`+tt.reason+`"`) {
				t.Errorf("Cache-Status %q lacks the reason", first.Header().Get("Cache-Status"))
			}
		})
	}
}

// TestFreshness checks the order of the sources of the freshness lifetime:
// the route, s-maxage, max-age, Expires (RFC 9111 section 4.2.1), the
// default.
func TestFreshness(t *testing.T) {
	expires := func(d time.Duration) string { return t0.Add(d).Format(http.TimeFormat) }
	tests := []struct {
		name   string
		route  time.Duration
		header []string
		want   time.Duration
	}{
		{name: "default", want: DefaultTTL},
		{name: "route over all", route: 7 * time.Second, header: []string{"Cache-Control", "s-maxage=20, max-age=30"}, want: 7 * time.Second},
		{name: "s-maxage over max-age", header: []string{"Cache-Control", "max-age=30, s-maxage=20"}, want: 20 * time.Second},
		{name: "max-age over Expires", header: []string{"Cache-Control", "max-age=30", "Expires", expires(time.Hour)}, want: 30 * time.Second},
		{name: "Expires", header: []string{"Expires", expires(40 * time.Second)}, want: 40 * time.Second},
		// Section 4.2.1: of two values of a directive, the first counts.
		{name: "first of two max-age", header: []string{"Cache-Control", "max-age=30", "Cache-Control", "max-age=90"}, want: 30 * time.Second},
		{name: "Expires against Date", header: []string{"Date", t0.Add(-10 * time.Second).Format(http.TimeFormat), "Expires", expires(40 * time.Second)}, want: 50 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Options{})
			h := f.c.Route(Route{TTL: tt.route})(f.handler(hello(func(h http.Header) {
				for i := 0; i+1 < len(tt.header); i += 2 {
					h.Add(tt.header[i], tt.header[i+1])
				}
			})))
			do(h, "GET", "/f")
			f.clock.Advance(tt.want - time.Second)
			if w := do(h, "GET", "/f"); !hasStatus(w, "hit; ttl=1") {
				t.Errorf("a second before expiry: Cache-Status %q", w.Header().Get("Cache-Status"))
			}
			f.clock.Advance(time.Second)
			if w := do(h, "GET", "/f"); hasStatus(w, "hit") {
				t.Errorf("at expiry: Cache-Status %q", w.Header().Get("Cache-Status"))
			}
			if n := f.runs.Load(); n != 2 {
				t.Errorf("handler ran %d times, want 2", n)
			}
		})
	}
}

func TestNegativeTTL(t *testing.T) {
	f := newFixture(t, Options{NegativeTTL: 10 * time.Second})
	h := f.c.Middleware(f.handler(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600") // NegativeTTL wins for a 404
		http.NotFound(w, r)
	}))
	do(h, "GET", "/missing")
	f.clock.Advance(9 * time.Second)
	if w := do(h, "GET", "/missing"); w.Code != 404 || !hasStatus(w, "hit") {
		t.Fatalf("within NegativeTTL: %d %q", w.Code, w.Header().Get("Cache-Status"))
	}
	f.clock.Advance(time.Second)
	if w := do(h, "GET", "/missing"); w.Code != 404 || hasStatus(w, "hit") {
		t.Fatalf("after NegativeTTL: %d %q", w.Code, w.Header().Get("Cache-Status"))
	}
	if n := f.runs.Load(); n != 2 {
		t.Errorf("handler ran %d times, want 2", n)
	}
}

// TestHeadFromGet: a HEAD is answered from the GET's entry, without body
// (RFC 9110 section 9.3.2), and a HEAD first stores the GET's response.
func TestHeadFromGet(t *testing.T) {
	f := newFixture(t, Options{})
	var methods []string
	h := f.c.Middleware(f.handler(func(w http.ResponseWriter, r *http.Request) {
		methods = append(methods, r.Method)
		hello(nil)(w, r)
	}))
	do(h, "GET", "/g")
	w := do(h, "HEAD", "/g")
	if w.Body.Len() != 0 || w.Header().Get("Content-Length") != "8" || !hasStatus(w, "hit") {
		t.Errorf("HEAD after GET: body %q, Content-Length %q, Cache-Status %q", w.Body, w.Header().Get("Content-Length"), w.Header().Get("Cache-Status"))
	}
	w = do(h, "HEAD", "/h")
	if w.Body.Len() != 0 {
		t.Errorf("first HEAD has a body %q", w.Body)
	}
	if w = do(h, "GET", "/h"); body(t, w) != "hello /h" || !hasStatus(w, "hit") {
		t.Errorf("GET after HEAD: %q %q", body(t, w), w.Header().Get("Cache-Status"))
	}
	if strings.Join(methods, ",") != "GET,GET" {
		t.Errorf("handler saw %v, want GET twice", methods)
	}
}

// TestConditional: RFC 9110 section 13.2.2, If-None-Match before
// If-Modified-Since; a 304 keeps the headers of section 15.4.5.
func TestConditional(t *testing.T) {
	f := newFixture(t, Options{})
	h := f.c.Middleware(f.handler(hello(func(h http.Header) { h.Set("Content-Type", "text/plain") })))
	first := do(h, "GET", "/c")
	etag, lm := first.Header().Get("ETag"), first.Header().Get("Last-Modified")
	before := t0.Add(-time.Hour).Format(http.TimeFormat)
	tests := []struct {
		name string
		req  []string
		want int
	}{
		{"If-None-Match equal", []string{"If-None-Match", etag}, 304},
		{"If-None-Match weak", []string{"If-None-Match", "W/" + etag}, 304},
		{"If-None-Match list", []string{"If-None-Match", `"other", ` + etag}, 304},
		{"If-None-Match star", []string{"If-None-Match", "*"}, 304},
		{"If-None-Match other", []string{"If-None-Match", `"other"`}, 200},
		{"If-Modified-Since equal", []string{"If-Modified-Since", lm}, 304},
		{"If-Modified-Since before", []string{"If-Modified-Since", before}, 200},
		{"If-None-Match wins", []string{"If-None-Match", `"other"`, "If-Modified-Since", lm}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := do(h, "GET", "/c", tt.req...)
			if w.Code != tt.want {
				t.Fatalf("status %d, want %d", w.Code, tt.want)
			}
			if tt.want == 304 {
				if w.Body.Len() != 0 || w.Header().Get("ETag") != etag || w.Header().Get("Content-Type") != "" ||
					w.Header().Get("Cache-Control") == "" || w.Header().Get("Cache-Status") == "" {
					t.Errorf("304 headers %v body %q", w.Header(), w.Body)
				}
			} else if body(t, w) != "hello /c" {
				t.Errorf("body %q", body(t, w))
			}
		})
	}
	// A miss that stores answers its conditional request too.
	if w := do(h, "GET", "/c2", "If-None-Match", "*"); w.Code != 304 {
		t.Errorf("conditional miss: %d", w.Code)
	}
	if n := f.runs.Load(); n != 2 {
		t.Errorf("handler ran %d times, want 2", n)
	}
}

// TestVaryLearned: the headers a response's Vary names key the URL's later
// requests (Django's learn_cache_key), per URL.
func TestVaryLearned(t *testing.T) {
	f := newFixture(t, Options{})
	h := f.c.Middleware(f.handler(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v" {
			w.Header().Set("Vary", "accept-language, Accept-Language")
		}
		fmt.Fprintf(w, "%s %s", r.URL.Path, r.Header.Get("Accept-Language"))
	}))
	steps := []struct {
		path, lang, want string
		hit              bool
	}{
		{"/v", "en", "/v en", false},
		{"/v", "fr", "/v fr", false},
		{"/v", "en", "/v en", true},
		{"/v", "fr", "/v fr", true},
		{"/n", "en", "/n en", false},
		{"/n", "fr", "/n en", true}, // no Vary on /n: one response for all
	}
	for i, s := range steps {
		w := do(h, "GET", s.path, "Accept-Language", s.lang)
		if body(t, w) != s.want || hasStatus(w, "hit") != s.hit {
			t.Errorf("step %d: %q %q, want %q hit=%v", i, body(t, w), w.Header().Get("Cache-Status"), s.want, s.hit)
		}
	}
	if n := f.runs.Load(); n != 3 {
		t.Errorf("handler ran %d times, want 3", n)
	}
}

func TestVaryFuncCookie(t *testing.T) {
	f := newFixture(t, Options{Vary: []VaryFunc{VaryCookie("lang")}})
	h := f.c.Middleware(f.handler(func(w http.ResponseWriter, r *http.Request) {
		c, _ := r.Cookie("lang")
		fmt.Fprint(w, c.Value)
	}))
	for i, lang := range []string{"en", "fr", "en", "fr"} {
		w := do(h, "GET", "/p", "Cookie", "lang="+lang+"; other="+strconv.Itoa(i))
		if body(t, w) != lang || hasStatus(w, "hit") != (i >= 2) {
			t.Errorf("request %d: %q %q", i, body(t, w), w.Header().Get("Cache-Status"))
		}
	}
}

func TestQueryCanonical(t *testing.T) {
	f := newFixture(t, Options{QueryIgnore: []string{"utm_source"}})
	h := f.c.Middleware(f.handler(hello(nil)))
	do(h, "GET", "/q?b=2&a=1")
	for _, u := range []string{"/q?a=1&b=2", "/q?b=2&utm_source=x&a=1"} {
		if w := do(h, "GET", u); !hasStatus(w, "hit") {
			t.Errorf("%s: %q", u, w.Header().Get("Cache-Status"))
		}
	}
	if w := do(h, "GET", "/q?a=1&b=3"); hasStatus(w, "hit") {
		t.Errorf("another value hit")
	}

	f = newFixture(t, Options{QueryAllow: []string{"page"}})
	h = f.c.Middleware(f.handler(hello(nil)))
	do(h, "GET", "/q?page=2&x=1")
	if w := do(h, "GET", "/q?page=2&x=2"); !hasStatus(w, "hit") {
		t.Errorf("QueryAllow: %q", w.Header().Get("Cache-Status"))
	}
}

// TestUnsafeMethods: RFC 9111 section 4.4, a successful unsafe request
// invalidates its URL and same-host Location; it is never cached.
func TestUnsafeMethods(t *testing.T) {
	tests := []struct {
		name       string
		opts       Options
		status     int
		location   string
		invalidate []string // paths no longer hit afterwards
		keep       []string
	}{
		{name: "POST ok", status: 200, invalidate: []string{"/u"}, keep: []string{"/other"}},
		{name: "POST with Location", status: 303, location: "/other", invalidate: []string{"/u", "/other"}},
		{name: "POST foreign Location", status: 201, location: "http://elsewhere.example/other", invalidate: []string{"/u"}, keep: []string{"/other"}},
		{name: "POST failed", status: 500, keep: []string{"/u", "/other"}},
		{name: "KeepOnUnsafe", opts: Options{KeepOnUnsafe: true}, status: 200, keep: []string{"/u", "/other"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.opts)
			h := f.c.Middleware(f.handler(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == "POST" {
					if tt.location != "" {
						w.Header().Set("Location", tt.location)
					}
					w.WriteHeader(tt.status)
					return
				}
				hello(nil)(w, r)
			}))
			do(h, "GET", "/u")
			do(h, "GET", "/other")
			// RFC 9211 section 2.2: fwd=method, the method's semantics.
			if w := do(h, "POST", "/u"); w.Code != tt.status || !hasStatus(w, "cachekit; fwd=method;") {
				t.Fatalf("POST: %d %q", w.Code, w.Header().Get("Cache-Status"))
			}
			for _, p := range tt.invalidate {
				if w := do(h, "GET", p); hasStatus(w, "hit") {
					t.Errorf("%s still hit", p)
				}
			}
			for _, p := range tt.keep {
				if w := do(h, "GET", p); !hasStatus(w, "hit") {
					t.Errorf("%s not hit: %q", p, w.Header().Get("Cache-Status"))
				}
			}
		})
	}
}

func TestInvalidateURL(t *testing.T) {
	f := newFixture(t, Options{})
	h := f.c.Middleware(f.handler(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Vary", "Accept")
		hello(nil)(w, r)
	}))
	ctx := context.Background()
	do(h, "GET", "/i?x=1", "Accept", "a")
	do(h, "GET", "/i?x=1", "Accept", "b")
	do(h, "GET", "/j")
	if err := f.c.InvalidateURL(ctx, "http://example.com/i?x=1"); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"a", "b"} {
		if w := do(h, "GET", "/i?x=1", "Accept", a); hasStatus(w, "hit") {
			t.Errorf("variant %s still hit", a)
		}
	}
	if w := do(h, "GET", "/j"); !hasStatus(w, "hit") {
		t.Errorf("/j invalidated too")
	}
	if err := f.c.InvalidateURL(ctx, "/relative"); err == nil {
		t.Errorf("relative URL accepted")
	}
	if got := f.reasons(Invalidated); len(got) != 1 || got[0] != "url" {
		t.Errorf("invalidated events %q", got)
	}
}

func TestInvalidateTags(t *testing.T) {
	f := newFixture(t, Options{})
	next := f.handler(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/post/1":
			w.Header().Set("Surrogate-Key", "post-1 posts")
		case "/post/2":
			w.Header().Set("Surrogate-Key", "post-2  posts")
		}
		hello(nil)(w, r)
	})
	h := f.c.Middleware(next)
	about := f.c.Route(Route{Tags: []string{"static"}})(next)
	ctx := context.Background()
	paths := []string{"/post/1", "/post/2", "/about"}
	fill := func() {
		for _, p := range paths {
			if p == "/about" {
				do(about, "GET", p)
			} else {
				do(h, "GET", p)
			}
		}
	}
	check := func(want map[string]bool) {
		t.Helper()
		for _, p := range paths {
			hh := h
			if p == "/about" {
				hh = about
			}
			if w := do(hh, "GET", p); hasStatus(w, "hit") != want[p] {
				t.Errorf("%s: hit=%v, want %v", p, !want[p], want[p])
			}
		}
	}
	fill()
	if err := f.c.InvalidateTags(ctx, "post-1"); err != nil {
		t.Fatal(err)
	}
	check(map[string]bool{"/post/2": true, "/about": true})
	if err := f.c.InvalidateTags(ctx, "posts"); err != nil {
		t.Fatal(err)
	}
	check(map[string]bool{"/about": true})
	if err := f.c.InvalidateTags(ctx, "static"); err != nil {
		t.Fatal(err)
	}
	check(map[string]bool{"/post/1": true, "/post/2": true})
}

// TestInvalidationDuringRun: a response computed while its URL or tag is
// invalidated is served to its request but not stored.
func TestInvalidationDuringRun(t *testing.T) {
	for _, by := range []string{"url", "tag"} {
		t.Run(by, func(t *testing.T) {
			f := newFixture(t, Options{})
			first := true
			h := f.c.Middleware(f.handler(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Surrogate-Key", "t")
				if first {
					first = false
					var err error
					if by == "url" {
						err = f.c.InvalidateURL(r.Context(), "http://example.com/d")
					} else {
						err = f.c.InvalidateTags(r.Context(), "t")
					}
					if err != nil {
						t.Error(err)
					}
				}
				hello(nil)(w, r)
			}))
			if w := do(h, "GET", "/d"); w.Code != 200 || hasStatus(w, "stored") {
				t.Fatalf("first: %d %q", w.Code, w.Header().Get("Cache-Status"))
			}
			do(h, "GET", "/d")
			if w := do(h, "GET", "/d"); !hasStatus(w, "hit") {
				t.Errorf("third request not a hit: %q", w.Header().Get("Cache-Status"))
			}
			if n := f.runs.Load(); n != 2 {
				t.Errorf("handler ran %d times, want 2", n)
			}
		})
	}
}

// TestStaleWhileRevalidate: RFC 5861 section 3, from Options and from the
// response's directive; must-revalidate turns it off (RFC 9111 section
// 4.2.4).
func TestStaleWhileRevalidate(t *testing.T) {
	tests := []struct {
		name  string
		opts  Options
		cc    string
		stale bool
	}{
		{name: "option", opts: Options{StaleWhileRevalidate: 30 * time.Second}, cc: "max-age=10", stale: true},
		{name: "directive", cc: "max-age=10, stale-while-revalidate=30", stale: true},
		{name: "directive over option", opts: Options{StaleWhileRevalidate: time.Hour}, cc: "max-age=10, stale-while-revalidate=1"},
		{name: "must-revalidate", opts: Options{StaleWhileRevalidate: 30 * time.Second}, cc: "max-age=10, must-revalidate"},
		{name: "proxy-revalidate", cc: "max-age=10, proxy-revalidate, stale-while-revalidate=30"},
		// RFC 9111 section 5.2.2.10: s-maxage implies proxy-revalidate.
		{name: "s-maxage", opts: Options{StaleWhileRevalidate: 30 * time.Second}, cc: "s-maxage=10"},
		{name: "s-maxage with directive", cc: "s-maxage=10, stale-while-revalidate=30"},
		{name: "none", cc: "max-age=10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.opts)
			h := f.c.Middleware(f.handler(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Cache-Control", tt.cc)
				fmt.Fprintf(w, "v%d", f.runs.Load())
			}))
			do(h, "GET", "/s")
			f.clock.Advance(15 * time.Second)
			w := do(h, "GET", "/s")
			if !tt.stale {
				if body(t, w) != "v2" || hasStatus(w, "hit") {
					t.Fatalf("past freshness: %q %q", body(t, w), w.Header().Get("Cache-Status"))
				}
				return
			}
			if body(t, w) != "v1" || !hasStatus(w, "hit; ttl=-5; detail=stale-while-revalidate") {
				t.Fatalf("stale: %q %q", body(t, w), w.Header().Get("Cache-Status"))
			}
			f.c.bg.Wait() // the background refresh
			if n := f.runs.Load(); n != 2 {
				t.Fatalf("handler ran %d times, want 2", n)
			}
			if w := do(h, "GET", "/s"); body(t, w) != "v2" || !hasStatus(w, "hit; ttl=10") {
				t.Errorf("after refresh: %q %q", body(t, w), w.Header().Get("Cache-Status"))
			}
			f.clock.Advance(45 * time.Second) // past both windows
			if w := do(h, "GET", "/s"); body(t, w) != "v3" {
				t.Errorf("past the window: %q", body(t, w))
			}
			if f.count(StaleServed) != 1 {
				t.Errorf("stale-served events: %d", f.count(StaleServed))
			}
		})
	}
}

// TestStaleIfError: RFC 5861 section 4.
func TestStaleIfError(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		cc   string
		// revalidate: the response forbids stale serving (RFC 9111
		// sections 5.2.2.2, 5.2.2.8, 5.2.2.10), so the error is served.
		revalidate bool
	}{
		{name: "option", opts: Options{StaleIfError: 60 * time.Second}, cc: "max-age=10"},
		{name: "directive", cc: "max-age=10, stale-if-error=60"},
		{name: "must-revalidate", cc: "max-age=10, must-revalidate, stale-if-error=60", revalidate: true},
		{name: "s-maxage", opts: Options{StaleIfError: 60 * time.Second}, cc: "s-maxage=10", revalidate: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.opts)
			failing := false
			h := f.c.Middleware(f.handler(func(w http.ResponseWriter, r *http.Request) {
				if failing {
					http.Error(w, "down", http.StatusBadGateway)
					return
				}
				w.Header().Set("Cache-Control", tt.cc)
				fmt.Fprint(w, "good")
			}))
			do(h, "GET", "/e")
			failing = true
			f.clock.Advance(30 * time.Second)
			w := do(h, "GET", "/e")
			if tt.revalidate {
				if w.Code != 502 {
					t.Fatalf("stale served despite %q: %d %q", tt.cc, w.Code, w.Header().Get("Cache-Status"))
				}
				return
			}
			// Forwarded, so not a hit (RFC 9211 section 2.1): the stale
			// response stands in for the 502 the handler answered.
			if w.Code != 200 || body(t, w) != "good" || !hasStatus(w, "cachekit; fwd=stale; ttl=-20; fwd-status=502; detail=stale-if-error") {
				t.Fatalf("within stale-if-error: %d %q %q", w.Code, body(t, w), w.Header().Get("Cache-Status"))
			}
			f.clock.Advance(41 * time.Second)
			if w := do(h, "GET", "/e"); w.Code != 502 {
				t.Errorf("past stale-if-error: %d", w.Code)
			}
		})
	}
}

func TestAuthorizationLookup(t *testing.T) {
	f := newFixture(t, Options{})
	h := f.c.Middleware(f.handler(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/public" {
			w.Header().Set("Cache-Control", "public, max-age=60")
		}
		fmt.Fprintf(w, "user=%q", r.Header.Get("Authorization"))
	}))
	// An anonymous response is not served to a request with Authorization:
	// the handler might answer it differently.
	do(h, "GET", "/page")
	if w := do(h, "GET", "/page", "Authorization", "Bearer a"); body(t, w) != `user="Bearer a"` {
		t.Errorf("authorized request got %q", body(t, w))
	}
	// A public one is.
	do(h, "GET", "/public")
	if w := do(h, "GET", "/public", "Authorization", "Bearer a"); !hasStatus(w, "hit") {
		t.Errorf("public response not served: %q", w.Header().Get("Cache-Status"))
	}
}

func TestRequestDirectives(t *testing.T) {
	f := newFixture(t, Options{})
	h := f.c.Middleware(f.handler(hello(nil)))
	do(h, "GET", "/r")
	// RFC 9111 section 5.2.1.4: no-cache goes to the origin (and stores).
	if w := do(h, "GET", "/r", "Cache-Control", "no-cache"); !hasStatus(w, "fwd=request") || !hasStatus(w, "stored") {
		t.Errorf("no-cache: %q", w.Header().Get("Cache-Status"))
	}
	// Section 5.2.1.5: no-store neither reads nor stores.
	if w := do(h, "GET", "/s", "Cache-Control", "no-store"); !hasStatus(w, "bypass") {
		t.Errorf("no-store: %q", w.Header().Get("Cache-Status"))
	}
	if w := do(h, "GET", "/s"); hasStatus(w, "hit") {
		t.Errorf("no-store request stored its response")
	}
	if n := f.runs.Load(); n != 4 {
		t.Errorf("handler ran %d times, want 4", n)
	}

	f = newFixture(t, Options{IgnoreRequestCacheControl: true})
	h = f.c.Middleware(f.handler(hello(nil)))
	do(h, "GET", "/r", "Cache-Control", "no-store")
	for _, cc := range []string{"no-cache", "no-store"} {
		if w := do(h, "GET", "/r", "Cache-Control", cc); !hasStatus(w, "hit") {
			t.Errorf("ignored %s: %q", cc, w.Header().Get("Cache-Status"))
		}
	}
}

// versionDeps is a Deps whose version the test sets.
type versionDeps struct{ v atomic.Value }

func (d *versionDeps) Version(ctx context.Context, r *http.Request, key string) (string, error) {
	v, _ := d.v.Load().(string)
	if v == "fail" {
		return "", errors.New("deps down")
	}
	return v, nil
}

func TestRouteDeps(t *testing.T) {
	f := newFixture(t, Options{})
	deps := new(versionDeps)
	deps.v.Store("1")
	h := f.c.Route(Route{Deps: deps})(f.handler(hello(nil)))
	do(h, "GET", "/d")
	if w := do(h, "GET", "/d"); !hasStatus(w, "hit") {
		t.Fatalf("same version: %q", w.Header().Get("Cache-Status"))
	}
	deps.v.Store("2")
	if w := do(h, "GET", "/d"); hasStatus(w, "hit") {
		t.Errorf("changed version still hit")
	}
	deps.v.Store("fail")
	if w := do(h, "GET", "/d"); w.Code != 200 || !hasStatus(w, "bypass") {
		t.Errorf("failing deps: %d %q", w.Code, w.Header().Get("Cache-Status"))
	}
	if f.count(StoreError) != 1 {
		t.Errorf("store-error events: %d", f.count(StoreError))
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, o := range []Options{{TTL: -1}, {MaxBodySize: -1}, {StaleIfError: -1}, {Vary: []VaryFunc{{Name: "x"}}}} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
	c, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestHandlerPanicReachesEveryCaller(t *testing.T) {
	f := newFixture(t, Options{})
	h := f.c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { panic("boom") }))
	defer func() {
		if v := recover(); v != "boom" {
			t.Errorf("recovered %v, want boom", v)
		}
	}()
	do(h, "GET", "/p")
}

// gate makes a handler wait until n Miss events were observed, so that n
// concurrent requests are all past their lookup when it runs.
func gate(f *fixture, n int64) <-chan struct{} {
	var misses atomic.Int64
	release := make(chan struct{})
	f.onEvent = func(e Event) {
		if e.Kind == Miss && misses.Add(1) == n {
			close(release)
		}
	}
	return release
}

// concurrently serves the requests through h at once and returns their
// responses in order.
func concurrently(h http.Handler, reqs ...*http.Request) []*httptest.ResponseRecorder {
	out := make([]*httptest.ResponseRecorder, len(reqs))
	var wg sync.WaitGroup
	for i, r := range reqs {
		out[i] = httptest.NewRecorder()
		wg.Go(func() { h.ServeHTTP(out[i], r) })
	}
	wg.Wait()
	return out
}

func newRequest(target string, hdr ...string) *http.Request {
	r := httptest.NewRequest("GET", target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	return r
}

// TestCoalescedNotShareable: requests that waited on a run whose response
// they may not use (another Vary value, private, Authorization) run the
// handler themselves.
func TestCoalescedNotShareable(t *testing.T) {
	tests := []struct {
		name string
		set  func(h http.Header)
		reqs [][]string // header pairs of each request
	}{
		{name: "vary learned by the run", set: func(h http.Header) { h.Set("Vary", "Accept-Language") },
			reqs: [][]string{{"Accept-Language", "en"}, {"Accept-Language", "fr"}}},
		{name: "private", set: func(h http.Header) { h.Set("Cache-Control", "private") },
			reqs: [][]string{{"Accept-Language", "en"}, {"Accept-Language", "fr"}}},
		{name: "authorization", reqs: [][]string{{"Authorization", "en"}, {"Authorization", "fr"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Options{})
			release := gate(f, int64(len(tt.reqs)))
			h := f.c.Middleware(f.handler(func(w http.ResponseWriter, r *http.Request) {
				<-release
				if tt.set != nil {
					tt.set(w.Header())
				}
				fmt.Fprint(w, r.Header.Get("Accept-Language")+r.Header.Get("Authorization"))
			}))
			var reqs []*http.Request
			for _, hdr := range tt.reqs {
				reqs = append(reqs, newRequest("/x", hdr...))
			}
			for i, w := range concurrently(h, reqs...) {
				if got, want := body(t, w), tt.reqs[i][1]; got != want {
					t.Errorf("request %d got %q, want %q", i, got, want)
				}
			}
			if n := f.runs.Load(); n != 2 {
				t.Errorf("handler ran %d times, want 2", n)
			}
		})
	}
}

// TestStaleIfErrorCoalesced: requests that waited on a failing run get the
// stale response too. A request that reaches its run only after the failed
// one ended runs the handler again (errors are not stored), so the count
// is 2 or 3 runs; every request gets the stale response either way.
func TestStaleIfErrorCoalesced(t *testing.T) {
	f := newFixture(t, Options{StaleIfError: time.Minute})
	var failing atomic.Bool
	var release <-chan struct{}
	h := f.c.Middleware(f.handler(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			<-release
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Cache-Control", "max-age=10")
		fmt.Fprint(w, "good")
	}))
	do(h, "GET", "/e")
	f.clock.Advance(20 * time.Second)
	failing.Store(true)
	release = gate(f, 3)
	for i, w := range concurrently(h, newRequest("/e"), newRequest("/e"), newRequest("/e")) {
		if w.Code != 200 || body(t, w) != "good" {
			t.Errorf("request %d: %d %q", i, w.Code, body(t, w))
		}
	}
	if n := f.runs.Load(); n != 2 && n != 3 {
		t.Errorf("handler ran %d times, want 2 or 3", n)
	}
}

// TestRefreshFailureKeepsStale: a failed background refresh stores nothing;
// the stale response stays within its window.
func TestRefreshFailureKeepsStale(t *testing.T) {
	f := newFixture(t, Options{StaleWhileRevalidate: time.Minute})
	var failing atomic.Bool
	h := f.c.Middleware(f.handler(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Cache-Control", "max-age=10")
		fmt.Fprint(w, "good")
	}))
	do(h, "GET", "/s")
	failing.Store(true)
	f.clock.Advance(20 * time.Second)
	for i := range 2 {
		if w := do(h, "GET", "/s"); body(t, w) != "good" || !hasStatus(w, "stale-while-revalidate") {
			t.Errorf("request %d: %q %q", i, body(t, w), w.Header().Get("Cache-Status"))
		}
		f.c.bg.Wait()
	}
	if n := f.runs.Load(); n != 3 {
		t.Errorf("handler ran %d times, want 3", n)
	}
	if got := f.reasons(NotStored); len(got) != 2 || got[0] != "status" {
		t.Errorf("not-stored reasons %q", got)
	}
}

// TestEvents checks the sequence of events of a miss, a hit, an
// invalidation and a bypass, with their fields.
func TestEvents(t *testing.T) {
	f := newFixture(t, Options{})
	h := f.c.Middleware(hello(func(h http.Header) { h.Set("Surrogate-Key", "k") }))
	do(h, "GET", "/ev?b=1&a=2")
	do(h, "GET", "/ev?a=2&b=1")
	if err := f.c.InvalidateTags(context.Background(), "k"); err != nil {
		t.Fatal(err)
	}
	do(h, "OPTIONS", "/ev")
	var got []string
	for _, e := range f.events {
		got = append(got, fmt.Sprintf("%s %s %s %d", e.Kind, e.URL, e.Reason, e.Status))
	}
	want := []string{
		"miss example.com/ev?a=2&b=1  0",
		"stored example.com/ev?a=2&b=1  200",
		"hit example.com/ev?a=2&b=1  200",
		"invalidated  tag:k 0",
		"bypass example.com/ev method 0",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if f.events[1].Key == "" || f.events[1].Key != f.events[2].Key {
		t.Errorf("keys %q %q", f.events[1].Key, f.events[2].Key)
	}
}

// TestLoadTimeout: a run whose context Options.LoadTimeout ended stores
// nothing and answers 504, or the stale response inside its stale-if-error
// window.
func TestLoadTimeout(t *testing.T) {
	f := newFixture(t, Options{LoadTimeout: time.Millisecond, StaleIfError: time.Minute})
	var slow atomic.Bool
	h := f.c.Middleware(f.handler(func(w http.ResponseWriter, r *http.Request) {
		if slow.Load() {
			<-r.Context().Done() // a handler giving up when its context ends
			http.Error(w, "gave up", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Cache-Control", "max-age=10")
		fmt.Fprintf(w, "v%d", f.runs.Load())
	}))
	if w := do(h, "GET", "/t"); body(t, w) != "v1" {
		t.Fatalf("first: %q", body(t, w))
	}
	slow.Store(true)
	if w := do(h, "GET", "/u"); w.Code != http.StatusGatewayTimeout {
		t.Errorf("no stale response: %d", w.Code)
	}
	f.clock.Advance(20 * time.Second)
	if w := do(h, "GET", "/t"); w.Code != 200 || body(t, w) != "v1" || !hasStatus(w, "cachekit; fwd=stale; ttl=-10; detail=stale-if-error") {
		t.Errorf("stale response: %d %q %q", w.Code, body(t, w), w.Header().Get("Cache-Status"))
	}
	slow.Store(false)
	if w := do(h, "GET", "/u"); body(t, w) != "v4" || !hasStatus(w, "stored") {
		t.Errorf("after the slow runs: %q %q", body(t, w), w.Header().Get("Cache-Status"))
	}
	if got := f.reasons(NotStored); len(got) != 2 || got[0] != "timeout" || got[1] != "timeout" {
		t.Errorf("not-stored reasons %q", got)
	}
}

// TestRange: a 206 holds part of a representation, so it is never stored
// (RFC 9111 section 3.3; the key has no Range), and a Range request
// answered from a stored 200 gets that whole 200, never a 206.
func TestRange(t *testing.T) {
	const full = "0123456789"
	tests := []struct {
		name     string
		opts     Options
		requests [][]string // request header pairs, in order
		want     []int      // status of each response
		bodies   []string
		runs     int64
	}{
		{
			name:     "206 not stored though listed",
			opts:     Options{Statuses: []int{200, 206}},
			requests: [][]string{{"Range", "bytes=0-3"}, nil, nil},
			want:     []int{206, 200, 200},
			bodies:   []string{"0123", full, full},
			runs:     2,
		},
		{
			name:     "Range on a stored 200",
			requests: [][]string{nil, {"Range", "bytes=0-3"}},
			want:     []int{200, 200},
			bodies:   []string{full, full},
			runs:     1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.opts)
			h := f.c.Middleware(f.handler(func(w http.ResponseWriter, r *http.Request) {
				http.ServeContent(w, r, "f.txt", time.Time{}, strings.NewReader(full))
			}))
			for i, hdr := range tt.requests {
				w := do(h, "GET", "/range", hdr...)
				if w.Code != tt.want[i] || body(t, w) != tt.bodies[i] {
					t.Errorf("request %d %q: %d %q, want %d %q", i, hdr, w.Code, body(t, w), tt.want[i], tt.bodies[i])
				}
				if w.Code == 200 && w.Header().Get("Content-Range") != "" {
					t.Errorf("request %d: 200 with Content-Range %q", i, w.Header().Get("Content-Range"))
				}
			}
			if n := f.runs.Load(); n != tt.runs {
				t.Errorf("handler ran %d times, want %d", n, tt.runs)
			}
		})
	}
}

// TestConditionalMiss: a conditional request that misses runs the handler
// without its validators, so the full response is stored (and shared with
// the requests waiting on the run) and the cache answers the condition;
// otherwise revalidating clients would never fill the cache.
func TestConditionalMiss(t *testing.T) {
	tests := []struct {
		name string
		req  []string
	}{
		{name: "If-None-Match", req: []string{"If-None-Match", `"v1"`}},
		{name: "If-Modified-Since", req: []string{"If-Modified-Since", t0.Format(http.TimeFormat)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Options{})
			h := f.c.Middleware(f.handler(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("ETag", `"v1"`)
				http.ServeContent(w, r, "x.txt", t0, strings.NewReader("hello"))
			}))
			w := do(h, "GET", "/cm", tt.req...)
			if w.Code != 304 || w.Body.Len() != 0 || !hasStatus(w, "stored") || w.Header().Get("ETag") != `"v1"` {
				t.Errorf("conditional miss: %d %q %q", w.Code, w.Body, w.Header().Get("Cache-Status"))
			}
			if w := do(h, "GET", "/cm"); w.Code != 200 || body(t, w) != "hello" || !hasStatus(w, "hit") {
				t.Errorf("then unconditional: %d %q", w.Code, w.Header().Get("Cache-Status"))
			}
			if n := f.runs.Load(); n != 1 {
				t.Errorf("handler ran %d times, want 1", n)
			}
		})
	}
}

// TestCacheStatusAppends: a handler that is itself behind a cache (a
// reverse proxy) brings its Cache-Status; this cache's member follows it,
// on the miss and on the hits replaying it (RFC 9211 section 2).
func TestCacheStatusAppends(t *testing.T) {
	tests := []struct {
		name string
		want string
	}{
		{name: "miss", want: "origin; hit, cachekit; fwd=uri-miss; fwd-status=200; stored"},
		{name: "hit", want: "origin; hit, cachekit; hit; ttl=300"},
		{name: "304", want: "origin; hit, cachekit; hit; ttl=300"},
	}
	f := newFixture(t, Options{})
	h := f.c.Middleware(f.handler(hello(func(h http.Header) { h.Set("Cache-Status", "origin; hit") })))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var req []string
			if tt.name == "304" {
				req = []string{"If-None-Match", "*"}
			}
			if got := do(h, "GET", "/cs", req...).Header().Values("Cache-Status"); len(got) != 1 || got[0] != tt.want {
				t.Errorf("Cache-Status %q, want %q", got, tt.want)
			}
		})
	}
}

// TestHopByHopNotStored: fields about one connection (RFC 9110 section
// 7.6.1) or one proxy (RFC 9111 section 3.1) are not replayed by hits.
func TestHopByHopNotStored(t *testing.T) {
	tests := []struct {
		field, value string
		kept         bool // end to end: replayed
	}{
		{field: "Connection", value: "close, X-Conn-Only"},
		{field: "X-Conn-Only", value: "1"}, // named by Connection
		{field: "Keep-Alive", value: "timeout=5"},
		{field: "Proxy-Connection", value: "close"},
		{field: "Upgrade", value: "h2c"},
		{field: "Proxy-Authenticate", value: "Basic"},
		{field: "X-Kept", value: "1", kept: true},
	}
	f := newFixture(t, Options{})
	h := f.c.Middleware(f.handler(hello(func(h http.Header) {
		for _, tt := range tests {
			h.Set(tt.field, tt.value)
		}
	})))
	do(h, "GET", "/hop")
	w := do(h, "GET", "/hop")
	if !hasStatus(w, "hit") {
		t.Fatalf("not a hit: %q", w.Header().Get("Cache-Status"))
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			if got := w.Header().Get(tt.field); (got != "") != tt.kept {
				t.Errorf("hit's %s = %q, kept %v", tt.field, got, tt.kept)
			}
		})
	}
}

// TestOnlyIfCached: RFC 9111 section 5.2.1.7, a request that asks not to
// reach the origin gets a stored response that may be used, else 504,
// and never runs the handler.
func TestOnlyIfCached(t *testing.T) {
	tests := []struct {
		name   string
		prime  bool          // a response is stored first
		after  time.Duration // then the clock moves on
		status int
		body   string
	}{
		{name: "fresh", prime: true, status: 200, body: "hello /o"},
		{name: "nothing stored", status: 504},
		{name: "stale", prime: true, after: time.Hour, status: 504},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Options{})
			h := f.c.Middleware(f.handler(hello(nil)))
			if tt.prime {
				do(h, "GET", "/o")
			}
			f.clock.Advance(tt.after)
			runs := f.runs.Load()
			w := do(h, "GET", "/o", "Cache-Control", "only-if-cached")
			if w.Code != tt.status || (tt.body != "" && body(t, w) != tt.body) {
				t.Errorf("got %d %q, want %d %q", w.Code, w.Body, tt.status, tt.body)
			}
			if n := f.runs.Load(); n != runs {
				t.Errorf("handler ran %d times", n-runs)
			}
		})
	}
}
