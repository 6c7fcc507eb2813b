package gormcache

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/schema"

	"github.com/cachekit/cachekit/qcache"
)

// PluginName is the name under which [Plugin] registers with GORM.
const PluginName = "cachekit:qcache"

// ErrNoPlugin is returned by the invalidation helpers for a *gorm.DB on
// which no [Plugin] is registered.
var ErrNoPlugin = errors.New("gormcache: plugin not registered (use gormcache.Open or db.Use(gormcache.New(policy)))")

// Plugin is the gorm.Plugin that ties a *gorm.DB to the qcache policy of
// its wrapped *sql.DB, for the invalidation helpers and [PolicyOf]. The
// scopes need no plugin: they only set the statement's context.
type Plugin struct {
	policy  *qcache.GranularPolicy
	dialect qcache.Dialect // set by Initialize from the dialector
}

var _ gorm.Plugin = (*Plugin)(nil)

// New returns a plugin for policy, the policy of the qcache-wrapped *sql.DB
// the *gorm.DB runs on. Register it with db.Use, on one *gorm.DB (its
// sessions and transactions share it).
func New(policy *qcache.GranularPolicy) *Plugin {
	return &Plugin{policy: policy}
}

// Name implements gorm.Plugin.
func (p *Plugin) Name() string { return PluginName }

// Initialize implements gorm.Plugin: it checks that the policy is set and
// that the dialector is PostgreSQL's or SQLite's, whose SQL qcache parses.
func (p *Plugin) Initialize(db *gorm.DB) error {
	if p.policy == nil {
		return errors.New("gormcache: New(nil): a policy is required")
	}
	d, err := dialectOf(db.Dialector)
	if err != nil {
		return err
	}
	p.dialect = d
	return nil
}

// dialectOf maps a GORM dialector to qcache's dialect.
func dialectOf(d gorm.Dialector) (qcache.Dialect, error) {
	switch d.Name() {
	case "postgres":
		return qcache.Postgres, nil
	case "sqlite", "sqlite3":
		return qcache.SQLite, nil
	}
	return 0, fmt.Errorf("gormcache: dialector %q is not supported (qcache parses PostgreSQL and SQLite)", d.Name())
}

// PolicyOf returns the policy of the plugin registered on db, for its
// Stats, or nil.
func PolicyOf(db *gorm.DB) *qcache.GranularPolicy {
	if p := pluginOf(db); p != nil {
		return p.policy
	}
	return nil
}

func pluginOf(db *gorm.DB) *Plugin {
	p, _ := db.Config.Plugins[PluginName].(*Plugin)
	return p
}

// Scope is a GORM scope: pass it to db.Scopes.
type Scope = func(*gorm.DB) *gorm.DB

// withContext returns a scope that replaces the statement's context by
// f of it.
func withContext(f func(context.Context) context.Context) Scope {
	return func(db *gorm.DB) *gorm.DB {
		ctx := db.Statement.Context
		if ctx == nil {
			ctx = context.Background()
		}
		db.Statement.Context = f(ctx)
		return db
	}
}

// Cache returns a scope that opts the statement's reads in to the cache
// (see [qcache.Cache]) with results living ttl (zero: the profiles' or the
// policy's TTL).
func Cache(ttl time.Duration) Scope {
	return CacheWith(qcache.CacheOptions{TTL: ttl})
}

// CacheLock returns a scope that opts the statement's reads in to the cache
// with the dog-pile lock across processes (see [qcache.CacheOptions].Lock)
// and the default TTL.
func CacheLock() Scope {
	return CacheWith(qcache.CacheOptions{Lock: true})
}

// CacheWith returns a scope that opts the statement's reads in to the cache
// with opts.
func CacheWith(opts qcache.CacheOptions) Scope {
	return withContext(func(ctx context.Context) context.Context { return qcache.Cache(ctx, opts) })
}

// NoCache returns a scope under which the statement's reads skip the cache
// (see [qcache.Bypass]); its writes still invalidate. It wins over
// [Cache].
func NoCache() Scope {
	return withContext(qcache.Bypass)
}

// TTL returns a scope under which the results the statement stores live d
// (see [qcache.WithTTL]) without opting it in.
func TTL(d time.Duration) Scope {
	return withContext(func(ctx context.Context) context.Context { return qcache.WithTTL(ctx, d) })
}

