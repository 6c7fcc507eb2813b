package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/disk"
	"github.com/cachekit/cachekit/internal/dbtest"
	"github.com/cachekit/cachekit/internal/testserver"
	"github.com/cachekit/cachekit/memcached"
	"github.com/cachekit/cachekit/qcache"
	"github.com/cachekit/cachekit/redis"
)

// app is an application that caches its queries of a SQLite database with
// a qcache.GranularPolicy, as the processes whose cache the CLI invalidates
// do: the tests run the CLI against the same store and check which of the
// app's queries reach the database afterwards.
type app struct {
	queries  *atomic.Int64 // queries that reached the database
	db       *sql.DB       // through the qcache wrapper
	storeURL string        // the -store URL of the app's store
	prefix   string        // the policy's prefix
	dialect  string        // the -dialect of the app
}

// newApp sets up an app over store, reachable by the CLI at storeURL,
// with a policy of the given prefix ("" for qcache's default).
func newApp(t *testing.T, store cachekit.Store, storeURL, prefix string) *app {
	t.Helper()
	dsn := "file:" + filepath.Join(t.TempDir(), "app.sqlite") + "?_journal_mode=WAL&_busy_timeout=10000"
	c := &dbtest.SQLite{DSN: dsn}
	return openApp(t, c, &c.Queries, qcache.SQLite, store, storeURL, prefix,
		`CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER, title TEXT, tag TEXT)`,
		`INSERT INTO posts (user_id, title, tag) VALUES (1, 'a1', 'x'), (1, 'a2', NULL), (2, 'b1', 'x'), (3, 'c1', 'y')`,
		`CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)`,
		`INSERT INTO users (name) VALUES ('ann'), ('bob'), ('cy')`,
	)
}

// openApp opens an app on the database of connector, whose queries are
// counted in queries, with a policy of dialect d over store, and runs
// setup through it.
func openApp(t *testing.T, connector driver.Connector, queries *atomic.Int64, d qcache.Dialect,
	store cachekit.Store, storeURL, prefix string, setup ...string) *app {
	t.Helper()
	a := &app{queries: queries, storeURL: storeURL, prefix: prefix, dialect: "sqlite"}
	if d == qcache.Postgres {
		a.dialect = "postgres"
	}
	p, err := qcache.NewGranularPolicy(qcache.GranularOptions{Store: store, Dialect: d, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	a.db = sql.OpenDB(qcache.Wrap(connector, qcache.Options{
		Policy:  p,
		OnError: func(err error) { t.Errorf("qcache OnError: %v", err) },
	}))
	t.Cleanup(func() { a.db.Close() })
	for _, s := range setup {
		// Through the wrapper: the writes invalidate (nothing is cached
		// yet), and the counter does not count Exec.
		if _, err := a.db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	return a
}

// Queries of the app.
const (
	postsByUser = `SELECT id, title FROM posts WHERE user_id = ? ORDER BY id`
	postsByTag  = `SELECT id FROM posts WHERE tag = ? ORDER BY id`
	postsNoTag  = `SELECT id FROM posts WHERE tag IS NULL ORDER BY id`
	userByID    = `SELECT name FROM users WHERE id = ?`
)

// read runs query and reports whether it reached the database.
func (a *app) read(t *testing.T, query string, args ...any) (reached bool) {
	t.Helper()
	before := a.queries.Load()
	rows, err := a.db.QueryContext(context.Background(), query, args...)
	if err != nil {
		t.Fatalf("%s %v: %v", query, args, err)
	}
	for rows.Next() {
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s %v: %v", query, args, err)
	}
	rows.Close()
	return a.queries.Load() != before
}

// warm reads query with args until it is cached, and fails t if the
// second read still reaches the database.
func (a *app) warm(t *testing.T, query string, args ...any) {
	t.Helper()
	a.read(t, query, args...)
	if a.read(t, query, args...) {
		t.Fatalf("%s %v: second read reached the database, want it cached", query, args)
	}
}

// expect fails t unless reading query with args reaches the database
// exactly when reached is true.
func (a *app) expect(t *testing.T, reached bool, query string, args ...any) {
	t.Helper()
	if got := a.read(t, query, args...); got != reached {
		t.Errorf("%s %v: reached the database = %v, want %v", query, args, got, reached)
	}
}

// cli runs the CLI's "qcache invalidate" with the app's store and prefix
// flags followed by args, and returns its exit code and output.
func (a *app) cli(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	argv := []string{"qcache", "invalidate", args[0], "-store", a.storeURL, "-dialect", a.dialect}
	if a.prefix != "" {
		argv = append(argv, "-prefix", a.prefix)
	}
	argv = append(argv, args[1:]...)
	var out, errOut bytes.Buffer
	code = run(context.Background(), argv, &out, &errOut)
	return code, out.String(), errOut.String()
}

// backends returns, for each store the tests run against, a function that
// makes an app over a fresh namespace of it.
func backends() []struct {
	name   string
	newApp func(t *testing.T, policyPrefix string) *app
} {
	return []struct {
		name   string
		newApp func(t *testing.T, policyPrefix string) *app
	}{
		{"redis", func(t *testing.T, policyPrefix string) *app {
			addr := testserver.Redis(t)
			prefix := testPrefix(t)
			s, err := redis.New(context.Background(), redis.Options{Addrs: []string{addr}, Prefix: prefix})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := s.Clear(context.Background()); err != nil {
					t.Errorf("clear %s: %v", prefix, err)
				}
				s.Close()
			})
			return newApp(t, s, "redis://"+addr+"?prefix="+prefix, policyPrefix)
		}},
		{"redis-cluster", func(t *testing.T, policyPrefix string) *app {
			addrs := testserver.RedisCluster(t)
			prefix := testPrefix(t)
			s, err := redis.New(context.Background(), redis.Options{Addrs: addrs, Prefix: prefix})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := s.Clear(context.Background()); err != nil {
					t.Errorf("clear %s: %v", prefix, err)
				}
				s.Close()
			})
			return newApp(t, s, "redis+cluster://"+strings.Join(addrs, ",")+"?prefix="+prefix, policyPrefix)
		}},
		{"memcached", func(t *testing.T, policyPrefix string) *app {
			addrs := testserver.MemcachedPool(t)
			prefix := "cktest-" + rand.Text()[:12] // no ':' in memcached prefixes
			s, err := memcached.New(context.Background(), memcached.Options{Addrs: addrs, Prefix: prefix})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := s.Clear(context.Background()); err != nil {
					t.Errorf("clear %s: %v", prefix, err)
				}
				s.Close()
			})
			return newApp(t, s, "memcached://"+strings.Join(addrs, ",")+"?prefix="+prefix, policyPrefix)
		}},
		{"disk", func(t *testing.T, policyPrefix string) *app {
			dir := t.TempDir()
			s, err := disk.New(context.Background(), disk.Options{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return newApp(t, s, "disk://"+filepath.ToSlash(dir), policyPrefix)
		}},
	}
}

// testPrefix is a Redis key prefix of t's own.
func testPrefix(t *testing.T) string {
	name := strings.NewReplacer("/", "-", " ", "_").Replace(t.Name())
	return fmt.Sprintf("cktest:%s:%s:", name, rand.Text()[:8])
}
