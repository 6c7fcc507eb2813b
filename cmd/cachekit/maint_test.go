package main

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/cachekit/cachekit/cachetest"
	"github.com/cachekit/cachekit/disk"
)

// setExpired writes keys to the cache in dir that expired an hour ago, as
// a process whose clock says it is an hour earlier would have.
func setExpired(t *testing.T, dir string, keys ...string) {
	t.Helper()
	ctx := context.Background()
	past, err := disk.New(ctx, disk.Options{Dir: dir, Clock: cachetest.NewFakeClock(time.Now().Add(-time.Hour)), CullLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer past.Close()
	for _, k := range keys {
		if err := past.Set(ctx, k, []byte("old"), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
}

func TestEvict(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir, s := newCache(t, disk.Options{})
	for i := range 250 { // more than one 100-entry batch of Evict
		tag := "odd"
		if i%2 == 0 {
			tag = "even"
		}
		if err := s.SetWith(ctx, strconv.Itoa(i), []byte("v"), disk.SetOptions{Tag: tag}); err != nil {
			t.Fatal(err)
		}
	}
	var got countResult
	cliJSON(t, &got, "evict", "-dir", dir, "-json", "even")
	if got.Deleted != 125 {
		t.Errorf("evict -json even = %+v, want 125 deleted", got)
	}
	if n, _ := s.Len(ctx); n != 125 {
		t.Errorf("Len after evict = %d, want the 125 odd entries", n)
	}
	if code, out, errOut := cli(t, "evict", "-dir", dir, "none"); code != exitOK || out != "evicted 0 entries tagged \"none\"\n" || errOut != "" {
		t.Errorf("evict none: exit code %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestExpire(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// CullLimit -1: the application's write below must not remove the
	// expired entries itself.
	dir, s := newCache(t, disk.Options{CullLimit: -1})
	setExpired(t, dir, "x1", "x2", "x3")
	if err := s.Set(ctx, "live", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	var got countResult
	cliJSON(t, &got, "expire", "-dir", dir, "-json")
	if got.Deleted != 3 {
		t.Errorf("expire -json = %+v, want the 3 expired entries deleted", got)
	}
	if code, out, _ := cli(t, "expire", "-dir", dir); code != exitOK || out != "removed 0 expired entries\n" {
		t.Errorf("second expire: exit code %d, stdout %q", code, out)
	}
	if ok, err := s.Has(ctx, "live"); !ok || err != nil {
		t.Errorf("Has(live) after expire = %v, %v; want the live entry kept", ok, err)
	}
}

func TestClear(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir, s := newCache(t, disk.Options{MinFileSize: 100, CullLimit: -1})
	items := map[string][]byte{}
	for i := range 250 { // several of Clear's 100-entry batches
		items[fmt.Sprint("k", i)] = []byte("v")
	}
	items["file"] = bytes.Repeat([]byte("f"), 500)
	if err := s.SetMany(ctx, items, 0); err != nil {
		t.Fatal(err)
	}
	setExpired(t, dir, "old1", "old2")

	var got countResult
	cliJSON(t, &got, "clear", "-dir", dir, "-json")
	if got.Deleted != len(items) {
		t.Errorf("clear -json = %+v, want the %d live entries", got, len(items))
	}
	// Nothing is left: no live entry, no expired one, no value file.
	if n, _ := s.Len(ctx); n != 0 {
		t.Errorf("Len after clear = %d", n)
	}
	if n, _ := s.Expire(ctx); n != 0 {
		t.Errorf("Expire after clear removed %d entries, want clear to have removed the expired ones", n)
	}
	if files := valueFiles(t, dir); len(files) != 0 {
		t.Errorf("value files left after clear: %q", files)
	}
	if code, out, _ := cli(t, "clear", "-dir", dir); code != exitOK || out != "cleared 0 entries\n" {
		t.Errorf("clear of an empty cache: exit code %d, stdout %q", code, out)
	}
}

// TestPollLen checks the count that the progress of clear and evict
// shows.
func TestPollLen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, s := newCache(t, disk.Options{CullLimit: -1})
	for i := range 10 {
		if err := s.Set(ctx, strconv.Itoa(i), []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Delete(ctx, "0", "1", "2"); err != nil {
		t.Fatal(err)
	}
	p := &progress{total: 10} // not drawing: no goroutine
	if err := pollLen(ctx, s, 10, p); err != nil || p.done.Load() != 3 {
		t.Errorf("pollLen = %v with %d done, want the 3 deleted entries", err, p.done.Load())
	}
	// The watch stops when told, whether it polled yet or not; without a
	// progress line there is nothing to watch.
	watchLen(ctx, s, 10, p)()
	watchLen(ctx, s, 10, nil)()
}

func TestVacuum(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir, s := newCache(t, disk.Options{CullLimit: -1})
	items := map[string][]byte{}
	for i := range 2000 {
		items[strconv.Itoa(i)] = bytes.Repeat([]byte("v"), 1000)
	}
	if err := s.SetMany(ctx, items, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	var got vacuumResult
	cliJSON(t, &got, "vacuum", "-dir", dir, "-json")
	if got.Before < 2000*1000 || got.After >= got.Before/4 || got.After != dbFileBytes(dir) {
		t.Errorf("vacuum -json = %+v, want over 2 MB before, well under a quarter of it after (now %d)", got, dbFileBytes(dir))
	}
	if code, out, _ := cli(t, "vacuum", "-dir", dir); code != exitOK || !bytes.HasPrefix([]byte(out), []byte("database files ")) {
		t.Errorf("vacuum: exit code %d, stdout %q", code, out)
	}
}
