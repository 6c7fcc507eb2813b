package cachekit_test

import (
	"context"
	"math"
	"testing"

	"github.com/cachekit/cachekit"
)

// Decr by math.MinInt64 negates to itself: 0 - MinInt64 (= 2^63, which does
// not fit) comes back as MinInt64 instead of ErrNotInteger.
func TestRegressionDecrMinInt64(t *testing.T) {
	for _, su := range setups {
		t.Run(su.name, func(t *testing.T) {
			c, _ := newCache[int64](t, su, nil)
			ctx := context.Background()
			if err := c.Set(ctx, "n", 0); err != nil {
				t.Fatal(err)
			}
			v, err := cachekit.Decr(ctx, c, "n", math.MinInt64)
			if err == nil {
				t.Fatalf("Decr(0, MinInt64) = %d, nil; want ErrNotInteger (2^63 overflows)", v)
			}
		})
	}
}

// GetOrLoad stores its result with Set: a Set that completes while the
// load runs is overwritten by the (older) loaded value.
func TestRegressionGetOrLoadClobbersConcurrentSet(t *testing.T) {
	c, _ := newCache[int](t, setups[1], nil)
	ctx := context.Background()
	started, release := make(chan struct{}), make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.GetOrLoad(ctx, "k", func(context.Context) (int, error) {
			close(started)
			<-release
			return 1, nil // computed from the source before the update
		})
	}()
	<-started
	if err := c.Set(ctx, "k", 2); err != nil { // the fresher value, written through
		t.Fatal(err)
	}
	close(release)
	<-done
	if v, _ := c.Get(ctx, "k"); v != 2 {
		t.Fatalf("Get = %d after Set(2) returned; the load's result overwrote it", v)
	}
}

// An increment whose result does not fit V leaves the stored value as it
// was (the store's int64 counter steps back).
func TestRegressionIncrOutOfRangeLeavesValue(t *testing.T) {
	ctx := context.Background()
	c, _ := newCache[int8](t, setups[1], nil) // a Counter store
	if err := c.Set(ctx, "n", 120); err != nil {
		t.Fatal(err)
	}
	if _, err := cachekit.Incr(ctx, c, "n", 10); err == nil {
		t.Fatal("Incr past int8 succeeded")
	}
	if v, err := c.Get(ctx, "n"); v != 120 || err != nil {
		t.Fatalf("after a refused Incr: %d, %v; want 120", v, err)
	}
}