// WithoutInvalidation returns a scope under which the statement's writes
// invalidate nothing (see [qcache.WithoutInvalidation] and its WARNING):
// close the batch with [InvalidateModel] or [InvalidateAll].
func WithoutInvalidation() Scope {
	return withContext(qcache.WithoutInvalidation)
}

// Profile is the automatic caching profile of a model's table (see
// [qcache.TableProfile]).
type Profile struct {
	// Model is a value or pointer of the model (&User{}); its table name
	// comes from GORM's schema parser, so TableName methods and the naming
	// strategy apply. Leave it nil to name the table with Table.
	Model any

	// Table names the table when Model is nil, as GORM spells it.
	Table string

	qcache.TableProfile
}

// TableProfiles resolves profiles to the table names of qcache's
// GranularOptions.Tables for dialect, through GORM's schema parser with
// namer (nil: GORM's default schema.NamingStrategy). It returns an error
// for a model GORM cannot parse, a profile naming no table, and two
// profiles of one table.
func TableProfiles(dialect qcache.Dialect, namer schema.Namer, profiles []Profile) (map[string]qcache.TableProfile, error) {
	if namer == nil {
		namer = schema.NamingStrategy{}
	}
	cache := &sync.Map{}
	tables := make(map[string]qcache.TableProfile, len(profiles))
	for i, p := range profiles {
		name := p.Table
		if p.Model != nil {
			s, err := schema.Parse(p.Model, cache, namer)
			if err != nil {
				return nil, fmt.Errorf("gormcache: profile %d: model %T: %w", i, p.Model, err)
			}
			name = s.Table
		}
		if name == "" {
			return nil, fmt.Errorf("gormcache: profile %d names no model and no table", i)
		}
		name = tableName(dialect, name)
		if _, dup := tables[name]; dup {
			return nil, fmt.Errorf("gormcache: two profiles for table %q", name)
		}
		tables[name] = p.TableProfile
	}
	return tables, nil
}

// tableName spells a GORM table name as qcache's SQL parser does: without
// the default schema ("public", "main"), and lower case on SQLite.
func tableName(dialect qcache.Dialect, name string) string {
	name = strings.ReplaceAll(name, `"`, "")
	switch dialect {
	case qcache.SQLite:
		name = strings.ToLower(name)
		name = strings.TrimPrefix(name, "main.")
	case qcache.Postgres:
		name = strings.TrimPrefix(name, "public.")
	}
	return name
}

// Config configures [Open].
type Config struct {
	// Policy configures the qcache.GranularPolicy that Open creates: Store
	// and Dialect are required. Its Tables, when not nil, are kept and
	// completed by Profiles (a table in both is an error); a non-nil empty
	// map with no Profiles caches only the reads that opt in.
	Policy qcache.GranularOptions

	// Profiles are the models (or tables) cached automatically. Default:
	// nil, and with Policy.Tables nil every cacheable read is cached.
	Profiles []Profile

	// MaxRows and OnError are those of qcache.Options.
	MaxRows int
	OnError func(error)

	// Gorm configures GORM. Default: nil, &gorm.Config{}. Its
	// NamingStrategy names the models' tables.
	Gorm *gorm.Config
}

// Open returns a *gorm.DB on a *sql.DB whose connections come from
// connector wrapped by qcache, with the [Plugin] registered: it creates the
// GranularPolicy of cfg (with the profiles resolved by [TableProfiles]),
// opens the *sql.DB with sql.OpenDB(qcache.Wrap(connector, …)), and
// gorm.Open(dialector(sqlDB), cfg.Gorm). Close the *sql.DB (db.DB()) when
// done.
func Open(connector driver.Connector, dialector func(*sql.DB) gorm.Dialector, cfg Config) (*gorm.DB, error) {
	gcfg := cfg.Gorm
	if gcfg == nil {
		gcfg = &gorm.Config{}
	}
	tables, err := TableProfiles(cfg.Policy.Dialect, gcfg.NamingStrategy, cfg.Profiles)
	if err != nil {
		return nil, err
	}
	opts := cfg.Policy
	if opts.Tables != nil || len(tables) > 0 {
		merged := make(map[string]qcache.TableProfile, len(opts.Tables)+len(tables))
		for name, p := range opts.Tables {
			merged[name] = p
		}
		for name, p := range tables {
			if _, dup := merged[name]; dup {
				return nil, fmt.Errorf("gormcache: table %q has a profile in both Policy.Tables and Profiles", name)
			}
			merged[name] = p
		}
		opts.Tables = merged
	}
	policy, err := qcache.NewGranularPolicy(opts)
	if err != nil {
		return nil, fmt.Errorf("gormcache: %w", err)
	}
	sqlDB := sql.OpenDB(qcache.Wrap(connector, qcache.Options{Policy: policy, MaxRows: cfg.MaxRows, OnError: cfg.OnError}))
	db, err := gorm.Open(dialector(sqlDB), gcfg)
	if err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("gormcache: open: %w", err)
	}
	if d, err := dialectOf(db.Dialector); err != nil || d != cfg.Policy.Dialect {
		sqlDB.Close()
		if err == nil {
			err = fmt.Errorf("gormcache: dialector %q does not match Policy.Dialect", db.Dialector.Name())
		}
		return nil, err
	}
	if err := db.Use(New(policy)); err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("gormcache: %w", err)
	}
	return db, nil
}

