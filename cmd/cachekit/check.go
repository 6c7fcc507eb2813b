package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/cachekit/cachekit/disk"
)

// checkCommand is "cachekit check".
var checkCommand = &command{
	name:    "check",
	summary: "verify a disk cache and, with -fix, repair it",
	help: `check verifies the disk cache in -dir (disk.Store.Check): SQLite's integrity
check, that every entry's value file exists with its recorded length, that
no value file or value directory is left over, and the recorded total of
value-file bytes. It prints each problem on a line.

With -fix it repairs what it finds: it rebuilds a damaged database's indexes,
drops the entries whose value file is missing or cut short (they already
read as misses), removes leftover files and directories, and corrects the
total. The entry checks hold the cache's write lock: the application's
writes wait meanwhile.

It exits with status 4 when it found problems and -fix was not given, 0 when
the cache is sound or was repaired.

With -json it prints {"ok", "fixed", "integrity_ok", "missing_files",
"torn_files", "orphan_files", "empty_dirs", "size_mismatch", "problems"}.

` + dirHelp,
	setup: setupCheck,
}

// checkResult is the output of check -json.
type checkResult struct {
	OK           bool     `json:"ok"`
	Fixed        bool     `json:"fixed"`
	IntegrityOK  bool     `json:"integrity_ok"`
	MissingFiles int      `json:"missing_files"`
	TornFiles    int      `json:"torn_files"`
	OrphanFiles  int      `json:"orphan_files"`
	EmptyDirs    int      `json:"empty_dirs"`
	SizeMismatch bool     `json:"size_mismatch"`
	Problems     []string `json:"problems"`
}

func setupCheck(fs *flag.FlagSet) action {
	df := newDiskFlags(fs, true)
	fix := fs.Bool("fix", false, "repair the problems found")
	return df.noArgsAction(func(ctx context.Context, s *disk.Store, stdout, stderr io.Writer) error {
		// Check reports nothing until it returns: a spinner.
		p := df.progress(stderr, "check", 0)
		rep, err := s.Check(ctx, *fix)
		p.finish()
		if err != nil {
			return err
		}
		r := checkResult{
			OK: rep.OK(), Fixed: rep.Fixed, IntegrityOK: rep.IntegrityOK,
			MissingFiles: rep.MissingFiles, TornFiles: rep.TornFiles, OrphanFiles: rep.OrphanFiles,
			EmptyDirs: rep.EmptyDirs, SizeMismatch: rep.SizeMismatch, Problems: rep.Problems,
		}
		if r.Problems == nil {
			r.Problems = []string{}
		}
		if df.jsonOut() {
			if err := writeJSON(stdout, r); err != nil {
				return err
			}
		} else {
			for _, line := range r.Problems {
				fmt.Fprintln(stdout, line)
			}
			switch {
			case r.OK:
				fmt.Fprintln(stdout, "ok: no problems found")
			case r.Fixed:
				fmt.Fprintf(stdout, "fixed %d problems\n", len(r.Problems))
			}
		}
		if !r.OK && !r.Fixed {
			return &codeError{code: exitProblems, err: fmt.Errorf("%d problems found; run check -fix to repair them", len(r.Problems))}
		}
		return nil
	})
}
