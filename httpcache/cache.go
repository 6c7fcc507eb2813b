package httpcache

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/internal/flight"
	"github.com/cachekit/cachekit/memory"
)

// Cache is a shared HTTP response cache used as net/http middleware. Make
// one with [New]; it is safe for concurrent use.
type Cache struct {
	opts     Options
	store    cachekit.Store
	ownStore bool // store was made by New: Close closes it

	// runs coalesces the handler runs of one key.
	runs flight.Group[string, *result]

	// epoch counts the invalidations made through this Cache, so that a
	// handler run that overlaps one stores nothing (see load).
	epoch atomic.Uint64

	// mu protects closed and the Add of bg, so that Close's Wait does not
	// race with a refresh being started.
	mu     sync.Mutex
	closed bool
	bg     sync.WaitGroup // background refreshes
}

// result is the outcome of one handler run, shared by coalesced requests.
type result struct {
	e      *entry
	stored bool
	reason string   // why it was not stored
	key    string   // the key it is stored under
	vary   []string // the Vary list it was stored with
	cached bool     // a fresh entry found before running the handler
}

// New returns a Cache configured by opts, or an error when opts are
// invalid.
func New(opts Options) (*Cache, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	c := &Cache{opts: opts, store: opts.Store}
	if c.store == nil {
		s, err := memory.NewStore(memory.StoreOptions{Clock: opts.Clock})
		if err != nil {
			return nil, fmt.Errorf("httpcache: default store: %w", err)
		}
		c.store, c.ownStore = s, true
	}
	return c, nil
}

// Must is New that panics on invalid options.
func Must(opts Options) *Cache {
	c, err := New(opts)
	if err != nil {
		panic(err)
	}
	return c
}

// Close waits for the background refreshes and the handler runs in flight,
// then closes the store New made (never one given in Options.Store). The
// middleware keeps serving afterwards, without background refreshes.
func (c *Cache) Close() error {
	c.mu.Lock()
	done := c.closed
	c.closed = true
	c.mu.Unlock()
	if done {
		return nil
	}
	c.bg.Wait()
	c.runs.Wait()
	if c.ownStore {
		return c.store.Close()
	}
	return nil
}

// Middleware caches next's responses with the Cache's options:
// Route(Route{}).
func (c *Cache) Middleware(next http.Handler) http.Handler { return c.Route(Route{})(next) }

// Route returns middleware caching one route's responses with rt.
func (c *Cache) Route(rt Route) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler { return &handler{c: c, rt: rt, next: next} }
}

// InvalidateURL orphans every stored response of a URL (each variant of
// its Vary and Options.Vary values) with one store operation. rawURL must
// be absolute ("https://example.com/posts/1?page=2"): keys include the
// host. Its query is canonicalised as requests' are.
func (c *Cache) InvalidateURL(ctx context.Context, rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("httpcache: InvalidateURL: %w", err)
	}
	if u.Host == "" {
		return fmt.Errorf("httpcache: InvalidateURL %q: not an absolute URL", rawURL)
	}
	canon := c.canonicalURL(u, u.Host)
	if err := c.bump(ctx, c.urlStamp(canon)); err != nil {
		return fmt.Errorf("httpcache: invalidate %s: %w", canon, err)
	}
	c.observe(Event{Kind: Invalidated, URL: canon, Reason: "url"})
	return nil
}

// InvalidateTags orphans every stored response tagged with one of tags
// (see Options.TagHeader and Route.Tags), with one store operation a tag
// whatever the number of responses.
func (c *Cache) InvalidateTags(ctx context.Context, tags ...string) error {
	for _, t := range tags {
		if err := c.bump(ctx, c.tagStamp(t)); err != nil {
			return fmt.Errorf("httpcache: invalidate tag %q: %w", t, err)
		}
		c.observe(Event{Kind: Invalidated, Reason: "tag:" + t})
	}
	return nil
}

