package qdep_test

import (
	"fmt"
	"html/template"
	"log"
	"os"

	_ "github.com/mattn/go-sqlite3"

	"github.com/cachekit/cachekit/fragment"
	"github.com/cachekit/cachekit/fragment/qdep"
	"github.com/cachekit/cachekit/qcache"
)

// A template fragment showing a user's posts, rendered again after a
// write to that user's posts only.
func Example() {
	// A SQLite database wrapped by the query cache, with posts a1 and a2
	// of user 1 and b1 of user 2 (see openPosts in qdep_test.go).
	policy, db, closeDB, err := openPosts(":memory:", nil, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer closeDB()

	deps, err := qdep.New(policy, qdep.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer deps.Close()
	// The fragment "posts", varying on the user, depends on that user's
	// rows of posts.
	fc, err := fragment.New(fragment.Options{Deps: func(name string, vary []string) fragment.Deps {
		if name == "posts" {
			return deps.On(qcache.SQL(`SELECT title FROM posts WHERE user_id = ?`, vary[0]))
		}
		return nil
	}})
	if err != nil {
		log.Fatal(err)
	}
	defer fc.Close()

	page := template.New("page")
	page.Funcs(fc.FuncMap(page)).Funcs(template.FuncMap{
		"titles": func(user string) ([]string, error) {
			fmt.Println("(querying the posts of user", user+")")
			rows, err := db.Query(`SELECT title FROM posts WHERE user_id = ? ORDER BY id`, user)
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			var ts []string
			for rows.Next() {
				var t string
				if err := rows.Scan(&t); err != nil {
					return nil, err
				}
				ts = append(ts, t)
			}
			return ts, rows.Err()
		},
	})
	template.Must(page.Parse(`{{define "posts"}}<ul>{{range titles .}}<li>{{.}}</li>{{end}}</ul>{{end}}` +
		`{{fragment "posts" . .}}` + "\n"))
	show := func(user string) {
		if err := page.Execute(os.Stdout, user); err != nil {
			log.Fatal(err)
		}
	}
	show("1")
	show("2")
	show("1") // cached
	if _, err := db.Exec(`INSERT INTO posts (user_id, title) VALUES (2, 'b2 & more')`); err != nil {
		log.Fatal(err)
	}
	show("1") // user 1's posts did not change: still cached
	show("2") // invalidated by the insert
	// Output:
	// (querying the posts of user 1)
	// <ul><li>a1</li><li>a2</li></ul>
	// (querying the posts of user 2)
	// <ul><li>b1</li></ul>
	// <ul><li>a1</li><li>a2</li></ul>
	// <ul><li>a1</li><li>a2</li></ul>
	// (querying the posts of user 2)
	// <ul><li>b1</li><li>b2 &amp; more</li></ul>
}
