package qdep_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/fragment"
	"github.com/cachekit/cachekit/fragment/qdep"
	"github.com/cachekit/cachekit/internal/testserver"
	"github.com/cachekit/cachekit/memory"
	"github.com/cachekit/cachekit/qcache"
	"github.com/cachekit/cachekit/redis"
)

// env is a SQLite database wrapped with a GranularPolicy, a Tracker on the
// policy and a fragment Cache.
type env struct {
	p   *qcache.GranularPolicy
	db  *sql.DB // wrapped: its writes invalidate
	tr  *qdep.Tracker
	fc  *fragment.Cache
	ctx context.Context
}

// openPosts opens the SQLite database dsn wrapped with a GranularPolicy
// over store (a new memory store when nil), and creates the posts of users
// 1 and 2 in it. The returned func closes the database and the store.
func openPosts(dsn string, store cachekit.Store, onError func(error)) (*qcache.GranularPolicy, *sql.DB, func(), error) {
	if store == nil {
		var err error
		if store, err = memory.NewStore(memory.StoreOptions{}); err != nil {
			return nil, nil, nil, err
		}
	}
	p, err := qcache.NewGranularPolicy(qcache.GranularOptions{Store: store, Dialect: qcache.SQLite})
	if err == nil {
		var db *sql.DB
		if db, err = qcache.Open("sqlite3", dsn, qcache.Options{Policy: p, OnError: onError}); err == nil {
			closeAll := func() { db.Close(); store.Close() }
			if dsn == ":memory:" {
				db.SetMaxOpenConns(1) // one connection, one in-memory database
			}
			if _, err = db.Exec(`CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER, title TEXT);
				INSERT INTO posts (user_id, title) VALUES (1, 'a1'), (1, 'a2'), (2, 'b1')`); err == nil {
				return p, db, closeAll, nil
			}
			closeAll()
			return nil, nil, nil, err
		}
	}
	store.Close()
	return nil, nil, nil, err
}

func newEnv(t *testing.T) *env { return newEnvStore(t, nil) }

// newEnvStore is newEnv with the policy's store (nil: a memory store).
func newEnvStore(t *testing.T, store cachekit.Store) *env {
	t.Helper()
	e := &env{ctx: context.Background()}
	dsn := "file:" + filepath.Join(t.TempDir(), "db.sqlite") + "?_journal_mode=WAL&_busy_timeout=10000&_txlock=immediate"
	p, db, closeDB, err := openPosts(dsn, store, func(err error) { t.Errorf("qcache OnError: %v", err) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeDB)
	e.p, e.db = p, db
	if e.tr, err = qdep.New(e.p, qdep.Options{OnError: func(err error) { t.Errorf("qdep OnError: %v", err) }}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.tr.Close() })
	if e.fc, err = fragment.New(fragment.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.fc.Close() })
	return e
}

func (e *env) exec(t *testing.T, query string, args ...any) {
	t.Helper()
	if _, err := e.db.Exec(query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// titles renders the titles of a user's posts, read past the query cache
// (so that only the fragment's own invalidation is tested), and counts
// its renders.
func (e *env) titles(renders *atomic.Int64, user int) func(io.Writer) error {
	return func(w io.Writer) error {
		renders.Add(1)
		rows, err := e.db.QueryContext(qcache.Bypass(e.ctx), `SELECT title FROM posts WHERE user_id = ? ORDER BY id`, user)
		if err != nil {
			return err
		}
		defer rows.Close()
		var ts []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				return err
			}
			ts = append(ts, s)
		}
		_, err = io.WriteString(w, strings.Join(ts, ","))
		return err
	}
}

func (e *env) render(t *testing.T, user int, renders *atomic.Int64, d fragment.Deps) string {
	t.Helper()
	var b strings.Builder
	if err := e.fc.Render(e.ctx, &b, "posts", []string{fmt.Sprint(user)}, e.titles(renders, user), fragment.DependsOn(d)); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// A fragment depending on a query is rendered again after a write to the
// rows the query reads, and only then, with the policy's keys in memory or
// on Redis (its compare-and-set fill in Lua).
func TestQueryDependency(t *testing.T) {
	t.Parallel()
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		queryDependency(t, newEnv(t))
	})
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		s, err := redis.New(t.Context(), redis.Options{Addrs: []string{testserver.Redis(t)},
			Prefix: "cachekit-test:qdep:" + rand.Text() + ":", Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Clear(context.Background()) }) // before openPosts' cleanup closes it
		queryDependency(t, newEnvStore(t, s))
	})
}

