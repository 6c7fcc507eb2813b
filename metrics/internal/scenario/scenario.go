// Package scenario drives real caches through the metrics adapters for
// their tests, so that the Prometheus and OpenTelemetry modules check the
// same events against their own expected output. Each function documents
// the events it causes.
package scenario

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3" // the qcache scenario's database

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/cachetest"
	"github.com/cachekit/cachekit/memo"
	"github.com/cachekit/cachekit/memory"
	"github.com/cachekit/cachekit/metrics"
	"github.com/cachekit/cachekit/metrics/qcachemetrics"
	"github.com/cachekit/cachekit/qcache"
)

// Load is the shape of the loads the scenarios time.
type Load = func(context.Context, int) (string, error)

// Adapter is a metrics adapter under test: the metrics.Set it embeds, and
// its TimeLoad.
type Adapter struct {
	*metrics.Set
	TimeLoad func(cache string, load Load) Load
}

// Case is one scenario: Run drives the caches, then the adapter's metrics
// must match the golden file named Name (with the module's extension), and
// its load duration histogram must have the Loads counts.
type Case struct {
	Name  string
	Run   func(*testing.T, Adapter)
	Loads []LoadCount
}

// All are the scenarios.
var All = []Case{
	{Name: "memo", Run: Memo, Loads: MemoLoads},
	{Name: "memory", Run: Memory},
	{Name: "qcache", Run: QCache},
	{Name: "shared_name", Run: SharedName},
}

// Check runs every case of All in a parallel subtest: newAdapter returns
// a fresh adapter and what reads its output (a registry, a reader),
// compare checks that output against the golden file of the case, and
// loads returns the count and sum of its load duration histogram for a
// cache and a result.
func Check[R any](t *testing.T, newAdapter func(*testing.T) (Adapter, R), compare func(t *testing.T, r R, name string),
	loads func(t *testing.T, r R, cache, result string) (uint64, float64)) {
	for _, c := range All {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			a, r := newAdapter(t)
			c.Run(t, a)
			compare(t, r, c.Name)
			for _, l := range c.Loads {
				n, sum := loads(t, r, l.Cache, l.Result)
				if n != l.N || (n > 0) != (sum > 0) {
					t.Errorf("load duration %s/%s: count %d sum %g, want count %d", l.Cache, l.Result, n, sum, l.N)
				}
			}
		})
	}
}

// LoadCount is how many loads of a cache ended with a result.
type LoadCount struct {
	Cache, Result string
	N             uint64
}

// MemoLoads are the loads [Memo] times.
var MemoLoads = []LoadCount{{"users", "ok", 2}, {"users", "error", 0}, {"profiles", "ok", 1}, {"profiles", "error", 1}}

// Memo drives two memo.Funcs with timed loads. users: a miss, a hit, then
// (past its TTL) a stale value served while a background refresh runs
// (refresh-start, refresh-ok). profiles: a miss, then past its TTL a
// refresh that fails (refresh-start, refresh-fail) and the stale value
// served in its place. Loads: see [MemoLoads].
func Memo(t *testing.T, a Adapter) {
	t.Helper()
	ctx := context.Background()
	clock := cachetest.NewFakeClock(time.Now())
	store, err := memory.NewStore(memory.StoreOptions{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cache := cachekit.Must[string](store, cachekit.Options{Clock: clock})
	t.Cleanup(func() { cache.Close() })

	users := memo.Must(cache, "users", a.TimeLoad("users", func(context.Context, int) (string, error) {
		return "user", nil
	}), memo.Options{TTL: time.Minute, StaleWhileRevalidate: time.Hour, Observer: a.Memo("users")})
	var fail atomic.Bool
	profiles := memo.Must(cache, "profiles", a.TimeLoad("profiles", func(context.Context, int) (string, error) {
		if fail.Load() {
			return "", errors.New("database down")
		}
		return "profile", nil
	}), memo.Options{TTL: time.Minute, StaleIfError: time.Hour, Observer: a.Memo("profiles")})

	for range 2 {
		if _, err := users.Call(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := profiles.Call(ctx, 1); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	fail.Store(true)
	if v, err := users.Call(ctx, 1); err != nil || v != "user" {
		t.Fatalf("stale users.Call = %q, %v", v, err)
	}
	if v, err := profiles.Call(ctx, 1); err != nil || v != "profile" {
		t.Fatalf("stale-if-error profiles.Call = %q, %v", v, err)
	}
	// Close waits for the background refresh of users.
	if err := users.Close(); err != nil {
		t.Fatal(err)
	}
	if err := profiles.Close(); err != nil {
		t.Fatal(err)
	}
}

// Memory drives a memory.Cache named "local" with stats: one entry
// replaced, one deleted and one expired; one hit, two misses; one entry
// left.
func Memory(t *testing.T, a Adapter) {
	t.Helper()
	clock := cachetest.NewFakeClock(time.Now())
	evicted := a.Evictions("local")
	c, err := memory.New(memory.Options[string, int]{Stats: true, Clock: clock,
		OnEvict: func(_ string, _ int, r memory.Reason) { evicted(r) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	a.Memory("local", c)

	c.Set("a", 1)
	c.Set("a", 2) // replaced
	c.SetWithTTL("b", 1, time.Second)
	c.Set("c", 1)
	c.Delete("c") // deleted
	c.Get("a")    // hit
	c.Get("x")    // miss
	clock.Advance(2 * time.Second)
	c.Get("b") // miss, expired
}

// QCache drives a qcache granular policy named "sql" on an in-memory
// SQLite database: CREATE TABLE (a global invalidation); an INSERT of two
// users (a row invalidation); the user of id 1 read (miss, stored) and read
// again (hit); an UPDATE of user 2 (a row invalidation that spares user 1's
// read: hit); an UPDATE of user 1 (a row invalidation), then the read
// (miss, stored); InvalidateTables (a table invalidation); a read of
// random() (uncached: a volatile function).
func QCache(t *testing.T, a Adapter) {
	t.Helper()
	store, err := memory.NewStore(memory.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	policy, err := qcache.NewGranularPolicy(qcache.GranularOptions{Store: store, Dialect: qcache.SQLite, Observer: qcachemetrics.Observer(a.Set, "sql")})
	if err != nil {
		t.Fatal(err)
	}
	db, err := qcache.Open("sqlite3", ":memory:", qcache.Options{Policy: policy})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1) // one in-memory database

	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := db.Exec(sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	name := func(id int) (n string) {
		t.Helper()
		if err := db.QueryRow("SELECT name FROM users WHERE id = ?", id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	exec("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
	exec("INSERT INTO users (id, name) VALUES (1, 'ann'), (2, 'bob')")
	name(1)
	name(1)
	exec("UPDATE users SET name = ? WHERE id = ?", "bea", 2)
	name(1)
	exec("UPDATE users SET name = ? WHERE id = ?", "amy", 1)
	if n := name(1); n != "amy" {
		t.Fatalf("name after update = %q, want amy", n)
	}
	if err := policy.InvalidateTables(context.Background(), "users"); err != nil {
		t.Fatal(err)
	}
	var r int64
	if err := db.QueryRow("SELECT random()").Scan(&r); err != nil {
		t.Fatal(err)
	}
}

// SharedName gives one hit to a memo observer and one to a qcache
// observer, both named "app": the adapters sum them into one series.
func SharedName(_ *testing.T, a Adapter) {
	a.Memo("app").Observe(memo.Event{Kind: memo.Hit})
	qcachemetrics.Observer(a.Set, "app").Observe(qcache.Event{Kind: qcache.Hit})
}
