package fragment_test

import (
	"context"
	"errors"
	"html/template"
	"strings"
	"testing"
	"time"

	"github.com/cachekit/cachekit/fragment"
)

// page returns a template with the fragment functions whose "box"
// template counts its executions.
func page(t *testing.T, fc *fragment.Cache, body string) (*template.Template, *int) {
	t.Helper()
	n := new(int)
	p := template.New("page")
	p.Funcs(fc.FuncMap(p)).Funcs(template.FuncMap{"count": func() int { *n++; return *n }})
	template.Must(p.Parse(`{{define "box"}}<i>{{.}}</i>{{count}}{{end}}` + body))
	return p, n
}

func exec(t *testing.T, p *template.Template, data any) string {
	t.Helper()
	var b strings.Builder
	if err := p.Execute(&b, data); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestTemplateFunc(t *testing.T) {
	t.Parallel()
	fc, clock := newCache(t, fragment.Options{TTL: time.Minute})
	p, _ := page(t, fc, `[{{fragment "box" .D .V}}]`)
	steps := []struct {
		advance time.Duration
		d       string
		v       any
		want    string
	}{
		{0, "<a&b>", 1, `[<i>&lt;a&amp;b&gt;</i>1]`},
		{0, "changed", 1, `[<i>&lt;a&amp;b&gt;</i>1]`},   // hit: not executed
		{0, "changed", "1", `[<i>&lt;a&amp;b&gt;</i>1]`}, // vary values compared as fmt.Sprint
		{0, "two", 2, `[<i>two</i>2]`},
		{time.Minute, "after", 1, `[<i>after</i>3]`}, // Options.TTL
	}
	for i, s := range steps {
		clock.Advance(s.advance)
		if got := exec(t, p, map[string]any{"D": s.d, "V": s.v}); got != s.want {
			t.Errorf("step %d: got %s, want %s", i, got, s.want)
		}
	}
}

func TestTemplateFuncTTL(t *testing.T) {
	t.Parallel()
	for _, ttl := range []string{`300`, `"5m"`, `"300"`} {
		t.Run(ttl, func(t *testing.T) {
			t.Parallel()
			fc, clock := newCache(t, fragment.Options{TTL: time.Second})
			p, _ := page(t, fc, `{{fragmentTTL `+ttl+` "box" .}}`)
			for i, s := range []struct {
				advance time.Duration
				data    string
				want    string
			}{
				{0, "a", "<i>a</i>1"},
				{299 * time.Second, "b", "<i>a</i>1"},
				{time.Second, "c", "<i>c</i>2"},
			} {
				clock.Advance(s.advance)
				if got := exec(t, p, s.data); got != s.want {
					t.Errorf("step %d: got %s, want %s", i, got, s.want)
				}
			}
		})
	}
}

func TestTemplateFuncErrors(t *testing.T) {
	t.Parallel()
	fc, _ := newCache(t, fragment.Options{})
	for _, body := range []string{
		`{{fragment "missing" .}}`,
		`{{fragmentTTL 0 "box" .}}`,
		`{{fragmentTTL "soon" "box" .}}`,
		`{{fragmentTTL 1.5 "box" .}}`,
		`{{define "bad"}}{{.Nope}}{{end}}{{fragment "bad" 1}}`,
	} {
		p, _ := page(t, fc, body)
		if err := p.Execute(&strings.Builder{}, "x"); err == nil {
			t.Errorf("%s: executed without an error", body)
		}
	}
}

// A template defined after the functions were made is found, and an
// invalidation through the Go API reaches fragments cached by templates.
func TestTemplateFuncLateDefineAndInvalidate(t *testing.T) {
	t.Parallel()
	fc, _ := newCache(t, fragment.Options{})
	p, _ := page(t, fc, `{{fragment "late" .}}`)
	template.Must(p.New("late").Parse(`<b>{{.}}</b>`))
	if got := exec(t, p, "one"); got != "<b>one</b>" {
		t.Fatalf("got %s", got)
	}
	if got := exec(t, p, "two"); got != "<b>one</b>" {
		t.Errorf("second execution: got %s, want the cached <b>one</b>", got)
	}
	if err := fc.InvalidateAll(t.Context(), "late"); err != nil {
		t.Fatal(err)
	}
	if got := exec(t, p, "three"); got != "<b>three</b>" {
		t.Errorf("after InvalidateAll: got %s, want <b>three</b>", got)
	}
}

// view is template data that carries the context of its request.
type view struct {
	ctx  context.Context
	Text string
}

func (v view) Context() context.Context { return v.ctx }

// A fragment executes under the context its data gives: a cancelled
// request renders nothing.
func TestTemplateFuncContextFromData(t *testing.T) {
	t.Parallel()
	fc, _ := newCache(t, fragment.Options{})
	p, _ := page(t, fc, `{{define "text"}}<b>{{.Text}}</b>{{count}}{{end}}{{fragment "text" .}}`)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Execute(&strings.Builder{}, view{cancelled, "x"}); !errors.Is(err, context.Canceled) {
		t.Errorf("with a cancelled context: err = %v, want context.Canceled", err)
	}
	// The count shows that the cancelled call did not render.
	if got := exec(t, p, view{context.Background(), "y"}); got != "<b>y</b>1" {
		t.Errorf("got %s, want <b>y</b>1", got)
	}
}
