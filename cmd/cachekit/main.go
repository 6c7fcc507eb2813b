// Command cachekit operates on cachekit's caches from the shell.
//
// Usage:
//
//	cachekit <command> [subcommand...] [flags] [args]
//
// Each command has its own flags and its own help (-h). The disk cache
// commands act on the cache (package disk) in the directory given by -dir,
// which must already hold one; they are safe while applications use it:
//
//	cachekit stats  -dir /var/cache/app            entries, volume, database size
//	cachekit keys   -dir /var/cache/app -prefix user: -limit 20
//	cachekit get    -dir /var/cache/app KEY        the value, as stored
//	cachekit set    -dir /var/cache/app -ttl 1h -tag T KEY VALUE
//	cachekit delete -dir /var/cache/app KEY...
//	cachekit evict  -dir /var/cache/app TAG        delete the entries tagged TAG
//	cachekit expire -dir /var/cache/app            delete the expired entries
//	cachekit clear  -dir /var/cache/app            delete every entry
//	cachekit check  -dir /var/cache/app [-fix]     verify (and repair)
//	cachekit vacuum -dir /var/cache/app            shrink the database file
//
// The qcache group invalidates the query cache from outside the
// application, the counterpart of django-cacheops' invalidate management
// command:
//
//	cachekit qcache invalidate all   -store redis://127.0.0.1:6379
//	cachekit qcache invalidate table -store redis://127.0.0.1:6379 posts users
//	cachekit qcache invalidate row   -store redis://127.0.0.1:6379 posts user_id=1
//
// bench measures Set and Get on the memory and disk stores (and Redis and
// Memcached given -redis and -memcached addresses), prints a table and
// writes an SVG bar chart.
//
// Commands that print data take -json and then print one JSON document with
// stable field names. check, evict, clear and bench draw a progress line on
// stderr when it is a terminal (never with -json).
//
// Run "cachekit help" for the list of commands and "cachekit help qcache
// invalidate row" (or "cachekit qcache invalidate row -h") for one command.
//
// Exit status: 0 on success; 1 when the operation failed (a store that
// cannot be opened or reached, an error from the store); 2 for a usage
// error (an unknown command or flag, a missing or malformed argument, a
// store URL that cannot be parsed); 3 when get finds no live entry under
// the key; 4 when check found problems and -fix was not given.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
