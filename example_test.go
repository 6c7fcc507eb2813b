package cachekit_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/codec"
	"github.com/cachekit/cachekit/memory"
)

func Example() {
	ctx := context.Background()
	store, err := memory.NewStore(memory.StoreOptions{MaxEntries: 1000})
	if err != nil {
		panic(err)
	}
	users := cachekit.Must[*user](store, cachekit.Options{Prefix: "app", DefaultTTL: time.Minute})
	defer users.Close()

	u := &user{ID: 42, Name: "Ada"}
	if err := users.Set(ctx, "user:42", u); err != nil {
		panic(err)
	}
	got, _ := users.Get(ctx, "user:42")
	fmt.Println(got.Name, got == u) // the object tier returns the same pointer

	_, err = users.Get(ctx, "user:7")
	fmt.Println(errors.Is(err, cachekit.ErrMiss))
	// Output:
	// Ada true
	// true
}

func ExampleCache_GetOrLoad() {
	ctx := context.Background()
	store, _ := memory.NewStore(memory.StoreOptions{})
	squares := cachekit.Must[int](store, cachekit.Options{Codec: codec.Gob})
	defer squares.Close()

	calls := 0
	load := func(context.Context) (int, error) { calls++; return 12 * 12, nil }
	for range 3 {
		v, err := squares.GetOrLoad(ctx, "square:12", load)
		if err != nil {
			panic(err)
		}
		fmt.Println(v)
	}
	fmt.Println("computed", calls, "time")
	// Output:
	// 144
	// 144
	// 144
	// computed 1 time
}

func ExampleIncr() {
	ctx := context.Background()
	store, _ := memory.NewStore(memory.StoreOptions{})
	counters := cachekit.Must[int64](store, cachekit.Options{})
	defer counters.Close()

	_ = counters.Set(ctx, "visits", 10, cachekit.TTL(time.Hour))
	n, _ := cachekit.Incr(ctx, counters, "visits", 5)
	fmt.Println(n)
	_, err := cachekit.Incr(ctx, counters, "absent", 1)
	fmt.Println(errors.Is(err, cachekit.ErrMiss))
	// Output:
	// 15
	// true
}

func ExampleMemcachedKey() {
	k, _ := cachekit.MemcachedKey("user:42")
	fmt.Println(k)
	long, _ := cachekit.MemcachedKey("a key with spaces")
	fmt.Println(long[:18], len(long))
	// Output:
	// user:42
	// a_key_with_spaces- 82
}
