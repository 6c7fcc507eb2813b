package main

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cachekit/cachekit/fragment"
	"github.com/cachekit/cachekit/httpcache"
	"github.com/cachekit/cachekit/httpcache/qview"
)

//go:embed templates/*.html
var templateFS embed.FS

// pages are the page templates, each parsed with the layout and the
// sidebar, by file name.
var pages = func() map[string]*template.Template {
	funcs := template.FuncMap{
		"percent":    func(f float64) string { return strconv.FormatFloat(100*f, 'f', 1, 64) + "%" },
		"pathEscape": url.PathEscape,
		"clock":      func(t time.Time) string { return t.UTC().Format("15:04:05.000") },
		"join":       strings.Join,
	}
	base := template.Must(template.New("").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/sidebar.html"))
	m := make(map[string]*template.Template)
	for _, name := range []string{"index.html", "post.html", "author.html", "tag.html", "debug.html"} {
		m[name] = template.Must(template.Must(base.Clone()).ParseFS(templateFS, "templates/"+name))
	}
	return m
}()

// Limits of the edit form.
const (
	maxTitle = 200
	maxBody  = 20_000
)

// Handler returns the blog's HTTP handler.
func (a *App) Handler() http.Handler {
	mux := http.NewServeMux()
	view := func(deps *qview.Deps, h http.HandlerFunc) http.Handler {
		return a.views.Route(httpcache.Route{Deps: deps})(h)
	}
	mux.Handle("GET /{$}", view(a.indexDeps, a.index))
	mux.Handle("GET /posts/{id}", view(a.postDeps, a.showPost))
	// The POST goes through the view cache too: a successful unsafe request
	// invalidates its URL and its redirect's (RFC 9111 section 4.4), on top
	// of what the UPDATE invalidates through the pages' dependencies.
	mux.Handle("POST /posts/{id}", a.views.Middleware(http.HandlerFunc(a.editPost)))
	mux.Handle("GET /authors/{id}", view(a.authorDeps, a.showAuthor))
	mux.Handle("GET /tags/{name}", view(a.tagDeps, a.showTag))
	// The debug pages are live: never cached (no-store).
	mux.HandleFunc("GET /debug/cache", a.showDebug)
	mux.HandleFunc("GET /debug/cache.json", a.debugJSON)
	// The edit form posts without a token: refuse cross-origin POSTs
	// (by Sec-Fetch-Site or Origin) so that another site cannot edit.
	return http.NewCrossOriginProtection().Handler(mux)
}

// page is what every page template gets.
type page struct {
	Title   string
	Sidebar template.HTML
	Data    any
}

// render executes the page template name into a buffer, then writes it
// with status, so that a failing template gives a clean 500.
func (a *App) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	if p.Sidebar == "" && name != "debug.html" {
		sb, err := a.sidebar(r.Context())
		if err != nil {
			a.fail(w, r, err)
			return
		}
		p.Sidebar = sb
	}
	var buf bytes.Buffer
	if err := pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if w.Header().Get("Cache-Control") == "" {
		// Browsers revalidate every time (max-age=0; the view cache's ETag
		// makes that a 304 while the page is unchanged), so that an edit
		// shows on the next load; the view cache, a shared cache, keeps
		// the page for viewTTL (s-maxage) unless a write invalidates it.
		w.Header().Set("Cache-Control", "max-age=0, s-maxage="+strconv.Itoa(int(viewTTL/time.Second)))
	}
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// sidebar returns the sidebar (the tag cloud and the authors), a cached
// fragment.
func (a *App) sidebar(ctx context.Context) (template.HTML, error) {
	return a.fragments.Fragment(ctx, "sidebar", nil, func(w io.Writer) error {
		// A render may be shared by concurrent requests: it must not fail
		// when the one that started it goes away.
		ctx := context.WithoutCancel(ctx)
		tags, err := a.q.tagCloud(ctx)
		if err != nil {
			return err
		}
		authors, err := a.q.authors(ctx)
		if err != nil {
			return err
		}
		return pages["index.html"].ExecuteTemplate(w, "sidebar", struct {
			Tags    []TagCount
			Authors []Author
		}{tags, authors})
	}, fragment.TTL(sidebarTTL), fragment.DependsOn(a.fragDeps.On(a.sidebarDeps()...)))
}

// sidebarTTL bounds how long the sidebar fragment is kept when no write
// changes its rows (no form of the blog changes tags or authors).
const sidebarTTL = 10 * time.Minute

// fail answers an error: 404 for errNotFound, else 500 (logged).
func (a *App) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errNotFound) {
		http.NotFound(w, r)
		return
	}
	a.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	http.Error(w, "internal error", http.StatusInternalServerError)
}

