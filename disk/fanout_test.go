package disk

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/cachetest"
)

func newTestFanout(t testing.TB, opts FanoutOptions) *Fanout {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	f, err := NewFanout(bg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestFanoutConformance(t *testing.T) {
	t.Parallel()
	cachetest.Run(t, func(t *testing.T, clock cachekit.Clock) cachekit.Store {
		return newTestFanout(t, FanoutOptions{Options: Options{Clock: clock}, Shards: 3})
	})
}

func TestFanoutShards(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f := newTestFanout(t, FanoutOptions{Options: Options{Dir: dir, SizeLimit: 8 << 20}, Shards: 4})
	if len(f.Shards()) != 4 {
		t.Fatalf("%d shards, want 4", len(f.Shards()))
	}
	for _, s := range f.Shards() {
		if s.opts.SizeLimit != 2<<20 {
			t.Fatalf("shard size limit %d, want a quarter of 8 MiB", s.opts.SizeLimit)
		}
	}
	for i := range 400 {
		if err := f.SetWith(bg, fmt.Sprint(i), []byte("v"), SetOptions{Tag: "t"}); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range f.Shards() {
		n, _ := s.Len(bg)
		if n < 50 {
			t.Errorf("shard %d holds %d of 400 keys: the hash does not spread them", i, n)
		}
	}
	if n, err := f.Len(bg); n != 400 || err != nil {
		t.Fatalf("Len = %d, %v; want 400", n, err)
	}
	for i := range 400 {
		f.Get(bg, fmt.Sprint(i))
	}
	if st := f.Stats(); st.Hits != 400 {
		t.Fatalf("Stats.Hits = %d, want 400", st.Hits)
	}
	reps, err := f.Check(bg, false)
	if err != nil || len(reps) != 4 {
		t.Fatalf("Check = %d reports, %v", len(reps), err)
	}
	for _, r := range reps {
		if !r.OK() {
			t.Fatalf("Check: %v", r.Problems)
		}
	}
	if n, err := f.Evict(bg, "t"); n != 400 || err != nil {
		t.Fatalf("Evict = %d, %v; want 400", n, err)
	}

	// The shard count is recorded: a later open takes it, a different
	// explicit count is refused.
	g := newTestFanout(t, FanoutOptions{Options: Options{Dir: dir}})
	if len(g.Shards()) != 4 {
		t.Fatalf("reopened with %d shards, want the recorded 4", len(g.Shards()))
	}
	if _, err := NewFanout(bg, FanoutOptions{Options: Options{Dir: dir}, Shards: 5}); err == nil {
		t.Fatal("NewFanout with another shard count succeeded")
	}
	if _, err := NewFanout(bg, FanoutOptions{Options: Options{Dir: filepath.Join(dir, "x")}, Shards: -1}); err == nil {
		t.Fatal("NewFanout with -1 shards succeeded")
	}
}
