package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// Post is a post with its author's name, as the pages show it.
type Post struct {
	ID         int64
	AuthorID   int64
	AuthorName string
	Title      string
	Body       string
	Published  string // a date as text (YYYY-MM-DD): the query cache canonicalises text, not time.Time
	Tags       []string
}

// Author is a post's author.
type Author struct {
	ID   int64
	Name string
	Bio  string
}

// TagCount is a tag and the number of posts that carry it.
type TagCount struct {
	Name  string
	Posts int
}

// AuthorStats is what the memoized function computes for an author's page.
type AuthorStats struct {
	Posts int
	Words int
}

// errNotFound is returned by the queries for a row that does not exist;
// the handlers turn it into a 404.
var errNotFound = errors.New("blog: not found")

// queries runs the blog's SQL on db, which is wrapped by the query cache,
// so that every SELECT below is served from the cache until a write
// through db changes a row it could read.
type queries struct {
	db *sql.DB
	// dollar is true on PostgreSQL, whose placeholders are $1, $2, …
	// rather than SQLite's ?.
	dollar bool
}

// bind rewrites the ? placeholders of s for the database. The blog's SQL
// has no ? inside literals.
func (q *queries) bind(s string) string {
	if !q.dollar {
		return s
	}
	var b strings.Builder
	for n := 1; ; n++ {
		before, after, found := strings.Cut(s, "?")
		b.WriteString(before)
		if !found {
			return b.String()
		}
		fmt.Fprintf(&b, "$%d", n)
		s = after
	}
}

