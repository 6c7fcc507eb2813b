package qcache_test

import (
	"context"
	"database/sql"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cachekit/cachekit/cachetest"
	"github.com/cachekit/cachekit/internal/dbtest"
	"github.com/cachekit/cachekit/memory"
	"github.com/cachekit/cachekit/qcache"
)

// recorder is an Observer that keeps the events and signals each one of
// a watched kind on a channel.
type recorder struct {
	mu     sync.Mutex
	events []qcache.Event
	watch  map[qcache.EventKind]chan struct{}
}

func newRecorder(watch ...qcache.EventKind) *recorder {
	r := &recorder{watch: map[qcache.EventKind]chan struct{}{}}
	for _, k := range watch {
		r.watch[k] = make(chan struct{}, 1000)
	}
	return r
}

func (r *recorder) Observe(e qcache.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	if ch, ok := r.watch[e.Kind]; ok {
		ch <- struct{}{}
	}
}

// await waits for n events of kind k (which must be watched).
func (r *recorder) await(t *testing.T, k qcache.EventKind, n int) {
	t.Helper()
	for range n {
		select {
		case <-r.watch[k]:
		case <-time.After(time.Minute):
			t.Fatalf("no %v event after a minute", k)
		}
	}
}

// take returns the events recorded since the last take.
func (r *recorder) take() []qcache.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev := r.events
	r.events = nil
	return ev
}

// kinds returns the kinds of events.
func kinds(events []qcache.Event) []qcache.EventKind {
	var ks []qcache.EventKind
	for _, e := range events {
		ks = append(ks, e.Kind)
	}
	return ks
}

// another opens a second wrapped database on r's file, with a policy of
// its own on store (a second process sharing the cache).
func (r *readEnv) another(t *testing.T, opts qcache.GranularOptions) (*sql.DB, *dbtest.SQLite, *qcache.GranularPolicy) {
	t.Helper()
	c := &dbtest.SQLite{DSN: r.inner.DSN}
	opts.Dialect = qcache.SQLite
	p := must(qcache.NewGranularPolicy(opts))
	db := sql.OpenDB(qcache.Wrap(c, qcache.Options{Policy: p, OnError: func(err error) { t.Errorf("OnError: %v", err) }}))
	t.Cleanup(func() { db.Close() })
	return db, c, p
}

func TestEventsAndStats(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	r := newReadEnv(t, nil, qcache.GranularOptions{Observer: rec}, qcache.Options{MaxRows: 3})
	ctx := context.Background()
	const byUser = `SELECT id, title FROM posts WHERE user_id = ? ORDER BY id`
	for _, c := range []struct {
		name   string
		run    func(t *testing.T)
		kinds  []qcache.EventKind
		reason qcache.Reason
	}{
		{"miss", func(t *testing.T) { all(t, ctx, r.db, byUser, 1) }, []qcache.EventKind{qcache.Miss, qcache.Stored}, 0},
		{"hit", func(t *testing.T) { all(t, ctx, r.db, byUser, 1) }, []qcache.EventKind{qcache.Hit}, 0},
		// A statement the policy cannot read may write: it also bumps the
		// global epoch.
		{"parse", func(t *testing.T) { all(t, ctx, r.db, `PRAGMA table_info(posts)`) }, []qcache.EventKind{qcache.Uncached, qcache.InvalidateGlobal}, qcache.ReasonParse},
		{"volatile", func(t *testing.T) { all(t, ctx, r.db, `SELECT id, random() FROM posts`) }, []qcache.EventKind{qcache.Uncached}, qcache.ReasonNotCacheable},
		{"too large", func(t *testing.T) { all(t, ctx, r.db, `SELECT id FROM posts`) }, []qcache.EventKind{qcache.Miss, qcache.Uncached}, qcache.ReasonTooLarge},
		{"query error", func(t *testing.T) {
			if _, err := r.db.QueryContext(ctx, `SELECT nosuch FROM posts WHERE user_id = ?`, 1); err == nil {
				t.Fatal("query of a missing column: no error")
			}
		}, []qcache.EventKind{qcache.Miss, qcache.Abandoned}, 0},
		{"in transaction", func(t *testing.T) {
			tx := must(r.db.BeginTx(ctx, nil))
			defer tx.Rollback()
			all(t, ctx, tx, byUser, 2)
		}, []qcache.EventKind{qcache.Miss, qcache.Abandoned}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.run(t)
			ev := rec.take()
			if got := kinds(ev); !slices.Equal(got, c.kinds) {
				t.Fatalf("events %v, want %v", got, c.kinds)
			}
			for _, e := range ev {
				if e.SQL == "" {
					t.Errorf("%v event without SQL", e.Kind)
				}
				if e.Kind == qcache.Uncached && e.Reason != c.reason {
					t.Errorf("reason %v, want %v", e.Reason, c.reason)
				}
				if e.Kind == qcache.Abandoned && e.Err == nil {
					t.Errorf("abandoned without a cause")
				}
				if e.Kind != qcache.InvalidateGlobal && (e.Kind != qcache.Uncached || e.Reason != qcache.ReasonParse) {
					if !slices.Equal(e.Tables, []string{"posts"}) {
						t.Errorf("%v event tables %v, want [posts]", e.Kind, e.Tables)
					}
				}
			}
		})
	}
	got := r.policy.Stats()
	want := qcache.Stats{
		Hits: 1, Misses: 4, Stored: 1, Abandoned: 2,
		UncachedParse: 1, UncachedNotCacheable: 1, UncachedTooLarge: 1,
		InvalidatedGlobal: 1,
	}
	if got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
}

