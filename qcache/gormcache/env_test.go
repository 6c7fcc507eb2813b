package gormcache_test

import (
	"database/sql"
	"database/sql/driver"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/cachekit/cachekit/cachetest"
	"github.com/cachekit/cachekit/internal/dbtest"
	"github.com/cachekit/cachekit/internal/testserver"
	"github.com/cachekit/cachekit/memory"
	"github.com/cachekit/cachekit/qcache"
	"github.com/cachekit/cachekit/qcache/gormcache"
)

// The models of the tests.
type (
	User struct {
		ID   int64
		Name string
		Team string
		Age  int
	}
	Post struct {
		ID     int64
		UserID int64
		Title  string
	}
	// Tag is soft-deleted (gorm.Model): its reads filter on deleted_at.
	Tag struct {
		gorm.Model
		Label string
	}
	// Country has a table name of its own, which profiles must follow.
	Country struct {
		Code string `gorm:"primaryKey"`
		Name string
	}
)

func (Country) TableName() string { return "geo_countries" }

// env is one database seen through the query cache (db, opened by
// gormcache.Open) and through a plain pool (plain), which the tests compare
// against and write through behind the cache's back.
type env struct {
	dialect qcache.Dialect
	db      *gorm.DB
	plain   *gorm.DB
	policy  *qcache.GranularPolicy
	clock   *cachetest.FakeClock
}

// forEachBackend runs test in a parallel subtest per database, on a fresh
// database opened with cfg (its Policy's Store and Dialect are set here).
func forEachBackend(t *testing.T, cfg gormcache.Config, test func(t *testing.T, e *env)) {
	for _, b := range []struct {
		name string
		open func(t *testing.T, cfg gormcache.Config) *env
	}{
		{"sqlite", newSQLiteEnv},
		{"postgres", newPGEnv},
	} {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			test(t, b.open(t, cfg))
		})
	}
}

// newSQLiteEnv opens a SQLite database in a file of its own.
func newSQLiteEnv(t *testing.T, cfg gormcache.Config) *env {
	t.Helper()
	dsn := "file:" + filepath.Join(t.TempDir(), "db.sqlite") + "?_journal_mode=WAL&_busy_timeout=10000&_txlock=immediate"
	plain, err := sql.Open("sqlite3", dsn)
	if err != nil {
		t.Fatal(err)
	}
	return newEnv(t, cfg, qcache.SQLite, &dbtest.SQLite{DSN: dsn}, plain,
		func(db *sql.DB) gorm.Dialector { return sqlite.New(sqlite.Config{Conn: db}) })
}

// newPGEnv creates a schema of its own on the shared PostgreSQL server
// (dropped in t.Cleanup) and opens both pools with it as search_path.
func newPGEnv(t *testing.T, cfg gormcache.Config) *env {
	t.Helper()
	_, connector := dbtest.PostgresSchema(t, testserver.Postgres(t))
	return newEnv(t, cfg, qcache.Postgres, connector(), sql.OpenDB(connector()),
		func(db *sql.DB) gorm.Dialector { return postgres.New(postgres.Config{Conn: db}) })
}

