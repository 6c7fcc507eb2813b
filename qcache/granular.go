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
	"sync"
	"time"

	"github.com/cachekit/cachekit"
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

	// MaxImages is the largest number of rows whose images a write reads
	// to invalidate row by row; a write touching more bumps the table's
	// epoch instead. Default: DefaultMaxImages.
	MaxImages int

	// Prefix starts every key the policy writes. Default: "qc:".
	Prefix string

	// Now is the clock of scheme deadlines. Default: time.Now.
	Now func() time.Time
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
// # Writes
//
// Before an UPDATE or DELETE the policy reads, on the same connection and in
// the same transaction, the pre-images of the rows its WHERE can match (a
// SELECT of the scheme columns under the WHERE's equality DNF, a superset of
// the rows written); after an UPDATE it re-reads the same rows by rowid for
// the post-images; after a plain single-row INSERT it reads the new row by
// last_insert_rowid(). Once the statement has run (or after Commit), the
// stamp of every scheme for every image is deleted, with the empty scheme's
// stamp. Outside a transaction, on SQLite, the pre-image read, the write
// and the post-image read run in one BEGIN IMMEDIATE transaction that the
// policy opens and commits, so that no other connection changes the rows in
// between. If a scheme joined the table's list meanwhile, or anything could
// not be resolved (too many rows, a WITHOUT ROWID table, INSERT … SELECT,
// REPLACE or ON CONFLICT, a multi-row INSERT, a failed statement, a value
// that cannot be canonicalised, any PostgreSQL write for now), the table's
// epoch is bumped instead; statements the extractor cannot read bump the
// global epoch.
//
// # Canonical values
//
// A query argument or literal and a row value must give the same stamp
// whenever the database may find them equal. Values are canonicalised by
// their Go type as the driver gives them: integers (and bools, and floats
// with an integral value) become the integer; other floats their shortest
// text; strings and byte slices that read as a number (after trimming
// spaces) become that number, as SQLite's type affinity may convert them,
// and other strings are lower-cased (NOCASE collations); NULL is its own
// value. Merging values that the database distinguishes only widens
// invalidation. time.Time values are not canonicalised (drivers store them
// as text in several formats): a query condition on one is dropped from its
// conjunction, and a row image holding one bumps the table epoch.
//
// # Caveats
//
// An INSERT or UPDATE sent through Query inside a transaction bumps the
// table epoch (its post-images are not read). sqldeps does not read
// RETURNING yet: such statements bump the global epoch.
//
// Rows changed by triggers, foreign-key actions or a table-level ON
// CONFLICT REPLACE clause are not seen (as with [TablePolicy], a write's
// other tables are not known). An UPDATE that changes a row's rowid bumps
// the table epoch (its post-image is missing), unless another row takes the
// old rowid in the same statement.
type GranularPolicy struct {
	opts    GranularOptions
	dialect sqldeps.Dialect

	mu       sync.Mutex
	analyzed map[string]analysis

	stampStore
}

type analysis struct {
	q   *sqldeps.Query
	err error
}

var _ ConnPolicy = (*GranularPolicy)(nil)

// NewGranularPolicy returns a row-granular policy, or an error when an
// option is invalid.
func NewGranularPolicy(opts GranularOptions) (*GranularPolicy, error) {
	p := &GranularPolicy{analyzed: map[string]analysis{}}
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
	return p, nil
}

const maxAnalyzed = 10_000

// analyze memoizes sqldeps.Analyze per statement text.
func (p *GranularPolicy) analyze(sql string) (*sqldeps.Query, error) {
	p.mu.Lock()
	a, ok := p.analyzed[sql]
	p.mu.Unlock()
	if ok {
		return a.q, a.err
	}
	q, err := sqldeps.Analyze(p.dialect, sql)
	p.mu.Lock()
	if len(p.analyzed) >= maxAnalyzed {
		clear(p.analyzed)
	}
	p.analyzed[sql] = analysis{q, err}
	p.mu.Unlock()
	return q, err
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

// Lookup implements [Policy].
func (p *GranularPolicy) Lookup(ctx context.Context, q Query) ([]byte, Fill, error) {
	a, err := p.analyze(q.SQL)
	if err != nil || a.Kind != sqldeps.KindSelect || !a.Cacheable {
		return nil, nil, nil
	}
	if err := p.recover(ctx); err != nil {
		return nil, nil, err
	}
	entry, err := p.entryKey(q)
	if err != nil {
		return nil, nil, nil
	}
	set := p.newStampSet()
	set.add(a.Deps, q.Args)
	hit, err := set.read(ctx, entry)
	if err != nil || hit != nil {
		return hit, nil, err
	}
	ttl := q.TTL
	if ttl <= 0 {
		ttl = p.opts.TTL
	}
	return nil, func(ctx context.Context, result []byte) error {
		return set.fill(ctx, entry, result, ttl)
	}, nil
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
		return a.Value, true
	}
	return nil, false
}

// canonical returns the canonical text of a value (see GranularPolicy).
func canonical(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "n", true
	case int64:
		return "i" + strconv.FormatInt(x, 10), true
	case int:
		return "i" + strconv.Itoa(x), true
	case bool:
		if x {
			return "i1", true
		}
		return "i0", true
	case float64:
		return canonFloat(x), true
	case string:
		return canonText(x), true
	case []byte:
		return canonText(string(x)), true
	}
	return "", false
}

func canonFloat(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1<<63 {
		return "i" + strconv.FormatInt(int64(f), 10)
	}
	return "f" + strconv.FormatFloat(f, 'g', -1, 64)
}

func canonText(s string) string {
	t := strings.TrimSpace(s)
	if n, err := strconv.ParseInt(t, 10, 64); err == nil {
		return "i" + strconv.FormatInt(n, 10)
	}
	if f, err := strconv.ParseFloat(t, 64); err == nil {
		return canonFloat(f)
	}
	return "s" + strings.ToLower(s)
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
