package pgxdbtx_test

import (
	"context"
	"database/sql"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/cachekit/cachekit/internal/dbtest"
	"github.com/cachekit/cachekit/internal/testserver"
	"github.com/cachekit/cachekit/memory"
	"github.com/cachekit/cachekit/qcache"
	"github.com/cachekit/cachekit/qcache/pgxdbtx"
)

const schemaSQL = `CREATE TABLE authors (
	id         bigserial PRIMARY KEY,
	name       text NOT NULL,
	bio        text,
	age        int8,
	created_at timestamptz NOT NULL,
	tags       int4[]
)`

// env is one PostgreSQL schema seen through the query cache (cached, over
// pgxdbtx.DB on the wrapped pool) and through a plain pgx connection
// (plain), which the tests compare against.
type env struct {
	policy *qcache.GranularPolicy
	db     *sql.DB
	cached *Queries
	plain  *Queries
}

// newEnv creates a schema of its own (dropped in t.Cleanup) with the
// authors table.
func newEnv(t *testing.T) *env {
	t.Helper()
	dsn := testserver.Postgres(t)
	ctx := context.Background()
	schema, _ := dbtest.PostgresSchema(t, dsn)
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["search_path"] = schema

	plain, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plain.Close(context.Background()) })
	if _, err := plain.Exec(ctx, schemaSQL); err != nil {
		t.Fatalf("create table: %v", err)
	}

	store, err := memory.NewStore(memory.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	policy, err := qcache.NewGranularPolicy(qcache.GranularOptions{Store: store, Dialect: qcache.Postgres})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{policy: policy, plain: New(plain)}
	e.db = sql.OpenDB(qcache.Wrap(stdlib.GetConnector(*cfg), qcache.Options{
		Policy: policy,
		OnError: func(err error) {
			t.Errorf("qcache OnError: %v", err)
		},
	}))
	t.Cleanup(func() { e.db.Close() })
	e.cached = New(pgxdbtx.New(e.db))
	return e
}

// hits runs f and returns the cache hits and misses it caused.
func (e *env) hits(f func()) (hits, misses uint64) {
	before := e.policy.Stats()
	f()
	after := e.policy.Stats()
	return after.Hits - before.Hits, after.Misses - before.Misses
}

// norm makes authors comparable with reflect.DeepEqual: the two paths
// return the same instants in different locations.
func norm(as ...Author) []Author {
	out := make([]Author, len(as))
	for i, a := range as {
		a.CreatedAt = a.CreatedAt.UTC()
		out[i] = a
	}
	return out
}

// same fails t unless got and want hold the same authors.
func same(t *testing.T, name string, got, want []Author) {
	t.Helper()
	if !reflect.DeepEqual(norm(got...), norm(want...)) {
		t.Fatalf("%s:\n got %+v\nwant %+v", name, got, want)
	}
}

func text(s string) pgtype.Text { return pgtype.Text{String: s, Valid: true} }
func int8v(n int64) pgtype.Int8 { return pgtype.Int8{Int64: n, Valid: true} }

// seed creates three authors through the cache and checks what CreateAuthor
// returned against a plain read.
func seed(t *testing.T, e *env) []Author {
	t.Helper()
	ctx := context.Background()
	at := time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)
	params := []CreateAuthorParams{
		{Name: "ann", Bio: text("poet"), Age: int8v(40), CreatedAt: at, Tags: []int32{1, 2}},
		{Name: "bob", Bio: text("poet"), Age: pgtype.Int8{}, CreatedAt: at.Add(time.Hour)},
		{Name: "cy", Bio: pgtype.Text{}, Age: int8v(25), CreatedAt: at.Add(2 * time.Hour), Tags: []int32{}},
	}
	var authors []Author
	for _, p := range params {
		a, err := e.cached.CreateAuthor(ctx, p)
		if err != nil {
			t.Fatalf("CreateAuthor(%+v): %v", p, err)
		}
		want, err := e.plain.GetAuthor(ctx, a.ID)
		if err != nil {
			t.Fatalf("plain GetAuthor(%d): %v", a.ID, err)
		}
		same(t, "CreateAuthor", []Author{a}, []Author{want})
		authors = append(authors, a)
	}
	return authors
}

