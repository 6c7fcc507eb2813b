package lock_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/cachekit/cachekit/disk"
	"github.com/cachekit/cachekit/lock"
	"github.com/cachekit/cachekit/memory"
)

// A Lock on a disk store excludes every process that opens the same
// directory. Here two owners in one process stand for two processes.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "lock-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	s, err := disk.New(ctx, disk.Options{Dir: dir})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	// Expiry bounds how long a crashed holder keeps the lock.
	mine, err := lock.NewLock(s, "nightly-report", lock.LockOptions{Expiry: time.Minute})
	if err != nil {
		log.Fatal(err)
	}
	theirs, err := lock.NewLock(s, "nightly-report", lock.LockOptions{Expiry: time.Minute})
	if err != nil {
		log.Fatal(err)
	}

	if err := mine.Acquire(ctx); err != nil {
		log.Fatal(err)
	}
	ok, err := theirs.TryAcquire(ctx)
	fmt.Println("theirs acquired:", ok, err)
	err = theirs.Release(ctx) // not theirs to release
	fmt.Println("theirs released:", errors.Is(err, lock.ErrNotHeld))

	if err := mine.Release(ctx); err != nil {
		log.Fatal(err)
	}
	ok, err = theirs.TryAcquire(ctx)
	fmt.Println("theirs acquired:", ok, err)
	// Output:
	// theirs acquired: false <nil>
	// theirs released: true
	// theirs acquired: true <nil>
}

func ExampleBarrier() {
	ctx := context.Background()
	s, err := memory.NewStore(memory.StoreOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	b, err := lock.NewBarrier(s, "migrate", lock.BarrierOptions{})
	if err != nil {
		log.Fatal(err)
	}
	err = b.Do(ctx, func(ctx context.Context) error {
		fmt.Println("migrating, alone")
		return nil
	})
	fmt.Println(err)
	// Output:
	// migrating, alone
	// <nil>
}

func ExampleRLock() {
	ctx := context.Background()
	s, err := memory.NewStore(memory.StoreOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	r, err := lock.NewRLock(s, "tree", lock.RLockOptions{Owner: "job-42"})
	if err != nil {
		log.Fatal(err)
	}
	for range 2 { // re-entry does not wait
		if err := r.Acquire(ctx); err != nil {
			log.Fatal(err)
		}
	}
	n, _ := r.Count(ctx)
	fmt.Println("count:", n)
	_ = r.Release(ctx)
	_ = r.Release(ctx)
	n, _ = r.Count(ctx)
	fmt.Println("count:", n)
	// Output:
	// count: 2
	// count: 0
}

func ExampleThrottle() {
	ctx := context.Background()
	s, err := memory.NewStore(memory.StoreOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	// 3 calls a minute, all three at once if they come after a pause.
	th, err := lock.NewThrottle(s, "api", lock.ThrottleOptions{Count: 3, Period: time.Minute, Burst: 3})
	if err != nil {
		log.Fatal(err)
	}
	for i := range 4 {
		ok, err := th.Allow(ctx)
		fmt.Println(i, ok, err)
	}
	// Output:
	// 0 true <nil>
	// 1 true <nil>
	// 2 true <nil>
	// 3 false <nil>
}

func ExampleAverager() {
	ctx := context.Background()
	s, err := memory.NewStore(memory.StoreOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	avg, err := lock.NewAverager(s, "latency-ms", lock.AveragerOptions{})
	if err != nil {
		log.Fatal(err)
	}
	for _, x := range []float64{12, 15, 9} {
		if err := avg.Add(ctx, x); err != nil {
			log.Fatal(err)
		}
	}
	mean, n, err := avg.Mean(ctx)
	fmt.Println(mean, n, err)
	// Output:
	// 12 3 <nil>
}

func ExampleSemaphore() {
	ctx := context.Background()
	s, err := memory.NewStore(memory.StoreOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	sem, err := lock.NewSemaphore(s, "encoders", lock.SemaphoreOptions{Limit: 2})
	if err != nil {
		log.Fatal(err)
	}
	for i := range 3 {
		ok, err := sem.TryAcquire(ctx)
		fmt.Println(i, ok, err)
	}
	fmt.Println("held:", sem.Held())
	// Output:
	// 0 true <nil>
	// 1 true <nil>
	// 2 false <nil>
	// held: 2
}
