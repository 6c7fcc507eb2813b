package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cachekit/cachekit/internal/dbtest"
	"github.com/cachekit/cachekit/internal/testserver"
	"github.com/cachekit/cachekit/redis"
)

// newTestServer opens the blog on a SQLite file of the test's own and
// serves it on 127.0.0.1 until the test ends.
func newTestServer(t *testing.T) (*App, *httptest.Server) {
	t.Helper()
	return serve(t, Config{SQLitePath: filepath.Join(t.TempDir(), "blog.sqlite")})
}

// newPGRedisServer opens the blog on a PostgreSQL schema and a Redis key
// prefix of the test's own (dropped and deleted when it ends) and serves
// it on 127.0.0.1. It skips the test when the servers are not configured
// (see internal/testserver; make test starts them).
func newPGRedisServer(t *testing.T) (*App, *httptest.Server) {
	t.Helper()
	dsn, redisAddr := testserver.Postgres(t), testserver.Redis(t)
	schema, _ := dbtest.PostgresSchema(t, dsn)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	prefix := schema + ":"
	t.Cleanup(func() {
		// The app's store is closed by now: clear its keys with one of
		// the same prefix.
		rs, err := redis.New(context.Background(), redis.Options{Addrs: []string{redisAddr}, Prefix: prefix})
		if err != nil {
			t.Errorf("clear the keys under %q: %v", prefix, err)
			return
		}
		defer rs.Close()
		if err := rs.Clear(context.Background()); err != nil {
			t.Errorf("clear the keys under %q: %v", prefix, err)
		}
	})
	return serve(t, Config{PostgresDSN: u.String(), RedisAddr: redisAddr, CachePrefix: prefix})
}

// backends are the configurations the behaviour tests run on.
var backends = []struct {
	name string
	open func(t *testing.T) (*App, *httptest.Server)
}{
	{"sqlite", newTestServer},
	{"postgres+redis", newPGRedisServer},
}

// forEachBackend runs test in a parallel subtest per backend.
func forEachBackend(t *testing.T, test func(t *testing.T, app *App, srv *httptest.Server)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			app, srv := b.open(t)
			test(t, app, srv)
		})
	}
}

// serve opens the blog with cfg and serves it on 127.0.0.1 until the test
// ends.
func serve(t *testing.T, cfg Config) (*App, *httptest.Server) {
	t.Helper()
	cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	app, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(app.Handler())
	t.Cleanup(func() {
		srv.Close()
		if err := app.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return app, srv
}

// testWriter sends the app's log to the test's.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// get fetches path and returns the status, the body and the response.
func get(t *testing.T, srv *httptest.Server, path string) (int, string, *http.Response) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, srv, req)
}

// edit posts the edit form of a post as the browser does (same origin)
// and returns the final status and body, after the redirect.
func edit(t *testing.T, srv *httptest.Server, id, title, body string) (int, string) {
	t.Helper()
	return post(t, srv, "same-origin", id, title, body)
}

// post posts the edit form of a post with the given Sec-Fetch-Site and
// returns the final status and body.
func post(t *testing.T, srv *httptest.Server, fetchSite, id, title, body string) (int, string) {
	t.Helper()
	form := url.Values{"title": {title}, "body": {body}}
	req, err := http.NewRequestWithContext(t.Context(), "POST", srv.URL+"/posts/"+id, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", fetchSite)
	status, b, _ := do(t, srv, req)
	return status, b
}

// do sends req, following redirects, and returns the final status, body
// and response.
func do(t *testing.T, srv *httptest.Server, req *http.Request) (int, string, *http.Response) {
	t.Helper()
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b), res
}

// TestPages loads every page of the seed content.
func TestPages(t *testing.T) {
	forEachBackend(t, func(t *testing.T, app *App, srv *httptest.Server) {
		for _, c := range []struct {
			path   string
			status int
			want   string
		}{
			{"/", 200, "Why caches go stale"},
			{"/posts/1", 200, `<h1 id="post-title">Why caches go stale</h1>`},
			{"/posts/3", 200, `<a class="tag" href="/tags/invalidation">invalidation</a>`},
			{"/authors/1", 200, "3 posts, 76 words"},
			{"/tags/http", 200, "Cache-Status in practice"},
			{"/debug/cache", 200, "Hit ratios"},
			{"/posts/99", 404, ""},
			{"/posts/x", 404, ""},
			{"/authors/99", 404, ""},
			{"/tags/nope", 404, ""},
		} {
			status, body, _ := get(t, srv, c.path)
			if status != c.status || !strings.Contains(body, c.want) {
				t.Errorf("GET %s: %d, body without %q:\n%s", c.path, status, c.want, body)
			}
		}
	})
}

