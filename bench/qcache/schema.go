package main

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// dataset sizes the schema: users, posts and comments have rows rows each.
type dataset struct {
	rows       int
	orgs       int // users.org_id in [0, orgs)
	categories int // posts.category in [0, categories)
}

func newDataset(rows int) dataset {
	return dataset{rows: rows, orgs: max(10, rows/100), categories: 100}
}

var statuses = []string{"active", "idle", "banned"}

// createSchema creates schema with users, posts and comments of ds.rows rows
// each, linked by foreign keys, and analyses them.
func createSchema(ctx context.Context, db *sql.DB, schema string, ds dataset) error {
	stmts := []string{
		`DROP SCHEMA IF EXISTS ` + schema + ` CASCADE`,
		`CREATE SCHEMA ` + schema,
		`CREATE TABLE ` + schema + `.users (id bigint PRIMARY KEY, org_id int NOT NULL, status text NOT NULL, name text NOT NULL)`,
		`CREATE TABLE ` + schema + `.posts (id bigint PRIMARY KEY, user_id bigint NOT NULL REFERENCES ` + schema + `.users,
			category int NOT NULL, published bool NOT NULL, score int NOT NULL, title text NOT NULL)`,
		`CREATE TABLE ` + schema + `.comments (id bigint PRIMARY KEY, post_id bigint NOT NULL REFERENCES ` + schema + `.posts,
			user_id bigint NOT NULL REFERENCES ` + schema + `.users, body text NOT NULL)`,
		fmt.Sprintf(`INSERT INTO %s.users SELECT g, g %% %d, (ARRAY['active','idle','banned'])[1 + g %% 3], 'user' || g
			FROM generate_series(1::bigint, %d) g`, schema, ds.orgs, ds.rows),
		// Post g belongs to user 1 + (g*7919) % rows: hot users own hot and cold posts alike.
		fmt.Sprintf(`INSERT INTO %s.posts SELECT g, 1 + (g * 7919) %% %d, g %% %d, g %% 4 <> 0, g %% 1000, 'post ' || g
			FROM generate_series(1::bigint, %d) g`, schema, ds.rows, ds.categories, ds.rows),
		fmt.Sprintf(`INSERT INTO %s.comments SELECT g, 1 + (g * 104729) %% %d, 1 + (g * 31) %% %d, 'comment ' || g
			FROM generate_series(1::bigint, %d) g`, schema, ds.rows, ds.rows, ds.rows),
		`CREATE INDEX ON ` + schema + `.users (org_id, status)`,
		`CREATE INDEX ON ` + schema + `.users (name)`,
		`CREATE INDEX ON ` + schema + `.posts (user_id)`,
		`CREATE INDEX ON ` + schema + `.posts (category, published)`,
		`CREATE INDEX ON ` + schema + `.comments (post_id)`,
		`CREATE INDEX ON ` + schema + `.comments (user_id)`,
		`ALTER TABLE ` + schema + `.users REPLICA IDENTITY FULL`,
		`ALTER TABLE ` + schema + `.posts REPLICA IDENTITY FULL`,
		`ALTER TABLE ` + schema + `.comments REPLICA IDENTITY FULL`,
		`ANALYZE ` + schema + `.users, ` + schema + `.posts, ` + schema + `.comments`,
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("create schema: %w", err)
		}
	}
	return nil
}

// keys draws the Zipf(1.1)-distributed keys of one goroutine.
type keys struct {
	r               *rand.Rand
	row, org, categ *rand.Zipf
}

func newKeys(seed uint64, ds dataset) *keys {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return &keys{
		r:     r,
		row:   rand.NewZipf(r, 1.1, 1, uint64(ds.rows-1)),
		org:   rand.NewZipf(r, 1.1, 1, uint64(ds.orgs-1)),
		categ: rand.NewZipf(r, 1.1, 1, uint64(ds.categories-1)),
	}
}

// id returns a row id (1-based), hot ids first.
func (k *keys) id() int64 { return int64(k.row.Uint64()) + 1 }

// shape is one query shape of the read mix.
type shape struct {
	name string
	sql  string
	args func(k *keys) []any
}

