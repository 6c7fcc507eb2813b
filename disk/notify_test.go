package disk

import (
	"errors"
	"testing"
	"time"

	"github.com/cachekit/cachekit"
)

func TestSubscribeSeesOtherStoresWrites(t *testing.T) {
	if !l1Supported {
		t.Skip("no shared generation counter here")
	}
	t.Parallel()
	dir := t.TempDir()
	a := newTestStore(t, Options{Dir: dir})
	b := newTestStore(t, Options{Dir: dir})
	if !b.Watermark().IsZero() {
		t.Fatal("watermark before any subscription")
	}
	got := make(chan []string, 16)
	stop, err := b.Subscribe(bg, func(keys []string) { got <- keys })
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for b.Watermark().IsZero() {
		if time.Now().After(deadline) {
			t.Fatal("watermark never set")
		}
		time.Sleep(time.Millisecond)
	}
	before := time.Now()
	if err := a.Set(bg, "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	select {
	case keys := <-got:
		if keys != nil {
			t.Fatalf("notice %q, want nil (flush all)", keys)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no notice of another store's write")
	}
	for !b.Watermark().After(before) {
		if time.Now().After(deadline) {
			t.Fatal("watermark does not advance past the write")
		}
		time.Sleep(time.Millisecond)
	}
	stop()
	stop() // twice is fine
	if !b.Watermark().IsZero() {
		t.Fatal("watermark after the last subscriber left")
	}
	// Close ends a live subscription; Subscribe after Close fails.
	if _, err := b.Subscribe(bg, func([]string) {}); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if !b.Watermark().IsZero() {
		t.Fatal("watermark after Close")
	}
	if _, err := b.Subscribe(bg, func([]string) {}); !errors.Is(err, cachekit.ErrClosed) {
		t.Fatalf("Subscribe after Close: %v", err)
	}
}
