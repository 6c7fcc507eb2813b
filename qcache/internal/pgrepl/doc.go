// Package pgrepl is a minimal PostgreSQL logical replication client for
// the pgoutput plugin, built on pgconn alone. The query cache's feeder
// uses it to learn of every row change (including raw SQL, triggers and
// other services) from the write-ahead log.
//
// # Protocol
//
// [Connect] opens a walsender session (replication=database). Replication
// commands run on it: [Conn.IdentifySystem], [Conn.CreateSlot],
// [Conn.DropSlot]. [Conn.StartReplication] switches it to streaming
// (copy-both mode) with pgoutput protocol version 1; from then on
// [Conn.Receive] yields [*XLogData] (one pgoutput message each, decoded by
// [Decode]) and [*Keepalive], and [Conn.SendStandbyStatus] confirms
// progress so that the server may recycle WAL.
//
// A transaction arrives as [*Begin], optionally [*Origin], then [*Relation]
// and [*Type] messages for tables and types not described before in the
// session, the changes ([*Insert], [*Update], [*Delete], [*Truncate]) in
// commit order, and [*Commit]. Only committed transactions are sent, in
// commit order; on PostgreSQL 15 a transaction without a published change
// sends nothing. Tuples are in text format.
//
// # Caveats
//
// A [Conn] is not safe for concurrent use. A slot created permanent keeps
// WAL on the server until it is dropped; a temporary slot is dropped when
// its connection ends. The server ends a session that sends no status
// update for wal_sender_timeout (60 s by default): answer a [Keepalive]
// with ReplyRequested promptly. Changes that are not confirmed with
// [Conn.SendStandbyStatus] are sent again after a reconnect.
//
// With REPLICA IDENTITY FULL, [Update] and [Delete] carry the whole old
// row; otherwise Delete carries the key only and Update the old key only
// when the key changed. A TOASTed value an UPDATE did not change is sent
// as [KindUnchanged] without data.
package pgrepl
