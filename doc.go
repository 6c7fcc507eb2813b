// Package cachekit is the core of a caching toolkit for Go services: the
// typed cache facade [Cache], the byte-level [Store] contract every backend
// implements, the value envelope [Entry], TTL and key rules, and the errors
// shared by every package of the module. It imports no backend; backends
// (cachekit/memory, and the disk, Redis and Memcached stores to come) import
// it.
//
// # Stores and capabilities
//
// A [Store] has four methods: Get, Set, Delete and Close. Extra powers are
// optional interfaces found by type assertion, in the style of
// database/sql/driver: [Adder] (add if absent), [Toucher], [Counter],
// [Batcher], [Clearer], [Leaser], [Notifier], [ExpiryReader] and
// [ValueStore] (the object tier, which keeps Go values by reference). Each
// documents the fallback [Cache] uses when a store lacks it and whether that
// fallback is atomic. The package cachetest checks any store.
//
// # The cache
//
// [Cache] gives Django's cache API in idiomatic Go: Get, Set, Add, GetOrSet,
// GetOrLoad (one load per key at a time in this process), Touch, Delete, Has,
// [Incr]/[Decr], GetMany, SetMany, DeleteMany, Clear, IncrVersion/DecrVersion
// and Close. Keys are built as prefix:version:key (see [KeyFunc]) and may be
// rewritten by a [KeyPolicy] such as [MemcachedKey].
//
// # TTL
//
// Everywhere a caller passes a TTL to a Cache: zero means the cache's
// default (Options.DefaultTTL, five minutes unless set), [NoExpiry] means
// never (Django's None), and a negative TTL such as [ExpireNow] stores
// nothing and deletes the key (Django's 0).
//
// # Errors
//
// A miss is always an error wrapping [ErrMiss], never a zero value with a
// nil error. Test errors with [errors.Is]: [ErrMiss], [ErrClosed],
// [ErrInvalidKey], [ErrTooLarge], [ErrNotInteger], [ErrCorrupt],
// [ErrNotSupported]; a panicking loader gives [*PanicError].
//
// # Caveats
//
// On the object tier the same pointer is handed to every reader: mutating a
// cached value is visible to all of them, and is a data race unless the
// value is safe for concurrent use. Configure a codec to get copies.
//
// GetOrLoad runs the loader on a context that the callers cannot cancel
// (bounded by Options.LoadTimeout): a loader that ignores its context keeps
// running after every caller has given up, and Close waits for it.
package cachekit
