package pgfeed_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/internal/dbtest"
	"github.com/cachekit/cachekit/internal/testserver"
	"github.com/cachekit/cachekit/memory"
	"github.com/cachekit/cachekit/qcache"
	"github.com/cachekit/cachekit/qcache/pgfeed"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// waitLimit bounds every wait for the feeder: a safety net against a hang,
// never part of what a test asserts.
const waitLimit = 30 * time.Second

type env struct {
	dsn    string
	schema string
	slot   string
	admin  *sql.DB // no search_path: catalog queries, slot management
	plain  *sql.DB // unwrapped, search_path = schema
	db     *sql.DB // wrapped, search_path = schema
	policy *qcache.GranularPolicy
	feeder *pgfeed.Feeder

	mu   sync.Mutex // protects errs
	errs []error    // from the feeder's OnError
	errc chan error // the same, while there is room

	// observer, when set, receives the policy's events.
	observer atomic.Pointer[func(qcache.Event)]
}

// newEnv creates a schema of its own, runs setup in it and opens a wrapped
// database (GranularPolicy over a memory store) and an unwrapped one; with
// opts not nil it also starts a feeder with a slot and a publication of its
// own for tables (all dropped in t.Cleanup) and waits until it streams.
func newEnv(t *testing.T, opts *pgfeed.Options, tables []string, setup ...string) *env {
	t.Helper()
	return newEnvStore(t, nil, opts, tables, setup...)
}

