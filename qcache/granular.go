package qcache

import (
	"context"
	"crypto/sha256"
	"database/sql/driver"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/qcache/internal/rowcodec"
	"github.com/cachekit/cachekit/qcache/internal/sqldeps"
)

// Dialect is the SQL grammar a [GranularPolicy] parses.
type Dialect int

const (
	// SQLite is SQLite (mattn/go-sqlite3, modernc.org/sqlite).
	SQLite Dialect = iota + 1
	// Postgres is PostgreSQL (its analysis needs cgo; without it every
	// statement is uncached and every write bumps the global epoch).
	Postgres
)

// GranularOptions configures [NewGranularPolicy].
type GranularOptions struct {
	// Store holds the results, stamps and scheme lists. Required.
	Store cachekit.Store

	// Dialect is the SQL grammar of the statements. Required.
	Dialect Dialect

	// TTL is the lifetime of cached results when the query's context sets
	// none with [WithTTL]. Default: DefaultTTL.
	TTL time.Duration

	// SchemeTTL is how long a scheme stays in its table's list after the
	// last lookup that used it (extended once half of it has passed).
	// Default: DefaultSchemeTTL.
	SchemeTTL time.Duration

	// DegradeWrites lets a write run when the store cannot be read to plan
	// its invalidation (the store is down or times out). By default such a
	// write is refused with the store's error (wrapping
	// cachekit.ErrUnavailable for a store that is down) before it reaches
	// the database, so that no write ever escapes the cache's notice: the
	// database stays consistent with every cache that shares the store,
	// at the price of writes while the store is down. With DegradeWrites,
	// the write runs and then bumps its table's epoch; when that fails too,
	// this policy stops serving from the cache until it has bumped the
	// global epoch, but another process sharing the store may serve the
	// table's entries filled before the write until then (or until they
	// expire, TTL). Choose it when writes matter more than that window.
	DegradeWrites bool

	// MaxImages is the largest number of rows whose images a write reads
	// to invalidate row by row; a write touching more bumps the table's
	// epoch instead. Default: DefaultMaxImages.
	MaxImages int

	// Prefix starts every key the policy writes. Default: "qc:".
	// Keys name tables and SQL text, not the database: policies of
	// different databases (or PostgreSQL schemas reached through
	// search_path, as per-tenant schemas are) that share a store must
	// have different prefixes, or they serve each other's results.
	Prefix string

	// Now is the clock of scheme deadlines. Default: time.Now.
	Now func() time.Time

	// Tables are the profiles of automatic caching, by table name as the
	// SQL parser spells it (lower case for SQLite, as PostgreSQL folds it;
	// a schema prefix is kept except "public" and "main"). Default: nil,
	// every cacheable SELECT is cached. When not nil, a SELECT is cached
	// automatically only if every table it reads has a profile (its TTL is
	// then the smallest of theirs), and otherwise only under a context
	// from [Cache]; an empty map caches only the reads that opt in. See
	// [TableProfile].
	Tables map[string]TableProfile

	// Lock takes the dog-pile lock across processes on every miss, as
	// django-cacheops' lock=True: when the store is a [cachekit.Leaser],
	// the process that takes the lease on the entry runs the query, and
	// the others wait for its result (LockWait at most) before running it
	// themselves. It costs a lease and a release per miss, never anything
	// on a hit. A read can also ask for it with [TableProfile].Lock or
	// [CacheOptions].Lock. Default: false. (Misses of the same entry in
	// one process always wait for the first; see LockWait.)
	Lock bool

	// LockWait bounds how long a miss waits for another read of the same
	// entry to fill it (in this process, or holding the lease in another)
	// before running the query itself; it is also the TTL of the leases.
	// Negative: misses never wait, each runs its query. Default:
	// DefaultLockWait.
	//
	// WARNING: a goroutine that runs a query again (same SQL, same
	// arguments) while it still holds the unread rows of its first miss
	// waits LockWait for itself.
	LockWait time.Duration

	// Observer receives an [Event] for every read and every invalidation.
	// Default: nil, only the counters of [GranularPolicy.Stats].
	Observer Observer

	// LocalEntries bounds the local index, used only when Store is a
	// [cachekit.ProcessLocal] (the memory store): the policy then keeps up
	// to LocalEntries results it filled or served in process memory (as
	// well as in the store), decoded, and serves a repeated hit from there
	// with no store read while no write through a policy of this process
	// on the same Store and Prefix has touched its tables since (see
	// [Stats.LocalHits]). Negative: no local index. Default:
	// DefaultLocalEntries.
	LocalEntries int
}

