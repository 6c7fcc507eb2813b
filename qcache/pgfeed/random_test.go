package pgfeed_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cachekit/cachekit/qcache/pgfeed"
)

// TestRandomized runs random writes on plain connections (several tables,
// single rows and many, a trigger, a cascade, TRUNCATE) concurrently with
// reads through the cache; once the writers have stopped and the feeder
// has caught up, every cached query must equal the database.
func TestRandomized(t *testing.T) {
	e := newEnv(t, &pgfeed.Options{EnforceReplicaIdentity: true}, tables, setup...)
	ctx, cancel := context.WithTimeout(context.Background(), 4*waitLimit)
	defer cancel()
	var reads []query
	for u := range int64(4) {
		reads = append(reads,
			query{`SELECT id, status, n FROM posts WHERE user_id = $1 ORDER BY id`, []any{u}},
			query{`SELECT count(*) FROM posts WHERE user_id = $1 AND status = 'new'`, []any{u}},
			query{`SELECT name FROM users WHERE id = $1`, []any{u}},
		)
	}
	for id := range int64(12) {
		reads = append(reads,
			query{`SELECT status, n FROM posts WHERE id = $1`, []any{id}},
			query{`SELECT id, body FROM comments WHERE post_id = $1 ORDER BY id`, []any{id}},
			query{`SELECT count(*) FROM audit WHERE post_id = $1`, []any{id}},
		)
	}
	reads = append(reads,
		query{`SELECT count(*), sum(n) FROM posts`, nil},
		query{`SELECT p.id, u.name FROM posts p JOIN users u ON u.id = p.user_id WHERE p.id < 20 ORDER BY p.id`, nil},
		query{`SELECT status, count(*) FROM posts GROUP BY status ORDER BY status`, nil},
	)
	write := func(r *rand.Rand) string {
		id, u := r.IntN(12), r.IntN(4)
		switch r.IntN(10) {
		case 0:
			return fmt.Sprintf(`INSERT INTO posts VALUES (%d, %d, 'new', 0) ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id`, 1000+r.IntN(50), u)
		case 1:
			return fmt.Sprintf(`UPDATE posts SET status = 'done' WHERE id = %d`, id) // trigger
		case 2:
			return fmt.Sprintf(`UPDATE posts SET user_id = %d WHERE id = %d`, u, id)
		case 3:
			return fmt.Sprintf(`UPDATE posts SET n = n + 1 WHERE user_id = %d`, u) // about 100 rows
		case 4:
			return fmt.Sprintf(`DELETE FROM posts WHERE id = %d`, id) // cascade
		case 5:
			return fmt.Sprintf(`INSERT INTO posts VALUES (%d, %d, 'new', 1) ON CONFLICT DO NOTHING`, id, u)
		case 6:
			return fmt.Sprintf(`INSERT INTO comments VALUES (%d, %d, 'r') ON CONFLICT DO NOTHING`, 2000+r.IntN(500), 1+r.IntN(11))
		case 7:
			return fmt.Sprintf(`UPDATE users SET name = name || '.' WHERE id = %d`, u)
		case 8:
			return fmt.Sprintf(`UPDATE comments SET post_id = %d WHERE post_id = %d`, 1+r.IntN(11), 1+r.IntN(11))
		default:
			if r.IntN(5) == 0 {
				return `TRUNCATE audit`
			}
			return fmt.Sprintf(`UPDATE posts SET status = 'new', user_id = %d WHERE id IN (%d, %d)`, u, id, r.IntN(12))
		}
	}
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for range 150 {
				_, err := e.plain.ExecContext(ctx, write(r))
				var pgErr *pgconn.PgError
				if errors.As(err, &pgErr) && (pgErr.Code[:2] == "23" || pgErr.Code == "40P01") {
					continue // a foreign key or a deadlock of the two writers: nothing written
				}
				if err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 9))
			for range 600 {
				q := reads[r.IntN(len(reads))]
				rs, err := e.db.QueryContext(ctx, q.sql, q.args...)
				if err != nil {
					errc <- err
					return
				}
				for rs.Next() {
				}
				if err := rs.Close(); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if err := e.feeder.WaitCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	hits := 0
	for _, q := range reads {
		if e.read(t, q.sql, q.args...) { // compares with the database
			hits++
		}
	}
	st := e.policy.Stats()
	t.Logf("%d of %d queries served from the cache after the writes; stats %+v", hits, len(reads), st)
	if errs := e.errors(); len(errs) != 0 {
		t.Errorf("feeder errors: %v", errs)
	}
}