// bump changes a stamp's generation, orphaning the entries that recorded
// the old one: an increment where the store counts, else a delete (a
// missing stamp is minted anew with a random generation).
func (c *Cache) bump(ctx context.Context, stamp string) error {
	c.epoch.Add(1)
	if ctr, ok := c.store.(cachekit.Counter); ok {
		_, err := ctr.IncrBy(ctx, stamp, 1)
		if err == nil || errors.Is(err, cachekit.ErrMiss) {
			return nil
		}
		if !errors.Is(err, cachekit.ErrNotInteger) {
			return err
		}
	}
	_, err := c.store.Delete(ctx, stamp)
	return err
}

// stamps returns the generations of the stamp keys; with mint, a missing
// stamp is created with a random generation, otherwise it is left out.
func (c *Cache) stamps(ctx context.Context, keys []string, mint bool) (map[string]string, error) {
	got := make(map[string]string, len(keys))
	if b, ok := c.store.(cachekit.Batcher); ok && len(keys) > 1 {
		m, err := b.GetMany(ctx, keys)
		if err != nil {
			return nil, err
		}
		for k, v := range m {
			got[k] = string(v)
		}
	} else {
		for _, k := range keys {
			v, err := c.store.Get(ctx, k)
			switch {
			case err == nil:
				got[k] = string(v)
			case !errors.Is(err, cachekit.ErrMiss):
				return nil, err
			}
		}
	}
	if !mint {
		return got, nil
	}
	for _, k := range keys {
		if _, ok := got[k]; ok {
			continue
		}
		v, err := c.mint(ctx, k)
		if err != nil {
			return nil, err
		}
		got[k] = v
	}
	return got, nil
}

// mint creates a missing stamp with a random generation (random, so that
// a stamp evicted and minted again never repeats an old generation) and
// returns the stamp's value, another writer's if it minted first.
func (c *Cache) mint(ctx context.Context, key string) (string, error) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	v := strconv.FormatUint(binary.LittleEndian.Uint64(b[:])>>2, 10)
	a, ok := c.store.(cachekit.Adder)
	if !ok {
		return v, c.store.Set(ctx, key, []byte(v), cachekit.NoExpiry)
	}
	added, err := a.Add(ctx, key, []byte(v), cachekit.NoExpiry)
	if err != nil || added {
		return v, err
	}
	cur, err := c.store.Get(ctx, key)
	if errors.Is(err, cachekit.ErrMiss) {
		// Another writer's stamp is gone again (evicted): store ours. Not
		// atomic, which is safe: entries recorded under a generation that
		// lost this race are orphaned.
		return v, c.store.Set(ctx, key, []byte(v), cachekit.NoExpiry)
	}
	if err != nil {
		return "", err
	}
	return string(cur), nil
}

// learnedVary returns the Vary list the last stored response of canon
// had (Django's learn_cache_key), nil when none is known.
func (c *Cache) learnedVary(ctx context.Context, canon string) []string {
	b, err := c.store.Get(ctx, c.varyKey(canon))
	if err != nil {
		if !errors.Is(err, cachekit.ErrMiss) {
			c.observe(Event{Kind: StoreError, URL: canon, Err: err})
		}
		return nil
	}
	if len(b) == 0 {
		return nil
	}
	return strings.Split(string(b), ",")
}

// lookup returns the entry under key if its stamps and version are still
// current, nil otherwise.
func (c *Cache) lookup(ctx context.Context, canon, key, version string) *entry {
	b, err := c.store.Get(ctx, key)
	if err != nil {
		if !errors.Is(err, cachekit.ErrMiss) {
			c.observe(Event{Kind: StoreError, URL: canon, Key: key, Err: err})
		}
		return nil
	}
	e, err := decodeEntry(b)
	if err != nil {
		c.observe(Event{Kind: StoreError, URL: canon, Key: key, Err: err})
		return nil
	}
	if e.Version != version {
		return nil
	}
	keys := make([]string, 0, len(e.Stamps))
	for k := range e.Stamps {
		keys = append(keys, k)
	}
	cur, err := c.stamps(ctx, keys, false)
	if err != nil {
		c.observe(Event{Kind: StoreError, URL: canon, Key: key, Err: err})
		return nil
	}
	for k, v := range e.Stamps {
		if cur[k] != v {
			return nil
		}
	}
	return e
}

