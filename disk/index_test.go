package disk_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/codec"
	"github.com/cachekit/cachekit/disk"
)

func ExampleIndex() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "index")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	x, err := disk.NewIndex[int](ctx, disk.IndexOptions{Dir: dir})
	if err != nil {
		panic(err)
	}
	defer x.Close()

	x.Set(ctx, "b", 1)
	x.Set(ctx, "a", 2)
	x.Set(ctx, "b", 3) // an update keeps its place
	v, _ := x.SetDefault(ctx, "a", 100)
	fmt.Println("a:", v)
	all, errf := x.All(ctx)
	for k, v := range all {
		fmt.Println(k, v)
	}
	if err := errf(); err != nil {
		panic(err)
	}

	// A FIFO queue inside the index.
	x.Push(ctx, "jobs", 10, false)
	x.Push(ctx, "jobs", 20, false)
	key, job, _ := x.Pull(ctx, "jobs", true)
	fmt.Println(key, job)
	// Output:
	// a: 2
	// b 3
	// a 2
	// jobs-500000000000000 10
}

// indexOpen opens an index in a fresh directory unless opts.Dir is set, and
// closes it at the end of the test.
func indexOpen[V any](t testing.TB, opts disk.IndexOptions) *disk.Index[V] {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = filepath.Join(t.TempDir(), "index")
	}
	x, err := disk.NewIndex[V](context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	return x
}

// indexKeys returns the keys in order, read with Keys, after checking that
// All yields the same keys.
func indexKeys[V any](ctx context.Context, x *disk.Index[V]) ([]string, error) {
	keys, errf := x.Keys(ctx)
	got := slices.Collect(keys)
	all, allErr := x.All(ctx)
	var fromAll []string
	for k := range all {
		fromAll = append(fromAll, k)
	}
	if err := errors.Join(errf(), allErr()); err != nil || !slices.Equal(got, fromAll) {
		return got, fmt.Errorf("Keys = %q, All's keys = %q, %v", got, fromAll, err)
	}
	return got, nil
}

func TestIndexBasics(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	x := indexOpen[string](t, disk.IndexOptions{})
	if _, err := x.Get(ctx, "k"); !errors.Is(err, cachekit.ErrMiss) {
		t.Fatalf("Get of an absent key: got %v, want ErrMiss", err)
	}
	if ok, err := x.Has(ctx, "k"); ok || err != nil {
		t.Fatalf("Has of an absent key = %v, %v", ok, err)
	}
	if ok, err := x.Delete(ctx, "k"); ok || err != nil {
		t.Fatalf("Delete of an absent key = %v, %v", ok, err)
	}
	for _, k := range []string{"k", "", "\x00ü"} {
		if err := x.Set(ctx, k, "v"+k); err != nil {
			t.Fatal(err)
		}
		if v, err := x.Get(ctx, k); v != "v"+k || err != nil {
			t.Fatalf("Get(%q) = %q, %v; want %q", k, v, err, "v"+k)
		}
		if ok, err := x.Has(ctx, k); !ok || err != nil {
			t.Fatalf("Has(%q) = %v, %v", k, ok, err)
		}
	}
	if n, err := x.Len(ctx); n != 3 || err != nil {
		t.Fatalf("Len = %d, %v; want 3", n, err)
	}
	if ok, err := x.Delete(ctx, "k"); !ok || err != nil {
		t.Fatalf("Delete = %v, %v; want true", ok, err)
	}
	if _, err := x.Get(ctx, "k"); !errors.Is(err, cachekit.ErrMiss) {
		t.Fatalf("Get after Delete: got %v, want ErrMiss", err)
	}
	if err := x.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := x.Len(ctx); n != 0 || err != nil {
		t.Fatalf("Len after Clear = %d, %v; want 0", n, err)
	}
}

func TestIndexOrder(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	x := indexOpen[int](t, disk.IndexOptions{})
	steps := []struct{ ops, want string }{ // +k sets k to its step number, -k deletes k
		{"+c +a +b +d", "c a b d"},
		{"+a", "c a b d"},    // an update keeps its position
		{"-c +c", "a b d c"}, // a re-added key goes last
		{"-c +e", "a b d e"}, // so does a new key after the last was deleted
	}
	for n, s := range steps {
		for _, op := range strings.Fields(s.ops) {
			var err error
			if op[0] == '+' {
				err = x.Set(ctx, op[1:], n)
			} else {
				_, err = x.Delete(ctx, op[1:])
			}
			if err != nil {
				t.Fatalf("%s: %v", op, err)
			}
		}
		if got, err := indexKeys(ctx, x); !slices.Equal(got, strings.Fields(s.want)) || err != nil {
			t.Fatalf("after %s: keys %q, %v; want %s", s.ops, got, err, s.want)
		}
	}
	if v, err := x.Get(ctx, "a"); v != 1 || err != nil {
		t.Fatalf("Get(a) = %d, %v; want 1", v, err)
	}
}

