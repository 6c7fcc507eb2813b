package qview_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	_ "github.com/mattn/go-sqlite3"

	"github.com/cachekit/cachekit/httpcache"
	"github.com/cachekit/cachekit/httpcache/qview"
	"github.com/cachekit/cachekit/memory"
	"github.com/cachekit/cachekit/qcache"
)

// blog is a posts table behind a granular policy and a user page route
// cached with qview dependencies.
type blog struct {
	db     *sql.DB
	policy *qcache.GranularPolicy
	hc     *httpcache.Cache
	page   http.Handler
	runs   atomic.Int64
}

func newBlog(t *testing.T, deps func(*http.Request) []qcache.Dep) *blog {
	t.Helper()
	store, err := memory.NewStore(memory.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	b := &blog{}
	b.policy, err = qcache.NewGranularPolicy(qcache.GranularOptions{Store: store, Dialect: qcache.SQLite})
	if err != nil {
		t.Fatal(err)
	}
	b.db, err = qcache.Open("sqlite3", ":memory:", qcache.Options{Policy: b.policy})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.db.Close() })
	b.db.SetMaxOpenConns(1)
	if _, err := b.db.Exec(`CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER, title TEXT);
		INSERT INTO posts (user_id, title) VALUES (1, 'a'), (1, 'b'), (2, 'c')`); err != nil {
		t.Fatal(err)
	}
	b.hc = httpcache.Must(httpcache.Options{Store: store})
	t.Cleanup(func() { b.hc.Close() })
	d := qview.Must(b.policy, "user.posts", deps, qview.Options{})
	t.Cleanup(func() { d.Close() })
	b.page = b.hc.Route(httpcache.Route{Deps: d})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.runs.Add(1)
		rows, err := b.db.QueryContext(qcache.Bypass(r.Context()), `SELECT title FROM posts WHERE user_id = ? ORDER BY id`, r.URL.Query().Get("user"))
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer rows.Close()
		var titles []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			titles = append(titles, s)
		}
		fmt.Fprint(w, strings.Join(titles, ","))
	}))
	return b
}

func (b *blog) get(t *testing.T, user string) (string, bool) {
	t.Helper()
	w := httptest.NewRecorder()
	b.page.ServeHTTP(w, httptest.NewRequest("GET", "/posts?user="+user, nil))
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	return w.Body.String(), strings.Contains(w.Header().Get("Cache-Status"), "hit")
}

func (b *blog) exec(t *testing.T, q string) {
	t.Helper()
	if _, err := b.db.Exec(q); err != nil {
		t.Fatal(err)
	}
}

// TestRowGranular: a page depending on one user's posts is invalidated by
// writes to that user's rows only.
func TestRowGranular(t *testing.T) {
	b := newBlog(t, func(r *http.Request) []qcache.Dep {
		return []qcache.Dep{qcache.SQL(`SELECT title FROM posts WHERE user_id = ?`, r.URL.Query().Get("user"))}
	})
	steps := []struct {
		write string // run before the requests
		user  string
		body  string
		hit   bool
	}{
		{user: "1", body: "a,b"},
		{user: "1", body: "a,b", hit: true},
		{user: "2", body: "c"},
		{write: `UPDATE posts SET title = 'C' WHERE id = 3`, user: "1", body: "a,b", hit: true},
		{user: "2", body: "C"},
		{write: `INSERT INTO posts (user_id, title) VALUES (1, 'd')`, user: "1", body: "a,b,d"},
		{user: "2", body: "C", hit: true},
		{write: `DELETE FROM posts WHERE id = 1`, user: "1", body: "b,d"},
	}
	for i, s := range steps {
		if s.write != "" {
			b.exec(t, s.write)
		}
		body, hit := b.get(t, s.user)
		if body != s.body || hit != s.hit {
			t.Errorf("step %d: %q hit=%v, want %q hit=%v", i, body, hit, s.body, s.hit)
		}
	}
	if n := b.runs.Load(); n != 5 {
		t.Errorf("handler ran %d times, want 5", n)
	}
}

func TestTableDep(t *testing.T) {
	b := newBlog(t, func(r *http.Request) []qcache.Dep { return []qcache.Dep{qcache.Table("posts")} })
	b.get(t, "1")
	if _, hit := b.get(t, "1"); !hit {
		t.Fatal("second request missed")
	}
	b.exec(t, `UPDATE posts SET title = 'x' WHERE id = 3`) // another user's row
	if body, hit := b.get(t, "1"); hit || body != "a,b" {
		t.Errorf("after a write to the table: %q hit=%v", body, hit)
	}
	if err := b.policy.InvalidateTables(context.Background(), "posts"); err != nil {
		t.Fatal(err)
	}
	if _, hit := b.get(t, "1"); hit {
		t.Errorf("hit after InvalidateTables")
	}
}

func TestInvalidDepBypasses(t *testing.T) {
	b := newBlog(t, func(r *http.Request) []qcache.Dep { return []qcache.Dep{qcache.SQL(`DELETE FROM posts`)} })
	for range 2 {
		if body, hit := b.get(t, "1"); hit || body != "a,b" {
			t.Errorf("%q hit=%v", body, hit)
		}
	}
}
