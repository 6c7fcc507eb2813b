package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/cachekit/cachekit/internal/testserver"
	"github.com/cachekit/cachekit/qcache"
)

func TestInvalidateRow(t *testing.T) {
	t.Parallel()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			a := b.newApp(t, "")
			a.warm(t, postsByUser, 1)
			a.warm(t, postsByUser, 2)
			a.warm(t, userByID, 1)

			code, out, errOut := a.cli(t, "row", "POSTS", "User_Id=1")
			if code != exitOK {
				t.Fatalf("exit code %d, stderr %q; want 0", code, errOut)
			}
			if want := `invalidated row posts user_id="1"`; !strings.Contains(out, want) {
				t.Errorf("stdout %q, want it to contain %q", out, want)
			}
			a.expect(t, true, postsByUser, 1)
			a.expect(t, false, postsByUser, 2)
			a.expect(t, false, userByID, 1) // another table
		})
	}
}

func TestInvalidateRowMissingColumn(t *testing.T) {
	t.Parallel()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			a := b.newApp(t, "")
			a.warm(t, postsByUser, 1)
			a.warm(t, postsByUser, 2)
			a.warm(t, userByID, 1)

			// The cached queries select posts by user_id: a row given by
			// its id alone cannot be placed, so the table goes.
			code, out, errOut := a.cli(t, "row", "posts", "id=3")
			if code != exitOK {
				t.Fatalf("exit code %d, stderr %q; want 0", code, errOut)
			}
			if want := "invalidated table posts: the row"; !strings.Contains(out, want) {
				t.Errorf("stdout %q, want it to contain %q", out, want)
			}
			a.expect(t, true, postsByUser, 1)
			a.expect(t, true, postsByUser, 2)
			a.expect(t, false, userByID, 1)
		})
	}
}

func TestInvalidateRowNull(t *testing.T) {
	t.Parallel()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			a := b.newApp(t, "app1:")
			a.warm(t, postsNoTag)
			a.warm(t, postsByTag, "x")
			a.warm(t, postsByTag, "null")

			code, out, errOut := a.cli(t, "row", "-null", "tag", "posts")
			if code != exitOK {
				t.Fatalf("exit code %d, stderr %q; want 0", code, errOut)
			}
			if want := "invalidated row posts tag IS NULL"; !strings.Contains(out, want) {
				t.Errorf("stdout %q, want it to contain %q", out, want)
			}
			a.expect(t, true, postsNoTag)
			a.expect(t, false, postsByTag, "x")
			a.expect(t, false, postsByTag, "null") // the text, not SQL NULL

			a.warm(t, postsNoTag)
			if code, _, errOut := a.cli(t, "row", "posts", "tag=NULL"); code != exitOK {
				t.Fatalf("exit code %d, stderr %q; want 0", code, errOut)
			}
			a.expect(t, false, postsNoTag)
			a.expect(t, true, postsByTag, "null")
			a.expect(t, false, postsByTag, "x")
		})
	}
}

func TestInvalidateTable(t *testing.T) {
	t.Parallel()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			a := b.newApp(t, "app2:")
			a.warm(t, postsByUser, 1)
			a.warm(t, postsByTag, "x")
			a.warm(t, userByID, 2)

			code, out, errOut := a.cli(t, "table", "main.Posts")
			if code != exitOK {
				t.Fatalf("exit code %d, stderr %q; want 0", code, errOut)
			}
			if want := "invalidated table posts\n"; out != want {
				t.Errorf("stdout %q, want %q", out, want)
			}
			a.expect(t, true, postsByUser, 1)
			a.expect(t, true, postsByTag, "x")
			a.expect(t, false, userByID, 2)

			a.warm(t, postsByUser, 1)
			if code, out, errOut := a.cli(t, "table", "posts", "users"); code != exitOK {
				t.Fatalf("exit code %d, stderr %q; want 0", code, errOut)
			} else if want := "invalidated table posts\ninvalidated table users\n"; out != want {
				t.Errorf("stdout %q, want %q", out, want)
			}
			a.expect(t, true, postsByUser, 1)
			a.expect(t, true, userByID, 2)
		})
	}
}