func TestStatsWithoutObserver(t *testing.T) {
	t.Parallel()
	r := newReadEnv(t, nil, qcache.GranularOptions{})
	ctx := context.Background()
	for range 3 {
		all(t, ctx, r.db, `SELECT title FROM posts WHERE id = ?`, 2)
	}
	// The fill that registered the scheme rotated its generation, which
	// keeps its result out of the local index: the first hit is the
	// store's, the second the index's.
	if got, want := r.policy.Stats(), (qcache.Stats{Hits: 2, Misses: 1, Stored: 1, LocalHits: 1}); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
}

// tableReads and tableWrites are a table extractor for the posts and
// users tables of readEnv.
func tableReads(q string) ([]string, bool) {
	switch q {
	case `SELECT title FROM posts WHERE user_id = ?`:
		return []string{"posts"}, true
	case `SELECT name FROM users WHERE id = ?`:
		return []string{"users"}, true
	}
	return nil, false
}

func tableWrites(q string) ([]string, bool) {
	switch {
	case q == `UPDATE posts SET title = ? WHERE id = ?`:
		return []string{"posts"}, true
	case strings.HasPrefix(q, "SELECT"):
		return nil, true
	}
	return nil, false
}

// newTableReadEnv opens r's database through a TablePolicy with opts.
func newTableReadEnv(t *testing.T, r *readEnv, opts qcache.TableOptions) (*sql.DB, *qcache.TablePolicy) {
	t.Helper()
	if opts.Store == nil {
		opts.Store = must(memory.NewStore(memory.StoreOptions{}))
		t.Cleanup(func() { opts.Store.Close() })
	}
	opts.Reads, opts.Writes = tableReads, tableWrites
	p := must(qcache.NewTablePolicy(opts))
	db := sql.OpenDB(qcache.Wrap(r.inner, qcache.Options{Policy: p, OnError: func(err error) { t.Errorf("OnError: %v", err) }}))
	t.Cleanup(func() { db.Close() })
	return db, p
}