// all runs a query and returns its rows, each read by scan; what names
// the query in errors.
func all[T any](ctx context.Context, q *queries, what, query string, args []any, scan func(*sql.Rows, *T) error) ([]T, error) {
	rows, err := q.db.QueryContext(ctx, q.bind(query), args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := scan(rows, &v); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// schema creates the tables; each statement runs on its own, as the
// PostgreSQL driver wants.
var schema = []string{
	`CREATE TABLE IF NOT EXISTS authors (
		id   BIGINT PRIMARY KEY,
		name TEXT NOT NULL,
		bio  TEXT NOT NULL
	)`,
	`CREATE TABLE IF NOT EXISTS posts (
		id        BIGINT PRIMARY KEY,
		author_id BIGINT NOT NULL REFERENCES authors(id),
		title     TEXT NOT NULL,
		body      TEXT NOT NULL,
		published TEXT NOT NULL
	)`,
	`CREATE TABLE IF NOT EXISTS tags (
		id   BIGINT PRIMARY KEY,
		name TEXT NOT NULL UNIQUE
	)`,
	`CREATE TABLE IF NOT EXISTS post_tags (
		post_id BIGINT NOT NULL REFERENCES posts(id),
		tag_id  BIGINT NOT NULL REFERENCES tags(id),
		PRIMARY KEY (post_id, tag_id)
	)`,
	`CREATE INDEX IF NOT EXISTS posts_author ON posts(author_id)`,
	`CREATE INDEX IF NOT EXISTS post_tags_tag ON post_tags(tag_id)`,
}

// seedAuthors, seedTags and seedPosts are the demo's content, inserted
// into an empty database.
var (
	seedAuthors = []Author{
		{1, "Ada Byron", "Writes about caches, counters and the engines behind them."},
		{2, "Grace Murray", "Compilers by day, databases by night."},
		{3, "Edsger Wybe", "Prefers proofs to tests, and tests to hope."},
	}
	seedTags  = []string{"caching", "databases", "go", "http", "invalidation", "performance"}
	seedPosts = []struct {
		Post
		tags []string
	}{
		{Post{ID: 1, AuthorID: 1, Title: "Why caches go stale", Published: "2026-10-01",
			Body: "A cache is a copy, and every copy can disagree with its original. This post walks through the ways a cached value outlives the row it came from."},
			[]string{"caching", "invalidation"}},
		{Post{ID: 2, AuthorID: 2, Title: "Reading query plans", Published: "2026-10-04",
			Body: "Before caching a slow query, ask the database why it is slow. EXPLAIN shows the plan; an index is often the cheaper fix."},
			[]string{"databases", "performance"}},
		{Post{ID: 3, AuthorID: 1, Title: "Row-level invalidation", Published: "2026-10-09",
			Body: "Dropping a whole table's cached queries on every write is safe but wasteful. Matching the written rows against each query's conditions keeps the rest."},
			[]string{"caching", "databases", "invalidation"}},
		{Post{ID: 4, AuthorID: 3, Title: "Contexts all the way down", Published: "2026-10-12",
			Body: "Every call that may wait takes a context first, so that a cancelled request stops its queries and its cache round trips alike."},
			[]string{"go"}},
		{Post{ID: 5, AuthorID: 2, Title: "Cache-Status in practice", Published: "2026-10-18",
			Body: "RFC 9211 gives caches one header to say what they did with a request: hit, forwarded, stored. It makes debugging a cached site much less of a guess."},
			[]string{"caching", "http"}},
		{Post{ID: 6, AuthorID: 3, Title: "Measuring before tuning", Published: "2026-10-25",
			Body: "A benchmark that runs once proves little. Run it ten times, compare the spreads, and only then believe the change."},
			[]string{"go", "performance"}},
		{Post{ID: 7, AuthorID: 1, Title: "Template fragments", Published: "2026-11-02",
			Body: "A page is rarely all fresh or all stale. Caching the expensive parts of a template on their own keeps the cheap parts live."},
			[]string{"caching", "go", "http"}},
	}
)

// The SELECTs of the pages. The view cache's dependencies (see deps.go)
// name the same statements with the same arguments, so that a write that
// invalidates a page's queries invalidates the page.
const (
	sqlRecentPosts = `SELECT p.id, p.title, p.published, a.id, a.name
		FROM posts p JOIN authors a ON a.id = p.author_id
		ORDER BY p.published DESC, p.id DESC`
	sqlPost = `SELECT p.id, p.title, p.body, p.published, a.id, a.name
		FROM posts p JOIN authors a ON a.id = p.author_id
		WHERE p.id = ?`
	sqlPostTags = `SELECT t.name
		FROM tags t JOIN post_tags pt ON pt.tag_id = t.id
		WHERE pt.post_id = ?
		ORDER BY t.name`
	sqlAuthor      = `SELECT id, name, bio FROM authors WHERE id = ?`
	sqlAuthorPosts = `SELECT p.id, p.title, p.published
		FROM posts p WHERE p.author_id = ?
		ORDER BY p.published DESC, p.id DESC`
	sqlAuthorBodies = `SELECT body FROM posts WHERE author_id = ?`
	sqlTaggedPosts  = `SELECT p.id, p.title, p.published
		FROM posts p
		JOIN post_tags pt ON pt.post_id = p.id
		JOIN tags t ON t.id = pt.tag_id
		WHERE t.name = ?
		ORDER BY p.published DESC, p.id DESC`
	sqlAuthors  = `SELECT id, name, bio FROM authors ORDER BY name`
	sqlTagCloud = `SELECT t.name, count(pt.post_id)
		FROM tags t LEFT JOIN post_tags pt ON pt.tag_id = t.id
		GROUP BY t.name ORDER BY t.name`
)

// migrate creates the schema and, when the posts table is empty, inserts
// the seed content in one transaction.
func (q *queries) migrate(ctx context.Context) error {
	for _, s := range schema {
		if _, err := q.db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("create schema: %w", err)
		}
	}
	var n int
	if err := q.db.QueryRowContext(ctx, `SELECT count(*) FROM authors`).Scan(&n); err != nil {
		return fmt.Errorf("count authors: %w", err)
	}
	if n > 0 {
		return nil
	}
	tx, err := q.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	defer tx.Rollback()
	exec := func(s string, args ...any) error {
		_, err := tx.ExecContext(ctx, q.bind(s), args...)
		return err
	}
	for _, a := range seedAuthors {
		if err := exec(`INSERT INTO authors (id, name, bio) VALUES (?, ?, ?)`, a.ID, a.Name, a.Bio); err != nil {
			return fmt.Errorf("seed author %d: %w", a.ID, err)
		}
	}
	tagIDs := make(map[string]int64, len(seedTags))
	for i, name := range seedTags {
		tagIDs[name] = int64(i + 1)
		if err := exec(`INSERT INTO tags (id, name) VALUES (?, ?)`, tagIDs[name], name); err != nil {
			return fmt.Errorf("seed tag %q: %w", name, err)
		}
	}
	for _, p := range seedPosts {
		if err := exec(`INSERT INTO posts (id, author_id, title, body, published) VALUES (?, ?, ?, ?, ?)`,
			p.ID, p.AuthorID, p.Title, p.Body, p.Published); err != nil {
			return fmt.Errorf("seed post %d: %w", p.ID, err)
		}
		for _, t := range p.tags {
			if err := exec(`INSERT INTO post_tags (post_id, tag_id) VALUES (?, ?)`, p.ID, tagIDs[t]); err != nil {
				return fmt.Errorf("seed tag %q of post %d: %w", t, p.ID, err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	return nil
}

// recentPosts returns the posts, newest first, without bodies and tags.
// It reads the whole posts table: any post write invalidates it.
func (q *queries) recentPosts(ctx context.Context) ([]Post, error) {
	return all(ctx, q, "list posts", sqlRecentPosts, nil,
		func(r *sql.Rows, p *Post) error {
			return r.Scan(&p.ID, &p.Title, &p.Published, &p.AuthorID, &p.AuthorName)
		})
}

// post returns one post with its author and tags; errNotFound if there is
// no such post. Its queries are conditioned on the post's id (and its
// author's), so writes to other posts leave them cached.
func (q *queries) post(ctx context.Context, id int64) (Post, error) {
	var p Post
	err := q.db.QueryRowContext(ctx, q.bind(sqlPost), id).Scan(&p.ID, &p.Title, &p.Body, &p.Published, &p.AuthorID, &p.AuthorName)
	if errors.Is(err, sql.ErrNoRows) {
		return Post{}, errNotFound
	}
	if err != nil {
		return Post{}, fmt.Errorf("post %d: %w", id, err)
	}
	p.Tags, err = all(ctx, q, fmt.Sprintf("tags of post %d", id), sqlPostTags, []any{id},
		func(r *sql.Rows, t *string) error { return r.Scan(t) })
	if err != nil {
		return Post{}, err
	}
	return p, nil
}

// author returns one author; errNotFound if there is none.
func (q *queries) author(ctx context.Context, id int64) (Author, error) {
	var a Author
	err := q.db.QueryRowContext(ctx, q.bind(sqlAuthor), id).Scan(&a.ID, &a.Name, &a.Bio)
	if errors.Is(err, sql.ErrNoRows) {
		return Author{}, errNotFound
	}
	if err != nil {
		return Author{}, fmt.Errorf("author %d: %w", id, err)
	}
	return a, nil
}

// scanListed reads the (id, title, published) rows of the post lists.
func scanListed(r *sql.Rows, p *Post) error { return r.Scan(&p.ID, &p.Title, &p.Published) }

// authorPosts returns an author's posts, newest first, without bodies.
// Its condition on author_id lets writes to other authors' posts leave it
// cached.
func (q *queries) authorPosts(ctx context.Context, authorID int64) ([]Post, error) {
	return all(ctx, q, fmt.Sprintf("posts of author %d", authorID), sqlAuthorPosts, []any{authorID}, scanListed)
}

// taggedPosts returns the posts that carry a tag, newest first, without
// bodies.
func (q *queries) taggedPosts(ctx context.Context, tag string) ([]Post, error) {
	return all(ctx, q, fmt.Sprintf("posts tagged %q", tag), sqlTaggedPosts, []any{tag}, scanListed)
}

// authors returns every author, by name.
func (q *queries) authors(ctx context.Context) ([]Author, error) {
	return all(ctx, q, "list authors", sqlAuthors, nil,
		func(r *sql.Rows, a *Author) error { return r.Scan(&a.ID, &a.Name, &a.Bio) })
}

// tagCloud counts the posts of every tag, by name, for the sidebar.
func (q *queries) tagCloud(ctx context.Context) ([]TagCount, error) {
	return all(ctx, q, "tag cloud", sqlTagCloud, nil,
		func(r *sql.Rows, t *TagCount) error { return r.Scan(&t.Name, &t.Posts) })
}

// authorStats counts an author's posts and the words of their bodies. It
// is the blog's memoized function: Go code over a query's rows, cached by
// author and invalidated by the edits of that author's posts.
func (q *queries) authorStats(ctx context.Context, authorID int64) (AuthorStats, error) {
	bodies, err := all(ctx, q, fmt.Sprintf("stats of author %d", authorID), sqlAuthorBodies,
		[]any{authorID}, func(r *sql.Rows, body *string) error { return r.Scan(body) })
	if err != nil {
		return AuthorStats{}, err
	}
	s := AuthorStats{Posts: len(bodies)}
	for _, b := range bodies {
		s.Words += len(strings.Fields(b))
	}
	return s, nil
}

// updatePost changes a post's title and body; errNotFound if there is no
// such post. The UPDATE runs through the query cache's wrapper, which
// invalidates the cached queries the old and new rows could satisfy: the
// post's own, the lists of all posts, and its author's, but not other
// authors' lists.
func (q *queries) updatePost(ctx context.Context, id int64, title, body string) error {
	res, err := q.db.ExecContext(ctx, q.bind(`UPDATE posts SET title = ?, body = ? WHERE id = ?`), title, body, id)
	if err != nil {
		return fmt.Errorf("update post %d: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("update post %d: %w", id, err)
	}
	if n == 0 {
		return errNotFound
	}
	return nil
}
