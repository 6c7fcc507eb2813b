package qcache

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cachekit/cachekit"
)

// TableOptions configures [NewTablePolicy].
type TableOptions struct {
	// Store holds the cached results and the table stamps. Required. The
	// invalidation guarantees hold for a store only this process writes
	// (the memory store); see [TablePolicy].
	Store cachekit.Store

	// Reads reports the tables a query reads and whether its result may be
	// cached (false for anything it cannot analyse, volatile functions,
	// locking reads, statements that write). Required. It must report every
	// table the query reads: a missing table is a missed invalidation.
	// Reads and Writes must spell a table the same way (case, schema).
	Reads func(sql string) (tables []string, cacheable bool)

	// Writes reports the tables a statement writes: (nil, true) when it
	// writes nothing, (nil, false) when it cannot tell, which invalidates
	// every cached query. Required.
	Writes func(sql string) (tables []string, known bool)

	// TTL is the lifetime of cached results when the query's context sets
	// none with [WithTTL]. Default: DefaultTTL.
	TTL time.Duration

	// Prefix starts every key the policy writes. Default: "qcache:".
	// Keys name tables and SQL text, not the database: policies of
	// different databases (or PostgreSQL schemas reached through
	// search_path, as per-tenant schemas are) that share a store must
	// have different prefixes, or they serve each other's results.
	Prefix string

	// Tables are the profiles of automatic caching, by table name as Reads
	// spells it; see [GranularOptions].Tables. Default: nil, every read
	// that Reads calls cacheable is cached.
	Tables map[string]TableProfile

	// Lock takes the dog-pile lock across processes on every miss; see
	// [GranularOptions].Lock. Default: false.
	Lock bool

	// LockWait bounds how long a miss waits for another read of the same
	// entry to fill it; see [GranularOptions].LockWait. Default:
	// DefaultLockWait.
	LockWait time.Duration

	// Observer receives an [Event] for every read and every invalidation.
	// Default: nil, only the counters of [TablePolicy.Stats].
	Observer Observer
}

// DefaultTTL is the default for [TableOptions.TTL].
const DefaultTTL = 10 * time.Minute

// TablePolicy is a [Policy] with table-level invalidation: a cached query
// depends on every table it reads, and a write to any of them invalidates
// it.
//
// Each table has a random stamp in the store, and a global epoch stamp
// covers every table. A result is stored under a key that hashes the SQL,
// its arguments and the current stamps of the global epoch and of its
// tables, so invalidating a table is one Delete of its stamp (its next
// reader draws a new one) and entries filled under the old stamp are never
// read again; they expire by TTL or eviction.
//
// NOTE: when an invalidation fails (the store is down), the policy stops
// serving from the cache in this process until it has bumped the global
// epoch. Another process sharing the store does not learn of the failure;
// use table-level caching on a shared store only with short TTLs until
// the stamps layer handles that case.
type TablePolicy struct {
	opts TableOptions
	stampStore
	reader
}

var _ Policy = (*TablePolicy)(nil)

// NewTablePolicy returns a table-level policy, or an error when a required
// option is missing.
func NewTablePolicy(opts TableOptions) (*TablePolicy, error) {
	switch {
	case opts.Store == nil:
		return nil, errors.New("qcache: TableOptions.Store is nil")
	case opts.Reads == nil:
		return nil, errors.New("qcache: TableOptions.Reads is nil")
	case opts.Writes == nil:
		return nil, errors.New("qcache: TableOptions.Writes is nil")
	case opts.TTL < 0:
		return nil, fmt.Errorf("qcache: negative TableOptions.TTL %v", opts.TTL)
	}
	if opts.TTL == 0 {
		opts.TTL = DefaultTTL
	}
	if opts.Prefix == "" {
		opts.Prefix = "qcache:"
	}
	p := &TablePolicy{opts: opts}
	p.init(opts.Store, opts.Prefix)
	if err := p.initReader(readConfig{
		name: "TableOptions", store: opts.Store, ttl: opts.TTL, tables: opts.Tables,
		lock: opts.Lock, lockWait: opts.LockWait, observer: opts.Observer,
	}); err != nil {
		return nil, err
	}
	return p, nil
}

// Stats returns a snapshot of the policy's counters.
func (p *TablePolicy) Stats() Stats { return p.stats() }

func (p *TablePolicy) tableKey(table string) string { return p.opts.Prefix + "t:" + table }

// Lookup implements [Policy]. It reads (creating when absent) the stamps of
// the query's tables, then the entry stored under them. A read that misses
// waits for a concurrent fill of the same entry (see TableOptions.LockWait
// and Lock).
func (p *TablePolicy) Lookup(ctx context.Context, q Query) ([]byte, Fill, error) {
	tables, ok := p.opts.Reads(q.SQL)
	if !ok {
		p.noteUncached(ctx, ReasonNotCacheable, q.SQL, tables, nil)
		return nil, nil, nil
	}
	tables = slices.Clone(tables)
	slices.Sort(tables)
	tables = slices.Compact(tables)
	ttl, lock, ok := p.plan(ctx, q, p.autoPlan(tables, OpFetch))
	if !ok {
		p.noteUncached(ctx, ReasonNotOptedIn, q.SQL, tables, nil)
		return nil, nil, nil
	}
	if err := p.recover(ctx); err != nil {
		return nil, nil, err
	}
	keys := make([]string, 0, len(tables)+1)
	keys = append(keys, p.global)
	for _, t := range tables {
		keys = append(keys, p.tableKey(t))
	}
	ri := readInfo{sql: q.SQL, tables: tables, lock: lock, bucket: bucketOf(q.SQL)}
	gen := p.generation(ri)
	hit, key, store, err := p.probe(ctx, q, keys, ttl)
	switch {
	case err != nil:
		return p.lookupError(ctx, q, tables, err)
	case hit != nil:
		p.note(ctx, Hit, q.SQL, tables)
		return hit, nil, nil
	}
	return p.miss(ctx, ri, gen, key, store,
		func(ctx context.Context) ([]byte, string, storeFunc, error) {
			return p.probe(ctx, q, keys, ttl)
		})
}

