package httpcache_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/cachekit/cachekit/httpcache"
)

func Example() {
	hc := httpcache.Must(httpcache.Options{TTL: time.Minute})
	defer hc.Close()

	runs := 0
	mux := http.NewServeMux()
	mux.Handle("GET /posts/{id}", hc.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		runs++
		w.Header().Set("Surrogate-Key", "post-"+r.PathValue("id"))
		fmt.Fprintf(w, "post %s", r.PathValue("id"))
	})))

	get := func() string {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest("GET", "http://blog.example/posts/1", nil))
		return w.Header().Get("Cache-Status")
	}
	fmt.Println(get())
	fmt.Println(get())
	// An edit of post 1 invalidates every page tagged with it.
	if err := hc.InvalidateTags(context.Background(), "post-1"); err != nil {
		fmt.Println(err)
	}
	fmt.Println(get())
	fmt.Println("handler runs:", runs)
	// Output:
	// cachekit; fwd=uri-miss; fwd-status=200; stored
	// cachekit; hit; ttl=60
	// cachekit; fwd=uri-miss; fwd-status=200; stored
	// handler runs: 2
}
