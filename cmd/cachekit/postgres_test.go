package main

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/cachekit/cachekit/disk"
	"github.com/cachekit/cachekit/internal/testserver"
	"github.com/cachekit/cachekit/qcache"
)

// newPGApp sets up an app on a PostgreSQL schema of its own (dropped in
// t.Cleanup), with a policy of dialect Postgres over a disk store.
func newPGApp(t *testing.T, setup ...string) *app {
	t.Helper()
	dsn := testserver.Postgres(t)
	schema := "ck_cli_" + strings.ToLower(testPrefix(t)[len("cktest:"):])
	schema = strings.NewReplacer(":", "_", "-", "_").Replace(schema)
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	if _, err := admin.Exec(`CREATE SCHEMA ` + pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec(`DROP SCHEMA ` + pgx.Identifier{schema}.Sanitize() + ` CASCADE`); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["search_path"] = schema
	c := &pgCountingConnector{inner: stdlib.GetConnector(*cfg)}

	dir := t.TempDir()
	store, err := disk.New(context.Background(), disk.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return openApp(t, c, &c.queries, qcache.Postgres, store, "disk://"+dir, "", setup...)
}

// TestInvalidatePostgres checks the postgres dialect's folding of names
// and that a value given as text matches an integer column.
func TestInvalidatePostgres(t *testing.T) {
	t.Parallel()
	a := newPGApp(t,
		`CREATE TABLE posts (id int PRIMARY KEY, user_id int)`,
		`INSERT INTO posts VALUES (1, 1), (2, 1), (3, 2)`,
		`CREATE TABLE "Notes" (id int PRIMARY KEY, "OwnerId" bigint)`,
		`INSERT INTO "Notes" VALUES (1, 7), (2, 8)`,
	)
	const (
		byUser  = `SELECT id FROM posts WHERE user_id = $1 ORDER BY id`
		byOwner = `SELECT id FROM "Notes" WHERE "OwnerId" = $1 ORDER BY id`
	)
	a.warm(t, byUser, 1)
	a.warm(t, byUser, 2)
	a.warm(t, byOwner, 7)
	a.warm(t, byOwner, 8)

	if code, out, errOut := a.cli(t, "row", "Public.POSTS", "User_Id=1"); code != exitOK {
		t.Fatalf("exit code %d, stderr %q; want 0", code, errOut)
	} else if want := "invalidated row posts user_id=\"1\"\n"; out != want {
		t.Errorf("stdout %q, want %q", out, want)
	}
	a.expect(t, true, byUser, 1)
	a.expect(t, false, byUser, 2)
	a.expect(t, false, byOwner, 7)

	// Unquoted, Notes is the table notes, which no query reads.
	if code, out, errOut := a.cli(t, "table", "Notes"); code != exitOK || out != "invalidated table notes\n" {
		t.Fatalf("exit code %d, stdout %q, stderr %q; want 0 and the table notes", code, out, errOut)
	}
	a.expect(t, false, byOwner, 7)

	if code, out, errOut := a.cli(t, "row", `"Notes"`, `"OwnerId"=8.00`); code != exitOK {
		t.Fatalf("exit code %d, stderr %q; want 0", code, errOut)
	} else if want := "invalidated row Notes OwnerId=\"8.00\"\n"; out != want {
		t.Errorf("stdout %q, want %q", out, want)
	}
	a.expect(t, true, byOwner, 8)
	a.expect(t, false, byOwner, 7)

	if code, out, errOut := a.cli(t, "table", `"Notes"`); code != exitOK || out != "invalidated table Notes\n" {
		t.Fatalf("exit code %d, stdout %q, stderr %q; want 0 and the table Notes", code, out, errOut)
	}
	a.expect(t, true, byOwner, 7)
	a.expect(t, false, byUser, 2)
}

// pgCountingConnector wraps the pgx connector and counts the queries that
// reach its connections.
type pgCountingConnector struct {
	inner   driver.Connector
	queries atomic.Int64
}

func (c *pgCountingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	ic, err := c.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &pgCountingConn{Conn: ic.(*stdlib.Conn), n: &c.queries}, nil
}

func (c *pgCountingConnector) Driver() driver.Driver { return c.inner.Driver() }

// pgCountingConn embeds *stdlib.Conn, so it implements every optional
// interface the pgx connection does; it counts queries.
type pgCountingConn struct {
	*stdlib.Conn
	n *atomic.Int64
}

func (c *pgCountingConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	c.n.Add(1)
	return c.Conn.QueryContext(ctx, q, args)
}

func (c *pgCountingConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	s, err := c.Conn.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	return &pgCountingStmt{Stmt: s.(*stdlib.Stmt), n: c.n}, nil
}

type pgCountingStmt struct {
	*stdlib.Stmt
	n *atomic.Int64
}

func (s *pgCountingStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	s.n.Add(1)
	return s.Stmt.QueryContext(ctx, args)
}
