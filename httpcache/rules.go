package httpcache

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// directives is a parsed Cache-Control field (RFC 9111 section 5.2):
// lower-case names to their unquoted arguments ("" for none).
type directives map[string]string

// parseCacheControl parses every Cache-Control line of h. A directive
// with a field list, such as private="Set-Cookie", counts as the whole
// directive: the conservative reading for a shared cache.
func parseCacheControl(h http.Header) directives {
	d := directives{}
	for _, line := range h.Values("Cache-Control") {
		for part := range strings.SplitSeq(line, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			name, arg, _ := strings.Cut(part, "=")
			name = strings.ToLower(strings.TrimSpace(name))
			if _, dup := d[name]; dup {
				continue // the first occurrence counts (RFC 9111 section 4.2.1)
			}
			d[name] = strings.Trim(strings.TrimSpace(arg), `"`)
		}
	}
	return d
}

func (d directives) has(name string) bool { _, ok := d[name]; return ok }

// seconds returns the delta-seconds argument of name (RFC 9111 section
// 1.2.2); ok is false when the directive is absent or its argument is not
// a non-negative integer.
func (d directives) seconds(name string) (time.Duration, bool) {
	v, ok := d[name]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	const max = int64(1<<63-1) / int64(time.Second)
	return time.Duration(min(n, max)) * time.Second, true
}

// unsafeMethod reports whether a method may change state on the origin
// (RFC 9110 section 9.2.1), so that its success invalidates the URL.
func unsafeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return true
}

