//go:build sqlite_preupdate_hook && cgo

package sqlitefeed

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/cachekit/cachekit/memory"
	"github.com/cachekit/cachekit/qcache"
)

// BenchmarkUpdate compares a one-row UPDATE (autocommit, WAL) with a live
// scheme on its table: on the plain driver, through the policy's own
// write path (pre-image SELECT in BEGIN IMMEDIATE, post-image by rowid),
// and through the feeder with and without the change-log triggers.
func BenchmarkUpdate(b *testing.B) {
	for _, bc := range []struct {
		name string
		open func(b *testing.B, dsn string, p *qcache.GranularPolicy) *sql.DB
	}{
		{"plain", func(b *testing.B, dsn string, _ *qcache.GranularPolicy) *sql.DB {
			db, err := sql.Open("sqlite3", dsn)
			if err != nil {
				b.Fatal(err)
			}
			return db
		}},
		{"policy", func(b *testing.B, dsn string, p *qcache.GranularPolicy) *sql.DB {
			db, err := qcache.Open("sqlite3", dsn, qcache.Options{Policy: p})
			if err != nil {
				b.Fatal(err)
			}
			return db
		}},
		{"feeder", func(b *testing.B, dsn string, p *qcache.GranularPolicy) *sql.DB {
			db, err := Open(dsn, p, Options{Foreign: NoForeign})
			if err != nil {
				b.Fatal(err)
			}
			return db
		}},
		{"feeder-changelog", func(b *testing.B, dsn string, p *qcache.GranularPolicy) *sql.DB {
			db, err := Open(dsn, p, Options{PollInterval: manual})
			if err != nil {
				b.Fatal(err)
			}
			return db
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			dsn := "file:" + filepath.Join(b.TempDir(), "db.sqlite") + "?_journal_mode=WAL&_busy_timeout=10000&_synchronous=NORMAL"
			setup, err := sql.Open("sqlite3", dsn)
			if err != nil {
				b.Fatal(err)
			}
			defer setup.Close()
			if _, err := setup.Exec(schema); err != nil {
				b.Fatal(err)
			}
			store, err := memory.NewStore(memory.StoreOptions{})
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			p, err := qcache.NewGranularPolicy(qcache.GranularOptions{Store: store, Dialect: qcache.SQLite})
			if err != nil {
				b.Fatal(err)
			}
			db := bc.open(b, dsn, p)
			defer db.Close()
			var n int
			if err := db.QueryRow(postsBy, 1).Scan(&n, new(string)); err != nil { // a live scheme: user_id
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := db.Exec(`UPDATE posts SET title = 't' WHERE id = ?`, 3); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
