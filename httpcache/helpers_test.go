package httpcache

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cachekit/cachekit/cachetest"
	"github.com/cachekit/cachekit/memory"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// fixture is a Cache over a memory store sharing a fake clock, a counting
// handler and the events observed.
type fixture struct {
	t     *testing.T
	c     *Cache
	clock *cachetest.FakeClock
	runs  atomic.Int64

	mu     sync.Mutex
	events []Event

	// onEvent, when set before the first request, sees every event.
	onEvent func(Event)
}

// newFixture returns a fixture whose Options are opts with Store, Clock
// and Observer set.
func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	f := &fixture{t: t, clock: cachetest.NewFakeClock(t0)}
	s, err := memory.NewStore(memory.StoreOptions{Clock: f.clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	opts.Store, opts.Clock = s, f.clock
	opts.Observer = ObserverFunc(func(e Event) {
		f.mu.Lock()
		f.events = append(f.events, e)
		f.mu.Unlock()
		if f.onEvent != nil {
			f.onEvent(e)
		}
	})
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	f.c = c
	return f
}

// handler returns fn wrapped to count its runs.
func (f *fixture) handler(fn http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f.runs.Add(1)
		fn(w, r)
	}
}

// do serves one request through h and returns the recorded response.
func do(h http.Handler, method, target string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// kinds returns the reasons of the events of kind k, in order.
func (f *fixture) reasons(k EventKind) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, e := range f.events {
		if e.Kind == k {
			out = append(out, e.Reason)
		}
	}
	return out
}

func (f *fixture) count(k EventKind) int { return len(f.reasons(k)) }

func body(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	b, err := io.ReadAll(w.Result().Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func hasStatus(w *httptest.ResponseRecorder, part string) bool {
	return strings.Contains(w.Header().Get("Cache-Status"), part)
}
