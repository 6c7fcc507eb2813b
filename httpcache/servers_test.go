package httpcache

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/disk"
	"github.com/cachekit/cachekit/internal/testserver"
	"github.com/cachekit/cachekit/memcached"
	"github.com/cachekit/cachekit/memory"
	"github.com/cachekit/cachekit/redis"
)

// plainStore hides every optional capability of a store (only the Store
// interface's methods are promoted), to check the fallbacks: Set for
// Adder, a Get per key for Batcher, Delete for Counter.
type plainStore struct{ cachekit.Store }

// TestSharedStores runs two Caches, as two processes would, over each real
// store and over a store without optional capabilities: what one stores
// the other serves, and what one invalidates the other stops serving.
func TestSharedStores(t *testing.T) {
	for _, name := range []string{"plain", "disk", "redis", "memcached"} {
		t.Run(name, func(t *testing.T) {
			store := openStore(t, name)
			t.Cleanup(func() { store.Close() })
			var runs atomic.Int64
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				runs.Add(1)
				w.Header().Set("Surrogate-Key", "post-"+r.URL.Query().Get("id")+" posts")
				w.Header().Set("Vary", "Accept-Language")
				fmt.Fprintf(w, "%s %s", r.URL.RequestURI(), r.Header.Get("Accept-Language"))
			})
			var hs []http.Handler
			var cs []*Cache
			for range 2 {
				c := Must(Options{Store: store})
				t.Cleanup(func() { c.Close() })
				cs = append(cs, c)
				hs = append(hs, c.Middleware(next))
			}
			ctx := context.Background()
			steps := []struct {
				act  func() error
				via  int
				url  string
				lang string
				hit  bool
			}{
				{via: 0, url: "/p?id=1", lang: "en"},
				{via: 1, url: "/p?id=1", lang: "en", hit: true},
				{via: 1, url: "/p?id=1", lang: "fr"},
				{via: 0, url: "/p?id=1", lang: "fr", hit: true},
				{via: 0, url: "/p?id=2", lang: "en"},
				{act: func() error { return cs[1].InvalidateTags(ctx, "post-1") }, via: 0, url: "/p?id=1", lang: "en"},
				{via: 1, url: "/p?id=2", lang: "en", hit: true},
				{act: func() error { return cs[0].InvalidateURL(ctx, "http://example.com/p?id=2") }, via: 1, url: "/p?id=2", lang: "en"},
				{via: 1, url: "/p?id=1", lang: "en", hit: true},
				{act: func() error { return cs[0].InvalidateTags(ctx, "posts") }, via: 1, url: "/p?id=1", lang: "en"},
				{via: 0, url: "/p?id=2", lang: "en"},
			}
			for i, s := range steps {
				if s.act != nil {
					if err := s.act(); err != nil {
						t.Fatal(err)
					}
				}
				w := do(hs[s.via], "GET", s.url, "Accept-Language", s.lang)
				if want := s.url + " " + s.lang; body(t, w) != want || hasStatus(w, "hit") != s.hit {
					t.Errorf("step %d: %q %q, want %q hit=%v", i, body(t, w), w.Header().Get("Cache-Status"), want, s.hit)
				}
			}
			if n := runs.Load(); n != 7 {
				t.Errorf("handler ran %d times, want 7", n)
			}
		})
	}
}

// openStore opens a fresh, empty store of the named kind; the servers'
// keys get a random prefix and are cleared afterwards.
func openStore(t *testing.T, kind string) cachekit.Store {
	var s cachekit.Store
	var err error
	ns := "httpcache-test-" + rand.Text()[:12]
	switch kind {
	case "plain":
		s, err = memory.NewStore(memory.StoreOptions{})
		s = plainStore{s}
	case "disk":
		s, err = disk.New(t.Context(), disk.Options{Dir: t.TempDir()})
	case "redis":
		s, err = redis.New(t.Context(), redis.Options{Addrs: []string{testserver.Redis(t)}, Prefix: ns + ":"})
	case "memcached":
		s, err = memcached.New(t.Context(), memcached.Options{Addrs: []string{testserver.Memcached(t)}, Prefix: ns})
	}
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := s.(cachekit.Clearer); ok && kind != "disk" {
		t.Cleanup(func() { c.Clear(context.Background()) })
	}
	return s
}

// lostAddStore is a real store whose Add always reports another writer's
// key, which is then gone: a stamp minted concurrently and evicted before
// this writer could read it.
type lostAddStore struct{ *memory.Store }

func (s lostAddStore) Add(context.Context, string, []byte, time.Duration) (bool, error) {
	return false, nil
}

// TestMintAfterLostAdd: a stamp that another writer added and that is gone
// when read back is minted anew, and responses are stored and served.
func TestMintAfterLostAdd(t *testing.T) {
	store, err := memory.NewStore(memory.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := Must(Options{Store: lostAddStore{store}})
	t.Cleanup(func() { c.Close(); store.Close() })
	h := c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Surrogate-Key", "posts")
		fmt.Fprint(w, "page")
	}))
	for i, want := range []string{"stored", "hit"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://example.com/p", nil))
		if cs := w.Header().Get("Cache-Status"); !strings.Contains(cs, want) {
			t.Fatalf("request %d: Cache-Status %q, want %q", i+1, cs, want)
		}
	}
}
