// Command quickstart shows cachekit's main job on embedded defaults, with no
// server: a slow function cached in memory (and, once the disk store lands,
// on disk), with the hits, misses and timings it saw.
package main

import (
	"context"
	"fmt"
	"log"
	"sync/atomic"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/memory"
)

// Report is what the slow function computes.
type Report struct {
	ID    int
	Total int
}

// slowReport stands for a database query or a remote call.
func slowReport(ctx context.Context, id int) (*Report, error) {
	select {
	case <-time.After(50 * time.Millisecond):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &Report{ID: id, Total: id * 100}, nil
}

func main() {
	if err := run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) error {
	store, err := memory.NewStore(memory.StoreOptions{MaxEntries: 10_000})
	if err != nil {
		return err
	}
	reports, err := cachekit.New[*Report](store, cachekit.Options{Prefix: "quickstart", DefaultTTL: time.Minute})
	if err != nil {
		return err
	}
	defer reports.Close()

	fmt.Println("memory: caching slowReport (50 ms a call) by report id")
	var hits, misses int
	var cachedTime, missTime time.Duration
	for _, id := range []int{1, 2, 1, 1, 3, 2, 1, 3} {
		var computed atomic.Bool
		start := time.Now()
		r, err := reports.GetOrLoad(ctx, fmt.Sprintf("report:%d", id), func(ctx context.Context) (*Report, error) {
			computed.Store(true)
			return slowReport(ctx, id)
		})
		if err != nil {
			return err
		}
		took := time.Since(start)
		what := "hit "
		if computed.Load() {
			what = "miss"
			misses++
			missTime += took
		} else {
			hits++
			cachedTime += took
		}
		fmt.Printf("  report %d: %s total=%-4d %v\n", id, what, r.Total, took.Round(time.Microsecond))
	}
	fmt.Printf("  %d hits (%v in all), %d misses (%v in all)\n", hits, cachedTime.Round(time.Microsecond), misses, missTime.Round(time.Millisecond))

	// The object tier keeps values by reference: the same pointer comes back.
	a, _ := reports.Get(ctx, "report:1")
	b, _ := reports.Get(ctx, "report:1")
	fmt.Printf("  same pointer on every hit: %v\n", a == b)

	// A miss is an error, never a zero value.
	if _, err := reports.Get(ctx, "report:404"); err != nil {
		fmt.Printf("  Get of an absent key: %v\n", err)
	}

	fmt.Println("disk: coming with the disk store (issue 3); nothing is cached on disk yet")
	return nil
}
