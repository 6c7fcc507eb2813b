//go:build sqlite_preupdate_hook && cgo

package sqlitefeed_test

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cachekit/cachekit/memory"
	"github.com/cachekit/cachekit/qcache"
	"github.com/cachekit/cachekit/qcache/sqlitefeed"
)

func Example() {
	dir, err := os.MkdirTemp("", "sqlitefeed")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	dsn := "file:" + filepath.Join(dir, "app.db") + "?_journal_mode=WAL&_busy_timeout=5000"

	// The schema exists before Open, which installs the change-log
	// triggers (Options.Foreign, default ChangeLog).
	setup, err := sql.Open("sqlite3", dsn)
	if err != nil {
		panic(err)
	}
	if _, err := setup.Exec(`CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER, title TEXT)`); err != nil {
		panic(err)
	}
	setup.Close()

	store, err := memory.NewStore(memory.StoreOptions{})
	if err != nil {
		panic(err)
	}
	defer store.Close()
	policy, err := qcache.NewGranularPolicy(qcache.GranularOptions{Store: store, Dialect: qcache.SQLite})
	if err != nil {
		panic(err)
	}
	db, err := sqlitefeed.Open(dsn, policy, sqlitefeed.Options{})
	if err != nil {
		panic(err)
	}
	defer db.Close()

	count := func(user int) (n int) {
		if err := db.QueryRow(`SELECT count(*) FROM posts WHERE user_id = ?`, user).Scan(&n); err != nil {
			panic(err)
		}
		return n
	}
	fmt.Println(count(1), count(2)) // both cached from now on
	// An upsert with RETURNING: the pre-update hook sees its row.
	var id int
	if err := db.QueryRow(`INSERT INTO posts (id, user_id, title) VALUES (1, 1, 'hi') ON CONFLICT (id) DO UPDATE SET title = excluded.title RETURNING id`).Scan(&id); err != nil {
		panic(err)
	}
	fmt.Println(count(1), count(2)) // user 1 re-read, user 2 still cached
	s := policy.Stats()
	fmt.Println("hits:", s.Hits, "row invalidations:", s.InvalidatedRows)
	// Output:
	// 0 0
	// 1 0
	// hits: 1 row invalidations: 1
}
