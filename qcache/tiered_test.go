package qcache_test

import (
	"context"
	"database/sql"
	"reflect"
	"testing"
	"time"

	"github.com/cachekit/cachekit/internal/dbtest"
	"github.com/cachekit/cachekit/internal/testserver"
	"github.com/cachekit/cachekit/qcache"
	"github.com/cachekit/cachekit/redis"
	"github.com/cachekit/cachekit/tiered"
)

// Over Redis behind an in-process tier (package tiered), hits are served
// from the tier; a write drops what it invalidates from the writing
// instance's tier before it returns, and from the other instances' tiers
// when Redis's invalidation messages reach them (within tiered's MaxStale).
func TestTieredRedis(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	addrs := []string{testserver.Redis(t)}
	l2a := sharedRedis(t, addrs)
	l2b := openRedis(t, addrs, l2a.Prefix(), 0)
	const maxStale = 50 * time.Millisecond
	newTier := func(l2 *redis.Store) *tiered.Store {
		s, err := tiered.New(ctx, l2, tiered.Options{L1Size: 16 << 20, L1TTL: time.Minute, MaxStale: maxStale, KeepL2Open: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	ta, tb := newTier(l2a), newTier(l2b)

	a := newGEnv(t, ta, qcache.GranularOptions{})
	pb := must(qcache.NewGranularPolicy(qcache.GranularOptions{Store: tb, Dialect: qcache.SQLite}))
	b := &genv{inner: &dbtest.SQLite{DSN: a.inner.DSN}, plain: a.plain}
	b.db = sql.OpenDB(qcache.Wrap(b.inner, qcache.Options{Policy: pb}))
	t.Cleanup(func() { b.db.Close() })

	a.warm(t, selByUser, 1, 2)
	before := ta.Stats().L1Hits
	a.expect(t, selByUser, 1, true)
	if ta.Stats().L1Hits == before {
		t.Fatal("a hit not served by the in-process tier")
	}

	// A write by the other instance reaches this one's tier within
	// MaxStale (on loopback, well under it).
	b.warm(t, selByUser, 1)
	b.exec(t, `UPDATE posts SET title = 'b' WHERE id = ?`, 1) // user 1
	b.expect(t, selByUser, 1, false)                          // its own tier: at once
	want := all(t, ctx, a.plain, selByUser, 1)
	deadline := time.Now().Add(maxStale)
	for {
		start := time.Now()
		if reflect.DeepEqual(all(t, ctx, a.db, selByUser, 1), want) {
			break
		}
		if start.After(deadline) {
			t.Fatalf("a read %s after the other instance's write returned missed it", start.Sub(deadline)+maxStale)
		}
		time.Sleep(time.Millisecond)
	}
	a.expect(t, selByUser, 2, true) // untouched by the write

	// This instance's own write: never a stale read.
	a.exec(t, `UPDATE posts SET title = 'a' WHERE id = ?`, 3) // user 2
	a.expect(t, selByUser, 2, false)
	a.expect(t, selByUser, 2, true)
	if n := a.errs.Load(); n != 0 {
		t.Fatalf("%d cache errors reported", n)
	}
}
