package prometheus_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/cachetest"
	"github.com/cachekit/cachekit/memo"
	"github.com/cachekit/cachekit/memory"
	cacheprom "github.com/cachekit/cachekit/metrics/prometheus"
	"github.com/cachekit/cachekit/qcache"
)

// newMetrics returns a Metrics registered on a fresh registry.
func newMetrics(t *testing.T) (*cacheprom.Metrics, *prom.Registry) {
	t.Helper()
	reg := prom.NewRegistry()
	m, err := cacheprom.New(reg, cacheprom.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

// compare checks the metrics of reg named in the golden file against it
// (text exposition format).
func compare(t *testing.T, reg *prom.Registry, golden string) {
	t.Helper()
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for line := range strings.Lines(string(want)) {
		if f := strings.Fields(line); len(f) == 4 && f[1] == "TYPE" {
			names = append(names, f[2])
		}
	}
	if err := testutil.GatherAndCompare(reg, bytes.NewReader(want), names...); err != nil {
		t.Errorf("%s: %v", golden, err)
	}
}

// loadCount returns the sample count and sum of the load histogram of
// cache and result.
func loadCount(t *testing.T, reg *prom.Registry, cache, result string) (uint64, float64) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "cachekit_load_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["cache"] == cache && labels["result"] == result {
				return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
			}
		}
	}
	return 0, 0
}

func TestMemo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, reg := newMetrics(t)
	clock := cachetest.NewFakeClock(time.Now())
	store, err := memory.NewStore(memory.StoreOptions{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cache := cachekit.Must[string](store, cachekit.Options{Clock: clock})
	t.Cleanup(func() { cache.Close() })

	// users: a miss, a hit, then a stale value served while it refreshes.
	users := memo.Must(cache, "users", cacheprom.TimeLoad(m, "users", func(_ context.Context, id int) (string, error) {
		return "user", nil
	}), memo.Options{TTL: time.Minute, StaleWhileRevalidate: time.Hour, Observer: m.Memo("users")})
	// profiles: its refresh fails, and the stale value is served instead.
	failing := errors.New("database down")
	fail := false
	profiles := memo.Must(cache, "profiles", cacheprom.TimeLoad(m, "profiles", func(_ context.Context, id int) (string, error) {
		if fail {
			return "", failing
		}
		return "profile", nil
	}), memo.Options{TTL: time.Minute, StaleIfError: time.Hour, Observer: m.Memo("profiles")})

	for range 2 {
		if _, err := users.Call(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := profiles.Call(ctx, 1); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	fail = true
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

	compare(t, reg, "testdata/memo.prom")

	// users loaded twice (the miss and the refresh), profiles once well
	// and once badly.
	for _, c := range []struct {
		cache, result string
		want          uint64
	}{{"users", "ok", 2}, {"users", "error", 0}, {"profiles", "ok", 1}, {"profiles", "error", 1}} {
		n, sum := loadCount(t, reg, c.cache, c.result)
		if n != c.want || (n > 0) != (sum > 0) {
			t.Errorf("load duration %s/%s: count %d sum %g, want count %d", c.cache, c.result, n, sum, c.want)
		}
	}
}

func TestMemory(t *testing.T) {
	t.Parallel()
	m, reg := newMetrics(t)
	clock := cachetest.NewFakeClock(time.Now())
	c, err := memory.New(memory.Options[string, int]{
		Stats:   true,
		Clock:   clock,
		OnEvict: cacheprom.OnEvict[string, int](m, "local"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	m.Memory("local", c)

	c.Set("a", 1)
	c.Set("a", 2) // replaced
	c.SetWithTTL("b", 1, time.Second)
	c.Set("c", 1)
	c.Delete("c") // deleted
	c.Get("a")    // hit
	c.Get("x")    // miss
	clock.Advance(2 * time.Second)
	c.Get("b") // miss, expired

	compare(t, reg, "testdata/memory.prom")
}

func TestQCache(t *testing.T) {
	t.Parallel()
	m, reg := newMetrics(t)
	store, err := memory.NewStore(memory.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	policy, err := qcache.NewTablePolicy(qcache.TableOptions{
		Store:    store,
		Observer: m.QCache("sql"),
		Reads: func(sql string) ([]string, bool) {
			return []string{"users"}, strings.HasPrefix(sql, "SELECT")
		},
		Writes: func(sql string) ([]string, bool) {
			return []string{"users"}, strings.HasPrefix(sql, "INSERT INTO users")
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	db, err := qcache.Open("sqlite3", ":memory:", qcache.Options{Policy: policy})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1) // one in-memory database

	if _, err := db.Exec("CREATE TABLE users (name TEXT)"); err != nil { // a global invalidation
		t.Fatal(err)
	}
	count := func() (n int) {
		t.Helper()
		if err := db.QueryRow("SELECT count(*) FROM users").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	count() // miss, stored
	count() // hit
	if _, err := db.Exec("INSERT INTO users (name) VALUES (?)", "ann"); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 1 { // miss after the invalidation
		t.Fatalf("count after insert = %d, want 1", n)
	}

	compare(t, reg, "testdata/qcache.prom")
}

// TestSharedName checks that sources of one cache name are summed into
// one series instead of failing the gathering.
func TestSharedName(t *testing.T) {
	t.Parallel()
	m, reg := newMetrics(t)
	m.Memo("app").Observe(memo.Event{Kind: memo.Hit})
	m.QCache("app").Observe(qcache.Event{Kind: qcache.Hit})
	compare(t, reg, "testdata/shared_name.prom")
}

func TestNewTwiceOnOneRegistry(t *testing.T) {
	t.Parallel()
	_, reg := newMetrics(t)
	_, err := cacheprom.New(reg, cacheprom.Options{})
	if are := (prom.AlreadyRegisteredError{}); !errors.As(err, &are) {
		t.Errorf("second New on one registry: %v, want an AlreadyRegisteredError", err)
	}
}
