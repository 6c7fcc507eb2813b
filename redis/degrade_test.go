package redis_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/internal/testserver"
	"github.com/cachekit/cachekit/redis"
)

// cachekit.Options.Degrade over a Redis that goes away: reads are misses,
// writes succeed, GetOrLoad loads, deletes still fail; every swallowed
// error is counted and reported. Without Degrade the same calls fail with
// ErrUnavailable.
func TestFacadeDegradeServerDown(t *testing.T) {
	t.Parallel()
	srv := testserver.StartRedis(t)
	var reported atomic.Int64
	st := openPrivate(t, []string{srv.Addr}, redis.Options{Timeout: 200 * time.Millisecond})
	c := cachekit.Must[string](st, cachekit.Options{
		Degrade: true,
		OnError: func(op, key string, err error) { reported.Add(1) },
	})
	strict := cachekit.Must[string](st, cachekit.Options{})
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	srv.Kill()

	if _, err := strict.Get(ctx, "k"); !errors.Is(err, cachekit.ErrUnavailable) {
		t.Fatalf("strict Get: %v, want ErrUnavailable", err)
	}
	if _, err := c.Get(ctx, "k"); !errors.Is(err, cachekit.ErrMiss) {
		t.Fatalf("degraded Get: %v, want a miss", err)
	}
	if err := c.Set(ctx, "k", "w"); err != nil {
		t.Fatalf("degraded Set: %v", err)
	}
	if added, err := c.Add(ctx, "k2", "w"); err != nil || added {
		t.Fatalf("degraded Add: %v, %v; want false, nil", added, err)
	}
	v, err := c.GetOrLoad(ctx, "k", func(context.Context) (string, error) { return "loaded", nil })
	if err != nil || v != "loaded" {
		t.Fatalf("degraded GetOrLoad: %q, %v", v, err)
	}
	if got, err := c.GetMany(ctx, "k", "k2"); err != nil || len(got) != 0 {
		t.Fatalf("degraded GetMany: %v, %v", got, err)
	}
	if _, err := c.Delete(ctx, "k"); !errors.Is(err, cachekit.ErrUnavailable) {
		t.Fatalf("degraded Delete: %v; a failed delete must not be swallowed", err)
	}
	if c.Degraded() < 5 || reported.Load() < 5 {
		t.Fatalf("degraded %d, reported %d; want at least 5 each", c.Degraded(), reported.Load())
	}
	srv.Start()
	deadline := time.Now().Add(10 * time.Second)
	for strict.Set(ctx, "k", "back") != nil {
		if time.Now().After(deadline) {
			t.Fatal("no recovery after restart")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if v, err := c.Get(ctx, "k"); err != nil || v != "back" {
		t.Fatalf("after restart: %q, %v", v, err)
	}
}
