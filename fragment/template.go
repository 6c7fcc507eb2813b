package fragment

import (
	"context"
	"fmt"
	"html/template"
	"io"
	"strconv"
	"time"
)

// FuncMap returns the template functions that cache fragments of t, to
// register with t.Funcs before parsing:
//
//   - fragment NAME DATA VARY...: executes the template NAME of t
//     (defined with {{define "NAME"}}) with DATA as its dot, caches its
//     output under NAME and the vary-on values for Options.TTL, and
//     returns it as template.HTML, which the calling template inserts
//     without escaping it again.
//   - fragmentTTL TTL NAME DATA VARY...: the same with its own TTL, a
//     number of seconds (as Django's {% cache %}), a time.Duration, or a
//     string time.ParseDuration accepts.
//
// Vary-on values are turned into strings with fmt.Sprint, so 42 and "42"
// select the same fragment.
//
// The fragment is looked up and rendered under the context DATA gives when
// it has a method Context() context.Context (an *http.Request, or a page
// struct embedding one, has it), otherwise under context.Background() (see
// [Cache.FuncMapContext]).
//
// The functions look templates up in t when they run: templates defined
// after FuncMap is called are found. A clone of t (t.Clone) still executes
// the templates of t.
func (c *Cache) FuncMap(t *template.Template) template.FuncMap {
	return c.FuncMapContext(context.Background, t)
}

// FuncMapContext is [Cache.FuncMap] with the context of the fragments
// whose DATA has no Context method taken from ctx when each is rendered.
func (c *Cache) FuncMapContext(ctx func() context.Context, t *template.Template) template.FuncMap {
	return template.FuncMap{
		"fragment": func(name string, data any, vary ...any) (template.HTML, error) {
			return c.execute(ctx(), t, 0, name, data, vary)
		},
		"fragmentTTL": func(ttl any, name string, data any, vary ...any) (template.HTML, error) {
			d, err := parseTTL(ttl)
			if err != nil {
				return "", fmt.Errorf("fragment %s: %w", name, err)
			}
			return c.execute(ctx(), t, d, name, data, vary)
		},
	}
}

// execute caches the output of the template name of t.
func (c *Cache) execute(ctx context.Context, t *template.Template, ttl time.Duration, name string, data any, vary []any) (template.HTML, error) {
	sub := t.Lookup(name)
	if sub == nil {
		return "", fmt.Errorf("fragment %s: no template %q", name, name)
	}
	if d, ok := data.(interface{ Context() context.Context }); ok {
		ctx = d.Context()
	}
	vs := make([]string, len(vary))
	for i, v := range vary {
		vs[i] = fmt.Sprint(v)
	}
	return c.Fragment(ctx, name, vs, func(w io.Writer) error {
		return sub.Execute(w, data)
	}, TTL(ttl))
}

// parseTTL reads the TTL argument of fragmentTTL.
func parseTTL(v any) (time.Duration, error) {
	var d time.Duration
	switch x := v.(type) {
	case time.Duration:
		d = x
	case int:
		d = time.Duration(x) * time.Second
	case int64:
		d = time.Duration(x) * time.Second
	case string:
		var err error
		if d, err = time.ParseDuration(x); err != nil {
			n, nerr := strconv.Atoi(x)
			if nerr != nil {
				return 0, fmt.Errorf("TTL %q: %w", x, err)
			}
			d = time.Duration(n) * time.Second
		}
	default:
		return 0, fmt.Errorf("TTL of type %T: want seconds, a time.Duration or a duration string", v)
	}
	if d <= 0 {
		return 0, fmt.Errorf("TTL %v is not positive", v)
	}
	return d, nil
}
