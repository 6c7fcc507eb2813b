package qcache_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/codec"
	"github.com/cachekit/cachekit/internal/dbtest"
	"github.com/cachekit/cachekit/internal/testserver"
	"github.com/cachekit/cachekit/memory"
	"github.com/cachekit/cachekit/qcache"
	"github.com/cachekit/cachekit/redis"
)

// asEnv is a SQLite database wrapped with a GranularPolicy over a memory
// store, and the same database unwrapped.
type asEnv struct {
	p     *qcache.GranularPolicy
	db    *sql.DB // wrapped
	plain *sql.DB
}

func newAsEnv(t *testing.T) *asEnv {
	t.Helper()
	store, err := memory.NewStore(memory.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return newAsEnvStore(t, store)
}

func newAsEnvStore(t *testing.T, store cachekit.Store) *asEnv {
	t.Helper()
	p, err := qcache.NewGranularPolicy(qcache.GranularOptions{Store: store, Dialect: qcache.SQLite})
	if err != nil {
		t.Fatal(err)
	}
	dsn := "file:" + filepath.Join(t.TempDir(), "db.sqlite") + "?_journal_mode=WAL&_busy_timeout=10000&_txlock=immediate"
	e := &asEnv{p: p}
	if e.db, err = qcache.Open("sqlite3", dsn, qcache.Options{
		Policy:  p,
		OnError: func(err error) { t.Errorf("OnError: %v", err) },
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.db.Close() })
	if e.plain, err = sql.Open("sqlite3", dsn); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.plain.Close() })
	for _, s := range []string{
		`CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER, title TEXT)`,
		`INSERT INTO posts (user_id, title) VALUES (1, 'a1'), (1, 'a2'), (2, 'b1'), (3, 'c1')`,
	} {
		if _, err := e.plain.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	return e
}

