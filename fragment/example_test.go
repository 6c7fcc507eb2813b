package fragment_test

import (
	"context"
	"fmt"
	"html/template"
	"io"
	"log"
	"os"
	"time"

	"github.com/cachekit/cachekit/fragment"
)

// The template function executes a named template and caches its output
// under the template's name and the vary-on values.
func ExampleCache_FuncMap() {
	fc, err := fragment.New(fragment.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer fc.Close()

	renders := 0
	page := template.New("page")
	page.Funcs(fc.FuncMap(page)).Funcs(template.FuncMap{
		"count": func() int { renders++; return renders },
	})
	template.Must(page.Parse(`{{define "greeting"}}<b>Hello, {{.Name}}</b> (render {{count}}){{end}}` +
		`<p>{{fragment "greeting" . .ID}}</p>` + "\n"))

	type user struct {
		ID   int
		Name string
	}
	for _, u := range []user{{1, "Ann & Bob"}, {1, "Ann & Bob"}, {2, "<Eve>"}} {
		if err := page.Execute(os.Stdout, u); err != nil {
			log.Fatal(err)
		}
	}
	// Output:
	// <p><b>Hello, Ann &amp; Bob</b> (render 1)</p>
	// <p><b>Hello, Ann &amp; Bob</b> (render 1)</p>
	// <p><b>Hello, &lt;Eve&gt;</b> (render 2)</p>
}

// Render caches what a function writes; Invalidate drops one variant.
func ExampleCache_Render() {
	ctx := context.Background()
	fc, err := fragment.New(fragment.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer fc.Close()

	sidebar := template.Must(template.New("sidebar").Parse(`<ul><li>{{.}}</li></ul>`))
	render := func(lang, text string) {
		err := fc.Render(ctx, os.Stdout, "sidebar", []string{lang}, func(w io.Writer) error {
			fmt.Println("rendering the", lang, "sidebar")
			return sidebar.Execute(w, text)
		}, fragment.TTL(10*time.Minute))
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println()
	}
	render("en", "News")
	render("en", "(not rendered: served from the cache)")
	if err := fc.Invalidate(ctx, "sidebar", "en"); err != nil {
		log.Fatal(err)
	}
	render("en", "Latest news")
	key, _ := fc.Key("sidebar", "en")
	fmt.Println(key)
	// Output:
	// rendering the en sidebar
	// <ul><li>News</li></ul>
	// <ul><li>News</li></ul>
	// rendering the en sidebar
	// <ul><li>Latest news</li></ul>
	// fragment:1:sidebar("2:en")
}
