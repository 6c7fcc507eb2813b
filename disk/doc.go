// Package disk is cachekit's persistent cache: a directory holding a SQLite
// database that indexes the entries and keeps small values, plus one file
// per large value. It is the Go counterpart of Python's DiskCache, usable as
// a [cachekit.Store] under [cachekit.Cache] or directly.
//
// # Process safety
//
// Any number of goroutines and processes may open the same directory. The
// database runs in WAL mode (readers never block writers), every connection
// waits up to Options.Timeout for another's lock, and read-modify-write
// operations (Add, IncrBy, Push, Pull, Pop, Transact, ...) run in one
// BEGIN IMMEDIATE transaction, so they are atomic across processes. A value
// written by one process is visible to every other once Set returns. A lock
// held longer than the timeout gives an error wrapping cachekit.ErrTimeout,
// never a silent failure.
//
// # Values and files
//
// Values of Options.MinFileSize (32 KiB) or more live in files with random
// names (never derived from keys) under two levels of directories. A file is
// written completely before the transaction that references it and is
// unlinked only after the transaction that drops it has committed; a value
// whose file is missing or has the wrong length reads as a miss. Large values
// stream: [Store.SetReader] takes an io.Reader and [Store.Read] returns the
// open file.
//
// # Eviction
//
// The cache keeps its volume (database pages in use plus value files) under
// Options.SizeLimit, 1 GiB by default, evicting up to Options.CullLimit
// entries per write by the policy: least recently stored (default), least
// recently used, least frequently used, or none. Reads never write to the
// database: for LRU and LFU they are recorded in memory and written with the
// next write. Every eviction is counted in [Store.Stats].
//
// # Beyond a key-value store
//
// Tags with [Store.Evict], queues with [Store.Push] and [Store.Pull],
// [Store.PeekItem], iteration in key order and in store order, [Store.Expire],
// [Store.Cull], [Store.Volume], [Store.Transact] and [Store.Check].
// [Fanout] shards a cache over several databases so that processes writing
// at once do not queue for one lock. [Deque] is a persistent double-ended
// queue with O(log n) random access, and [Index] a persistent map that keeps
// insertion order; both are safe across processes.
//
// # L1
//
// Options.L1Size adds an in-process tier of hot entries in front of SQLite,
// kept coherent with every other process on the directory by a generation
// counter in a memory-mapped file that every writer bumps after commit.
//
// # Caveats
//
// The store keeps bytes only: it never decodes anything into Go types (the
// codec of cachekit.Cache does that, into the caller's type), so a hostile
// file cannot make it run code. Directories and files are created 0700 and
// 0600 by default.
//
// The SQLite driver is github.com/mattn/go-sqlite3 (cgo); build with
// CGO_ENABLED=0 or the tag cachekit_purego to use modernc.org/sqlite instead.
// Processes sharing a directory must agree on the clock: expiry times are
// absolute.
package disk
