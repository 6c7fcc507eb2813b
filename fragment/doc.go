// Package fragment caches rendered pieces of HTML pages: the Go counterpart
// of Django's {% cache %} template tag and django-cacheops' {% cached_as %}.
//
//	fc, err := fragment.New(fragment.Options{})           // in-process memory store
//	err = fc.Render(ctx, w, "sidebar", []string{userID}, func(w io.Writer) error {
//		return sidebarTmpl.Execute(w, data)               // runs on a miss only
//	}, fragment.TTL(10*time.Minute))
//	err = fc.Invalidate(ctx, "sidebar", userID)           // one variant
//	err = fc.InvalidateAll(ctx, "sidebar")                // every variant, O(1)
//
// # Templates
//
// Django's tag wraps a block: {% cache 500 sidebar user.id %}…{% endcache %}.
// Go templates have no block functions (a function cannot receive the
// unexecuted body between two actions), so the cached block is a named
// template instead, and the function [Cache.FuncMap] gives executes it:
//
//	{{define "sidebar"}}…{{end}}
//	{{fragment "sidebar" . .User.ID}}            cached for Options.TTL
//	{{fragmentTTL 300 "sidebar" . .User.ID}}     cached for 300 seconds
//
// The arguments are the template's name (which is also the fragment's), its
// dot, and the vary-on values. The output is returned as template.HTML: it
// was escaped once, when the named template ran, and the calling template
// inserts it as it is, cached or not. This keeps html/template's
// contextual escaping whole, which a function taking the body as a string
// could not: the named template is parsed and escaped like any other.
//
// # Keys
//
// A fragment's key is the Cache's prefix and version, the fragment's name,
// and its vary-on values each prefixed by its length:
// `fragment:1:sidebar("2:422:en")` for "sidebar" varying on "42" and "en".
// Django joins the values with ":", so that ["a", "b"] and ["a:b"] share a
// fragment; the length prefixes make every list of values its own key.
// A key policy (Options.KeyPolicy, such as cachekit.MemcachedKey) may then
// shorten it with a hash, keeping a readable head.
//
// # Invalidation
//
// [Cache.Invalidate] deletes one variant. [Cache.InvalidateAll] orphans
// every variant of a name with one store operation: each stored fragment
// records the generation of its name (kept in the store, as memo keeps a
// function's), and a fragment of an older generation reads as a miss.
//
// A fragment may depend on data: with the option [DependsOn], a stored
// fragment is served only while a [Deps] token read before it was rendered
// is unchanged. The package github.com/cachekit/cachekit/fragment/qdep
// gives tokens from the query cache (qcache), so that a write to the rows
// a fragment shows invalidates it, as with cacheops' {% cached_as %}. It
// is a package of its own because qcache brings its SQL parsers (one of
// them through cgo) to every program that imports it.
//
// # Stores and stampedes
//
// Fragments live in any cachekit.Store (Options.Store); the default is an
// in-process memory store. Concurrent renders of one fragment in a process
// are coalesced: one render runs, and every caller receives its output. A
// render that fails is not stored, and its error goes to every caller
// waiting on it.
//
// # Caveats
//
// The vary-on values must hold everything the fragment's output depends on
// (user, language, page): a fragment rendered for one set of values is
// served to every request with the same values.
//
// A shared render runs once for all the callers waiting on it, on a context
// none of them can cancel, bounded by Options.LoadTimeout.
//
// Calls with different TTLs for one fragment share its key but not their
// coalescing: two such calls at once may render it twice. The Cache keeps
// a small record (a memo.Func) per fragment name and TTL in use, for its
// lifetime: names and TTLs are meant to come from the code, not from
// requests.
//
// Invalidate removes a fragment at once, but a render running in another
// process at that moment may store its older output afterwards (see
// memo.Func.Invalidate); InvalidateAll has no such window.
package fragment
