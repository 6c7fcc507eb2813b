package main

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/internal/testserver"
	"github.com/cachekit/cachekit/memory"
	"github.com/cachekit/cachekit/qcache"
	"github.com/cachekit/cachekit/qcache/pgfeed"
	"github.com/cachekit/cachekit/redis"
	"github.com/cachekit/cachekit/tiered"
)

// TestStaleness is the staleness proof of the query cache: readers read
// rows (id, version) through the wrapped database while writers bump their
// versions, and a read that started after a write of its row had returned
// (committed and, in the synchronous mode, invalidated) must see that
// write's version or a later one. Any older version is a stale read; there
// must be none.
//
// It runs against the PostgreSQL of CACHEKIT_POSTGRES_DSN (skipped when
// unset) for at least STALENESS_OPS operations per mode (default 100,000;
// 20,000 with -short). Modes:
//
//   - sync/memory: one GranularPolicy over a memory store; writes through
//     the wrapper (the synchronous write path).
//   - sync/redis-restart: two GranularPolicy instances over one private
//     Redis, as two processes would be (each reads, the second one writes),
//     with the Redis killed and restarted mid-run: reads must keep being
//     answered, and no read is stale, during the outage or after it.
//   - sync/tiered-same-process, sync/tiered-other-process: two
//     GranularPolicy instances, each over Redis behind an in-process tier
//     (package tiered); the second writes. Reads in the writer's instance
//     must never be stale; reads in the other may be, but never one that
//     started more than tiered's MaxStale after the write returned.
//   - cdc/barrier: a GranularPolicy fed by qcache/pgfeed, writers on a
//     plain connection (raw SQL) and through the wrapper, each write waiting
//     for the feeder to apply its commit LSN (pgfeed.CurrentLSN,
//     Feeder.WaitLSN). Stale reads must be 0.
//   - cdc/barrier-faults: the same, with the replication connection killed
//     and the slot dropped mid-run.
//   - cdc/async: no barrier; the stale reads are counted and the staleness
//     window (how long after a write's return a read still missed it) is
//     reported as p50/p99/max.
//
// A control run first writes on a plain connection, which the synchronous
// write path cannot see, and requires stale reads: proof that the checker
// finds them when they happen.
func TestStaleness(t *testing.T) {
	dsn := os.Getenv("CACHEKIT_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("CACHEKIT_POSTGRES_DSN is not set")
	}
	ops := 100_000
	if testing.Short() {
		ops = 20_000
	}
	if s := os.Getenv("STALENESS_OPS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("STALENESS_OPS=%q: want a positive integer", s)
		}
		ops = n
	}
	cfg := staleConfig{ids: 200, readers: 4, writers: 4, ops: ops, limit: 3 * time.Minute}

	// The control proves the harness sees stale reads when there are some:
	// writes on a plain connection bypass the synchronous write path (the
	// documented caveat that the CDC feeders remove), so the cache serves
	// versions older than writes that have returned.
	t.Run("control/raw-sql-writes", func(t *testing.T) {
		e := staleSchema(t, dsn)
		store, err := memory.NewStore(memory.StoreOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = store.Close() })
		db, _ := staleDB(t, e, store, nil)
		plain := e.plainDB(4)
		t.Cleanup(func() { _ = plain.Close() })
		c := cfg
		c.ops = min(cfg.ops, 20_000)
		res := runStale(t, c, []*sql.DB{db}, plain, nil)
		if n := len(res.stale()); n == 0 {
			t.Errorf("0 stale reads with writes the cache cannot see: the harness does not detect staleness")
		} else {
			t.Logf("%d stale reads detected, as expected without invalidation", n)
		}
	})

	t.Run("sync/memory", func(t *testing.T) {
		e := staleSchema(t, dsn)
		store, err := memory.NewStore(memory.StoreOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = store.Close() })
		db, _ := staleDB(t, e, store, nil)
		res := runStale(t, cfg, []*sql.DB{db}, db, nil)
		res.check(t)
	})

	t.Run("sync/redis-restart", func(t *testing.T) {
		e := staleSchema(t, dsn)
		proc := testserver.StartRedis(t)
		newStore := func() cachekit.Store { return openRedis(t, proc.Addr) }
		var cacheErrs atomic.Int64
		onError := func(error) { cacheErrs.Add(1) }
		db1, _ := staleDB(t, e, newStore(), onError)
		db2, p2 := staleDB(t, e, newStore(), onError)
		var before qcache.Stats
		fault := func(ctx context.Context) {
			proc.Kill()
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
			proc.Start()
			before = p2.Stats()
		}
		res := runStale(t, cfg, []*sql.DB{db1, db2}, db2, fault)
		res.check(t)
		after := p2.Stats()
		t.Logf("cache errors reported to OnError: %d; after recovery: %d hits, %d misses in the writing instance",
			cacheErrs.Load(), after.Hits-before.Hits, after.Misses-before.Misses)
		if after.Hits == before.Hits {
			t.Errorf("no hit after Redis came back: the cache did not recover")
		}
	})

	// The tiered modes: two GranularPolicy instances, as two processes
	// would be, each over Redis behind an in-process tier (package tiered,
	// coherent through RESP3 client tracking); the second one writes.
	tieredRun := func(t *testing.T, readFromWriter bool) *staleResult {
		e := staleSchema(t, dsn)
		proc := testserver.StartRedis(t)
		ctx := context.Background()
		newStore := func() cachekit.Store {
			s, err := tiered.New(ctx, openRedis(t, proc.Addr), tiered.Options{
				L1Size: 64 << 20, L1TTL: time.Minute, MaxStale: tieredMaxStale, KeepL2Open: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		}
		s1, s2 := newStore(), newStore()
		db1, _ := staleDB(t, e, s1, nil)
		db2, _ := staleDB(t, e, s2, nil)
		reader, rs := db1, s1
		if readFromWriter {
			reader, rs = db2, s2
		}
		res := runStale(t, cfg, []*sql.DB{reader}, db2, nil)
		st := rs.(*tiered.Store).Stats()
		t.Logf("reading tier: %d L1 hits, %d L1 misses, %d invalidations, %d flushes", st.L1Hits, st.L1Misses, st.Invalidations, st.Flushes)
		if st.L1Hits == 0 {
			t.Errorf("no read served by the in-process tier")
		}
		return res
	}
	t.Run("sync/tiered-same-process", func(t *testing.T) {
		// Reads in the writing instance: its writes drop their stamps from
		// its own tier before they return, so no read is stale.
		tieredRun(t, true).check(t)
	})
	t.Run("sync/tiered-other-process", func(t *testing.T) {
		// Reads in the other instance: its tier learns of the writes from
		// Redis's invalidation messages. Stale reads may happen, but none
		// that started more than tiered's MaxStale after the write returned.
		res := tieredRun(t, false)
		if max := res.window(t); max > tieredMaxStale {
			t.Errorf("a read %s after a write returned missed it; the bound is MaxStale = %s", max, tieredMaxStale)
		}
	})

	// The CDC modes: a GranularPolicy fed by qcache/pgfeed; half the
	// writers write raw SQL on a plain connection (only the feeder sees
	// them), half through the wrapper, and a second process (this test
	// binary, TestStalenessChildWriter) writes raw SQL too.
	t.Run("cdc/barrier", func(t *testing.T) {
		// Each write waits for the feeder to apply its commit's LSN.
		res := runCDC(t, dsn, cfg, true, nil)
		res.check(t)
	})
	t.Run("cdc/barrier-faults", func(t *testing.T) {
		// The replication connection is killed at 40% of the run, and the
		// slot dropped right after (the feeder reconnects, creates it again
		// and bumps the global epoch); no read may be stale.
		res := runCDC(t, dsn, cfg, true, func(ctx context.Context, admin *sql.DB, slot string) {
			killWalsender(ctx, t, admin, slot)
			select {
			case <-ctx.Done():
			case <-time.After(300 * time.Millisecond):
			}
			dropSlot(ctx, t, admin, slot)
		})
		res.check(t)
	})
	t.Run("cdc/async", func(t *testing.T) {
		// No barrier: a read may miss a raw-SQL write for as long as the
		// feeder takes to apply it. Reported, not failed: the window.
		// Writers pause 4 ms before each write (about 1,000 writes/s in
		// all, the top rate of the benchmark) so that the window measures
		// the feeder's delay, not a backlog of a saturating write load.
		c := cfg
		c.writePause = 4 * time.Millisecond
		res := runCDC(t, dsn, c, false, nil)
		res.window(t)
	})
}

// openRedis opens a redis store on addr, closed when t ends.
func openRedis(t *testing.T, addr string) *redis.Store {
	t.Helper()
	s, err := redis.New(context.Background(), redis.Options{Addrs: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// tieredMaxStale is the staleness bound of the tiered modes' stores (the
// default of package tiered).
const tieredMaxStale = 50 * time.Millisecond

// runCDC runs the staleness harness in a CDC mode, with fault (if not nil)
// run at 40% of the operations on an admin connection with the slot name.
func runCDC(t *testing.T, dsn string, cfg staleConfig, barrier bool, fault func(context.Context, *sql.DB, string)) *staleResult {
	t.Helper()
	ctx := context.Background()
	e := staleSchema(t, dsn)
	store, err := memory.NewStore(memory.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	prefix := fmt.Sprintf("qcstale:%d:%d:", os.Getpid(), rand.Uint32())
	p, err := qcache.NewGranularPolicy(qcache.GranularOptions{Store: store, Dialect: qcache.Postgres, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	var feedErrs atomic.Int64
	f, slot, err := startFeeder(ctx, e, p, modeConfig{prefix: prefix, cdcTables: []string{"items"}, onError: func(error) { feedErrs.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	plain := e.plainDB(8)
	t.Cleanup(func() {
		stopFeeder(e, f, slot, nil)
		_ = plain.Close()
	})
	db := sql.OpenDB(qcache.Wrap(e.conn, qcache.Options{Policy: p}))
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	t.Cleanup(func() { _ = db.Close() })
	write := func(ctx context.Context, writer, id int) (int64, error) {
		target := plain
		if writer%2 == 1 {
			target = db
		}
		v, err := bump(ctx, target, id)
		if err != nil || !barrier {
			return v, err
		}
		lsn, err := pgfeed.CurrentLSN(ctx, plain)
		if err != nil {
			return 0, err
		}
		return v, f.WaitLSN(ctx, lsn)
	}
	var fn func(context.Context)
	if fault != nil {
		admin := e.plainDB(1)
		t.Cleanup(func() { _ = admin.Close() })
		fn = func(ctx context.Context) { fault(ctx, admin, slot) }
	}
	cfg.external = childWriter(dsn, e.schema, cfg.ids, cfg.writePause, f, barrier)
	res := runStaleFunc(t, cfg, []*sql.DB{db}, write, fn)
	t.Logf("feeder errors (each followed by a reconnect): %d", feedErrs.Load())
	return res
}

// killWalsender terminates the replication connection of slot.
func killWalsender(ctx context.Context, t *testing.T, admin *sql.DB, slot string) {
	t.Helper()
	var n int
	err := admin.QueryRowContext(ctx, `SELECT count(pg_terminate_backend(active_pid)) FROM pg_replication_slots
		WHERE slot_name = $1 AND active_pid IS NOT NULL`, slot).Scan(&n)
	if err != nil {
		t.Errorf("kill the replication connection: %v", err)
	}
	t.Logf("terminated %d replication connection(s)", n)
}

// dropSlot drops slot, terminating its replication connection first (the
// feeder reconnects within its backoff, so it may take a few tries).
func dropSlot(ctx context.Context, t *testing.T, admin *sql.DB, slot string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, _ = admin.ExecContext(ctx, `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots
			WHERE slot_name = $1 AND active_pid IS NOT NULL`, slot)
		_, err := admin.ExecContext(ctx, `SELECT pg_drop_replication_slot($1)`, slot)
		if err == nil {
			t.Logf("dropped slot %s", slot)
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("drop slot %s: %v", slot, err)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// window reports the stale reads of an asynchronous run and how long after
// the write they missed each one started (the staleness window), and
// returns the longest.
func (res *staleResult) window(t *testing.T) time.Duration {
	t.Helper()
	writes := 0
	for _, ws := range res.writes {
		writes += len(ws)
	}
	stale := res.stale()
	lags := make([]int64, len(stale))
	for i, s := range stale {
		lags[i] = s.after
	}
	slices.Sort(lags)
	pct := func(p float64) time.Duration {
		if len(lags) == 0 {
			return 0
		}
		return time.Duration(lags[min(len(lags)-1, int(p*float64(len(lags))))])
	}
	t.Logf("%d operations (%d reads, %d writes of which %d by a second process) in %s: %d stale reads; window (read start − write return) p50 %s, p99 %s, max %s",
		len(res.reads)+writes, len(res.reads), writes, res.extWrites, res.elapsed.Round(time.Millisecond), len(stale), pct(0.50), pct(0.99), pct(1))
	if res.readErrs > 0 {
		t.Errorf("%d reads failed, first: %v", res.readErrs, res.firstErr)
	}
	return pct(1)
}

// staleConfig sizes a staleness run.
type staleConfig struct {
	ids, readers, writers int
	ops                   int           // reads + successful writes to reach
	limit                 time.Duration // give up (and fail) after this long
	writePause            time.Duration // each writer's pause before each write (also the second process's)

	// external, when not nil, is another writer (a second process) run
	// for the whole run: it calls record for each of its writes once it
	// counts as done, with the time in ns since base (monotonic), until
	// ctx is done.
	external func(ctx context.Context, base time.Time, record func(id int, version, done int64)) error
}

// staleSchema creates a private schema with the table items(id, version)
// and returns the environment whose connections use it.
func staleSchema(t *testing.T, dsn string) *pgEnv {
	t.Helper()
	schema := fmt.Sprintf("qcstale_%d_%d", os.Getpid(), rand.Uint32())
	e, err := newPgEnv(dsn, schema)
	if err != nil {
		t.Fatal(err)
	}
	admin := e.plainDB(1)
	t.Cleanup(func() {
		if _, err := admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`); err != nil {
			t.Errorf("drop schema: %v", err)
		}
		_ = admin.Close()
	})
	for _, s := range []string{
		`CREATE SCHEMA ` + schema,
		`CREATE TABLE ` + schema + `.items (id int PRIMARY KEY, version bigint NOT NULL)`,
		`ALTER TABLE ` + schema + `.items REPLICA IDENTITY FULL`,
		`INSERT INTO ` + schema + `.items SELECT g, 0 FROM generate_series(1, 1000) g`,
	} {
		if _, err := admin.Exec(s); err != nil {
			t.Fatalf("create schema: %v", err)
		}
	}
	return e
}

// staleDB opens the wrapped database of one policy instance over store.
func staleDB(t *testing.T, e *pgEnv, store cachekit.Store, onError func(error)) (*sql.DB, *qcache.GranularPolicy) {
	t.Helper()
	p, err := qcache.NewGranularPolicy(qcache.GranularOptions{Store: store, Dialect: qcache.Postgres, Prefix: "qcstale:"})
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(qcache.Wrap(e.conn, qcache.Options{Policy: p, OnError: onError}))
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	t.Cleanup(func() { _ = db.Close() })
	return db, p
}

// staleWrite is one successful write: the version it set, and when its call
// returned (ns since the run's start, monotonic).
type staleWrite struct {
	version int64
	done    int64
}

// staleReadRec is one read: when it started and the version it saw.
type staleReadRec struct {
	id      int
	start   int64
	version int64
}

// staleResult is what a staleness run recorded.
type staleResult struct {
	writes    [][]staleWrite // by id
	reads     []staleReadRec
	readErrs  int
	writeErrs int
	extWrites int // writes of staleConfig.external (in writes too)
	firstErr  error
	elapsed   time.Duration
}

// runStale runs cfg.readers readers spread over readDBs and cfg.writers
// writers on writeDB until cfg.ops operations have succeeded (see
// runStaleFunc). fault, when not nil, runs once after 40% of them, while
// the load goes on.
func runStale(t *testing.T, cfg staleConfig, readDBs []*sql.DB, writeDB *sql.DB, fault func(context.Context)) *staleResult {
	t.Helper()
	return runStaleFunc(t, cfg, readDBs, func(ctx context.Context, _, id int) (int64, error) {
		return bump(ctx, writeDB, id)
	}, fault)
}

// bump increments the version of row id on db and returns the new version.
func bump(ctx context.Context, db *sql.DB, id int) (int64, error) {
	var v int64
	err := db.QueryRowContext(ctx, `UPDATE items SET version = version + 1 WHERE id = $1 RETURNING version`, id).Scan(&v)
	return v, err
}

// runStaleFunc is runStale with writes made by write(ctx, writer, id),
// which returns once the write counts as done (committed, and whatever
// barrier the mode has).
func runStaleFunc(t *testing.T, cfg staleConfig, readDBs []*sql.DB, write func(ctx context.Context, writer, id int) (int64, error),
	fault func(context.Context)) *staleResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cfg.limit)
	defer cancel()
	base := time.Now()
	since := func() int64 { return int64(time.Since(base)) }
	var (
		done    atomic.Int64 // successful operations
		writes  atomic.Int64 // successful writes
		wg      sync.WaitGroup
		mu      sync.Mutex // protects res
		res     = &staleResult{writes: make([][]staleWrite, cfg.ids+1)}
		stopped = make(chan struct{})
	)
	fail := func(err error) {
		mu.Lock()
		if res.firstErr == nil {
			res.firstErr = err
		}
		mu.Unlock()
	}
	running := func() bool {
		select {
		case <-stopped:
			return false
		default:
			return ctx.Err() == nil
		}
	}
	for i := range cfg.readers {
		db := readDBs[i%len(readDBs)]
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(i), 1))
			var reads []staleReadRec
			errs := 0
			for running() {
				id := 1 + r.IntN(cfg.ids)
				start := since()
				var v int64
				if err := db.QueryRowContext(ctx, `SELECT version FROM items WHERE id = $1`, id).Scan(&v); err != nil {
					if running() {
						errs++
						fail(fmt.Errorf("read: %w", err))
					}
					continue
				}
				reads = append(reads, staleReadRec{id, start, v})
				done.Add(1)
			}
			mu.Lock()
			res.reads = append(res.reads, reads...)
			res.readErrs += errs
			mu.Unlock()
		})
	}
	for i := range cfg.writers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(i), 2))
			for running() {
				if cfg.writePause > 0 {
					time.Sleep(cfg.writePause)
				}
				id := 1 + r.IntN(cfg.ids)
				v, err := write(ctx, i, id)
				end := since()
				if err != nil {
					// A refused write (the store is down) may or may not
					// have reached the database; it is left out, which can
					// only hide a stale read, never invent one: a later
					// write of the row sets a higher version.
					mu.Lock()
					res.writeErrs++
					mu.Unlock()
					continue
				}
				mu.Lock()
				res.writes[id] = append(res.writes[id], staleWrite{v, end})
				mu.Unlock()
				writes.Add(1)
				done.Add(1)
			}
		})
	}
	// The run ends once cfg.ops operations have succeeded, at least 2% of
	// them writes (readers are faster than writers), and with a fault, at
	// least 1% of them writes made after it.
	extCtx, extCancel := context.WithCancel(ctx)
	defer extCancel()
	if cfg.external != nil {
		wg.Go(func() {
			err := cfg.external(extCtx, base, func(id int, version, doneNs int64) {
				mu.Lock()
				res.writes[id] = append(res.writes[id], staleWrite{version, doneNs})
				res.extWrites++
				mu.Unlock()
				writes.Add(1)
				done.Add(1)
			})
			if err != nil && extCtx.Err() == nil {
				fail(fmt.Errorf("external writer: %w", err))
				mu.Lock()
				res.writeErrs++
				mu.Unlock()
			}
		})
	}
	faulted := fault == nil
	var writesAtFault int64
	enough := func() bool {
		w := writes.Load()
		return done.Load() >= int64(cfg.ops) && w >= int64(cfg.ops)/50 && w-writesAtFault >= int64(cfg.ops)/100
	}
	for ctx.Err() == nil && !enough() {
		if !faulted && done.Load() >= int64(cfg.ops)*4/10 {
			faulted = true
			fault(ctx)
			writesAtFault = writes.Load()
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stopped)
	extCancel()
	wg.Wait()
	res.elapsed = time.Since(base)
	if err := ctx.Err(); err != nil {
		t.Fatalf("only %d of %d operations (%d writes) in %s: %v", done.Load(), cfg.ops, writes.Load(), cfg.limit, err)
	}
	return res
}

// staleRead is a read that missed a write returned before it started.
type staleRead struct {
	read  staleReadRec
	want  int64 // the newest version returned before the read started
	after int64 // ns between that write's return and the read's start
}

// stale returns the stale reads of res.
func (res *staleResult) stale() []staleRead {
	// Per id, the writes by return time with the running maximum version.
	type point struct{ done, maxVersion int64 }
	byID := make([][]point, len(res.writes))
	for id, ws := range res.writes {
		ws = slices.Clone(ws)
		slices.SortFunc(ws, func(a, b staleWrite) int { return int(a.done - b.done) })
		var mx int64
		for _, w := range ws {
			mx = max(mx, w.version)
			byID[id] = append(byID[id], point{w.done, mx})
		}
	}
	var out []staleRead
	for _, rd := range res.reads {
		ps := byID[rd.id]
		// The last write that returned strictly before the read started.
		i, _ := slices.BinarySearchFunc(ps, rd.start, func(p point, t int64) int {
			if p.done < t {
				return -1
			}
			return 1
		})
		if i == 0 {
			continue
		}
		if p := ps[i-1]; rd.version < p.maxVersion {
			out = append(out, staleRead{rd, p.maxVersion, rd.start - p.done})
		}
	}
	return out
}

// check reports the run and fails the test on a stale read or a failed read.
func (res *staleResult) check(t *testing.T) {
	t.Helper()
	writes := 0
	for _, ws := range res.writes {
		writes += len(ws)
	}
	stale := res.stale()
	t.Logf("%d operations (%d reads, %d writes of which %d by a second process; %d refused writes, %d failed reads) in %s: %d stale reads",
		len(res.reads)+writes, len(res.reads), writes, res.extWrites, res.writeErrs, res.readErrs, res.elapsed.Round(time.Millisecond), len(stale))
	if res.readErrs > 0 {
		t.Errorf("%d reads failed, first: %v", res.readErrs, res.firstErr)
	}
	if writes == 0 {
		t.Errorf("no write succeeded")
	}
	for i, s := range stale {
		if i == 10 {
			t.Errorf("… %d stale reads in all", len(stale))
			break
		}
		t.Errorf("stale read: id %d saw version %d, started %s after version %d had returned",
			s.read.id, s.read.version, time.Duration(s.after), s.want)
	}
	if errors.Is(res.firstErr, context.DeadlineExceeded) {
		t.Errorf("run hit its time limit")
	}
}

// envChild carries the DSN, schema, id count and pause between writes
// (tab-separated) to the second process of TestStaleness.
const envChild = "QCSTALE_CHILD"

// TestStalenessChildWriter is the second process of TestStaleness's CDC
// modes (skipped otherwise): it bumps versions with raw SQL on a plain
// connection until its stdin closes, and prints for each write a line
// "W id version wallNs lsn" (lsn: pgfeed.CurrentLSN after the commit).
func TestStalenessChildWriter(t *testing.T) {
	spec := os.Getenv(envChild)
	if spec == "" {
		t.Skip("run by TestStaleness as its second process")
	}
	parts := strings.Split(spec, "\t")
	if len(parts) != 4 {
		t.Fatalf("%s=%q: want dsn, schema, ids and pause, tab-separated", envChild, spec)
	}
	ids, err := strconv.Atoi(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	pause, err := time.ParseDuration(parts[3])
	if err != nil {
		t.Fatal(err)
	}
	e, err := newPgEnv(parts[0], parts[1])
	if err != nil {
		t.Fatal(err)
	}
	db := e.plainDB(1)
	defer func() { _ = db.Close() }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	out := bufio.NewWriter(os.Stdout)
	r := rand.New(rand.NewPCG(uint64(os.Getpid()), 3))
	for ctx.Err() == nil {
		if pause > 0 {
			time.Sleep(pause)
		}
		id := 1 + r.IntN(ids)
		v, err := bump(ctx, db, id)
		wall := time.Now().UnixNano()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			t.Fatalf("write: %v", err)
		}
		lsn, err := pgfeed.CurrentLSN(ctx, db)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			t.Fatalf("current LSN: %v", err)
		}
		fmt.Fprintf(out, "W %d %d %d %d\n", id, v, wall, uint64(lsn))
		if err := out.Flush(); err != nil {
			return
		}
	}
}

// childWriter returns a staleConfig.external that runs
// TestStalenessChildWriter in a second process. With barrier, a write is
// done once f has applied its LSN (in this process); without, at the wall
// time the child saw its commit return.
func childWriter(dsn, schema string, ids int, pause time.Duration, f *pgfeed.Feeder, barrier bool) func(context.Context, time.Time, func(int, int64, int64)) error {
	return func(ctx context.Context, base time.Time, record func(id int, version, done int64)) error {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestStalenessChildWriter$")
		cmd.Env = append(os.Environ(), envChild+"="+dsn+"\t"+schema+"\t"+strconv.Itoa(ids)+"\t"+pause.String())
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return err
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return err
		}
		defer func() {
			_ = stdin.Close()
			_ = cmd.Wait()
		}()
		sc := bufio.NewScanner(stdout)
		n := 0
		for sc.Scan() {
			var (
				id            int
				version, wall int64
				lsn           uint64
			)
			if _, err := fmt.Sscanf(sc.Text(), "W %d %d %d %d", &id, &version, &wall, &lsn); err != nil {
				continue // the test binary's own output
			}
			done := wall - base.UnixNano()
			if barrier {
				if err := f.WaitLSN(ctx, pgfeed.LSN(lsn)); err != nil {
					return err
				}
				done = int64(time.Since(base))
			}
			record(id, version, done)
			n++
		}
		if n == 0 && ctx.Err() == nil {
			return errors.New("the second process wrote nothing")
		}
		return nil
	}
}
