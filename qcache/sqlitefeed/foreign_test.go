//go:build sqlite_preupdate_hook && cgo

package sqlitefeed

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cachekit/cachekit/memory"
	"github.com/cachekit/cachekit/qcache"
)

// TestForeignChangeLog: writes by another connection are invalidated row
// by row from the change log; this database's own entries are skipped.
func TestForeignChangeLog(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{PollInterval: manual})
	e.warm(t, postsBy, 1, 2, 3)
	e.warm(t, userBy, 1)

	e.exec(t, e.db, `UPDATE posts SET title = 'own' WHERE user_id = 1`)
	e.warm(t, postsBy, 1)
	e.exec(t, e.plain, `UPDATE posts SET title = 'foreign' WHERE user_id = 2`)
	e.exec(t, e.plain, `INSERT INTO posts (user_id, title, tag) VALUES (3, 'c2', X'00ff')`) // a blob, through the trigger
	before := e.p.Stats()
	e.poll(t)
	after := e.p.Stats()
	if after.InvalidatedTables != before.InvalidatedTables || after.InvalidatedGlobal != before.InvalidatedGlobal {
		t.Fatalf("coarse invalidations: before %+v, after %+v", before, after)
	}
	e.expect(t, postsBy, 1, true) // own write: already invalidated, skipped
	e.expect(t, postsBy, 2, false)
	e.expect(t, postsBy, 3, false)
	e.expect(t, userBy, 1, true)
	e.expect(t, auditBy, 1, false) // first read

	// Foreign writes through foreign triggers and cascades are logged.
	e.warm(t, postsBy, 1, 2, 3)
	e.warm(t, auditBy, 1, 3)
	e.exec(t, e.plain, `INSERT INTO posts (user_id, title) VALUES (3, 'c3')`) // audit of user 3
	e.exec(t, e.plain, `PRAGMA foreign_keys = ON`)
	e.exec(t, e.plain, `DELETE FROM users WHERE id = 2`)
	e.poll(t)
	e.expect(t, postsBy, 1, true)
	e.expect(t, postsBy, 2, false)
	e.expect(t, postsBy, 3, false)
	e.expect(t, auditBy, 1, true)
	e.expect(t, auditBy, 3, false)

	// A table created by another process gets triggers, and the schema
	// change invalidates everything.
	e.exec(t, e.plain, `CREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT)`)
	e.poll(t)
	e.expect(t, postsBy, 1, false)
	const tagBy = `SELECT id FROM tags WHERE name = ?`
	e.warm(t, tagBy, "a", "b")
	e.exec(t, e.plain, `INSERT INTO tags (name) VALUES ('a')`)
	e.poll(t)
	e.expect(t, tagBy, "a", false)
	e.expect(t, tagBy, "b", true)
}

// TestForeignGap: entries deleted before the poller read them bump the
// global epoch.
func TestForeignGap(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{PollInterval: manual})
	e.warm(t, userBy, 1)
	e.exec(t, e.plain, `UPDATE posts SET title = 'g' WHERE user_id = 2`)
	e.exec(t, e.plain, `UPDATE posts SET title = 'g' WHERE user_id = 3`)
	e.exec(t, e.plain, `DELETE FROM `+changeLogTable+` WHERE seq = (SELECT min(seq) FROM `+changeLogTable+`)`)
	e.poll(t)
	e.expect(t, userBy, 1, false)
}