func TestIndexSetDefault(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	x := indexOpen[int](t, disk.IndexOptions{})
	if v, err := x.SetDefault(ctx, "k", 1); v != 1 || err != nil {
		t.Fatalf("SetDefault on an absent key = %d, %v; want 1", v, err)
	}
	if v, err := x.SetDefault(ctx, "k", 2); v != 1 || err != nil {
		t.Fatalf("SetDefault on a present key = %d, %v; want 1", v, err)
	}
	// Racing callers all get the one value that won.
	var wg sync.WaitGroup
	got := make([]int, 8)
	for i := range got {
		wg.Go(func() {
			v, err := x.SetDefault(ctx, "race", i+100)
			if err != nil {
				t.Error(err)
			}
			got[i] = v
		})
	}
	wg.Wait()
	stored, err := x.Get(ctx, "race")
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if v != stored {
			t.Fatalf("caller %d got %d, stored value is %d", i, v, stored)
		}
	}
}

func TestIndexPop(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	x := indexOpen[int](t, disk.IndexOptions{})
	if _, err := x.Pop(ctx, "a"); !errors.Is(err, cachekit.ErrMiss) {
		t.Fatalf("Pop of an absent key: got %v, want ErrMiss", err)
	}
	for _, last := range []bool{false, true} {
		if _, _, err := x.PopItem(ctx, last); !errors.Is(err, cachekit.ErrMiss) {
			t.Fatalf("PopItem(%v) on empty: got %v, want ErrMiss", last, err)
		}
		if _, _, err := x.PeekItem(ctx, last); !errors.Is(err, cachekit.ErrMiss) {
			t.Fatalf("PeekItem(%v) on empty: got %v, want ErrMiss", last, err)
		}
	}
	for i, k := range []string{"a", "b", "c", "d"} {
		if err := x.Set(ctx, k, i); err != nil {
			t.Fatal(err)
		}
	}
	if v, err := x.Pop(ctx, "b"); v != 1 || err != nil {
		t.Fatalf("Pop(b) = %d, %v; want 1", v, err)
	}
	items := []struct {
		op   string
		do   func(context.Context, bool) (string, int, error)
		last bool
		key  string
		val  int
	}{
		{"PeekItem", x.PeekItem, true, "d", 3},
		{"PeekItem", x.PeekItem, false, "a", 0},
		{"PopItem", x.PopItem, true, "d", 3},
		{"PopItem", x.PopItem, false, "a", 0},
		{"PeekItem", x.PeekItem, true, "c", 2},
		{"PopItem", x.PopItem, false, "c", 2},
	}
	for _, it := range items {
		if k, v, err := it.do(ctx, it.last); k != it.key || v != it.val || err != nil {
			t.Fatalf("%s(%v) = %q, %d, %v; want %q, %d", it.op, it.last, k, v, err, it.key, it.val)
		}
	}
	if n, err := x.Len(ctx); n != 0 || err != nil {
		t.Fatalf("Len = %d, %v; want 0", n, err)
	}
}