func TestTablePolicyEvents(t *testing.T) {
	t.Parallel()
	r := newReadEnv(t, nil, qcache.GranularOptions{})
	rec := newRecorder()
	db, p := newTableReadEnv(t, r, qcache.TableOptions{Observer: rec})
	ctx := context.Background()
	const q = `SELECT title FROM posts WHERE user_id = ?`

	// A write between the query and the end of its rows drops the fill.
	rows := must(db.QueryContext(ctx, q, 1))
	if _, err := db.ExecContext(ctx, `UPDATE posts SET title = ? WHERE id = ?`, "new", 1); err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	all(t, ctx, db, q, 1)
	all(t, ctx, db, q, 1)
	all(t, ctx, db, `SELECT id, random() FROM posts`)
	if err := p.InvalidateTables(ctx, "users"); err != nil {
		t.Fatal(err)
	}
	if err := p.InvalidateAll(ctx); err != nil {
		t.Fatal(err)
	}
	want := []qcache.EventKind{
		qcache.Miss, qcache.InvalidateTable, qcache.Dropped,
		qcache.Miss, qcache.Stored, qcache.Hit, qcache.Uncached,
		qcache.InvalidateTable, qcache.InvalidateGlobal,
	}
	ev := rec.take()
	if got := kinds(ev); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	if got := ev[1]; got.SQL != `UPDATE posts SET title = ? WHERE id = ?` || !slices.Equal(got.Tables, []string{"posts"}) {
		t.Errorf("invalidation event %+v, want the UPDATE of posts", got)
	}
	if got, want := p.Stats(), (qcache.Stats{
		Hits: 1, Misses: 2, Stored: 1, Dropped: 1, UncachedNotCacheable: 1,
		InvalidatedTables: 2, InvalidatedGlobal: 1,
	}); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
}

// TestCoalesceInProcess holds the rows of a miss open until every other
// reader of the same query waits for it: the database sees one query.
func TestCoalesceInProcess(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		policy func(t *testing.T, r *readEnv, obs qcache.Observer) (*sql.DB, *dbtest.SQLite, func() qcache.Stats)
	}{
		{"granular", func(t *testing.T, r *readEnv, obs qcache.Observer) (*sql.DB, *dbtest.SQLite, func() qcache.Stats) {
			store := must(memory.NewStore(memory.StoreOptions{}))
			t.Cleanup(func() { store.Close() })
			db, c, p := r.another(t, qcache.GranularOptions{Store: store, Observer: obs, LockWait: time.Hour})
			return db, c, p.Stats
		}},
		{"table", func(t *testing.T, r *readEnv, obs qcache.Observer) (*sql.DB, *dbtest.SQLite, func() qcache.Stats) {
			db, p := newTableReadEnv(t, r, qcache.TableOptions{Observer: obs, LockWait: time.Hour})
			return db, r.inner, p.Stats
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newReadEnv(t, nil, qcache.GranularOptions{})
			rec := newRecorder(qcache.Coalesced)
			db, inner, stats := tc.policy(t, r, rec)
			ctx := context.Background()
			const q = `SELECT title FROM posts WHERE user_id = ?`
			want := all(t, ctx, r.plain, q, 1)
			before := inner.Queries.Load()

			rows := must(db.QueryContext(ctx, q, 1))
			const n = 8
			var wg sync.WaitGroup
			got := make([][][]any, n)
			for i := range n {
				wg.Go(func() { got[i] = all(t, ctx, db, q, 1) })
			}
			rec.await(t, qcache.Coalesced, n)
			for rows.Next() {
			}
			if err := rows.Close(); err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			for i := range n {
				if !reflect.DeepEqual(got[i], want) {
					t.Fatalf("reader %d got %v, want %v", i, got[i], want)
				}
			}
			if q := inner.Queries.Load() - before; q != 1 {
				t.Errorf("the database saw %d queries, want 1", q)
			}
			if s := stats(); s.Hits != n || s.Misses != 1 || s.Coalesced != n || s.Stored != 1 {
				t.Errorf("Stats() = %+v, want %d hits, 1 miss, %d coalesced, 1 stored", s, n, n)
			}
		})
	}
}

