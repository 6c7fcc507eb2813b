package fragment_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cachekit/cachekit/fragment"
	"github.com/cachekit/cachekit/memo"
)

// version is a fragment.Deps whose token is a counter: bumping it stands
// for a change of the data the fragment shows.
type version struct {
	n    atomic.Int64
	err  error
	keys sync.Map // keys asked for
}

func (v *version) Token(_ context.Context, key string) (string, error) {
	v.keys.Store(key, true)
	if v.err != nil {
		return "", v.err
	}
	return fmt.Sprint(v.n.Load()), nil
}

// TestDependsOn checks the renders of a fragment with dependencies, and
// that the observer's hits and misses match them: a read of a fragment
// stored under an older token renders it again, so it is a miss, not a
// hit.
func TestDependsOn(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	counts := map[memo.EventKind]int{}
	fc, _ := newCache(t, fragment.Options{Observer: memo.ObserverFunc(func(e memo.Event) {
		mu.Lock()
		defer mu.Unlock()
		counts[e.Kind]++
	})})
	v := &version{}
	c := &counter{text: "x"}
	dep := fragment.DependsOn(v)
	steps := []struct {
		bump         bool
		want         string
		hits, misses int // totals after the step
	}{
		{false, "x#1", 0, 1}, // first render
		{false, "x#1", 1, 1}, // hit
		{true, "x#2", 1, 2},  // dependency changed: rendered again
		{false, "x#2", 2, 2}, // hit on the new render
		{true, "x#3", 2, 3},
	}
	for i, s := range steps {
		if s.bump {
			v.n.Add(1)
		}
		if got := get(t, fc, "f", []string{"1"}, c.render, dep); got != s.want {
			t.Errorf("step %d: got %q, want %q", i, got, s.want)
		}
		mu.Lock()
		hits, misses := counts[memo.Hit], counts[memo.Miss]
		mu.Unlock()
		if hits != s.hits || misses != s.misses {
			t.Errorf("step %d: observer saw %d hits and %d misses, want %d and %d", i, hits, misses, s.hits, s.misses)
		}
	}
	key, _ := fc.Key("f", "1")
	if _, ok := v.keys.Load(key); !ok {
		t.Errorf("Token was not asked for the fragment's key %s", key)
	}
	// Invalidation works on fragments with dependencies too.
	if err := fc.Invalidate(context.Background(), "f", "1"); err != nil {
		t.Fatal(err)
	}
	if got := get(t, fc, "f", []string{"1"}, c.render, dep); got != "x#4" {
		t.Errorf("after Invalidate: got %q, want x#4", got)
	}
}

func TestOptionsDeps(t *testing.T) {
	t.Parallel()
	v := &version{}
	fc, _ := newCache(t, fragment.Options{Deps: func(name string, vary []string) fragment.Deps {
		if name == "dep" {
			return v
		}
		return nil
	}})
	p, _ := page(t, fc, `{{fragment "box" .}}|{{define "dep"}}{{.}}{{end}}{{fragment "dep" .}}`)
	if got := exec(t, p, "a"); got != "<i>a</i>1|a" {
		t.Fatalf("got %s", got)
	}
	v.n.Add(1)
	if got := exec(t, p, "b"); got != "<i>a</i>1|b" {
		t.Errorf("after a change of dep's data: got %s, want <i>a</i>1|b", got)
	}
}

func TestDepsTokenError(t *testing.T) {
	t.Parallel()
	fc, _ := newCache(t, fragment.Options{})
	boom := errors.New("token store down")
	c := &counter{}
	err := fc.Render(context.Background(), io.Discard, "f", nil, c.render, fragment.DependsOn(&version{err: boom}))
	if !errors.Is(err, boom) {
		t.Errorf("err = %v, want the token's error", err)
	}
	if n := c.n.Load(); n != 0 {
		t.Errorf("rendered %d times without a token", n)
	}
}

// After a change, many goroutines holding the new token share one
// re-render.
func TestDependsOnOneRerender(t *testing.T) {
	t.Parallel()
	fc, _ := newCache(t, fragment.Options{})
	v := &version{}
	var renders atomic.Int64
	release := make(chan struct{})
	render := func(w io.Writer) error {
		n := renders.Add(1)
		if n > 1 {
			<-release
		}
		_, err := fmt.Fprint(w, n)
		return err
	}
	get(t, fc, "f", nil, render, fragment.DependsOn(v))
	v.n.Add(1)
	const goroutines = 32
	var wg sync.WaitGroup
	out := make([]string, goroutines)
	for i := range goroutines {
		wg.Go(func() {
			var b strings.Builder
			if err := fc.Render(context.Background(), &b, "f", nil, render, fragment.DependsOn(v)); err != nil {
				t.Error(err)
			}
			out[i] = b.String()
		})
	}
	for renders.Load() < 2 {
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	if n := renders.Load(); n != 2 {
		t.Errorf("rendered %d times, want 2 (the first, one after the change)", n)
	}
	for i, s := range out {
		if s != "2" {
			t.Errorf("goroutine %d got %q, want the re-render 2", i, s)
		}
	}
}

// A caller that reads the new token while a render started under the old
// one is in flight joins it, but does not take its output: it renders
// again. The first caller, which started before the change, gets the old
// output.
func TestDependsOnJoinedRenderPredatingChange(t *testing.T) {
	t.Parallel()
	fc, _ := newCache(t, fragment.Options{})
	v := &version{}
	var renders atomic.Int64
	started, release := make(chan struct{}), make(chan struct{})
	render := func(w io.Writer) error {
		n := renders.Add(1)
		if n == 1 {
			close(started)
			<-release // the data changes while the first render runs
		}
		_, err := fmt.Fprint(w, "render ", n)
		return err
	}
	first := make(chan string)
	go func() {
		var b strings.Builder
		if err := fc.Render(context.Background(), &b, "f", nil, render, fragment.DependsOn(v)); err != nil {
			t.Error(err)
		}
		first <- b.String()
	}()
	<-started
	v.n.Add(1)
	second := make(chan string)
	go func() {
		var b strings.Builder
		if err := fc.Render(context.Background(), &b, "f", nil, render, fragment.DependsOn(v)); err != nil {
			t.Error(err)
		}
		second <- b.String()
	}()
	// Whether the second caller joins the first render or finds its
	// stored output, it must not return it.
	close(release)
	if got := <-first; got != "render 1" {
		t.Errorf("first caller: got %q, want render 1", got)
	}
	if got := <-second; got != "render 2" {
		t.Errorf("second caller: got %q, want render 2 (after the change)", got)
	}
	if got := get(t, fc, "f", nil, render, fragment.DependsOn(v)); got != "render 2" {
		t.Errorf("then: got %q, want the stored render 2", got)
	}
}