// canonicalURL returns the host, path and sorted, filtered query of r:
// the part of the key every variant of a URL shares.
func (c *Cache) canonicalURL(u *url.URL, host string) string {
	q := u.Query()
	keys := make([]string, 0, len(q))
	for k := range q {
		if len(c.opts.QueryAllow) > 0 && !slices.Contains(c.opts.QueryAllow, k) {
			continue
		}
		if slices.Contains(c.opts.QueryIgnore, k) {
			continue
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString(strings.ToLower(host))
	b.WriteString(u.EscapedPath())
	for i, k := range keys {
		if i == 0 {
			b.WriteByte('?')
		} else {
			b.WriteByte('&')
		}
		vs := q[k]
		slices.Sort(vs)
		for j, v := range vs {
			if j > 0 {
				b.WriteByte('&')
			}
			b.WriteString(url.QueryEscape(k))
			b.WriteByte('=')
			b.WriteString(url.QueryEscape(v))
		}
	}
	return b.String()
}

// varyNames returns the header names of a response's Vary, canonical and
// sorted; star reports "Vary: *", which no request can match (RFC 9111
// section 4.1).
func varyNames(h http.Header) (names []string, star bool) {
	for _, line := range h.Values("Vary") {
		for n := range strings.SplitSeq(line, ",") {
			n = strings.TrimSpace(n)
			switch n {
			case "":
				continue
			case "*":
				return nil, true
			}
			n = http.CanonicalHeaderKey(n)
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	slices.Sort(names)
	return names, false
}

// entryKey returns the store key of the response of r to canon under the
// learned Vary list: GET (HEAD shares GET's entry), the canonical URL, the
// request's values of the varied headers and of Options.Vary. It is hashed,
// so that any store accepts it.
func (c *Cache) entryKey(r *http.Request, canon string, vary []string) string {
	h := sha256.New()
	h.Write([]byte("GET\n" + canon + "\n"))
	for _, n := range vary {
		h.Write([]byte(n + ":" + strings.Join(r.Header.Values(n), ",") + "\n"))
	}
	for _, v := range c.opts.Vary {
		h.Write([]byte(v.Name + "=" + v.Func(r) + "\n"))
	}
	return c.opts.Prefix + "r:" + hex.EncodeToString(h.Sum(nil)[:20])
}

// hashed returns a short hash of s for keys.
func hashed(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:16])
}

func (c *Cache) varyKey(canon string) string  { return c.opts.Prefix + "v:" + hashed(canon) }
func (c *Cache) urlStamp(canon string) string { return c.opts.Prefix + "s:u:" + hashed(canon) }

// tagStamp returns the stamp key of a tag, readable when the tag is short
// and printable.
func (c *Cache) tagStamp(tag string) string {
	if len(tag) > 64 || strings.ContainsFunc(tag, func(r rune) bool { return r <= ' ' || r > '~' }) {
		return c.opts.Prefix + "s:t#" + hashed(tag)
	}
	return c.opts.Prefix + "s:t:" + tag
}

// decision is what storage rules make of a handler's response.
type decision struct {
	store  bool
	reason string        // why not, when !store
	fresh  time.Duration // freshness lifetime
	swr    time.Duration // stale-while-revalidate window
	sie    time.Duration // stale-if-error window
	shared bool          // public or s-maxage: may answer requests with Authorization
}

// decide applies the storage rules of a shared cache (RFC 9111 section 3
// and 3.5) and of Options to a recorded response of r.
func (c *Cache) decide(r *http.Request, route Route, rec *recorder, now time.Time) decision {
	h := rec.header
	cc := parseCacheControl(h)
	d := decision{shared: cc.has("public") || cc.has("s-maxage")}
	status := rec.status
	negative := status == http.StatusNotFound && c.opts.NegativeTTL > 0
	switch {
	case status == http.StatusPartialContent:
		// Part of a representation, keyed as if it were all of it: never
		// stored, whatever Statuses says (RFC 9111 section 3.3).
		d.reason = "partial"
	case status == http.StatusNotModified:
		// It answers the request's conditionals, which the key lacks, and
		// has no body to replay to requests without them.
		d.reason = "not-modified"
	case !negative && !slices.Contains(c.opts.Statuses, status):
		d.reason = "status"
	case cc.has("no-store"):
		// RFC 9111 section 5.2.2.5. Django's UpdateCacheMiddleware stored
		// these (it checked only private); a shared cache must not.
		d.reason = "no-store"
	case cc.has("private"):
		d.reason = "private" // section 5.2.2.7
	case cc.has("no-cache"):
		// Section 5.2.2.4 allows storing if every use is revalidated; this
		// cache never revalidates with the origin, so it does not store.
		d.reason = "no-cache"
	case len(h.Values("Set-Cookie")) > 0:
		d.reason = "set-cookie"
	case rec.flushed:
		d.reason = "streaming"
	case rec.tooLarge:
		d.reason = "too-large"
	case r.Header.Get("Authorization") != "" && !d.shared:
		// Section 3.5: only public or s-maxage (must-revalidate is not
		// enough here: this cache does not revalidate).
		d.reason = "authorization"
	}
	if _, star := varyNames(h); star && d.reason == "" {
		d.reason = "vary-star"
	}
	if d.reason != "" {
		return d
	}
	// Freshness: the route, then s-maxage, max-age, Expires (section
	// 4.2.1), then the default.
	switch {
	case negative:
		d.fresh = c.opts.NegativeTTL
	case route.TTL > 0:
		d.fresh = route.TTL
	default:
		if v, ok := cc.seconds("s-maxage"); ok {
			d.fresh = v
		} else if v, ok := cc.seconds("max-age"); ok {
			d.fresh = v
		} else if e := h.Get("Expires"); e != "" {
			exp, err := http.ParseTime(e)
			base := now
			if dt, err := http.ParseTime(h.Get("Date")); err == nil {
				base = dt
			}
			if err == nil {
				d.fresh = max(exp.Sub(base), 0)
			} // an invalid Expires means already expired (section 5.3)
		} else {
			d.fresh = c.opts.TTL
		}
	}
	if d.fresh <= 0 {
		d.reason = "expired"
		return d
	}
	// No stale serving (RFC 9111 section 4.2.4) under must-revalidate,
	// proxy-revalidate or s-maxage, which implies proxy-revalidate in a
	// shared cache (section 5.2.2.10).
	if !cc.has("must-revalidate") && !cc.has("proxy-revalidate") && !cc.has("s-maxage") {
		d.swr = c.opts.StaleWhileRevalidate
		if v, ok := cc.seconds("stale-while-revalidate"); ok {
			d.swr = v
		}
		d.sie = c.opts.StaleIfError
		if v, ok := cc.seconds("stale-if-error"); ok {
			d.sie = v
		}
	}
	d.store = true
	return d
}

// tags returns the tags of a response: its TagHeader values and the
// route's.
func (c *Cache) tags(h http.Header, route Route) []string {
	var tags []string
	for _, line := range h.Values(c.opts.TagHeader) {
		tags = append(tags, strings.Fields(line)...)
	}
	tags = append(tags, route.Tags...)
	slices.Sort(tags)
	return slices.Compact(tags)
}

// etagMatch reports whether an If-None-Match field matches etag under the
// weak comparison (RFC 9110 section 13.1.2).
func etagMatch(field, etag string) bool {
	if etag == "" {
		return false
	}
	strip := func(t string) string { return strings.TrimPrefix(strings.TrimSpace(t), "W/") }
	want := strip(etag)
	for t := range strings.SplitSeq(field, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strip(t) == want {
			return true
		}
	}
	return false
}

// notModified reports whether a conditional GET or HEAD of r is answered
// with 304 by a stored 200 carrying h (RFC 9110 section 13.2.2: If-None-Match
// first; If-Modified-Since only without it).
func notModified(r *http.Request, h http.Header) bool {
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		return etagMatch(inm, h.Get("ETag"))
	}
	v := r.Header.Get("If-Modified-Since")
	if v == "" {
		return false // the usual request: no parse, whose failure allocates three errors
	}
	ims, err := http.ParseTime(v)
	if err != nil {
		return false
	}
	lm, err := http.ParseTime(h.Get("Last-Modified"))
	return err == nil && !lm.After(ims)
}