func queryDependency(t *testing.T, e *env) {
	var r1, r2 atomic.Int64
	dep := func(user int) fragment.Deps {
		return e.tr.On(qcache.SQL(`SELECT title FROM posts WHERE user_id = ?`, user))
	}
	check := func(step string, want1, want2 string, renders1, renders2 int64) {
		t.Helper()
		if got := e.render(t, 1, &r1, dep(1)); got != want1 {
			t.Errorf("%s: user 1: got %q, want %q", step, got, want1)
		}
		if got := e.render(t, 2, &r2, dep(2)); got != want2 {
			t.Errorf("%s: user 2: got %q, want %q", step, got, want2)
		}
		if n1, n2 := r1.Load(), r2.Load(); n1 != renders1 || n2 != renders2 {
			t.Errorf("%s: renders %d, %d, want %d, %d", step, n1, n2, renders1, renders2)
		}
	}
	check("first", "a1,a2", "b1", 1, 1)
	check("cached", "a1,a2", "b1", 1, 1)
	e.exec(t, `UPDATE posts SET title = 'B1' WHERE id = 3`)
	check("update of user 2's post", "a1,a2", "B1", 1, 2)
	e.exec(t, `INSERT INTO posts (user_id, title) VALUES (1, 'a3')`)
	check("insert for user 1", "a1,a2,a3", "B1", 2, 2)
	e.exec(t, `UPDATE posts SET user_id = 2 WHERE id = 1`) // moves a post from user 1 to user 2
	check("move", "a2,a3", "a1,B1", 3, 3)
	e.exec(t, `DELETE FROM posts WHERE id = 2`)
	check("delete", "a3", "a1,B1", 4, 3)
	if err := e.p.InvalidateTables(e.ctx, "posts"); err != nil {
		t.Fatal(err)
	}
	check("InvalidateTables", "a3", "a1,B1", 5, 4)
	// The fragment cache's own invalidation still applies.
	if err := e.fc.Invalidate(e.ctx, "posts", "1"); err != nil {
		t.Fatal(err)
	}
	check("Invalidate", "a3", "a1,B1", 6, 4)
}

// A whole-table dependency is invalidated by any write to the table.
func TestTableDependency(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.exec(t, `CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)`)
	var renders atomic.Int64
	d := e.tr.Tables("posts")
	for i, s := range []struct {
		write string
		want  int64
	}{
		{"", 1},
		{`INSERT INTO users (name) VALUES ('ann')`, 1}, // another table
		{`UPDATE posts SET title = 'x' WHERE id = 3`, 2},
		{"", 2},
	} {
		if s.write != "" {
			e.exec(t, s.write)
		}
		e.render(t, 1, &renders, d)
		if n := renders.Load(); n != s.want {
			t.Errorf("step %d (%s): %d renders, want %d", i, s.write, n, s.want)
		}
	}
}

func TestInvalidDependency(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var renders atomic.Int64
	for _, d := range []fragment.Deps{
		e.tr.On(qcache.SQL(`DELETE FROM posts`)),
		e.tr.On(qcache.SQL(`SELECT * FROM posts WHERE`)),
		e.tr.Tables(""),
	} {
		err := e.fc.Render(e.ctx, io.Discard, "posts", nil, e.titles(&renders, 1), fragment.DependsOn(d))
		if !errors.Is(err, qcache.ErrInvalidDep) {
			t.Errorf("%v: err = %v, want ErrInvalidDep", d, err)
		}
	}
	if n := renders.Load(); n != 0 {
		t.Errorf("rendered %d times with invalid dependencies", n)
	}
}

// Renders racing with writes never leave a fragment that predates the
// last write: after the writers stop, every fragment shows the database.
func TestNoStaleAfterConcurrentWrites(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dep := e.tr.On(qcache.SQL(`SELECT title FROM posts WHERE user_id = ?`, 1))
	var renders atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				var b strings.Builder
				if err := e.fc.Render(e.ctx, &b, "posts", []string{"1"}, e.titles(&renders, 1), fragment.DependsOn(dep)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for i := range 30 {
		e.exec(t, `UPDATE posts SET title = ? WHERE id = 1`, fmt.Sprint("v", i))
	}
	close(stop)
	wg.Wait()
	if got := e.render(t, 1, &renders, dep); got != "v29,a2" {
		t.Errorf("after the writes: got %q, want v29,a2", got)
	}
}

func TestOptionsValidated(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if _, err := qdep.New(e.p, qdep.Options{TTL: -1}); err == nil {
		t.Error("New with a negative TTL succeeded")
	}
	if _, err := qdep.New(nil, qdep.Options{}); err == nil {
		t.Error("New with a nil policy succeeded")
	}
}
