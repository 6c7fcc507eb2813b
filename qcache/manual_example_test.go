package qcache_test

import (
	"context"
	"fmt"
	"log"

	"github.com/cachekit/cachekit/memory"
	"github.com/cachekit/cachekit/qcache"
)

func ExampleWithoutInvalidation() {
	ctx := context.Background()
	store, err := memory.NewStore(memory.StoreOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	policy, err := qcache.NewGranularPolicy(qcache.GranularOptions{Store: store, Dialect: qcache.SQLite})
	if err != nil {
		log.Fatal(err)
	}
	db, err := qcache.Open("sqlite3", ":memory:", qcache.Options{Policy: policy})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // one in-memory database
	if _, err := db.Exec(`CREATE TABLE events (id INTEGER PRIMARY KEY, kind TEXT)`); err != nil {
		log.Fatal(err)
	}
	count := func() (n int) {
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM events WHERE kind = ?`, "click").Scan(&n); err != nil {
			log.Fatal(err)
		}
		return n
	}
	fmt.Println(count())

	// A batch job: its inserts skip the per-statement invalidation...
	batch := qcache.WithoutInvalidation(ctx)
	for range 1000 {
		if _, err := db.ExecContext(batch, `INSERT INTO events (kind) VALUES ('click')`); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println(count()) // stale until the batch's closing invalidation

	// ...and the job invalidates what it wrote once, at the end.
	if err := policy.InvalidateTables(ctx, "events"); err != nil {
		log.Fatal(err)
	}
	fmt.Println(count())
	// Output:
	// 0
	// 0
	// 1000
}
