package qcache

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cachekit/cachekit/codec"
	sflight "github.com/cachekit/cachekit/internal/flight"
	"github.com/cachekit/cachekit/qcache/internal/sqldeps"
)

// ErrInvalidDep reports a [Dep] that cannot track invalidations: a
// statement that is not a SELECT, does not parse, or is a SELECT the
// policy would not cache (FOR UPDATE, a volatile function such as
// random()), or a table dependency without a name.
var ErrInvalidDep = errors.New("qcache: invalid dependency")

// Dep is a dependency of a value cached with [CachedAs]: a query (see
// [SQL]) or a whole table (see [Table]). The value is invalidated by every
// write that would invalidate the dependency.
type Dep struct {
	table string // a whole-table dependency when query is ""
	query string
	args  []any
}

// Table returns a dependency on every row of a table: any write to the
// table invalidates the value. The name is matched as the SQL dependency
// extractor spells the tables of queries: schema-qualified except for
// SQLite's "main" and PostgreSQL's "public" ("audit.events", "users"), and
// lower case on SQLite (PostgreSQL names are taken as given, so pass
// unquoted identifiers folded to lower case).
func Table(name string) Dep { return Dep{table: name} }

// SQL returns a dependency on a query, with its SQL text and arguments as
// the application would send them to the wrapped database (placeholders of
// the policy's dialect; arguments are converted as database/sql converts
// them; a [sql.Named] argument is accepted, but as in the wrapper its
// condition is dropped). The query is never run:
// the value is invalidated by every write that would invalidate the cached
// result of that query. It must be a SELECT the policy caches; a
// condition on an argument the policy cannot canonicalise (a time.Time, a
// type the driver would convert itself) is dropped, which only widens the
// invalidation.
func SQL(query string, args ...any) Dep { return Dep{query: query, args: args} }

// String returns the dependency as given: the table name, or the SQL text
// followed by its arguments.
func (d Dep) String() string {
	if d.query == "" {
		return "table " + d.table
	}
	if len(d.args) == 0 {
		return d.query
	}
	return fmt.Sprintf("%s %v", d.query, d.args)
}

// CachedAsOptions configures [CachedAs]. The zero value is valid.
type CachedAsOptions struct {
	// Codec encodes the values for the policy's store. Default: codec.Gob.
	Codec codec.Codec

	// TTL is the lifetime of a stored value when the call's context sets
	// none with [WithTTL]. Default: the policy's GranularOptions.TTL.
	TTL time.Duration

	// LoadTimeout bounds a computation shared by coalesced callers, which
	// runs on a context none of them can cancel (see [Func.Call]).
	// Default: zero, no bound beyond the function's own.
	LoadTimeout time.Duration

	// OnError receives the cache errors that Call does not return (reading
	// the stamps, decoding a stored value, encoding or storing a computed
	// one): the value is then computed, or returned, without the cache. It
	// must be safe for concurrent use. Default: nil, errors are dropped.
	OnError func(error)
}

// Func is a function whose results are cached under a [GranularPolicy]
// and invalidated by the writes that would invalidate their dependencies:
// django-cacheops' cached_as. Create it with [CachedAs]. It is safe for
// concurrent use.
type Func[A, V any] struct {
	p     *GranularPolicy
	name  string
	deps  func(A) []Dep
	fn    func(context.Context, A) (V, error)
	opts  CachedAsOptions
	group sflight.Group[string, V]
}

// CachedAs returns fn cached under p: the value of a call with argument a
// is stored in p's store and served until a write through the wrapped
// database changes a row that could change the result of one of the
// dependencies deps(a) (the same row-granular invalidation as the
// policy's cached queries), until p.InvalidateTables or p.InvalidateAll
// covers them, or until its TTL.
//
// name identifies the function in the keys: two functions sharing a store
// must have distinct names, and a name should change when the function's
// result changes meaning (a version suffix: "user.Stats/v2"). Several
// arguments go in a struct; a function without one takes struct{}.
//
// The key of a call (see [Func.Key]) is the policy's prefix, "q:f:", name
// and the argument in parentheses: the argument's CacheKey() string when it
// has such a method (as memo.Keyer), else its JSON encoding
// ("qc:q:f:posts.ByUser(5)", "qc:q:f:search({"Q":"go","Page":2})").
// Arguments whose JSON encoding does not tell apart values that must not
// share a result need a CacheKey method.
//
// deps is called on every call, before fn; a dependency that is not valid
// makes Call fail with an error wrapping [ErrInvalidDep] without calling
// fn. A call with no dependency is invalidated only by InvalidateAll and
// its TTL.
func CachedAs[A, V any](p *GranularPolicy, name string, deps func(A) []Dep, fn func(context.Context, A) (V, error), opts CachedAsOptions) (*Func[A, V], error) {
	switch {
	case p == nil:
		return nil, errors.New("qcache: CachedAs with a nil policy")
	case name == "":
		return nil, errors.New("qcache: CachedAs with an empty name")
	case deps == nil || fn == nil:
		return nil, fmt.Errorf("qcache: CachedAs %s: nil deps or fn", name)
	case opts.TTL < 0 || opts.LoadTimeout < 0:
		return nil, fmt.Errorf("qcache: CachedAs %s: negative TTL or LoadTimeout", name)
	}
	if opts.Codec == nil {
		opts.Codec = codec.Gob
	}
	if opts.TTL == 0 {
		opts.TTL = p.opts.TTL
	}
	return &Func[A, V]{p: p, name: name, deps: deps, fn: fn, opts: opts}, nil
}

