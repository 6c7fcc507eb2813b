package fragment

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"sync"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/internal/flight"
	"github.com/cachekit/cachekit/memo"
	"github.com/cachekit/cachekit/memory"
)

// Defaults of [Options].
const (
	// DefaultPrefix goes in front of every fragment key.
	DefaultPrefix = "fragment"

	// DefaultTTL is how long a fragment is kept when neither the call nor
	// Options.TTL says otherwise.
	DefaultTTL = cachekit.DefaultTTL
)

// Options configures a [Cache]. The zero value is valid: fragments in a
// new in-process memory store, keys prefixed "fragment", kept five
// minutes.
type Options struct {
	// Store keeps the fragments. Default: a new memory store
	// (memory.NewStore with default options), which Close closes. A
	// store given here is not closed by Close: it may be shared (with a
	// query cache policy, for instance).
	Store cachekit.Store

	// Prefix goes in front of every key, followed by ":" and Version.
	// Default [DefaultPrefix].
	Prefix string

	// Version goes in every key (the project version, Django's VERSION):
	// change it to orphan every fragment of an older deploy. Zero means 1.
	// Negative values are refused.
	Version int

	// TTL is how long a fragment is kept when the call passes no [TTL]
	// option. Zero means [DefaultTTL]; [cachekit.NoExpiry] means until
	// invalidated or evicted. Negative values are refused.
	TTL time.Duration

	// LoadTimeout bounds a render shared by coalesced callers, which runs
	// on a context none of them can cancel. Zero means
	// memo.DefaultLoadTimeout. Negative values are refused.
	LoadTimeout time.Duration

	// KeyPolicy rewrites or refuses keys before they reach the store, for
	// instance cachekit.MemcachedKey. Default nil: keys pass unchanged.
	KeyPolicy cachekit.KeyPolicy

	// Deps gives the dependencies of the fragments rendered without the
	// [DependsOn] option, those of the template functions in particular:
	// called with a fragment's name and vary-on values, it returns nil for
	// a fragment without dependencies. Default nil: none.
	Deps func(name string, vary []string) Deps

	// Observer receives the events of every fragment (hits, misses,
	// coalesced callers, store errors; see memo.EventKind), with the
	// fragment's name in Event.Func and its store key, before the key
	// policy, in Event.Key. It must be safe for concurrent use and must not
	// block. Default nil.
	//
	// Every call reports one Hit or one Miss. For a fragment with
	// dependencies, a Hit means the stored fragment was served as it is: a
	// fragment rendered again because its dependency token changed is a
	// Miss.
	Observer memo.Observer

	// Clock is the time source of expiry, also given to the default
	// store. It must agree with the store's. Default
	// [cachekit.SystemClock]. A test seam.
	Clock cachekit.Clock
}

// Cache renders and caches HTML fragments. Create it with [New]. It is
// safe for concurrent use.
type Cache struct {
	cache     *cachekit.Cache[stored]
	ownsStore bool
	opts      Options

	mu    sync.Mutex // protects funcs and closed
	funcs map[funcKey]*memo.Func[call, stored]
	// closed is set by Close; later calls fail with cachekit.ErrClosed.
	closed bool

	// refresh coalesces the re-renders of fragments whose dependency token
	// changed, per key and token.
	refresh flight.Group[string, stored]
}

// stored is what a fragment key holds: the HTML, and the dependency
// token it was rendered under ("" without dependencies).
type stored struct {
	HTML  template.HTML
	Token string
}

// funcKey selects the memo.Func of a name, a TTL, and whether its calls
// have dependencies. Funcs of one name share their keys and their
// generation (memo keys and stamps are by name), so that any of them
// invalidates for all.
//
// The Funcs of calls with dependencies report no hits and misses to
// Options.Observer: a value memo finds may have been rendered under an
// older token and be rendered again, which memo would count as a hit.
// Fragment reports those calls' hits and misses itself, once it has
// compared the tokens.
type funcKey struct {
	name string
	ttl  time.Duration
	deps bool
}

