package qcache_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/cachekit/cachekit/memory"
	"github.com/cachekit/cachekit/qcache"
)

// ExampleCache caches the reads of users automatically (with a TTL of an
// hour) and the reads of orders only when the context opts in; the policy's
// counters tell what happened.
func ExampleCache() {
	store, err := memory.NewStore(memory.StoreOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	policy, err := qcache.NewGranularPolicy(qcache.GranularOptions{
		Store:   store,
		Dialect: qcache.SQLite,
		Tables:  map[string]qcache.TableProfile{"users": {TTL: time.Hour}},
	})
	if err != nil {
		log.Fatal(err)
	}
	db, err := qcache.Open("sqlite3", ":memory:", qcache.Options{Policy: policy})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // one in-memory database
	for _, s := range []string{
		"CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)",
		"CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER)",
		"INSERT INTO users (id, name) VALUES (1, 'ann')",
	} {
		if _, err := db.Exec(s); err != nil {
			log.Fatal(err)
		}
	}
	ctx := context.Background()
	read := func(ctx context.Context, query string) {
		var n any
		if err := db.QueryRowContext(ctx, query, 1).Scan(&n); err != nil {
			log.Fatal(err)
		}
	}
	for range 2 {
		read(ctx, "SELECT name FROM users WHERE id = ?")           // automatic
		read(ctx, "SELECT count(*) FROM orders WHERE user_id = ?") // no profile
		read(qcache.Cache(ctx, qcache.CacheOptions{TTL: time.Minute}),
			"SELECT count(*) FROM orders WHERE user_id = ? AND id > 0") // opted in
	}
	s := policy.Stats()
	fmt.Printf("hits %d, misses %d, not opted in %d\n", s.Hits, s.Misses, s.UncachedNotOptedIn)
	// Output:
	// hits 2, misses 2, not opted in 2
}
