package cachetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cachekit/cachekit"
)

// Factory returns a new, empty store for one test case. The store must read
// time from clock, unless [Config].RealTime says it cannot. The suite closes
// the store when the case ends.
type Factory func(t *testing.T, clock cachekit.Clock) cachekit.Store

// Config describes the store under test to [RunConfig].
type Config struct {
	// New makes the store for each case. Required.
	New Factory

	// RealTime reports that the store keeps expiry by a clock of its own (a
	// server's). TTL cases then use one-second TTLs and wait for real
	// expiry, up to a few seconds, instead of advancing the fake clock.
	RealTime bool

	// MaxValueSize is the largest value the store accepts, if it has a limit:
	// a value one byte larger must fail with ErrTooLarge and keep the old
	// value. Zero means no limit is checked.
	MaxValueSize int

	// LargeValueSize is the size of the large-value round trip. Default
	// 1 MiB, capped at MaxValueSize.
	LargeValueSize int
}

// Run runs the conformance suite against the stores newStore makes.
func Run(t *testing.T, newStore Factory) {
	t.Helper()
	RunConfig(t, Config{New: newStore})
}

// epoch is the fake clock's start: a fixed, unremarkable instant.
var epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// suite is one store under test.
type suite struct {
	cfg Config
}

// store is a store under test with its clock.
type store struct {
	cachekit.Store
	clock *FakeClock
	real  bool
}

// expire lets d pass for the store, after which key must have expired: it
// moves the fake clock, or for a real-time store polls until key has
// expired (up to d plus 5 s).
func (s *store) expire(t *testing.T, ctx context.Context, key string, d time.Duration) {
	t.Helper()
	if !s.real {
		s.clock.Advance(d)
		return
	}
	deadline := time.Now().Add(d + 5*time.Second)
	for {
		_, err := s.Get(ctx, key)
		if errors.Is(err, cachekit.ErrMiss) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Get(%q) after its TTL: got err=%v, want ErrMiss", key, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pass lets d pass where an entry must survive it. A real-time store's
// clock cannot be moved; callers have already waited out a probe entry's
// TTL, so for such a store pass adds nothing.
func (s *store) pass(d time.Duration) {
	if !s.real {
		s.clock.Advance(d)
	}
}

func (su *suite) open(t *testing.T) *store {
	t.Helper()
	clock := NewFakeClock(epoch)
	st := su.cfg.New(t, clock)
	if st == nil {
		t.Fatal("factory returned a nil store")
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil && !errors.Is(err, cachekit.ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return &store{Store: st, clock: clock, real: su.cfg.RealTime}
}

// RunConfig runs the conformance suite with the given configuration.
func RunConfig(t *testing.T, cfg Config) {
	t.Helper()
	if cfg.New == nil {
		t.Fatal("cachetest: Config.New is required")
	}
	if cfg.LargeValueSize == 0 {
		cfg.LargeValueSize = 1 << 20
	}
	if cfg.MaxValueSize > 0 && cfg.LargeValueSize > cfg.MaxValueSize {
		cfg.LargeValueSize = cfg.MaxValueSize
	}
	su := &suite{cfg: cfg}
	cases := []struct {
		name string
		fn   func(*testing.T, *store)
	}{
		{"SetGet", su.testSetGet},
		{"Miss", su.testMiss},
		{"Delete", su.testDelete},
		{"EmptyKey", su.testEmptyKey},
		{"BinaryKeysAndValues", su.testBinary},
		{"Ownership", su.testOwnership},
		{"TTL", su.testTTL},
		{"NoExpiry", su.testNoExpiry},
		{"NegativeTTL", su.testNegativeTTL},
		{"LargeValue", su.testLarge},
		{"TooLarge", su.testTooLarge},
		{"Closed", su.testClosed},
		{"CancelledContext", su.testCancelled},
		{"Concurrent", su.testConcurrent},
		{"Adder", su.testAdder},
		{"Toucher", su.testToucher},
		{"Counter", su.testCounter},
		{"Batcher", su.testBatcher},
		{"Clearer", su.testClearer},
		{"ExpiryReader", su.testExpiryReader},
		{"Leaser", su.testLeaser},
		{"ValueStore", su.testValueStore},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.fn(t, su.open(t))
		})
	}
}

func mustSet(t *testing.T, s cachekit.Store, key string, val []byte, ttl time.Duration) {
	t.Helper()
	if err := s.Set(context.Background(), key, val, ttl); err != nil {
		t.Fatalf("Set(%q): %v", key, err)
	}
}

func wantValue(t *testing.T, s cachekit.Store, key string, want []byte) {
	t.Helper()
	got, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%q): got err=%v, want %q", key, err, abbrev(want))
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) = %q, want %q", key, abbrev(got), abbrev(want))
	}
}

