package main

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/memory"
	"github.com/cachekit/cachekit/qcache"
	"github.com/cachekit/cachekit/qcache/pgfeed"
	"github.com/cachekit/cachekit/redis"
	"github.com/cachekit/cachekit/tiered"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// Modes, the contenders of the suite. Each is the same wrapper over the same
// pgx connector; only the policy (and its store) differs.
const (
	modeNone          = "none"           // plain pgx through database/sql, no wrapper
	modeTable         = "table"          // TablePolicy + qcache.SQLTables, memory store
	modeGranular      = "granular"       // GranularPolicy, memory store, synchronous write path
	modeGranularRedis = "granular-redis" // GranularPolicy, Redis store, synchronous write path
	// modeGranularTiered is GranularPolicy over Redis behind an in-process
	// tier (package tiered: L1 kept coherent by RESP3 client tracking,
	// served only within tiered's staleness bound for other processes'
	// writes); synchronous write path.
	modeGranularTiered = "granular-tiered"
	// modeGranularCDC is GranularPolicy over a memory store fed by
	// PostgreSQL logical replication (qcache/pgfeed); writes on a plain
	// connection, which only the feeder sees.
	modeGranularCDC = "granular-cdc"
)

var allModes = []string{modeNone, modeTable, modeGranular, modeGranularRedis, modeGranularTiered, modeGranularCDC}

// contenderName is the JSON contender of a mode.
func contenderName(mode string) string {
	if mode == modeNone {
		return "pgx-uncached"
	}
	return "cachekit-" + mode
}

// readKind classifies one read by what the policy's Lookup answered.
type readKind int32

const (
	kindUncached readKind = iota // no lookup, a declined one or a failed one
	kindHit
	kindMiss
)

var kindNames = [...]string{kindUncached: "uncached", kindHit: "hit", kindMiss: "miss"}

// readRec is put in a read's context so that recordKind can say what
// became of it.
type readRec struct{ kind atomic.Int32 }

type readRecKey struct{}

// withRec returns ctx carrying rec.
func withRec(ctx context.Context, rec *readRec) context.Context {
	return context.WithValue(ctx, readRecKey{}, rec)
}

// recordKind is the Observer of every mode's policy: it records in the
// readRec of a read's context whether the read was a hit or a miss. (An
// Observer, not a wrapper around the policy, so that the wrapper serves
// hits exactly as an application's would.)
var recordKind = qcache.ObserverFunc(func(e qcache.Event) {
	if e.Ctx == nil {
		return
	}
	rec, ok := e.Ctx.Value(readRecKey{}).(*readRec)
	if !ok {
		return
	}
	switch e.Kind {
	case qcache.Hit:
		rec.kind.Store(int32(kindHit))
	case qcache.Miss:
		rec.kind.Store(int32(kindMiss))
	}
})

// pgEnv is the database the suite runs against.
type pgEnv struct {
	dsn    string
	schema string
	conn   driver.Connector // pgx, search_path set to schema
}

// newPgEnv returns the connector of dsn with search_path set to schema.
func newPgEnv(dsn, schema string) (*pgEnv, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse CACHEKIT_POSTGRES_DSN: %w", err)
	}
	cfg.RuntimeParams["search_path"] = schema
	return &pgEnv{dsn: dsn, schema: schema, conn: stdlib.GetConnector(*cfg)}, nil
}

// plainDB returns a database/sql pool on the bare pgx connector.
func (e *pgEnv) plainDB(conns int) *sql.DB {
	db := sql.OpenDB(e.conn)
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	return db
}

// modeDB is a mode's database handle and policy.
type modeDB struct {
	db      *sql.DB
	writeDB *sql.DB             // where writes go when not through db (granular-cdc)
	statsFn func() qcache.Stats // nil for modeNone
	feeder  *pgfeed.Feeder      // granular-cdc only
	close   func()
}

// write returns the handle writes go through.
func (m *modeDB) write() *sql.DB {
	if m.writeDB != nil {
		return m.writeDB
	}
	return m.db
}

// stats returns the policy's counters (zero without a policy).
func (m *modeDB) stats() qcache.Stats {
	if m.statsFn == nil {
		return qcache.Stats{}
	}
	return m.statsFn()
}

// modeConfig is what opening a mode needs besides the database.
type modeConfig struct {
	redisAddr string
	prefix    string // key prefix, unique per phase so phases never share entries
	conns     int
	onError   func(error)
	cdcTables []string // the tables the granular-cdc feeder publishes
}