// call is the argument of a memo.Func: the vary-on values (their
// encoding is the key), the render and the dependency token.
type call struct {
	vary   string // encodeVary of the values
	render func(io.Writer) error
	token  string
}

// CacheKey implements memo.Keyer: the key of a call is its vary-on
// values only.
func (c call) CacheKey() string { return c.vary }

// New returns a Cache configured by opts, or an error when opts are not
// valid.
func New(opts Options) (*Cache, error) {
	switch {
	case opts.Version < 0:
		return nil, fmt.Errorf("fragment: Options.Version %d is negative", opts.Version)
	case opts.TTL < 0:
		return nil, errors.New("fragment: Options.TTL is negative (use cachekit.NoExpiry for no expiry)")
	case opts.LoadTimeout < 0:
		return nil, errors.New("fragment: Options.LoadTimeout is negative")
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.TTL == 0 {
		opts.TTL = DefaultTTL
	}
	if opts.LoadTimeout == 0 {
		opts.LoadTimeout = memo.DefaultLoadTimeout
	}
	if opts.Clock == nil {
		opts.Clock = cachekit.SystemClock{}
	}
	owns := false
	if opts.Store == nil {
		s, err := memory.NewStore(memory.StoreOptions{Clock: opts.Clock})
		if err != nil {
			return nil, fmt.Errorf("fragment: default store: %w", err)
		}
		opts.Store, owns = s, true
	}
	cache, err := cachekit.New[stored](opts.Store, cachekit.Options{
		Prefix:      opts.Prefix,
		Version:     opts.Version,
		KeyPolicy:   opts.KeyPolicy,
		DefaultTTL:  opts.TTL,
		LoadTimeout: opts.LoadTimeout,
		Clock:       opts.Clock,
	})
	if err != nil {
		if owns {
			opts.Store.Close()
		}
		return nil, fmt.Errorf("fragment: %w", err)
	}
	return &Cache{cache: cache, ownsStore: owns, opts: opts, funcs: map[funcKey]*memo.Func[call, stored]{}}, nil
}

// Option modifies one call of [Cache.Render] or [Cache.Fragment].
type Option func(*callOptions)

type callOptions struct {
	ttl  time.Duration
	deps Deps
}

// TTL sets how long the fragment rendered by the call is kept. Zero means
// Options.TTL; [cachekit.NoExpiry] means until invalidated or evicted; a
// negative TTL ([cachekit.ExpireNow]) renders without storing and
// deletes the stored fragment, as a negative TTL deletes a key everywhere
// in cachekit.
func TTL(d time.Duration) Option { return func(o *callOptions) { o.ttl = d } }

// Deps tells whether a fragment must be rendered again because data it
// shows has changed. Token returns a string for the fragment under key
// (its store key, see [Cache.Key]) that stays the same while the data is
// unchanged and changes when it may have changed; it must be read before
// the fragment renders, so that a render that started before a change is
// never taken for one that started after it. The package
// github.com/cachekit/cachekit/fragment/qdep implements it with the query
// cache's row-granular invalidation.
type Deps interface {
	Token(ctx context.Context, key string) (string, error)
}

// DependsOn makes the fragment depend on d: a stored fragment is served
// only while d's token is the one it was rendered under. It replaces
// what Options.Deps gives for the fragment.
func DependsOn(d Deps) Option { return func(o *callOptions) { o.deps = d } }

// Key returns the store key of the fragment name with the vary-on values
// vary: the prefix, the version, the name, and the values length-prefixed
// in parentheses and quoted, as in `fragment:1:sidebar("2:42")` for
// name "sidebar" and vary ["42"]. The key policy applies last.
func (c *Cache) Key(name string, vary ...string) (string, error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	f, err := c.fn(funcKey{name: name, ttl: c.opts.TTL})
	if err != nil {
		return "", err
	}
	return c.storeKey(f, call{vary: encodeVary(vary)})
}

func (c *Cache) storeKey(f *memo.Func[call, stored], a call) (string, error) {
	k, err := f.Key(a)
	if err != nil {
		return "", fmt.Errorf("fragment: %w", err)
	}
	k, err = c.cache.Key(k)
	if err != nil {
		return "", fmt.Errorf("fragment: %w", err)
	}
	return k, nil
}

// Render writes the fragment name for the vary-on values vary to w: the
// stored HTML when there is a live one, otherwise what render writes,
// which is then stored. Concurrent calls of this process for the same
// fragment share one render. Nothing is written to w when the render fails,
// and a failed render is never stored.
//
// render's output is taken as safe HTML ([template.HTML]): it must escape
// what it writes, as executing an html/template does.
//
// WARNING: a shared render runs on behalf of every caller waiting for it,
// bounded by Options.LoadTimeout: if render uses a caller's context, that
// caller's cancellation fails the others.
func (c *Cache) Render(ctx context.Context, w io.Writer, name string, vary []string, render func(io.Writer) error, opts ...Option) error {
	h, err := c.Fragment(ctx, name, vary, render, opts...)
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, string(h))
	return err
}