// lookupError ends a Lookup whose probe failed: a query with an argument
// the entry key cannot encode is not cacheable; other errors are the
// store's.
func (p *TablePolicy) lookupError(ctx context.Context, q Query, tables []string, err error) ([]byte, Fill, error) {
	var argErr *argError
	if errors.As(err, &argErr) {
		p.noteUncached(ctx, ReasonNotCacheable, q.SQL, tables, argErr.err)
		return nil, nil, nil
	}
	return nil, nil, err
}

// argError is an argument the entry key cannot encode.
type argError struct{ err error }

func (e *argError) Error() string { return "qcache: entry key: " + e.err.Error() }

// probe reads the stamps under keys (creating the missing ones) and the
// entry stored under them: the payload on a hit, the entry key and the
// storeFunc of the result on a miss.
func (p *TablePolicy) probe(ctx context.Context, q Query, keys []string, ttl time.Duration) ([]byte, string, storeFunc, error) {
	stamps, err := p.stamps(ctx, keys, true)
	if err != nil {
		return nil, "", nil, err
	}
	pairs := make([]string, 0, 2*len(keys))
	for i, k := range keys {
		pairs = append(pairs, k, stamps[i])
	}
	key, err := p.entryKey(q, pairs...)
	if err != nil {
		return nil, "", nil, &argError{err} // arguments of a type we cannot hash: uncached
	}
	val, err := p.opts.Store.Get(ctx, key)
	switch {
	case err == nil:
		return val, key, nil, nil
	case !errors.Is(err, cachekit.ErrMiss):
		return nil, "", nil, err
	}
	return nil, key, func(ctx context.Context, result []byte) (bool, error) {
		// The query ran after the stamps were read. If a write invalidated
		// one of its tables meanwhile, the result may predate the write: do
		// not store it. The check and the Set are not atomic, and need not
		// be: a write that deletes a stamp between them leaves the entry
		// under a key that no reader computes any more.
		now, err := p.stamps(ctx, keys, false)
		if err != nil {
			return false, err
		}
		if !slices.Equal(now, stamps) {
			return false, nil
		}
		return true, p.opts.Store.Set(ctx, key, result, ttl)
	}, nil
}

// Writes implements [Policy].
func (p *TablePolicy) Writes(_ context.Context, q Query) (Invalidation, error) {
	tables, known := p.opts.Writes(q.SQL)
	switch {
	case !known:
		return p.invalidation(q.SQL, nil), nil
	case len(tables) == 0:
		return nil, nil
	}
	return p.invalidation(q.SQL, tables), nil
}

// InvalidateTables invalidates every cached query reading one of tables.
func (p *TablePolicy) InvalidateTables(ctx context.Context, tables ...string) error {
	if len(tables) == 0 {
		return nil
	}
	return p.invalidation("", tables).Apply(ctx)
}

// InvalidateAll invalidates every cached query.
func (p *TablePolicy) InvalidateAll(ctx context.Context) error {
	return p.invalidation("", nil).Apply(ctx)
}

// invalidation returns the invalidation of tables, or of everything when
// tables is nil, after the statement sql.
func (p *TablePolicy) invalidation(sql string, tables []string) tableInvalidation {
	if tables == nil {
		return tableInvalidation{p: p, sql: sql, keys: []string{p.global}}
	}
	keys := make([]string, len(tables))
	for i, t := range tables {
		keys[i] = p.tableKey(t)
	}
	return tableInvalidation{p: p, sql: sql, tables: tables, keys: keys}
}

// tableInvalidation deletes stamps.
type tableInvalidation struct {
	p      *TablePolicy
	sql    string   // the statement that wrote, for events
	tables []string // nil: everything
	keys   []string
}

// Apply deletes the stamps. On failure, lookups stop serving from the cache
// until the global epoch has been bumped.
func (inv tableInvalidation) Apply(ctx context.Context) error {
	if err := inv.p.deleteStamps(ctx, inv.keys); err != nil {
		return err
	}
	kind := InvalidateTable
	if inv.tables == nil {
		kind = InvalidateGlobal
	}
	inv.p.noteInvalidation(ctx, kind, inv.sql, inv.tables)
	return nil
}

// stamps returns the stamps under keys. With create, an absent stamp is
// created (a random value, added only if still absent); without, it reads
// as "".
func (p *TablePolicy) stamps(ctx context.Context, keys []string, create bool) ([]string, error) {
	m, err := p.getMany(ctx, keys)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = string(m[k])
	}
	if !create {
		return out, nil
	}
	for i, k := range keys {
		if out[i] != "" {
			continue
		}
		v, err := p.newStamp(ctx, k)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}
