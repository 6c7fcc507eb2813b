package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/cachekit/cachekit/disk"
)

// newCache creates a disk cache in a directory of t's own and returns the
// directory and a Store open on it, to seed and inspect the cache beside
// the CLI, as an application would.
func newCache(t *testing.T, opts disk.Options) (string, *disk.Store) {
	t.Helper()
	opts.Dir = t.TempDir()
	s, err := disk.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return opts.Dir, s
}

// cli runs the command line args and returns its exit code and output.
func cli(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// cliJSON runs args, which must succeed, and decodes its stdout, which
// must be one JSON document with no field unknown to v, into v.
func cliJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	code, out, errOut := cli(t, args...)
	if code != exitOK {
		t.Fatalf("%q: exit code %d, stderr %q", args, code, errOut)
	}
	if err := decodeStrict(out, v); err != nil {
		t.Fatalf("%q: stdout %q: %v", args, out, err)
	}
}

// decodeStrict decodes s, which must be one JSON document with no field
// unknown to v, into v.
func decodeStrict(s string, v any) error {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("more than one JSON document")
	}
	return nil
}

func TestDiskFlags(t *testing.T) {
	t.Parallel()
	dir, _ := newCache(t, disk.Options{})
	empty := t.TempDir()
	tests := []struct {
		name    string
		args    []string
		code    int
		wantErr string
	}{
		{"no -dir", []string{"stats"}, exitUsage, "-dir is required"},
		{"no cache in -dir", []string{"stats", "-dir", empty}, exitError, "no cache in " + empty},
		{"bad -timeout", []string{"stats", "-dir", dir, "-timeout", "0s"}, exitUsage, "-timeout 0s"},
		{"unexpected argument", []string{"expire", "-dir", dir, "x"}, exitUsage, `unexpected arguments ["x"]`},
		{"unknown flag", []string{"keys", "-dir", dir, "-nope"}, exitUsage, "flag provided but not defined: -nope"},
		{"get without key", []string{"get", "-dir", dir}, exitUsage, "want one KEY"},
		{"evict without tag", []string{"evict", "-dir", dir}, exitUsage, "want one TAG"},
		{"delete without key", []string{"delete", "-dir", dir}, exitUsage, "no KEY given"},
		{"negative -limit", []string{"keys", "-dir", dir, "-limit", "-1"}, exitUsage, "-limit -1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := cli(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tc.code, errOut)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing", out)
			}
			if !strings.Contains(errOut, tc.wantErr) {
				t.Errorf("stderr %q, want it to contain %q", errOut, tc.wantErr)
			}
			if tc.code == exitUsage && !strings.Contains(errOut, "Run 'cachekit "+tc.args[0]+" -h' for help.") {
				t.Errorf("stderr %q, want a pointer to the help", errOut)
			}
		})
	}
	// The CLI never creates a cache where there was none.
	if code, _, _ := cli(t, "set", "-dir", empty, "k", "v"); code != exitError {
		t.Errorf("set in a directory without a cache: exit code %d, want %d", code, exitError)
	}
	if n, _ := dirEntries(empty); n != 0 {
		t.Errorf("set in a directory without a cache left %d files there", n)
	}
}
