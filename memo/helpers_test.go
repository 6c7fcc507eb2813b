package memo_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/cachetest"
	"github.com/cachekit/cachekit/memo"
	"github.com/cachekit/cachekit/memory"
)

// epoch is the fake clocks' start.
var epoch = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// newStore returns a memory store reading clock (nil: the real one),
// closed when t ends.
func newStore(t testing.TB, clock cachekit.Clock) *memory.Store {
	t.Helper()
	s, err := memory.NewStore(memory.StoreOptions{MaxEntries: 1 << 18, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// newCache returns a cache of V over store (a fresh memory store if nil).
func newCache[V any](t testing.TB, store cachekit.Store, opts cachekit.Options) *cachekit.Cache[V] {
	t.Helper()
	if store == nil {
		store = newStore(t, opts.Clock)
	}
	c, err := cachekit.New[V](store, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newFunc wraps fn and closes it when t ends.
func newFunc[A, V any](t testing.TB, c *cachekit.Cache[V], name string, fn func(context.Context, A) (V, error), opts memo.Options) *memo.Func[A, V] {
	t.Helper()
	f, err := memo.New(c, name, fn, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// fakeClock returns a fake clock at epoch.
func fakeClock() *cachetest.FakeClock { return cachetest.NewFakeClock(epoch) }

// recorder is an Observer that counts events by kind.
type recorder struct {
	mu     sync.Mutex // protects events
	events []memo.Event
}

func (r *recorder) Observe(e memo.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

// count returns how many events of kind were seen.
func (r *recorder) count(kind memo.EventKind) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

// counter counts calls of a test function.
type counter struct{ n atomic.Int64 }

func (c *counter) add() int64 { return c.n.Add(1) }
func (c *counter) get() int64 { return c.n.Load() }

// waitFor polls cond every millisecond until it holds, failing t after
// 10 s (real time: for background goroutines to finish, not for timing).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
