package disk_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/codec"
	"github.com/cachekit/cachekit/disk"
	"github.com/cachekit/cachekit/internal/sqlitedb"
)

func ExampleDeque() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "deque")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	d, err := disk.NewDeque[string](ctx, disk.DequeOptions{Dir: dir, MaxLen: 3})
	if err != nil {
		panic(err)
	}
	defer d.Close()

	d.Extend(ctx, "a", "b", "c", "d") // "a" falls off: MaxLen is 3
	d.AppendLeft(ctx, "z")            // "d" falls off the other end
	d.Rotate(ctx, 1)
	last, _ := d.Get(ctx, -1)
	fmt.Println("last:", last)
	all, errf := d.All(ctx)
	for i, v := range all {
		fmt.Println(i, v)
	}
	if err := errf(); err != nil {
		panic(err)
	}
	v, _ := d.PopLeft(ctx)
	n, _ := d.Len(ctx)
	fmt.Println("popped", v, "left", n)
	// Output:
	// last: b
	// 0 c
	// 1 z
	// 2 b
	// popped c left 2
}

// dequeOpen opens a deque in a fresh directory unless opts.Dir is set, and
// closes it at the end of the test.
func dequeOpen[V any](t testing.TB, opts disk.DequeOptions) *disk.Deque[V] {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = filepath.Join(t.TempDir(), "deque")
	}
	d, err := disk.NewDeque[V](context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// dequeState returns the items, read with All, after checking that All's
// indices count from 0 and that Len and Get at every index, counted from
// either end, agree: the positions are dense.
func dequeState[V comparable](ctx context.Context, d *disk.Deque[V]) ([]V, error) {
	all, errf := d.All(ctx)
	var items []V
	for i, v := range all {
		if i != len(items) {
			return items, fmt.Errorf("All yielded index %d for item %d", i, len(items))
		}
		items = append(items, v)
	}
	if n, err := d.Len(ctx); n != len(items) || errf() != nil || err != nil {
		return items, fmt.Errorf("Len = %d, %v; All yielded %d items, %v", n, err, len(items), errf())
	}
	for i, w := range items {
		for _, j := range []int{i, i - len(items)} {
			if got, err := d.Get(ctx, j); got != w || err != nil {
				return items, fmt.Errorf("Get(%d) = %v, %v; All yielded %v", j, got, err, w)
			}
		}
	}
	return items, nil
}

// dequeRawTx opens the database at path directly, as another process
// would, and runs query in a write transaction that it leaves open, holding
// the write lock; the test commits it or cleanup rolls it back.
func dequeRawTx(t *testing.T, path, query string) *sql.Tx {
	t.Helper()
	db, err := sqlitedb.Open(t.Context(), sqlitedb.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	tx, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback() })
	if _, err := tx.ExecContext(t.Context(), query); err != nil {
		t.Fatal(err)
	}
	return tx
}

