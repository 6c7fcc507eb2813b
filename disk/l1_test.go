package disk

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/cachetest"
)

func TestL1Conformance(t *testing.T) {
	t.Parallel()
	cachetest.Run(t, func(t *testing.T, clock cachekit.Clock) cachekit.Store {
		return newTestStore(t, Options{Clock: clock, L1Size: 1 << 20})
	})
}

// TestL1Coherence: two Stores on one directory (as two processes), each
// with an L1. A write through one is seen by the other's next Get.
func TestL1Coherence(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := newTestStore(t, Options{Dir: dir, L1Size: 1 << 20})
	b := newTestStore(t, Options{Dir: dir, L1Size: 1 << 20})
	plain := newTestStore(t, Options{Dir: dir}) // a writer without an L1 must still invalidate
	for i := range 50 {
		v := []byte(strconv.Itoa(i))
		writer := []*Store{a, b, plain}[i%3]
		if err := writer.Set(bg, "k", v, 0); err != nil {
			t.Fatal(err)
		}
		for _, r := range []*Store{a, b} {
			for range 2 { // the second read is served by the L1
				got, err := r.Get(bg, "k")
				if err != nil || string(got) != string(v) {
					t.Fatalf("round %d: Get = %q, %v; want %q", i, got, err, v)
				}
			}
		}
	}
	if st := a.Stats(); st.Hits < 50 {
		t.Fatalf("a.Stats = %+v", st)
	}
	// Deletes, touches, increments and clears invalidate too.
	a.Set(bg, "n", []byte("1"), 0)
	b.Get(bg, "n")
	if _, err := a.IncrBy(bg, "n", 1); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.Get(bg, "n"); string(got) != "2" {
		t.Fatalf("after IncrBy elsewhere: %q, want 2", got)
	}
	plain.Delete(bg, "n")
	if _, err := b.Get(bg, "n"); err == nil {
		t.Fatal("a Delete elsewhere left the value in the L1")
	}
	b.Get(bg, "k")
	plain.Clear(bg)
	if _, err := b.Get(bg, "k"); err == nil {
		t.Fatal("a Clear elsewhere left values in the L1")
	}
}

// TestL1NeverServesOlderThanACompletedWrite: readers with an L1 race a
// writer on another Store; a read never returns a value older than one
// whose Set had returned before the read started.
func TestL1NeverServesOlderThanACompletedWrite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := newTestStore(t, Options{Dir: dir, L1Size: 1 << 20})
	w := newTestStore(t, Options{Dir: dir})
	if err := w.Set(bg, "k", []byte("0"), 0); err != nil {
		t.Fatal(err)
	}
	var published atomic.Int64
	const writes = 300
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := int64(1); i <= writes; i++ {
			if err := w.Set(bg, "k", []byte(strconv.FormatInt(i, 10)), 0); err != nil {
				t.Error(err)
				return
			}
			published.Store(i)
		}
	}()
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for published.Load() < writes {
				before := published.Load()
				got, err := r.Get(bg, "k")
				if err != nil {
					t.Error(err)
					return
				}
				n, _ := strconv.ParseInt(string(got), 10, 64)
				if n < before {
					t.Errorf("read %d after the write of %d had returned", n, before)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestL1KeepsWrittenValues: values this process writes, alone, in SetMany
// or in a transaction, stay in its L1 (the next Get does not touch SQLite),
// and a later change in the same transaction wins.
func TestL1KeepsWrittenValues(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, Options{L1Size: 1 << 20})
	if err := s.Set(bg, "single", []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	if err := s.SetMany(bg, map[string][]byte{"a": []byte("A"), "b": []byte("B")}, 0); err != nil {
		t.Fatal(err)
	}
	err := s.Transact(bg, func(tx *Tx) error {
		tx.Set("kept", []byte("K"), 0)
		tx.Set("gone", []byte("G"), 0)
		_, err := tx.Delete("gone")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// Remove the rows behind the L1's back: what it kept is still served.
	if _, err := s.db.Exec(`DELETE FROM cache`); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"single": "1", "a": "A", "b": "B", "kept": "K"} {
		if v, err := s.Get(bg, k); err != nil || string(v) != want {
			t.Fatalf("Get(%s) = %q, %v; want %q from the L1", k, v, err, want)
		}
	}
	if _, err := s.Get(bg, "gone"); err == nil {
		t.Fatal("a value deleted later in the same transaction is served")
	}
}
