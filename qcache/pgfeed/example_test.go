package pgfeed_test

import (
	"context"
	"database/sql"
	"log"
	"os"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/cachekit/cachekit/memory"
	"github.com/cachekit/cachekit/qcache"
	"github.com/cachekit/cachekit/qcache/pgfeed"
)

// Example feeds the changes of a database into a policy, so that writes by
// other services invalidate the cache, and reads a write back through the
// cache with WaitLSN. (Not run: it needs a server.)
func Example() {
	ctx := context.Background()
	dsn := os.Getenv("DATABASE_URL")
	store, err := memory.NewStore(memory.StoreOptions{})
	if err != nil {
		log.Fatal(err)
	}
	policy, err := qcache.NewGranularPolicy(qcache.GranularOptions{Store: store, Dialect: qcache.Postgres})
	if err != nil {
		log.Fatal(err)
	}
	feeder, err := pgfeed.New(ctx, pgfeed.Options{
		DSN:                    dsn,
		Policy:                 policy,
		Tables:                 []string{"posts", "users"},
		EnforceReplicaIdentity: true,
		OnError:                func(err error) { log.Print(err) },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer feeder.Close()

	// A write on a connection the cache does not wrap ...
	plain, err := sql.Open("pgx", dsn)
	if err != nil {
		log.Fatal(err)
	}
	defer plain.Close()
	if _, err := plain.ExecContext(ctx, `UPDATE posts SET status = 'done' WHERE id = 1`); err != nil {
		log.Fatal(err)
	}
	// ... is invalidated within a millisecond or so; to read it back
	// through the cache at once, wait for it.
	lsn, err := pgfeed.CurrentLSN(ctx, plain)
	if err != nil {
		log.Fatal(err)
	}
	if err := feeder.WaitLSN(ctx, lsn); err != nil {
		log.Fatal(err)
	}
}
