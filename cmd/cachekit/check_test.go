package main

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cachekit/cachekit/disk"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir, s := newCache(t, disk.Options{MinFileSize: 100})
	for _, k := range []string{"a", "b", "c"} {
		if err := s.Set(ctx, k, bytes.Repeat([]byte(k), 1000), 0); err != nil {
			t.Fatal(err)
		}
	}
	if code, out, errOut := cli(t, "check", "-dir", dir); code != exitOK || out != "ok: no problems found\n" {
		t.Fatalf("check of a sound cache: exit code %d, stdout %q, stderr %q", code, out, errOut)
	}

	// Damage the cache as a crash or a careless hand would: one value
	// file deleted, one cut short.
	files := valueFiles(t, dir)
	if len(files) != 3 {
		t.Fatalf("%d value files in %s, want 3: %q", len(files), dir, files)
	}
	if err := os.Remove(files[0]); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(files[1], 10); err != nil {
		t.Fatal(err)
	}

	var rep checkResult
	code, out, errOut := cli(t, "check", "-dir", dir, "-json")
	if code != exitProblems || !strings.Contains(errOut, "2 problems found; run check -fix") {
		t.Fatalf("check -json of a damaged cache: exit code %d, stderr %q; want %d", code, errOut, exitProblems)
	}
	if err := decodeStrict(out, &rep); err != nil {
		t.Fatalf("check -json: stdout %q: %v", out, err)
	}
	if rep.OK || rep.Fixed || !rep.IntegrityOK || rep.MissingFiles != 1 || rep.TornFiles != 1 || len(rep.Problems) != 2 {
		t.Errorf("check -json = %+v, want one missing and one torn file, not fixed", rep)
	}

	code, out, _ = cli(t, "check", "-dir", dir)
	if code != exitProblems || !strings.Contains(out, "is missing\n") || !strings.Contains(out, "does not have the recorded 1000 bytes\n") {
		t.Errorf("check: exit code %d, stdout %q; want %d and both problems", code, out, exitProblems)
	}

	rep = checkResult{}
	cliJSON(t, &rep, "check", "-dir", dir, "-json", "--fix")
	if rep.OK || !rep.Fixed || rep.MissingFiles != 1 || rep.TornFiles != 1 {
		t.Errorf("check -json -fix = %+v, want both problems found and fixed", rep)
	}
	rep = checkResult{}
	cliJSON(t, &rep, "check", "-dir", dir, "-json")
	if !rep.OK || rep.Fixed || len(rep.Problems) != 0 {
		t.Errorf("check -json after the fix = %+v, want a sound cache", rep)
	}
	// The damaged entries are gone; the sound one is intact.
	if n, err := s.Len(ctx); n != 1 || err != nil {
		t.Errorf("Len after the fix = %d, %v; want 1", n, err)
	}
}

// valueFiles returns the paths of the value files of the cache in dir:
// the files two directories down.
func valueFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if !d.IsDir() && strings.Count(filepath.ToSlash(rel), "/") == 2 {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}