// shapes are the ~20 query shapes: by primary key, by foreign key,
// multi-column filters, IN lists, joins and aggregates.
var shapes = []shape{
	{"user-pk", `SELECT id, org_id, status, name FROM users WHERE id = $1`, func(k *keys) []any { return []any{k.id()} }},
	{"post-pk", `SELECT id, user_id, category, published, score, title FROM posts WHERE id = $1`, func(k *keys) []any { return []any{k.id()} }},
	{"comment-pk", `SELECT id, post_id, user_id, body FROM comments WHERE id = $1`, func(k *keys) []any { return []any{k.id()} }},
	{"user-by-name", `SELECT id, org_id FROM users WHERE name = $1`, func(k *keys) []any { return []any{fmt.Sprint("user", k.id())} }},
	{"posts-by-user", `SELECT id, title FROM posts WHERE user_id = $1 ORDER BY id`, func(k *keys) []any { return []any{k.id()} }},
	{"comments-by-post", `SELECT id, body FROM comments WHERE post_id = $1 ORDER BY id`, func(k *keys) []any { return []any{k.id()} }},
	{"comments-by-user", `SELECT id, post_id FROM comments WHERE user_id = $1 ORDER BY id`, func(k *keys) []any { return []any{k.id()} }},
	{"users-by-org-status", `SELECT id, name FROM users WHERE org_id = $1 AND status = $2 ORDER BY id`,
		func(k *keys) []any { return []any{int64(k.org.Uint64()), statuses[k.r.IntN(3)]} }},
	{"posts-by-category", `SELECT id, title FROM posts WHERE category = $1 AND published = $2 ORDER BY id LIMIT 20`,
		func(k *keys) []any { return []any{int64(k.categ.Uint64()), k.r.IntN(4) != 0} }},
	{"posts-by-user-published", `SELECT id, score FROM posts WHERE user_id = $1 AND published = $2`,
		func(k *keys) []any { return []any{k.id(), true} }},
	{"users-in", `SELECT id, name FROM users WHERE id IN ($1, $2, $3)`, func(k *keys) []any { return []any{k.id(), k.id(), k.id()} }},
	{"posts-in-users", `SELECT id, user_id FROM posts WHERE user_id IN ($1, $2)`, func(k *keys) []any { return []any{k.id(), k.id()} }},
	{"join-post-author", `SELECT p.id, p.title, u.name FROM posts p JOIN users u ON u.id = p.user_id WHERE p.id = $1`,
		func(k *keys) []any { return []any{k.id()} }},
	{"join-post-comments", `SELECT c.id, c.body, p.title FROM comments c JOIN posts p ON p.id = c.post_id WHERE p.id = $1`,
		func(k *keys) []any { return []any{k.id()} }},
	{"join-user-comments", `SELECT c.id, u.name FROM comments c JOIN users u ON u.id = c.user_id WHERE u.id = $1`,
		func(k *keys) []any { return []any{k.id()} }},
	{"count-posts-by-user", `SELECT count(*) FROM posts WHERE user_id = $1`, func(k *keys) []any { return []any{k.id()} }},
	{"count-users-by-org", `SELECT count(*) FROM users WHERE org_id = $1`, func(k *keys) []any { return []any{int64(k.org.Uint64())} }},
	{"agg-posts-by-category", `SELECT category, count(*), sum(score) FROM posts WHERE user_id = $1 GROUP BY category`,
		func(k *keys) []any { return []any{k.id()} }},
	{"sum-score-category", `SELECT sum(score) FROM posts WHERE category = $1 AND published = true`,
		func(k *keys) []any { return []any{int64(k.categ.Uint64())} }},
	{"exists-comments-by-user", `SELECT EXISTS (SELECT 1 FROM comments WHERE user_id = $1)`, func(k *keys) []any { return []any{k.id()} }},
}

// readAll runs a query and reads its result to the end.
func readAll(ctx context.Context, db *sql.DB, q string, args ...any) (rows int, err error) {
	rs, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	cols, err := rs.Columns()
	if err != nil {
		_ = rs.Close()
		return 0, err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rs.Next() {
		if err := rs.Scan(ptrs...); err != nil {
			_ = rs.Close()
			return rows, err
		}
		rows++
	}
	if err := rs.Err(); err != nil {
		_ = rs.Close()
		return rows, err
	}
	return rows, rs.Close()
}

// writer produces the write mix: UPDATEs that move users between
// organisations and statuses (40%) and posts between categories (30%),
// INSERTs of comments (15%) and DELETEs of the comments inserted before
// (15%). Rows are chosen by the same Zipf law as reads.
type writer struct {
	ds     dataset
	nextID *atomic.Int64 // next comment id to insert, shared by all writers

	mu       sync.Mutex // protects inserted
	inserted []int64    // comments inserted and not deleted yet, oldest first
}

func newWriter(ds dataset) *writer {
	w := &writer{ds: ds, nextID: new(atomic.Int64)}
	w.nextID.Store(int64(ds.rows) + 1)
	return w
}

// write runs one write of the mix on db.
func (w *writer) write(ctx context.Context, db *sql.DB, k *keys) error {
	var err error
	switch p := k.r.IntN(100); {
	case p < 40:
		_, err = db.ExecContext(ctx, `UPDATE users SET org_id = $1, status = $2 WHERE id = $3`,
			k.r.IntN(w.ds.orgs), statuses[k.r.IntN(3)], k.id())
	case p < 70:
		_, err = db.ExecContext(ctx, `UPDATE posts SET category = $1, published = $2, score = score + 1 WHERE id = $3`,
			int64(k.categ.Uint64()), k.r.IntN(4) != 0, k.id())
	case p < 85:
		id := w.nextID.Add(1)
		_, err = db.ExecContext(ctx, `INSERT INTO comments (id, post_id, user_id, body) VALUES ($1, $2, $3, $4)`,
			id, k.id(), k.id(), "new comment")
		if err == nil {
			w.mu.Lock()
			w.inserted = append(w.inserted, id)
			w.mu.Unlock()
		}
	default:
		w.mu.Lock()
		var id int64
		if len(w.inserted) > 0 {
			id, w.inserted = w.inserted[0], w.inserted[1:]
		}
		w.mu.Unlock()
		if id == 0 {
			return w.write(ctx, db, k) // nothing to delete yet: another write
		}
		_, err = db.ExecContext(ctx, `DELETE FROM comments WHERE id = $1`, id)
	}
	return err
}
