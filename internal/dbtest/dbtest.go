// Package dbtest holds database/sql fixtures shared by the tests of
// cachekit's packages and modules: driver connectors that count the
// queries reaching the database, and PostgreSQL schemas of a test's own.
package dbtest

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/mattn/go-sqlite3"
)

// SQLite is a driver.Connector that opens mattn/go-sqlite3 connections to
// DSN and counts the queries that reach them: QueryContext on a connection
// or on a prepared statement.
type SQLite struct {
	DSN     string
	Queries atomic.Int64
}

// Connect implements driver.Connector.
func (c *SQLite) Connect(context.Context) (driver.Conn, error) {
	ic, err := (&sqlite3.SQLiteDriver{}).Open(c.DSN)
	if err != nil {
		return nil, err
	}
	return &sqliteConn{SQLiteConn: ic.(*sqlite3.SQLiteConn), n: &c.Queries}, nil
}

// Driver implements driver.Connector.
func (c *SQLite) Driver() driver.Driver { return &sqlite3.SQLiteDriver{} }

// sqliteConn embeds *sqlite3.SQLiteConn, so it implements every optional
// interface the mattn connection does; it counts queries.
type sqliteConn struct {
	*sqlite3.SQLiteConn
	n *atomic.Int64
}

func (c *sqliteConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	c.n.Add(1)
	return c.SQLiteConn.QueryContext(ctx, q, args)
}

func (c *sqliteConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	s, err := c.SQLiteConn.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	return &sqliteStmt{SQLiteStmt: s.(*sqlite3.SQLiteStmt), n: c.n}, nil
}

type sqliteStmt struct {
	*sqlite3.SQLiteStmt
	n *atomic.Int64
}

func (s *sqliteStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	s.n.Add(1)
	return s.SQLiteStmt.QueryContext(ctx, args)
}

// Postgres is a driver.Connector that wraps Inner, a pgx stdlib connector,
// and counts the queries that reach its connections: QueryContext on a
// connection or on a prepared statement.
type Postgres struct {
	Inner   driver.Connector
	Queries atomic.Int64
}

// Connect implements driver.Connector.
func (c *Postgres) Connect(ctx context.Context) (driver.Conn, error) {
	ic, err := c.Inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &pgConn{Conn: ic.(*stdlib.Conn), n: &c.Queries}, nil
}

// Driver implements driver.Connector.
func (c *Postgres) Driver() driver.Driver { return c.Inner.Driver() }

// pgConn embeds *stdlib.Conn, so it implements every optional interface
// the pgx connection does; it counts queries.
type pgConn struct {
	*stdlib.Conn
	n *atomic.Int64
}

func (c *pgConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	c.n.Add(1)
	return c.Conn.QueryContext(ctx, q, args)
}

func (c *pgConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	s, err := c.Conn.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	return &pgStmt{Stmt: s.(*stdlib.Stmt), n: c.n}, nil
}

type pgStmt struct {
	*stdlib.Stmt
	n *atomic.Int64
}

func (s *pgStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	s.n.Add(1)
	return s.Stmt.QueryContext(ctx, args)
}

// PostgresSchema creates a schema of t's own, with a random name, on the
// PostgreSQL server at dsn and drops it (CASCADE) in t.Cleanup. It returns
// the schema's name and a function making pgx stdlib connectors to dsn
// whose search_path is the schema; each call makes a new connector.
func PostgresSchema(t testing.TB, dsn string) (schema string, connector func() driver.Connector) {
	t.Helper()
	schema = fmt.Sprintf("dbtest_%d_%d", time.Now().UnixNano(), rand.Uint32())
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	admin := sql.OpenDB(stdlib.GetConnector(*cfg))
	t.Cleanup(func() { admin.Close() })
	ident := pgx.Identifier{schema}.Sanitize()
	if _, err := admin.Exec(`CREATE SCHEMA ` + ident); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec(`DROP SCHEMA ` + ident + ` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return schema, func() driver.Connector {
		c := cfg.Copy()
		c.RuntimeParams["search_path"] = schema
		return stdlib.GetConnector(*c)
	}
}