// cacheStatusOf returns the Cache-Status of a response and whether it
// says hit (RFC 9211).
func cacheStatusOf(res *http.Response) (string, bool) {
	v := res.Header.Get("Cache-Status")
	return v, isHit(v)
}

// TestEditInvalidatesWhatItChanges edits a post and checks, by the view
// cache's Cache-Status and the query cache's counters, that the pages
// showing the post are rendered again with the edit while the others are
// still served from the cache, and that the memoized statistics of the
// post's author are recomputed.
func TestEditInvalidatesWhatItChanges(t *testing.T) {
	forEachBackend(t, func(t *testing.T, app *App, srv *httptest.Server) {
		pages := []string{"/", "/posts/1", "/posts/2", "/posts/3", "/authors/1", "/authors/2", "/tags/caching", "/tags/go"}
		for _, p := range pages {
			if _, _, res := get(t, srv, p); res.Header.Get("Cache-Status") == "" {
				t.Fatalf("GET %s has no Cache-Status", p)
			}
		}
		misses := app.policy.Stats().Misses
		for _, p := range pages {
			if v, hit := cacheStatusOf(mustGet(t, srv, p)); !hit {
				t.Errorf("second GET %s: Cache-Status %q, want a hit", p, v)
			}
		}
		if got := app.policy.Stats().Misses; got != misses {
			t.Fatalf("second loads ran %d queries, want none", got-misses)
		}

		status, body := edit(t, srv, "1", "Caches go stale, fast", "A short new body.")
		if status != 200 || !strings.Contains(body, "Caches go stale, fast") || !strings.Contains(body, "A short new body.") {
			t.Fatalf("after the edit: %d\n%s", status, body)
		}
		// Pages that show post 1 (its title, its body, its author's stats, the
		// lists it is in) are rendered again.
		for _, c := range []struct{ path, want string }{
			{"/", "Caches go stale, fast"},
			{"/authors/1", "3 posts, 52 words"},
			{"/tags/caching", "Caches go stale, fast"},
		} {
			_, body, res := get(t, srv, c.path)
			if v, hit := cacheStatusOf(res); hit || !strings.Contains(body, c.want) {
				t.Errorf("GET %s after the edit: Cache-Status %q, body without %q:\n%s", c.path, v, c.want, body)
			}
		}
		// The others are still served from the view cache, without a query.
		// (Not /tags/go: a tag page's query has no equality on posts, so any
		// post's edit invalidates it.)
		misses = app.policy.Stats().Misses
		for _, p := range []string{"/posts/2", "/posts/3", "/authors/2"} {
			if v, hit := cacheStatusOf(mustGet(t, srv, p)); !hit {
				t.Errorf("GET %s, untouched by the edit: Cache-Status %q, want a hit", p, v)
			}
		}
		if got := app.policy.Stats().Misses; got != misses {
			t.Errorf("the pages untouched by the edit ran %d queries, want none", got-misses)
		}

		var st DebugState
		_, js, _ := get(t, srv, "/debug/cache.json")
		if err := json.Unmarshal([]byte(js), &st); err != nil {
			t.Fatal(err)
		}
		var rows, memo bool
		for _, inv := range st.Invalidations {
			rows = rows || inv.Layer == "query" && inv.Kind == "invalidate-rows" && strings.HasPrefix(inv.What, "UPDATE posts")
			memo = memo || inv.Layer == "memo" && inv.What == "blog.authorStats(1)"
		}
		if !rows || !memo {
			t.Errorf("/debug/cache lacks the UPDATE's row invalidation (%v) or the memo invalidation (%v): %+v", rows, memo, st.Invalidations)
		}
		var views, memoStats DebugLayer
		for _, l := range st.Layers {
			switch {
			case strings.HasPrefix(l.Name, "view cache"):
				views = l
			case l.Name == "memoized blog.authorStats":
				memoStats = l
			}
		}
		// The memoized stats: / computes the 3 authors' (3 misses), then
		// /authors/1 and /authors/2 find theirs (2 hits); after the edit, /
		// computes author 1's again (a miss) and finds the others' (2 hits),
		// and /authors/1 finds the new one (a hit).
		if memoStats.Hits != 5 || memoStats.Misses != 4 {
			t.Errorf("/debug/cache counts %d hits and %d misses of the memoized stats, want 5 and 4", memoStats.Hits, memoStats.Misses)
		}
		// Hits: the 8 second loads and the 3 untouched pages; misses: the 8
		// first loads, the redirect after the edit and the 3 changed pages.
		if views.Hits != 11 || views.Misses != 12 {
			t.Errorf("/debug/cache counts %d view hits and %d misses, want 11 and 12", views.Hits, views.Misses)
		}
	})
}

// mustGet fetches path and returns the response, whose body is read and
// closed.
func mustGet(t *testing.T, srv *httptest.Server, path string) *http.Response {
	t.Helper()
	_, _, res := get(t, srv, path)
	return res
}