// Defaults of [GranularOptions].
const (
	DefaultSchemeTTL = 24 * time.Hour
	DefaultMaxImages = 1000
)

// GranularPolicy is a [Policy] with row-granular invalidation, after
// django-cacheops' INSIDEOUT scheme: a write invalidates only the cached
// queries whose equality conditions the rows it changes can satisfy.
//
// # Reads
//
// The SQL dependency extractor gives, for every table a SELECT reads, a
// disjunction of equality conjunctions that every row able to affect the
// result satisfies. The sorted column list of one conjunction is a scheme
// of the table (the empty scheme stands for the whole table); each
// (table, scheme, values) has a random stamp in the store under
// "<prefix>s:<table>:<scheme>:<hash of the canonical values>". Each table
// also has an epoch stamp and a scheme list (the schemes readers use, so
// that writers in any process know which stamps a row affects), and a
// global epoch covers everything.
//
// A result is stored under the hash of its SQL and arguments, together with
// a checksum of the values of every key it depends on (the global epoch,
// and per table its epoch, the generation of each of its schemes and its
// stamps). A lookup reads all of them, the scheme lists and the entry in
// one GetMany (on a [cachekit.Batcher]) and serves the entry only if the
// checksum still matches and the lists still hold its schemes. Fills are
// race-free: the stamps are read (absent ones created) before the query
// runs and the result is stored only if they are unchanged after it.
//
// A table's scheme list ("<prefix>l:<table>", one scheme a line) is
// updated with a plain Set, which a concurrent reader may overwrite; a
// scheme missing from it is invisible to writers. So a reader that finds
// its scheme missing adds it and rotates the scheme's generation
// ("<prefix>n:<table>:<scheme>"), which kills every entry filled while
// writers could not see the scheme; and a writer that finds, once its
// statement has run, a scheme in the list that was not there when it read
// the pre-images bumps the table epoch. Each scheme in the list has a
// deadline, SchemeTTL after it was added or extended (lookups extend it
// once half of that has passed): readers treat a scheme past its deadline
// as missing (re-adding it rotates its generation), writers ignore it a
// minute later (clock skew between processes), and the next reader that
// rewrites the list drops it. So schemes no live query uses expire.
//
// # What is cached, dog-pile lock, events
//
// Without GranularOptions.Tables every cacheable SELECT is cached; with
// them, only the reads whose tables all have a [TableProfile] allowing
// their kind of read, and the reads under a context from [Cache]. The
// misses of one entry in a process are coalesced: the first runs the
// query, the others wait for its result (LockWait at most). With Lock (or
// a profile's or [CacheOptions]' Lock) the first also takes a lease on the
// entry in the store, so that processes sharing the store coalesce too.
// Every read and invalidation is counted ([GranularPolicy.Stats]) and
// passed to GranularOptions.Observer.
//
// # Writes
//
// Once a write has run (or after Commit), the stamp of every scheme for
// every image of the rows it changed (the old and the new values of its
// scheme columns) is deleted, with the empty scheme's stamp. How the images
// are read depends on the database.
//
// On SQLite, before an UPDATE or DELETE the policy reads, on the same
// connection and in the same transaction, the pre-images of the rows its
// WHERE can match (a SELECT of the scheme columns under the WHERE's
// equality DNF, a superset of the rows written); after an UPDATE it
// re-reads the same rows by rowid for the post-images; after a plain
// single-row INSERT it reads the new row by last_insert_rowid(). Outside a
// transaction, the pre-image read, the write and the post-image read run in
// one BEGIN IMMEDIATE transaction that the policy opens and commits, so
// that no other connection changes the rows in between.
//
// On PostgreSQL the wrapper runs the statement rewritten (from its parse
// tree) with the scheme columns appended to its RETURNING list, after the
// application's own items, which alone the application sees (see
// [Returner]): a DELETE returns exactly the old images, an INSERT (VALUES,
// several rows, INSERT … SELECT, ON CONFLICT DO NOTHING) exactly the new
// ones. An INSERT … ON CONFLICT DO UPDATE also returns xmax::text <> '0',
// true for a row that was updated rather than inserted: its old image is
// unknown, and the table's epoch is bumped then. Before an UPDATE the
// policy reads the pre-images with a SELECT of the statement's relation,
// FROM list and WHERE (same parameters) FOR UPDATE OF its target, in the
// same transaction (outside one it opens one with BEGIN and commits it
// after the statement); the UPDATE returns the post-images. The locked rows
// cannot change until the UPDATE, and as long as its WHERE reads only the
// target row they all still match it: the write is exact when it returns as
// many rows as were locked (more means a row committed in between now
// matches). With a FROM list, a subquery or a function call in the WHERE,
// the pre-image read also returns each row's tableoid and ctid (a row
// joined twice counts once), and after the UPDATE a query by those ctids
// checks that none of the locked rows is still visible unchanged: the
// UPDATE changed exactly the locked rows. A pre-image read that fails
// inside the application's transaction (which it aborts) returns its
// error, as the UPDATE would.
//
// On both, if a scheme joined the table's list meanwhile, or anything could
// not be resolved (more than MaxImages rows, a failed statement, a value
// that cannot be canonicalised; on SQLite a WITHOUT ROWID table, INSERT …
// SELECT, REPLACE or ON CONFLICT, a multi-row INSERT; on PostgreSQL a
// statement with a WITH clause or WHERE CURRENT OF, an upsert that
// updated, an UPDATE that did not change exactly the rows it locked), the
// table's epoch is bumped instead. A write the extractor cannot read
// (on SQLite RETURNING, ON CONFLICT upserts, INSERT OR REPLACE) bumps the
// epoch of the table its leading keywords name (INSERT INTO t, UPDATE t,
// DELETE FROM t, REPLACE INTO t); any other statement it cannot read (a
// data-modifying WITH among them) bumps the global epoch. TRUNCATE bumps
// the epochs of its tables; DDL bumps the global epoch (it may rename,
// drop or redefine what other tables and views read).
//
// # Local index
//
// On a [cachekit.ProcessLocal] store (the memory store), the policy also
// keeps the entries it filled or served in process memory, decoded (see
// GranularOptions.LocalEntries), and serves a repeated hit from there
// without reading the store: an entry is valid while no invalidation by a
// policy of this process on the same store and prefix has touched the
// global epoch or one of its tables since its stamps were read. The
// index is table-granular (a write voids its table's local entries; the
// store's row-granular entries survive and the next lookup puts them
// back). It falls back to the store at the entry's expiry (measured by
// GranularOptions.Now), once half of a scheme's SchemeTTL has passed, and
// while a failed invalidation is not yet covered.
//
// # Canonical values
//
// A query argument or literal and a row value must give the same stamp
// whenever the database may find them equal. Values are canonicalised by
// their Go type as the driver gives them: integers (and bools, and floats
// with an integral value) become the integer; other floats their shortest
// text; a [16]byte is a UUID. Strings and byte slices are read as every
// type the database may read them as: 32 hex digits (with hyphens and
// braces as PostgreSQL's uuid input allows) are a UUID, lower-cased; a
// number (after trimming spaces and a fraction of zeros, so a numeric
// "12.00" is the integer 12) becomes that number, as SQLite's type
// affinity or PostgreSQL's numeric input convert it; PostgreSQL's boolean
// spellings ("t", "yes", "on", …) become 1 or 0; other strings are
// lower-cased (NOCASE collations) without trailing spaces (char(n)). NULL
// is its own value. Merging values that the database distinguishes only
// widens invalidation. time.Time values are not canonicalised (drivers
// store them as text in several formats): a query condition on one is
// dropped from its conjunction, and a row image holding one bumps the
// table epoch. On PostgreSQL a row value is canonicalised only for the
// column types whose equality this follows (integers, oid, numeric, text,
// varchar, char(n), name, bool, uuid, float8 below 2^53); any other type
// in a row image (float4, compared after rounding to float4; json, bytea,
// dates and times, enums, arrays, …) bumps the table epoch.
//
// # Caveats
//
// On SQLite, an INSERT or UPDATE sent through Query inside a transaction
// bumps the table epoch (its post-images are not read), and so does every
// write with RETURNING or an upsert (GORM's Create): the SQLite grammar
// does not read them.
//
// On PostgreSQL a write runs as a query through the inner connection's
// QueryContext, also when the application prepared it; an Exec's result
// then has no LastInsertId (pgx has none either). An UPDATE outside a
// transaction runs inside one the policy opens with BEGIN (the wrapper
// tracks BEGIN sent as SQL text, so an UPDATE inside such a transaction
// uses it instead). The pre-image read of an UPDATE
// selects ctid when its WHERE reads more than the target row, which fails
// on a view, and it needs the SELECT privilege on the scheme columns:
// inside the application's transaction such a failure is returned. Text
// that PostgreSQL finds equal beyond case and trailing spaces (a
// nondeterministic ICU collation, citext under a locale whose lower()
// differs from Go's) may get different canonical texts: writes can then
// miss cached queries. A large DELETE or UPDATE returns its scheme columns
// for every row even past MaxImages.
//
// Rows changed by triggers, foreign-key actions or a table-level ON
// CONFLICT REPLACE clause are not seen (as with [TablePolicy], a write's
// other tables are not known), nor writes that do not go through the
// wrapper; a query of a view depends on the view's name, not on its base
// tables, so writes to the base tables do not invalidate it.
//
// The local index sees only the invalidations of this process's policies:
// a Store.Clear, a Delete of the policy's keys or an eviction does not
// void it (use InvalidateAll); its entries expire by GranularOptions.Now,
// not by the store's clock; it holds its results in memory besides the
// store. The registry of its cells keeps the store reachable.
//
// A store that fails: a read whose stamps cannot be read runs uncached; a
// write whose invalidation cannot be planned is refused (see
// DegradeWrites); an invalidation that fails after its write keeps this
// policy from serving anything until it has bumped the global epoch. A
// process partitioned from a store that other processes still reach can
// lose an invalidation those processes do not hear of: they may serve the
// entries it covered until the writer reaches the store again (its next
// read or write bumps the global epoch first) or the entries expire. On SQLite, an UPDATE that changes a row's
// rowid bumps the table epoch (its post-image is missing), unless another
// row takes the old rowid in the same statement.
type GranularPolicy struct {
	opts    GranularOptions
	dialect sqldeps.Dialect

	analyzed textMemo[analysis]

	rewrites     textMemo[rewritten] // PostgreSQL writes, by columns and statement
	tableKeys    textMemo[tableKeys] // by table name
	newTableKeys func(string) tableKeys

	stampStore
	reader
	local *localIndex // nil unless the store is process-local
}

