package redis_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/cachekit/cachekit/redis"
)

// Example connects to the Redis server named by CACHEKIT_REDIS_ADDR (`make
// test` starts one), stores a value and reads it back. It has no Output
// line, so go test compiles it but does not run it: it needs a server.
func Example() {
	ctx := context.Background()
	s, err := redis.New(ctx, redis.Options{
		Addrs:  []string{os.Getenv("CACHEKIT_REDIS_ADDR")}, // several addresses: a cluster
		Prefix: "example:",                                 // every key is stored as example:<key>
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()

	if err := s.Set(ctx, "greeting", []byte("hello"), time.Minute); err != nil {
		fmt.Println(err)
		return
	}
	v, err := s.Get(ctx, "greeting")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s\n", v)
	s.Delete(ctx, "greeting")
}
