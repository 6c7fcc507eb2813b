package qcache

import (
	"context"
	"strconv"
	"sync/atomic"
)

// Observer receives the events of a policy, for metrics and logs. Observe
// is called synchronously on the goroutine of the query (or of the write
// whose invalidation it reports), never under a lock of the package; it
// must be safe for concurrent use and return quickly.
type Observer interface {
	Observe(Event)
}

// ObserverFunc adapts a function to [Observer].
type ObserverFunc func(Event)

// Observe calls f(e).
func (f ObserverFunc) Observe(e Event) { f(e) }

// Event is one observation of a policy.
type Event struct {
	Kind EventKind

	// Reason says why a read is not cached (Uncached only).
	Reason Reason

	// SQL is the statement read (or, for an invalidation, the statement
	// that wrote; "" for InvalidateTables and InvalidateAll).
	SQL string

	// Tables are the tables the query reads, sorted, or the tables an
	// invalidation covers (nil for a global one, and for a query whose
	// tables are unknown). The slice is shared: do not modify it.
	Tables []string

	// Err is the parse error of an Uncached read with ReasonParse, the
	// reason of one with ReasonNotCacheable, and the cause of an Abandoned
	// fill.
	Err error

	// Ctx is the context of the read (for a Stored, Dropped or Abandoned
	// event, the context the fill was completed with) or of the write or
	// call that invalidated, so that an observer can attribute the event
	// to a request (a trace span, a request ID); nil when there is none.
	Ctx context.Context
}

// EventKind says what happened.
type EventKind uint8

// The kinds of [Event]. Every read the policy sees is exactly one of Hit,
// Miss or Uncached; every Miss ends in one of Stored, Dropped, Abandoned
// or Uncached with ReasonTooLarge.
const (
	// Hit: the result came from the cache.
	Hit EventKind = iota + 1
	// Miss: a cacheable read found no usable entry; the query runs and
	// its result is offered to the cache.
	Miss
	// Stored: the result of a miss was stored.
	Stored
	// Dropped: the result of a miss was not stored because a write
	// invalidated what it read while the query ran.
	Dropped
	// Abandoned: the result of a miss was not stored for another reason
	// (Err): the query or the reading of its rows failed, it ran in a
	// transaction, it had several result sets, or the store failed.
	Abandoned
	// Uncached: the read was not served from the cache nor stored in it
	// (Reason).
	Uncached
	// Coalesced: the read waited for another read of the same entry in
	// this process to fill it. It is followed by the read's Hit or Miss.
	Coalesced
	// LeaseWait: another process holds the lease on the entry (the dog-pile
	// lock) and this read waits for its result. It is followed by the
	// read's Hit or Miss.
	LeaseWait
	// InvalidateRows: a write invalidated the cached reads of the rows it
	// changed.
	InvalidateRows
	// InvalidateTable: a write (or InvalidateTables) invalidated every
	// cached read of its tables.
	InvalidateTable
	// InvalidateGlobal: a write the policy could not analyse (or
	// InvalidateAll) invalidated every cached read.
	InvalidateGlobal

	numKinds
)

var kindNames = [...]string{
	Hit: "hit", Miss: "miss", Stored: "stored", Dropped: "dropped", Abandoned: "abandoned",
	Uncached: "uncached", Coalesced: "coalesced", LeaseWait: "lease-wait",
	InvalidateRows: "invalidate-rows", InvalidateTable: "invalidate-table", InvalidateGlobal: "invalidate-global",
}

// String returns the kind's name, such as "hit" or "invalidate-rows".
func (k EventKind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "EventKind(" + strconv.Itoa(int(k)) + ")"
}

// Reason says why a read is [Uncached].
type Reason uint8

// The reasons of an Uncached [Event].
const (
	// ReasonParse: the policy cannot analyse the statement (GranularPolicy:
	// the SQL parser does not read it). It is passed through as a possible
	// write.
	ReasonParse Reason = iota + 1
	// ReasonNotCacheable: the statement reads something whose result must
	// not be cached (a volatile function, FOR UPDATE, a temporary table,
	// TableOptions.Reads said so), or an argument of a type the key
	// encoding does not know.
	ReasonNotCacheable
	// ReasonTooLarge: the result had more than Options.MaxRows rows.
	ReasonTooLarge
	// ReasonNotOptedIn: table profiles are set, one of the tables read has
	// none that caches the query, and the context did not opt in with
	// [Cache].
	ReasonNotOptedIn

	numReasons
)