// Fragment is [Cache.Render] returning the HTML instead of writing it.
func (c *Cache) Fragment(ctx context.Context, name string, vary []string, render func(io.Writer) error, opts ...Option) (template.HTML, error) {
	if render == nil {
		return "", errors.New("fragment: nil render")
	}
	if err := checkName(name); err != nil {
		return "", err
	}
	var o callOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.ttl < 0 {
		if err := c.Invalidate(ctx, name, vary...); err != nil {
			return "", err
		}
		s, err := renderHTML(render)
		if err != nil {
			return "", fmt.Errorf("fragment %s: %w", name, err)
		}
		return s.HTML, nil
	}
	if o.ttl == 0 {
		o.ttl = c.opts.TTL
	}
	if o.deps == nil && c.opts.Deps != nil {
		o.deps = c.opts.Deps(name, vary)
	}
	f, err := c.fn(funcKey{name, o.ttl, o.deps != nil})
	if err != nil {
		return "", err
	}
	a := call{vary: encodeVary(vary), render: render}
	if o.deps == nil {
		s, err := f.Call(ctx, a)
		return s.HTML, wrap(name, err)
	}
	mkey, err := f.Key(a)
	if err != nil {
		return "", fmt.Errorf("fragment: %w", err)
	}
	key, err := c.storeKey(f, a)
	if err != nil {
		return "", err
	}
	// The token is read before any render this call may start or join.
	if a.token, err = o.deps.Token(ctx, key); err != nil {
		return "", fmt.Errorf("fragment %s: dependency token: %w", name, err)
	}
	// f reports no hits or misses (see funcKey): this call is a hit only
	// when the stored fragment was rendered under the current token.
	s, err := f.Peek(ctx, a)
	switch {
	case err == nil && s.Token == a.token:
		c.observe(memo.Hit, name, mkey)
		return s.HTML, nil
	case err != nil && !errors.Is(err, cachekit.ErrMiss):
		return "", wrap(name, err)
	}
	c.observe(memo.Miss, name, mkey)
	if err != nil {
		// Nothing stored: render, or join a render in flight.
		if s, err = f.Call(ctx, a); err != nil {
			return "", wrap(name, err)
		}
		if s.Token == a.token {
			return s.HTML, nil
		}
	}
	// The stored fragment, or the render this call joined, predates a
	// change of the data (or a token read since): render again, once per
	// key and token in this process.
	s, err, _ = c.refresh.Do(ctx, key+"\x00"+a.token, c.opts.LoadTimeout, func(ctx context.Context) (stored, error) {
		// A re-render for this token may have been stored since this
		// call's lookup (by a flight that ended meanwhile).
		if s, err := f.Peek(ctx, a); err == nil && s.Token == a.token {
			return s, nil
		}
		return f.Refresh(ctx, a)
	})
	if pe := (*flight.PanicError)(nil); errors.As(err, &pe) {
		return "", fmt.Errorf("fragment %s: render panicked: %v\n%s", name, pe.Value, pe.Stack)
	}
	return s.HTML, wrap(name, err)
}

