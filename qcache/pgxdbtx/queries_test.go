package pgxdbtx_test

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// This file is hand-written in the shape sqlc generates with
// sql_package: "pgx/v5" (and a time.Time override for timestamptz), for
// the schema in pgxdbtx_test.go.

type DBTX interface {
	Exec(context.Context, string, ...interface{}) (pgconn.CommandTag, error)
	Query(context.Context, string, ...interface{}) (pgx.Rows, error)
	QueryRow(context.Context, string, ...interface{}) pgx.Row
}

func New(db DBTX) *Queries {
	return &Queries{db: db}
}

type Queries struct {
	db DBTX
}

type Author struct {
	ID        int64
	Name      string
	Bio       pgtype.Text
	Age       pgtype.Int8
	CreatedAt time.Time
	Tags      []int32
}

const createAuthor = `-- name: CreateAuthor :one
INSERT INTO authors (name, bio, age, created_at, tags) VALUES ($1, $2, $3, $4, $5)
RETURNING id, name, bio, age, created_at, tags
`

type CreateAuthorParams struct {
	Name      string
	Bio       pgtype.Text
	Age       pgtype.Int8
	CreatedAt time.Time
	Tags      []int32
}

func (q *Queries) CreateAuthor(ctx context.Context, arg CreateAuthorParams) (Author, error) {
	row := q.db.QueryRow(ctx, createAuthor, arg.Name, arg.Bio, arg.Age, arg.CreatedAt, arg.Tags)
	var i Author
	err := row.Scan(&i.ID, &i.Name, &i.Bio, &i.Age, &i.CreatedAt, &i.Tags)
	return i, err
}

const getAuthor = `-- name: GetAuthor :one
SELECT id, name, bio, age, created_at, tags FROM authors
WHERE id = $1
`

func (q *Queries) GetAuthor(ctx context.Context, id int64) (Author, error) {
	row := q.db.QueryRow(ctx, getAuthor, id)
	var i Author
	err := row.Scan(&i.ID, &i.Name, &i.Bio, &i.Age, &i.CreatedAt, &i.Tags)
	return i, err
}

const listAuthorsByBio = `-- name: ListAuthorsByBio :many
SELECT id, name, bio, age, created_at, tags FROM authors
WHERE bio = $1
ORDER BY id
`

func (q *Queries) ListAuthorsByBio(ctx context.Context, bio pgtype.Text) ([]Author, error) {
	rows, err := q.db.Query(ctx, listAuthorsByBio, bio)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var items []Author
	for rows.Next() {
		var i Author
		if err := rows.Scan(&i.ID, &i.Name, &i.Bio, &i.Age, &i.CreatedAt, &i.Tags); err != nil {
			return nil, err
		}
		items = append(items, i)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return items, nil
}

const countOlder = `-- name: CountOlder :one
SELECT count(*) FROM authors
WHERE age > $1
`

func (q *Queries) CountOlder(ctx context.Context, age pgtype.Int8) (int64, error) {
	row := q.db.QueryRow(ctx, countOlder, age)
	var count int64
	err := row.Scan(&count)
	return count, err
}

const updateBio = `-- name: UpdateBio :exec
UPDATE authors SET bio = $2
WHERE id = $1
`

type UpdateBioParams struct {
	ID  int64
	Bio pgtype.Text
}

func (q *Queries) UpdateBio(ctx context.Context, arg UpdateBioParams) error {
	_, err := q.db.Exec(ctx, updateBio, arg.ID, arg.Bio)
	return err
}

const deleteByBio = `-- name: DeleteByBio :execrows
DELETE FROM authors
WHERE bio = $1
`

func (q *Queries) DeleteByBio(ctx context.Context, bio pgtype.Text) (int64, error) {
	result, err := q.db.Exec(ctx, deleteByBio, bio)
	if err != nil {
		return 0, err
	}
	return result.RowsAffected(), nil
}

const setAge = `-- name: SetAge :execresult
UPDATE authors SET age = $2
WHERE name = $1
`

func (q *Queries) SetAge(ctx context.Context, name string, age pgtype.Int8) (pgconn.CommandTag, error) {
	return q.db.Exec(ctx, setAge, name, age)
}