// TestCoalesceAbandonedFill checks that a fill the wrapper abandons
// releases the readers waiting for it: they run the query themselves.
func TestCoalesceAbandonedFill(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		query string
		arg   int
		max   int                  // Options.MaxRows
		read  func(rows *sql.Rows) // what the first reader does before Close
		check func(t *testing.T, s qcache.Stats)
	}{
		{"too large", `SELECT title FROM posts WHERE user_id = ?`, 1, 1, func(rows *sql.Rows) { rows.Next() },
			func(t *testing.T, s qcache.Stats) {
				if s.UncachedTooLarge != 2 {
					t.Errorf("UncachedTooLarge = %d, want 2", s.UncachedTooLarge)
				}
			}},
		// abs fails on the rows of user 2, the third one on.
		{"error", `SELECT abs(-9223372036854775807 - (user_id = ?)) FROM posts ORDER BY id`, 2, 0, func(rows *sql.Rows) {
			for rows.Next() {
			}
		},
			func(t *testing.T, s qcache.Stats) {
				if s.Abandoned != 2 {
					t.Errorf("Abandoned = %d, want 2", s.Abandoned)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := newRecorder(qcache.Coalesced)
			r := newReadEnv(t, nil, qcache.GranularOptions{Observer: rec, LockWait: time.Hour}, qcache.Options{MaxRows: tc.max})
			ctx := context.Background()
			before := r.inner.Queries.Load()
			rows := must(r.db.QueryContext(ctx, tc.query, tc.arg))
			done := make(chan error)
			go func() {
				rows, err := r.db.QueryContext(ctx, tc.query, tc.arg)
				if err == nil {
					for rows.Next() {
					}
					err = errors.Join(rows.Err(), rows.Close())
				}
				done <- err
			}()
			rec.await(t, qcache.Coalesced, 1)
			tc.read(rows)
			rows.Close()
			<-done
			if q := r.inner.Queries.Load() - before; q != 2 {
				t.Errorf("the database saw %d queries, want 2", q)
			}
			s := r.policy.Stats()
			if s.Misses != 2 || s.Coalesced != 1 {
				t.Errorf("Stats() = %+v, want 2 misses, 1 coalesced", s)
			}
			tc.check(t, s)
		})
	}
}

// TestLeaseAcrossPolicies runs two wrapped databases with policies of
// their own on one store: with the lock on, the second waits for the
// first's fill instead of querying.
func TestLeaseAcrossPolicies(t *testing.T) {
	t.Parallel()
	const q = `SELECT title FROM posts WHERE user_id = ?`
	for _, tc := range []struct {
		name string
		opts qcache.GranularOptions
		ctx  func(context.Context) context.Context
	}{
		{"option", qcache.GranularOptions{Lock: true}, nil},
		{"profile", qcache.GranularOptions{Tables: map[string]qcache.TableProfile{"posts": {Lock: true}}}, nil},
		{"context", qcache.GranularOptions{}, func(ctx context.Context) context.Context {
			return qcache.Cache(ctx, qcache.CacheOptions{Lock: true})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			store := must(memory.NewStore(memory.StoreOptions{}))
			t.Cleanup(func() { store.Close() })
			r := newReadEnv(t, store, qcache.GranularOptions{})
			ctx := context.Background()
			if tc.ctx != nil {
				ctx = tc.ctx(ctx)
			}
			want := all(t, ctx, r.plain, q, 1)
			opts := tc.opts
			opts.Store, opts.LockWait = store, time.Hour
			db1, c1, p1 := r.another(t, opts)
			rec := newRecorder(qcache.LeaseWait)
			opts.Observer = rec
			db2, c2, p2 := r.another(t, opts)

			rows := must(db1.QueryContext(ctx, q, 1))
			done := make(chan [][]any)
			go func() { done <- all(t, ctx, db2, q, 1) }()
			rec.await(t, qcache.LeaseWait, 1)
			for rows.Next() {
			}
			if err := rows.Close(); err != nil {
				t.Fatal(err)
			}
			if got := <-done; !reflect.DeepEqual(got, want) {
				t.Fatalf("second database got %v, want %v", got, want)
			}
			if n1, n2 := c1.Queries.Load(), c2.Queries.Load(); n1 != 1 || n2 != 0 {
				t.Errorf("the databases saw %d and %d queries, want 1 and 0", n1, n2)
			}
			if s1, s2 := p1.Stats(), p2.Stats(); s1.Stored != 1 || s2.LeaseWaits != 1 || s2.Hits != 1 {
				t.Errorf("Stats() = %+v and %+v, want 1 stored, then 1 lease wait and 1 hit", s1, s2)
			}
		})
	}
}

