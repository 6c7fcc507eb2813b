package memory

import (
	"bytes"
	"context"
	"errors"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/cachetest"
)

func TestStoreConformance(t *testing.T) {
	cachetest.Run(t, func(t *testing.T, clock cachekit.Clock) cachekit.Store {
		s, err := NewStore(StoreOptions{Clock: clock})
		if err != nil {
			t.Fatalf("NewStore: %v", err)
		}
		return s
	})
}

// TestStoreConformanceLimits runs the suite on a byte-bounded store with a
// value size limit.
func TestStoreConformanceLimits(t *testing.T) {
	const maxValue = 2 << 20
	cachetest.RunConfig(t, cachetest.Config{
		New: func(t *testing.T, clock cachekit.Clock) cachekit.Store {
			s, err := NewStore(StoreOptions{Clock: clock, MaxBytes: 16 << 20, MaxValueSize: maxValue})
			if err != nil {
				t.Fatalf("NewStore: %v", err)
			}
			return s
		},
		MaxValueSize: maxValue,
	})
}

// newStore returns a store closed at the end of the test.
func newStore(t *testing.T, opts StoreOptions) *Store {
	t.Helper()
	s, err := NewStore(opts)
	if err != nil {
		t.Fatalf("NewStore: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStoreOptions(t *testing.T) {
	t.Parallel()
	for name, o := range map[string]StoreOptions{
		"negative MaxEntries":     {MaxEntries: -1},
		"MaxEntries and MaxBytes": {MaxEntries: 10, MaxBytes: 1 << 20},
		"negative MaxValueSize":   {MaxValueSize: -1},
		"tiny MaxBytes":           {MaxBytes: EntryOverhead},
		"negative interval":       {CleanupInterval: -time.Second},
	} {
		if _, err := NewStore(o); err == nil {
			t.Errorf("NewStore(%s) succeeded, want an error", name)
		}
	}
}

func TestStoreByteCopies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, StoreOptions{})
	buf := []byte("hello")
	if err := s.Set(ctx, "k", buf, 0); err != nil {
		t.Fatal(err)
	}
	buf[0] = 'J'
	got, _ := s.Get(ctx, "k")
	if string(got) != "hello" {
		t.Fatalf("Get after the caller reused its buffer = %q, want hello", got)
	}
	got[0] = 'Y'
	got2, _ := s.Get(ctx, "k")
	if string(got2) != "hello" {
		t.Fatalf("Get after the caller modified a result = %q, want hello", got2)
	}
	if &got[0] == &got2[0] {
		t.Fatal("two Gets shared a buffer")
	}
	// Add and SetMany copy too.
	buf = []byte("add")
	s.Add(ctx, "a", buf, 0)
	buf2 := []byte("many")
	s.SetMany(ctx, map[string][]byte{"m": buf2}, 0)
	buf[0], buf2[0] = 'X', 'X'
	m, _ := s.GetMany(ctx, []string{"a", "m"})
	if string(m["a"]) != "add" || string(m["m"]) != "many" {
		t.Fatalf("GetMany after the caller reused its buffers = %q", m)
	}
}

func TestStoreIncrBy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newFakeClock()
	s := newStore(t, StoreOptions{Clock: clock})
	if _, err := s.IncrBy(ctx, "absent", 1); !errors.Is(err, cachekit.ErrMiss) {
		t.Fatalf("IncrBy(absent): %v, want ErrMiss", err)
	}
	for _, tc := range []struct {
		name, val string
		delta     int64
	}{
		{"text", "abc", 1},
		{"float", "1.5", 1},
		{"empty", "", 1},
		{"overflow", strconv.FormatInt(math.MaxInt64, 10), 1},
		{"underflow", strconv.FormatInt(math.MinInt64, 10), -1},
		{"too big", "99999999999999999999", 0},
	} {
		s.Set(ctx, tc.name, []byte(tc.val), 0)
		if _, err := s.IncrBy(ctx, tc.name, tc.delta); !errors.Is(err, cachekit.ErrNotInteger) {
			t.Errorf("IncrBy(%s %q, %d): %v, want ErrNotInteger", tc.name, tc.val, tc.delta, err)
		}
		if got, _ := s.Get(ctx, tc.name); string(got) != tc.val {
			t.Errorf("value after a failed IncrBy = %q, want %q", got, tc.val)
		}
	}
	s.SetValue(ctx, "object", struct{}{}, 0)
	if _, err := s.IncrBy(ctx, "object", 1); !errors.Is(err, cachekit.ErrNotInteger) {
		t.Errorf("IncrBy of a non-byte value: %v, want ErrNotInteger", err)
	}

	s.Set(ctx, "n", []byte("41"), time.Minute)
	exp := clock.Now().Add(time.Minute)
	clock.Advance(30 * time.Second)
	if n, err := s.IncrBy(ctx, "n", 1); err != nil || n != 42 {
		t.Fatalf("IncrBy = %d, %v; want 42, nil", n, err)
	}
	got, e, err := s.GetWithExpiry(ctx, "n")
	if err != nil || string(got) != "42" || !e.Equal(exp) {
		t.Fatalf("GetWithExpiry after IncrBy = %q, %v, %v; want 42 expiring at %v (TTL kept)", got, e, err, exp)
	}
	if n, err := s.IncrBy(ctx, "n", math.MinInt64); err != nil || n != math.MinInt64+42 {
		t.Fatalf("IncrBy(MinInt64) = %d, %v", n, err)
	}
	clock.Advance(30 * time.Second)
	if _, err := s.IncrBy(ctx, "n", 1); !errors.Is(err, cachekit.ErrMiss) {
		t.Fatalf("IncrBy after the TTL: %v, want ErrMiss", err)
	}
}

