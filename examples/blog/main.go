// Command blog is cachekit's demo web app: a small blog with posts, authors
// and tags on SQLite (or PostgreSQL with Redis as the shared cache store),
// which uses every caching layer of the library at once:
//
//   - the query cache (package qcache) under database/sql, with row-granular
//     invalidation: editing a post invalidates the queries that could read
//     it, and no others;
//   - a memoized function (package memo): an author's statistics, invalidated
//     by the edits of that author's posts;
//   - a cached view (package httpcache) per page, invalidated by the rows the
//     page read, with a Cache-Status response header;
//   - a cached fragment (package fragment): the sidebar.
//
// /debug/cache shows each layer's hit ratio and the recent invalidations,
// refreshed every second.
//
// Run it from this directory:
//
//	go run .                                    # SQLite in the temp dir, caches in memory
//	go run . -db ./blog.sqlite -addr 127.0.0.1:8081
//	go run . -postgres "$CACHEKIT_POSTGRES_DSN" -redis "$CACHEKIT_REDIS_ADDR"
//
// The server listens on the loopback interface only.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "`address` to listen on (a loopback address)")
	dbPath := flag.String("db", filepath.Join(os.TempDir(), "cachekit-blog.sqlite"), "SQLite database `file`, created and seeded if missing")
	pgDSN := flag.String("postgres", "", "PostgreSQL `DSN`: use PostgreSQL instead of SQLite")
	redisAddr := flag.String("redis", "", "Redis `address`: keep the caches in Redis instead of in memory (usually with -postgres)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "blog: unexpected arguments %q\n", flag.Args())
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := Config{SQLitePath: *dbPath, PostgresDSN: *pgDSN, RedisAddr: *redisAddr}
	ln, err := listenLoopback(*addr)
	if err != nil {
		slog.Error("blog", "err", err)
		os.Exit(1)
	}
	if err := run(ctx, ln, cfg); err != nil {
		slog.Error("blog", "err", err)
		os.Exit(1)
	}
}

// run serves the blog on ln until ctx is done, then shuts the server down
// and closes ln.
func run(ctx context.Context, ln net.Listener, cfg Config) error {
	app, err := Open(ctx, cfg)
	if err != nil {
		ln.Close()
		return err
	}
	defer app.Close()
	srv := &http.Server{Handler: app.Handler(), ReadHeaderTimeout: 10 * time.Second}
	attrs := []any{"url", "http://" + ln.Addr().String() + "/", "backend", app.backend}
	if cfg.PostgresDSN == "" {
		attrs = append(attrs, "sqlite", cfg.SQLitePath)
	}
	slog.Info("blog: serving", attrs...)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// listenLoopback listens on addr, which must name a loopback host: the
// demo has no authentication, its edit form is open to whoever reaches it.
func listenLoopback(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("-addr %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("-addr %q: the demo listens on a loopback address only (such as 127.0.0.1)", addr)
	}
	return net.Listen("tcp", addr)
}