func (c *Cache) observe(e Event) {
	if c.opts.Observer != nil {
		c.opts.Observer.Observe(e)
	}
}

// handler is the middleware of one route.
type handler struct {
	c    *Cache
	rt   Route
	next http.Handler
}

// request is what the handling of one GET or HEAD knows.
type request struct {
	r       *http.Request
	canon   string
	key     string
	vary    []string
	version string
	auth    bool // the request carries Authorization
}

// flightKey returns the key of q's handler runs: requests that read
// different versions of Route.Deps do not share a run.
func (q *request) flightKey() string { return q.key + "\x00" + q.version }

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := h.c
	canon := c.canonicalURL(r.URL, r.Host)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.passThrough(w, r, canon)
		return
	}
	reqCC := directives{}
	if !c.opts.IgnoreRequestCacheControl {
		reqCC = parseCacheControl(r.Header)
	}
	switch {
	case h.rt.Bypass:
		h.bypass(w, r, canon, "route")
		return
	case reqCC.has("no-store"): // RFC 9111 section 5.2.1.5
		h.bypass(w, r, canon, "request no-store")
		return
	}
	ctx := r.Context()
	q := &request{r: r, canon: canon, auth: r.Header.Get("Authorization") != ""}
	q.vary = c.learnedVary(ctx, canon)
	q.key = c.entryKey(r, canon, q.vary)
	if h.rt.Deps != nil {
		v, err := h.rt.Deps.Version(ctx, r, q.key)
		if err != nil {
			c.observe(Event{Kind: StoreError, URL: canon, Key: q.key, Err: err})
			h.bypass(w, r, canon, "deps")
			return
		}
		q.version = v
	}

	fwd := "uri-miss"
	var stale *entry
	if reqCC.has("no-cache") {
		fwd = "request" // RFC 9111 section 5.2.1.4: go to the origin
	} else if e := c.lookup(ctx, canon, q.key, q.version); e != nil && (!q.auth || e.Shared) {
		now := c.opts.Clock.Now()
		age := e.age(now)
		switch {
		case age < e.Fresh:
			c.observe(Event{Kind: Hit, URL: canon, Key: q.key, Status: e.Status})
			h.serve(w, r, e, now, c.status("hit", e, now))
			return
		case age < e.Fresh+e.SWR:
			// RFC 5861 section 3: serve it and refresh in the background.
			c.observe(Event{Kind: StaleServed, URL: canon, Key: q.key, Status: e.Status})
			h.serve(w, r, e, now, c.status("hit", e, now)+"; detail=stale-while-revalidate")
			h.refresh(q)
			return
		}
		stale, fwd = e, "stale"
	}

	c.observe(Event{Kind: Miss, URL: canon, Key: q.key})
	if reqCC.has("only-if-cached") {
		// RFC 9111 section 5.2.1.7: no stored response may be used, and
		// the client asked that the origin not be contacted.
		http.Error(w, "httpcache: not cached", http.StatusGatewayTimeout)
		return
	}
	recheck := fwd != "request"
	res, err, shared := c.runs.Do(ctx, q.flightKey(), c.opts.LoadTimeout, func(ctx context.Context) (*result, error) {
		return h.load(ctx, q, recheck)
	})
	now := c.opts.Clock.Now()
	if err != nil {
		if pe := (*flight.PanicError)(nil); errors.As(err, &pe) {
			panic(pe.Value) // as if the handler had panicked on this goroutine
		}
		if ctx.Err() != nil {
			return // the client is gone
		}
		// The run outlived Options.LoadTimeout.
		if stale != nil && stale.age(now) < stale.Fresh+stale.SIE {
			c.observe(Event{Kind: StaleServed, URL: canon, Key: q.key, Err: err})
			// Forwarded, so fwd=stale rather than hit (RFC 9211 section 2.1).
			h.serve(w, r, stale, now, c.status("fwd=stale", stale, now)+"; detail=stale-if-error")
			return
		}
		http.Error(w, "httpcache: "+err.Error(), http.StatusGatewayTimeout)
		return
	}
	if res.cached && (!q.auth || res.e.Shared) {
		c.observe(Event{Kind: Hit, URL: canon, Key: res.key, Status: res.e.Status})
		h.serve(w, r, res.e, now, c.status("hit", res.e, now)+"; collapsed")
		return
	}
	if !res.cached && res.e.Status >= 500 && stale != nil && stale.age(now) < stale.Fresh+stale.SIE {
		// RFC 5861 section 4: a stale response rather than an error, for
		// the requests that waited on the failed run too.
		c.observe(Event{Kind: StaleServed, URL: canon, Key: q.key, Status: res.e.Status})
		h.serve(w, r, stale, now, c.status("fwd=stale", stale, now)+"; fwd-status="+strconv.Itoa(res.e.Status)+"; detail=stale-if-error")
		return
	}
	collapsed := ""
	if shared {
		// Another request's run: usable only if it was stored (so it may be
		// shared) under this request's key (its Vary values match) and, for
		// a request with Authorization, marked shared.
		if res.cached || !res.stored || res.key != c.entryKey(r, canon, res.vary) || (q.auth && !res.e.Shared) {
			h.bypass(w, r, canon, "not shareable")
			return
		}
		c.observe(Event{Kind: Coalesced, URL: canon, Key: res.key, Status: res.e.Status})
		collapsed = "; collapsed"
	}
	cs := c.opts.Name + "; fwd=" + fwd + "; fwd-status=" + strconv.Itoa(res.e.Status)
	if res.stored {
		cs += "; stored"
	} else {
		cs += `; detail="` + res.reason + `"`
	}
	h.serveRun(w, r, res, now, cs+collapsed)
}