func TestProfiles(t *testing.T) {
	t.Parallel()
	clock := cachetest.NewFakeClock(time.Unix(1e9, 0))
	store := must(memory.NewStore(memory.StoreOptions{Clock: clock}))
	t.Cleanup(func() { store.Close() })
	// The policies share the store's clock: their local index times its
	// entries by GranularOptions.Now.
	r := newReadEnv(t, store, qcache.GranularOptions{Now: clock.Now, Tables: map[string]qcache.TableProfile{
		"posts": {TTL: time.Minute},
		"users": {TTL: 2 * time.Minute},
	}})
	db, _, p := r.another(t, qcache.GranularOptions{Store: store, Prefix: "other:", Now: clock.Now, Tables: map[string]qcache.TableProfile{
		"posts": {TTL: time.Minute},
	}})
	ctx := context.Background()
	const (
		posts = `SELECT title FROM posts WHERE user_id = ?`
		users = `SELECT name FROM users WHERE id = ?`
		join  = `SELECT p.title, u.name FROM posts p JOIN users u ON u.id = p.user_id WHERE p.user_id = ?`
	)
	t.Run("automatic", func(t *testing.T) {
		for _, q := range []string{posts, users, join} {
			all(t, ctx, r.db, q, 1)
		}
		hits := r.policy.Stats().Hits
		for _, q := range []string{posts, users, join} {
			all(t, ctx, r.db, q, 1)
		}
		if got := r.policy.Stats().Hits - hits; got != 3 {
			t.Fatalf("%d hits, want 3", got)
		}
		// The join lives as long as the shorter of its tables' TTLs.
		clock.Advance(time.Minute + time.Second)
		hits = r.policy.Stats().Hits
		for _, q := range []string{users, join} {
			all(t, ctx, r.db, q, 1)
		}
		if got := r.policy.Stats().Hits - hits; got != 1 {
			t.Fatalf("%d hits after a minute, want 1 (users only)", got)
		}
	})
	t.Run("opt-in", func(t *testing.T) {
		// db's policy has no profile for users: reads of users are cached
		// only under Cache.
		for range 2 {
			all(t, ctx, db, users, 1)
			all(t, ctx, db, join, 1)
		}
		if s := p.Stats(); s.UncachedNotOptedIn != 4 || s.Hits != 0 {
			t.Fatalf("Stats() = %+v, want 4 reads not opted in", s)
		}
		in := qcache.Cache(ctx, qcache.CacheOptions{TTL: time.Hour})
		for range 2 {
			all(t, in, db, users, 1)
			all(t, in, db, join, 1)
		}
		if s := p.Stats(); s.Hits != 2 || s.Stored != 2 {
			t.Fatalf("Stats() = %+v, want 2 stored and 2 hits under Cache", s)
		}
		clock.Advance(30 * time.Minute) // the TTL of Cache wins
		all(t, in, db, users, 1)
		if s := p.Stats(); s.Hits != 3 {
			t.Fatalf("Stats() = %+v, want a hit 30 minutes later (TTL of an hour)", s)
		}
	})
	t.Run("with ttl", func(t *testing.T) {
		in := qcache.WithTTL(ctx, time.Hour)
		all(t, in, db, posts, 2)
		clock.Advance(30 * time.Minute)
		hits := p.Stats().Hits
		all(t, in, db, posts, 2)
		if got := p.Stats().Hits - hits; got != 1 {
			t.Fatalf("%d hits 30 minutes later, want 1: WithTTL wins over the profile", got)
		}
	})
}

