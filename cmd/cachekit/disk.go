package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/cachekit/cachekit/disk"
)

// dirHelp documents -dir, for the help of the disk commands.
const dirHelp = `-dir is the directory of a disk cache (disk.Options.Dir) that already
exists: the commands never create one, so that a mistyped path fails
instead of succeeding on an empty cache. They open it as one more process
sharing it, which is safe while applications use it, and never cull it:
whatever size limit the application set, only the application evicts.`

// diskFlags are the flags every disk command takes.
type diskFlags struct {
	dir     *string
	json    *bool // nil for commands that print no data
	timeout *time.Duration
}

// newDiskFlags registers -dir and -timeout on fs, and -json when the command
// prints data.
func newDiskFlags(fs *flag.FlagSet, withJSON bool) *diskFlags {
	f := &diskFlags{
		dir:     fs.String("dir", "", "the cache `directory` (required)"),
		timeout: fs.Duration("timeout", disk.DefaultTimeout, "give up waiting for other processes' locks after this `duration`"),
	}
	if withJSON {
		f.json = fs.Bool("json", false, "print one JSON document instead of text")
	}
	return f
}

// jsonOut reports whether -json was given.
func (f *diskFlags) jsonOut() bool { return f.json != nil && *f.json }

// open checks the flags and opens the cache; the caller closes it. Its
// flag errors are usageErrors.
func (f *diskFlags) open(ctx context.Context) (*disk.Store, error) {
	if *f.dir == "" {
		return nil, usagef("-dir is required")
	}
	if *f.timeout <= 0 {
		return nil, usagef("-timeout %v: want a positive duration", *f.timeout)
	}
	// storeSpec.open checks that the directory holds a cache before
	// opening it, and sets CullLimit -1.
	spec := &storeSpec{kind: "disk", disk: disk.Options{Dir: filepath.Clean(*f.dir), CullLimit: -1, Timeout: *f.timeout}}
	s, err := spec.open(ctx)
	if err != nil {
		return nil, err
	}
	return s.(*disk.Store), nil
}

// withStore opens the cache, calls fn with it and closes it, returning
// fn's error or else Close's.
func (f *diskFlags) withStore(ctx context.Context, fn func(*disk.Store) error) (err error) {
	s, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := s.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close cache: %w", cerr)
		}
	}()
	return fn(s)
}

// storeAction is the work of a disk command on the open cache.
type storeAction func(ctx context.Context, s *disk.Store, stdout, stderr io.Writer) error

// noArgsAction returns the action of a disk command that takes no
// arguments: it opens the cache, runs fn on it and closes it.
func (f *diskFlags) noArgsAction(fn storeAction) action {
	return func(ctx context.Context, stdout, stderr io.Writer, args []string) error {
		if err := noArgs(args); err != nil {
			return err
		}
		return f.withStore(ctx, func(s *disk.Store) error { return fn(ctx, s, stdout, stderr) })
	}
}

// noArgs returns a usageError when a command that takes no arguments got
// some.
func noArgs(args []string) error {
	if len(args) > 0 {
		return usagef("unexpected arguments %q", args)
	}
	return nil
}

// writeJSON writes v to w as one indented JSON document.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// progress starts drawing progress on stderr (see startProgress), except
// with -json.
func (f *diskFlags) progress(stderr io.Writer, label string, total int64) *progress {
	if f.jsonOut() {
		return nil
	}
	return startProgress(stderr, label, total)
}
