package redis_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cachekit/cachekit/internal/testserver"
	"github.com/cachekit/cachekit/redis"
)

// TestReshard moves the slot holding a group of keys between the masters
// of a private cluster while a goroutine writes and reads them: no hang, no
// panic, no wrong value, and invalidations keep arriving after each move.
func TestReshard(t *testing.T) {
	t.Parallel()
	c := testserver.StartRedisCluster(t)
	c.MigrateBatch, c.MigratePause = 2, 20*time.Millisecond
	ctx := context.Background()
	s := openPrivate(t, c.Addrs, redis.Options{Timeout: 2 * time.Second})
	sub := openPrivate(t, c.Addrs, redis.Options{Prefix: s.Prefix()})
	r, _ := subscribe(t, sub)

	// One hash tag: every key of the group lives in the same slot, so the
	// slot moves with several keys in it.
	keys := make([]string, 10)
	for i := range keys {
		keys[i] = fmt.Sprintf("{grp}k%d", i)
		if err := s.Set(ctx, keys[i], []byte("init"), 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Set(ctx, "{grp}n", []byte("0"), 0); err != nil {
		t.Fatal(err)
	}
	slot := c.KeySlot(s.Prefix() + keys[0])

	stopLoad := make(chan struct{})
	var wg sync.WaitGroup
	// Stop the load on every way out, t.Fatal included.
	endLoad := sync.OnceFunc(func() { close(stopLoad); wg.Wait() })
	defer endLoad()
	var ops, incrs atomic.Int64
	var mu sync.Mutex
	var failures []error
	fail := func(err error) {
		mu.Lock()
		failures = append(failures, err)
		mu.Unlock()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stopLoad:
				return
			default:
			}
			k := keys[i%len(keys)]
			v := []byte(fmt.Sprintf("%s=%d", k, i))
			start := time.Now()
			if err := s.Set(ctx, k, v, time.Minute); err != nil {
				fail(fmt.Errorf("Set(%s): %w", k, err))
				continue
			}
			got, err := s.Get(ctx, k)
			if err != nil {
				fail(fmt.Errorf("Get(%s): %w", k, err))
				continue
			}
			if !bytes.Equal(got, v) {
				fail(fmt.Errorf("Get(%s) = %q, want %q: wrong value", k, got, v))
			}
			if i%5 == 0 {
				m, err := s.GetMany(ctx, keys)
				if err != nil {
					fail(fmt.Errorf("GetMany: %w", err))
				} else if len(m) != len(keys) {
					fail(fmt.Errorf("GetMany returned %d keys, want %d", len(m), len(keys)))
				}
				if _, err := s.IncrBy(ctx, "{grp}n", 1); err != nil {
					fail(fmt.Errorf("IncrBy: %w", err))
				} else {
					incrs.Add(1)
				}
			}
			if d := time.Since(start); d > 5*time.Second {
				fail(fmt.Errorf("one iteration took %v", d))
			}
			ops.Add(1)
		}
	}()

	// Move the slot around the masters twice, checking after each move that
	// writes are still reported and the load progresses.
	moves := 0
	for round := range 2 * len(c.Addrs) {
		from := c.Owner(slot)
		to := c.Addrs[round%len(c.Addrs)]
		if to == from {
			continue
		}
		before := ops.Load()
		c.MoveSlot(slot, to)
		moved := time.Now()
		moves++
		if got := c.Owner(slot); got != to {
			t.Fatalf("owner after the move: %s, want %s", got, to)
		}
		k := fmt.Sprintf("{grp}moved%d", round)
		if err := s.Set(ctx, k, []byte("v"), time.Minute); err != nil {
			t.Fatalf("Set after the move: %v", err)
		}
		eventually(t, 5*time.Second, "no invalidation after the move", func() bool { return r.count(k) > 0 })
		if v, err := testserver.RedisDo(to, "GET", s.Prefix()+k); err != nil || v != "v" {
			t.Fatalf("GET on the new owner %s = %v, %v", to, v, err)
		}
		eventually(t, 5*time.Second, "the load made no progress after the move", func() bool { return ops.Load() > before+10 })
		eventually(t, 5*time.Second, "the Watermark did not pass the move", func() bool { return sub.Watermark().After(moved) })
	}
	endLoad()

	mu.Lock()
	defer mu.Unlock()
	for _, err := range failures {
		t.Errorf("during resharding: %v", err)
	}
	n, err := s.Get(ctx, "{grp}n")
	if err != nil || string(n) != fmt.Sprint(incrs.Load()) {
		t.Errorf("counter after resharding = %q, %v; want %d", n, err, incrs.Load())
	}
	t.Logf("%d load iterations during %d moves", ops.Load(), moves)
	if sub.Watermark().IsZero() {
		t.Error("Watermark zero after resharding between the same masters")
	}
}