// newEnv opens GORM through gormcache.Open on inner and on the plain pool,
// creates the tables and seeds them (through the plain pool). Everything
// is closed in t.Cleanup.
func newEnv(t *testing.T, cfg gormcache.Config, dialect qcache.Dialect, inner driver.Connector, plain *sql.DB, dialector func(*sql.DB) gorm.Dialector) *env {
	t.Helper()
	t.Cleanup(func() { plain.Close() })
	e := &env{dialect: dialect, clock: cachetest.NewFakeClock(time.Unix(1e9, 0))}
	store, err := memory.NewStore(memory.StoreOptions{Clock: e.clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cfg.Policy.Store, cfg.Policy.Dialect, cfg.Policy.Now = store, dialect, e.clock.Now
	cfg.OnError = func(err error) { t.Errorf("qcache OnError: %v", err) }
	cfg.Gorm = &gorm.Config{Logger: logger.New(testWriter{t}, logger.Config{LogLevel: logger.Info})}
	e.db, err = gormcache.Open(inner, dialector, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if db, err := e.db.DB(); err == nil {
			db.Close()
		}
	})
	e.policy = gormcache.PolicyOf(e.db)
	if e.policy == nil {
		t.Fatal("PolicyOf(db opened by Open) = nil")
	}
	e.plain, err = gorm.Open(dialector(plain), &gorm.Config{Logger: logger.New(testWriter{t}, logger.Config{LogLevel: logger.Info})})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.plain.AutoMigrate(&User{}, &Post{}, &Country{}, &Tag{}); err != nil {
		t.Fatal(err)
	}
	users := []User{{Name: "ann", Team: "red", Age: 30}, {Name: "bob", Team: "blue", Age: 40}, {Name: "cy", Team: "red", Age: 50}}
	if err := e.plain.Create(&users).Error; err != nil {
		t.Fatal(err)
	}
	posts := []Post{{UserID: users[0].ID, Title: "hello"}, {UserID: users[1].ID, Title: "world"}}
	if err := e.plain.Create(&posts).Error; err != nil {
		t.Fatal(err)
	}
	if err := e.plain.Create(&[]Country{{Code: "fr", Name: "France"}, {Code: "jp", Name: "Japan"}}).Error; err != nil {
		t.Fatal(err)
	}
	if err := e.plain.Create(&[]Tag{{Label: "go"}, {Label: "sql"}}).Error; err != nil {
		t.Fatal(err)
	}
	return e
}

// testWriter sends GORM's log to t.Logf.
type testWriter struct{ t *testing.T }

func (w testWriter) Printf(format string, args ...any) {
	w.t.Helper()
	w.t.Logf(format, args...)
}

// outcome is what one read did in the cache, from the policy's counters.
type outcome struct {
	hits, misses, notOptedIn uint64
}

func (o outcome) String() string {
	return fmt.Sprintf("%d hits, %d misses, %d not opted in", o.hits, o.misses, o.notOptedIn)
}

// Outcomes of one read.
var (
	hit      = outcome{hits: 1}
	miss     = outcome{misses: 1}
	uncached = outcome{notOptedIn: 1}
	bypassed = outcome{} // Bypass: the read never reaches the policy
)

// read runs read on the cached and on the plain database, fails t unless
// both give the same value, and returns the cached run's outcome and value.
func read[T any](t *testing.T, e *env, name string, run func(db *gorm.DB) (T, error)) (outcome, T) {
	t.Helper()
	before := e.policy.Stats()
	got, err := run(e.db)
	after := e.policy.Stats()
	if err != nil {
		t.Fatalf("%s through the cache: %v", name, err)
	}
	want, err := run(e.plain)
	if err != nil {
		t.Fatalf("%s on the plain connection: %v", name, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %+v\nwant %+v", name, got, want)
	}
	return outcome{
		hits:       after.Hits - before.Hits,
		misses:     after.Misses - before.Misses,
		notOptedIn: after.UncachedNotOptedIn - before.UncachedNotOptedIn,
	}, got
}

// expect runs read and fails t unless its outcome is want.
func expect[T any](t *testing.T, e *env, name string, want outcome, run func(db *gorm.DB) (T, error)) T {
	t.Helper()
	got, v := read(t, e, name, run)
	if got != want {
		t.Errorf("%s: %v, want %v", name, got, want)
	}
	return v
}

// find returns a read of every row of T under the scopes.
func find[T any](scopes ...gormcache.Scope) func(db *gorm.DB) ([]T, error) {
	return func(db *gorm.DB) ([]T, error) {
		var rows []T
		err := db.Scopes(scopes...).Order("1").Find(&rows).Error
		return rows, err
	}
}