func (e *asEnv) exec(t *testing.T, query string, args ...any) {
	t.Helper()
	if _, err := e.db.Exec(query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// titles returns the titles of the posts of a user, read from db.
func titles(ctx context.Context, db *sql.DB, user int) ([]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT title FROM posts WHERE user_id = ? ORDER BY id`, user)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// countingFunc caches the titles of a user (read from the unwrapped
// database, so that only CachedAs caches them) with deps, counting the
// calls of the function per user.
type countingFunc struct {
	f    *qcache.Func[int, []string]
	runs sync.Map // user -> *atomic.Int64
}

func newCountingFunc(t *testing.T, e *asEnv, name string, deps func(int) []qcache.Dep) *countingFunc {
	t.Helper()
	c := &countingFunc{}
	f, err := qcache.CachedAs(e.p, name, deps, func(ctx context.Context, user int) ([]string, error) {
		n, _ := c.runs.LoadOrStore(user, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		return titles(ctx, e.plain, user)
	}, qcache.CachedAsOptions{OnError: func(err error) { t.Errorf("OnError: %v", err) }})
	if err != nil {
		t.Fatal(err)
	}
	c.f = f
	return c
}

func (c *countingFunc) count(user int) int64 {
	n, ok := c.runs.Load(user)
	if !ok {
		return 0
	}
	return n.(*atomic.Int64).Load()
}

// call calls the function for user, checks its value against the
// database and reports whether the function ran.
func (c *countingFunc) call(t *testing.T, e *asEnv, user int) (ran bool) {
	t.Helper()
	ctx := context.Background()
	before := c.count(user)
	got, err := c.f.Call(ctx, user)
	if err != nil {
		t.Fatalf("Call(%d): %v", user, err)
	}
	want, err := titles(ctx, e.plain, user)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Call(%d) = %q, want %q", user, got, want)
	}
	return c.count(user) != before
}

func (c *countingFunc) expect(t *testing.T, e *asEnv, user int, ran bool) {
	t.Helper()
	if got := c.call(t, e, user); got != ran {
		t.Fatalf("Call(%d): function ran = %v, want %v", user, got, ran)
	}
}

func byUser(user int) []qcache.Dep {
	return []qcache.Dep{qcache.SQL(`SELECT id FROM posts WHERE user_id = ?`, user)}
}

func TestCachedAsRunsOnce(t *testing.T) {
	t.Parallel()
	e := newAsEnv(t)
	c := newCountingFunc(t, e, "posts.Titles", byUser)
	c.expect(t, e, 1, true)
	c.expect(t, e, 1, false)
	c.expect(t, e, 1, false)
	c.expect(t, e, 2, true)
	c.expect(t, e, 2, false)
	if got := c.count(1); got != 1 {
		t.Fatalf("function ran %d times for user 1, want 1", got)
	}
}

func TestCachedAsRowInvalidation(t *testing.T) {
	t.Parallel()
	testRowInvalidation(t, newAsEnv(t))
}

// TestCachedAsRedis runs CachedAs over a Redis store, standalone and
// Cluster (where keys carry hash tags).
func TestCachedAsRedis(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		addrs func(testing.TB) []string
	}{
		{"standalone", func(t testing.TB) []string { return []string{testserver.Redis(t)} }},
		{"cluster", testserver.RedisCluster},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addrs := tc.addrs(t)
			s, err := redis.New(t.Context(), redis.Options{
				Addrs:   addrs,
				Prefix:  fmt.Sprintf("cachekit-test:qcache:%x:", rand.Uint64()),
				Timeout: 5 * time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Clear(context.Background()); s.Close() })
			e := newAsEnvStore(t, s)
			testRowInvalidation(t, e)
			testSeveralDeps(t, e)
			c := newCountingFunc(t, e, "posts.Titles", byUser)
			c.expect(t, e, 1, false)
			if err := c.f.Invalidate(context.Background(), 1); err != nil {
				t.Fatal(err)
			}
			c.expect(t, e, 1, true)
			whole := newCountingFunc(t, e, "posts.All", func(int) []qcache.Dep { return []qcache.Dep{qcache.Table("posts")} })
			whole.expect(t, e, 1, true)
			whole.expect(t, e, 1, false)
			e.exec(t, `UPDATE posts SET title = 'z' WHERE id = 4`)
			whole.expect(t, e, 1, true)
			c.expect(t, e, 1, false)
		})
	}
}

func testRowInvalidation(t *testing.T, e *asEnv) {
	t.Helper()
	c := newCountingFunc(t, e, "posts.Titles", byUser)
	for _, u := range []int{1, 2, 3} {
		c.expect(t, e, u, true)
	}

	e.exec(t, `UPDATE posts SET title = 'b1*' WHERE id = 3`) // user 2's post
	c.expect(t, e, 1, false)
	c.expect(t, e, 2, true) // and call checks the new title
	c.expect(t, e, 2, false)
	c.expect(t, e, 3, false)

	e.exec(t, `INSERT INTO posts (user_id, title) VALUES (?, ?)`, 1, "a3")
	c.expect(t, e, 1, true)
	c.expect(t, e, 2, false)

	e.exec(t, `UPDATE posts SET user_id = 3 WHERE id = ?`, 1) // moves from 1 to 3
	c.expect(t, e, 1, true)
	c.expect(t, e, 2, false)
	c.expect(t, e, 3, true)

	e.exec(t, `DELETE FROM posts WHERE user_id = ?`, 7) // matches no row
	c.expect(t, e, 1, false)
	c.expect(t, e, 2, false)
	c.expect(t, e, 3, false)
}

func TestCachedAsTableDep(t *testing.T) {
	t.Parallel()
	e := newAsEnv(t)
	c := newCountingFunc(t, e, "posts.All", func(int) []qcache.Dep { return []qcache.Dep{qcache.Table("Posts")} })
	// A query on another scheme makes the writes row-granular.
	other := newCountingFunc(t, e, "posts.Titles", byUser)
	other.expect(t, e, 1, true)
	c.expect(t, e, 1, true)
	c.expect(t, e, 1, false)

	e.exec(t, `UPDATE posts SET title = 'c1*' WHERE id = 4`) // user 3 only
	c.expect(t, e, 1, true)
	other.expect(t, e, 1, false)
	c.expect(t, e, 1, false)

	e.exec(t, `INSERT INTO posts (user_id, title) VALUES (9, 'z')`)
	c.expect(t, e, 1, true)
	other.expect(t, e, 1, false)
}

func TestCachedAsSeveralDeps(t *testing.T) {
	t.Parallel()
	testSeveralDeps(t, newAsEnv(t))
}

func testSeveralDeps(t *testing.T, e *asEnv) {
	t.Helper()
	if _, err := e.plain.Exec(`CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)`); err != nil {
		t.Fatal(err)
	}
	c := newCountingFunc(t, e, "posts.WithUser", func(user int) []qcache.Dep {
		return []qcache.Dep{
			qcache.SQL(`SELECT title FROM posts WHERE user_id = ?`, user),
			qcache.SQL(`SELECT name FROM users WHERE id = ?`, sql.Named("id", user)),
		}
	})
	c.expect(t, e, 1, true)
	c.expect(t, e, 2, true)
	// A named argument is not resolved: its condition is dropped, so any
	// write to users invalidates every user.
	e.exec(t, `INSERT INTO users (id, name) VALUES (5, 'e')`)
	c.expect(t, e, 1, true)
	c.expect(t, e, 2, true)
	e.exec(t, `UPDATE posts SET title = 'x' WHERE user_id = 2`)
	c.expect(t, e, 1, false)
	c.expect(t, e, 2, true)
}

func TestCachedAsInvalidDep(t *testing.T) {
	t.Parallel()
	e := newAsEnv(t)
	for _, d := range []qcache.Dep{
		qcache.SQL(`UPDATE posts SET title = 'x' WHERE user_id = ?`, 1),
		qcache.SQL(`SELECT FROM WHERE`),
		qcache.SQL(`SELECT id FROM posts WHERE user_id = ? FOR UPDATE`, 1),
		qcache.SQL(`SELECT id FROM posts WHERE user_id = random()`),
		qcache.Table(""),
	} {
		t.Run(d.String(), func(t *testing.T) {
			c := newCountingFunc(t, e, "invalid", func(int) []qcache.Dep { return []qcache.Dep{qcache.Table("posts"), d} })
			_, err := c.f.Call(context.Background(), 1)
			t.Logf("Call: %v", err)
			if !errors.Is(err, qcache.ErrInvalidDep) {
				t.Fatalf("Call: %v, want ErrInvalidDep", err)
			}
			if n := c.count(1); n != 0 {
				t.Fatalf("function ran %d times", n)
			}
		})
	}
}

func TestCachedAsFunctionError(t *testing.T) {
	t.Parallel()
	e := newAsEnv(t)
	errBoom := errors.New("boom")
	var runs atomic.Int64
	f, err := qcache.CachedAs(e.p, "boom", byUser, func(ctx context.Context, user int) (int, error) {
		if runs.Add(1) == 1 {
			return 0, errBoom
		}
		if runs.Load() == 2 {
			panic("kaput")
		}
		return user * 10, nil
	}, qcache.CachedAsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := f.Call(ctx, 1); !errors.Is(err, errBoom) {
		t.Fatalf("first Call: %v, want %v", err, errBoom)
	}
	if _, err := f.Call(ctx, 1); err == nil {
		t.Fatal("second Call (panicking): no error")
	}
	for range 2 {
		if v, err := f.Call(ctx, 1); err != nil || v != 10 {
			t.Fatalf("Call = %v, %v; want 10, nil", v, err)
		}
	}
	if got := runs.Load(); got != 3 {
		t.Fatalf("function ran %d times, want 3 (errors are not cached)", got)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// A value computed while a write changes its dependencies is returned to
// its caller but not stored.
func TestCachedAsWriteDuringCall(t *testing.T) {
	t.Parallel()
	e := newAsEnv(t)
	var runs atomic.Int64
	f, err := qcache.CachedAs(e.p, "racy", byUser, func(ctx context.Context, user int) ([]string, error) {
		v, err := titles(ctx, e.plain, user)
		if runs.Add(1) == 1 {
			// A write lands after the function read the database: the
			// value it returns is already stale.
			e.exec(t, `UPDATE posts SET title = 'a1*' WHERE id = 1`)
		}
		return v, err
	}, qcache.CachedAsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, want := range [][]string{{"a1", "a2"}, {"a1*", "a2"}, {"a1*", "a2"}} {
		got, err := f.Call(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("call %d = %q, want %q", i, got, want)
		}
	}
	if n := runs.Load(); n != 2 {
		t.Fatalf("function ran %d times, want 2", n)
	}
}

// Invalidate while the value is being computed: the value is returned to
// its caller but not stored.
func TestCachedAsInvalidateDuringCall(t *testing.T) {
	t.Parallel()
	e := newAsEnv(t)
	var (
		runs atomic.Int64
		f    *qcache.Func[int, int64]
	)
	f, err := qcache.CachedAs(e.p, "n", byUser, func(ctx context.Context, user int) (int64, error) {
		n := runs.Add(1)
		if n == 1 {
			if err := f.Invalidate(ctx, user); err != nil {
				return 0, err
			}
		}
		return n, nil
	}, qcache.CachedAsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []int64{1, 2, 2} {
		got, err := f.Call(context.Background(), 1)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("call %d = %d, want %d", i, got, want)
		}
	}
}

func TestCachedAsKeyAndInvalidate(t *testing.T) {
	t.Parallel()
	e := newAsEnv(t)
	c := newCountingFunc(t, e, "posts.Titles", byUser)
	key, err := c.f.Key(5)
	if err != nil {
		t.Fatal(err)
	}
	if want := "qc:q:f:posts.Titles(5)"; key != want {
		t.Fatalf("Key(5) = %q, want %q", key, want)
	}
	c.expect(t, e, 1, true)
	c.expect(t, e, 2, true)
	if err := c.f.Invalidate(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	c.expect(t, e, 1, true)
	c.expect(t, e, 2, false)
}

// The function runs once for concurrent callers that read the same stamps,
// and again for a caller that comes after an invalidation, even while the
// first computation is still running.
func TestCachedAsCoalesces(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		store, err := memory.NewStore(memory.StoreOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		p, err := qcache.NewGranularPolicy(qcache.GranularOptions{Store: store, Dialect: qcache.SQLite})
		if err != nil {
			t.Fatal(err)
		}
		var runs atomic.Int64
		release := make(chan struct{})
		f, err := qcache.CachedAs(p, "count", func(struct{}) []qcache.Dep {
			return []qcache.Dep{qcache.Table("posts")}
		}, func(ctx context.Context, _ struct{}) (int64, error) {
			n := runs.Add(1)
			<-release
			return n, nil
		}, qcache.CachedAsOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		var (
			wg  sync.WaitGroup
			mu  sync.Mutex
			got []int64
		)
		call := func() {
			wg.Go(func() {
				v, err := f.Call(ctx, struct{}{})
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				got = append(got, v)
				mu.Unlock()
			})
		}
		for range 5 {
			call()
		}
		synctest.Wait() // every caller waits for the one computation
		if n := runs.Load(); n != 1 {
			t.Fatalf("function running %d times, want 1", n)
		}
		if err := p.InvalidateTables(ctx, "posts"); err != nil {
			t.Fatal(err)
		}
		call()
		synctest.Wait()
		if n := runs.Load(); n != 2 {
			t.Fatalf("after the invalidation: function running %d times, want 2", n)
		}
		close(release)
		wg.Wait()
		slices.Sort(got)
		if want := []int64{1, 1, 1, 1, 1, 2}; !slices.Equal(got, want) {
			t.Fatalf("values %v, want %v", got, want)
		}
		// The first value was not stored (the invalidation ran while it was
		// computed); the second was.
		v, err := f.Call(ctx, struct{}{})
		if err != nil || v != 2 {
			t.Fatalf("Call after both = %d, %v; want the stored 2", v, err)
		}
		if n := runs.Load(); n != 2 {
			t.Fatalf("function ran %d times, want 2", n)
		}
	})
}

// TestCachedAsPostgres runs CachedAs over PostgreSQL, in a schema of its
// own on the shared server.
func TestCachedAsPostgres(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p, db := newPGAsDB(t)

	var runs atomic.Int64
	count := func(ctx context.Context, user int) (n int, err error) {
		runs.Add(1)
		// Through the wrapper under Bypass: only CachedAs caches.
		err = db.QueryRowContext(qcache.Bypass(ctx), `SELECT count(*) FROM posts WHERE user_id = $1`, user).Scan(&n)
		return n, err
	}
	byUser, err := qcache.CachedAs(p, "posts.CountByUser", func(user int) []qcache.Dep {
		return []qcache.Dep{qcache.SQL(`SELECT id FROM posts WHERE user_id = $1`, user)}
	}, count, qcache.CachedAsOptions{Codec: codec.JSON})
	if err != nil {
		t.Fatal(err)
	}
	whole, err := qcache.CachedAs(p, "posts.Count", func(int) []qcache.Dep {
		return []qcache.Dep{qcache.Table("posts")}
	}, count, qcache.CachedAsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	expect := func(f *qcache.Func[int, int], user, want int, ran bool) {
		t.Helper()
		before := runs.Load()
		got, err := f.Call(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("Call(%d) = %d, want %d", user, got, want)
		}
		if r := runs.Load() != before; r != ran {
			t.Fatalf("Call(%d): function ran = %v, want %v", user, r, ran)
		}
	}
	expect(byUser, 1, 2, true)
	expect(byUser, 1, 2, false)
	expect(whole, 1, 2, true)
	expect(whole, 1, 2, false)
	if _, err := db.Exec(`INSERT INTO posts (user_id, title) VALUES ($1, 'a3')`, 1); err != nil {
		t.Fatal(err)
	}
	expect(byUser, 1, 3, true)
	expect(byUser, 1, 3, false)
	expect(whole, 1, 3, true)
	if _, err := db.Exec(`UPDATE posts SET title = 'b1*' WHERE user_id = 2`); err != nil {
		t.Fatal(err)
	}
	expect(whole, 1, 3, true)
	for _, d := range []qcache.Dep{
		qcache.SQL(`DELETE FROM posts WHERE id = $1`, 1),
		qcache.SQL(`SELECT id FROM posts WHERE user_id = $1 FOR UPDATE`, 1),
	} {
		f, err := qcache.CachedAs(p, "invalid", func(int) []qcache.Dep { return []qcache.Dep{d} }, count, qcache.CachedAsOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Call(ctx, 1); !errors.Is(err, qcache.ErrInvalidDep) {
			t.Fatalf("%v: Call: %v, want ErrInvalidDep", d, err)
		}
	}
}

// newPGAsDB opens a PostgreSQL database wrapped with a GranularPolicy over
// a memory store, in a schema of its own (dropped in t.Cleanup) holding a
// table posts.
func newPGAsDB(t *testing.T) (*qcache.GranularPolicy, *sql.DB) {
	t.Helper()
	_, connector := dbtest.PostgresSchema(t, testserver.Postgres(t))
	store, err := memory.NewStore(memory.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	p, err := qcache.NewGranularPolicy(qcache.GranularOptions{Store: store, Dialect: qcache.Postgres})
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(qcache.Wrap(connector(), qcache.Options{
		Policy:  p,
		OnError: func(err error) { t.Errorf("OnError: %v", err) },
	}))
	t.Cleanup(func() { db.Close() })
	for _, s := range []string{
		`CREATE TABLE posts (id serial PRIMARY KEY, user_id int, title text)`,
		`INSERT INTO posts (user_id, title) VALUES (1, 'a1'), (1, 'a2'), (2, 'b1')`,
	} {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	return p, db
}