func wantMiss(t *testing.T, s cachekit.Store, key string) {
	t.Helper()
	got, err := s.Get(context.Background(), key)
	if !errors.Is(err, cachekit.ErrMiss) {
		t.Fatalf("Get(%q) = %q, %v; want ErrMiss", key, abbrev(got), err)
	}
	if got != nil {
		t.Fatalf("Get(%q) returned %q with ErrMiss; want nil", key, abbrev(got))
	}
}

func abbrev(b []byte) string {
	if len(b) > 40 {
		return fmt.Sprintf("%q…(%d bytes)", b[:40], len(b))
	}
	return string(b)
}

func (su *suite) testSetGet(t *testing.T, s *store) {
	mustSet(t, s, "a", []byte("1"), 0)
	wantValue(t, s, "a", []byte("1"))
	mustSet(t, s, "a", []byte("two"), 0)
	wantValue(t, s, "a", []byte("two"))
	mustSet(t, s, "empty", []byte{}, 0)
	wantValue(t, s, "empty", []byte{})
	mustSet(t, s, "nil", nil, 0)
	wantValue(t, s, "nil", []byte{})
}

func (su *suite) testMiss(t *testing.T, s *store) {
	wantMiss(t, s, "never-set")
}

func (su *suite) testDelete(t *testing.T, s *store) {
	ctx := context.Background()
	mustSet(t, s, "a", []byte("1"), 0)
	mustSet(t, s, "b", []byte("2"), 0)
	mustSet(t, s, "c", []byte("3"), 0)
	n, err := s.Delete(ctx, "a")
	if err != nil || n != 1 {
		t.Fatalf("Delete(a) = %d, %v; want 1, nil", n, err)
	}
	wantMiss(t, s, "a")
	n, err = s.Delete(ctx, "a")
	if err != nil || n != 0 {
		t.Fatalf("Delete(a) again = %d, %v; want 0, nil", n, err)
	}
	n, err = s.Delete(ctx, "b", "c", "absent")
	if err != nil || n != 2 {
		t.Fatalf("Delete(b, c, absent) = %d, %v; want 2, nil", n, err)
	}
	wantMiss(t, s, "b")
	wantMiss(t, s, "c")
	n, err = s.Delete(ctx)
	if err != nil || n != 0 {
		t.Fatalf("Delete() = %d, %v; want 0, nil", n, err)
	}
}

// testEmptyKey: a store either holds the empty key like any other or
// refuses it with ErrInvalidKey everywhere.
func (su *suite) testEmptyKey(t *testing.T, s *store) {
	ctx := context.Background()
	err := s.Set(ctx, "", []byte("v"), 0)
	if errors.Is(err, cachekit.ErrInvalidKey) {
		if _, err := s.Get(ctx, ""); !errors.Is(err, cachekit.ErrInvalidKey) && !errors.Is(err, cachekit.ErrMiss) {
			t.Fatalf(`Get("") = %v; want ErrInvalidKey or ErrMiss`, err)
		}
		return
	}
	if err != nil {
		t.Fatalf(`Set("") = %v; want nil or ErrInvalidKey`, err)
	}
	wantValue(t, s, "", []byte("v"))
	if n, err := s.Delete(ctx, ""); err != nil || n != 1 {
		t.Fatalf(`Delete("") = %d, %v; want 1, nil`, n, err)
	}
}

