package qcache_test

import (
	"context"
	"fmt"
	"log"

	_ "github.com/mattn/go-sqlite3"

	"github.com/cachekit/cachekit/memory"
	"github.com/cachekit/cachekit/qcache"
)

func ExampleCachedAs() {
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
	if _, err := db.Exec(`CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER, score INTEGER);
		INSERT INTO posts (user_id, score) VALUES (1, 10), (1, 20), (2, 5)`); err != nil {
		log.Fatal(err)
	}

	// The score of a user, a computation the cache cannot see through,
	// invalidated by every write to a post of that user.
	score, err := qcache.CachedAs(policy, "user.Score",
		func(user int) []qcache.Dep {
			return []qcache.Dep{qcache.SQL(`SELECT score FROM posts WHERE user_id = ?`, user)}
		},
		func(ctx context.Context, user int) (int, error) {
			fmt.Println("computing the score of user", user)
			rows, err := db.QueryContext(qcache.Bypass(ctx), `SELECT score FROM posts WHERE user_id = ?`, user)
			if err != nil {
				return 0, err
			}
			defer rows.Close()
			total := 0
			for rows.Next() {
				var s int
				if err := rows.Scan(&s); err != nil {
					return 0, err
				}
				total += s * s
			}
			return total, rows.Err()
		},
		qcache.CachedAsOptions{})
	if err != nil {
		log.Fatal(err)
	}
	show := func(user int) {
		s, err := score.Call(ctx, user)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("user %d: %d\n", user, s)
	}
	show(1)
	show(1) // cached
	show(2)
	if _, err := db.Exec(`UPDATE posts SET score = 3 WHERE id = 3`); err != nil {
		log.Fatal(err)
	}
	show(1) // user 1's posts did not change: still cached
	show(2) // invalidated by the update
	// Output:
	// computing the score of user 1
	// user 1: 500
	// user 1: 500
	// computing the score of user 2
	// user 2: 25
	// user 1: 500
	// computing the score of user 2
	// user 2: 9
}
