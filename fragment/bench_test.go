package fragment_test

import (
	"context"
	"html/template"
	"io"
	"testing"

	"github.com/cachekit/cachekit/fragment"
)

// BenchmarkRenderHit measures serving a stored fragment through the Go
// API (memory store: one generation check, one lookup).
func BenchmarkRenderHit(b *testing.B) {
	fc, err := fragment.New(fragment.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer fc.Close()
	ctx := context.Background()
	render := func(w io.Writer) error { _, err := io.WriteString(w, "<ul><li>cached</li></ul>"); return err }
	vary := []string{"42", "en"}
	if err := fc.Render(ctx, io.Discard, "sidebar", vary, render); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := fc.Render(ctx, io.Discard, "sidebar", vary, render); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTemplateHit measures a page whose one fragment is stored.
func BenchmarkTemplateHit(b *testing.B) {
	fc, err := fragment.New(fragment.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer fc.Close()
	p := template.New("page")
	p.Funcs(fc.FuncMap(p))
	template.Must(p.Parse(`{{define "box"}}<ul>{{range .}}<li>{{.}}</li>{{end}}</ul>{{end}}<div>{{fragment "box" . 42 "en"}}</div>`))
	data := []string{"a", "b", "c"}
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Execute(io.Discard, data); err != nil {
			b.Fatal(err)
		}
	}
}
