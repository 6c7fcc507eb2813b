package memo_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/cachetest"
	"github.com/cachekit/cachekit/memo"
	"github.com/cachekit/cachekit/memory"
)

type User struct {
	ID   int
	Name string
}

func ExampleNew() {
	ctx := context.Background()
	store, _ := memory.NewStore(memory.StoreOptions{})
	cache := cachekit.Must[*User](store, cachekit.Options{Prefix: "app"})
	defer cache.Close()

	loads := 0
	getUser := memo.Must(cache, "users.Get", func(ctx context.Context, id int) (*User, error) {
		loads++ // a database query, say
		return &User{ID: id, Name: fmt.Sprint("user ", id)}, nil
	}, memo.Options{TTL: time.Minute})
	defer getUser.Close()

	u, _ := getUser.Call(ctx, 42)
	u, _ = getUser.Call(ctx, 42) // from the cache
	fmt.Println(u.Name, "loaded", loads, "time(s)")

	_ = getUser.Invalidate(ctx, 42) // the next call loads again
	getUser.Call(ctx, 42)
	fmt.Println("loaded", loads, "times")

	key, _ := getUser.Key(42)
	storeKey, _ := cache.Key(key)
	fmt.Println(key, storeKey)
	// Output:
	// user 42 loaded 1 time(s)
	// loaded 2 times
	// users.Get(42) app:1:users.Get(42)
}

func ExampleFunc_Key() {
	type Query struct {
		Text  string
		Page  int
		Trace string `cache:"-"` // not part of the key
		Lang  string `cache:"lang"`
	}
	store, _ := memory.NewStore(memory.StoreOptions{})
	cache := cachekit.Must[[]string](store, cachekit.Options{})
	defer cache.Close()
	search := memo.Must(cache, "search.Run", func(ctx context.Context, q Query) ([]string, error) {
		return nil, nil
	}, memo.Options{Version: 2})

	key, _ := search.Key(Query{Text: "go cache", Page: 2, Trace: "abc", Lang: "en"})
	fmt.Println(key)
	// Output:
	// search.Run@v2(Text="go cache",Page=2,lang="en")
}

func ExampleGroup() {
	ctx := context.Background()
	store, _ := memory.NewStore(memory.StoreOptions{})
	users := cachekit.Must[*User](store, cachekit.Options{})
	counts := cachekit.Must[int](store, cachekit.Options{})
	defer users.Close()

	// Both functions read the users table: one group invalidates both.
	table, _ := memo.NewGroup(users, "table:users", memo.GroupOptions{})
	getUser := memo.Must(users, "users.Get", func(ctx context.Context, id int) (*User, error) {
		return &User{ID: id}, nil
	}, memo.Options{Groups: []*memo.Group{table}})
	countUsers := memo.Must(counts, "users.Count", func(ctx context.Context, _ struct{}) (int, error) {
		return 1000, nil
	}, memo.Options{Groups: []*memo.Group{table}})

	getUser.Call(ctx, 1)
	countUsers.Call(ctx, struct{}{})

	_ = table.Invalidate(ctx) // one store operation, however many values

	_, err1 := getUser.Peek(ctx, 1)
	_, err2 := countUsers.Peek(ctx, struct{}{})
	fmt.Println(errors.Is(err1, cachekit.ErrMiss), errors.Is(err2, cachekit.ErrMiss))
	// Output:
	// true true
}

func ExampleNewBatch() {
	ctx := context.Background()
	store, _ := memory.NewStore(memory.StoreOptions{})
	cache := cachekit.Must[string](store, cachekit.Options{})
	defer cache.Close()

	names, _ := memo.NewBatch(cache, "users.Names", func(ctx context.Context, ids []int) (map[int]string, error) {
		slices.Sort(ids)
		fmt.Println("query for", ids) // SELECT id, name FROM users WHERE id IN (...)
		out := map[int]string{}
		for _, id := range ids {
			if id != 404 {
				out[id] = fmt.Sprint("user ", id)
			}
		}
		return out, nil
	}, memo.Options{NegativeTTL: time.Minute})
	defer names.Close()

	m, _ := names.Call(ctx, []int{1, 2, 404})
	fmt.Println(len(m), m[1])
	m, _ = names.Call(ctx, []int{1, 2, 3, 404}) // only 3 is queried
	fmt.Println(len(m), m[3])
	// Output:
	// query for [1 2 404]
	// 2 user 1
	// query for [3]
	// 3 user 3
}

func ExampleOptions_staleWhileRevalidate() {
	ctx := context.Background()
	clock := cachetest.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	store, _ := memory.NewStore(memory.StoreOptions{Clock: clock})
	cache := cachekit.Must[string](store, cachekit.Options{Clock: clock})
	defer cache.Close()

	version := 0
	report := memo.Must(cache, "report", func(ctx context.Context, _ string) (string, error) {
		version++
		return fmt.Sprint("report v", version), nil
	}, memo.Options{TTL: time.Minute, StaleWhileRevalidate: time.Hour, Clock: clock})

	report.Call(ctx, "daily")
	clock.Advance(2 * time.Minute) // stale: served at once, refreshed in the background
	v, _ := report.Call(ctx, "daily")
	fmt.Println(v)
	report.Close() // waits for the background refresh
	key, _ := report.Key("daily")
	v, _ = cache.Get(ctx, key)
	fmt.Println(v)
	// Output:
	// report v1
	// report v2
}