// pathID parses the {id} path value; ok is false (and a 404 written) when
// it is not a positive integer.
func pathID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		http.NotFound(w, r)
		return 0, false
	}
	return id, true
}

// indexPage is the data of index.html.
type indexPage struct {
	Posts   []Post
	Writers []writer
}

// writer is an author with the memoized statistics.
type writer struct {
	Author
	Stats AuthorStats
}

// index lists the posts and the authors with their statistics. Any post's
// edit changes the list, so the page is rendered again; the statistics of
// the authors whose posts did not change then come from the memoized
// function's cache.
func (a *App) index(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	posts, err := a.q.recentPosts(ctx)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	authors, err := a.q.authors(ctx)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writers := make([]writer, len(authors))
	for i, au := range authors {
		writers[i].Author = au
		if writers[i].Stats, err = a.stats.Call(ctx, au.ID); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	a.render(w, r, http.StatusOK, "index.html", page{Title: "Recent posts", Data: indexPage{Posts: posts, Writers: writers}})
}

// postPage is the data of post.html.
type postPage struct {
	Post  Post
	Error string // why the submitted edit was refused
}

func (a *App) showPost(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	p, err := a.q.post(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.render(w, r, http.StatusOK, "post.html", page{Title: p.Title, Data: postPage{Post: p}})
}

// editPost saves the edit form and redirects to the post (POST, redirect,
// GET), whose next load shows the new text.
func (a *App) editPost(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4*maxBody)
	title := strings.TrimSpace(r.PostFormValue("title"))
	body := strings.TrimSpace(r.PostFormValue("body"))
	var problem string
	switch {
	case title == "" || body == "":
		problem = "A post needs a title and a body."
	case utf8.RuneCountInString(title) > maxTitle:
		problem = "The title is longer than " + strconv.Itoa(maxTitle) + " characters."
	case utf8.RuneCountInString(body) > maxBody:
		problem = "The body is longer than " + strconv.Itoa(maxBody) + " characters."
	}
	if problem != "" {
		p, err := a.q.post(r.Context(), id)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		p.Title, p.Body = title, body
		a.render(w, r, http.StatusUnprocessableEntity, "post.html", page{Title: "Edit: " + p.Title, Data: postPage{Post: p, Error: problem}})
		return
	}
	if err := a.updatePost(r.Context(), id, title, body); err != nil {
		a.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/posts/"+strconv.FormatInt(id, 10), http.StatusSeeOther)
}

// authorPage is the data of author.html.
type authorPage struct {
	Author Author
	Stats  AuthorStats
	Posts  []Post
}

func (a *App) showAuthor(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	au, err := a.q.author(ctx, id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	posts, err := a.q.authorPosts(ctx, id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	stats, err := a.stats.Call(ctx, id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.render(w, r, http.StatusOK, "author.html", page{Title: au.Name, Data: authorPage{Author: au, Stats: stats, Posts: posts}})
}

// tagPage is the data of tag.html.
type tagPage struct {
	Tag   string
	Posts []Post
}

func (a *App) showTag(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	posts, err := a.q.taggedPosts(r.Context(), name)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if len(posts) == 0 {
		http.NotFound(w, r)
		return
	}
	a.render(w, r, http.StatusOK, "tag.html", page{Title: "Tagged " + name, Data: tagPage{Tag: name, Posts: posts}})
}

func (a *App) showDebug(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	a.render(w, r, http.StatusOK, "debug.html", page{Title: "Cache debug", Data: a.debugState()})
}

func (a *App) debugJSON(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(a.debugState()); err != nil {
		a.log.Warn("debug json", "err", err)
	}
}