func (su *suite) testBinary(t *testing.T, s *store) {
	ctx := context.Background()
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	mustSet(t, s, "binary-value", all, 0)
	wantValue(t, s, "binary-value", all)

	for _, key := range []string{"with space", "ctl\x00\x01\x7f", "utf8-ключ-🔑", string(all[128:])} {
		err := s.Set(ctx, key, []byte(key), 0)
		if errors.Is(err, cachekit.ErrInvalidKey) {
			continue // the store's key policy refuses it: allowed, as long as it says so
		}
		if err != nil {
			t.Fatalf("Set(%q): %v; want nil or ErrInvalidKey", key, err)
		}
		wantValue(t, s, key, []byte(key))
	}
	// Keys that differ only in bytes a policy might rewrite stay distinct.
	if err := s.Set(ctx, "x y", []byte("space"), 0); err == nil {
		if err := s.Set(ctx, "x_y", []byte("underscore"), 0); err != nil {
			t.Fatalf("Set(x_y): %v", err)
		}
		wantValue(t, s, "x y", []byte("space"))
		wantValue(t, s, "x_y", []byte("underscore"))
	}
}

func (su *suite) testOwnership(t *testing.T, s *store) {
	buf := []byte("original")
	mustSet(t, s, "k", buf, 0)
	copy(buf, "MUTATED!")
	wantValue(t, s, "k", []byte("original"))
	got, err := s.Get(context.Background(), "k")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	copy(got, "MUTATED!")
	wantValue(t, s, "k", []byte("original"))
}

func (su *suite) testTTL(t *testing.T, s *store) {
	mustSet(t, s, "short", []byte("v"), time.Second)
	mustSet(t, s, "long", []byte("v"), time.Hour)
	wantValue(t, s, "short", []byte("v"))
	s.expire(t, context.Background(), "short", 2*time.Second)
	wantMiss(t, s, "short")
	wantValue(t, s, "long", []byte("v"))
	// A rewrite gives the key a new TTL.
	mustSet(t, s, "short", []byte("again"), time.Hour)
	wantValue(t, s, "short", []byte("again"))
}

func (su *suite) testNoExpiry(t *testing.T, s *store) {
	mustSet(t, s, "forever", []byte("v"), cachekit.NoExpiry)
	mustSet(t, s, "zero", []byte("v"), 0)
	mustSet(t, s, "probe", []byte("v"), time.Second)
	s.expire(t, context.Background(), "probe", 2*time.Second)
	s.pass(24 * time.Hour)
	wantValue(t, s, "forever", []byte("v"))
	wantValue(t, s, "zero", []byte("v"))
}

func (su *suite) testNegativeTTL(t *testing.T, s *store) {
	mustSet(t, s, "k", []byte("v"), 0)
	if err := s.Set(context.Background(), "k", []byte("new"), cachekit.ExpireNow); err != nil {
		t.Fatalf("Set with ExpireNow: %v", err)
	}
	wantMiss(t, s, "k")
	if err := s.Set(context.Background(), "absent", []byte("new"), -time.Hour); err != nil {
		t.Fatalf("Set with a negative TTL: %v", err)
	}
	wantMiss(t, s, "absent")
}

func (su *suite) testLarge(t *testing.T, s *store) {
	big := bytes.Repeat([]byte("0123456789abcdef"), su.cfg.LargeValueSize/16+1)[:su.cfg.LargeValueSize]
	mustSet(t, s, "big", big, 0)
	wantValue(t, s, "big", big)
}

func (su *suite) testTooLarge(t *testing.T, s *store) {
	if su.cfg.MaxValueSize <= 0 {
		t.Skip("Config.MaxValueSize not set")
	}
	mustSet(t, s, "k", []byte("old"), 0)
	err := s.Set(context.Background(), "k", make([]byte, su.cfg.MaxValueSize+1), 0)
	if !errors.Is(err, cachekit.ErrTooLarge) {
		t.Fatalf("Set of %d bytes: got %v, want ErrTooLarge", su.cfg.MaxValueSize+1, err)
	}
	wantValue(t, s, "k", []byte("old"))
}

