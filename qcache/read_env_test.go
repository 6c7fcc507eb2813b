package qcache_test

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/internal/dbtest"
	"github.com/cachekit/cachekit/memory"
	"github.com/cachekit/cachekit/qcache"
)

// readEnv is a SQLite database with a posts table, opened through a
// GranularPolicy (db) and unwrapped (plain).
type readEnv struct {
	inner  *dbtest.SQLite
	policy *qcache.GranularPolicy
	db     *sql.DB
	plain  *sql.DB
}

// newReadEnv opens a readEnv on store (a new memory store when nil) with
// opts (Store and Dialect are set here) and wrapper options wopts.
func newReadEnv(t testing.TB, store cachekit.Store, opts qcache.GranularOptions, wopts ...qcache.Options) *readEnv {
	t.Helper()
	dsn := "file:" + filepath.Join(t.TempDir(), "db.sqlite") + "?_journal_mode=WAL&_busy_timeout=10000&_txlock=immediate"
	r := &readEnv{inner: &dbtest.SQLite{DSN: dsn}}
	if store == nil {
		store = must(memory.NewStore(memory.StoreOptions{}))
		t.Cleanup(func() { store.Close() })
	}
	opts.Store = store
	opts.Dialect = qcache.SQLite
	var err error
	if r.policy, err = qcache.NewGranularPolicy(opts); err != nil {
		t.Fatal(err)
	}
	var wo qcache.Options
	if len(wopts) > 0 {
		wo = wopts[0]
	}
	wo.Policy = r.policy
	if wo.OnError == nil {
		wo.OnError = func(err error) { t.Logf("OnError: %v", err) }
	}
	r.db = sql.OpenDB(qcache.Wrap(r.inner, wo))
	t.Cleanup(func() { r.db.Close() })
	r.plain = must(sql.Open("sqlite3", dsn))
	t.Cleanup(func() { r.plain.Close() })
	for _, s := range []string{
		`CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER, title TEXT)`,
		`CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)`,
		`INSERT INTO posts (user_id, title) VALUES (1, 'a1'), (1, 'a2'), (2, 'b1'), (2, 'b2'), (3, 'c1')`,
		`INSERT INTO users (id, name) VALUES (1, 'one'), (2, 'two'), (3, 'three')`,
	} {
		if _, err := r.plain.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	return r
}
