package main

import (
	"context"
	"testing"

	"github.com/cachekit/cachekit/disk"
	"github.com/cachekit/cachekit/internal/dbtest"
	"github.com/cachekit/cachekit/internal/testserver"
	"github.com/cachekit/cachekit/qcache"
)

// newPGApp sets up an app on a PostgreSQL schema of its own (dropped in
// t.Cleanup), with a policy of dialect Postgres over a disk store.
func newPGApp(t *testing.T, setup ...string) *app {
	t.Helper()
	_, connector := dbtest.PostgresSchema(t, testserver.Postgres(t))
	c := &dbtest.Postgres{Inner: connector()}

	dir := t.TempDir()
	store, err := disk.New(context.Background(), disk.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return openApp(t, c, &c.Queries, qcache.Postgres, store, "disk://"+dir, "", setup...)
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