func TestIndexPushPull(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	x := indexOpen[int](t, disk.IndexOptions{})
	if _, _, err := x.Pull(ctx, "q", true); !errors.Is(err, cachekit.ErrMiss) {
		t.Fatalf("Pull of an empty queue: got %v, want ErrMiss", err)
	}
	// Keys that share the prefix but not the shape stay out of the queue.
	for _, k := range []string{"q", "q-", "q-00000000000000a", "q-1", "q-5000000000000000", "r-500000000000000"} {
		if err := x.Set(ctx, k, -1); err != nil {
			t.Fatal(err)
		}
	}
	push := []struct {
		v     int
		front bool
		key   string
	}{
		{1, false, "q-500000000000000"},
		{2, false, "q-500000000000001"},
		{0, true, "q-499999999999999"},
		{-1, true, "q-499999999999998"},
		{3, false, "q-500000000000002"},
	}
	for _, p := range push {
		if k, err := x.Push(ctx, "q", p.v, p.front); k != p.key || err != nil {
			t.Fatalf("Push(%d, front=%v) = %q, %v; want %q", p.v, p.front, k, err, p.key)
		}
	}
	pull := []struct {
		front bool
		key   string
		v     int
	}{
		{true, "q-499999999999998", -1},
		{false, "q-500000000000002", 3},
		{true, "q-499999999999999", 0},
		{true, "q-500000000000000", 1},
		{true, "q-500000000000001", 2},
	}
	for _, p := range pull {
		if k, v, err := x.Pull(ctx, "q", p.front); k != p.key || v != p.v || err != nil {
			t.Fatalf("Pull(front=%v) = %q, %d, %v; want %q, %d", p.front, k, v, err, p.key, p.v)
		}
	}
	if _, _, err := x.Pull(ctx, "q", false); !errors.Is(err, cachekit.ErrMiss) {
		t.Fatalf("Pull of a drained queue: got %v, want ErrMiss", err)
	}
	if n, err := x.Len(ctx); n != 6 || err != nil {
		t.Fatalf("Len = %d, %v; want the 6 other keys", n, err)
	}
	// An empty queue starts again at the middle; the empty prefix works.
	if k, err := x.Push(ctx, "q", 1, true); k != "q-500000000000000" || err != nil {
		t.Fatalf("Push after draining = %q, %v", k, err)
	}
	if k, err := x.Push(ctx, "", 1, false); k != "-500000000000000" || err != nil {
		t.Fatalf("Push with the empty prefix = %q, %v", k, err)
	}
}

