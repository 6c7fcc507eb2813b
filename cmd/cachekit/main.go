// Command cachekit operates on cachekit's caches from the shell.
//
// Usage:
//
//	cachekit <command> [subcommand...] [flags] [args]
//
// The commands are groups of subcommands; each subcommand has its own flags
// and its own help (-h). The first group is qcache, the query cache's
// manual invalidation, the counterpart of django-cacheops' invalidate
// management command:
//
//	cachekit qcache invalidate all   -store redis://127.0.0.1:6379
//	cachekit qcache invalidate table -store redis://127.0.0.1:6379 posts users
//	cachekit qcache invalidate row   -store redis://127.0.0.1:6379 posts user_id=1
//
// Run "cachekit help" for the list of commands and "cachekit help qcache
// invalidate row" (or "cachekit qcache invalidate row -h") for one command.
//
// Exit status: 0 on success, 1 when the operation failed (a store that
// cannot be reached, an invalidation the store refused), 2 for a usage
// error (an unknown command or flag, a missing or malformed argument, a
// store URL that cannot be parsed).
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
