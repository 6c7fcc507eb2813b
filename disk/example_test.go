package disk_test

import (
	"context"
	"fmt"
	"os"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/codec"
	"github.com/cachekit/cachekit/disk"
)

func ExampleNew() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)

	store, err := disk.New(ctx, disk.Options{Dir: dir})
	if err != nil {
		panic(err)
	}
	defer store.Close()
	_ = store.SetWith(ctx, "user:1", []byte(`{"name":"Ada"}`), disk.SetOptions{Tag: "users"})
	_ = store.Set(ctx, "visits", []byte("41"), 0)
	n, _ := store.IncrBy(ctx, "visits", 1) // atomic across processes
	v, _ := store.Get(ctx, "user:1")
	evicted, _ := store.Evict(ctx, "users")
	fmt.Println(string(v), n, evicted)
	// Output: {"name":"Ada"} 42 1
}

// A typed cache over the disk store: values are encoded with the codec and
// survive the process.
func ExampleNew_cache() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)

	store, err := disk.New(ctx, disk.Options{Dir: dir, L1Size: 8 << 20})
	if err != nil {
		panic(err)
	}
	type page struct{ Title string }
	pages := cachekit.Must[page](store, cachekit.Options{Codec: codec.JSON})
	defer pages.Close()
	_ = pages.Set(ctx, "/", page{Title: "Home"})
	p, _ := pages.Get(ctx, "/")
	fmt.Println(p.Title)
	// Output: Home
}

func ExampleStore_Push() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	store, _ := disk.New(ctx, disk.Options{Dir: dir})
	defer store.Close()

	for _, job := range []string{"resize", "upload"} {
		_, _ = store.Push(ctx, "jobs", []byte(job), disk.PushOptions{})
	}
	for {
		_, job, err := store.Pull(ctx, "jobs", disk.Front)
		if err != nil { // cachekit.ErrMiss when the queue is empty
			break
		}
		fmt.Println(string(job))
	}
	// Output:
	// resize
	// upload
}

func ExampleNewFanout() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	f, err := disk.NewFanout(ctx, disk.FanoutOptions{Options: disk.Options{Dir: dir}, Shards: 4})
	if err != nil {
		panic(err)
	}
	defer f.Close()
	for i := range 100 {
		_ = f.Set(ctx, fmt.Sprint(i), []byte("v"), 0)
	}
	n, _ := f.Len(ctx)
	fmt.Println(len(f.Shards()), "shards,", n, "entries")
	// Output: 4 shards, 100 entries
}
