package main

import (
	"net/http"
	"strconv"

	"github.com/cachekit/cachekit/qcache"
)

// The view cache's dependencies: for each cached page, the SELECTs its
// handler runs for a request (the same statements and arguments, see
// data.go). A write through the query cache that could change one of
// their results invalidates the page's stored responses, row by row: an
// edit of post 1 invalidates /posts/1, /, its author's page and the pages
// of its tags, and leaves the other posts and authors cached.

// sidebarDeps are the queries of the sidebar, which every page shows.
func (a *App) sidebarDeps() []qcache.Dep {
	return []qcache.Dep{qcache.SQL(a.q.bind(sqlTagCloud)), qcache.SQL(a.q.bind(sqlAuthors))}
}

// idArg is the {id} path value as the handler's queries get it: an
// integer, or the raw text when it is not one (the handler then answers
// 404, which is not stored).
func idArg(r *http.Request) any {
	if id, err := strconv.ParseInt(r.PathValue("id"), 10, 64); err == nil {
		return id
	}
	return r.PathValue("id")
}

// indexPageDeps are the index's: its list reads every post, so every post
// write invalidates it (and with it the authors' statistics it shows).
func (a *App) indexPageDeps(*http.Request) []qcache.Dep {
	return append(a.sidebarDeps(), qcache.SQL(a.q.bind(sqlRecentPosts)))
}

func (a *App) postPageDeps(r *http.Request) []qcache.Dep {
	id := idArg(r)
	return append(a.sidebarDeps(), qcache.SQL(a.q.bind(sqlPost), id), qcache.SQL(a.q.bind(sqlPostTags), id))
}

func (a *App) authorPageDeps(r *http.Request) []qcache.Dep {
	id := idArg(r)
	return append(a.sidebarDeps(),
		qcache.SQL(a.q.bind(sqlAuthor), id),
		qcache.SQL(a.q.bind(sqlAuthorPosts), id),
		qcache.SQL(a.q.bind(sqlAuthorBodies), id)) // the memoized stats' query
}

func (a *App) tagPageDeps(r *http.Request) []qcache.Dep {
	return append(a.sidebarDeps(), qcache.SQL(a.q.bind(sqlTaggedPosts), r.PathValue("name")))
}
