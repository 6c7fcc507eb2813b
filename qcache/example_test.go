package qcache_test

import (
	"fmt"
	"log"

	_ "github.com/mattn/go-sqlite3"

	"github.com/cachekit/cachekit/memory"
	"github.com/cachekit/cachekit/qcache"
)

func Example() {
	store, err := memory.NewStore(memory.StoreOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	// A provisional extractor for the statements of this example; the SQL
	// dependency extractor will provide the real one.
	policy, err := qcache.NewTablePolicy(qcache.TableOptions{
		Store: store,
		Reads: func(sql string) ([]string, bool) {
			if sql == "SELECT count(*) FROM users" {
				return []string{"users"}, true
			}
			return nil, false
		},
		Writes: func(sql string) ([]string, bool) {
			if sql == "INSERT INTO users (name) VALUES (?)" {
				return []string{"users"}, true
			}
			return nil, false // DDL and anything unknown: invalidate everything
		},
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

	if _, err := db.Exec("CREATE TABLE users (name TEXT)"); err != nil {
		log.Fatal(err)
	}
	count := func() (n int) {
		if err := db.QueryRow("SELECT count(*) FROM users").Scan(&n); err != nil {
			log.Fatal(err)
		}
		return n
	}
	fmt.Println(count()) // from the database, then stored
	fmt.Println(count()) // from the cache
	if _, err := db.Exec("INSERT INTO users (name) VALUES (?)", "ann"); err != nil {
		log.Fatal(err)
	}
	fmt.Println(count()) // invalidated by the insert
	// Output:
	// 0
	// 0
	// 1
}