func TestForeignDataVersion(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{PollInterval: manual, Foreign: DataVersion})
	e.warm(t, userBy, 1)
	e.poll(t) // nothing committed by another connection
	e.expect(t, userBy, 1, true)
	e.exec(t, e.plain, `UPDATE posts SET title = 'dv' WHERE user_id = 2`)
	e.poll(t)
	e.expect(t, userBy, 1, false)
	var n int
	if err := e.plain.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE name = ?`, changeLogTable).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("DataVersion created the change log")
	}
}

// TestForeignPoller runs the poller's goroutine: a write by another
// connection is invalidated within a few poll intervals. It logs the
// latency from the foreign COMMIT to the invalidation.
func TestForeignPoller(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	var lat []time.Duration
	for i := range 20 {
		e.warm(t, postsBy, 1, 2)
		for len(e.inv) > 0 {
			<-e.inv
		}
		start := time.Now()
		e.exec(t, e.plain, `UPDATE posts SET title = ? WHERE user_id = 2`, fmt.Sprint(i))
		select {
		case ev := <-e.inv:
			if ev.Kind != qcache.InvalidateRows || !slices.Equal(ev.Tables, []string{"posts"}) {
				t.Fatalf("event %+v", ev)
			}
		case <-time.After(10 * time.Second): // failure bound only
			t.Fatal("no invalidation")
		}
		lat = append(lat, time.Since(start))
		e.expect(t, postsBy, 2, false)
		e.expect(t, postsBy, 1, true)
	}
	slices.Sort(lat)
	t.Logf("foreign write to invalidation (PollInterval %v): median %v, max %v", DefaultPollInterval, lat[len(lat)/2], lat[len(lat)-1])
}

func TestCloseStopsPoller(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	if err := e.db.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-e.c.poll.done:
	default:
		t.Fatal("poller still running after Close")
	}
}

// TestRandomized runs random writes through the feeder (autocommit,
// committed and rolled-back transactions, savepoints) and through another
// connection (then polls), and checks after every write that every read
// served from the cache equals the database.
func TestRandomized(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{PollInterval: manual})
	ctx := context.Background()
	r := rand.New(rand.NewPCG(3, 4))
	type read struct {
		q   string
		arg any
	}
	var reads []read
	for u := range 5 {
		reads = append(reads, read{postsBy, u}, read{auditBy, u}, read{userBy, u},
			read{`SELECT id FROM posts WHERE user_id = ? AND tag = 'x'`, u})
	}
	for _, tag := range []any{"x", "y", "5", 5, nil} {
		reads = append(reads, read{`SELECT count(*) FROM posts WHERE tag = ?`, tag})
	}
	write := func() (string, []any) {
		u, id := r.IntN(4)+1, r.IntN(12)+1
		tags := []any{"x", "y", "5", nil}
		tag := tags[r.IntN(len(tags))]
		switch r.IntN(7) {
		case 0:
			return `UPDATE posts SET title = title || '+' WHERE id = ?`, []any{id}
		case 1:
			return `UPDATE posts SET user_id = ? WHERE id = ?`, []any{u, id}
		case 2:
			return `UPDATE posts SET tag = ? WHERE user_id = ?`, []any{tag, u}
		case 3:
			return `INSERT INTO posts (user_id, title, tag) VALUES (?, 'n', ?)`, []any{u, tag}
		case 4:
			return `DELETE FROM posts WHERE id = ?`, []any{id}
		case 5:
			return "INSERT INTO `posts` (`id`,`user_id`,`title`) VALUES (?,?,'u') ON CONFLICT (`id`) DO UPDATE SET `user_id`=`excluded`.`user_id` RETURNING `id`", []any{id, u}
		default:
			return `UPDATE users SET name = name || '+' WHERE id = ?`, []any{u}
		}
	}
	hits, total := 0, 0
	check := func() {
		for range 8 {
			rd := reads[r.IntN(len(reads))]
			if e.read(t, rd.q, rd.arg) {
				hits++
			}
			total++
		}
	}
	for range 400 {
		switch r.IntN(5) {
		case 0, 1:
			q, args := write()
			e.exec(t, e.db, q, args...)
		case 2:
			tx, err := e.db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			for range r.IntN(3) + 1 {
				q, args := write()
				e.exec(t, tx, q, args...)
				if r.IntN(3) == 0 {
					e.exec(t, tx, `SAVEPOINT s`)
					q, args := write()
					e.exec(t, tx, q, args...)
					if r.IntN(2) == 0 {
						e.exec(t, tx, `ROLLBACK TO s`)
					}
					e.exec(t, tx, `RELEASE s`)
				}
			}
			if r.IntN(3) == 0 {
				err = tx.Rollback()
			} else {
				err = tx.Commit()
			}
			if err != nil {
				t.Fatal(err)
			}
		case 3:
			q, args := write()
			e.exec(t, e.plain, q, args...)
			e.poll(t)
		default:
		}
		check()
	}
	t.Logf("%d of %d reads served from the cache", hits, total)
	if hits == 0 {
		t.Fatal("nothing served from the cache")
	}
}

// TestOtherProcess: a write by a real second process is invalidated at
// the next poll.
func TestOtherProcess(t *testing.T) {
	if dsn := os.Getenv("SQLITEFEED_CHILD_DSN"); dsn != "" {
		db, err := sql.Open("sqlite3", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec(`UPDATE posts SET title = 'child' WHERE user_id = 2`); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Parallel()
	e := newEnv(t, Options{PollInterval: manual})
	e.warm(t, postsBy, 1, 2)
	cmd := exec.Command(os.Args[0], "-test.run=^TestOtherProcess$")
	cmd.Env = append(os.Environ(), "SQLITEFEED_CHILD_DSN="+e.dsn)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	e.poll(t)
	e.expect(t, postsBy, 2, false)
	e.expect(t, postsBy, 1, true)
}

// TestOwnEntryRolledBack: an entry recorded as this database's own whose
// statement was rolled back after all frees its seq; the foreign entry
// that reuses it is not skipped (its nonce differs).
func TestOwnEntryRolledBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{PollInterval: manual})
	e.warm(t, postsBy, 1, 2)
	var next int64
	if err := e.plain.QueryRow(`SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = ?), 0) + 1`, changeLogTable).Scan(&next); err != nil {
		t.Fatal(err)
	}
	e.c.addOwn([]logEntry{{seq: next, nonce: 42}})
	e.exec(t, e.plain, `UPDATE posts SET title = 'reused' WHERE id = 3`) // one row of user 2: entry next
	e.poll(t)
	e.expect(t, postsBy, 2, false)
	e.expect(t, postsBy, 1, true)
}

func TestDropColumnWithTriggers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{PollInterval: manual})
	ctx := context.Background()
	if _, err := e.plain.Exec(`ALTER TABLE posts DROP COLUMN tag`); err == nil {
		t.Fatal("DROP COLUMN of a column the triggers read succeeded")
	}
	// A migration drops the triggers in its transaction.
	tx, err := e.plain.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := DropTriggers(ctx, tx); err != nil {
		t.Fatal(err)
	}
	e.exec(t, tx, `ALTER TABLE posts DROP COLUMN tag`)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	e.warm(t, postsBy, 1, 2) // cached before the poller saw the migration
	e.poll(t)                // reinstalls the triggers, bumps the global epoch
	e.expect(t, postsBy, 1, false)
	e.warm(t, postsBy, 1, 2)
	e.exec(t, e.plain, `UPDATE posts SET title = 'm' WHERE user_id = 2`)
	e.poll(t)
	e.expect(t, postsBy, 2, false)
	e.expect(t, postsBy, 1, true)
}

// TestGeneratedColumns: the hook cannot read a generated column's value,
// so a write to such a table bumps its epoch.
func TestGeneratedColumns(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{PollInterval: manual})
	e.exec(t, e.db, `CREATE TABLE g (id INTEGER PRIMARY KEY, a INTEGER, b INTEGER GENERATED ALWAYS AS (a * 2) VIRTUAL)`)
	e.exec(t, e.db, `INSERT INTO g (a) VALUES (5), (7)`)
	const gBy = `SELECT id, b FROM g WHERE a = ?`
	e.warm(t, gBy, 5, 7)
	e.warm(t, userBy, 1)
	e.exec(t, e.db, `UPDATE g SET a = 6 WHERE a = 5`)
	e.expect(t, gBy, 5, false)
	e.expect(t, gBy, 6, false)
	e.expect(t, gBy, 7, false)
	e.expect(t, userBy, 1, true)
}

// TestConcurrent runs writers through the feeder and another connection
// while readers fill the cache; once the writers are done (and the poller
// has read the log), every read equals the database.
func TestConcurrent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{PollInterval: manual})
	ctx := context.Background()
	e.exec(t, e.plain, `INSERT INTO users (id, name) VALUES (5, 'e'), (6, 'f'), (7, 'g'), (8, 'h')`)
	var wg sync.WaitGroup
	errc := make(chan error, 16)
	for w := range 3 {
		wg.Go(func() {
			db, base := e.db, 1 // the feeder writes users 1-4
			if w == 2 {
				db, base = e.plain, 5 // another connection users 5-8
			}
			r := rand.New(rand.NewPCG(uint64(w), 9))
			for range 100 {
				var err error
				switch u, id := r.IntN(4)+base, r.IntN(10)+1; r.IntN(3) {
				case 0:
					_, err = db.ExecContext(ctx, `UPDATE posts SET user_id = ? WHERE id = ?`, u, id)
				case 1:
					_, err = db.ExecContext(ctx, `INSERT INTO posts (user_id, title) VALUES (?, 'c')`, u)
				default:
					var tx *sql.Tx
					if tx, err = db.BeginTx(ctx, nil); err == nil {
						if _, err = tx.ExecContext(ctx, `DELETE FROM posts WHERE id = ?`, id); err == nil {
							err = tx.Commit()
						} else {
							tx.Rollback()
						}
					}
				}
				if err != nil {
					errc <- err
					return
				}
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			for i := range 300 {
				rows, err := e.db.QueryContext(ctx, postsBy, i%9)
				if err != nil {
					errc <- err
					return
				}
				for rows.Next() {
				}
				rows.Close()
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	e.poll(t)
	for u := range 9 {
		e.read(t, postsBy, u)
		e.read(t, postsBy, u)
	}
}

// TestTwoFeeders: two databases opened with Open on the same file, with
// their own caches, as two processes: each sees the other's writes at its
// next poll, row by row.
func TestTwoFeeders(t *testing.T) {
	t.Parallel()
	a := newEnv(t, Options{PollInterval: manual})
	b := &env{dsn: a.dsn, plain: a.plain, inv: make(chan qcache.Event, 1024)}
	store, err := memory.NewStore(memory.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if b.p, err = qcache.NewGranularPolicy(qcache.GranularOptions{Store: store, Dialect: qcache.SQLite}); err != nil {
		t.Fatal(err)
	}
	if b.db, b.c, err = open(b.dsn, b.p, Options{PollInterval: manual, OnError: func(err error) { t.Error(err) }}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.db.Close() })
	a.warm(t, postsBy, 1, 2)
	b.warm(t, postsBy, 1, 2)
	a.exec(t, a.db, `UPDATE posts SET title = 'from a' WHERE user_id = 2`)
	b.poll(t)
	a.poll(t) // skips its own entries
	a.expect(t, postsBy, 2, false)
	b.expect(t, postsBy, 2, false)
	a.expect(t, postsBy, 1, true)
	b.expect(t, postsBy, 1, true)
	a.warm(t, postsBy, 2)
	b.exec(t, b.db, `DELETE FROM posts WHERE user_id = 1`)
	a.poll(t)
	b.poll(t)
	a.expect(t, postsBy, 1, false)
	b.expect(t, postsBy, 1, false)
	a.expect(t, postsBy, 2, true)
	b.expect(t, postsBy, 2, true)
}
