// Package redis is cachekit's Redis and Redis Cluster [cachekit.Store],
// built on github.com/redis/rueidis (auto-pipelining, RESP3, cluster
// routing).
//
//	s, err := redis.New(ctx, redis.Options{Addrs: []string{"127.0.0.1:6379"}, Prefix: "myapp:"})
//	if err != nil { ... }
//	defer s.Close()
//	err = s.Set(ctx, "k", []byte("v"), time.Minute)
//	v, err := s.Get(ctx, "k")
//
// Besides Get, Set and Delete the Store implements [cachekit.Adder] (SET
// NX), [cachekit.Toucher] (PEXPIRE / PERSIST), [cachekit.Counter] (INCRBY
// in a Lua script that refuses absent keys), [cachekit.Batcher] (pipelined
// GET / SET), [cachekit.Clearer] (SCAN + UNLINK), [cachekit.Leaser] (SET NX
// PX with a compare-and-delete release), [cachekit.ExpiryReader] (GET +
// PTTL in one script) and [cachekit.Notifier] with [cachekit.Watermarker]
// (RESP3 client tracking, below).
//
// # Key prefix
//
// Every key k is stored as Options.Prefix+k (default [DefaultPrefix],
// "cachekit:"). The prefix is what makes Clear safe on a shared server: it
// SCANs for Prefix* (with the glob characters of the prefix escaped) and
// never flushes a database. A prefix is a namespace only if no other
// store's prefix starts with it: keys are plain strings, so a Store with
// prefix "a:" sees the key "a:b:x" of a Store with prefix "a:b:" as its own
// key "b:x" — its Clear deletes it and its subscribers are told when it
// changes. Give stores sharing a server prefixes of which none is a string
// prefix of another, for example by ending each with a separator that
// occurs nowhere else in it ("app1:", "app2:", not "a:" and "a:b:").
//
// # Cluster
//
// One address of a standalone server gives a standalone store; several
// addresses, or one address of a cluster node, give a cluster store
// (rueidis tries CLUSTER SLOTS first and falls back to a standalone
// connection only for a single address that refuses it). Every command
// names one key, so keys of different slots never meet in one command:
// batches, Delete and Clear pipeline one command per key, grouped by node,
// and the Lua scripts touch a single key. MOVED and ASK redirections during
// resharding are followed. Clear and tracking run on every master, found by
// asking each known node its ROLE. A prefix containing a hash tag ("{app}:")
// would put every key of the store in one slot, on one master.
//
// # Invalidations and the watermark
//
// [Store.Subscribe] opens, on each master, a dedicated connection with
// CLIENT TRACKING ON BCAST PREFIX <prefix>: Redis then pushes the name of
// every key under the prefix that any client modifies (writes, deletes,
// expiry, eviction) to that connection, and a null invalidation when the
// database is flushed. The subscribers receive the keys with the prefix
// stripped, or nil for "drop everything" — also whenever a tracking
// connection breaks, when it is reopened, and when a new master appears,
// since invalidations may have been lost in between.
//
// The Store pings each tracking connection every Options.HeartbeatInterval.
// Redis queues an invalidation on the tracking connection (in the same
// event-loop turn as the write, before the writer gets its reply) ahead of
// the reply of any command it reads there later, and rueidis calls the
// invalidation hook on its reader goroutine before it hands out any later
// reply. So when a PING sent at time T is answered, the invalidations of
// all writes that completed before T have been delivered. [Store.Watermark]
// is the oldest such T over all masters.
//
// The staleness bound follows: a local tier that serves a read starting at
// time t from its copy only while t - Watermark() <= B (cachekit/tiered does,
// with B = its MaxStale) never returns a value replaced by a write that
// completed more than B before the read started. On a healthy server the
// Watermark trails the clock by about Options.HeartbeatInterval (10 ms) plus
// a round trip, so B must be larger than that or the local copy is never
// used; under load or with a slow callback it trails further and the tier
// falls back to the server. While a tracking connection is down, not yet
// answered, or slower than Options.Timeout to answer a PING, Watermark is
// the zero time and the subscribers have been told to drop everything; it
// comes back after the connection is reopened (with backoff, up to 1 s
// between attempts), the subscribers have been told to drop everything
// again (writes made while it was down were not reported), and it has
// answered a PING.
//
// # Errors
//
// Every error is a *[cachekit.OpError] with Backend "redis". A miss wraps
// [cachekit.ErrMiss]. A server that refuses connections, drops them, does
// not answer within Options.Timeout (or the context's earlier deadline), or
// answers that it cannot serve now (LOADING, BUSY, CLUSTERDOWN, TRYAGAIN,
// MASTERDOWN, READONLY, NOREPLICAS, OOM, or a redirection rueidis gave up
// following) gives an error wrapping [cachekit.ErrUnavailable] and the
// cause (context.DeadlineExceeded for a timeout). A cancelled context
// wraps context.Canceled. After Close every method returns
// [cachekit.ErrClosed]. The empty key is refused with
// [cachekit.ErrInvalidKey]; a value longer than Options.MaxValueSize with
// [cachekit.ErrTooLarge], before anything is sent. The client reconnects
// by itself: operations issued while a server restarts fail with
// ErrUnavailable, later ones succeed on the same Store. Whether a write
// that failed with ErrUnavailable took effect is unknown.
//
// # Caveats
//
// Subscribe needs Redis 6 or later (RESP3 and client tracking); the rest
// works on any Redis that has UNLINK and Lua (4.0). TTLs are kept by the
// server in whole milliseconds: a positive TTL below
// 1 ms becomes 1 ms. Counter follows Redis's integer syntax (no '+', no
// leading zeros or spaces). Client tracking ignores the database number, so
// writes in another DB to keys under the prefix are reported too (a
// harmless extra invalidation). The tracking of a master that joins a
// cluster starts within Options.TopologyInterval (subscribers are flushed
// when it does); until then writes on it are not reported and the
// Watermark does not account for it.
package redis
