// Package qcache caches the results of SQL queries below database/sql, so
// that it works under database/sql, sqlx, sqlc, GORM, bun and ent alike, and
// invalidates them when statements run through it write.
//
// [Wrap] wraps a [driver.Connector] and [Open] a registered driver. Query
// results are captured as rows (column names, database type names, the
// nullable, length, precision-scale and scan-type facts the driver gives,
// and the typed values), encoded, and replayed through a [driver.Rows] that
// reports the same column types, so that Scan and ColumnTypes behave as
// with the driver itself.
//
// # Policies
//
// What is cached and what a write invalidates is decided by a [Policy].
// [GranularPolicy] invalidates by rows: the SQL is parsed (a real parser per
// dialect), each table a query reads gets a disjunction of equality
// conjunctions, and a write invalidates only the queries whose conjunctions
// its old or new rows match (cacheops' "insideout" stamps; see its
// documentation for what falls back to a table-wide invalidation). Its
// write path reads row images itself on SQLite; on PostgreSQL every write
// still invalidates its whole table. [TablePolicy] invalidates at the table
// level, with a table extractor the caller gives.
//
// Fills are race-free: the policy reads the stamps of a query's tables
// before the query runs and stores its result only under those stamps, and
// only if they are unchanged once it has run, so a result read before a
// concurrent write is never served after the write has returned.
//
// # Transactions
//
// Inside a transaction, statements that write queue their invalidations,
// which are applied right after Commit and dropped on Rollback. Once a
// transaction has written, its queries neither read nor fill the cache.
// Queries in a transaction that has not written may be served from the cache
// but never fill it (its snapshot may predate a write already invalidated),
// and transactions opened at REPEATABLE READ or stricter bypass the cache.
//
// # Per-query controls
//
// [Bypass] skips the cache for the queries run under a context; [WithTTL]
// sets the lifetime of the results they store.
//
// # Caveats
//
// A result with more than one result set (driver.RowsNextResultSet) is
// never cached. A result is stored only once the application has read it to
// the end, and only up to [Options.MaxRows] rows. Savepoints are not tracked
// yet: invalidations queued before ROLLBACK TO SAVEPOINT are still applied
// at Commit (wider invalidation, never a missed one). Statements that open
// or end transactions as SQL text (BEGIN, COMMIT) are not recognised: use
// the database/sql transaction API.
package qcache
