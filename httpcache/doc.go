// Package httpcache is a shared cache of whole HTTP responses, used as
// net/http middleware (a plain func(http.Handler) http.Handler, so it fits
// the standard mux, chi, gorilla and echo's standard adapter): the Go
// counterpart of Django's cache_page and cache middleware, following the
// shared-cache rules of RFC 9111, RFC 5861's stale-while-revalidate and
// stale-if-error, and reporting with RFC 9211's Cache-Status.
//
//	hc := httpcache.Must(httpcache.Options{TTL: time.Minute})
//	defer hc.Close()
//	mux.Handle("GET /posts/{id}", hc.Middleware(postHandler))
//	mux.Handle("GET /stats", hc.Route(httpcache.Route{TTL: 10 * time.Second})(statsHandler))
//
// # What is cached
//
// Only GET and HEAD; a HEAD is answered from the GET's response, without
// its body, and a HEAD that misses runs the handler as a GET. The key is the
// host, the path and the query with its parameters sorted (filtered by
// Options.QueryAllow and QueryIgnore), the request's values of the headers
// the URL's last stored response named in Vary (learned per URL, as
// Django's learn_cache_key), and the values of Options.Vary (cookies, a
// user id).
//
// A response is stored when its status is in Options.Statuses (200 by
// default; 404 too when Options.NegativeTTL is set) and none of these
// holds: Cache-Control no-store (which Django's middleware stored), private
// or no-cache; Set-Cookie; Vary: *; the handler flushed (streaming); the
// body passed Options.MaxBodySize; the request carried Authorization and
// the response says neither public nor s-maxage (RFC 9111 section 3.5);
// the request said no-store. A request's no-cache skips the lookup (the
// handler runs, and its response is stored); Options.IgnoreRequestCacheControl
// ignores both request directives, so that clients cannot force runs. Its freshness lifetime is the Route's TTL, else
// s-maxage, max-age, Expires, else Options.TTL. The handler is the origin:
// this cache never revalidates with it, so no-cache responses are not
// stored and stale ones are served only inside their stale windows.
//
// A stored 200 gets a strong ETag (a hash of its body), Last-Modified and,
// when it had no Cache-Control, Cache-Control max-age and Expires. Hits carry
// Age and Cache-Status; conditional requests (If-None-Match, then
// If-Modified-Since) are answered with 304.
//
// # Stampedes
//
// Requests of one process that miss the same key share one handler run
// (Cache-Status "collapsed"); the run looks in the store once more before
// calling the handler, so a request arriving just after a run ended does
// not run it again. A response that may not be stored is not shared: each
// waiting request then runs the handler itself. Stale responses are served
// inside their stale-while-revalidate window while one background request
// refreshes them, and inside their stale-if-error window in place of a 5xx
// or of a run that Options.LoadTimeout cut short; never when the response
// says must-revalidate, proxy-revalidate or s-maxage.
//
// # Invalidation
//
// Every stored response records the generations of its URL's stamp and of
// its tags' stamps (the space-separated values of Options.TagHeader,
// "Surrogate-Key", and Route.Tags), as memo's groups do: Cache.InvalidateURL
// and Cache.InvalidateTags change one stamp each, orphaning every variant
// and every tagged response in O(1). A successful unsafe request (POST, PUT,
// PATCH, DELETE) invalidates its URL and its same-host Location and
// Content-Location (RFC 9111 section 4.4). Route.Deps ties a route's
// responses to outside state; the subpackage qview implements it with the
// query cache, so that a write to the rows a page's queries read
// invalidates the page (cacheops' cached_view_as).
//
// qview is a separate package because qcache imports two SQL parsers, one
// of them through cgo (pg_query_go): importing it here would make every
// user of this package build them. The core only defines the [Deps]
// interface.
//
// # Events
//
// Options.Observer receives every hit, miss, stale response served, store,
// refusal to store (with its reason), coalesced request, invalidation,
// bypass and store error: enough for a metrics adapter.
//
// # Caveats
//
// Responses are buffered whole before they are sent (a run may be shared):
// a streaming route should use Route{Bypass: true}, and a large body is
// held in memory even when MaxBodySize keeps it out of the store.
//
// A tag is known only from the response, so its stamp is read after the
// handler ran. An invalidation made through this Cache during the run is
// caught (the response is then not stored, whatever it invalidated); one
// made by another process sharing the store during the run may leave that
// response stored until its TTL. URL stamps and Route.Deps are read before
// the run and have no such window.
//
// The Cache-Control max-age added to a response without one lets browsers
// and other caches keep the page for its whole TTL, where this Cache's
// invalidations cannot reach (Django's cache_page has the same effect).
// A page that must change as soon as it is edited should say so itself,
// e.g. "Cache-Control: max-age=0, s-maxage=300": browsers then revalidate
// every time (a 304 from this Cache when nothing changed), while this
// Cache, a shared cache, keeps it for s-maxage. s-maxage implies
// proxy-revalidate (RFC 9111 section 5.2.2.10), so such a page is never
// served stale; for stale-while-revalidate and stale-if-error, send
// "Cache-Control: max-age=0" and give the lifetime in Route.TTL instead.
//
// Stored responses carry the generations of their stamps; a stamp evicted
// from the store orphans its responses (the safe direction). Options.Store
// should therefore not evict stamps before responses: with a bounded memory
// store, leave room.
package httpcache
