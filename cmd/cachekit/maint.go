package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/cachekit/cachekit/disk"
)

// The maintenance commands: evict, expire, clear and vacuum.

// evictCommand is "cachekit evict".
var evictCommand = &command{
	name:    "evict",
	summary: "delete every entry with a tag",
	args:    "TAG",
	help: `evict removes every entry of the disk cache in -dir that was stored with
TAG (disk.SetOptions.Tag, set -tag) and prints how many it removed. It
deletes 100 entries per transaction, so the application's writes go on
meanwhile; a cache opened with Options.TagIndex finds them fastest.

With -json it prints {"deleted": n}.

` + dirHelp,
	setup: setupEvict,
}

func setupEvict(fs *flag.FlagSet) action {
	df := newDiskFlags(fs, true)
	return func(ctx context.Context, stdout, stderr io.Writer, args []string) error {
		if len(args) != 1 {
			return usagef("want one TAG, got %d arguments", len(args))
		}
		return df.withStore(ctx, func(s *disk.Store) error {
			// How many entries have the tag is unknown (there is no
			// count by tag): a spinner with the count of entries gone.
			var before int
			p := df.progress(stderr, "evict "+args[0], 0)
			if p != nil {
				var err error
				if before, err = s.Len(ctx); err != nil {
					p.finish()
					return err
				}
			}
			stop := watchLen(ctx, s, before, p)
			n, err := s.Evict(ctx, args[0])
			stop()
			p.finish()
			if err != nil {
				return err
			}
			return printCount(stdout, df, n, fmt.Sprintf("evicted %d entries tagged %q\n", n, args[0]))
		})
	}
}

// expireCommand is "cachekit expire".
var expireCommand = &command{
	name:    "expire",
	summary: "delete the expired entries",
	help: `expire removes the entries of the disk cache in -dir whose time to live has
passed and prints how many it removed. Expired entries are never returned,
but they take space until a write culls them (a few per write) or expire
runs.

With -json it prints {"deleted": n}.

` + dirHelp,
	setup: setupExpire,
}

func setupExpire(fs *flag.FlagSet) action {
	df := newDiskFlags(fs, true)
	return df.noArgsAction(func(ctx context.Context, s *disk.Store, stdout, _ io.Writer) error {
		n, err := s.Expire(ctx)
		if err != nil {
			return err
		}
		return printCount(stdout, df, n, fmt.Sprintf("removed %d expired entries\n", n))
	})
}

// clearCommand is "cachekit clear".
var clearCommand = &command{
	name:    "clear",
	summary: "delete every entry",
	help: `clear removes every entry and value file of the disk cache in -dir, in
small transactions so that the application's writes go on meanwhile, and
prints how many live entries the cache held when it started. The directory stays a cache; run
vacuum afterwards to shrink its database file.

With -json it prints {"deleted": n}.

` + dirHelp,
	setup: setupClear,
}

func setupClear(fs *flag.FlagSet) action {
	df := newDiskFlags(fs, true)
	return df.noArgsAction(func(ctx context.Context, s *disk.Store, stdout, stderr io.Writer) error {
		n, err := s.Len(ctx)
		if err != nil {
			return err
		}
		p := df.progress(stderr, "clear", int64(n))
		stop := watchLen(ctx, s, n, p)
		err = s.Clear(ctx)
		stop()
		p.finish()
		if err != nil {
			return err
		}
		return printCount(stdout, df, n, fmt.Sprintf("cleared %d entries\n", n))
	})
}

// watchLen shows the progress of a deletion that the Store reports only
// when it is over (Clear, Evict): every progressInterval until stop is
// called, it counts the live entries left (on a reader connection: the
// deletion's writes go on) and records how many went since there were
// start. Other processes' writes meanwhile make it approximate, which is
// good enough for a progress line. With a nil p it does nothing.
func watchLen(ctx context.Context, s *disk.Store, start int, p *progress) (stop func()) {
	if p == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if pollLen(ctx, s, start, p) != nil {
				return // the deletion reports the store's errors
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// pollLen records in p how many of the start live entries of s are gone.
func pollLen(ctx context.Context, s *disk.Store, start int, p *progress) error {
	left, err := s.Len(ctx)
	if err != nil {
		return err
	}
	p.set(int64(start - left))
	return nil
}

// vacuumCommand is "cachekit vacuum".
var vacuumCommand = &command{
	name:    "vacuum",
	summary: "shrink the database file to the data it holds",
	help: `vacuum rebuilds the database of the disk cache in -dir without its free pages
(disk.Store.Vacuum, SQLite's VACUUM): deleting entries leaves the file its
size, vacuum gives the space back. The application's writes wait while it
runs, and it needs free disk space about the size of the database. It prints
the size of the database files before and after.

With -json it prints {"db_file_bytes_before", "db_file_bytes_after"}.

` + dirHelp,
	setup: setupVacuum,
}

// vacuumResult is the output of vacuum -json.
type vacuumResult struct {
	Before int64 `json:"db_file_bytes_before"`
	After  int64 `json:"db_file_bytes_after"`
}

func setupVacuum(fs *flag.FlagSet) action {
	df := newDiskFlags(fs, true)
	return df.noArgsAction(func(ctx context.Context, s *disk.Store, stdout, _ io.Writer) error {
		r := vacuumResult{Before: dbFileBytes(s.Dir())}
		if err := s.Vacuum(ctx); err != nil {
			return err
		}
		r.After = dbFileBytes(s.Dir())
		if df.jsonOut() {
			return writeJSON(stdout, r)
		}
		fmt.Fprintf(stdout, "database files %s before, %s after\n", byteSize(r.Before), byteSize(r.After))
		return nil
	})
}

// printCount prints the count of deleted entries n: {"deleted": n} with
// -json, text otherwise.
func printCount(stdout io.Writer, df *diskFlags, n int, text string) error {
	if df.jsonOut() {
		return writeJSON(stdout, countResult{Deleted: n})
	}
	_, err := io.WriteString(stdout, text)
	return err
}
