package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/cachekit/cachekit/disk"
)

func TestStats(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir, s := newCache(t, disk.Options{MinFileSize: 1000})
	for _, k := range []string{"a", "b"} {
		if err := s.Set(ctx, k, []byte("small"), 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Set(ctx, "big", bytes.Repeat([]byte("x"), 5000), 0); err != nil {
		t.Fatal(err)
	}
	vol, err := s.Volume(ctx)
	if err != nil {
		t.Fatal(err)
	}

	var got statsResult
	cliJSON(t, &got, "stats", "-dir", dir, "-json")
	if got.Dir != dir || got.Entries != 3 || got.VolumeBytes != vol || got.DBFileBytes <= 0 {
		t.Errorf("stats -json = %+v, want dir %s, 3 entries, volume %d, some database bytes", got, dir, vol)
	}
	if got.VolumeBytes < 5000 {
		t.Errorf("volume %d, want at least the 5000-byte value file", got.VolumeBytes)
	}

	code, out, errOut := cli(t, "stats", "-dir", dir)
	if code != exitOK || errOut != "" {
		t.Fatalf("stats: exit code %d, stderr %q", code, errOut)
	}
	for _, want := range []string{"dir       " + dir + "\n", "entries   3\n", "volume    ", "db files  "} {
		if !strings.Contains(out, want) {
			t.Errorf("stats output %q, want it to contain %q", out, want)
		}
	}
}

func TestByteSize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{0, "0 B"},
		{1023, "1023 B"},
		{1536, "1.5 KiB (1536 B)"},
		{3 << 20, "3.0 MiB (3145728 B)"},
		{5 << 30, "5.0 GiB (5368709120 B)"},
	} {
		if got := byteSize(tc.n); got != tc.want {
			t.Errorf("byteSize(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

// dirEntries returns the number of entries in dir.
func dirEntries(dir string) (int, error) {
	es, err := os.ReadDir(dir)
	return len(es), err
}