func wrap(name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("fragment %s: %w", name, err)
}

// renderHTML runs a render into a buffer.
func renderHTML(render func(io.Writer) error) (stored, error) {
	var b bytes.Buffer
	if err := render(&b); err != nil {
		return stored{}, err
	}
	return stored{HTML: template.HTML(b.String())}, nil
}

// observe reports an event of the fragment name, under its memo key, to
// Options.Observer.
func (c *Cache) observe(kind memo.EventKind, name, key string) {
	if c.opts.Observer != nil {
		c.opts.Observer.Observe(memo.Event{Kind: kind, Func: name, Key: key})
	}
}

// fn returns the memo.Func of k, making it on first use.
func (c *Cache) fn(k funcKey) (*memo.Func[call, stored], error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, fmt.Errorf("fragment: %w", cachekit.ErrClosed)
	}
	if f := c.funcs[k]; f != nil {
		return f, nil
	}
	obs := c.opts.Observer
	if inner := obs; k.deps && inner != nil {
		obs = memo.ObserverFunc(func(e memo.Event) {
			if e.Kind != memo.Hit && e.Kind != memo.Miss {
				inner.Observe(e)
			}
		})
	}
	f, err := memo.New(c.cache, k.name, func(_ context.Context, a call) (stored, error) {
		s, err := renderHTML(a.render)
		s.Token = a.token
		return s, err
	}, memo.Options{
		TTL: k.ttl, LoadTimeout: c.opts.LoadTimeout, Observer: obs, Clock: c.opts.Clock,
	})
	if err != nil {
		return nil, fmt.Errorf("fragment: %w", err)
	}
	c.funcs[k] = f
	return f, nil
}

// Invalidate removes the fragment name stored for the vary-on values
// vary: the next render of it renders again. A render of it in flight in
// this process, whatever its TTL or dependencies, stores nothing.
func (c *Cache) Invalidate(ctx context.Context, name string, vary ...string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if _, err := c.fn(funcKey{name: name, ttl: c.opts.TTL}); err != nil {
		return err
	}
	// Each memo.Func of the name (one per TTL, with and without
	// dependencies) keeps its own renders in flight from storing: all of
	// them are told. The key is the same for all.
	c.mu.Lock()
	var fs []*memo.Func[call, stored]
	for k, f := range c.funcs {
		if k.name == name {
			fs = append(fs, f)
		}
	}
	c.mu.Unlock()
	a := call{vary: encodeVary(vary)}
	var errs []error
	for _, f := range fs {
		errs = append(errs, f.Invalidate(ctx, a))
	}
	return wrap(name, errors.Join(errs...))
}

// InvalidateAll makes every stored variant of the fragment name, in every
// process sharing the store, read as a miss, with one store operation
// however many variants there are: the name's generation changes (see
// memo.Func.InvalidateAll).
func (c *Cache) InvalidateAll(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	f, err := c.fn(funcKey{name: name, ttl: c.opts.TTL})
	if err != nil {
		return err
	}
	return wrap(name, f.InvalidateAll(ctx))
}

// Close waits for the renders in flight and closes the store when the
// Cache made it (Options.Store nil). Later calls fail with an error
// wrapping cachekit.ErrClosed.
func (c *Cache) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	funcs := c.funcs
	c.mu.Unlock()
	var errs []error
	for _, f := range funcs {
		errs = append(errs, f.Close())
	}
	c.refresh.Wait()
	if c.ownsStore {
		errs = append(errs, c.cache.Close())
	}
	return errors.Join(errs...)
}
