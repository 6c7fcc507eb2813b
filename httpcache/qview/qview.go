// Package qview ties the responses of an [httpcache] route to the rows its
// queries read, through a query cache policy: a write that the policy sees
// and that could change the result of one of the route's queries
// invalidates the route's stored responses, row-granularly
// (django-cacheops' cached_view_as).
//
//	posts := qview.Must(policy, "user.posts", func(r *http.Request) []qcache.Dep {
//		return []qcache.Dep{qcache.SQL(`SELECT * FROM posts WHERE user_id = ?`, r.PathValue("id"))}
//	}, qview.Options{})
//	mux.Handle("GET /users/{id}/posts", hc.Route(httpcache.Route{Deps: posts})(handler))
//
// It lives apart from httpcache because qcache builds two SQL parsers, one
// through cgo: httpcache users who do not need table dependencies do not
// build them.
//
// # How
//
// Deps is an [httpcache.Deps] whose version of a request is a random token
// cached with [qcache.CachedAs] under the request's dependencies: the
// token stays the same until a write invalidates one of them (or the
// token's TTL passes), and a new token then orphans the responses stored
// under the old one. The token is read before the handler runs, so a
// write during the run orphans what the run stores.
package qview

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/cachekit/cachekit/httpcache"
	"github.com/cachekit/cachekit/qcache"
)

// Options configures [New]. The zero value is valid.
type Options struct {
	// TTL is how long a version token is kept when no write invalidates
	// it. Its expiry orphans the responses stored under it, so make it at
	// least the freshness lifetime of the route's responses. Default: the
	// policy's GranularOptions.TTL.
	TTL time.Duration

	// OnError receives the query cache's errors that do not fail a request
	// (see qcache.CachedAsOptions.OnError). Default nil: dropped.
	OnError func(error)
}

// Deps is the dependencies of a route's responses on database rows. It
// implements [httpcache.Deps] and is safe for concurrent use.
type Deps struct {
	f    *qcache.Func[view, string]
	deps func(*http.Request) []qcache.Dep
}

var _ httpcache.Deps = (*Deps)(nil)

// view is the argument of the token function: a response's cache key and
// the dependencies of its request.
type view struct {
	key  string
	deps []qcache.Dep
}

// CacheKey keys the token by the response's key: one token a variant.
func (v view) CacheKey() string { return v.key }

// New returns the dependencies of a route under p: deps returns the
// queries ([qcache.SQL]) and tables ([qcache.Table]) the route's handler
// reads for a request. name tells routes apart in p's store and should
// change when the route's queries do ("user.posts/v2"). deps must not
// read r's body.
func New(p *qcache.GranularPolicy, name string, deps func(r *http.Request) []qcache.Dep, opts Options) (*Deps, error) {
	if deps == nil {
		return nil, errors.New("qview: New with nil deps")
	}
	f, err := qcache.CachedAs(p, "httpcache:"+name, func(v view) []qcache.Dep { return v.deps }, newToken,
		qcache.CachedAsOptions{TTL: opts.TTL, OnError: opts.OnError})
	if err != nil {
		return nil, fmt.Errorf("qview: %w", err)
	}
	return &Deps{f: f, deps: deps}, nil
}

// Must is New that panics on an error.
func Must(p *qcache.GranularPolicy, name string, deps func(r *http.Request) []qcache.Dep, opts Options) *Deps {
	d, err := New(p, name, deps, opts)
	if err != nil {
		panic(err)
	}
	return d
}

// Version returns the current token of r's dependencies: the same string
// until a write invalidates one of them. It fails (and httpcache then
// bypasses the cache) when a dependency is invalid (an error wrapping
// qcache.ErrInvalidDep).
func (d *Deps) Version(ctx context.Context, r *http.Request, key string) (string, error) {
	return d.f.Call(ctx, view{key: key, deps: d.deps(r)})
}

// Close waits for the token computations in flight.
func (d *Deps) Close() error { return d.f.Close() }

// newToken returns a fresh random version.
func newToken(context.Context, view) (string, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}