func TestDequeBasics(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d := dequeOpen[int](t, disk.DequeOptions{})
	for _, f := range []func(context.Context) (int, error){d.Pop, d.PopLeft, d.Peek, d.PeekLeft} {
		if v, err := f(ctx); !errors.Is(err, cachekit.ErrMiss) {
			t.Fatalf("on an empty deque: got %d, %v; want ErrMiss", v, err)
		}
	}
	if err := d.Extend(ctx); err != nil {
		t.Fatalf("Extend with no values: %v", err)
	}
	for _, v := range []int{0, 1, 2} {
		if err := d.Append(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.AppendLeft(ctx, -1); err != nil {
		t.Fatal(err)
	}
	if got, err := dequeState(ctx, d); !slices.Equal(got, []int{-1, 0, 1, 2}) || err != nil {
		t.Fatalf("items = %v, %v; want [-1 0 1 2]", got, err)
	}
	ends := []struct {
		name string
		f    func(context.Context) (int, error)
		want int
	}{{"Peek", d.Peek, 2}, {"PeekLeft", d.PeekLeft, -1}, {"Pop", d.Pop, 2}, {"PopLeft", d.PopLeft, -1}, {"Peek", d.Peek, 1}}
	for _, e := range ends {
		if v, err := e.f(ctx); v != e.want || err != nil {
			t.Fatalf("%s = %d, %v; want %d", e.name, v, err, e.want)
		}
	}
	if err := d.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := dequeState(ctx, d); len(got) != 0 || err != nil {
		t.Fatalf("items after Clear = %v, %v; want none", got, err)
	}
	if d.MaxLen() != 0 {
		t.Fatalf("MaxLen = %d, want 0", d.MaxLen())
	}
}

func TestDequeGetSet(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d := dequeOpen[string](t, disk.DequeOptions{})
	// Left appends make negative positions: the indices must not care.
	if err := d.Extend(ctx, "c", "d", "e"); err != nil {
		t.Fatal(err)
	}
	if err := d.ExtendLeft(ctx, "b", "a"); err != nil {
		t.Fatal(err)
	}
	if got, err := dequeState(ctx, d); !slices.Equal(got, []string{"a", "b", "c", "d", "e"}) || err != nil {
		t.Fatalf("items = %q, %v; want [a b c d e]", got, err)
	}
	for _, i := range []int{-7, -6, 5, 6, math.MaxInt, math.MinInt} {
		if got, err := d.Get(ctx, i); !errors.Is(err, cachekit.ErrMiss) {
			t.Errorf("Get(%d) = %q, %v; want ErrMiss (index out of range)", i, got, err)
		}
		if err := d.Set(ctx, i, "x"); !errors.Is(err, cachekit.ErrMiss) {
			t.Errorf("Set(%d): got %v, want ErrMiss", i, err)
		}
	}
	for i, v := range map[int]string{0: "A", -1: "E", -3: "C"} {
		if err := d.Set(ctx, i, v); err != nil {
			t.Fatalf("Set(%d): %v", i, err)
		}
	}
	if got, err := dequeState(ctx, d); !slices.Equal(got, []string{"A", "b", "C", "d", "E"}) || err != nil {
		t.Fatalf("after Set: %q, %v; want [A b C d E]", got, err)
	}
}

func TestDequeMaxLen(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d := dequeOpen[int](t, disk.DequeOptions{MaxLen: 3})
	steps := []struct {
		name string
		do   func() error
		want []int
	}{
		{"extend", func() error { return d.Extend(ctx, 1, 2, 3, 4, 5) }, []int{3, 4, 5}},
		{"append", func() error { return d.Append(ctx, 6) }, []int{4, 5, 6}},
		{"append left", func() error { return d.AppendLeft(ctx, 3) }, []int{3, 4, 5}},
		{"extend left", func() error { return d.ExtendLeft(ctx, 2, 1) }, []int{1, 2, 3}},
		{"extend left past max", func() error { return d.ExtendLeft(ctx, 9, 8, 7, 6, 5) }, []int{5, 6, 7}},
		{"pop then append", func() error { _, err := d.Pop(ctx); return errors.Join(err, d.Append(ctx, 0)) }, []int{5, 6, 0}},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got, err := dequeState(ctx, d); !slices.Equal(got, s.want) || err != nil {
			t.Fatalf("%s: items %v, %v; want %v", s.name, got, err, s.want)
		}
	}
}

// dequeRotated is Python's deque.rotate on a slice.
func dequeRotated(s []int, n int) []int {
	if len(s) == 0 {
		return s
	}
	k := (n%len(s) + len(s)) % len(s)
	return append(slices.Clone(s[len(s)-k:]), s[:len(s)-k]...)
}

func TestDequeRotate(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	for _, size := range []int{0, 1, 2, 5, 6} {
		for n := -13; n <= 13; n++ {
			t.Run(fmt.Sprintf("len%d/n%d", size, n), func(t *testing.T) {
				t.Parallel()
				d := dequeOpen[int](t, disk.DequeOptions{})
				var want []int
				for i := range size {
					want = append(want, i)
				}
				// Start with a mix of negative and positive positions.
				left := slices.Clone(want[:size/2])
				slices.Reverse(left)
				if err := errors.Join(d.Extend(ctx, want[size/2:]...), d.ExtendLeft(ctx, left...)); err != nil {
					t.Fatal(err)
				}
				if err := d.Rotate(ctx, n); err != nil {
					t.Fatal(err)
				}
				want = dequeRotated(want, n)
				if got, err := dequeState(ctx, d); !slices.Equal(got, want) || err != nil {
					t.Fatalf("Rotate(%d): %v, %v; want %v", n, got, err, want)
				}
				if err := errors.Join(d.Append(ctx, 100), d.AppendLeft(ctx, -100)); err != nil {
					t.Fatal(err)
				}
				want = append(append([]int{-100}, want...), 100)
				if got, err := dequeState(ctx, d); !slices.Equal(got, want) || err != nil {
					t.Fatalf("after appends: %v, %v; want %v", got, err, want)
				}
			})
		}
	}
}

func TestDequeRemove(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d := dequeOpen[int](t, disk.DequeOptions{})
	if err := errors.Join(d.Extend(ctx, 2, 3, 2, 1, 0), d.ExtendLeft(ctx, 1, 0)); err != nil { // positions -2..4
		t.Fatal(err)
	}
	want := []int{0, 1, 2, 3, 2, 1, 0}
	// dequeState checks that the positions stay dense whichever side was
	// shifted. 2 and 0 have duplicates: the leftmost goes.
	for _, v := range []int{7, 2, 0, 2, 1, 3, 0, 1} {
		i := slices.Index(want, v)
		if found, err := d.Remove(ctx, v); found != (i >= 0) || err != nil {
			t.Fatalf("Remove(%d) = %v, %v; want %v", v, found, err, i >= 0)
		}
		if i >= 0 {
			want = slices.Delete(want, i, i+1)
		}
		if got, err := dequeState(ctx, d); !slices.Equal(got, want) || err != nil {
			t.Fatalf("after Remove(%d): %v, %v; want %v", v, got, err, want)
		}
	}
}

func TestDequeAll(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d := dequeOpen[int](t, disk.DequeOptions{})
	var want []int
	for i := range 250 { // three pages
		want = append(want, i)
	}
	if err := d.Extend(ctx, want...); err != nil {
		t.Fatal(err)
	}
	if got, err := dequeState(ctx, d); !slices.Equal(got, want) || err != nil {
		t.Fatalf("All yielded %d items, %v; want %d", len(got), err, len(want))
	}
	all, errf := d.All(ctx)
	n := 0
	for range all {
		if n++; n == 150 {
			break
		}
	}
	if n != 150 || errf() != nil {
		t.Fatalf("early break: %d items, %v", n, errf())
	}
	// Calls from inside the loop do not deadlock: no connection is held.
	for i, v := range all {
		if i == 0 {
			if err := d.Append(ctx, v); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestDequeCodecs(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	type point struct{ X, Y int }
	j := dequeOpen[point](t, disk.DequeOptions{Codec: codec.JSON})
	if err := j.Append(ctx, point{1, 2}); err != nil {
		t.Fatal(err)
	}
	if found, err := j.Remove(ctx, point{1, 2}); !found || err != nil {
		t.Fatalf("Remove with JSON = %v, %v", found, err)
	}
	r := dequeOpen[string](t, disk.DequeOptions{Codec: codec.Raw})
	if err := r.Extend(ctx, "", "x", ""); err != nil {
		t.Fatal(err)
	}
	if found, err := r.Remove(ctx, ""); !found || err != nil {
		t.Fatalf("Remove of the empty string = %v, %v", found, err)
	}
	if got, err := dequeState(ctx, r); !slices.Equal(got, []string{"x", ""}) || err != nil {
		t.Fatalf("raw items %q, %v; want [x \"\"]", got, err)
	}
	// A value the codec cannot encode is refused before anything is stored.
	c := dequeOpen[chan int](t, disk.DequeOptions{})
	if err := c.Append(ctx, make(chan int)); !errors.Is(err, codec.ErrUnsupported) {
		t.Fatalf("Append of a channel: got %v, want codec.ErrUnsupported", err)
	}
}

func TestDequeConcurrent(t *testing.T) {
	t.Parallel()
	d := dequeOpen[int](t, disk.DequeOptions{})
	dequeCheckQueue(t, d.Len,
		func(w, i int) error {
			if i%2 == 1 {
				return d.AppendLeft(t.Context(), w*1000+i)
			}
			return d.Append(t.Context(), w*1000+i)
		},
		func(w int) (int, error) {
			if w%2 == 1 {
				return d.PopLeft(t.Context())
			}
			return d.Pop(t.Context())
		})
}

// dequeCheckQueue runs 4 goroutines putting 200 items each (item w*1000+i
// from worker w), checks the length, then runs 4 goroutines taking items
// until ErrMiss, and fails unless every item was taken exactly once.
func dequeCheckQueue(t *testing.T, length func(context.Context) (int, error), put func(w, i int) error, take func(w int) (int, error)) {
	t.Helper()
	const workers, per = 4, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				if err := put(w, i); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n, err := length(t.Context()); n != workers*per || err != nil {
		t.Fatalf("length after %d puts = %d, %v", workers*per, n, err)
	}
	var (
		mu   sync.Mutex
		seen = map[int]int{}
	)
	for w := range workers {
		wg.Go(func() {
			for {
				v, err := take(w)
				if errors.Is(err, cachekit.ErrMiss) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seen[v]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	want := map[int]int{}
	for w := range workers {
		for i := range per {
			want[w*1000+i] = 1
		}
	}
	if !maps.Equal(seen, want) {
		t.Fatalf("took %d distinct items, want each of %d exactly once", len(seen), len(want))
	}
}

func TestDequeTwoHandles(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	h := []*disk.Deque[int]{dequeOpen[int](t, disk.DequeOptions{Dir: dir}), dequeOpen[int](t, disk.DequeOptions{Dir: dir})}
	if err := h[0].Append(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if v, err := h[1].Peek(ctx); v != 1 || err != nil {
		t.Fatalf("Peek after the other handle's Append = %d, %v; want 1", v, err)
	}
	if err := h[1].AppendLeft(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if got, err := dequeState(ctx, h[0]); !slices.Equal(got, []int{0, 1}) || err != nil {
		t.Fatalf("items after the other handle's AppendLeft = %v, %v; want [0 1]", got, err)
	}
	if err := h[0].Clear(ctx); err != nil {
		t.Fatal(err)
	}
	// Both handles at once, as two processes: their transactions meet in
	// SQLite's lock, not in a handle's own queue.
	dequeCheckQueue(t, h[0].Len,
		func(w, i int) error { return h[w%2].Append(ctx, w*1000+i) },
		func(w int) (int, error) { return h[(w+1)%2].PopLeft(ctx) })
}

func TestDequeLifecycle(t *testing.T) {
	t.Parallel()
	d := dequeOpen[int](t, disk.DequeOptions{})
	if err := d.Append(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	unchanged := func() bool { n, err := d.Len(t.Context()); return n == 1 && err == nil }
	dequeCheckLifecycle(t, d, unchanged, map[string]func(context.Context) error{
		"Append":     func(ctx context.Context) error { return d.Append(ctx, 1) },
		"AppendLeft": func(ctx context.Context) error { return d.AppendLeft(ctx, 1) },
		"Extend":     func(ctx context.Context) error { return d.Extend(ctx, 1, 2) },
		"ExtendLeft": func(ctx context.Context) error { return d.ExtendLeft(ctx) },
		"Pop":        func(ctx context.Context) error { _, err := d.Pop(ctx); return err },
		"PopLeft":    func(ctx context.Context) error { _, err := d.PopLeft(ctx); return err },
		"Peek":       func(ctx context.Context) error { _, err := d.Peek(ctx); return err },
		"PeekLeft":   func(ctx context.Context) error { _, err := d.PeekLeft(ctx); return err },
		"Get":        func(ctx context.Context) error { _, err := d.Get(ctx, 0); return err },
		"Set":        func(ctx context.Context) error { return d.Set(ctx, 0, 1) },
		"Len":        func(ctx context.Context) error { _, err := d.Len(ctx); return err },
		"Rotate":     func(ctx context.Context) error { return d.Rotate(ctx, 1) },
		"Remove":     func(ctx context.Context) error { _, err := d.Remove(ctx, 1); return err },
		"Clear":      func(ctx context.Context) error { return d.Clear(ctx) },
		"All": func(ctx context.Context) error {
			all, errf := d.All(ctx)
			for range all {
			}
			return errf()
		},
	})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := disk.NewDeque[int](ctx, disk.DequeOptions{Dir: t.TempDir()}); !errors.Is(err, context.Canceled) {
		t.Errorf("NewDeque with a canceled ctx: got %v, want context.Canceled", err)
	}
}

// dequeCheckLifecycle checks a Deque or Index through calls, every method
// that does I/O: under a canceled ctx each fails with context.Canceled and
// changes nothing (unchanged reports so); Close, while all of them run in
// other goroutines, makes each end with ErrClosed; a second Close returns
// nil; later calls fail with ErrClosed.
func dequeCheckLifecycle(t *testing.T, c io.Closer, unchanged func() bool, calls map[string]func(context.Context) error) {
	t.Helper()
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	for name, call := range calls {
		if err := call(canceled); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled ctx: got %v, want context.Canceled", name, err)
		}
	}
	if !unchanged() {
		t.Error("calls with a canceled ctx changed the contents")
	}
	var wg sync.WaitGroup
	for name, call := range calls {
		wg.Go(func() {
			for {
				err := call(t.Context())
				if errors.Is(err, cachekit.ErrClosed) {
					return
				}
				if err != nil && !errors.Is(err, cachekit.ErrMiss) {
					t.Errorf("%s during Close: got %v, want nil, ErrMiss or ErrClosed", name, err)
					return
				}
			}
		})
	}
	time.Sleep(20 * time.Millisecond) // let the calls run; the outcome does not depend on it
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	for name, call := range calls {
		if err := call(t.Context()); !errors.Is(err, cachekit.ErrClosed) {
			t.Errorf("%s after Close: got %v, want ErrClosed", name, err)
		}
	}
}

func TestDequeTimeout(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	d := dequeOpen[int](t, disk.DequeOptions{Dir: dir, Timeout: 200 * time.Millisecond})
	if err := d.Append(ctx, 1); err != nil {
		t.Fatal(err)
	}
	tx := dequeRawTx(t, filepath.Join(dir, "deque.db"), "DELETE FROM deque") // holds the write lock
	start := time.Now()
	if err := d.Append(ctx, 2); !errors.Is(err, cachekit.ErrTimeout) {
		t.Fatalf("Append while locked: got %v, want ErrTimeout", err)
	}
	if el := time.Since(start); el < 200*time.Millisecond || el > 5*time.Second {
		t.Errorf("Append gave up after %v, want about 200ms", el)
	}
	// The caller's deadline wins when it is shorter, and is honored within
	// about one busy slice.
	long := dequeOpen[int](t, disk.DequeOptions{Dir: dir})
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err := long.Pop(short); !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, cachekit.ErrTimeout) {
		t.Fatalf("Pop past the caller's deadline: got %v, want DeadlineExceeded", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("Pop returned %v after the caller's deadline", el)
	}
	// Readers do not wait for the writer (WAL) and see the committed state.
	if v, err := d.Peek(ctx); v != 1 || err != nil {
		t.Fatalf("Peek while locked = %d, %v; want 1", v, err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if got, err := dequeState(ctx, d); !slices.Equal(got, []int{1}) || err != nil {
		t.Fatalf("items after the timeouts = %v, %v; want [1]", got, err)
	}
}

func TestDequeCorrupt(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	d := dequeOpen[int](t, disk.DequeOptions{Dir: dir})
	if err := d.Extend(ctx, 1, 2, 3); err != nil {
		t.Fatal(err)
	}
	if err := dequeRawTx(t, filepath.Join(dir, "deque.db"), "UPDATE deque SET value = x'ff00ff' WHERE pos = 0").Commit(); err != nil {
		t.Fatal(err)
	}
	all, errf := d.All(ctx)
	reads := map[string]func() error{
		"PeekLeft": func() error { _, err := d.PeekLeft(ctx); return err },
		"Get":      func() error { _, err := d.Get(ctx, -3); return err },
		"All": func() error {
			for range all {
				t.Error("All yielded the garbage")
			}
			return errf()
		},
	}
	for name, read := range reads {
		if err := read(); !errors.Is(err, cachekit.ErrCorrupt) {
			t.Fatalf("%s of garbage: got %v, want ErrCorrupt", name, err)
		}
	}
	// Popping removes the bad item, as DiskCache does, and reports it.
	if _, err := d.PopLeft(ctx); !errors.Is(err, cachekit.ErrCorrupt) {
		t.Fatalf("PopLeft of garbage: got %v, want ErrCorrupt", err)
	}
	if got, err := dequeState(ctx, d); !slices.Equal(got, []int{2, 3}) || err != nil {
		t.Fatalf("items after popping the garbage = %v, %v; want [2 3]", got, err)
	}
}

func TestDequeFiles(t *testing.T) {
	t.Parallel()
	indexCheckFiles(t, "deque.db", func(ctx context.Context, dir string, dirMode, fileMode fs.FileMode) (io.Closer, error) {
		return disk.NewDeque[int](ctx, disk.DequeOptions{Dir: dir, DirMode: dirMode, FileMode: fileMode})
	})
	for _, opts := range []disk.DequeOptions{{}, {Dir: t.TempDir(), Timeout: -1}, {Dir: t.TempDir(), MaxLen: -1}, {Dir: t.TempDir(), FileMode: fs.ModeDir}} {
		if _, err := disk.NewDeque[int](t.Context(), opts); err == nil {
			t.Errorf("NewDeque(%+v): no error", opts)
		}
	}
}

func BenchmarkDequeAppendPop(b *testing.B) {
	ctx := b.Context()
	d := dequeOpen[[]byte](b, disk.DequeOptions{Codec: codec.Raw})
	v := make([]byte, 100)
	b.ReportAllocs()
	for b.Loop() {
		if err := d.Append(ctx, v); err != nil {
			b.Fatal(err)
		}
		if _, err := d.PopLeft(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