func TestInvalidateAll(t *testing.T) {
	t.Parallel()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			a := b.newApp(t, "")
			a.warm(t, postsByUser, 1)
			a.warm(t, userByID, 2)

			code, out, errOut := a.cli(t, "all")
			if code != exitOK {
				t.Fatalf("exit code %d, stderr %q; want 0", code, errOut)
			}
			if want := "invalidated all cached queries"; !strings.Contains(out, want) {
				t.Errorf("stdout %q, want it to contain %q", out, want)
			}
			a.expect(t, true, postsByUser, 1)
			a.expect(t, true, userByID, 2)
		})
	}
}

// TestInvalidatePrefix checks that -prefix selects the policy: an
// invalidation under another prefix leaves the app's cache alone.
func TestInvalidatePrefix(t *testing.T) {
	t.Parallel()
	var a *app
	for _, b := range backends() {
		if b.name == "disk" { // needs no server
			a = b.newApp(t, "app3:")
		}
	}
	a.warm(t, postsByUser, 1)
	other := *a
	other.prefix = "other:"
	if code, _, errOut := other.cli(t, "all"); code != exitOK {
		t.Fatalf("exit code %d, stderr %q; want 0", code, errOut)
	}
	a.expect(t, false, postsByUser, 1)
	if code, _, errOut := a.cli(t, "all"); code != exitOK {
		t.Fatalf("exit code %d, stderr %q; want 0", code, errOut)
	}
	a.expect(t, true, postsByUser, 1)
}

// TestInvalidateErrors checks the exit codes and messages of bad command
// lines (2) and failed operations (1).
func TestInvalidateErrors(t *testing.T) {
	t.Parallel()
	redisAddr := "127.0.0.1:6379" // only parsed, never dialled, where used below
	closed := fmt.Sprintf("127.0.0.1:%d", testserver.FreePort(t))
	missingDir := t.TempDir() // exists, but holds no cache
	tests := []struct {
		name    string
		args    []string
		code    int
		wantErr string // in stderr
	}{
		{"no store", []string{"all"}, exitUsage, "-store is required"},
		{"unknown scheme", []string{"all", "-store", "mysql://h/db"}, exitUsage, `unknown scheme "mysql"`},
		{"no scheme", []string{"all", "-store", "localhost:6379"}, exitUsage, "-store"},
		{"redis with several hosts", []string{"all", "-store", "redis://a:1,b:2"}, exitUsage, "redis+cluster://"},
		{"unknown parameter", []string{"all", "-store", "redis://" + redisAddr + "?prefx=a"}, exitUsage, `unknown parameter "prefx"`},
		{"bad dialect", []string{"all", "-dialect", "mysql", "-store", "redis://" + redisAddr}, exitUsage, `-dialect "mysql"`},
		{"unknown flag", []string{"all", "-stor", "x"}, exitUsage, "flag provided but not defined: -stor"},
		{"all with args", []string{"all", "-store", "redis://" + redisAddr, "posts"}, exitUsage, "all takes none"},
		{"table without name", []string{"table", "-store", "redis://" + redisAddr}, exitUsage, "no table given"},
		{"table bad name", []string{"table", "-store", "redis://" + redisAddr, `"posts`}, exitUsage, "unterminated quoted name"},
		{"table too qualified", []string{"table", "-store", "redis://" + redisAddr, "a.b.c"}, exitUsage, "want TABLE or SCHEMA.TABLE"},
		{"row without table", []string{"row", "-store", "redis://" + redisAddr}, exitUsage, "no table given"},
		{"row without values", []string{"row", "-store", "redis://" + redisAddr, "posts"}, exitUsage, "no COLUMN=VALUE given"},
		{"row malformed", []string{"row", "-store", "redis://" + redisAddr, "posts", "user_id"}, exitUsage, `"user_id": want COLUMN=VALUE`},
		{"row empty column", []string{"row", "-store", "redis://" + redisAddr, "posts", "=1"}, exitUsage, "empty name"},
		{"row twice", []string{"row", "-store", "redis://" + redisAddr, "posts", "id=1", "ID=2"}, exitUsage, "column id given twice"},
		{"row null twice", []string{"row", "-store", "redis://" + redisAddr, "-null", "tag", "posts", "tag=x"}, exitUsage, "column tag given twice"},
		{"redis closed port", []string{"all", "-store", "redis://" + closed}, exitError, "open redis store at " + closed},
		{"memcached closed port", []string{"table", "-store", "memcached://" + closed, "posts"}, exitError, "unavailable"},
		{"disk without cache", []string{"all", "-store", "disk://" + missingDir}, exitError, "no cache in " + missingDir},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out, errOut bytes.Buffer
			args := append([]string{"qcache", "invalidate"}, tc.args...)
			code := run(context.Background(), args, &out, &errOut)
			if code != tc.code {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tc.code, errOut.String())
			}
			if !strings.Contains(errOut.String(), tc.wantErr) {
				t.Errorf("stderr %q, want it to contain %q", errOut.String(), tc.wantErr)
			}
			if out.Len() != 0 {
				t.Errorf("stdout %q, want nothing", out.String())
			}
			if tc.code == exitUsage && !strings.Contains(errOut.String(), "-h' for help") {
				t.Errorf("stderr %q, want a pointer to the help", errOut.String())
			}
		})
	}
}

