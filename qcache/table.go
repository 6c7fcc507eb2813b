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
	Prefix string
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
	return p, nil
}

func (p *TablePolicy) tableKey(table string) string { return p.opts.Prefix + "t:" + table }

// Lookup implements [Policy]. It reads (creating when absent) the stamps of
// the query's tables, then the entry stored under them.
func (p *TablePolicy) Lookup(ctx context.Context, q Query) ([]byte, Fill, error) {
	tables, ok := p.opts.Reads(q.SQL)
	if !ok {
		return nil, nil, nil
	}
	if err := p.recover(ctx); err != nil {
		return nil, nil, err
	}
	tables = slices.Clone(tables)
	slices.Sort(tables)
	tables = slices.Compact(tables)
	keys := make([]string, 0, len(tables)+1)
	keys = append(keys, p.global)
	for _, t := range tables {
		keys = append(keys, p.tableKey(t))
	}
	stamps, err := p.stamps(ctx, keys, true)
	if err != nil {
		return nil, nil, err
	}
	pairs := make([]string, 0, 2*len(keys))
	for i, k := range keys {
		pairs = append(pairs, k, stamps[i])
	}
	key, err := p.entryKey(q, pairs...)
	if err != nil {
		return nil, nil, nil // arguments of a type we cannot hash: uncached
	}
	val, err := p.opts.Store.Get(ctx, key)
	switch {
	case err == nil:
		return val, nil, nil
	case !errors.Is(err, cachekit.ErrMiss):
		return nil, nil, err
	}
	ttl := q.TTL
	if ttl <= 0 {
		ttl = p.opts.TTL
	}
	fill := func(ctx context.Context, result []byte) error {
		// The query ran after the stamps were read. If a write invalidated
		// one of its tables meanwhile, the result may predate the write: do
		// not store it. The check and the Set are not atomic, and need not
		// be: a write that deletes a stamp between them leaves the entry
		// under a key that no reader computes any more.
		now, err := p.stamps(ctx, keys, false)
		if err != nil {
			return err
		}
		if !slices.Equal(now, stamps) {
			return nil
		}
		return p.opts.Store.Set(ctx, key, result, ttl)
	}
	return nil, fill, nil
}

// Writes implements [Policy].
func (p *TablePolicy) Writes(_ context.Context, q Query) (Invalidation, error) {
	tables, known := p.opts.Writes(q.SQL)
	switch {
	case !known:
		return tableInvalidation{p: p, keys: []string{p.global}}, nil
	case len(tables) == 0:
		return nil, nil
	}
	keys := make([]string, len(tables))
	for i, t := range tables {
		keys[i] = p.tableKey(t)
	}
	return tableInvalidation{p: p, keys: keys}, nil
}

// InvalidateTables invalidates every cached query reading one of tables.
func (p *TablePolicy) InvalidateTables(ctx context.Context, tables ...string) error {
	keys := make([]string, len(tables))
	for i, t := range tables {
		keys[i] = p.tableKey(t)
	}
	return tableInvalidation{p: p, keys: keys}.Apply(ctx)
}

// InvalidateAll invalidates every cached query.
func (p *TablePolicy) InvalidateAll(ctx context.Context) error {
	return tableInvalidation{p: p, keys: []string{p.global}}.Apply(ctx)
}

// tableInvalidation deletes stamps.
type tableInvalidation struct {
	p    *TablePolicy
	keys []string
}

// Apply deletes the stamps. On failure, lookups stop serving from the cache
// until the global epoch has been bumped.
func (inv tableInvalidation) Apply(ctx context.Context) error {
	return inv.p.deleteStamps(ctx, inv.keys)
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
