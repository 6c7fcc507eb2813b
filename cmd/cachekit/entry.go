package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"
	"unicode/utf8"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/disk"
)

// The commands on single entries: get, set and delete.

// getCommand is "cachekit get".
var getCommand = &command{
	name:    "get",
	summary: "print the value under a key",
	args:    "KEY",
	help: `get writes the value under KEY in the disk cache in -dir to stdout, as it is
stored (bytes, no newline added). A key with no live entry (absent or
expired) exits with status 3.

With -json it prints {"key", "size", "expires"} and "value" when the value is
UTF-8 text or "value_base64" (standard base64) when it is not; expires is the
expiry time in RFC 3339 or null for an entry that never expires.

The value is the bytes the application stored: a cachekit.Cache encodes its
values with its codec (gob by default) inside an envelope, so its entries
print as binary; values written by set, or by a disk.Store used directly,
print as they are.

` + dirHelp,
	setup: setupGet,
}

// getResult is the output of get -json.
type getResult struct {
	Key         string  `json:"key"`
	Size        int     `json:"size"`
	Value       *string `json:"value,omitempty"`
	ValueBase64 []byte  `json:"value_base64,omitempty"`
	Expires     *string `json:"expires"`
}

func setupGet(fs *flag.FlagSet) action {
	df := newDiskFlags(fs, true)
	return func(ctx context.Context, stdout, _ io.Writer, args []string) error {
		if len(args) != 1 {
			return usagef("want one KEY, got %d arguments", len(args))
		}
		key := args[0]
		return df.withStore(ctx, func(s *disk.Store) error {
			if !df.jsonOut() {
				// Read streams a value kept in a file instead of loading it.
				r, err := s.Read(ctx, key)
				if err != nil {
					return notFound(key, err)
				}
				defer r.Close()
				_, err = io.Copy(stdout, r)
				return err
			}
			v, exp, err := s.GetWithExpiry(ctx, key)
			if err != nil {
				return notFound(key, err)
			}
			res := getResult{Key: key, Size: len(v)}
			if utf8.Valid(v) {
				text := string(v)
				res.Value = &text
			} else {
				res.ValueBase64 = v // encoding/json writes []byte in standard base64
			}
			if !exp.IsZero() {
				e := exp.UTC().Format(time.RFC3339Nano)
				res.Expires = &e
			}
			return writeJSON(stdout, res)
		})
	}
}

// notFound turns a miss on key into the exit status exitNotFound and
// returns other errors as they are.
func notFound(key string, err error) error {
	if errors.Is(err, cachekit.ErrMiss) {
		return &codeError{code: exitNotFound, err: fmt.Errorf("key %q not found", key)}
	}
	return err
}

// setCommand is "cachekit set".
var setCommand = &command{
	name:    "set",
	summary: "store a value under a key",
	args:    "KEY [VALUE]",
	help: `set stores VALUE under KEY in the disk cache in -dir, replacing any entry
there. Without VALUE it stores the contents of the file named by -file ("-"
for stdin), streamed: large values go to their file without being held in
memory. -ttl gives the entry a time to live (0: it never expires); -tag labels
it for evict.

` + dirHelp,
	setup: setupSet,
}

func setupSet(fs *flag.FlagSet) action {
	df := newDiskFlags(fs, false)
	ttl := fs.Duration("ttl", 0, "expire the entry after this `duration` (0: never)")
	tag := fs.String("tag", "", "label the entry with `tag` (see evict)")
	file := fs.String("file", "", "read the value from the file at `path` (- for stdin) instead of VALUE")
	return func(ctx context.Context, stdout, _ io.Writer, args []string) error {
		switch {
		case len(args) == 0:
			return usagef("no KEY given")
		case len(args) > 2:
			return usagef("want KEY [VALUE], got %d arguments (quote a value holding spaces)", len(args))
		case len(args) == 2 && *file != "":
			return usagef("both VALUE and -file given")
		case len(args) == 1 && *file == "":
			return usagef("no VALUE given (use -file - to read it from stdin)")
		case *ttl < 0:
			return usagef("-ttl %v: want 0 (never expire) or more", *ttl)
		}
		key := args[0]
		var r io.Reader
		switch {
		case len(args) == 2:
			r = bytes.NewReader([]byte(args[1]))
		case *file == "-":
			r = os.Stdin
		default:
			f, err := os.Open(*file)
			if err != nil {
				return err
			}
			defer f.Close()
			r = f
		}
		return df.withStore(ctx, func(s *disk.Store) error {
			cr := &countingReader{r: r}
			// A zero TTL never expires in disk.SetOptions too.
			if err := s.SetReader(ctx, key, cr, disk.SetOptions{TTL: *ttl, Tag: *tag}); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "stored %q: %d bytes\n", key, cr.n)
			return nil
		})
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// deleteCommand is "cachekit delete".
var deleteCommand = &command{
	name:    "delete",
	summary: "delete keys",
	args:    "KEY [KEY...]",
	help: `delete removes the entries under the keys from the disk cache in -dir and
prints how many of them were live. Keys with no entry are not an error.

With -json it prints {"deleted": n}.

` + dirHelp,
	setup: setupDelete,
}

// countResult is the output of the commands that remove entries.
type countResult struct {
	Deleted int `json:"deleted"`
}

func setupDelete(fs *flag.FlagSet) action {
	df := newDiskFlags(fs, true)
	return func(ctx context.Context, stdout, _ io.Writer, args []string) error {
		if len(args) == 0 {
			return usagef("no KEY given")
		}
		return df.withStore(ctx, func(s *disk.Store) error {
			n, err := s.Delete(ctx, args...)
			if err != nil {
				return err
			}
			if df.jsonOut() {
				return writeJSON(stdout, countResult{Deleted: n})
			}
			fmt.Fprintf(stdout, "deleted %d of %d keys\n", n, len(args))
			return nil
		})
	}
}