func TestIndexAll(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	x := indexOpen[int](t, disk.IndexOptions{Codec: codec.JSON})
	want := map[string]int{}
	var order []string
	for i := range 250 { // three pages
		k := fmt.Sprintf("k%03d", 249-i)
		want[k] = i
		order = append(order, k)
		if err := x.Set(ctx, k, i); err != nil {
			t.Fatal(err)
		}
	}
	all, errf := x.All(ctx)
	got := maps.Collect(all)
	if err := errf(); err != nil || !maps.Equal(got, want) {
		t.Fatalf("All: %d entries, %v; want %d", len(got), err, len(want))
	}
	if keys, err := indexKeys(ctx, x); !slices.Equal(keys, order) || err != nil {
		t.Fatalf("keys out of insertion order: %v", err)
	}
	n := 0
	for k := range all {
		if n++; n == 120 {
			// Calls from inside the loop do not deadlock.
			if _, err := x.Delete(ctx, k); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if l, err := x.Len(ctx); l != 249 || err != nil {
		t.Fatalf("Len = %d, %v; want 249", l, err)
	}
}

func TestIndexConcurrent(t *testing.T) {
	t.Parallel()
	x := indexOpen[int](t, disk.IndexOptions{})
	dequeCheckQueue(t, x.Len,
		func(w, i int) error {
			_, err := x.Push(t.Context(), "q", w*1000+i, i%2 == 1)
			return err
		},
		func(w int) (int, error) {
			_, v, err := x.Pull(t.Context(), "q", w%2 == 0)
			return v, err
		})
}

func TestIndexTwoHandles(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	h := []*disk.Index[int]{indexOpen[int](t, disk.IndexOptions{Dir: dir}), indexOpen[int](t, disk.IndexOptions{Dir: dir})}
	if err := h[0].Set(ctx, "k", 1); err != nil {
		t.Fatal(err)
	}
	if v, err := h[1].Get(ctx, "k"); v != 1 || err != nil {
		t.Fatalf("Get after the other handle's Set = %d, %v; want 1", v, err)
	}
	if _, err := h[1].Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if ok, err := h[0].Has(ctx, "k"); ok || err != nil {
		t.Fatalf("Has after the other handle's Delete = %v, %v; want false", ok, err)
	}
	// Both handles at once, as two processes.
	dequeCheckQueue(t, h[0].Len,
		func(w, i int) error { _, err := h[w%2].Push(ctx, "q", w*1000+i, false); return err },
		func(w int) (int, error) { _, v, err := h[(w+1)%2].Pull(ctx, "q", true); return v, err })
}

func TestIndexLifecycle(t *testing.T) {
	t.Parallel()
	x := indexOpen[int](t, disk.IndexOptions{})
	if err := x.Set(t.Context(), "k", 1); err != nil {
		t.Fatal(err)
	}
	unchanged := func() bool {
		v, err := x.Get(t.Context(), "k")
		n, _ := x.Len(t.Context())
		return v == 1 && n == 1 && err == nil
	}
	dequeCheckLifecycle(t, x, unchanged, map[string]func(context.Context) error{
		"Get":        func(ctx context.Context) error { _, err := x.Get(ctx, "k"); return err },
		"Has":        func(ctx context.Context) error { _, err := x.Has(ctx, "k"); return err },
		"Set":        func(ctx context.Context) error { return x.Set(ctx, "k", 2) },
		"SetDefault": func(ctx context.Context) error { _, err := x.SetDefault(ctx, "j", 1); return err },
		"Delete":     func(ctx context.Context) error { _, err := x.Delete(ctx, "k"); return err },
		"Pop":        func(ctx context.Context) error { _, err := x.Pop(ctx, "j"); return err },
		"PopItem":    func(ctx context.Context) error { _, _, err := x.PopItem(ctx, true); return err },
		"PeekItem":   func(ctx context.Context) error { _, _, err := x.PeekItem(ctx, false); return err },
		"Push":       func(ctx context.Context) error { _, err := x.Push(ctx, "q", 1, false); return err },
		"Pull":       func(ctx context.Context) error { _, _, err := x.Pull(ctx, "q", true); return err },
		"Len":        func(ctx context.Context) error { _, err := x.Len(ctx); return err },
		"Clear":      func(ctx context.Context) error { return x.Clear(ctx) },
		"All": func(ctx context.Context) error {
			all, errf := x.All(ctx)
			for range all {
			}
			return errf()
		},
		"Keys": func(ctx context.Context) error {
			keys, errf := x.Keys(ctx)
			for range keys {
			}
			return errf()
		},
	})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := disk.NewIndex[int](ctx, disk.IndexOptions{Dir: t.TempDir()}); !errors.Is(err, context.Canceled) {
		t.Errorf("NewIndex with a canceled ctx: got %v, want context.Canceled", err)
	}
}

func TestIndexTimeout(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	x := indexOpen[int](t, disk.IndexOptions{Dir: dir, Timeout: 150 * time.Millisecond})
	if err := x.Set(ctx, "k", 1); err != nil {
		t.Fatal(err)
	}
	tx := dequeRawTx(t, filepath.Join(dir, "index.db"), "DELETE FROM entries") // holds the write lock
	if _, err := x.SetDefault(ctx, "j", 2); !errors.Is(err, cachekit.ErrTimeout) {
		t.Fatalf("SetDefault while locked: got %v, want ErrTimeout", err)
	}
	if _, _, err := x.Pull(ctx, "q", true); !errors.Is(err, cachekit.ErrTimeout) {
		t.Fatalf("Pull while locked: got %v, want ErrTimeout", err)
	}
	if v, err := x.Get(ctx, "k"); v != 1 || err != nil {
		t.Fatalf("Get while locked = %d, %v; want 1", v, err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if keys, err := indexKeys(ctx, x); !slices.Equal(keys, []string{"k"}) || err != nil {
		t.Fatalf("keys after the timeouts = %q, %v; want [k]", keys, err)
	}
}

func TestIndexCorrupt(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	x := indexOpen[int](t, disk.IndexOptions{Dir: dir})
	for _, k := range []string{"a", "b"} {
		if err := x.Set(ctx, k, 1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := x.Push(ctx, "q", 1, false); err != nil {
		t.Fatal(err)
	}
	if err := dequeRawTx(t, filepath.Join(dir, "index.db"), "UPDATE entries SET value = x'ff00ff' WHERE key != x'62'").Commit(); err != nil {
		t.Fatal(err)
	}
	all, errf := x.All(ctx)
	calls := map[string]func() (string, error){ // the key each reports, if any
		"Get":        func() (string, error) { _, err := x.Get(ctx, "a"); return "a", err },
		"SetDefault": func() (string, error) { _, err := x.SetDefault(ctx, "a", 2); return "a", err },
		"PeekItem":   func() (string, error) { k, _, err := x.PeekItem(ctx, false); return k, err },
		"All": func() (string, error) {
			for range all {
				t.Error("All yielded the garbage")
			}
			return "a", errf()
		},
	}
	for name, call := range calls {
		if k, err := call(); k != "a" || !errors.Is(err, cachekit.ErrCorrupt) {
			t.Fatalf("%s of garbage = %q, %v; want a, ErrCorrupt", name, k, err)
		}
	}
	// Pull and Pop remove the bad entry, as DiskCache does, and report it.
	if k, _, err := x.Pull(ctx, "q", true); k != "q-500000000000000" || !errors.Is(err, cachekit.ErrCorrupt) {
		t.Fatalf("Pull of garbage = %q, %v; want its key and ErrCorrupt", k, err)
	}
	if _, err := x.Pop(ctx, "a"); !errors.Is(err, cachekit.ErrCorrupt) {
		t.Fatalf("Pop of garbage: got %v, want ErrCorrupt", err)
	}
	if keys, err := indexKeys(ctx, x); !slices.Equal(keys, []string{"b"}) || err != nil {
		t.Fatalf("keys after popping the garbage = %q, %v; want [b]", keys, err)
	}
}

func TestIndexFiles(t *testing.T) {
	t.Parallel()
	indexCheckFiles(t, "index.db", func(ctx context.Context, dir string, dirMode, fileMode fs.FileMode) (io.Closer, error) {
		return disk.NewIndex[int](ctx, disk.IndexOptions{Dir: dir, DirMode: dirMode, FileMode: fileMode})
	})
	if _, err := disk.NewIndex[int](t.Context(), disk.IndexOptions{}); err == nil {
		t.Error("NewIndex without Dir: no error")
	}
}

// indexCheckFiles checks the files of a Deque or Index, whose database is
// named file and which open opens: the modes of the directory and files
// (default and custom), a garbage file, and a read-only parent directory.
func indexCheckFiles(t *testing.T, file string, open func(ctx context.Context, dir string, dirMode, fileMode fs.FileMode) (io.Closer, error)) {
	ctx := t.Context()
	t.Run("modes", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "a", "b")
		c, err := open(ctx, dir, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		indexCheckMode(t, dir, fs.ModeDir|0o700)
		for _, f := range []string{file, file + "-wal", file + "-shm"} {
			indexCheckMode(t, filepath.Join(dir, f), 0o600)
		}
		dir = filepath.Join(t.TempDir(), "c")
		if c, err = open(ctx, dir, 0o750, 0o640); err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		indexCheckMode(t, dir, fs.ModeDir|0o750)
		indexCheckMode(t, filepath.Join(dir, file), 0o640)
	})
	t.Run("not a database", func(t *testing.T) {
		dir := t.TempDir()
		garbage := make([]byte, 8192)
		for i := range garbage {
			garbage[i] = byte(i * 7)
		}
		if err := os.WriteFile(filepath.Join(dir, file), garbage, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := open(ctx, dir, 0, 0); !errors.Is(err, cachekit.ErrCorrupt) {
			t.Fatalf("open on a garbage file: got %v, want ErrCorrupt", err)
		}
	})
	t.Run("read-only directory", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("running as root: permission bits do not stop root, so the directory stays writable")
		}
		dir := filepath.Join(t.TempDir(), "ro")
		c, err := open(ctx, dir, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		if err := os.Chmod(dir, 0o500); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(dir, 0o700)
		if _, err := open(ctx, filepath.Join(dir, "sub"), 0, 0); !errors.Is(err, fs.ErrPermission) {
			t.Fatalf("open under a read-only directory: got %v, want fs.ErrPermission", err)
		}
		// The database exists, but SQLite must create its -wal and -shm
		// files next to it.
		if c, err := open(ctx, dir, 0, 0); !errors.Is(err, fs.ErrPermission) {
			if err == nil {
				c.Close()
			}
			t.Fatalf("open in a read-only directory: got %v, want fs.ErrPermission", err)
		}
	})
}

// indexCheckMode fails the test unless path has the given mode less the
// process's umask.
func indexCheckMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	probe := filepath.Join(t.TempDir(), "umask") // the umask is what a file created 0777 lacks
	werr := os.WriteFile(probe, nil, 0o777)
	pfi, perr := os.Stat(probe)
	fi, err := os.Stat(path)
	if err := errors.Join(werr, perr, err); err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode(); got != want&^(0o777&^pfi.Mode().Perm()) {
		t.Errorf("mode of %s = %v, want %v less the umask", path, got, want)
	}
}

func BenchmarkIndexSetGet(b *testing.B) {
	ctx := b.Context()
	x := indexOpen[[]byte](b, disk.IndexOptions{Codec: codec.Raw})
	v := make([]byte, 100)
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprint("key", i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := keys[i%len(keys)]
		i++
		if err := x.Set(ctx, k, v); err != nil {
			b.Fatal(err)
		}
		if _, err := x.Get(ctx, k); err != nil {
			b.Fatal(err)
		}
	}
}