// analysis is what the policy memoizes per statement text.
type analysis struct {
	q      *sqldeps.Query
	err    error
	tables []string // the tables a SELECT reads, sorted
	bucket uint8    // bucketOf(sql)
	auto   autoPlan // what the profiles say of them
	why    error    // q.Reason as an error, when the SELECT is not cacheable
}

var _ ConnPolicy = (*GranularPolicy)(nil)

// NewGranularPolicy returns a row-granular policy, or an error when an
// option is invalid.
func NewGranularPolicy(opts GranularOptions) (*GranularPolicy, error) {
	p := &GranularPolicy{}
	p.newTableKeys = p.buildTableKeys
	switch opts.Dialect {
	case SQLite:
		p.dialect = sqldeps.SQLite
	case Postgres:
		p.dialect = sqldeps.Postgres
	default:
		return nil, fmt.Errorf("qcache: unknown GranularOptions.Dialect %d", opts.Dialect)
	}
	switch {
	case opts.Store == nil:
		return nil, errors.New("qcache: GranularOptions.Store is nil")
	case opts.TTL < 0 || opts.SchemeTTL < 0 || opts.MaxImages < 0:
		return nil, errors.New("qcache: negative GranularOptions duration or limit")
	}
	if opts.TTL == 0 {
		opts.TTL = DefaultTTL
	}
	if opts.SchemeTTL == 0 {
		opts.SchemeTTL = DefaultSchemeTTL
	}
	if opts.MaxImages == 0 {
		opts.MaxImages = DefaultMaxImages
	}
	if opts.Prefix == "" {
		opts.Prefix = "qc:"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	p.opts = opts
	p.init(opts.Store, opts.Prefix)
	if p.local = newLocalIndex(opts.Store, opts.Prefix, opts.LocalEntries); p.local != nil {
		p.cells = p.local.cells
	}
	if err := p.initReader(readConfig{
		name: "GranularOptions", classifies: true, store: opts.Store, ttl: opts.TTL, tables: opts.Tables,
		lock: opts.Lock, lockWait: opts.LockWait, observer: opts.Observer,
	}); err != nil {
		return nil, err
	}
	return p, nil
}

// Prefix returns the prefix of every key the policy writes
// (GranularOptions.Prefix after defaults).
func (p *GranularPolicy) Prefix() string { return p.opts.Prefix }

// Stats returns a snapshot of the policy's counters.
func (p *GranularPolicy) Stats() Stats {
	s := p.stats()
	if p.local != nil {
		s.LocalHits = p.local.hits.Load()
	}
	return s
}

// analyze memoizes sqldeps.Analyze per statement text.
func (p *GranularPolicy) analyze(sql string) (*sqldeps.Query, error) {
	a := p.analysis(sql)
	return a.q, a.err
}

// analysis returns the memoized analysis of a statement.
func (p *GranularPolicy) analysis(sql string) analysis {
	return p.analyzed.get(sql, p.analyzeNew)
}

// analyzeNew analyses a statement (see analysis).
func (p *GranularPolicy) analyzeNew(sql string) analysis {
	var a analysis
	a.q, a.err = sqldeps.Analyze(p.dialect, sql)
	if a.err == nil && a.q.Kind == sqldeps.KindSelect {
		a.tables = slices.Sorted(maps.Keys(a.q.Deps))
		a.bucket = bucketOf(sql)
		op := OpFetch
		if p.classify {
			op = opOf(p.dialect, sql)
		}
		a.auto = p.autoPlan(a.tables, op)
		if !a.q.Cacheable {
			a.why = errors.New(a.q.Reason)
		}
	}
	return a
}

// schemeSkew is the clock skew between processes that scheme deadlines
// tolerate: a writer still honours a scheme for schemeSkew past its
// deadline, while readers stop serving under it at the deadline.
const schemeSkew = time.Minute

// parseSchemes parses a table's scheme list: one line per scheme, its
// sorted columns joined by ",", a space and its deadline (Unix seconds).
func parseSchemes(v []byte) map[string]int64 {
	m := map[string]int64{}
	for line := range strings.SplitSeq(string(v), "\n") {
		s, d, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseInt(d, 10, 64); err == nil {
			m[s] = n
		}
	}
	return m
}

func formatSchemes(m map[string]int64) []byte {
	var b []byte
	for _, s := range slices.Sorted(maps.Keys(m)) {
		if len(b) > 0 {
			b = append(b, '\n')
		}
		b = append(b, s...)
		b = append(b, ' ')
		b = strconv.AppendInt(b, m[s], 10)
	}
	return b
}

// liveSchemes returns, sorted, the schemes of a list that a writer at now
// must honour.
func liveSchemes(v []byte, now time.Time) []string {
	var live []string
	for s, d := range parseSchemes(v) {
		if d >= now.Add(-schemeSkew).Unix() {
			live = append(live, s)
		}
	}
	slices.Sort(live)
	return live
}

// Lookup implements [Policy]. A read that misses waits for a concurrent
// fill of the same entry (see GranularOptions.LockWait and Lock).
func (p *GranularPolicy) Lookup(ctx context.Context, q Query) ([]byte, Fill, error) {
	hit, _, local, fill, err := p.lookup(ctx, q)
	if local {
		hit = slices.Clone(hit) // the index's copy stays the index's
	}
	return hit, fill, err
}

// lookupResult implements resultLooker: a hit of the local index comes
// decoded (res, shared: replay it, never modify it) when its values allow.
func (p *GranularPolicy) lookupResult(ctx context.Context, q Query) (*rowcodec.Result, []byte, Fill, error) {
	hit, res, _, fill, err := p.lookup(ctx, q)
	return res, hit, fill, err
}

// lookup is Lookup; a hit of the local index returns local true, the
// index's payload (shared) and its decoded result (nil when it is not
// kept decoded).
func (p *GranularPolicy) lookup(ctx context.Context, q Query) (hit []byte, res *rowcodec.Result, local bool, fill Fill, err error) {
	a := p.analysis(q.SQL)
	switch {
	case a.err != nil:
		p.noteUncached(ctx, ReasonParse, q.SQL, nil, a.err)
		return nil, nil, false, nil, nil
	case a.q.Kind != sqldeps.KindSelect:
		return nil, nil, false, nil, nil // a write sent through Query
	case !a.q.Cacheable:
		p.noteUncached(ctx, ReasonNotCacheable, q.SQL, a.tables, a.why)
		return nil, nil, false, nil, nil
	}
	ttl, lock, ok := p.plan(ctx, q, a.auto)
	if !ok {
		p.noteUncached(ctx, ReasonNotOptedIn, q.SQL, a.tables, nil)
		return nil, nil, false, nil, nil
	}
	if err := p.recover(ctx); err != nil {
		return nil, nil, false, nil, err
	}
	var buf [256]byte
	mat, err := entryMaterial(buf[:0], q)
	if err != nil {
		p.noteUncached(ctx, ReasonNotCacheable, q.SQL, a.tables, err)
		return nil, nil, false, nil, nil
	}
	var localKey string // the local index's key: the material itself, no hash to compute on a local hit
	if p.local != nil {
		if e := p.local.get(mat, p.opts.Now()); e != nil {
			p.local.hits.Add(1)
			p.note(ctx, Hit, q.SQL, a.tables)
			return e.payload, e.res, true, nil, nil
		}
		localKey = string(mat)
	}
	entry := p.entryKeyOf(mat)
	ri := readInfo{sql: q.SQL, tables: a.tables, lock: lock, bucket: a.bucket}
	gen := p.generation(ri)
	hit, store, err := p.probe(ctx, a.q.Deps, a.tables, q, entry, localKey, ttl)
	if err != nil {
		return nil, nil, false, nil, err
	}
	if hit != nil {
		p.note(ctx, Hit, q.SQL, a.tables)
		return hit, nil, false, nil, nil
	}
	hit, fill, err = p.miss(ctx, ri, gen, entry, store,
		func(ctx context.Context) ([]byte, string, storeFunc, error) {
			hit, store, err := p.probe(ctx, a.q.Deps, a.tables, q, entry, localKey, ttl)
			return hit, entry, store, err
		})
	return hit, nil, false, fill, err
}

// probe reads the stamps of a query and its entry: the payload on a hit,
// the storeFunc of its result on a miss.
//
// With a local index, the versions of the cells of tables are read before
// the stamps, and a hit or a stored fill enters the index under them, as
// localKey.
func (p *GranularPolicy) probe(ctx context.Context, d sqldeps.Deps, tables []string, q Query, entry, localKey string, ttl time.Duration) ([]byte, storeFunc, error) {
	set := p.newStampSet()
	set.add(d, q.Args)
	var snap localSnap
	if p.local != nil {
		snap = p.local.snap(p, tables)
	}
	hit, err := set.read(ctx, entry)
	if err != nil {
		return nil, nil, err
	}
	if hit != nil {
		if p.local != nil {
			p.localHit(ctx, set, entry, localKey, snap, hit)
		}
		return hit, nil, nil
	}
	return nil, func(ctx context.Context, result []byte) (bool, error) {
		expires := p.opts.Now().Add(ttl)
		stored, err := set.put(ctx, entry, result, ttl)
		if err == nil && stored && p.local != nil {
			p.local.put(localKey, snap, slices.Clone(result), expires, set.slowAt)
		}
		return stored, err
	}, nil
}

// localHit enters a hit served by the store into the local index, with
// the entry's expiry as the store reports it (a store that cannot report
// it gets no local entry).
func (p *GranularPolicy) localHit(ctx context.Context, set *stampSet, entry, localKey string, snap localSnap, hit []byte) {
	er, ok := p.opts.Store.(cachekit.ExpiryReader)
	if !ok {
		return
	}
	v, exp, err := er.GetWithExpiry(ctx, set.place(entry))
	if err != nil || len(v) != len(set.sum)+len(hit) || string(v[:len(set.sum)]) != string(set.sum) || string(v[len(set.sum):]) != string(hit) {
		return // gone or replaced meanwhile
	}
	if exp.IsZero() {
		exp = time.Unix(0, math.MaxInt64)
	}
	p.local.put(localKey, snap, v[len(set.sum):], exp, set.slowAt)
}

// resolveConj turns a conjunction into its scheme (sorted columns) and
// canonical values. Conditions whose value cannot be resolved or
// canonicalised are dropped (the conjunction widens).
func resolveConj(conj sqldeps.Conj, args []driver.NamedValue) (cols, vals []string) {
	for _, c := range conj {
		v, ok := resolveValue(c.Value, args)
		if !ok {
			continue
		}
		cv, ok := canonical(v)
		if !ok {
			continue
		}
		if n := len(cols); n > 0 && cols[n-1] == c.Column {
			continue // col = a AND col = b: keep one, a superset
		}
		cols = append(cols, c.Column)
		vals = append(vals, cv)
	}
	return cols, vals
}

// resolveValue returns the Go value of a condition's right-hand side.
func resolveValue(v sqldeps.Value, args []driver.NamedValue) (any, bool) {
	switch v.Kind {
	case sqldeps.Null:
		return nil, true
	case sqldeps.Int:
		if n, err := strconv.ParseInt(v.Lit, 10, 64); err == nil {
			return n, true
		}
		return v.Lit, true
	case sqldeps.Float:
		if f, err := strconv.ParseFloat(v.Lit, 64); err == nil {
			return f, true
		}
		return v.Lit, true
	case sqldeps.String:
		return v.Lit, true
	case sqldeps.Bool:
		return v.Lit == "true", true
	case sqldeps.Bytes:
		b, err := hex.DecodeString(v.Lit)
		return b, err == nil
	case sqldeps.Arg:
		if v.Arg < 1 || v.Arg > len(args) {
			return nil, false
		}
		a := args[v.Arg-1]
		if a.Name != "" || a.Ordinal != v.Arg {
			return nil, false
		}
		// A driver may let a driver.Valuer (sql.NullString, pgtype.Text)
		// or a Go int through unconverted: compare what it stands for.
		return keyValue(a.Value), true
	}
	return nil, false
}

// checksum hashes the keys and their values.
func checksum(keys []string, vals map[string][]byte) []byte {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	for _, k := range keys {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(k)))])
		io.WriteString(h, k)
		v := vals[k]
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(v)))])
		h.Write(v)
	}
	return h.Sum(nil)
}
