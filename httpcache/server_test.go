package httpcache

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// TestOneRunPerKeyBehindServer: concurrent clients of a real server that
// miss the same key share one handler run. The handler blocks until every
// client has missed, so all of them are waiting while it runs; a client
// that reaches the run after it ended finds the stored response (the
// leader looks again before running), so the count is exact, not timed.
func TestOneRunPerKeyBehindServer(t *testing.T) {
	const clients = 16
	paths := []string{"/one", "/two"}
	f := newFixture(t, Options{})
	var misses atomic.Int64
	release := make(chan struct{})
	f.onEvent = func(e Event) {
		if e.Kind == Miss && misses.Add(1) == int64(clients*len(paths)) {
			close(release)
		}
	}
	var runs sync.Map // path -> *atomic.Int64
	for _, p := range paths {
		runs.Store(p, new(atomic.Int64))
	}
	srv := httptest.NewServer(f.c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := runs.Load(r.URL.Path)
		n.(*atomic.Int64).Add(1)
		<-release
		fmt.Fprintf(w, "page %s", r.URL.Path)
	})))
	defer srv.Close()

	var wg sync.WaitGroup
	statuses := make(chan string, clients*len(paths))
	for _, p := range paths {
		for range clients {
			wg.Go(func() {
				resp, err := srv.Client().Get(srv.URL + p)
				if err != nil {
					t.Error(err)
					return
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				if err != nil || string(b) != "page "+p {
					t.Errorf("%s: %q %v", p, b, err)
				}
				statuses <- resp.Header.Get("Cache-Status")
			})
		}
	}
	wg.Wait()
	close(statuses)
	for _, p := range paths {
		n, _ := runs.Load(p)
		if got := n.(*atomic.Int64).Load(); got != 1 {
			t.Errorf("%s: handler ran %d times, want 1", p, got)
		}
	}
	var stored, collapsed int
	for s := range statuses {
		switch {
		case strings.Contains(s, "collapsed"):
			collapsed++
		case strings.Contains(s, "stored"):
			stored++
		}
	}
	if stored != len(paths) || collapsed != (clients-1)*len(paths) {
		t.Errorf("stored %d, collapsed %d; want %d and %d", stored, collapsed, len(paths), (clients-1)*len(paths))
	}
}
