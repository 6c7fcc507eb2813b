// Package qdep makes cached HTML fragments (package
// github.com/cachekit/cachekit/fragment) depend on database rows, through
// the query cache's row-granular invalidation: a fragment is rendered
// again after a write that would invalidate one of the queries (or tables)
// it depends on, as with django-cacheops' {% cached_as %}.
//
//	deps, err := qdep.New(policy, qdep.Options{})          // policy: *qcache.GranularPolicy
//	err = fc.Render(ctx, w, "post", []string{id}, render,
//		fragment.DependsOn(deps.On(qcache.SQL(`SELECT * FROM posts WHERE id = ?`, id))))
//
// For the template functions, give the dependencies by fragment name in
// fragment.Options.Deps.
//
// # How
//
// A dependency set gives each fragment key a token: a random string cached
// with qcache.CachedAs under the fragment's dependencies, so that a write
// that would invalidate them makes the next read mint a new token. The
// fragment cache keeps the token a fragment was rendered under and renders
// it again when the token has changed. Tokens are read before the render
// they guard: a render that may have read rows from before a write is never
// served after the write's invalidation.
//
// It is a package of its own so that programs caching fragments without
// database dependencies do not link qcache and its SQL parsers (one of them
// through cgo).
//
// # Caveats
//
// A token lives in the policy's store for Options.TTL: a fragment kept
// longer than its token is rendered again once the token expires, so keep
// Options.TTL at least as long as the fragments' TTL. Tokens follow the
// policy's guarantees: writes through the wrapped database (or seen by a
// qcache change feed) invalidate them; other writes do not.
package qdep

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/cachekit/cachekit/fragment"
	"github.com/cachekit/cachekit/qcache"
)

// tokenName is the name of the token function in the policy's keys.
const tokenName = "fragment.token"

// Options configures a [Tracker]. The zero value is valid.
type Options struct {
	// TTL is how long a token is kept. Default: the policy's
	// GranularOptions.TTL. Negative values are refused.
	TTL time.Duration

	// OnError receives the store errors that reading a token does not
	// return (the token is then minted anew, so the fragment is rendered
	// again). Default nil: dropped.
	OnError func(error)
}

// Tracker gives fragments dependencies on the rows a query cache policy
// tracks. Create it with [New]; it is safe for concurrent use.
type Tracker struct {
	tokens *qcache.Func[tokenArg, string]
}

// tokenArg names the token of one fragment key under its dependencies.
type tokenArg struct {
	key  string
	deps []qcache.Dep
}

// CacheKey is the fragment's key: one token per fragment.
func (a tokenArg) CacheKey() string { return a.key }

// New returns a Tracker whose tokens live in p's store, invalidated by
// p's row-granular invalidation.
func New(p *qcache.GranularPolicy, opts Options) (*Tracker, error) {
	if opts.TTL < 0 {
		return nil, errors.New("qdep: Options.TTL is negative")
	}
	f, err := qcache.CachedAs(p, tokenName,
		func(a tokenArg) []qcache.Dep { return a.deps },
		func(context.Context, tokenArg) (string, error) { return newToken() },
		qcache.CachedAsOptions{TTL: opts.TTL, OnError: opts.OnError})
	if err != nil {
		return nil, fmt.Errorf("qdep: %w", err)
	}
	return &Tracker{tokens: f}, nil
}

// newToken returns 128 random bits in hex.
func newToken() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// On returns the dependencies deps for [fragment.DependsOn] (or
// fragment.Options.Deps): the fragment is rendered again after any write
// that would invalidate one of them (see qcache.Table and qcache.SQL).
// A dependency the policy cannot track makes the render fail with an
// error wrapping qcache.ErrInvalidDep. With no dependency, the fragment is
// invalidated only by the policy's InvalidateAll (and its own TTL).
func (t *Tracker) On(deps ...qcache.Dep) fragment.Deps {
	return depSet{t: t, deps: deps}
}

// Tables is On with a whole-table dependency on each table.
func (t *Tracker) Tables(names ...string) fragment.Deps {
	deps := make([]qcache.Dep, len(names))
	for i, n := range names {
		deps[i] = qcache.Table(n)
	}
	return t.On(deps...)
}

// Close waits for the token computations in flight. The Tracker remains
// usable.
func (t *Tracker) Close() error { return t.tokens.Close() }

// depSet is a fragment.Deps over a Tracker.
type depSet struct {
	t    *Tracker
	deps []qcache.Dep
}

// Token implements fragment.Deps: the token cached for key under the
// dependencies, minted anew when a write has invalidated them.
func (d depSet) Token(ctx context.Context, key string) (string, error) {
	tok, err := d.t.tokens.Call(ctx, tokenArg{key: key, deps: d.deps})
	if err != nil {
		return "", fmt.Errorf("qdep: %w", err)
	}
	return tok, nil
}
