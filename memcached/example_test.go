package memcached_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/memcached"
)

// A typed cache over a pool of two memcached servers. (Not run: it needs
// the servers. examples/ has runnable programs.)
func Example() {
	ctx := context.Background()
	store, err := memcached.New(ctx, memcached.Options{
		Addrs:   []string{"10.0.0.1:11211", "10.0.0.2:11211"},
		Prefix:  "myapp",
		Timeout: 200 * time.Millisecond,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	type user struct{ Name string }
	users := cachekit.Must[user](store, cachekit.Options{DefaultTTL: time.Hour})
	defer users.Close()

	if err := users.Set(ctx, "user:42", user{Name: "Ada"}); err != nil {
		// errors.Is(err, cachekit.ErrUnavailable): the key's server is down.
		fmt.Fprintln(os.Stderr, err)
		return
	}
	u, err := users.Get(ctx, "user:42")
	fmt.Println(u.Name, err)
}

// New validates its Options without contacting the servers; calls then
// refuse what memcached could not hold before sending anything.
func ExampleNew() {
	ctx := context.Background()
	_, err := memcached.New(ctx, memcached.Options{Addrs: []string{"127.0.0.1:11211"}, Prefix: "my:app"})
	fmt.Println(err)

	store, err := memcached.New(ctx, memcached.Options{Addrs: []string{"127.0.0.1:11211"}})
	if err != nil {
		panic(err)
	}
	defer store.Close()
	fmt.Println(store.Prefix())

	err = store.Set(ctx, "", []byte("v"), time.Minute)
	fmt.Println(errors.Is(err, cachekit.ErrInvalidKey))
	err = store.Set(ctx, "big", make([]byte, memcached.DefaultMaxValueSize+1), time.Minute)
	fmt.Println(errors.Is(err, cachekit.ErrTooLarge))
	// Output:
	// memcached: Options.Prefix "my:app": byte ':' not allowed (no control characters, spaces, ':' or '#')
	// cachekit
	// true
	// true
}
