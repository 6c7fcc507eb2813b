package pgxdbtx_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"os"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/cachekit/cachekit/memory"
	"github.com/cachekit/cachekit/qcache"
	"github.com/cachekit/cachekit/qcache/pgxdbtx"
)

// This example needs a PostgreSQL server (CACHEKIT_POSTGRES_DSN); it is
// compiled, not run. Queries and New stand for sqlc's generated code.
func ExampleNew() {
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(os.Getenv("CACHEKIT_POSTGRES_DSN"))
	if err != nil {
		log.Fatal(err)
	}
	store, err := memory.NewStore(memory.StoreOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	policy, err := qcache.NewGranularPolicy(qcache.GranularOptions{Store: store, Dialect: qcache.Postgres})
	if err != nil {
		log.Fatal(err)
	}
	db := sql.OpenDB(qcache.Wrap(stdlib.GetConnector(*cfg), qcache.Options{Policy: policy}))
	defer db.Close()

	q := New(pgxdbtx.New(db)) // sqlc's New(db DBTX) *Queries
	author, err := q.GetAuthor(ctx, 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(author.Name)

	// A transaction: its writes invalidate at Commit.
	tx, err := pgxdbtx.New(db).Begin(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer tx.Rollback(ctx) // an error wrapping pgx.ErrTxClosed after Commit
	if err := New(tx).UpdateBio(ctx, UpdateBioParams{ID: 1}); err != nil {
		log.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		log.Fatal(err)
	}
}
