package orm_test

import (
	"database/sql"
	"database/sql/driver"
	"path/filepath"
	"reflect"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/jmoiron/sqlx"
	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/cachekit/cachekit/internal/dbtest"
	"github.com/cachekit/cachekit/internal/testserver"
	"github.com/cachekit/cachekit/memory"
	"github.com/cachekit/cachekit/qcache"
)

// env is one database seen twice: through the query cache (db, and GORM and
// sqlx on top of it) and through a plain connection pool (plain, gormPlain,
// sqlxPlain) that the tests compare against. Its inner driver counts the
// queries that reach it.
type env struct {
	dialect qcache.Dialect
	// queries counts the queries that reached the wrapped driver's
	// connections: QueryContext on a connection or a prepared statement
	// (the policy's own image reads included).
	queries *atomic.Int64
	// errs counts the errors reported to qcache.Options.OnError.
	errs atomic.Int64

	db, plain       *sql.DB
	gorm, gormPlain *gorm.DB
	sqlx, sqlxPlain *sqlx.DB
}

// backends are the databases every test runs on, each in a subtest of its
// own name.
var backends = []struct {
	name string
	open func(t *testing.T) *env
}{
	{"sqlite", newSQLiteEnv},
	{"postgres", newPGEnv},
}

// forEachBackend runs test in a parallel subtest per backend, on a fresh
// database.
func forEachBackend(t *testing.T, test func(t *testing.T, e *env)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			test(t, b.open(t))
		})
	}
}

// newSQLiteEnv opens a SQLite database in a file of its own.
func newSQLiteEnv(t *testing.T) *env {
	t.Helper()
	dsn := "file:" + filepath.Join(t.TempDir(), "db.sqlite") + "?_journal_mode=WAL&_busy_timeout=10000&_txlock=immediate"
	inner := &dbtest.SQLite{DSN: dsn}
	plain, err := sql.Open("sqlite3", dsn)
	if err != nil {
		t.Fatal(err)
	}
	return newEnv(t, qcache.SQLite, inner, &inner.Queries, plain)
}

// newPGEnv creates a schema of its own on the shared PostgreSQL server
// (dropped in t.Cleanup), and opens both pools with it as search_path.
func newPGEnv(t *testing.T) *env {
	t.Helper()
	_, connector := dbtest.PostgresSchema(t, testserver.Postgres(t))
	inner := &dbtest.Postgres{Inner: connector()}
	return newEnv(t, qcache.Postgres, inner, &inner.Queries, sql.OpenDB(connector()))
}

