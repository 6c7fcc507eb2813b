package main

import (
	"context"
	"flag"
	"fmt"
	"io"

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
			// Evict reports nothing until it returns: a spinner.
			p := df.progress(stderr, "evict "+args[0], 0)
			n, err := s.Evict(ctx, args[0])
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
prints how many live entries it removed. The directory stays a cache; run
vacuum afterwards to shrink its database file.

With -json it prints {"deleted": n}.

` + dirHelp,
	setup: setupClear,
}

// clearBatch is how many keys clear deletes per call.
const clearBatch = 1000

func setupClear(fs *flag.FlagSet) action {
	df := newDiskFlags(fs, true)
	return df.noArgsAction(func(ctx context.Context, s *disk.Store, stdout, stderr io.Writer) error {
		total, err := s.Len(ctx)
		if err != nil {
			return err
		}
		p := df.progress(stderr, "clear", int64(total))
		n, err := clearCounting(ctx, s, total, p)
		p.finish()
		if err != nil {
			return err
		}
		return printCount(stdout, df, n, fmt.Sprintf("cleared %d entries\n", n))
	})
}

// clearCounting clears s and returns how many live entries it deleted. It
// deletes the keys it lists, clearBatch at a time, counting them for p, up
// to total (the live entries when it started, so that writers adding keys
// meanwhile cannot keep it going), then runs Store.Clear for whatever is
// left: expired entries, which Keys skips, and keys written meanwhile.
func clearCounting(ctx context.Context, s *disk.Store, total int, p *progress) (int, error) {
	deleted := 0
	for deleted < total {
		var batch []string
		seq, errf := s.KeysInStoreOrder(ctx)
		for k := range seq {
			batch = append(batch, k)
			if len(batch) == clearBatch {
				break
			}
		}
		if err := errf(); err != nil {
			return deleted, err
		}
		if len(batch) == 0 {
			break
		}
		n, err := s.Delete(ctx, batch...)
		deleted += n
		p.add(int64(n))
		if err != nil {
			return deleted, err
		}
	}
	return deleted, s.Clear(ctx)
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