// openMode opens the database handle of a mode with a cold cache.
func openMode(ctx context.Context, e *pgEnv, mode string, mc modeConfig) (*modeDB, error) {
	var (
		store cachekit.Store
		err   error
	)
	switch mode {
	case modeNone:
		db := e.plainDB(mc.conns)
		return &modeDB{db: db, close: func() { _ = db.Close() }}, nil
	case modeTable, modeGranular:
		store, err = memory.NewStore(memory.StoreOptions{MaxEntries: 2_000_000})
	case modeGranularRedis:
		if mc.redisAddr == "" {
			return nil, errors.New("granular-redis: CACHEKIT_REDIS_ADDR is not set")
		}
		store, err = redis.New(ctx, redis.Options{Addrs: []string{mc.redisAddr}})
	case modeGranularTiered:
		if mc.redisAddr == "" {
			return nil, errors.New("granular-tiered: CACHEKIT_REDIS_ADDR is not set")
		}
		var l2 *redis.Store
		if l2, err = redis.New(ctx, redis.Options{Addrs: []string{mc.redisAddr}}); err == nil {
			if store, err = tiered.New(ctx, l2, tiered.Options{L1Size: 512 << 20, L1TTL: time.Minute}); err != nil {
				_ = l2.Close()
			}
		}
	case modeGranularCDC:
		return newCDCMode(ctx, e, mc)
	default:
		return nil, fmt.Errorf("unknown mode %q", mode)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: open store: %w", mode, err)
	}
	var (
		policy qcache.Policy
		stats  func() qcache.Stats
	)
	switch mode {
	case modeTable:
		reads, writes := qcache.SQLTables(qcache.Postgres)
		p, err := qcache.NewTablePolicy(qcache.TableOptions{Store: store, Reads: reads, Writes: writes, Prefix: mc.prefix, TTL: 5 * time.Minute, Observer: recordKind})
		if err != nil {
			return nil, err
		}
		policy, stats = p, p.Stats
	default:
		p, err := qcache.NewGranularPolicy(qcache.GranularOptions{Store: store, Dialect: qcache.Postgres, Prefix: mc.prefix, TTL: 5 * time.Minute, Observer: recordKind})
		if err != nil {
			return nil, err
		}
		policy, stats = p, p.Stats
	}
	db := sql.OpenDB(qcache.Wrap(e.conn, qcache.Options{Policy: policy, OnError: mc.onError}))
	db.SetMaxOpenConns(mc.conns)
	db.SetMaxIdleConns(mc.conns)
	return &modeDB{db: db, statsFn: stats, close: func() {
		_ = db.Close()
		_ = store.Close()
	}}, nil
}

// newCDCMode opens the granular-cdc mode: a GranularPolicy over a memory
// store fed by PostgreSQL logical replication (qcache/pgfeed) through a slot
// and a publication of its own (dropped by close). Reads go through the
// wrapper; writes go through a plain connection (modeDB.write), so that only
// the feeder invalidates.
func newCDCMode(ctx context.Context, e *pgEnv, mc modeConfig) (*modeDB, error) {
	store, err := memory.NewStore(memory.StoreOptions{MaxEntries: 2_000_000})
	if err != nil {
		return nil, err
	}
	p, err := qcache.NewGranularPolicy(qcache.GranularOptions{Store: store, Dialect: qcache.Postgres, Prefix: mc.prefix, TTL: 5 * time.Minute, Observer: recordKind})
	if err != nil {
		return nil, err
	}
	f, name, err := startFeeder(ctx, e, p, mc)
	if err != nil {
		_ = store.Close()
		return nil, err
	}
	db := sql.OpenDB(qcache.Wrap(e.conn, qcache.Options{Policy: p, OnError: mc.onError}))
	db.SetMaxOpenConns(mc.conns)
	db.SetMaxIdleConns(mc.conns)
	plain := e.plainDB(mc.conns)
	return &modeDB{db: db, writeDB: plain, statsFn: p.Stats, feeder: f, close: func() {
		_ = db.Close()
		stopFeeder(e, f, name, plain)
		_ = plain.Close()
		_ = store.Close()
	}}, nil
}

// startFeeder starts a pgfeed feeder for p on a slot and a publication named
// after mc.prefix, publishing mc.cdcTables, and waits until it streams.
func startFeeder(ctx context.Context, e *pgEnv, p *qcache.GranularPolicy, mc modeConfig) (*pgfeed.Feeder, string, error) {
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, strings.ToLower(strings.TrimSuffix(mc.prefix, ":")))
	f, err := pgfeed.New(ctx, pgfeed.Options{
		DSN: e.dsn, Policy: p, Slot: name, Publication: name,
		Tables: mc.cdcTables, SearchPath: []string{e.schema}, OnError: mc.onError,
	})
	if err != nil {
		return nil, "", fmt.Errorf("granular-cdc: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := f.WaitCaughtUp(wctx); err != nil {
		stopFeeder(e, f, name, nil)
		return nil, "", fmt.Errorf("granular-cdc: wait for the feeder: %w", err)
	}
	return f, name, nil
}

// stopFeeder closes f and drops its slot and publication.
func stopFeeder(e *pgEnv, f *pgfeed.Feeder, name string, db *sql.DB) {
	_ = f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = pgfeed.DropSlot(ctx, e.dsn, name)
	if db == nil {
		db = e.plainDB(1)
		defer func() { _ = db.Close() }()
	}
	_, _ = db.ExecContext(ctx, `DROP PUBLICATION IF EXISTS `+name)
}