// InvalidateModel invalidates every cached query reading the table of
// model (a value or pointer of the model, or a slice of them), as
// cacheops' invalidate_model. Its context is db's (db.WithContext).
func InvalidateModel(db *gorm.DB, model any) error {
	p := pluginOf(db)
	if p == nil {
		return ErrNoPlugin
	}
	stmt := &gorm.Statement{DB: db}
	if err := stmt.Parse(model); err != nil {
		return fmt.Errorf("gormcache: invalidate model %T: %w", model, err)
	}
	return p.policy.InvalidateTables(ctxOf(db), tableName(p.dialect, stmt.Table))
}

// InvalidateObject invalidates the cached queries that obj's row can
// affect, as cacheops' invalidate_obj: obj is a model value or pointer
// (or a slice of them), whose column values are read through GORM's
// schema (column names, not field names) and passed to
// [qcache.GranularPolicy.InvalidateRow]. For a row changed behind the
// cache's back, call it with the old and with the new values. A value
// qcache cannot canonicalise in a column that cached queries filter on (a
// time) invalidates the whole table instead. Its context is db's.
func InvalidateObject(db *gorm.DB, obj any) error {
	p := pluginOf(db)
	if p == nil {
		return ErrNoPlugin
	}
	ctx := ctxOf(db)
	stmt := &gorm.Statement{DB: db}
	if err := stmt.Parse(obj); err != nil {
		return fmt.Errorf("gormcache: invalidate object %T: %w", obj, err)
	}
	table := tableName(p.dialect, stmt.Table)
	rv := reflect.ValueOf(obj)
	for rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return fmt.Errorf("gormcache: invalidate object: nil %T", obj)
		}
		rv = rv.Elem()
	}
	objects := []reflect.Value{rv}
	if rv.Kind() == reflect.Slice || rv.Kind() == reflect.Array {
		objects = objects[:0]
		for i := range rv.Len() {
			v := rv.Index(i)
			for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
				v = v.Elem()
			}
			objects = append(objects, v)
		}
	}
	for _, v := range objects {
		if v.Kind() != reflect.Struct {
			return fmt.Errorf("gormcache: invalidate object: %s is not a struct", v.Type())
		}
		row := make(map[string]any, len(stmt.Schema.DBNames))
		for _, f := range stmt.Schema.Fields {
			if f.DBName == "" {
				continue
			}
			val, _ := f.ValueOf(ctx, v)
			row[f.DBName] = val
		}
		if err := p.policy.InvalidateRow(ctx, table, row); err != nil {
			return fmt.Errorf("gormcache: %w", err)
		}
	}
	return nil
}

// InvalidateAll invalidates every cached query, as cacheops'
// invalidate_all. Its context is db's.
//
// NOTE: the three helpers invalidate at once, also when db is a
// transaction: call them after the change they are about has committed.
func InvalidateAll(db *gorm.DB) error {
	p := pluginOf(db)
	if p == nil {
		return ErrNoPlugin
	}
	return p.policy.InvalidateAll(ctxOf(db))
}

func ctxOf(db *gorm.DB) context.Context {
	if db.Statement != nil && db.Statement.Context != nil {
		return db.Statement.Context
	}
	return context.Background()
}
