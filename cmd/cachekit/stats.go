package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cachekit/cachekit/disk"
)

// statsCommand is "cachekit stats".
var statsCommand = &command{
	name:    "stats",
	summary: "show a disk cache's entry count and size",
	help: `stats prints the number of live entries of the disk cache in -dir, its
volume (database pages in use plus value files: what Options.SizeLimit
bounds, disk.Store.Volume) and the bytes its database files take on disk
(cache.db and its write-ahead log; run vacuum to give back the free pages).

Hit and miss counts are not shown: each process counts its own, in memory.

With -json it prints {"dir", "entries", "volume_bytes", "db_file_bytes"}.

` + dirHelp,
	setup: setupStats,
}

// statsResult is the output of stats.
type statsResult struct {
	Dir         string `json:"dir"`
	Entries     int    `json:"entries"`
	VolumeBytes int64  `json:"volume_bytes"`
	DBFileBytes int64  `json:"db_file_bytes"`
}

func setupStats(fs *flag.FlagSet) action {
	df := newDiskFlags(fs, true)
	return df.noArgsAction(func(ctx context.Context, s *disk.Store, stdout, _ io.Writer) error {
		n, err := s.Len(ctx)
		if err != nil {
			return err
		}
		vol, err := s.Volume(ctx)
		if err != nil {
			return err
		}
		r := statsResult{Dir: s.Dir(), Entries: n, VolumeBytes: vol, DBFileBytes: dbFileBytes(s.Dir())}
		if df.jsonOut() {
			return writeJSON(stdout, r)
		}
		fmt.Fprintf(stdout, "dir       %s\nentries   %d\nvolume    %s\ndb files  %s\n",
			r.Dir, r.Entries, byteSize(r.VolumeBytes), byteSize(r.DBFileBytes))
		return nil
	})
}

// dbFileBytes is the size of the cache's database files in dir (the
// database and its write-ahead log); files that are missing count 0.
func dbFileBytes(dir string) int64 {
	var n int64
	for _, name := range []string{"cache.db", "cache.db-wal"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// byteSize formats n bytes for people: "1234 B", "12.1 KiB", "3.0 MiB".
func byteSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f, i := float64(n)/unit, 0
	for f >= unit && i < 4 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB (%d B)", f, "KMGTP"[i], n)
}