// TestEditRefused checks that an edit without a title is refused with the
// form shown again, and a cross-origin one outright; the post is unchanged.
func TestEditRefused(t *testing.T) {
	forEachBackend(t, func(t *testing.T, app *App, srv *httptest.Server) {
		status, body := edit(t, srv, "2", "  ", "body")
		if status != http.StatusUnprocessableEntity || !strings.Contains(body, "A post needs a title and a body.") {
			t.Errorf("empty title: %d\n%s", status, body)
		}
		if status, _ := edit(t, srv, "99", "t", "b"); status != http.StatusNotFound {
			t.Errorf("edit of a missing post: %d, want 404", status)
		}

		if status, _ := post(t, srv, "cross-site", "2", "x", "y"); status != http.StatusForbidden {
			t.Errorf("cross-site POST: %d, want 403", status)
		}
		if _, body, _ := get(t, srv, "/posts/2"); !strings.Contains(body, "Reading query plans") {
			t.Errorf("the refused edits changed the post:\n%s", body)
		}
	})
}

// TestListenLoopback checks that the server refuses to listen beyond the
// loopback interface.
func TestListenLoopback(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:0", "example.com:80"} {
		if ln, err := listenLoopback(addr); err == nil {
			ln.Close()
			t.Errorf("listenLoopback(%q) listened", addr)
		}
	}
	ln, err := listenLoopback("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
}

// TestRunServes runs the command's server until its context ends.
func TestRunServes(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ln, err := listenLoopback("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- run(ctx, ln, Config{SQLitePath: filepath.Join(t.TempDir(), "blog.sqlite")}) }()
	// The connection waits in the listener's backlog until run serves.
	res, err := http.Get("http://" + ln.Addr().String() + "/posts/1")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("GET /posts/1: %d", res.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
}

// TestSidebarFollowsItsRows writes a tag through the query cache's wrapper
// (the blog's forms do not) and checks that the sidebar fragment, and the
// pages that show it, are rendered again with it.
func TestSidebarFollowsItsRows(t *testing.T) {
	forEachBackend(t, func(t *testing.T, app *App, srv *httptest.Server) {
		get(t, srv, "/posts/2")
		if v, hit := cacheStatusOf(mustGet(t, srv, "/posts/2")); !hit {
			t.Fatalf("second GET /posts/2: Cache-Status %q, want a hit", v)
		}
		views, frags, _ := app.debug.counts()
		if views.Misses != 1 || frags.Misses != 1 {
			t.Fatalf("one page rendered: %d view misses and %d sidebar renders, want 1 and 1", views.Misses, frags.Misses)
		}
		ctx := t.Context()
		for _, stmt := range []string{
			`INSERT INTO tags (id, name) VALUES (100, 'sqlite')`,
			`INSERT INTO post_tags (post_id, tag_id) VALUES (2, 100)`,
		} {
			if _, err := app.q.db.ExecContext(ctx, stmt); err != nil {
				t.Fatal(err)
			}
		}
		_, body, res := get(t, srv, "/posts/2")
		if v, hit := cacheStatusOf(res); hit || !strings.Contains(body, `<a class="tag" href="/tags/sqlite">sqlite (1)</a>`) {
			t.Errorf("GET /posts/2 after the new tag: Cache-Status %q, sidebar without it:\n%s", v, body)
		}
		if _, frags, _ := app.debug.counts(); frags.Misses != 2 {
			t.Errorf("the sidebar was rendered %d times, want 2 (before and after the new tag)", frags.Misses)
		}
	})
}

// TestEditStatsNeverStale loads the author's page and the index while an
// edit has updated the post but not yet invalidated the memoized
// statistics: pages rendered in that window show the old statistics, and
// must not be what is served once the edit is done.
func TestEditStatsNeverStale(t *testing.T) {
	forEachBackend(t, func(t *testing.T, app *App, srv *httptest.Server) {
		for _, p := range []string{"/", "/authors/1"} {
			get(t, srv, p)
		}
		app.afterUpdate = func() {
			for _, p := range []string{"/", "/authors/1"} {
				get(t, srv, p)
			}
		}
		if status, _ := edit(t, srv, "1", "Caches go stale, fast", "A short new body."); status != 200 {
			t.Fatalf("edit: %d", status)
		}
		app.afterUpdate = nil
		for _, c := range []struct{ path, want string }{
			{"/", `<td class="num">3</td><td class="num">52</td>`},
			{"/authors/1", "3 posts, 52 words"},
		} {
			if _, body, _ := get(t, srv, c.path); !strings.Contains(body, c.want) {
				t.Errorf("GET %s after the edit shows stale statistics, not %q:\n%s", c.path, c.want, body)
			}
		}
	})
}