// status returns the Cache-Status of a response served from e (RFC 9211),
// kind being hit or the fwd of a forwarded request: its remaining
// freshness in ttl, negative when stale, in whole seconds consistent with
// Age.
func (c *Cache) status(kind string, e *entry, now time.Time) string {
	ttl := int64(e.Fresh/time.Second) - int64(e.age(now)/time.Second)
	return c.opts.Name + "; " + kind + "; ttl=" + strconv.FormatInt(ttl, 10)
}

// load runs the handler for q (unless recheck finds a fresh entry stored
// meanwhile) and stores the response when the rules allow.
func (h *handler) load(ctx context.Context, q *request, recheck bool) (*result, error) {
	c := h.c
	if recheck {
		// A run that ended between this request's lookup and its Do would
		// otherwise be repeated.
		if e := c.lookup(ctx, q.canon, q.key, q.version); e != nil && (!q.auth || e.Shared) && e.age(c.opts.Clock.Now()) < e.Fresh {
			return &result{e: e, stored: true, key: q.key, vary: q.vary, cached: true}, nil
		}
	}
	// The URL's stamp is read before the handler runs, so an invalidation
	// of the URL during the run orphans what it stores.
	urlStamp := c.urlStamp(q.canon)
	epoch := c.epoch.Load()
	gens, gensErr := c.stamps(ctx, []string{urlStamp}, true)

	rec := newRecorder(c.opts.MaxBodySize)
	r := q.r.Clone(ctx)
	r.Method = http.MethodGet // a HEAD is answered from the GET's response
	// The cache answers If-None-Match and If-Modified-Since itself (see
	// write): without them the handler writes the full response, which
	// can be stored and shared with the requests waiting on this run,
	// rather than a 304 that only this request could use.
	r.Header.Del("If-None-Match")
	r.Header.Del("If-Modified-Since")
	h.next.ServeHTTP(rec, r)
	rec.finish()
	if err := ctx.Err(); err != nil {
		// Options.LoadTimeout cut the run short: whatever it wrote is
		// neither stored nor shared.
		c.observe(Event{Kind: NotStored, URL: q.canon, Key: q.key, Status: rec.status, Reason: "timeout", Err: err})
		return nil, fmt.Errorf("httpcache: handler run: %w", err)
	}

	now := c.opts.Clock.Now()
	e := &entry{Status: rec.status, Header: rec.header, Body: rec.body.Bytes(), Stored: now, Version: q.version}
	res := &result{e: e, key: q.key, vary: q.vary}
	notStored := func(reason string, err error) (*result, error) {
		res.reason = reason
		kind := NotStored
		if err != nil {
			kind = StoreError
		}
		c.observe(Event{Kind: kind, URL: q.canon, Key: res.key, Status: e.Status, Reason: reason, Err: err})
		return res, nil
	}
	d := c.decide(r, h.rt, rec, now)
	if !d.store {
		return notStored(d.reason, nil)
	}
	if gensErr != nil {
		return notStored("store error", gensErr)
	}
	e.Fresh, e.SWR, e.SIE, e.Shared = d.fresh, d.swr, d.sie, d.shared

	vary, _ := varyNames(rec.header)
	if !slices.Equal(vary, q.vary) {
		res.key, res.vary = c.entryKey(r, q.canon, vary), vary
	}
	// The tags are known only now; their stamps are read after the run,
	// so the epoch check below catches an invalidation made meanwhile
	// through this Cache (see the package Caveats for other processes).
	tags := c.tags(rec.header, h.rt)
	keys := make([]string, len(tags))
	for i, t := range tags {
		keys[i] = c.tagStamp(t)
	}
	tagGens, err := c.stamps(ctx, keys, true)
	if err != nil {
		return notStored("store error", err)
	}
	for k, v := range tagGens {
		gens[k] = v
	}
	e.Stamps = gens
	if c.epoch.Load() != epoch {
		return notStored("invalidated", nil)
	}
	dropHopByHop(e.Header)
	e.fill()
	b := e.encode()
	ttl := e.Fresh + max(e.SWR, e.SIE)
	if err := c.store.Set(ctx, res.key, b, ttl); err != nil {
		return notStored("store error", err)
	}
	if !slices.Equal(vary, q.vary) || len(vary) > 0 {
		// Keep the Vary list at least as long as the entry.
		if err := c.store.Set(ctx, c.varyKey(q.canon), []byte(strings.Join(vary, ",")), ttl); err != nil {
			c.observe(Event{Kind: StoreError, URL: q.canon, Key: res.key, Err: err})
		}
	}
	res.stored = true
	c.observe(Event{Kind: Stored, URL: q.canon, Key: res.key, Status: e.Status})
	return res, nil
}