// calls lists every operation of s (including its capabilities) as
// closures, for the closed-store and cancelled-context cases.
func calls(s cachekit.Store) map[string]func(ctx context.Context) error {
	m := map[string]func(ctx context.Context) error{
		"Get":    func(ctx context.Context) error { _, err := s.Get(ctx, "k"); return err },
		"Set":    func(ctx context.Context) error { return s.Set(ctx, "k", []byte("v"), 0) },
		"Delete": func(ctx context.Context) error { _, err := s.Delete(ctx, "k"); return err },
	}
	if a, ok := s.(cachekit.Adder); ok {
		m["Add"] = func(ctx context.Context) error { _, err := a.Add(ctx, "k2", []byte("v"), 0); return err }
	}
	if a, ok := s.(cachekit.Toucher); ok {
		m["Touch"] = func(ctx context.Context) error { _, err := a.Touch(ctx, "k", time.Hour); return err }
	}
	if a, ok := s.(cachekit.Counter); ok {
		m["IncrBy"] = func(ctx context.Context) error { _, err := a.IncrBy(ctx, "n", 1); return err }
	}
	if a, ok := s.(cachekit.Batcher); ok {
		m["GetMany"] = func(ctx context.Context) error { _, err := a.GetMany(ctx, []string{"k"}); return err }
		m["SetMany"] = func(ctx context.Context) error {
			return a.SetMany(ctx, map[string][]byte{"k": []byte("v")}, 0)
		}
	}
	if a, ok := s.(cachekit.Clearer); ok {
		m["Clear"] = func(ctx context.Context) error { return a.Clear(ctx) }
	}
	if a, ok := s.(cachekit.ExpiryReader); ok {
		m["GetWithExpiry"] = func(ctx context.Context) error { _, _, err := a.GetWithExpiry(ctx, "k"); return err }
	}
	if a, ok := s.(cachekit.Leaser); ok {
		m["Lease"] = func(ctx context.Context) error { _, _, err := a.Lease(ctx, "lease", time.Minute); return err }
	}
	if a, ok := s.(cachekit.ValueStore); ok {
		m["GetValue"] = func(ctx context.Context) error { _, err := a.GetValue(ctx, "k"); return err }
		m["SetValue"] = func(ctx context.Context) error { return a.SetValue(ctx, "v", 1, 0) }
		m["AddValue"] = func(ctx context.Context) error { _, err := a.AddValue(ctx, "v2", 1, 0); return err }
		m["UpdateValue"] = func(ctx context.Context) error {
			_, err := a.UpdateValue(ctx, "v", func(old any) (any, error) { return old, nil })
			return err
		}
	}
	return m
}

func (su *suite) testClosed(t *testing.T, s *store) {
	mustSet(t, s, "k", []byte("v"), 0)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for name, call := range calls(s.Store) {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s after Close panicked: %v", name, r)
				}
			}()
			if err := call(context.Background()); !errors.Is(err, cachekit.ErrClosed) {
				t.Errorf("%s after Close: got %v, want ErrClosed", name, err)
			}
		}()
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: got %v, want nil", err)
	}
}

