package memory_test

import (
	"context"
	"fmt"
	"time"

	"github.com/cachekit/cachekit/memory"
)

type user struct {
	Name   string
	Visits int
}

func Example() {
	c := memory.Must(memory.Options[string, *user]{MaxEntries: 1000, TTL: time.Minute})
	defer c.Close()

	u := &user{Name: "ada"}
	c.Set("u:1", u)

	got, ok := c.Get("u:1")
	fmt.Println(got.Name, ok, got == u) // the same pointer comes back
	got.Visits++                        // and mutations are shared
	fmt.Println(u.Visits)

	_, ok = c.Get("u:2")
	fmt.Println(ok)
	// Output:
	// ada true true
	// 1
	// false
}

func ExampleCache_GetOrLoad() {
	c := memory.Must(memory.Options[int, string]{})
	defer c.Close()

	load := func(ctx context.Context, id int) (string, error) {
		fmt.Println("loading", id)
		return fmt.Sprintf("user-%d", id), nil
	}
	for range 2 {
		v, err := c.GetOrLoad(context.Background(), 7, load)
		fmt.Println(v, err)
	}
	// Output:
	// loading 7
	// user-7 <nil>
	// user-7 <nil>
}

func ExampleNewStore() {
	s, err := memory.NewStore(memory.StoreOptions{MaxBytes: 64 << 20})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	ctx := context.Background()

	s.Set(ctx, "hits", []byte("41"), time.Hour)
	n, err := s.IncrBy(ctx, "hits", 1)
	fmt.Println(n, err)

	v, err := s.Get(ctx, "hits")
	fmt.Printf("%s %v\n", v, err)

	_, err = s.Get(ctx, "absent")
	fmt.Println(err)
	// Output:
	// 42 <nil>
	// 42 <nil>
	// cachekit: miss
}