// refresh runs q's handler in the background (stale-while-revalidate),
// unless the Cache is closed. Requests for the key meanwhile join the run.
func (h *handler) refresh(q *request) {
	c := h.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	bq := *q
	ctx := context.WithoutCancel(q.r.Context())
	bq.r = q.r.Clone(ctx)
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		_, err, _ := c.runs.Do(ctx, bq.flightKey(), c.opts.LoadTimeout, func(ctx context.Context) (*result, error) {
			return h.load(ctx, &bq, false)
		})
		if err != nil {
			c.observe(Event{Kind: NotStored, URL: bq.canon, Key: bq.key, Reason: "refresh failed", Err: err})
		}
	}()
}

// serve writes a stored entry, or 304 when r's conditions allow it (RFC
// 9110 section 13.2.2; headers as RFC 9110 section 15.4.5 lists).
func (h *handler) serve(w http.ResponseWriter, r *http.Request, e *entry, now time.Time, cacheStatus string) {
	hdr := w.Header()
	for k, v := range e.Header {
		hdr[k] = slices.Clone(v)
	}
	hdr.Set("Age", strconv.FormatInt(int64(e.age(now)/time.Second), 10))
	setCacheStatus(hdr, cacheStatus)
	h.write(w, r, e, true)
}

// serveRun writes the response of a handler run.
func (h *handler) serveRun(w http.ResponseWriter, r *http.Request, res *result, now time.Time, cacheStatus string) {
	hdr := w.Header()
	for k, v := range res.e.Header {
		hdr[k] = slices.Clone(v)
	}
	if res.stored {
		hdr.Set("Age", strconv.FormatInt(int64(res.e.age(now)/time.Second), 10))
	}
	setCacheStatus(hdr, cacheStatus)
	h.write(w, r, res.e, res.stored)
}

