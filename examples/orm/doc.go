// Package orm shows that ORMs and query builders run unchanged on top of
// the query cache of package qcache: GORM (over gorm.io/driver/postgres and
// gorm.io/driver/sqlite) and sqlx are handed a *sql.DB opened with
// [database/sql.OpenDB] on a connector wrapped by
// [github.com/cachekit/cachekit/qcache.Wrap], and work as over the plain
// driver, while repeated reads are served from the cache and writes
// invalidate what they change.
//
// The package holds only tests and examples; it is a module of its own so
// that the library's go.mod never depends on GORM or sqlx. The PostgreSQL
// tests need CACHEKIT_POSTGRES_DSN (make test starts a server and sets it);
// the SQLite ones use a file in a temporary directory.
package orm