func TestProfileOps(t *testing.T) {
	t.Parallel()
	r := newReadEnv(t, nil, qcache.GranularOptions{Tables: map[string]qcache.TableProfile{
		"posts": {Ops: qcache.OpCount | qcache.OpExists},
		"users": {},
	}})
	ctx := context.Background()
	for _, c := range []struct {
		query  string
		cached bool
	}{
		{`SELECT title FROM posts WHERE user_id = ?`, false},
		{`SELECT count(*) FROM posts WHERE user_id = ?`, true},
		{`SELECT 1 FROM posts WHERE user_id = ? LIMIT 1`, true},
		{`SELECT EXISTS (SELECT 1 FROM posts WHERE user_id = ?)`, true},
		{`SELECT max(id) FROM posts WHERE user_id = ?`, false},
		{`SELECT name FROM users WHERE id = ?`, true},
		{`SELECT count(*) FROM posts p JOIN users u ON u.id = p.user_id WHERE u.id = ?`, true},
		{`SELECT p.title FROM posts p JOIN users u ON u.id = p.user_id WHERE u.id = ?`, false},
	} {
		all(t, ctx, r.db, c.query, 1)
		hits := r.policy.Stats().Hits
		all(t, ctx, r.db, c.query, 1)
		if got := r.policy.Stats().Hits > hits; got != c.cached {
			t.Errorf("%s: cached %v, want %v", c.query, got, c.cached)
		}
	}
	// Opting in caches any kind.
	in := qcache.Cache(ctx, qcache.CacheOptions{})
	all(t, in, r.db, `SELECT max(id) FROM posts WHERE user_id = ?`, 1)
	hits := r.policy.Stats().Hits
	all(t, in, r.db, `SELECT max(id) FROM posts WHERE user_id = ?`, 1)
	if r.policy.Stats().Hits == hits {
		t.Error("an aggregate read under Cache was not cached")
	}
}

func TestTablePolicyProfiles(t *testing.T) {
	t.Parallel()
	r := newReadEnv(t, nil, qcache.GranularOptions{})
	db, p := newTableReadEnv(t, r, qcache.TableOptions{Tables: map[string]qcache.TableProfile{"posts": {}}})
	ctx := context.Background()
	for range 2 {
		all(t, ctx, db, `SELECT title FROM posts WHERE user_id = ?`, 1)
		all(t, ctx, db, `SELECT name FROM users WHERE id = ?`, 1)
	}
	in := qcache.Cache(ctx, qcache.CacheOptions{})
	for range 2 {
		all(t, in, db, `SELECT name FROM users WHERE id = ?`, 1)
	}
	if got, want := p.Stats(), (qcache.Stats{Hits: 2, Misses: 2, Stored: 2, UncachedNotOptedIn: 2}); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
}

func TestProfileValidation(t *testing.T) {
	t.Parallel()
	store := must(memory.NewStore(memory.StoreOptions{}))
	t.Cleanup(func() { store.Close() })
	_, err := qcache.NewGranularPolicy(qcache.GranularOptions{Store: store, Dialect: qcache.SQLite,
		Tables: map[string]qcache.TableProfile{"posts": {TTL: -time.Second}}})
	if err == nil {
		t.Error("NewGranularPolicy accepted a negative profile TTL")
	}
	_, err = qcache.NewTablePolicy(qcache.TableOptions{Store: store, Reads: tableReads, Writes: tableWrites,
		Tables: map[string]qcache.TableProfile{"posts": {TTL: -time.Second}}})
	if err == nil {
		t.Error("NewTablePolicy accepted a negative profile TTL")
	}
	_, err = qcache.NewTablePolicy(qcache.TableOptions{Store: store, Reads: tableReads, Writes: tableWrites,
		Tables: map[string]qcache.TableProfile{"posts": {Ops: qcache.OpCount}}})
	if err == nil {
		t.Error("NewTablePolicy accepted a profile with Ops (it cannot classify reads)")
	}
}
