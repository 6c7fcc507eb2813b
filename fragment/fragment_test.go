package fragment_test

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/cachetest"
	"github.com/cachekit/cachekit/fragment"
	"github.com/cachekit/cachekit/memo"
	"github.com/cachekit/cachekit/memory"
)

// newCache returns a Cache over a memory store driven by a fake clock.
func newCache(t *testing.T, opts fragment.Options) (*fragment.Cache, *cachetest.FakeClock) {
	t.Helper()
	clock := cachetest.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	opts.Clock = clock
	if opts.Store == nil {
		s, err := memory.NewStore(memory.StoreOptions{Clock: clock})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		opts.Store = s
	}
	fc, err := fragment.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fc.Close() })
	return fc, clock
}

// counter is a render that writes its text and counts its runs.
type counter struct {
	n    atomic.Int64
	text string
}

func (c *counter) render(w io.Writer) error {
	n := c.n.Add(1)
	_, err := fmt.Fprintf(w, "%s#%d", c.text, n)
	return err
}

func get(t *testing.T, fc *fragment.Cache, name string, vary []string, render func(io.Writer) error, opts ...fragment.Option) string {
	t.Helper()
	var b strings.Builder
	if err := fc.Render(context.Background(), &b, name, vary, render, opts...); err != nil {
		t.Fatalf("Render(%q, %q): %v", name, vary, err)
	}
	return b.String()
}

func TestKeysDoNotCollide(t *testing.T) {
	t.Parallel()
	fc, _ := newCache(t, fragment.Options{})
	varies := [][]string{
		nil, {""}, {"", ""}, {"a", "b"}, {"a:b"}, {"ab"}, {"", "ab"}, {"ab", ""},
		{"1:a"}, {"1", "a"}, {"2:ab"}, {`"`}, {"\x00"}, {"a\x00b"},
	}
	seen := map[string][]string{}
	for _, v := range varies {
		k, err := fc.Key("s", v...)
		if err != nil {
			t.Fatal(err)
		}
		if prev, ok := seen[k]; ok {
			t.Errorf("Key(%q) = Key(%q) = %q", v, prev, k)
		}
		seen[k] = v
	}
	// The stored fragments are distinct too: each list renders once.
	for _, v := range varies {
		c := &counter{text: fmt.Sprintf("%q", v)}
		if got, want := get(t, fc, "s", v, c.render), c.text+"#1"; got != want {
			t.Errorf("Render(%q) = %q, want %q", v, got, want)
		}
	}
	// A name cannot swallow vary-on values.
	a, _ := fc.Key("s", "x")
	if _, err := fc.Key(`s("1:x")`); !errors.Is(err, fragment.ErrInvalidName) {
		t.Errorf("Key with \"(\" in the name: err = %v, want ErrInvalidName (key of s, [x]: %s)", err, a)
	}
}

func TestKeyIsReadable(t *testing.T) {
	t.Parallel()
	fc, _ := newCache(t, fragment.Options{Prefix: "site", Version: 3})
	k, err := fc.Key("post.list", "42", "en")
	if err != nil {
		t.Fatal(err)
	}
	if want := `site:3:post.list("2:422:en")`; k != want {
		t.Errorf("Key = %s, want %s", k, want)
	}
}

func TestInvalidName(t *testing.T) {
	t.Parallel()
	fc, _ := newCache(t, fragment.Options{})
	ctx := context.Background()
	c := &counter{}
	for _, name := range []string{"", "a(b"} {
		if err := fc.Render(ctx, io.Discard, name, nil, c.render); !errors.Is(err, fragment.ErrInvalidName) {
			t.Errorf("Render(%q): err = %v, want ErrInvalidName", name, err)
		}
		if err := fc.Invalidate(ctx, name); !errors.Is(err, fragment.ErrInvalidName) {
			t.Errorf("Invalidate(%q): err = %v, want ErrInvalidName", name, err)
		}
		if err := fc.InvalidateAll(ctx, name); !errors.Is(err, fragment.ErrInvalidName) {
			t.Errorf("InvalidateAll(%q): err = %v, want ErrInvalidName", name, err)
		}
	}
	if n := c.n.Load(); n != 0 {
		t.Errorf("rendered %d times for invalid names", n)
	}
}