// newEnv wraps inner with a GranularPolicy over a memory store and opens
// GORM and sqlx on the wrapped and the plain pool. The pools are closed in
// t.Cleanup.
func newEnv(t *testing.T, dialect qcache.Dialect, inner driver.Connector, queries *atomic.Int64, plain *sql.DB) *env {
	t.Helper()
	t.Cleanup(func() { plain.Close() })
	store, err := memory.NewStore(memory.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	policy, err := qcache.NewGranularPolicy(qcache.GranularOptions{Store: store, Dialect: dialect})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{dialect: dialect, queries: queries, plain: plain}
	e.db = sql.OpenDB(qcache.Wrap(inner, qcache.Options{
		Policy: policy,
		OnError: func(err error) {
			e.errs.Add(1)
			t.Logf("qcache OnError: %v", err)
		},
	}))
	t.Cleanup(func() {
		e.db.Close()
		// The tests' statements are all cacheable or plain writes: no
		// lookup, fill or invalidation may fail.
		if n := e.errs.Load(); n != 0 {
			t.Errorf("qcache reported %d errors to OnError (logged above)", n)
		}
	})
	open := func(db *sql.DB) *gorm.DB {
		var d gorm.Dialector
		switch dialect {
		case qcache.Postgres:
			d = postgres.New(postgres.Config{Conn: db})
		default:
			d = sqlite.New(sqlite.Config{Conn: db})
		}
		g, err := gorm.Open(d, &gorm.Config{Logger: logger.New(testWriter{t}, logger.Config{LogLevel: logger.Info})})
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	e.gorm, e.gormPlain = open(e.db), open(plain)
	// sqlx picks its bind variables ($1 or ?) by driver name.
	driverName := "sqlite3"
	if dialect == qcache.Postgres {
		driverName = "pgx"
	}
	e.sqlx, e.sqlxPlain = sqlx.NewDb(e.db, driverName), sqlx.NewDb(plain, driverName)
	return e
}

// testWriter sends GORM's log (every statement, at logger.Info) to t.Logf,
// which shows it only for a failed test or with -v.
type testWriter struct{ t *testing.T }

func (w testWriter) Printf(format string, args ...any) {
	w.t.Helper()
	w.t.Logf(format, args...)
}

// reached runs f and returns how many queries reached the inner driver
// meanwhile. The tests of a database run sequentially, so every query
// counted is one of f's.
func (e *env) reached(f func()) int64 {
	before := e.queries.Load()
	f()
	return e.queries.Load() - before
}

// sameResult runs read through the cache (on wrapped) and on the plain pool
// (on plain), fails t unless both give the same value, and reports whether
// the cached run was served without reaching the database.
func sameResult[DB any](t *testing.T, e *env, name string, wrapped, plain DB, read func(DB) (any, error)) (cached bool) {
	t.Helper()
	var got any
	var err error
	n := e.reached(func() { got, err = read(wrapped) })
	if err != nil {
		t.Fatalf("%s through the cache: %v", name, err)
	}
	want, err := read(plain)
	if err != nil {
		t.Fatalf("%s on the plain connection: %v", name, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %+v\nwant %+v (%d queries reached the database)", name, got, want, n)
	}
	return n == 0
}

// Known gaps of qcache, by which a read that a write cannot change still
// reaches the database afterwards: correct (wider invalidation, never a
// missed one) but not yet what the row-granular policy aims at.
var (
	gapSQLiteReturning = gap{
		reason: "on SQLite an INSERT … RETURNING bumps its table's epoch " +
			"(the SQLite analysis does not read RETURNING; GORM's Create always uses it on SQLite >= 3.35)",
		sameTable: true,
	}
	gapTimeImage = gap{
		reason: "a row image holding a time.Time (gorm.Model's deleted_at after a soft delete) " +
			"bumps the table epoch (time values are not canonicalised)",
		sameTable: true,
	}
)

// gap is a known gap of qcache.
type gap struct {
	reason string
	// sameTable means that the gap only explains misses of reads of a
	// table the write writes.
	sameTable bool
}

// gaps maps a dialect to the known gap that explains why reads a write
// cannot change reach the database afterwards.
type gaps map[qcache.Dialect]gap

// dbRead is a read through an ORM or query builder whose handle is DB, run
// on the wrapped and on the plain database and compared.
type dbRead[DB any] struct {
	name   string
	tables []string // the tables it reads
	run    func(db DB) (any, error)
}

// dbWrite is a write through an ORM or query builder on the wrapped
// database, with the reads it cannot change (which must then still be
// served from the cache) and the known gaps of qcache that make some of
// them reach the database anyway.
type dbWrite[DB any] struct {
	name       string
	tables     []string // the tables it writes
	run        func(db DB) error
	unaffected []string
	gaps       gaps
}

// names returns the names of reads.
func names[DB any](reads []dbRead[DB]) []string {
	var s []string
	for _, r := range reads {
		s = append(s, r.name)
	}
	return s
}

// runWrites checks reads (see checkReads), then runs each write in a
// subtest of its name, in order, and checks reads after it.
func runWrites[DB any](t *testing.T, e *env, wrapped, plain DB, reads []dbRead[DB], writes []dbWrite[DB]) {
	t.Helper()
	checkReads(t, e, wrapped, plain, reads, dbWrite[DB]{})
	for _, w := range writes {
		t.Run(w.name, func(t *testing.T) {
			if err := w.run(wrapped); err != nil {
				t.Fatal(err)
			}
			checkReads(t, e, wrapped, plain, reads, w)
		})
	}
}

// checkReads runs every read through the cache and on the plain database,
// twice, after the write w: both runs must give what the plain database
// gives, the second must be served from the cache, and so must the first of
// the reads w cannot change (w.unaffected). When some of those reached the
// database, t fails, unless the known gap of e's dialect in w.gaps explains
// every such miss: t is then skipped, naming the gap, and the assertion is
// to be re-enabled once qcache closes the gap. A skipped test has still
// checked that the ORM saw the right data.
func checkReads[DB any](t *testing.T, e *env, wrapped, plain DB, reads []dbRead[DB], w dbWrite[DB]) {
	t.Helper()
	gap, known := w.gaps[e.dialect]
	var excused, unexplained []string
	for _, r := range reads {
		if !sameResult(t, e, r.name, wrapped, plain, r.run) && slices.Contains(w.unaffected, r.name) {
			shared := slices.ContainsFunc(r.tables, func(t string) bool { return slices.Contains(w.tables, t) })
			if known && (!gap.sameTable || shared) {
				excused = append(excused, r.name)
			} else {
				unexplained = append(unexplained, r.name)
			}
		}
		if !sameResult(t, e, r.name, wrapped, plain, r.run) {
			t.Errorf("%s: repeated read reached the database", r.name)
		}
	}
	switch {
	case len(unexplained) > 0:
		t.Errorf("%q reached the database after a write that cannot change them", unexplained)
	case len(excused) > 0:
		t.Skipf("known qcache gap, %s: %q reached the database after a write that cannot change them", gap.reason, excused)
	case known:
		t.Logf("known gap not observed any more, remove it from the test: %s", gap.reason)
	}
}
