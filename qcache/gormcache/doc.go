// Package gormcache is a thin GORM plugin for the query cache of package
// [github.com/cachekit/cachekit/qcache]: GORM runs on a *sql.DB whose
// connections qcache wraps, this package adds per-query controls as GORM
// scopes, automatic caching by model through table profiles, and
// django-cacheops' invalidate_model / invalidate_obj / invalidate_all.
//
// It is a module of its own, so that the cachekit module never depends on
// GORM.
//
// # Opening
//
// [Open] builds everything: a [qcache.GranularPolicy] (its table profiles
// resolved from GORM models), the wrapped *sql.DB, and the *gorm.DB on it
// with the [Plugin] registered:
//
//	db, err := gormcache.Open(stdlib.GetConnector(*pgxCfg),
//		func(db *sql.DB) gorm.Dialector { return postgres.New(postgres.Config{Conn: db}) },
//		gormcache.Config{
//			Policy:   qcache.GranularOptions{Store: store, Dialect: qcache.Postgres},
//			Profiles: []gormcache.Profile{{Model: &Country{}, TableProfile: qcache.TableProfile{TTL: time.Hour}}},
//		})
//
// For SQLite (gorm.io/driver/sqlite, on mattn/go-sqlite3) the dialector is
// sqlite.New(sqlite.Config{Conn: db}) and the connector one of
// mattn/go-sqlite3's (see the example). The recipe by hand is the same:
// create the policy, sql.OpenDB(qcache.Wrap(connector, qcache.Options{Policy:
// policy})), gorm.Open with a dialector given that *sql.DB as its Conn, then
// db.Use(gormcache.New(policy)); [TableProfiles] resolves models to the
// table names the policy expects.
//
// # Per-query controls
//
// Scopes set qcache's per-query context on the statement they are applied
// to (GORM runs scopes before the statement's callbacks, and hands
// Statement.Context to the connection):
//
//	db.Scopes(gormcache.Cache(time.Minute)).Find(&users)   // opt in, TTL one minute
//	db.Scopes(gormcache.CacheLock()).First(&user, id)      // opt in with the dog-pile lock
//	db.Scopes(gormcache.NoCache()).Find(&users)            // bypass the cache
//	db.Scopes(gormcache.TTL(time.Hour)).Find(&countries)   // cached as usual, for an hour
//
// db.WithContext(qcache.Cache(ctx, …)) works as well. Without table
// profiles every cacheable read is cached, and Cache only sets the TTL and
// the lock; with profiles, reads of tables without one are cached only
// when they opt in.
//
// # Invalidation
//
// Writes through GORM invalidate what they change by themselves, as every
// statement sent through the wrapper does. For changes made behind the
// wrapper's back (another program, raw SQL on another pool, a batch under
// [WithoutInvalidation]), [InvalidateObject] invalidates the cached queries
// an object's row can affect, [InvalidateModel] every cached query of a
// model's table, and [InvalidateAll] everything.
//
// # Caveats
//
// A scope changes the context of the statement it is applied to; a GORM
// chain reused for several statements shares its statement, and so its
// context (as it shares its conditions). qcache's own caveats apply: on
// SQLite GORM's Create (INSERT … RETURNING) invalidates its whole table,
// and a soft-deleted row image (a time in deleted_at) too.
package gormcache
