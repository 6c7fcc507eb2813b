package tiered_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/cachetest"
	"github.com/cachekit/cachekit/disk"
	"github.com/cachekit/cachekit/tiered"
)

var bg = context.Background()

// overDisk stacks a tiered store over a disk store in dir (a fresh one
// when dir is empty).
func overDisk(t testing.TB, dir string, opts tiered.Options, clock cachekit.Clock) *tiered.Store {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	l2, err := disk.New(bg, disk.Options{Dir: dir, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	if opts.L1Size == 0 {
		opts.L1Size = 16 << 20
	}
	opts.Clock = clock
	s, err := tiered.New(bg, l2, opts)
	if err != nil {
		l2.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformanceOverDisk(t *testing.T) {
	t.Parallel()
	cachetest.RunConfig(t, cachetest.Config{
		New: func(t *testing.T, clock cachekit.Clock) cachekit.Store {
			return overDisk(t, "", tiered.Options{}, clock)
		},
	})
}

// Two stores over one directory stand for two processes (each disk.Store
// maps the directory's generation counter on its own). B caches a key, A
// overwrites it, and B must read the new value once MaxStale has passed.
func TestCoherenceOverDisk(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const bound = 20 * time.Millisecond
	a := overDisk(t, dir, tiered.Options{MaxStale: bound}, nil)
	b := overDisk(t, dir, tiered.Options{MaxStale: bound}, nil)
	for i := range 50 {
		want := []byte("v" + strconv.Itoa(i))
		if err := a.Set(bg, "k", want, 0); err != nil {
			t.Fatal(err)
		}
		time.Sleep(bound + 5*time.Millisecond)
		got, err := b.Get(bg, "k")
		if err != nil || string(got) != string(want) {
			t.Fatalf("round %d: B read %q, %v after A wrote %q and %v passed", i, got, err, want, bound)
		}
		if _, err := b.Get(bg, "k"); err != nil { // from L1 now
			t.Fatal(err)
		}
	}
	if st := b.Stats(); st.L1Hits == 0 || st.Flushes == 0 {
		t.Fatalf("B's L1 was never used or never invalidated: %+v", st)
	}
}

// Writers in one store and readers filling L1 in another race on a few
// keys; once the writers stop and the bound has passed, every read must
// return the last value written: no fill of an old value may survive.
func TestNoStaleFillAfterRace(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const bound = 20 * time.Millisecond
	a := overDisk(t, dir, tiered.Options{MaxStale: bound}, nil)
	b := overDisk(t, dir, tiered.Options{MaxStale: bound}, nil)
	keys := []string{"k0", "k1", "k2", "k3"}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for _, st := range []*tiered.Store{a, b} { // readers on both tiers
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, k := range keys {
					st.Get(bg, k)
				}
			}
		}()
	}
	last := make(map[string]string)
	for i := range 300 {
		k := keys[i%len(keys)]
		v := fmt.Sprintf("%s-%d", k, i)
		w := a
		if i%3 == 0 {
			w = b // local writes race with local fills too
		}
		if err := w.Set(bg, k, []byte(v), 0); err != nil {
			t.Fatal(err)
		}
		last[k] = v
	}
	close(stop)
	wg.Wait()
	time.Sleep(bound + 5*time.Millisecond)
	for _, st := range []*tiered.Store{a, b} {
		for _, k := range keys {
			got, err := st.Get(bg, k)
			if err != nil || string(got) != last[k] {
				t.Fatalf("%s = %q, %v; last written %q", k, got, err, last[k])
			}
		}
	}
}

// A value filled from L2 keeps its remaining TTL in L1, not a fresh one.
func TestFillKeepsRemainingTTL(t *testing.T) {
	t.Parallel()
	clock := cachetest.NewFakeClock(time.Unix(1_700_000_000, 0))
	dir := t.TempDir()
	a := overDisk(t, dir, tiered.Options{}, clock)
	b := overDisk(t, dir, tiered.Options{}, clock)
	if err := a.Set(bg, "k", []byte("v"), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	clock.Advance(8 * time.Second)
	if _, exp, err := b.GetWithExpiry(bg, "k"); err != nil || !exp.Equal(time.Unix(1_700_000_010, 0)) {
		t.Fatalf("fill: expiry %v, %v", exp, err)
	}
	clock.Advance(3 * time.Second)
	if _, err := b.Get(bg, "k"); !errors.Is(err, cachekit.ErrMiss) {
		t.Fatalf("L1 kept the value past its L2 expiry: %v", err)
	}
}

func TestOptionsValidated(t *testing.T) {
	t.Parallel()
	l2, err := disk.New(bg, disk.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	for _, o := range []tiered.Options{{}, {L1Size: -1}, {L1Size: 1 << 20, MaxStale: -1}} {
		if s, err := tiered.New(bg, l2, o); err == nil {
			s.Close()
			t.Fatalf("New accepted %+v", o)
		}
	}
	if _, err := tiered.New(bg, nil, tiered.Options{L1Size: 1 << 20}); err == nil {
		t.Fatal("New accepted a nil L2")
	}
}

func TestClosed(t *testing.T) {
	t.Parallel()
	s := overDisk(t, "", tiered.Options{}, nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Get(bg, "k"); !errors.Is(err, cachekit.ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
	if err := s.Set(bg, "k", nil, 0); !errors.Is(err, cachekit.ErrClosed) {
		t.Fatalf("Set after Close: %v", err)
	}
}

// Taking and releasing a lease write the key in L2: this L1 must not keep
// the previous owner's token (found by the lock package's tests).
func TestLeaseDropsL1(t *testing.T) {
	t.Parallel()
	s := overDisk(t, "", tiered.Options{}, nil)
	var tokens []string
	for range 3 {
		release, ok, err := s.Lease(bg, "lock", time.Minute)
		if err != nil || !ok {
			t.Fatalf("Lease: %v, %v", ok, err)
		}
		tok, err := s.Get(bg, "lock")
		if err != nil {
			t.Fatal(err)
		}
		if again, _ := s.Get(bg, "lock"); string(again) != string(tok) { // L1 hit now
			t.Fatalf("token changed under a held lease: %q then %q", tok, again)
		}
		for _, old := range tokens {
			if old == string(tok) {
				t.Fatalf("read a previous owner's token %q", tok)
			}
		}
		tokens = append(tokens, string(tok))
		if err := release(bg); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(bg, "lock"); !errors.Is(err, cachekit.ErrMiss) {
			t.Fatalf("after release: %v, want a miss", err)
		}
	}
}