func TestStoreLease(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newFakeClock()
	s := newStore(t, StoreOptions{Clock: clock})
	release, ok, err := s.Lease(ctx, "lock", time.Minute)
	if err != nil || !ok {
		t.Fatalf("Lease = %v, %v; want true, nil", ok, err)
	}
	for range 3 {
		if r, ok, err := s.Lease(ctx, "lock", time.Minute); ok || err != nil {
			t.Fatalf("Lease while held = %v, %v; want false, nil", ok, err)
		} else if err := r(ctx); err != nil { // a loser's release is a no-op
			t.Fatalf("a loser's release: %v", err)
		}
	}
	if _, err := s.Get(ctx, "lock"); err != nil {
		t.Fatalf("a loser's release freed the lease: %v", err)
	}
	// The lease lapses, another owner takes it; the first owner's late
	// release leaves it alone, even twice.
	clock.Advance(time.Minute)
	release2, ok, err := s.Lease(ctx, "lock", time.Minute)
	if err != nil || !ok {
		t.Fatalf("Lease after the first lapsed = %v, %v; want true, nil", ok, err)
	}
	release(ctx)
	release(ctx)
	if _, ok, _ := s.Lease(ctx, "lock", time.Minute); ok {
		t.Fatal("a stale release freed the new owner's lease")
	}
	// An overwrite of the key also ends ownership.
	s.Set(ctx, "lock", []byte("someone else"), 0)
	release2(ctx)
	if got, _ := s.Get(ctx, "lock"); string(got) != "someone else" {
		t.Fatalf("release deleted a value it did not own: %q", got)
	}
	s.Delete(ctx, "lock")
	r3, ok, _ := s.Lease(ctx, "lock", time.Minute)
	if !ok {
		t.Fatal("Lease of a free key failed")
	}
	if err := r3(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "lock"); !errors.Is(err, cachekit.ErrMiss) {
		t.Fatalf("Get after the owner's release: %v, want ErrMiss", err)
	}
	if _, ok, _ := s.Lease(ctx, "neg", cachekit.ExpireNow); ok {
		t.Fatal("Lease with a negative TTL succeeded")
	}
}

func TestStoreValueStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, StoreOptions{})
	type env struct{ Hits int }
	p := &env{}
	s.SetValue(ctx, "p", p, 0)
	got, err := s.GetValue(ctx, "p")
	if err != nil || got.(*env) != p {
		t.Fatalf("GetValue = %v, %v; want the same pointer", got, err)
	}
	// A non-byte value read as bytes is corrupt, not a panic.
	if _, err := s.Get(ctx, "p"); !errors.Is(err, cachekit.ErrCorrupt) {
		t.Fatalf("Get of an object value: %v, want ErrCorrupt", err)
	}
	if _, _, err := s.GetWithExpiry(ctx, "p"); !errors.Is(err, cachekit.ErrCorrupt) {
		t.Fatalf("GetWithExpiry of an object value: %v, want ErrCorrupt", err)
	}
	if _, err := s.GetMany(ctx, []string{"p"}); !errors.Is(err, cachekit.ErrCorrupt) {
		t.Fatalf("GetMany of an object value: %v, want ErrCorrupt", err)
	}
	// []byte values are interchangeable between the two tiers.
	s.SetValue(ctx, "b", []byte("raw"), 0)
	if got, err := s.Get(ctx, "b"); err != nil || string(got) != "raw" {
		t.Fatalf("Get of a []byte SetValue = %q, %v", got, err)
	}
	s.Set(ctx, "s", []byte("set"), 0)
	if v, err := s.GetValue(ctx, "s"); err != nil || !bytes.Equal(v.([]byte), []byte("set")) {
		t.Fatalf("GetValue of a Set value = %v, %v", v, err)
	}
	v, err := s.UpdateValue(ctx, "p", func(old any) (any, error) {
		old.(*env).Hits++
		return old, nil
	})
	if err != nil || v.(*env) != p || p.Hits != 1 {
		t.Fatalf("UpdateValue = %v, %v; want the same pointer with Hits 1", v, err)
	}
}