// Key returns the key of the value of a (see [CachedAs]). On a store
// whose keys carry Redis Cluster hash tags (see [GranularPolicy]), the
// value is stored under this key with the tag of the first table it
// depends on inserted after "q:".
func (f *Func[A, V]) Key(a A) (string, error) {
	var arg string
	if k, ok := any(a).(interface{ CacheKey() string }); ok {
		arg = k.CacheKey()
	} else {
		b, err := codec.JSON.Marshal(a)
		if err != nil {
			return "", fmt.Errorf("qcache: %s: key of argument: %w", f.name, err)
		}
		arg = string(b)
	}
	return f.p.opts.Prefix + "q:f:" + f.name + "(" + arg + ")", nil
}

// Call returns the value of the function for a: from the store when the
// value stored for a is still valid, otherwise computed by the function
// (and stored). Errors of the function are returned and never stored.
//
// Callers in this process that miss the same key while no write has
// changed its dependencies in between share one computation, which runs
// on context.WithoutCancel(ctx) bounded by LoadTimeout: a caller whose ctx
// ends gets ctx.Err() without failing the others. Coalesced callers
// receive the same value: they must not modify what it refers to. A panic
// in the function is returned as an error carrying its stack.
//
// Under a context made with [Bypass] the function is called directly.
// When the store fails, the function is called and its value returned
// uncached, and the store's error goes to OnError.
//
// The value is stored only if no write invalidated a dependency between
// the moment its stamps were read (before the function ran) and the moment
// it is stored: a value computed before a write is never served after the
// write's invalidation.
//
// WARNING: Call cannot see a transaction the function reads through, as
// the wrapper sees its own: a function reading through a transaction that
// has written would cache uncommitted rows (served on until a write
// invalidates them if the transaction rolls back), and one reading a
// REPEATABLE READ snapshot older than the stamps would cache stale rows.
// Compute cached values outside transactions.
func (f *Func[A, V]) Call(ctx context.Context, a A) (V, error) {
	var zero V
	if bypassed(ctx) {
		return f.fn(ctx, a)
	}
	key, set, err := f.prepare(a)
	if err != nil {
		return zero, err
	}
	if err := f.p.recover(ctx); err != nil {
		f.report(fmt.Errorf("qcache: %s: %w", f.name, err))
		return f.fn(ctx, a)
	}
	hit, err := set.read(ctx, key)
	if err != nil {
		f.report(fmt.Errorf("qcache: %s: read stamps: %w", f.name, err))
		return f.fn(ctx, a)
	}
	if hit != nil {
		var v V
		if err := f.opts.Codec.Unmarshal(hit, &v); err == nil {
			return v, nil
		}
		f.report(fmt.Errorf("qcache: %s: decode %s: %w", f.name, key, err))
	}
	ttl := ttlOf(ctx)
	if ttl <= 0 {
		ttl = f.opts.TTL
	}
	// Callers coalesce only when they read the same stamp values: a write
	// between two callers' reads deletes stamps that the second reader
	// draws again, so the second never shares a computation that may have
	// started before the write.
	v, err, _ := f.group.Do(ctx, key+"\x00"+string(set.sum), f.opts.LoadTimeout, func(ctx context.Context) (V, error) {
		v, err := f.fn(ctx, a)
		if err != nil {
			return v, err
		}
		b, err := f.opts.Codec.Marshal(v)
		if err != nil {
			f.report(fmt.Errorf("qcache: %s: encode: %w", f.name, err))
			return v, nil
		}
		if err := set.fill(ctx, key, b, ttl); err != nil {
			f.report(fmt.Errorf("qcache: %s: store %s: %w", f.name, key, err))
		}
		return v, nil
	})
	if pe := (*sflight.PanicError)(nil); errors.As(err, &pe) {
		return zero, fmt.Errorf("qcache: %s panicked: %v\n%s", f.name, pe.Value, pe.Stack)
	}
	return v, err
}