// newEnvStore is newEnv with the policy's memory store wrapped by wrap.
func newEnvStore(t *testing.T, wrap func(cachekit.Store) cachekit.Store, opts *pgfeed.Options, tables []string, setup ...string) *env {
	t.Helper()
	dsn := testserver.Postgres(t)
	// The schema is dropped after the slot and the publication (cleanups
	// run last-in, first-out).
	name, connector := dbtest.PostgresSchema(t, dsn)
	e := &env{dsn: dsn, schema: name, slot: name, errc: make(chan error, 100)}
	var err error
	if e.admin, err = sql.Open("pgx", dsn); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.admin.Close() })
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		// The slot first: a leftover persistent slot retains WAL forever.
		if err := pgfeed.DropSlot(ctx, dsn, e.slot); err != nil {
			t.Errorf("drop slot: %v", err)
		}
		if _, err := e.admin.ExecContext(ctx, `DROP PUBLICATION IF EXISTS `+name); err != nil {
			t.Errorf("drop publication: %v", err)
		}
	})
	e.plain = sql.OpenDB(connector())
	t.Cleanup(func() { e.plain.Close() })
	for _, s := range setup {
		if _, err := e.plain.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	store, err := memory.NewStore(memory.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	var st cachekit.Store = store
	if wrap != nil {
		st = wrap(store)
	}
	e.policy, err = qcache.NewGranularPolicy(qcache.GranularOptions{
		Store: st, Dialect: qcache.Postgres,
		Observer: qcache.ObserverFunc(func(ev qcache.Event) {
			if f := e.observer.Load(); f != nil {
				(*f)(ev)
			}
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.db = sql.OpenDB(qcache.Wrap(connector(), qcache.Options{
		Policy:  e.policy,
		OnError: func(err error) { t.Errorf("qcache OnError: %v", err) },
	}))
	t.Cleanup(func() { e.db.Close() })
	if opts != nil {
		e.start(t, *opts, tables)
	}
	return e
}

// start starts the feeder (closed in t.Cleanup, before the slot is
// dropped) and waits until it has caught up.
func (e *env) start(t *testing.T, opts pgfeed.Options, tables []string) {
	t.Helper()
	opts.DSN, opts.Policy, opts.Slot = e.dsn, e.policy, e.slot
	opts.SearchPath = []string{e.schema}
	opts.Tables = tables
	opts.OnError = func(err error) {
		t.Logf("feeder OnError: %v", err)
		select {
		case e.errc <- err:
		default:
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		e.errs = append(e.errs, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	f, err := pgfeed.New(ctx, opts)
	if err != nil {
		t.Fatalf("pgfeed.New: %v", err)
	}
	e.feeder = f
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if err := f.WaitCaughtUp(ctx); err != nil {
		t.Fatalf("WaitCaughtUp: %v", err)
	}
}

func (e *env) errors() []error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.errs)
}

// write runs statements in one transaction on the plain connection and
// waits until the feeder has applied the commit.
func (e *env) write(t *testing.T, stmts ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	tx, err := e.plain.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			tx.Rollback()
			t.Fatalf("%s: %v", s, err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	lsn, err := pgfeed.CurrentLSN(ctx, e.plain)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.feeder.WaitLSN(ctx, lsn); err != nil {
		t.Fatalf("WaitLSN(%s): %v", lsn, err)
	}
}

// read runs query through the wrapper, checks its result against the
// unwrapped database and reports whether it was served from the cache.
func (e *env) read(t *testing.T, query string, args ...any) (cached bool) {
	t.Helper()
	before := e.policy.Stats().Hits
	got := rows(t, e.db, query, args...)
	cached = e.policy.Stats().Hits > before
	want := rows(t, e.plain, query, args...)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s %v:\n got %v\nwant %v (cached %v)", query, args, got, want, cached)
	}
	return cached
}

func rows(t *testing.T, db *sql.DB, query string, args ...any) [][]any {
	t.Helper()
	rs, err := db.Query(query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rs.Close()
	cols, err := rs.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]any
	for rs.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out = append(out, vals)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

var setup = []string{
	`CREATE TABLE users (id int PRIMARY KEY, name text)`,
	`CREATE TABLE posts (id int PRIMARY KEY, user_id int8, status text, n int)`,
	`CREATE TABLE comments (id int PRIMARY KEY, post_id int REFERENCES posts ON DELETE CASCADE, body text)`,
	`CREATE TABLE audit (id serial PRIMARY KEY, post_id int, old_status text, new_status text)`,
	`CREATE FUNCTION audit_posts() RETURNS trigger LANGUAGE plpgsql AS $$
	 BEGIN INSERT INTO audit (post_id, old_status, new_status) VALUES (NEW.id, OLD.status, NEW.status); RETURN NEW; END $$`,
	`CREATE TRIGGER posts_audit AFTER UPDATE OF status ON posts FOR EACH ROW EXECUTE FUNCTION audit_posts()`,
	`INSERT INTO users VALUES (1, 'one'), (2, 'two'), (3, 'three')`,
	`INSERT INTO posts SELECT i, 1 + i % 3, 'new', i FROM generate_series(1, 300) i`,
	`INSERT INTO comments SELECT i, 1 + i % 10, 'c' || i FROM generate_series(1, 50) i`,
}

var tables = []string{"users", "posts", "comments", "audit"}

type query struct {
	sql  string
	args []any
}

var (
	qUser1Posts = query{`SELECT id, status FROM posts WHERE user_id = $1 ORDER BY id`, []any{int64(1)}}
	qUser2Posts = query{`SELECT id, status, n FROM posts WHERE user_id = $1 ORDER BY id`, []any{int64(2)}}
	qUser0Posts = query{`SELECT id, status, n FROM posts WHERE user_id = $1 ORDER BY id`, []any{int64(0)}}
	qPost3      = query{`SELECT status, n FROM posts WHERE id = $1`, []any{int64(3)}}
	qUser1      = query{`SELECT name FROM users WHERE id = $1`, []any{int64(1)}}
	qAudit3     = query{`SELECT count(*) FROM audit WHERE post_id = $1`, []any{int64(3)}}
	qAudit4     = query{`SELECT count(*) FROM audit WHERE post_id = $1`, []any{int64(4)}}
	qComments2  = query{`SELECT id, body FROM comments WHERE post_id = $1 ORDER BY id`, []any{int64(2)}}
	qComments5  = query{`SELECT id, body FROM comments WHERE post_id = $1 ORDER BY id`, []any{int64(5)}}
	allQueries  = []query{qUser1Posts, qUser2Posts, qUser0Posts, qPost3, qUser1, qAudit3, qAudit4, qComments2, qComments5}
)

// TestPlainWrites writes through an unwrapped connection (raw SQL, a
// trigger, a mass UPDATE, a cascade, TRUNCATE) and checks that exactly the
// cached queries the changed rows affect are invalidated.
func TestPlainWrites(t *testing.T) {
	e := newEnv(t, &pgfeed.Options{EnforceReplicaIdentity: true}, tables, setup...)
	steps := []struct {
		name        string
		stmts       []string
		invalidated []query
	}{
		// Post 3 belongs to user 1; the trigger inserts an audit row of post 3.
		{"update with trigger", []string{`UPDATE posts SET status = 'done' WHERE id = 3`},
			[]query{qUser1Posts, qPost3, qAudit3}},
		{"mass update", []string{`UPDATE posts SET n = n + 1 WHERE user_id = 2`},
			[]query{qUser2Posts}},
		{"move rows", []string{`UPDATE posts SET user_id = 0 WHERE id IN (4, 7)`},
			[]query{qUser0Posts, qUser2Posts}},
		// Post 5 (of user 3, not cached) and its comments go.
		{"delete with cascade", []string{`DELETE FROM posts WHERE id = 5`},
			[]query{qComments5}},
		{"insert", []string{`INSERT INTO posts VALUES (1000, 0, 'new', 0)`},
			[]query{qUser0Posts}},
		{"two tables in one transaction", []string{
			`UPDATE users SET name = 'uno' WHERE id = 1`, `INSERT INTO comments VALUES (1000, 2, 'hi')`},
			[]query{qUser1, qComments2}},
		{"truncate", []string{`TRUNCATE audit`}, []query{qAudit3, qAudit4}},
		// Post 5 has no comments left: its query stays cached.
		{"delete all", []string{`DELETE FROM comments`}, []query{qComments2}},
	}
	for _, q := range allQueries {
		e.read(t, q.sql, q.args...)
	}
	for _, st := range steps {
		for _, q := range allQueries {
			if !e.read(t, q.sql, q.args...) {
				t.Fatalf("before %s: %s %v not cached", st.name, q.sql, q.args)
			}
		}
		e.write(t, st.stmts...)
		for _, q := range allQueries {
			want := !slices.ContainsFunc(st.invalidated, func(i query) bool { return reflect.DeepEqual(i, q) })
			if got := e.read(t, q.sql, q.args...); got != want {
				t.Errorf("after %s: %s %v cached = %v; want %v", st.name, q.sql, q.args, got, want)
			}
		}
	}
	if errs := e.errors(); len(errs) != 0 {
		t.Errorf("feeder errors: %v", errs)
	}
	if got := e.policy.Stats().InvalidatedGlobal; got != 1 {
		t.Errorf("global invalidations = %d; want 1 (the start)", got)
	}
}

// TestOtherProcess: a raw-SQL mass UPDATE run by a real second process
// (this test binary again) invalidates exactly the cached queries it
// affects, once the feeder has applied the child's commit LSN.
func TestOtherProcess(t *testing.T) {
	if spec := os.Getenv("PGFEED_CHILD"); spec != "" {
		dsn, schema, _ := strings.Cut(spec, "\t")
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			t.Fatal(err)
		}
		cfg.RuntimeParams["search_path"] = schema
		db := sql.OpenDB(stdlib.GetConnector(*cfg))
		defer db.Close()
		ctx := context.Background()
		if _, err := db.ExecContext(ctx, `UPDATE posts SET n = n + 1 WHERE user_id = 2`); err != nil {
			t.Fatal(err)
		}
		lsn, err := pgfeed.CurrentLSN(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("LSN %s\n", lsn)
		return
	}
	e := newEnv(t, &pgfeed.Options{EnforceReplicaIdentity: true}, tables, setup...)
	for _, q := range allQueries {
		e.read(t, q.sql, q.args...)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestOtherProcess$", "-test.v")
	cmd.Env = append(os.Environ(), "PGFEED_CHILD="+e.dsn+"\t"+e.schema)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var lsn pgfeed.LSN
	for line := range strings.Lines(string(out)) {
		if s, ok := strings.CutPrefix(strings.TrimSpace(line), "LSN "); ok {
			if lsn, err = pgfeed.ParseLSN(s); err != nil {
				t.Fatal(err)
			}
		}
	}
	if lsn == 0 {
		t.Fatalf("no LSN in the child's output:\n%s", out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := e.feeder.WaitLSN(ctx, lsn); err != nil {
		t.Fatalf("WaitLSN(%s): %v", lsn, err)
	}
	for _, q := range allQueries {
		want := !reflect.DeepEqual(q, qUser2Posts)
		if got := e.read(t, q.sql, q.args...); got != want {
			t.Errorf("after the other process's UPDATE: %s %v cached = %v; want %v", q.sql, q.args, got, want)
		}
	}
	if errs := e.errors(); len(errs) != 0 {
		t.Errorf("feeder errors: %v", errs)
	}
}

// TestDroppedSlot drops the slot under the running feeder: it reconnects,
// creates the slot again, bumps the global epoch and keeps the cache
// consistent, also for writes made while it had no slot.
func TestDroppedSlot(t *testing.T) {
	e := newEnv(t, &pgfeed.Options{EnforceReplicaIdentity: true}, tables, setup...)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	for _, q := range allQueries {
		e.read(t, q.sql, q.args...)
	}
	globals := e.policy.Stats().InvalidatedGlobal
	for {
		if _, err := e.admin.ExecContext(ctx, `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active`, e.slot); err != nil {
			t.Fatal(err)
		}
		_, err := e.admin.ExecContext(ctx, `SELECT pg_drop_replication_slot($1)`, e.slot)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("drop slot: %v", err)
		}
		// In use again (the feeder reconnected) or not yet released.
	}
	// Written while the feeder may have no slot: only the epoch bump on
	// the slot's creation covers these.
	if _, err := e.plain.ExecContext(ctx, `UPDATE posts SET status = 'gap' WHERE user_id = 1`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.plain.ExecContext(ctx, `DELETE FROM comments WHERE post_id = 2`); err != nil {
		t.Fatal(err)
	}
	if err := e.feeder.WaitCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	for _, q := range allQueries {
		e.read(t, q.sql, q.args...) // compares with the database
	}
	var n int
	if err := e.admin.QueryRowContext(ctx, `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1 AND NOT temporary`, e.slot).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("persistent slots named %s: %d; want 1 (created again)", e.slot, n)
	}
	if got := e.policy.Stats().InvalidatedGlobal; got <= globals {
		t.Errorf("global invalidations = %d after the slot was dropped; want more than %d", got, globals)
	}
	if len(e.errors()) == 0 {
		t.Errorf("no error reported for the lost connection")
	}
	// And it streams again.
	e.write(t, `UPDATE posts SET status = 'after' WHERE id = 3`)
	for _, q := range allQueries {
		e.read(t, q.sql, q.args...)
	}
}

// TestReplicaIdentity checks that tables without REPLICA IDENTITY FULL are
// reported (and stay correct, invalidated coarsely) or enforced.
func TestReplicaIdentity(t *testing.T) {
	identity := func(t *testing.T, e *env, table string) string {
		var s string
		err := e.admin.QueryRow(`SELECT relreplident::text FROM pg_class WHERE oid = $1::regclass`, e.schema+"."+table).Scan(&s)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	t.Run("reported", func(t *testing.T) {
		e := newEnv(t, nil, nil, setup...)
		if _, err := e.plain.Exec(`ALTER TABLE audit REPLICA IDENTITY FULL`); err != nil {
			t.Fatal(err)
		}
		e.start(t, pgfeed.Options{}, tables)
		var idErr *pgfeed.IdentityError
		errs := e.errors()
		if len(errs) != 1 || !errors.As(errs[0], &idErr) || !errors.Is(errs[0], pgfeed.ErrReplicaIdentity) {
			t.Fatalf("errors = %v; want one *IdentityError", errs)
		}
		if want := []string{"users", "posts", "comments"}; !reflect.DeepEqual(idErr.Tables, want) {
			t.Errorf("IdentityError.Tables = %v; want %v", idErr.Tables, want)
		}
		if got := identity(t, e, "posts"); got != "d" {
			t.Errorf("replica identity of posts = %q; want unchanged %q", got, "d")
		}
		// The old image has the key only: coarse, but never stale.
		for _, q := range allQueries {
			e.read(t, q.sql, q.args...)
		}
		e.write(t, `UPDATE posts SET user_id = 2 WHERE id = 3`, `DELETE FROM comments WHERE id = 2`)
		for _, q := range []query{qUser1Posts, qUser2Posts, qComments2} {
			if e.read(t, q.sql, q.args...) {
				t.Errorf("%s %v served from the cache after a write of its rows", q.sql, q.args)
			}
		}
		if e.read(t, qUser1.sql, qUser1.args...) != true {
			t.Errorf("%s %v not cached; want cached (users not written)", qUser1.sql, qUser1.args)
		}
	})
	t.Run("enforced", func(t *testing.T) {
		e := newEnv(t, &pgfeed.Options{EnforceReplicaIdentity: true}, tables, setup...)
		for _, tb := range tables {
			if got := identity(t, e, tb); got != "f" {
				t.Errorf("replica identity of %s = %q; want %q", tb, got, "f")
			}
		}
		if errs := e.errors(); len(errs) != 0 {
			t.Errorf("errors = %v; want none", errs)
		}
	})
	t.Run("unpublished table", func(t *testing.T) {
		e := newEnv(t, nil, nil, setup...)
		if _, err := e.admin.Exec(`CREATE PUBLICATION ` + e.slot + ` FOR TABLE ` + e.schema + `.users`); err != nil {
			t.Fatal(err)
		}
		_, err := pgfeed.New(context.Background(), pgfeed.Options{
			DSN: e.dsn, Policy: e.policy, Slot: e.slot, SearchPath: []string{e.schema}, Tables: []string{"users", "posts"},
		})
		if err == nil {
			t.Fatal("New with a cached table the publication lacks: no error")
		}
		t.Logf("New: %v", err)
	})
	t.Run("missing table", func(t *testing.T) {
		e := newEnv(t, nil, nil, setup...)
		_, err := pgfeed.New(context.Background(), pgfeed.Options{
			DSN: e.dsn, Policy: e.policy, Slot: e.slot, SearchPath: []string{e.schema}, Tables: []string{"nope"},
		})
		if err == nil {
			t.Fatal("New with a missing table: no error")
		}
	})
}

// TestClose checks that Close stops the goroutine and may be called
// twice: WaitLSN then fails with cachekit.ErrClosed instead of waiting.
func TestClose(t *testing.T) {
	e := newEnv(t, &pgfeed.Options{EnforceReplicaIdentity: true}, tables, setup...)
	if err := e.feeder.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := e.feeder.WaitLSN(ctx, e.feeder.Applied()+1); !errors.Is(err, cachekit.ErrClosed) {
		t.Errorf("WaitLSN after Close = %v; want cachekit.ErrClosed", err)
	}
	if e.feeder.Streaming() {
		t.Errorf("Streaming() = true after Close")
	}
	// The slot was released: it can be dropped (t.Cleanup does).
}

// TestWaitLSNPastOpenTransaction waits for a position that WAL of a
// transaction still open lies before: that WAL is not flushed by anything
// the test does, so WaitLSN must flush it itself to return.
func TestWaitLSNPastOpenTransaction(t *testing.T) {
	e := newEnv(t, &pgfeed.Options{EnforceReplicaIdentity: true}, tables, setup...)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	e.read(t, qUser1.sql, qUser1.args...)
	if _, err := e.plain.ExecContext(ctx, `UPDATE users SET name = 'uno' WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	open, err := e.plain.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Rollback()
	if _, err := open.ExecContext(ctx, `INSERT INTO audit (post_id) VALUES (999)`); err != nil {
		t.Fatal(err)
	}
	lsn, err := pgfeed.CurrentLSN(ctx, e.plain)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := e.feeder.WaitLSN(ctx, lsn); err != nil {
		t.Fatalf("WaitLSN(%s): %v", lsn, err)
	}
	t.Logf("WaitLSN(%s) past an open transaction's WAL took %v", lsn, time.Since(start))
	if e.read(t, qUser1.sql, qUser1.args...) {
		t.Errorf("%s %v served from the cache after WaitLSN; want invalidated", qUser1.sql, qUser1.args)
	}
}

// TestStandBy starts a second feeder on the slot of a running one: it
// waits as a stand-by (ErrSlotInUse) and takes over once the first closes.
func TestStandBy(t *testing.T) {
	e := newEnv(t, &pgfeed.Options{EnforceReplicaIdentity: true}, tables, setup...)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	inUse := make(chan struct{}, 1)
	b, err := pgfeed.New(ctx, pgfeed.Options{
		DSN: e.dsn, Policy: e.policy, Slot: e.slot, SearchPath: []string{e.schema}, Tables: tables,
		MaxBackoff: 200 * time.Millisecond,
		OnError: func(err error) {
			t.Logf("stand-by OnError: %v", err)
			if errors.Is(err, pgfeed.ErrSlotInUse) {
				select {
				case inUse <- struct{}{}:
				default:
				}
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	select {
	case <-inUse:
	case <-ctx.Done():
		t.Fatal("the stand-by reported no ErrSlotInUse")
	}
	if b.Streaming() {
		t.Errorf("stand-by Streaming() = true while the slot is in use")
	}
	if got := e.policy.Stats().InvalidatedGlobal; got != 1 {
		t.Errorf("global invalidations = %d with a stand-by waiting; want 1 (the first feeder's start)", got)
	}
	if err := e.feeder.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitCaughtUp(ctx); err != nil {
		t.Fatalf("stand-by WaitCaughtUp: %v", err)
	}
	e.feeder = b
	e.read(t, qUser1.sql, qUser1.args...)
	e.write(t, `UPDATE users SET name = 'uno' WHERE id = 1`)
	if e.read(t, qUser1.sql, qUser1.args...) {
		t.Errorf("%s %v served from the cache after the write; want invalidated by the stand-by", qUser1.sql, qUser1.args)
	}
}

var errStoreDown = errors.New("test store down")

// failStore is a real store whose writes fail while fail is set.
type failStore struct {
	cachekit.Store
	fail atomic.Bool
}

func (s *failStore) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	if s.fail.Load() {
		return errStoreDown
	}
	return s.Store.Set(ctx, key, val, ttl)
}

func (s *failStore) Delete(ctx context.Context, keys ...string) (int, error) {
	if s.fail.Load() {
		return 0, errStoreDown
	}
	return s.Store.Delete(ctx, keys...)
}

// TestFailedInvalidation makes the store fail while a plain write is
// streamed: the commit is not applied (nor acknowledged), and once the
// store is back the feeder reconnects and invalidates it.
func TestFailedInvalidation(t *testing.T) {
	fs := &failStore{}
	e := newEnvStore(t, func(s cachekit.Store) cachekit.Store { fs.Store = s; return fs },
		&pgfeed.Options{EnforceReplicaIdentity: true, MaxBackoff: 200 * time.Millisecond}, tables, setup...)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	e.read(t, qUser1.sql, qUser1.args...)
	if !e.read(t, qUser1.sql, qUser1.args...) {
		t.Fatalf("%s %v not cached", qUser1.sql, qUser1.args)
	}
	fs.fail.Store(true)
	if _, err := e.plain.ExecContext(ctx, `UPDATE users SET name = 'uno' WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	lsn, err := pgfeed.CurrentLSN(ctx, e.plain)
	if err != nil {
		t.Fatal(err)
	}
	for failed := false; !failed; {
		select {
		case err := <-e.errc:
			failed = errors.Is(err, errStoreDown)
		case <-ctx.Done():
			t.Fatal("no invalidation error reported")
		}
	}
	if got := e.feeder.Applied(); got >= lsn {
		t.Errorf("Applied() = %s with the store down; want below the write's %s", got, lsn)
	}
	fs.fail.Store(false)
	if err := e.feeder.WaitLSN(ctx, lsn); err != nil {
		t.Fatalf("WaitLSN: %v", err)
	}
	if e.read(t, qUser1.sql, qUser1.args...) {
		t.Errorf("%s %v served from the cache after the write; want invalidated", qUser1.sql, qUser1.args)
	}
}

// TestPartitioned writes to a partition, directly and through its parent:
// the changes arrive under the partitioned table's name, which the cached
// queries read.
func TestPartitioned(t *testing.T) {
	e := newEnv(t, &pgfeed.Options{EnforceReplicaIdentity: true}, []string{"events"},
		`CREATE TABLE events (id int, kind text, n int) PARTITION BY LIST (kind)`,
		`CREATE TABLE events_a PARTITION OF events FOR VALUES IN ('a')`,
		`CREATE TABLE events_b PARTITION OF events FOR VALUES IN ('b')`,
		`INSERT INTO events VALUES (1, 'a', 1), (2, 'b', 2)`,
	)
	for _, p := range []string{"events", "events_a", "events_b"} {
		var ident string
		if err := e.admin.QueryRow(`SELECT relreplident::text FROM pg_class WHERE oid = $1::regclass`, e.schema+"."+p).Scan(&ident); err != nil {
			t.Fatal(err)
		}
		if ident != "f" {
			t.Errorf("replica identity of partition %s = %q; want %q (enforced)", p, ident, "f")
		}
	}
	qa := query{`SELECT id, n FROM events WHERE kind = $1 ORDER BY id`, []any{"a"}}
	qb := query{`SELECT id, n FROM events WHERE kind = $1 ORDER BY id`, []any{"b"}}
	for _, st := range []struct {
		stmt        string
		invalidated query
	}{
		{`INSERT INTO events VALUES (3, 'a', 3)`, qa},
		{`UPDATE events_b SET n = 20 WHERE id = 2`, qb},
		{`DELETE FROM events_a WHERE id = 1`, qa},
	} {
		e.read(t, qa.sql, qa.args...)
		e.read(t, qb.sql, qb.args...)
		e.write(t, st.stmt)
		for _, q := range []query{qa, qb} {
			if got, want := e.read(t, q.sql, q.args...), !reflect.DeepEqual(q, st.invalidated); got != want {
				t.Errorf("after %s: %s %v cached = %v; want %v", st.stmt, q.sql, q.args, got, want)
			}
		}
	}
}
