package httpcache

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cachekit/cachekit"
)

// Defaults of [Options].
const (
	DefaultTTL         = 5 * time.Minute
	DefaultMaxBodySize = 1 << 20
	DefaultPrefix      = "httpcache:"
	DefaultTagHeader   = "Surrogate-Key"
	DefaultName        = "cachekit"
)

// Options configures a [Cache]. The zero value is valid: responses go to a
// private in-process memory store, 200 responses are kept for DefaultTTL
// unless they say otherwise, bodies up to DefaultMaxBodySize.
type Options struct {
	// Store holds the responses, the learned Vary lists and the stamps of
	// URLs and tags. Default: a new memory.Store, closed by Cache.Close (a
	// Store given here is not closed by Close).
	Store cachekit.Store

	// Prefix is put before every key written to Store. Default
	// DefaultPrefix.
	Prefix string

	// TTL is the freshness lifetime of a stored response that neither its
	// route nor its own headers (s-maxage, max-age, Expires) set. Default
	// DefaultTTL. Negative is an error.
	TTL time.Duration

	// Statuses are the status codes whose responses may be stored. Default:
	// 200 only. 404 is added when NegativeTTL is positive. 206 and 304
	// are never stored: they answer a request's Range or conditionals.
	Statuses []int

	// NegativeTTL, when positive, stores 404 responses for this long,
	// whatever their headers say about freshness (no-store, private and
	// the other refusals still apply). Default 0: 404s are not stored
	// unless Statuses lists them.
	NegativeTTL time.Duration

	// MaxBodySize is the largest body stored, in bytes; larger responses
	// are served but not stored. Default DefaultMaxBodySize. Negative is an
	// error.
	MaxBodySize int64

	// QueryAllow, when not empty, keeps only these query parameters in the
	// key (the others do not make a different response, such as utm_*).
	// QueryIgnore drops these. Both may be set; QueryIgnore then applies to
	// what QueryAllow kept. Parameters are sorted in either case.
	QueryAllow, QueryIgnore []string

	// Vary adds request-derived values to every key, beyond the headers
	// the response's Vary names: cookie values ([VaryCookie]), the user
	// id, the locale. Each function must be fast and deterministic.
	Vary []VaryFunc

	// StaleWhileRevalidate is how long past its freshness a response is
	// still served while one background request refreshes it (RFC 5861
	// section 3); a response's own stale-while-revalidate directive takes
	// precedence. Default 0: stale responses are not served this way.
	StaleWhileRevalidate time.Duration

	// StaleIfError is how long past its freshness a response is served in
	// place of a 5xx answer of the handler (RFC 5861 section 4); a
	// response's own stale-if-error directive takes precedence. Default 0.
	StaleIfError time.Duration

	// TagHeader is the response header whose space-separated values tag
	// the stored response for [Cache.InvalidateTags]. Default
	// DefaultTagHeader ("Surrogate-Key", as Fastly names it).
	TagHeader string

	// KeepOnUnsafe keeps stored responses of a URL when an unsafe request
	// (POST, PUT, DELETE, PATCH) to it succeeds. Default false: such a
	// request invalidates the URL, as RFC 9111 section 4.4 requires.
	KeepOnUnsafe bool

	// IgnoreRequestCacheControl ignores the no-cache, no-store and
	// only-if-cached directives of requests (as Django's middleware and
	// Varnish's default configuration do), so that clients cannot force
	// handler runs: a shift-reload otherwise goes to the handler. Default
	// false: they are honoured (RFC 9111 sections 5.2.1.4, 5.2.1.5 and
	// 5.2.1.7).
	IgnoreRequestCacheControl bool

	// Name is the cache's name in Cache-Status (RFC 9211). Default
	// DefaultName.
	Name string

	// LoadTimeout bounds a handler run, which runs on a context none of the
	// requests sharing it can cancel: the run's context ends after
	// LoadTimeout, and a run that returns with its context done is neither
	// stored nor shared (its requests get 504, or a stale response inside
	// its stale-if-error window). The handler must watch its context for
	// the bound to cut it short. Default 0: no bound beyond the handler's
	// own.
	LoadTimeout time.Duration

	// Observer receives every event; nil drops them.
	Observer Observer

	// Clock tells the time of storage, freshness and Age. Default
	// cachekit.SystemClock{}. A test seam.
	Clock cachekit.Clock
}

// Route configures the caching of one route (see [Cache.Route]). The zero
// value caches with the Cache's Options.
type Route struct {
	// TTL, when positive, is the freshness lifetime of this route's
	// responses, overriding their s-maxage, max-age and Expires (Django's
	// cache_page timeout).
	TTL time.Duration

	// Deps, when set, ties the route's stored responses to state outside
	// the cache: a response is served only while Deps reports the version
	// it reported before the handler ran. The qview subpackage implements
	// it over a query cache policy, so that a write to the rows a page
	// reads invalidates the page.
	Deps Deps

	// Tags are added to the tags each of this route's responses carries in
	// Options.TagHeader.
	Tags []string

	// Bypass turns caching off for this route.
	Bypass bool
}

// Deps reports the version of what a request's response depends on. A
// stored response records the version read before its handler ran and is
// served only while Version returns the same string, so a change that
// happens while the handler runs is never hidden. key is the response's
// cache key, for implementations that keep per-key state.
type Deps interface {
	Version(ctx context.Context, r *http.Request, key string) (string, error)
}

// VaryFunc returns the part of a request that, beyond the URL and the
// headers a response's Vary names, selects a distinct response. Its name
// is part of the key, so two functions returning the same value do not
// collide.
type VaryFunc struct {
	Name string
	Func func(r *http.Request) string
}

// VaryCookie returns a VaryFunc keying responses by the values of the named
// cookies (a session's language, a theme), so that the responses of pages
// that read them can be shared by everyone with the same values.
func VaryCookie(names ...string) VaryFunc {
	return VaryFunc{
		Name: "cookie:" + strings.Join(names, ","),
		Func: func(r *http.Request) string {
			var b strings.Builder
			for _, n := range names {
				if c, err := r.Cookie(n); err == nil {
					b.WriteString(strconv.Quote(c.Value))
				}
				b.WriteByte(';')
			}
			return b.String()
		},
	}
}

// validate applies the defaults and checks opts.
func (o *Options) validate() error {
	switch {
	case o.TTL < 0:
		return errors.New("httpcache: negative Options.TTL")
	case o.MaxBodySize < 0:
		return errors.New("httpcache: negative Options.MaxBodySize")
	case o.NegativeTTL < 0 || o.StaleWhileRevalidate < 0 || o.StaleIfError < 0 || o.LoadTimeout < 0:
		return errors.New("httpcache: negative NegativeTTL, StaleWhileRevalidate, StaleIfError or LoadTimeout")
	}
	for i, v := range o.Vary {
		if v.Name == "" || v.Func == nil {
			return fmt.Errorf("httpcache: Options.Vary[%d] without a name or function", i)
		}
	}
	if o.TTL == 0 {
		o.TTL = DefaultTTL
	}
	if o.MaxBodySize == 0 {
		o.MaxBodySize = DefaultMaxBodySize
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.TagHeader == "" {
		o.TagHeader = DefaultTagHeader
	}
	if o.Name == "" {
		o.Name = DefaultName
	}
	if o.Clock == nil {
		o.Clock = cachekit.SystemClock{}
	}
	if len(o.Statuses) == 0 {
		o.Statuses = []int{http.StatusOK}
	}
	return nil
}