// prepare returns the key of a and the stamp set of its dependencies.
func (f *Func[A, V]) prepare(a A) (string, *stampSet, error) {
	key, err := f.Key(a)
	if err != nil {
		return "", nil, err
	}
	set := f.p.newStampSet()
	for _, d := range f.deps(a) {
		if err := set.addDep(d); err != nil {
			return "", nil, fmt.Errorf("qcache: %s: %w", f.name, err)
		}
	}
	set.keys = append(set.keys, set.valueStampKey(key))
	return key, set, nil
}

// Invalidate makes the stored value of a unreachable, so that the next
// call computes it again; a computation of a in flight stores nothing,
// and later callers do not share it. It calls the dependency function
// (the key of the value's stamp depends on the first table read). When it fails, lookups stop serving from the cache until the
// global epoch has been bumped, as after a lost write invalidation.
func (f *Func[A, V]) Invalidate(ctx context.Context, a A) error {
	key, set, err := f.prepare(a)
	if err != nil {
		return err
	}
	sk := set.valueStampKey(key)
	if err := f.p.deleteStamps(ctx, []string{sk}); err != nil {
		return fmt.Errorf("qcache: %s: invalidate %s: %w", f.name, key, err)
	}
	return nil
}

// Close waits for the computations in flight (those whose callers gave up
// included) to return. The Func remains usable.
func (f *Func[A, V]) Close() error {
	f.group.Wait()
	return nil
}

func (f *Func[A, V]) report(err error) {
	if f.opts.OnError != nil {
		f.opts.OnError(err)
	}
}

// addDep adds the keys a dependency of a cached function reads.
func (s *stampSet) addDep(d Dep) error {
	p := s.p
	if d.query == "" {
		if d.table == "" {
			return fmt.Errorf("table dependency without a name: %w", ErrInvalidDep)
		}
		s.addTable(p.tableName(d.table))
		return nil
	}
	q, err := p.analyze(d.query)
	switch {
	case err != nil:
		return fmt.Errorf("dependency %q: %w: %w", d.query, ErrInvalidDep, err)
	case q.Kind != sqldeps.KindSelect:
		return fmt.Errorf("dependency %q is not a SELECT (%s): %w", d.query, q.Kind, ErrInvalidDep)
	case !q.Cacheable:
		return fmt.Errorf("dependency %q is not cacheable (%s): %w", d.query, q.Reason, ErrInvalidDep)
	}
	s.add(q.Deps, depArgs(d.args))
	return nil
}

// valueStampKey returns the key of the stamp of one cached function value
// (entry is its key), which [Func.Invalidate] deletes: "<prefix>v:" and
// the entry key without "<prefix>q:", with the hash tag of the first table
// read (so that it shares the entry's slot).
func (s *stampSet) valueStampKey(entry string) string {
	rest := strings.TrimPrefix(entry, s.p.opts.Prefix+"q:")
	if s.first != "" {
		return s.p.opts.Prefix + "v:" + s.p.table(s.first) + ":" + rest
	}
	return s.p.opts.Prefix + "v:" + rest
}

// addTable adds a whole-table dependency: the table's epoch and its
// whole-table stamp, which every write to the table deletes.
func (s *stampSet) addTable(t string) {
	if s.first == "" || t < s.first {
		s.first = t // as add does: the entry's slot
	}
	s.keys = append(s.keys, s.p.epochKey(t), s.p.wholeKey(t))
}

// tableName spells a table name as the extractor does for the dialect.
func (p *GranularPolicy) tableName(t string) string {
	if p.dialect == sqldeps.SQLite {
		return strings.ToLower(t)
	}
	return t
}

// depArgs converts the arguments of a dependency as database/sql would. A
// value the default converter refuses (a type the driver would convert
// itself) is kept as it is: its condition is then dropped by resolveConj.
func depArgs(args []any) []driver.NamedValue {
	nv := make([]driver.NamedValue, len(args))
	for i, a := range args {
		nv[i].Ordinal = i + 1
		if n, ok := a.(sql.NamedArg); ok {
			nv[i].Name, a = n.Name, n.Value
		}
		if v, err := driver.DefaultParameterConverter.ConvertValue(a); err == nil {
			a = v
		}
		nv[i].Value = a
	}
	return nv
}
