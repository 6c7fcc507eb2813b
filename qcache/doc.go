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
// dialect: PostgreSQL's own through pg_query_go, TiDB's for SQLite), each
// table a query reads gets a disjunction of equality conjunctions, and a
// write invalidates only the queries whose conjunctions its old or new rows
// match (cacheops' "insideout" stamps). It reads the row images itself: on
// SQLite by a SELECT before and a rowid read after the write, on
// PostgreSQL from the write's own RETURNING list (and a SELECT … FOR UPDATE
// before an UPDATE). What it cannot resolve falls back to a table-wide or a
// global invalidation, never to a missed one; see its documentation.
// [TablePolicy] invalidates at the table level, with a table extractor the
// caller gives.
//
// Fills are race-free: the policy reads the stamps of a query's tables
// before the query runs and stores its result only under those stamps, and
// only if they are unchanged once it has run (on Redis, one Lua script that
// compares and sets), and a lookup serves an entry only if the checksum of
// the stamps it was stored under still matches. So a result read before a
// concurrent write is never served after the write has returned.
//
// # Stores
//
// The policies keep their stamps and results in any [cachekit.Store]: a
// memory store for one process, a disk store for the processes of one
// host, Redis (standalone or Cluster: a table's keys share one hash slot)
// for many hosts.
//
// Every lookup on Redis is a round trip, about as long on loopback as a
// primary-key query to PostgreSQL itself. Redis behind an in-process tier
// ([github.com/cachekit/cachekit/tiered] over the redis store, with
// tiered.Options.L1TTL set so that batched reads fill the tier) serves
// repeated hits from process memory (5.9–10.7x faster than the uncached query
// in bench/qcache) and keeps the guarantees apart from one: a write
// through the wrapper drops what it invalidates from its own process's
// tier before it returns, but reaches the tiers of other processes through
// Redis's invalidation messages, so a read there may miss a write that
// returned less than tiered.Options.MaxStale (default 50 ms) before it
// started (measured on loopback: under a millisecond; bench/qcache
// TestStaleness, modes sync/tiered-*).
//
// # Transactions
//
// Inside a transaction, statements that write queue their invalidations,
// which are applied right after Commit and dropped on Rollback; those
// queued after a SAVEPOINT are dropped by ROLLBACK TO it. Transaction
// control sent as SQL text (BEGIN, START TRANSACTION, COMMIT, END,
// ROLLBACK, SAVEPOINT, RELEASE, ROLLBACK TO, SET TRANSACTION) is tracked
// like database/sql's. Once a transaction has written, its queries neither
// read nor fill the cache. Queries in a transaction that has not written
// may be served from the cache but never fill it (its snapshot may predate
// a write already invalidated), and transactions at REPEATABLE READ or
// stricter bypass the cache.
//
// # Per-query controls, modes and functions
//
// [Bypass] skips the cache for the queries run under a context; [WithTTL]
// sets the lifetime of the results they store; [Cache] opts a query in
// (when table profiles, [TableProfile], restrict automatic caching) with
// its TTL and dog-pile lock; [WithoutInvalidation] lets a batch job write
// without invalidating, to be closed with [GranularPolicy.InvalidateTables].
// [GranularPolicy.InvalidateRow], InvalidateTables and InvalidateAll are the
// manual invalidations. [CachedAs] caches a function's result, invalidated
// by any write that would invalidate the queries (or tables) it depends on.
//
// Misses of the same query are coalesced in a process, and across
// processes with the lock on; every read and invalidation is counted
// ([GranularPolicy.Stats]) and passed to an [Observer].
//
// # Caveats
//
// A result with more than one result set (driver.RowsNextResultSet) is
// never cached. A result is stored only once the application has read it to
// the end, and only up to [Options.MaxRows] rows. Writes that do not go
// through the wrapper (another service, raw SQL on another connection,
// triggers, foreign-key cascades) are seen only with a change feed:
// qcache/pgfeed (PostgreSQL logical replication) or qcache/sqlitefeed
// (SQLite's pre-update hook, and a trigger change log for other processes).
package qcache