var reasonNames = [...]string{
	ReasonParse: "parse", ReasonNotCacheable: "not-cacheable", ReasonTooLarge: "too-large",
	ReasonNotOptedIn: "not-opted-in",
}

// String returns the reason's name, such as "parse" or "too-large".
func (r Reason) String() string {
	if int(r) < len(reasonNames) && reasonNames[r] != "" {
		return reasonNames[r]
	}
	return "Reason(" + strconv.Itoa(int(r)) + ")"
}

// Stats is a snapshot of a policy's counters. They are always on and
// count from the policy's creation. Every read the policy sees (reads
// under [Bypass], and reads of a transaction that has written, never reach
// it; nor do reads whose cache lookup failed) counts once in Hits, Misses,
// UncachedParse, UncachedNotCacheable or UncachedNotOptedIn, and every
// Miss once in Stored, Dropped, Abandoned or UncachedTooLarge when its
// Fill has been called.
type Stats struct {
	Hits      uint64 // reads served from the cache
	Misses    uint64 // cacheable reads that ran the query
	Stored    uint64 // misses whose result was stored
	Dropped   uint64 // misses whose result a write made stale while the query ran
	Abandoned uint64 // misses whose result was not stored for another reason
	Coalesced uint64 // reads that waited for a fill in this process
	// LeaseWaits counts the reads that waited for another process's fill.
	LeaseWaits uint64
	// LocalHits counts the hits (among Hits) served by a GranularPolicy's
	// local index (see GranularOptions.LocalEntries).
	LocalHits uint64

	UncachedParse        uint64 // reads of statements the policy cannot analyse
	UncachedNotCacheable uint64 // reads whose results must not be cached
	UncachedTooLarge     uint64 // misses with more than Options.MaxRows rows
	UncachedNotOptedIn   uint64 // reads without a profile or opt-in (see TableProfile)

	InvalidatedRows   uint64 // row-level invalidations applied
	InvalidatedTables uint64 // table-level invalidations applied
	InvalidatedGlobal uint64 // global invalidations applied
}

// events counts the events of a policy and passes them to its observer.
type events struct {
	observer Observer // nil: counters only
	kinds    [numKinds]atomic.Uint64
	reasons  [numReasons]atomic.Uint64
}

// note counts an event of kind k and, when an observer is set, passes it
// the event built by ev. Without an observer nothing is built, so that a
// hit costs one atomic add.
func (e *events) note(ctx context.Context, k EventKind, sql string, tables []string) {
	e.kinds[k].Add(1)
	if e.observer != nil {
		e.observer.Observe(Event{Kind: k, SQL: sql, Tables: tables, Ctx: ctx})
	}
}

// noteUncached counts an Uncached read with its reason and cause.
func (e *events) noteUncached(ctx context.Context, r Reason, sql string, tables []string, err error) {
	e.kinds[Uncached].Add(1)
	e.reasons[r].Add(1)
	if e.observer != nil {
		e.observer.Observe(Event{Kind: Uncached, Reason: r, SQL: sql, Tables: tables, Err: err, Ctx: ctx})
	}
}

// noteAbandoned counts an Abandoned fill with its cause.
func (e *events) noteAbandoned(ctx context.Context, sql string, tables []string, err error) {
	e.kinds[Abandoned].Add(1)
	if e.observer != nil {
		e.observer.Observe(Event{Kind: Abandoned, SQL: sql, Tables: tables, Err: err, Ctx: ctx})
	}
}

// noteInvalidation counts an invalidation that has been applied: kind is
// InvalidateRows, InvalidateTable or InvalidateGlobal, sql the statement
// that wrote ("" when none), tables the tables it covers.
func (e *events) noteInvalidation(ctx context.Context, kind EventKind, sql string, tables []string) {
	e.note(ctx, kind, sql, tables)
}

// stats returns a snapshot of the counters.
func (e *events) stats() Stats {
	k := func(x EventKind) uint64 { return e.kinds[x].Load() }
	r := func(x Reason) uint64 { return e.reasons[x].Load() }
	return Stats{
		Hits: k(Hit), Misses: k(Miss), Stored: k(Stored), Dropped: k(Dropped), Abandoned: k(Abandoned),
		Coalesced: k(Coalesced), LeaseWaits: k(LeaseWait),
		UncachedParse: r(ReasonParse), UncachedNotCacheable: r(ReasonNotCacheable),
		UncachedTooLarge: r(ReasonTooLarge), UncachedNotOptedIn: r(ReasonNotOptedIn),
		InvalidatedRows: k(InvalidateRows), InvalidatedTables: k(InvalidateTable), InvalidatedGlobal: k(InvalidateGlobal),
	}
}
