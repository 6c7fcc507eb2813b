// Package memcached is a [cachekit.Store] over a pool of memcached servers,
// built on github.com/bradfitz/gomemcache. Keys are spread over the servers
// by gomemcache's ServerList (or a ServerSelector of your own); any number
// of processes may share the servers.
//
//	store, err := memcached.New(ctx, memcached.Options{
//		Addrs:  []string{"10.0.0.1:11211", "10.0.0.2:11211"},
//		Prefix: "myapp",
//	})
//
// Besides Get, Set and Delete, a [Store] is a [cachekit.Adder],
// [cachekit.Toucher], [cachekit.Counter], [cachekit.Batcher],
// [cachekit.Clearer], [cachekit.ExpiryReader] and [cachekit.Leaser]. It is
// not a [cachekit.Notifier]: memcached cannot tell clients about changes.
//
// # Keys
//
// A key k is stored as Prefix + ":" + k. Keys memcached cannot take (longer
// than 250 bytes, or holding spaces or control characters) are shortened as
// [cachekit.MemcachedKey] does: a readable head, "-" and the SHA-256 hex of
// the whole key. The mapping is one-to-one (a key that merely looks
// shortened is shortened too), and keys of different prefixes never
// collide. Only the empty key is refused, with [cachekit.ErrInvalidKey].
//
// # Values
//
// Each value is stored behind a 17-byte header: a magic byte, the absolute
// expiry (Unix nanoseconds, 0 for none) and the namespace version it was
// written under. The expiry serves [Store.GetWithExpiry]; the version
// serves Clear. Bytes under a key that lack the header (written by another
// client) read as an error wrapping [cachekit.ErrCorrupt]. A value may be
// up to Options.MaxValueSize bytes ([DefaultMaxValueSize], which fits
// memcached's default 1 MiB item limit with the longest key); a larger one
// is refused with [cachekit.ErrTooLarge] before it reaches the server,
// which keeps the previous value (memcached itself would drop it).
//
// # Clear and namespace versions
//
// memcached cannot list or delete keys by prefix, so Clear does not delete:
// each server holds a namespace key (Prefix + "#ns" + n, placed so that it
// lives on that server) whose number is the prefix's current version there.
// Every value records the version it was written under; a read fetches the
// value and its server's namespace key in one request, and a value of
// another version is a miss. Clear increments every server's namespace
// key, so from the moment it returns, no process reads a value written
// before it. The retired values take memory until memcached evicts them
// (LRU) or they expire; Options.FlushOnClear frees them at once with
// flush_all, at the price of every other key on the servers.
//
// A write carries the version this process last saw on the key's server:
// every read refreshes it, and a write re-reads it when it is more than a
// second old. A write that carries an outdated version (one racing with
// another process's Clear) only makes its value look older than the Clear:
// a miss, never a stale hit. A namespace key that was evicted is created
// again with a random version, which values written before do not carry;
// until some write creates it, every read of that server's keys misses.
//
// # TTL
//
// A value expires exactly at its TTL: the frame records the absolute
// expiry, and a read treats a value past it as absent, by the reading
// process's clock. memcached counts expiry in whole seconds of its own clock
// (and the current second may end at any moment), so it is asked to keep
// each item for the TTL rounded up to whole seconds plus one second: it
// never drops a value before its expiry and frees the memory less than two
// seconds after. TTLs over 30 days are sent as absolute Unix times, as
// memcached requires; expiry cannot reach past 2038-01-19 (memcached's
// 32-bit times) and is capped there. A zero TTL or [cachekit.NoExpiry]
// never expires (memcached may still evict under memory pressure); a
// negative TTL deletes the key. Touch and IncrBy rewrite the value with a
// compare-and-swap; IncrBy keeps the recorded expiry.
//
// # Context, timeouts and failures
//
// gomemcache takes no context. Each call therefore runs on its own
// goroutine, and the caller waits for it, for ctx and for Options.Timeout,
// whichever comes first. When the wait ends first, the call returns at
// once, with ctx.Err() when the caller cancelled, or an error wrapping
// [cachekit.ErrUnavailable] and [context.DeadlineExceeded] when the server
// did not answer in time (or [cachekit.ErrUnavailable] and the network
// timeout error, when the client's own timeout fired first). The abandoned
// request ends on its own within the client's network timeout
// (Options.Timeout for the client the Store builds), and whether a write
// abandoned so took effect is unknown. A
// server that refuses connections, resets them or is paused gives
// [cachekit.ErrUnavailable] (wrapping the cause) for the keys it holds;
// keys on the other servers keep working. Nothing needs to be reopened
// when the server comes back: idle connections that died with it are
// retried transparently, and new ones are dialled.
//
// Every error is a *[cachekit.OpError] with Backend "memcached". After
// Close, calls return [cachekit.ErrClosed].
//
// # Caveats
//
// Every process sharing a prefix must list the same servers in the same
// order (as for any memcached pool: otherwise they look for keys on
// different servers), and must use this package: the header and namespace
// keys are its own format.
//
// Processes sharing a prefix must agree on the clock (NTP), since expiry
// instants are absolute: a process whose clock runs ahead sees values
// expire early (misses); one whose clock runs behind can read a value at
// most until memcached drops it, under two seconds late. Expiries over 30
// days also depend on the servers' clocks.
//
// With Options.Client and no Options.Selector, the Store cannot tell where
// gomemcache puts a key, so one namespace key serves the whole pool: every
// call then also needs the server that holds it.
//
// Delete, Touch and IncrBy read before they write (memcached has no
// conditional delete and no signed increment), and so do Add and Lease on a
// key that holds an expired or retired value: two requests where the native
// command would take one. GetMany and Delete's reads take one request per
// server; SetMany and Delete's deletions run up to 16 requests at once.
//
// memcached may evict any entry at any time, namespace keys included; an
// evicted namespace key costs misses, never stale reads. A lease with a
// zero TTL can be evicted like any value.
package memcached
