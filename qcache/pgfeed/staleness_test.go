package pgfeed_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/cachekit/cachekit/qcache"
	"github.com/cachekit/cachekit/qcache/pgfeed"
)

// TestStaleness measures (and logs; it asserts no time) the staleness
// window of the asynchronous mode: the time from the return of a commit on
// a plain connection to the feeder's invalidation of its rows, and the
// cost of read-your-writes with WaitLSN (commit returned to WaitLSN
// returned, CurrentLSN included). Run with -v to see the figures:
//
//	go test ./qcache/pgfeed -run TestStaleness -v -count=1
func TestStaleness(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement; skipped with -short")
	}
	const writes = 300
	e := newEnv(t, &pgfeed.Options{EnforceReplicaIdentity: true}, tables, setup...)
	ctx, cancel := context.WithTimeout(context.Background(), 5*waitLimit)
	defer cancel()
	e.read(t, qUser1Posts.sql, qUser1Posts.args...) // a live scheme on posts
	applied := make(chan time.Time, 1)
	observe := func(ev qcache.Event) {
		if (ev.Kind == qcache.InvalidateRows || ev.Kind == qcache.InvalidateTable) && slices.Equal(ev.Tables, []string{"posts"}) {
			applied <- time.Now()
		}
	}
	e.observer.Store(&observe)

	async := make([]time.Duration, 0, writes)
	early := 0
	for i := range writes {
		if _, err := e.plain.ExecContext(ctx, `UPDATE posts SET n = $1 WHERE id = $2`, i, 1+i%300); err != nil {
			t.Fatal(err)
		}
		returned := time.Now()
		select {
		case at := <-applied:
			d := at.Sub(returned)
			if d < 0 {
				early++ // invalidated before the client saw the commit return
				d = 0
			}
			async = append(async, d)
		case <-ctx.Done():
			t.Fatalf("write %d: no invalidation: %v", i, ctx.Err())
		}
	}
	e.observer.Store(nil)

	ryw := make([]time.Duration, 0, writes)
	for i := range writes {
		if _, err := e.plain.ExecContext(ctx, `UPDATE posts SET n = $1 WHERE id = $2`, -i, 1+i%300); err != nil {
			t.Fatal(err)
		}
		returned := time.Now()
		lsn, err := pgfeed.CurrentLSN(ctx, e.plain)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.feeder.WaitLSN(ctx, lsn); err != nil {
			t.Fatal(err)
		}
		ryw = append(ryw, time.Since(returned))
	}
	t.Logf("async: commit returned -> invalidated, %d writes: %s (%d invalidated before the commit returned)", writes, quantiles(async), early)
	t.Logf("read-your-writes: commit returned -> CurrentLSN + WaitLSN returned, %d writes: %s", writes, quantiles(ryw))
}

func quantiles(d []time.Duration) string {
	slices.Sort(d)
	q := func(p float64) time.Duration { return d[min(len(d)-1, int(p*float64(len(d))))] }
	return "p50 " + q(0.50).String() + ", p99 " + q(0.99).String() + ", max " + d[len(d)-1].String()
}