func TestTableName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		dialect qcache.Dialect
		want    string
	}{
		{"posts", qcache.Postgres, "posts"},
		{"Posts", qcache.Postgres, "posts"},
		{`"Posts"`, qcache.Postgres, "Posts"},
		{`"My""Table"`, qcache.Postgres, `My"Table`},
		{`"a.b"`, qcache.Postgres, "a.b"},
		{"public.Posts", qcache.Postgres, "posts"},
		{`"Public".posts`, qcache.Postgres, "Public.posts"},
		{"App.Posts", qcache.Postgres, "app.posts"},
		{"main.posts", qcache.Postgres, "main.posts"},
		{"ÉTÉ", qcache.Postgres, "ÉtÉ"}, // PostgreSQL folds ASCII letters only
		{"Posts", qcache.SQLite, "posts"},
		{`"Posts"`, qcache.SQLite, "posts"},
		{"MAIN.Posts", qcache.SQLite, "posts"},
		{"public.posts", qcache.SQLite, "public.posts"},
	}
	for _, tc := range tests {
		got, err := tableName(tc.in, tc.dialect)
		if err != nil || got != tc.want {
			t.Errorf("tableName(%q, %v) = %q, %v; want %q", tc.in, tc.dialect, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", `"`, `""`, "a.", ".a", "a..b", `"a"b`, "a b", "a.b.c"} {
		if got, err := tableName(bad, qcache.Postgres); err == nil {
			t.Errorf("tableName(%q) = %q, want an error", bad, got)
		}
	}
}

func TestParseRow(t *testing.T) {
	t.Parallel()
	row, cols, err := parseRow([]string{"User_ID=1", `"Weird=Col"=a=b`, "title=", "n=NULL"}, []string{"Tag"}, qcache.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"user_id": "1", "Weird=Col": "a=b", "title": "", "n": "NULL", "tag": nil}
	if fmt.Sprint(row) != fmt.Sprint(want) {
		t.Errorf("row %v, want %v", row, want)
	}
	if got, want := strings.Join(cols, ","), "user_id,Weird=Col,title,n,tag"; got != want {
		t.Errorf("columns %s, want %s", got, want)
	}
}