func TestHitMissAndTTL(t *testing.T) {
	t.Parallel()
	fc, clock := newCache(t, fragment.Options{TTL: time.Minute})
	c := &counter{text: "x"}
	steps := []struct {
		advance time.Duration
		opts    []fragment.Option
		want    string
	}{
		{0, nil, "x#1"},                // miss
		{59 * time.Second, nil, "x#1"}, // hit within the default TTL
		{time.Second, nil, "x#2"},      // expired at 60 s
		{0, []fragment.Option{fragment.TTL(time.Hour)}, "x#2"},
		{time.Minute, []fragment.Option{fragment.TTL(time.Hour)}, "x#3"},
		{59 * time.Minute, []fragment.Option{fragment.TTL(time.Hour)}, "x#3"},
		{time.Minute, []fragment.Option{fragment.TTL(time.Hour)}, "x#4"},
		{time.Hour, []fragment.Option{fragment.TTL(cachekit.NoExpiry)}, "x#5"},
		{100_000 * time.Hour, []fragment.Option{fragment.TTL(cachekit.NoExpiry)}, "x#5"},
	}
	for i, s := range steps {
		clock.Advance(s.advance)
		if got := get(t, fc, "f", []string{"v"}, c.render, s.opts...); got != s.want {
			t.Errorf("step %d: got %q, want %q", i, got, s.want)
		}
	}
}

func TestNegativeTTLDeletes(t *testing.T) {
	t.Parallel()
	fc, _ := newCache(t, fragment.Options{})
	c := &counter{text: "x"}
	get(t, fc, "f", nil, c.render)
	if got := get(t, fc, "f", nil, c.render, fragment.TTL(cachekit.ExpireNow)); got != "x#2" {
		t.Errorf("with a negative TTL: got %q, want a fresh render x#2", got)
	}
	if got := get(t, fc, "f", nil, c.render); got != "x#3" {
		t.Errorf("after a render with a negative TTL: got %q, want a new render x#3 (the stored one deleted)", got)
	}
	if got := get(t, fc, "f", nil, c.render); got != "x#3" {
		t.Errorf("then: got %q, want the stored x#3", got)
	}
}

func TestInvalidateOne(t *testing.T) {
	t.Parallel()
	fc, _ := newCache(t, fragment.Options{})
	a, b, other := &counter{text: "a"}, &counter{text: "b"}, &counter{text: "o"}
	get(t, fc, "f", []string{"a"}, a.render)
	get(t, fc, "f", []string{"b"}, b.render)
	get(t, fc, "g", []string{"a"}, other.render)
	if err := fc.Invalidate(context.Background(), "f", "a"); err != nil {
		t.Fatal(err)
	}
	if got := get(t, fc, "f", []string{"a"}, a.render); got != "a#2" {
		t.Errorf("invalidated variant: got %q, want a#2", got)
	}
	if got := get(t, fc, "f", []string{"b"}, b.render); got != "b#1" {
		t.Errorf("other variant: got %q, want b#1", got)
	}
	if got := get(t, fc, "g", []string{"a"}, other.render); got != "o#1" {
		t.Errorf("other name: got %q, want o#1", got)
	}
}

// TestInvalidateDuringRender checks that Invalidate keeps a render in
// flight from storing its output, whatever the call's options: a render
// with its own TTL, or with dependencies, goes through another memo.Func
// than Invalidate's.
func TestInvalidateDuringRender(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts []fragment.Option
	}{
		{"default", nil},
		{"TTL", []fragment.Option{fragment.TTL(time.Hour)}},
		{"DependsOn", []fragment.Option{fragment.DependsOn(&version{})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fc, _ := newCache(t, fragment.Options{})
			c := &counter{text: "x"}
			started, release := make(chan struct{}), make(chan struct{})
			slow := func(w io.Writer) error {
				close(started)
				<-release
				return c.render(w)
			}
			done := make(chan string)
			go func() { done <- get(t, fc, "f", nil, slow, tc.opts...) }()
			<-started
			if err := fc.Invalidate(context.Background(), "f"); err != nil {
				t.Fatal(err)
			}
			close(release)
			if got := <-done; got != "x#1" {
				t.Errorf("render in flight: got %q, want x#1", got)
			}
			if got := get(t, fc, "f", nil, c.render, tc.opts...); got != "x#2" {
				t.Errorf("after Invalidate: got %q, want x#2 (the render that was in flight was stored)", got)
			}
		})
	}
}