func TestStoreTooLarge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, StoreOptions{MaxValueSize: 10})
	s.Set(ctx, "k", []byte("old"), 0)
	big := make([]byte, 11)
	check := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, cachekit.ErrTooLarge) {
			t.Fatalf("%s of 11 bytes: %v, want ErrTooLarge", op, err)
		}
		if got, _ := s.Get(ctx, "k"); string(got) != "old" {
			t.Fatalf("after a too-large %s Get = %q, want old", op, got)
		}
	}
	check("Set", s.Set(ctx, "k", big, 0))
	check("SetMany", s.SetMany(ctx, map[string][]byte{"k": big, "other": []byte("x")}, 0))
	if _, err := s.Get(ctx, "other"); !errors.Is(err, cachekit.ErrMiss) {
		t.Fatal("a failed SetMany stored part of its items")
	}
	check("SetValue", s.SetValue(ctx, "k", big, 0))
	_, err := s.UpdateValue(ctx, "k", func(any) (any, error) { return big, nil })
	check("UpdateValue", err)
	if err := s.Set(ctx, "k", make([]byte, 10), 0); err != nil {
		t.Fatalf("Set of exactly MaxValueSize: %v", err)
	}
}

func TestStoreMaxBytes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const maxBytes = 10_000
	s := newStore(t, StoreOptions{MaxBytes: maxBytes})
	if s.maxValue != maxBytes-EntryOverhead {
		t.Fatalf("default MaxValueSize with MaxBytes = %d, want %d", s.maxValue, maxBytes-EntryOverhead)
	}
	val := make([]byte, 369) // 500 bytes per entry with key "kNN" and the overhead
	for i := range 100 {
		if err := s.Set(ctx, "k"+strconv.Itoa(i%100/10)+strconv.Itoa(i%10), val, 0); err != nil {
			t.Fatal(err)
		}
		if n := s.c.Len(); n > maxBytes/500 {
			t.Fatalf("%d entries of 500 bytes in %d bytes", n, maxBytes)
		}
	}
	for i := range 20 {
		s.SetValue(ctx, "o"+strconv.Itoa(i), i, 0)
	}
	var total uint64
	for k, v := range s.c.All() {
		total += uint64(storeWeight(k, v))
	}
	if total > maxBytes {
		t.Fatalf("total weight %d > MaxBytes %d", total, maxBytes)
	}
	if w := storeWeight("ab", 7); w != 2+EntryOverhead+ObjectWeight {
		t.Fatalf("weight of an object = %d", w)
	}
	// A key so long that its entry cannot fit is too large.
	if err := s.Set(ctx, string(make([]byte, maxBytes)), nil, 0); !errors.Is(err, cachekit.ErrTooLarge) {
		t.Fatalf("Set of an entry heavier than MaxBytes: %v, want ErrTooLarge", err)
	}
}

func TestStoreErrors(t *testing.T) {
	t.Parallel()
	s := newStore(t, StoreOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.Set(ctx, "k", nil, 0)
	var oe *cachekit.OpError
	if !errors.As(err, &oe) || oe.Op != "set" || oe.Backend != "memory" || oe.Key != "k" || !errors.Is(err, context.Canceled) {
		t.Fatalf("Set with a cancelled ctx: %#v, want an OpError wrapping context.Canceled", err)
	}
	release, ok, _ := s.Lease(context.Background(), "l", time.Minute)
	if !ok {
		t.Fatal("Lease failed")
	}
	s.Close()
	if err := release(context.Background()); !errors.Is(err, cachekit.ErrClosed) {
		t.Fatalf("release after Close: %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