func TestQueriesCachedAndInvalidated(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	authors := seed(t, e)
	ann, bob := authors[0], authors[1]

	get := func(id int64) Author {
		t.Helper()
		got, err := e.cached.GetAuthor(ctx, id)
		if err != nil {
			t.Fatalf("GetAuthor(%d): %v", id, err)
		}
		want, err := e.plain.GetAuthor(ctx, id)
		if err != nil {
			t.Fatalf("plain GetAuthor(%d): %v", id, err)
		}
		same(t, "GetAuthor", []Author{got}, []Author{want})
		return got
	}
	list := func(bio pgtype.Text) []Author {
		t.Helper()
		got, err := e.cached.ListAuthorsByBio(ctx, bio)
		if err != nil {
			t.Fatalf("ListAuthorsByBio(%v): %v", bio, err)
		}
		want, err := e.plain.ListAuthorsByBio(ctx, bio)
		if err != nil {
			t.Fatalf("plain ListAuthorsByBio(%v): %v", bio, err)
		}
		same(t, "ListAuthorsByBio", got, want)
		return got
	}
	count := func(age pgtype.Int8) int64 {
		t.Helper()
		got, err := e.cached.CountOlder(ctx, age)
		if err != nil {
			t.Fatalf("CountOlder: %v", err)
		}
		want, err := e.plain.CountOlder(ctx, age)
		if err != nil {
			t.Fatalf("plain CountOlder: %v", err)
		}
		if got != want {
			t.Fatalf("CountOlder(%v) = %d, want %d", age, got, want)
		}
		return got
	}
	reads := func() {
		get(ann.ID)
		get(bob.ID)
		list(text("poet"))
		count(int8v(30))
	}

	// First round fills, second is served from the cache.
	if h, m := e.hits(reads); h != 0 || m != 4 {
		t.Fatalf("first reads: %d hits, %d misses; want 0, 4", h, m)
	}
	if h, m := e.hits(reads); h != 4 || m != 0 {
		t.Fatalf("repeated reads: %d hits, %d misses; want 4, 0", h, m)
	}

	// :exec changes bob's bio: bob's row and the list by bio are invalidated,
	// ann's row is not (row-granular).
	if err := e.cached.UpdateBio(ctx, UpdateBioParams{ID: bob.ID, Bio: text("novelist")}); err != nil {
		t.Fatalf("UpdateBio: %v", err)
	}
	if h, _ := e.hits(func() { get(ann.ID) }); h != 1 {
		t.Errorf("GetAuthor(ann) after bob's update was not served from the cache")
	}
	if h, _ := e.hits(func() {
		if got := get(bob.ID); got.Bio != text("novelist") {
			t.Errorf("bob's bio = %v after UpdateBio, want novelist", got.Bio)
		}
	}); h != 0 {
		t.Errorf("GetAuthor(bob) after his update was served from the cache")
	}
	if got := list(text("poet")); len(got) != 1 {
		t.Errorf("ListAuthorsByBio(poet) after the update = %d authors, want 1", len(got))
	}

	// :execresult: the command tag is PostgreSQL's.
	tag, err := e.cached.SetAge(ctx, "cy", int8v(50))
	if err != nil {
		t.Fatalf("SetAge: %v", err)
	}
	if got, want := tag.String(), "UPDATE 1"; got != want {
		t.Errorf("SetAge tag = %q, want %q", got, want)
	}
	if !tag.Update() || tag.RowsAffected() != 1 {
		t.Errorf("SetAge tag %q: Update() = %v, RowsAffected() = %d", tag, tag.Update(), tag.RowsAffected())
	}
	if got := count(int8v(30)); got != 2 {
		t.Errorf("CountOlder(30) after SetAge = %d, want 2", got)
	}
	// cy's bio is NULL: the list of poets, keyed by a pgtype.Text argument
	// that pgxdbtx hands over as a string, stays cached (row-granular).
	if h, _ := e.hits(func() { list(text("poet")) }); h != 1 {
		t.Errorf("ListAuthorsByBio(poet) after an update of cy was not served from the cache")
	}

	// :execrows.
	n, err := e.cached.DeleteByBio(ctx, text("novelist"))
	if err != nil {
		t.Fatalf("DeleteByBio: %v", err)
	}
	if n != 1 {
		t.Errorf("DeleteByBio(novelist) = %d rows, want 1", n)
	}
	if _, err := e.cached.GetAuthor(ctx, bob.ID); !errors.Is(err, pgx.ErrNoRows) {
		t.Errorf("GetAuthor(deleted bob) error = %v, want pgx.ErrNoRows", err)
	}
	if _, err := e.cached.GetAuthor(ctx, bob.ID); !errors.Is(err, sql.ErrNoRows) {
		t.Errorf("GetAuthor(deleted bob) error = %v, want one matching sql.ErrNoRows", err)
	}
}

