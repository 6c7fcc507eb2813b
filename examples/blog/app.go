package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "github.com/mattn/go-sqlite3" // the "sqlite3" driver

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/fragment"
	"github.com/cachekit/cachekit/fragment/qdep"
	"github.com/cachekit/cachekit/httpcache"
	"github.com/cachekit/cachekit/httpcache/qview"
	"github.com/cachekit/cachekit/memo"
	"github.com/cachekit/cachekit/memory"
	"github.com/cachekit/cachekit/qcache"
	"github.com/cachekit/cachekit/redis"
)

// viewTTL is how long a stored page stays fresh when no write
// invalidates it.
const viewTTL = 5 * time.Minute

// Config chooses the blog's database and cache store.
type Config struct {
	// SQLitePath is the SQLite database file, created and seeded when
	// missing. Used when PostgresDSN is empty.
	SQLitePath string

	// PostgresDSN, when set, selects PostgreSQL (the tables are created
	// and seeded in the DSN's search_path) instead of SQLite.
	PostgresDSN string

	// RedisAddr, when set, keeps every cache layer in Redis at this address
	// instead of in process memory, so that several app processes over one
	// database (usually PostgreSQL) share the caches and their
	// invalidations.
	RedisAddr string

	// CachePrefix starts every key the blog writes to Redis. Default
	// "blog:". Apps of different databases sharing a Redis server need
	// different prefixes.
	CachePrefix string

	// Logger receives the cache errors the layers do not return to the
	// request. Default: slog.Default().
	Logger *slog.Logger
}

// App is the blog: its database behind the query cache, the memoized
// function, the view and fragment caches, and what /debug/cache shows.
// Close releases them.
type App struct {
	log    *slog.Logger
	q      *queries
	policy *qcache.GranularPolicy
	// stats is the memoized authorStats, by author id.
	stats *memo.Func[int64, AuthorStats]
	// views caches whole pages; each page's route has its dependencies on
	// the rows its queries read (deps.go).
	views                                    *httpcache.Cache
	indexDeps, postDeps, authorDeps, tagDeps *qview.Deps
	// fragments caches the sidebar, which depends through fragDeps on the
	// rows its queries read.
	fragments *fragment.Cache
	fragDeps  *qdep.Tracker
	// qbase is the query cache's counters once the schema and seed content
	// were in place: /debug/cache shows what requests did since.
	qbase qcache.Stats
	debug *recorder
	// backend names the database and store, for /debug/cache.
	backend string
	// afterUpdate, when set, runs in updatePost between the UPDATE and the
	// invalidations that follow it: a test seam, for requests in between.
	afterUpdate func()

	// closers release what Open made, in reverse order.
	closers []func() error
}

