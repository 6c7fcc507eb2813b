// Package sqlitefeed opens a SQLite database (mattn/go-sqlite3) whose
// query results are cached by a [qcache.GranularPolicy] and invalidated
// from SQLite's own pre-update hook instead of the policy's SQL-based
// write path.
//
// # Build tag
//
// The pre-update hook is compiled into mattn/go-sqlite3 only with the
// build tag sqlite_preupdate_hook (and cgo):
//
//	go build -tags sqlite_preupdate_hook ./...
//	go test -tags sqlite_preupdate_hook ./qcache/sqlitefeed/
//
// Without it the package compiles, and [Open] returns an error wrapping
// [ErrNoPreUpdateHook]; use qcache.Open with the policy's own write path
// then.
//
// # Writes through the database
//
// Every connection registers a pre-update hook, which reports the old and
// new values of every row an INSERT, UPDATE or DELETE touches: also the
// rows written by triggers, by foreign-key actions (ON DELETE CASCADE, SET
// NULL), by upserts (ON CONFLICT DO UPDATE, INSERT OR REPLACE) and by
// statements with RETURNING, none of which the policy's SQL grammar reads.
// The hook copies the values into a buffer of the connection (column names
// come from PRAGMA table_info, cached per connection until the schema
// version changes). The connection implements [qcache.ChangeFeed]: the
// wrapper takes the buffer after every statement and turns it into
// [qcache.GranularPolicy.InvalidateImages] calls, applied before Exec or
// Query (when its rows are closed) returns outside a transaction, and
// right after COMMIT succeeds, before Commit returns, inside one; a
// ROLLBACK drops them, and so does a ROLLBACK TO for the statements run
// since its savepoint. The policy runs no pre-image SELECT and opens no
// BEGIN IMMEDIATE transaction around writes. Statements that are not row
// changes (DDL, PRAGMA, several statements in one text) are also passed
// to the policy, as without a feed (DDL bumps the global epoch).
//
// # Writes by other processes
//
// Writes to the same file by other processes, or by connections not
// opened through [Open], do not run the hook. A dedicated connection polls
// PRAGMA data_version every [Options.PollInterval] (it changes when
// another connection commits). What a change invalidates depends on
// [Options.Foreign]:
//
//   - [ChangeLog] (the default): Open creates the table _qcache_changes
//     and AFTER INSERT, UPDATE and DELETE triggers on every table, which
//     log the table, its column names and the old and new values of every
//     changed row, whoever writes. The poller reads the entries after the
//     last one it saw and invalidates exactly their rows. Entries written
//     by this database's own connections (their pre-update hook sees the
//     log inserts; an entry is recognised by its sequence number and a
//     random nonce) are skipped: those were invalidated at commit. One the
//     poller reads in the microseconds between the COMMIT and the wrapper's
//     invalidation is invalidated twice, which is harmless. Entries older
//     than [Options.LogRetention] are deleted; a poller that finds a gap
//     (it fell behind the retention) bumps the global epoch. A schema
//     change seen by the poller (PRAGMA schema_version) installs the
//     triggers of new tables (and rewrites those of altered ones) and
//     bumps the global epoch, which also covers the writes made before
//     the triggers were in place.
//   - [DataVersion]: no schema change; any commit by another connection
//     bumps the global epoch, including the commits of this database's
//     other connections (their own writes then empty the whole cache
//     within PollInterval).
//   - [NoForeign]: no polling; only this *sql.DB writes the file.
//
// A write by another process is therefore seen within PollInterval (plus
// the time to read the log and delete the stamps): until then, reads of
// this process may serve results it changed. That is the staleness bound.
//
// # Caveats
//
// The ChangeLog triggers read every column: SQLite refuses ALTER TABLE …
// DROP COLUMN on a column a trigger reads, so a migration that drops
// columns calls [DropTriggers] first, in its own transaction (the pollers
// reinstall them). Every write also inserts a log row per changed row,
// which costs writes (see BenchmarkUpdate). Rows written under
// qcache.WithoutInvalidation are not invalidated at commit, but the
// poller invalidates them from the log like another process's writes.
// The poller watches only the main database of the file (not ATTACHed
// ones), and an in-memory database has no other process to watch (use
// NoForeign).
//
// The hook does not run for a DROP TABLE (the wrapper passes DDL to the
// policy, which bumps the global epoch), for virtual tables, or for
// changes to the sqlite_ tables. A statement that touches more than
// [Options.MaxImages] rows of one table bumps that table's epoch instead.
// ATTACHed databases are reported with their schema name ("aux.t"), as
// the policy's SQL grammar names them.
//
// Close the *sql.DB to stop the poller.
package sqlitefeed