func TestTx(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	ann := seed(t, e)[0]
	db := pgxdbtx.New(e.db)
	read := func() Author {
		t.Helper()
		a, err := e.cached.GetAuthor(ctx, ann.ID)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	read() // fill

	// Rolled back: nothing changed, the entry stays cached.
	tx, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := New(tx).UpdateBio(ctx, UpdateBioParams{ID: ann.ID, Bio: text("draft")}); err != nil {
		t.Fatal(err)
	}
	if got, err := New(tx).GetAuthor(ctx, ann.ID); err != nil || got.Bio != text("draft") {
		t.Fatalf("GetAuthor in the tx = %v, %v; want bio draft", got.Bio, err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); !errors.Is(err, pgx.ErrTxClosed) {
		t.Errorf("second Rollback = %v, want pgx.ErrTxClosed", err)
	}
	if h, _ := e.hits(func() {
		if got := read(); got.Bio != text("poet") {
			t.Errorf("bio after rollback = %v, want poet", got.Bio)
		}
	}); h != 1 {
		t.Errorf("read after a rolled back update was not served from the cache")
	}

	// Committed: invalidated at commit.
	tx, err = db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if err := New(tx).UpdateBio(ctx, UpdateBioParams{ID: ann.ID, Bio: text("final")}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	got := read()
	want, err := e.plain.GetAuthor(ctx, ann.ID)
	if err != nil {
		t.Fatal(err)
	}
	same(t, "GetAuthor after commit", []Author{got}, []Author{want})
	if got.Bio != text("final") {
		t.Errorf("bio after commit = %v, want final", got.Bio)
	}
}

// TestRowsAdapter compares the pgx.Rows methods other than Scan with a
// plain pgx connection's, on a fresh and on a cached result.
func TestRowsAdapter(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	seed(t, e)
	plainDB := e.plain.db.(*pgx.Conn)
	const q = `SELECT id, name, bio, age, created_at, tags, 1.5::float8 AS f, 'x'::varchar(7) AS v, 2.50::numeric(6,2) AS n FROM authors ORDER BY id`

	pr, err := plainDB.Query(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	wantFields := pr.FieldDescriptions()
	wantRows := 0
	for pr.Next() {
		wantRows++
	}
	if err := pr.Err(); err != nil {
		t.Fatal(err)
	}
	wantTag := pr.CommandTag().String()

	for round := range 2 { // a miss, then a hit
		before := e.policy.Stats()
		rows, err := pgxdbtx.New(e.db).Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if after := e.policy.Stats(); after.Hits-before.Hits != uint64(round) || after.Misses-before.Misses != uint64(1-round) {
			t.Errorf("round %d: %d hits, %d misses; want %d, %d", round, after.Hits-before.Hits, after.Misses-before.Misses, round, 1-round)
		}
		fields := rows.FieldDescriptions()
		if len(fields) != len(wantFields) {
			t.Fatalf("round %d: %d fields, want %d", round, len(fields), len(wantFields))
		}
		for i, f := range fields {
			w := wantFields[i]
			if f.Name != w.Name || f.DataTypeOID != w.DataTypeOID || f.DataTypeSize != w.DataTypeSize || f.TypeModifier != w.TypeModifier {
				t.Errorf("round %d field %d = %+v, want name, OID, size and modifier of %+v", round, i, f, w)
			}
		}
		n := 0
		for rows.Next() {
			raw := rows.RawValues()
			vals, err := rows.Values()
			if err != nil {
				t.Fatal(err)
			}
			if len(raw) != len(fields) || len(vals) != len(fields) {
				t.Fatalf("round %d: %d raw values and %d values for %d fields", round, len(raw), len(vals), len(fields))
			}
			// Text format: PostgreSQL's text input reads it back.
			var name string
			if err := rows.TypeMap().Scan(fields[1].DataTypeOID, fields[1].Format, raw[1], &name); err != nil || name != vals[1] {
				t.Errorf("round %d: raw name %q decodes to %q, %v; want %v", round, raw[1], name, err, vals[1])
			}
			if got := []string{string(raw[6]), string(raw[7]), string(raw[8])}; !reflect.DeepEqual(got, []string{"1.5", "x", "2.50"}) {
				t.Errorf("round %d: raw f, v, n = %q, want 1.5, x, 2.50", round, got)
			}
			var tags []int32
			var skip any
			dest := []any{nil, nil, nil, nil, nil, &tags, &skip, nil, nil}
			if err := rows.Scan(dest...); err != nil {
				t.Fatalf("round %d: Scan with nils: %v", round, err)
			}
			n++
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if n != wantRows {
			t.Errorf("round %d: %d rows, want %d", round, n, wantRows)
		}
		if got := rows.CommandTag().String(); got != wantTag {
			t.Errorf("round %d: CommandTag = %q, want %q", round, got, wantTag)
		}
		if rows.Conn() != nil {
			t.Errorf("Conn() = %v, want nil", rows.Conn())
		}
	}
}

// TestExecTags compares the command tags of Exec with a plain pgx
// connection's.
func TestExecTags(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	seed(t, e)
	plainDB := e.plain.db.(*pgx.Conn)
	db := pgxdbtx.New(e.db)
	for _, q := range []string{
		`INSERT INTO authors (name, created_at) VALUES ('dee', now()), ('eve', now())`,
		`/* c */ UPDATE authors SET age = 1 WHERE name IN ('dee', 'eve')`,
		`WITH d AS (SELECT 1) DELETE FROM authors WHERE name = 'dee'`,
		`SELECT 1 FROM authors`,
		`CREATE TABLE t2 (x int)`,
		`DROP TABLE t2`,
	} {
		want, err := plainDB.Exec(ctx, q)
		if err != nil {
			t.Fatalf("plain %s: %v", q, err)
		}
		// Undo the plain run so that both see the same rows.
		switch {
		case q[0] == 'I':
			if _, err := plainDB.Exec(ctx, `DELETE FROM authors WHERE name IN ('dee', 'eve')`); err != nil {
				t.Fatal(err)
			}
		case q[0] == 'W':
			if _, err := plainDB.Exec(ctx, `INSERT INTO authors (name, age, created_at) VALUES ('dee', 1, now())`); err != nil {
				t.Fatal(err)
			}
		case q[0] == 'C':
			if _, err := plainDB.Exec(ctx, `DROP TABLE t2`); err != nil {
				t.Fatal(err)
			}
		case q[0] == 'D':
			if _, err := plainDB.Exec(ctx, `CREATE TABLE t2 (x int)`); err != nil {
				t.Fatal(err)
			}
		}
		got, err := db.Exec(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if got.String() != want.String() {
			t.Errorf("%s: tag %q, want %q", q, got, want)
		}
	}
}

// TestCollectRows runs pgx's row helpers, which read FieldDescriptions and
// Values, on the adapter and on a plain pgx connection.
func TestCollectRows(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	seed(t, e)
	plainDB := e.plain.db.(*pgx.Conn)
	type idName struct {
		ID   int64
		Name string
		Bio  pgtype.Text
	}
	const q = `SELECT id, name, bio FROM authors WHERE age IS NOT NULL ORDER BY id`
	collect := func(db pgxdbtx.DBTX) []idName {
		t.Helper()
		rows, err := db.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		got, err := pgx.CollectRows(rows, pgx.RowToStructByName[idName])
		if err != nil {
			t.Fatalf("CollectRows(%T): %v", db, err)
		}
		return got
	}
	want := collect(plainDB)
	for range 2 {
		if got := collect(pgxdbtx.New(e.db)); !reflect.DeepEqual(got, want) {
			t.Errorf("CollectRows = %+v, want %+v", got, want)
		}
	}
	if h, _ := e.hits(func() { collect(pgxdbtx.New(e.db)) }); h != 1 {
		t.Errorf("third CollectRows: %d hits, want 1", h)
	}
}