// Open connects to the database and the cache store that cfg selects,
// creates and seeds the schema if needed, and builds every cache layer.
func Open(ctx context.Context, cfg Config) (_ *App, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.CachePrefix == "" {
		cfg.CachePrefix = "blog:"
	}
	a := &App{log: cfg.Logger, debug: newRecorder()}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()

	var store cachekit.Store
	if cfg.RedisAddr != "" {
		rs, err := redis.New(ctx, redis.Options{Addrs: []string{cfg.RedisAddr}, Prefix: cfg.CachePrefix})
		if err != nil {
			return nil, fmt.Errorf("redis %s: %w", cfg.RedisAddr, err)
		}
		store = rs
	} else {
		ms, err := memory.NewStore(memory.StoreOptions{})
		if err != nil {
			return nil, err
		}
		store = ms
	}
	a.closers = append(a.closers, store.Close)

	dialect, dbName := qcache.SQLite, "SQLite ("+filepath.Base(cfg.SQLitePath)+")"
	if cfg.PostgresDSN != "" {
		dialect, dbName = qcache.Postgres, "PostgreSQL"
	}
	a.policy, err = qcache.NewGranularPolicy(qcache.GranularOptions{
		Store:    store,
		Dialect:  dialect,
		Observer: a.debug.queryObserver(),
	})
	if err != nil {
		return nil, err
	}
	qopts := qcache.Options{
		Policy:  a.policy,
		OnError: func(err error) { a.log.Warn("query cache", "err", err) },
	}
	var db *sql.DB
	if cfg.PostgresDSN != "" {
		pc, err := pgx.ParseConfig(cfg.PostgresDSN)
		if err != nil {
			return nil, fmt.Errorf("postgres DSN: %w", err)
		}
		db = sql.OpenDB(qcache.Wrap(stdlib.GetConnector(*pc), qopts))
	} else {
		if cfg.SQLitePath == "" {
			return nil, errors.New("blog: Config.SQLitePath is empty and no PostgresDSN is set")
		}
		// WAL lets readers run beside the writer; _txlock=immediate makes
		// every transaction take the write lock up front, so that two
		// writers queue on the busy timeout instead of failing to upgrade.
		dsn := "file:" + cfg.SQLitePath + "?_journal_mode=WAL&_busy_timeout=10000&_txlock=immediate&_foreign_keys=1"
		if db, err = qcache.Open("sqlite3", dsn, qopts); err != nil {
			return nil, fmt.Errorf("sqlite %s: %w", cfg.SQLitePath, err)
		}
	}
	a.closers = append(a.closers, db.Close)
	if err := db.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", dbName, err)
	}
	a.q = &queries{db: db, dollar: dialect == qcache.Postgres}
	if err := a.q.migrate(ctx); err != nil {
		return nil, err
	}
	a.debug.reset()
	a.qbase = a.policy.Stats()
	storeName := "memory"
	if cfg.RedisAddr != "" {
		storeName = "Redis " + cfg.RedisAddr
	}
	a.backend = dbName + ", cache store: " + storeName

	// The memoized function keeps its values in the same store, under a
	// prefix of its own; an edit invalidates its author's value.
	statsCache, err := cachekit.New[AuthorStats](store, cachekit.Options{Prefix: "blog-memo", DefaultTTL: 10 * time.Minute})
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, statsCache.Close)
	a.stats, err = memo.New(statsCache, "blog.authorStats", a.q.authorStats, memo.Options{Observer: a.debug.memoObserver()})
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, a.stats.Close)

	// Pages and fragments live in the same store too. A page stays fresh
	// for viewTTL at most; its dependencies' tokens live as long as the
	// policy's results (qcache.DefaultTTL), longer than that.
	a.views, err = httpcache.New(httpcache.Options{
		Store:    store,
		Prefix:   "blog-view:",
		TTL:      viewTTL,
		Observer: a.debug.viewObserver(),
	})
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, a.views.Close)
	for _, d := range []struct {
		p    **qview.Deps
		name string
		deps func(*http.Request) []qcache.Dep
	}{
		{&a.indexDeps, "blog.index", a.indexPageDeps},
		{&a.postDeps, "blog.post", a.postPageDeps},
		{&a.authorDeps, "blog.author", a.authorPageDeps},
		{&a.tagDeps, "blog.tag", a.tagPageDeps},
	} {
		if *d.p, err = qview.New(a.policy, d.name, d.deps, qview.Options{OnError: qopts.OnError}); err != nil {
			return nil, err
		}
		a.closers = append(a.closers, (*d.p).Close)
	}
	a.fragments, err = fragment.New(fragment.Options{Store: store, Prefix: "blog-fragment", Observer: a.debug.fragmentObserver()})
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, a.fragments.Close)
	if a.fragDeps, err = qdep.New(a.policy, qdep.Options{OnError: qopts.OnError}); err != nil {
		return nil, err
	}
	a.closers = append(a.closers, a.fragDeps.Close)
	return a, nil
}

// Close releases the caches and the database, in the reverse order of
// their creation.
func (a *App) Close() error {
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		errs = append(errs, a.closers[i]())
	}
	a.closers = nil
	return errors.Join(errs...)
}

// updatePost saves an edit of a post and invalidates what the query cache
// cannot see: the memoized statistics of the post's author (the query
// cache's wrapper has already invalidated the queries the row change
// affects, and the views and fragments that depend on them), then the
// row's dependants again, for the pages rendered in between.
func (a *App) updatePost(ctx context.Context, id int64, title, body string) error {
	p, err := a.q.post(ctx, id)
	if err != nil {
		return err
	}
	if err := a.q.updatePost(ctx, id, title, body); err != nil {
		return err
	}
	if a.afterUpdate != nil {
		a.afterUpdate()
	}
	if err := a.stats.Invalidate(ctx, p.AuthorID); err != nil {
		return fmt.Errorf("invalidate stats of author %d: %w", p.AuthorID, err)
	}
	a.debug.invalidated(Invalidation{Layer: "memo", Kind: "invalidate", What: fmt.Sprintf("blog.authorStats(%d)", p.AuthorID)})
	// A page rendered between the UPDATE (which invalidated the pages) and
	// the line above showed the old statistics and was stored with the
	// dependency tokens of after the UPDATE: invalidate the row's
	// dependants again, now that the statistics are fresh.
	if err := a.policy.InvalidateRow(ctx, "posts", map[string]any{"id": id, "author_id": p.AuthorID}); err != nil {
		return fmt.Errorf("invalidate the pages of post %d: %w", id, err)
	}
	return nil
}
