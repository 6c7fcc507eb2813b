// Command quickstart shows cachekit's main job on embedded defaults, with no
// server: a slow function cached in memory and on disk, with the hits,
// misses and timings it saw.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"sync/atomic"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/codec"
	"github.com/cachekit/cachekit/disk"
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
	if err := demo(ctx, reports, []int{1, 2, 1, 1, 3, 2, 1, 3}); err != nil {
		return err
	}

	// The object tier keeps values by reference: the same pointer comes back.
	a, _ := reports.Get(ctx, "report:1")
	b, _ := reports.Get(ctx, "report:1")
	fmt.Printf("  same pointer on every hit: %v\n", a == b)

	// A miss is an error, never a zero value.
	if _, err := reports.Get(ctx, "report:404"); err != nil {
		fmt.Printf("  Get of an absent key: %v\n", err)
	}

	return diskDemo(ctx)
}

// diskDemo caches the same function on disk, closes the cache and opens it
// again: the values survive, as they would across process restarts.
func diskDemo(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "cachekit-quickstart-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	open := func() (*cachekit.Cache[*Report], error) {
		store, err := disk.New(ctx, disk.Options{Dir: dir})
		if err != nil {
			return nil, err
		}
		return cachekit.New[*Report](store, cachekit.Options{Prefix: "quickstart", DefaultTTL: time.Hour, Codec: codec.JSON})
	}
	reports, err := open()
	if err != nil {
		return err
	}
	fmt.Printf("disk: caching slowReport in %s (SQLite + value files)\n", dir)
	if err := demo(ctx, reports, []int{1, 2, 1, 2}); err != nil {
		return err
	}
	if err := reports.Close(); err != nil {
		return err
	}
	reports, err = open()
	if err != nil {
		return err
	}
	defer reports.Close()
	fmt.Println("  closed and reopened the disk cache:")
	return demo(ctx, reports, []int{1, 2})
}

// demo calls slowReport through the cache for each id and prints what it
// saw.
func demo(ctx context.Context, reports *cachekit.Cache[*Report], ids []int) error {
	var hits, misses int
	var cachedTime, missTime time.Duration
	for _, id := range ids {
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
	return nil
}