func TestInvalidateAllVariants(t *testing.T) {
	t.Parallel()
	fc, _ := newCache(t, fragment.Options{})
	var fs []*counter
	for i := range 5 {
		c := &counter{text: fmt.Sprint(i)}
		fs = append(fs, c)
		// Variants stored under different TTLs belong to the name too.
		get(t, fc, "f", []string{fmt.Sprint(i)}, c.render, fragment.TTL(time.Duration(i+1)*time.Minute))
	}
	other := &counter{text: "o"}
	get(t, fc, "g", []string{"0"}, other.render)
	if err := fc.InvalidateAll(context.Background(), "f"); err != nil {
		t.Fatal(err)
	}
	for i, c := range fs {
		if got, want := get(t, fc, "f", []string{fmt.Sprint(i)}, c.render), fmt.Sprintf("%d#2", i); got != want {
			t.Errorf("variant %d: got %q, want %q", i, got, want)
		}
	}
	if got := get(t, fc, "g", []string{"0"}, other.render); got != "o#1" {
		t.Errorf("other name: got %q, want o#1", got)
	}
}

// A second Cache over the same store (another process, in effect) sees
// the first one's invalidations.
func TestInvalidationSharedThroughStore(t *testing.T) {
	t.Parallel()
	clock := cachetest.NewFakeClock(time.Now())
	store, err := memory.NewStore(memory.StoreOptions{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	one, _ := newCache(t, fragment.Options{Store: store})
	two, _ := newCache(t, fragment.Options{Store: store})
	c := &counter{text: "x"}
	get(t, one, "f", []string{"1"}, c.render)
	if got := get(t, two, "f", []string{"1"}, c.render); got != "x#1" {
		t.Fatalf("second cache: got %q, want the first one's x#1", got)
	}
	if err := two.InvalidateAll(context.Background(), "f"); err != nil {
		t.Fatal(err)
	}
	if got := get(t, one, "f", []string{"1"}, c.render); got != "x#2" {
		t.Errorf("after InvalidateAll through the other cache: got %q, want x#2", got)
	}
	if err := one.Invalidate(context.Background(), "f", "1"); err != nil {
		t.Fatal(err)
	}
	if got := get(t, two, "f", []string{"1"}, c.render); got != "x#3" {
		t.Errorf("after Invalidate through the other cache: got %q, want x#3", got)
	}
}

// A render that fails or panics writes nothing, stores nothing and gives
// its error to the caller.
func TestFailedRenderNotCached(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	for _, tc := range []struct {
		name   string
		render func(io.Writer) error
		is     func(error) bool
	}{
		{"error", func(w io.Writer) error {
			io.WriteString(w, "partial")
			return boom
		}, func(err error) bool { return errors.Is(err, boom) }},
		{"panic", func(w io.Writer) error {
			io.WriteString(w, "partial")
			panic("kaboom")
		}, func(err error) bool { pe := (*cachekit.PanicError)(nil); return errors.As(err, &pe) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fc, _ := newCache(t, fragment.Options{})
			var b strings.Builder
			if err := fc.Render(context.Background(), &b, "f", nil, tc.render); !tc.is(err) {
				t.Fatalf("err = %v, want the render's %s", err, tc.name)
			}
			if b.Len() != 0 {
				t.Errorf("a failed render wrote %q", b.String())
			}
			c := &counter{text: "ok"}
			if got := get(t, fc, "f", nil, c.render); got != "ok#1" {
				t.Errorf("after a failed render: got %q, want a new render ok#1", got)
			}
		})
	}
}

// Many goroutines rendering the same fragment at once share one render.
func TestOneRenderPerKey(t *testing.T) {
	t.Parallel()
	fc, _ := newCache(t, fragment.Options{})
	const goroutines, keys = 64, 4
	var renders [keys]atomic.Int64
	start := make(chan struct{})
	release := make(chan struct{})
	var wg sync.WaitGroup
	var entered atomic.Int64
	results := make([]string, goroutines)
	for i := range goroutines {
		wg.Go(func() {
			k := i % keys
			<-start
			var b strings.Builder
			err := fc.Render(context.Background(), &b, "f", []string{fmt.Sprint(k)}, func(w io.Writer) error {
				renders[k].Add(1)
				entered.Add(1)
				<-release // hold the render until every goroutine has asked
				_, err := fmt.Fprintf(w, "k%d", k)
				return err
			})
			if err != nil {
				t.Error(err)
			}
			results[i] = b.String()
		})
	}
	close(start)
	// Wait until each key's render has started, then let the others pile
	// up behind them (they either join the render or hit its result).
	for entered.Load() < keys {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	for k := range keys {
		if n := renders[k].Load(); n != 1 {
			t.Errorf("key %d rendered %d times, want 1", k, n)
		}
	}
	for i, r := range results {
		if want := fmt.Sprintf("k%d", i%keys); r != want {
			t.Errorf("goroutine %d got %q, want %q", i, r, want)
		}
	}
}

func TestFragmentIsHTML(t *testing.T) {
	t.Parallel()
	fc, _ := newCache(t, fragment.Options{})
	inner := template.Must(template.New("i").Parse(`<em>{{.}}</em>`))
	outer := template.Must(template.New("o").Parse(`<div title="{{.T}}">{{.H}}</div>`))
	for i := range 2 { // a miss, then a hit
		h, err := fc.Fragment(context.Background(), "i", nil, func(w io.Writer) error {
			return inner.Execute(w, `"5 < 6" & more`)
		})
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		if err := outer.Execute(&b, map[string]any{"T": "a<b", "H": h}); err != nil {
			t.Fatal(err)
		}
		want := `<div title="a&lt;b"><em>&#34;5 &lt; 6&#34; &amp; more</em></div>`
		if b.String() != want {
			t.Errorf("call %d: got %s, want %s", i, b.String(), want)
		}
	}
}

func TestClose(t *testing.T) {
	t.Parallel()
	fc, err := fragment.New(fragment.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := &counter{}
	if err := fc.Render(context.Background(), io.Discard, "f", nil, c.render); err != nil {
		t.Fatal(err)
	}
	if err := fc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := fc.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := fc.Render(context.Background(), io.Discard, "f", nil, c.render); !errors.Is(err, cachekit.ErrClosed) {
		t.Errorf("Render after Close: err = %v, want ErrClosed", err)
	}
}

func TestCloseLeavesGivenStoreOpen(t *testing.T) {
	t.Parallel()
	store, err := memory.NewStore(memory.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	fc, err := fragment.New(fragment.Options{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	if err := fc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := store.Set(context.Background(), "k", []byte("v"), time.Minute); err != nil {
		t.Errorf("store after Close: %v", err)
	}
}

func TestOptionsValidated(t *testing.T) {
	t.Parallel()
	for _, o := range []fragment.Options{
		{Version: -1}, {TTL: -time.Second}, {LoadTimeout: -time.Second},
	} {
		if fc, err := fragment.New(o); err == nil {
			fc.Close()
			t.Errorf("New(%+v) succeeded, want an error", o)
		}
	}
}

// bytesOnly hides every capability of a store but the Store methods: the
// Cache then encodes fragments (the byte tier) and invalidates a name's
// variants by deleting its generation instead of incrementing it.
type bytesOnly struct{ cachekit.Store }

func TestByteStore(t *testing.T) {
	t.Parallel()
	clock := cachetest.NewFakeClock(time.Now())
	s, err := memory.NewStore(memory.StoreOptions{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	fc, _ := newCache(t, fragment.Options{Store: bytesOnly{s}})
	ctx := context.Background()
	a, b := &counter{text: "<a>"}, &counter{text: "b"}
	for _, want := range []string{"<a>#1", "<a>#1"} {
		if got := get(t, fc, "f", []string{"a"}, a.render); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	get(t, fc, "f", []string{"b"}, b.render)
	if err := fc.Invalidate(ctx, "f", "a"); err != nil {
		t.Fatal(err)
	}
	if got := get(t, fc, "f", []string{"a"}, a.render); got != "<a>#2" {
		t.Errorf("after Invalidate: got %q, want <a>#2", got)
	}
	if got := get(t, fc, "f", []string{"b"}, b.render); got != "b#1" {
		t.Errorf("other variant after Invalidate: got %q, want b#1", got)
	}
	if err := fc.InvalidateAll(ctx, "f"); err != nil {
		t.Fatal(err)
	}
	if got := get(t, fc, "f", []string{"b"}, b.render); got != "b#2" {
		t.Errorf("after InvalidateAll: got %q, want b#2", got)
	}
}

func TestObserver(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var events []string
	fc, _ := newCache(t, fragment.Options{Observer: memo.ObserverFunc(func(e memo.Event) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, e.Kind.String()+" "+e.Func+" "+e.Key)
	})})
	c := &counter{}
	get(t, fc, "side", []string{"a"}, c.render)
	get(t, fc, "side", []string{"a"}, c.render)
	mu.Lock()
	defer mu.Unlock()
	want := []string{`miss side side("1:a")`, `hit side side("1:a")`}
	if !slices.Equal(events, want) {
		t.Errorf("events %q, want %q", events, want)
	}
}