func (su *suite) testCancelled(t *testing.T, s *store) {
	mustSet(t, s, "k", []byte("v"), 0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for name, call := range calls(s.Store) {
		if err := call(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: got %v, want context.Canceled", name, err)
		}
	}
	// The cancelled calls changed nothing.
	wantValue(t, s, "k", []byte("v"))
}

// testConcurrent mixes writers, readers and deleters on a few keys. Each
// value names its key, so a reader detects a value filed under the wrong key
// or a torn write.
func (su *suite) testConcurrent(t *testing.T, s *store) {
	ctx := context.Background()
	const workers, ops, keys = 8, 300, 16
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ops {
				key := "key-" + strconv.Itoa((w*7+i)%keys)
				var err error
				switch i % 5 {
				case 0, 1:
					err = s.Set(ctx, key, []byte(key+"|"+strconv.Itoa(w)+"|"+strconv.Itoa(i)), time.Hour)
				case 2, 3:
					var v []byte
					v, err = s.Get(ctx, key)
					if errors.Is(err, cachekit.ErrMiss) {
						err = nil
					} else if err == nil && !bytes.HasPrefix(v, []byte(key+"|")) {
						err = fmt.Errorf("Get(%q) = %q: a value of another key", key, v)
					}
				case 4:
					_, err = s.Delete(ctx, key)
				}
				if err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
}

func (su *suite) testAdder(t *testing.T, s *store) {
	a, ok := s.Store.(cachekit.Adder)
	if !ok {
		t.Skip("store is not a cachekit.Adder")
	}
	ctx := context.Background()
	added, err := a.Add(ctx, "k", []byte("first"), time.Second)
	if err != nil || !added {
		t.Fatalf("Add on an absent key = %v, %v; want true, nil", added, err)
	}
	added, err = a.Add(ctx, "k", []byte("second"), 0)
	if err != nil || added {
		t.Fatalf("Add on a present key = %v, %v; want false, nil", added, err)
	}
	wantValue(t, s, "k", []byte("first"))
	s.expire(t, ctx, "k", 2*time.Second)
	added, err = a.Add(ctx, "k", []byte("third"), 0)
	if err != nil || !added {
		t.Fatalf("Add on an expired key = %v, %v; want true, nil", added, err)
	}
	wantValue(t, s, "k", []byte("third"))

	// Atomic: of many concurrent adders exactly one wins.
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := a.Add(ctx, "race", []byte(strconv.Itoa(i)), 0)
			if err != nil {
				t.Errorf("Add: %v", err)
			}
			if ok {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := wins.Load(); n != 1 {
		t.Fatalf("%d concurrent Adds succeeded, want exactly 1", n)
	}
}

func (su *suite) testToucher(t *testing.T, s *store) {
	a, ok := s.Store.(cachekit.Toucher)
	if !ok {
		t.Skip("store is not a cachekit.Toucher")
	}
	ctx := context.Background()
	touched, err := a.Touch(ctx, "absent", time.Hour)
	if err != nil || touched {
		t.Fatalf("Touch on an absent key = %v, %v; want false, nil", touched, err)
	}
	mustSet(t, s, "k", []byte("v"), time.Second)
	mustSet(t, s, "probe", []byte("v"), time.Second)
	touched, err = a.Touch(ctx, "k", time.Hour)
	if err != nil || !touched {
		t.Fatalf("Touch on a live key = %v, %v; want true, nil", touched, err)
	}
	s.expire(t, ctx, "probe", 2*time.Second)
	wantValue(t, s, "k", []byte("v"))

	touched, err = a.Touch(ctx, "k", cachekit.ExpireNow)
	if err != nil || !touched {
		t.Fatalf("Touch with ExpireNow = %v, %v; want true, nil", touched, err)
	}
	wantMiss(t, s, "k")
}

func (su *suite) testCounter(t *testing.T, s *store) {
	c, ok := s.Store.(cachekit.Counter)
	if !ok {
		t.Skip("store is not a cachekit.Counter")
	}
	ctx := context.Background()
	if _, err := c.IncrBy(ctx, "absent", 1); !errors.Is(err, cachekit.ErrMiss) {
		t.Fatalf("IncrBy on an absent key: got %v, want ErrMiss", err)
	}
	wantMiss(t, s, "absent")

	mustSet(t, s, "n", []byte("10"), time.Second)
	for _, step := range []struct{ delta, want int64 }{{5, 15}, {-20, -5}, {0, -5}} {
		got, err := c.IncrBy(ctx, "n", step.delta)
		if err != nil || got != step.want {
			t.Fatalf("IncrBy(%d) = %d, %v; want %d, nil", step.delta, got, err, step.want)
		}
	}
	wantValue(t, s, "n", []byte("-5"))
	// The TTL survives an increment.
	s.expire(t, ctx, "n", 2*time.Second)

	mustSet(t, s, "text", []byte("abc"), 0)
	if _, err := c.IncrBy(ctx, "text", 1); !errors.Is(err, cachekit.ErrNotInteger) {
		t.Fatalf("IncrBy on text: got %v, want ErrNotInteger", err)
	}
	wantValue(t, s, "text", []byte("abc"))

	mustSet(t, s, "max", []byte(strconv.FormatInt(math.MaxInt64, 10)), 0)
	if _, err := c.IncrBy(ctx, "max", 1); !errors.Is(err, cachekit.ErrNotInteger) {
		t.Fatalf("IncrBy past MaxInt64: got %v, want ErrNotInteger", err)
	}

	mustSet(t, s, "shared", []byte("0"), 0)
	const workers, each = 8, 50
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if _, err := c.IncrBy(ctx, "shared", 1); err != nil {
					t.Errorf("IncrBy: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	wantValue(t, s, "shared", []byte(strconv.Itoa(workers*each)))
}

func (su *suite) testBatcher(t *testing.T, s *store) {
	b, ok := s.Store.(cachekit.Batcher)
	if !ok {
		t.Skip("store is not a cachekit.Batcher")
	}
	ctx := context.Background()
	items := map[string][]byte{"a": []byte("1"), "b": []byte("2"), "c": {}}
	if err := b.SetMany(ctx, items, time.Second); err != nil {
		t.Fatalf("SetMany: %v", err)
	}
	got, err := b.GetMany(ctx, []string{"a", "b", "c", "absent"})
	if err != nil {
		t.Fatalf("GetMany: %v", err)
	}
	if len(got) != 3 {
		t.Fatalf("GetMany returned %d keys, want 3: %q", len(got), got)
	}
	for k, want := range items {
		if v, ok := got[k]; !ok || !bytes.Equal(v, want) {
			t.Fatalf("GetMany[%q] = %q (present %v), want %q", k, v, ok, want)
		}
	}
	if _, ok := got["absent"]; ok {
		t.Fatal("GetMany included an absent key")
	}
	got, err = b.GetMany(ctx, nil)
	if err != nil || len(got) != 0 {
		t.Fatalf("GetMany(nil) = %q, %v; want empty, nil", got, err)
	}
	// Each key is waited out: on a cluster the keys live on different
	// nodes, which SetMany reaches (and whose clocks expire them) a few
	// milliseconds apart.
	for _, k := range []string{"a", "b", "c"} {
		s.expire(t, ctx, k, 2*time.Second)
	}
	got, err = b.GetMany(ctx, []string{"a", "b", "c"})
	if err != nil || len(got) != 0 {
		t.Fatalf("GetMany after the TTL = %q, %v; want empty, nil", got, err)
	}
}

func (su *suite) testClearer(t *testing.T, s *store) {
	c, ok := s.Store.(cachekit.Clearer)
	if !ok {
		t.Skip("store is not a cachekit.Clearer")
	}
	other := su.open(t)
	mustSet(t, other, "k", []byte("other"), 0)
	for _, k := range []string{"a", "b", "k"} {
		mustSet(t, s, k, []byte("v"), 0)
	}
	if err := c.Clear(context.Background()); err != nil {
		t.Fatalf("Clear: %v", err)
	}
	for _, k := range []string{"a", "b", "k"} {
		wantMiss(t, s, k)
	}
	wantValue(t, other, "k", []byte("other"))
	mustSet(t, s, "a", []byte("after"), 0)
	wantValue(t, s, "a", []byte("after"))
}

func (su *suite) testExpiryReader(t *testing.T, s *store) {
	r, ok := s.Store.(cachekit.ExpiryReader)
	if !ok {
		t.Skip("store is not a cachekit.ExpiryReader")
	}
	ctx := context.Background()
	if _, _, err := r.GetWithExpiry(ctx, "absent"); !errors.Is(err, cachekit.ErrMiss) {
		t.Fatalf("GetWithExpiry on an absent key: got %v, want ErrMiss", err)
	}
	now := s.clock.Now()
	if s.real {
		now = time.Now()
	}
	mustSet(t, s, "k", []byte("v"), time.Hour)
	v, exp, err := r.GetWithExpiry(ctx, "k")
	if err != nil || string(v) != "v" {
		t.Fatalf("GetWithExpiry = %q, %v; want v, nil", v, err)
	}
	want := now.Add(time.Hour)
	if d := exp.Sub(want); d < -2*time.Second || d > 2*time.Second {
		t.Fatalf("GetWithExpiry expiry = %v, want about %v", exp, want)
	}
	mustSet(t, s, "forever", []byte("v"), cachekit.NoExpiry)
	if _, exp, err := r.GetWithExpiry(ctx, "forever"); err != nil || !exp.IsZero() {
		t.Fatalf("GetWithExpiry on a NoExpiry key = %v, %v; want the zero time, nil", exp, err)
	}
}

func (su *suite) testLeaser(t *testing.T, s *store) {
	l, ok := s.Store.(cachekit.Leaser)
	if !ok {
		t.Skip("store is not a cachekit.Leaser")
	}
	ctx := context.Background()
	release, ok, err := l.Lease(ctx, "job", time.Second)
	if err != nil || !ok {
		t.Fatalf("first Lease = %v, %v; want true, nil", ok, err)
	}
	if _, ok, err := l.Lease(ctx, "job", time.Second); err != nil || ok {
		t.Fatalf("second Lease while held = %v, %v; want false, nil", ok, err)
	}
	if err := release(ctx); err != nil {
		t.Fatalf("release: %v", err)
	}
	release2, ok, err := l.Lease(ctx, "job", time.Second)
	if err != nil || !ok {
		t.Fatalf("Lease after release = %v, %v; want true, nil", ok, err)
	}
	// Let the lease lapse; a new owner takes it; the old owner's late
	// release must not free the new owner's lease.
	if s.real {
		time.Sleep(2 * time.Second)
	} else {
		s.clock.Advance(2 * time.Second)
	}
	_, ok, err = l.Lease(ctx, "job", time.Hour)
	if err != nil || !ok {
		t.Fatalf("Lease after the first lapsed = %v, %v; want true, nil", ok, err)
	}
	if err := release2(ctx); err != nil {
		t.Fatalf("late release: %v", err)
	}
	if _, ok, err := l.Lease(ctx, "job", time.Second); err != nil || ok {
		t.Fatalf("Lease after a stale owner's release = %v, %v; want false (still held), nil", ok, err)
	}
}

func (su *suite) testValueStore(t *testing.T, s *store) {
	vs, ok := s.Store.(cachekit.ValueStore)
	if !ok {
		t.Skip("store is not a cachekit.ValueStore")
	}
	ctx := context.Background()
	type thing struct{ N int }
	p := &thing{N: 1}
	if err := vs.SetValue(ctx, "p", p, time.Second); err != nil {
		t.Fatalf("SetValue: %v", err)
	}
	got, err := vs.GetValue(ctx, "p")
	if err != nil {
		t.Fatalf("GetValue: %v", err)
	}
	if got.(*thing) != p {
		t.Fatalf("GetValue returned %p, want the same pointer %p", got, p)
	}
	p.N = 2
	if got, _ := vs.GetValue(ctx, "p"); got.(*thing).N != 2 {
		t.Fatal("a mutation through the pointer is not visible")
	}
	if _, err := vs.GetValue(ctx, "absent"); !errors.Is(err, cachekit.ErrMiss) {
		t.Fatalf("GetValue on an absent key: got %v, want ErrMiss", err)
	}
	added, err := vs.AddValue(ctx, "p", &thing{}, 0)
	if err != nil || added {
		t.Fatalf("AddValue on a present key = %v, %v; want false, nil", added, err)
	}
	s.expire(t, ctx, "p", 2*time.Second)
	if _, err := vs.GetValue(ctx, "p"); !errors.Is(err, cachekit.ErrMiss) {
		t.Fatalf("GetValue after the TTL: got %v, want ErrMiss", err)
	}
	added, err = vs.AddValue(ctx, "p", &thing{N: 3}, 0)
	if err != nil || !added {
		t.Fatalf("AddValue on an expired key = %v, %v; want true, nil", added, err)
	}
	if _, err := vs.UpdateValue(ctx, "absent", func(old any) (any, error) { return old, nil }); !errors.Is(err, cachekit.ErrMiss) {
		t.Fatalf("UpdateValue on an absent key: got %v, want ErrMiss", err)
	}
	boom := errors.New("boom")
	if _, err := vs.UpdateValue(ctx, "p", func(any) (any, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("UpdateValue whose fn fails: got %v, want that error", err)
	}
	if got, _ := vs.GetValue(ctx, "p"); got.(*thing).N != 3 {
		t.Fatal("a failed UpdateValue changed the value")
	}

	if err := vs.SetValue(ctx, "n", 0, 0); err != nil {
		t.Fatalf("SetValue: %v", err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if _, err := vs.UpdateValue(ctx, "n", func(old any) (any, error) { return old.(int) + 1, nil }); err != nil {
					t.Errorf("UpdateValue: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if got, _ := vs.GetValue(ctx, "n"); got != 400 {
		t.Fatalf("after 400 concurrent UpdateValue increments: %v, want 400", got)
	}
}
