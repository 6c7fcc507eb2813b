package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/cachekit/cachekit/disk"
)

// keysCommand is "cachekit keys".
var keysCommand = &command{
	name:    "keys",
	summary: "list a disk cache's live keys, by prefix",
	help: `keys lists the live keys of the disk cache in -dir in key order (bytewise),
one per line: those starting with -prefix (all by default), at most -limit of
them (0: no limit). A key holding a newline is printed as a Go quoted string;
-json gives every key exactly.

With -json it prints {"keys": [...], "truncated": bool}; truncated is true
when -limit cut the list short.

` + dirHelp,
	setup: setupKeys,
}

// keysResult is the output of keys.
type keysResult struct {
	Keys      []string `json:"keys"`
	Truncated bool     `json:"truncated"`
}

func setupKeys(fs *flag.FlagSet) action {
	df := newDiskFlags(fs, true)
	prefix := fs.String("prefix", "", "list only the keys that start with `prefix`")
	limit := fs.Int("limit", 1000, "list at most `n` keys (0: all)")
	return func(ctx context.Context, stdout, stderr io.Writer, args []string) error {
		if err := noArgs(args); err != nil {
			return err
		}
		if *limit < 0 {
			return usagef("-limit %d: want 0 (no limit) or more", *limit)
		}
		return df.withStore(ctx, func(s *disk.Store) error {
			r, err := listKeys(ctx, s, *prefix, *limit)
			if err != nil {
				return err
			}
			if df.jsonOut() {
				return writeJSON(stdout, r)
			}
			for _, k := range r.Keys {
				if strings.ContainsAny(k, "\n\r") {
					k = fmt.Sprintf("%q", k)
				}
				fmt.Fprintln(stdout, k)
			}
			if r.Truncated {
				// On stderr: stdout stays a plain list of keys.
				fmt.Fprintf(stderr, "cachekit keys: more keys follow; raise -limit (0: no limit) to see them\n")
			}
			return nil
		})
	}
}

// listKeys returns up to limit (0: all) live keys of s that start with
// prefix, in key order.
func listKeys(ctx context.Context, s *disk.Store, prefix string, limit int) (keysResult, error) {
	r := keysResult{Keys: []string{}}
	seq, errf := s.Keys(ctx)
	for k := range seq {
		if !strings.HasPrefix(k, prefix) {
			if k > prefix {
				break // in key order, the prefix's keys are behind us
			}
			continue
		}
		if limit > 0 && len(r.Keys) == limit {
			r.Truncated = true
			break
		}
		r.Keys = append(r.Keys, k)
	}
	return r, errf()
}