// setCacheStatus adds this cache's member after those the response
// already has (a cache between the handler and its origin, when the
// handler is a proxy): RFC 9211 section 2 lists them from the origin's
// side.
func setCacheStatus(hdr http.Header, cacheStatus string) {
	if prev := strings.Join(hdr.Values("Cache-Status"), ", "); prev != "" {
		cacheStatus = prev + ", " + cacheStatus
	}
	hdr.Set("Cache-Status", cacheStatus)
}

// notModifiedHeaders are the fields a 304 keeps (RFC 9110 section
// 15.4.5), with this cache's own.
var notModifiedHeaders = []string{"Cache-Control", "Content-Location", "Date", "Etag", "Expires", "Vary", "Last-Modified", "Age", "Cache-Status"}

func (h *handler) write(w http.ResponseWriter, r *http.Request, e *entry, stored bool) {
	hdr := w.Header()
	if stored && e.Status == http.StatusOK && notModified(r, e.Header) {
		for k := range hdr {
			if !slices.Contains(notModifiedHeaders, k) {
				delete(hdr, k)
			}
		}
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hdr.Set("Content-Length", strconv.Itoa(len(e.Body)))
	w.WriteHeader(e.Status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(e.Body)
	}
}

// bypass runs the handler without the cache.
func (h *handler) bypass(w http.ResponseWriter, r *http.Request, canon, reason string) {
	h.c.observe(Event{Kind: Bypass, URL: canon, Reason: reason})
	fwd := "bypass"
	if reason == "method" {
		fwd = "method" // forwarded for the method's semantics (RFC 9211 section 2.2)
	}
	w.Header().Set("Cache-Status", h.c.opts.Name+"; fwd="+fwd+"; detail=\""+reason+"\"")
	h.next.ServeHTTP(w, r)
}

// passThrough runs an unsafe or uncacheable method, and invalidates the
// URL (and the Location and Content-Location URLs of the same host) when
// an unsafe one succeeds (RFC 9111 section 4.4).
func (h *handler) passThrough(w http.ResponseWriter, r *http.Request, canon string) {
	c := h.c
	if !unsafeMethod(r.Method) || c.opts.KeepOnUnsafe {
		h.bypass(w, r, canon, "method")
		return
	}
	c.observe(Event{Kind: Bypass, URL: canon, Reason: "method"})
	w.Header().Set("Cache-Status", c.opts.Name+`; fwd=method; detail="method"`)
	sw := &statusWriter{ResponseWriter: w}
	h.next.ServeHTTP(sw, r)
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	if sw.status >= 400 {
		return
	}
	targets := []string{canon}
	for _, f := range []string{"Location", "Content-Location"} {
		v := w.Header().Get(f)
		if v == "" {
			continue
		}
		u, err := r.URL.Parse(v)
		if err != nil || (u.Host != "" && !strings.EqualFold(u.Host, r.Host)) {
			continue
		}
		targets = append(targets, c.canonicalURL(u, r.Host))
	}
	for _, t := range targets {
		if err := c.bump(context.WithoutCancel(r.Context()), c.urlStamp(t)); err != nil {
			c.observe(Event{Kind: StoreError, URL: t, Err: err})
			continue
		}
		c.observe(Event{Kind: Invalidated, URL: t, Reason: "url"})
	}
}
