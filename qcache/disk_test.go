package qcache_test

import (
	"context"
	"testing"

	"github.com/cachekit/cachekit/disk"
	"github.com/cachekit/cachekit/qcache"
)

// Two policies over two disk.Stores on one directory, standing in for two
// processes on one host: a write through either invalidates what the other
// cached, and leaves the rest cached.
func TestDiskSharedByTwoPolicies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	open := func() *disk.Store {
		s, err := disk.New(ctx, disk.Options{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	g := newGEnv(t, open(), qcache.GranularOptions{})
	db2, inner2, errs2 := otherProcess(t, g, open())

	g.warm(t, selByUser, 1, 2)
	for _, u := range []int{1, 2} {
		readVia(t, g, db2, inner2, selByUser, u)
		if !readVia(t, g, db2, inner2, selByUser, u) {
			t.Fatalf("other process: user %d not cached", u)
		}
	}
	// A write through the first invalidates the second's user 2 only.
	g.exec(t, `UPDATE posts SET title = 'disk' WHERE id = ?`, 3) // user 2
	if readVia(t, g, db2, inner2, selByUser, 2) {
		t.Fatal("other process served user 2 after the write")
	}
	if !readVia(t, g, db2, inner2, selByUser, 1) {
		t.Fatal("other process: user 1 no longer cached")
	}
	// And the other way round.
	if _, err := db2.Exec(`UPDATE posts SET user_id = 2 WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	g.expect(t, selByUser, 1, false)
	g.expect(t, selByUser, 2, false)
	if n := g.errs.Load() + errs2.Load(); n != 0 {
		t.Fatalf("%d cache errors reported", n)
	}
}
