package cachekit_test

import (
	"context"
	"testing"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/cachetest"
	"github.com/cachekit/cachekit/codec"
	"github.com/cachekit/cachekit/memory"
)

// SetEntry keeps every envelope field on both tiers; AddEntry adds only once.
func TestSetEntryRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, withCodec := range []bool{false, true} {
		clock := cachetest.NewFakeClock(time.Unix(1_700_000_000, 0))
		st, err := memory.NewStore(memory.StoreOptions{MaxEntries: 100, Clock: clock})
		if err != nil {
			t.Fatal(err)
		}
		o := cachekit.Options{Clock: clock, DefaultTTL: time.Minute}
		if withCodec {
			o.Codec = codec.JSON
		}
		c := cachekit.Must[string](st, o)
		in := &cachekit.Entry[string]{
			Value:       "v",
			FreshUntil:  clock.Now().Add(10 * time.Second),
			ComputeTime: 3 * time.Millisecond,
			Negative:    true,
			Stamps:      []cachekit.Stamp{{Group: "g", Gen: 7}},
		}
		if err := c.SetEntry(ctx, "k", in, 0); err != nil {
			t.Fatal(err)
		}
		got, err := c.GetEntry(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		if got.Value != "v" || !got.FreshUntil.Equal(in.FreshUntil) || got.ComputeTime != in.ComputeTime ||
			!got.Negative || len(got.Stamps) != 1 || got.Stamps[0] != in.Stamps[0] ||
			!got.Created.Equal(clock.Now()) || !got.Expires.Equal(clock.Now().Add(time.Minute)) {
			t.Fatalf("codec %v: got %+v", withCodec, got)
		}
		if added, err := c.AddEntry(ctx, "k", &cachekit.Entry[string]{Value: "w"}, 0); err != nil || added {
			t.Fatalf("AddEntry over a live key: %v, %v", added, err)
		}
		if added, err := c.AddEntry(ctx, "k2", &cachekit.Entry[string]{Value: "w"}, time.Second); err != nil || !added {
			t.Fatalf("AddEntry of a new key: %v, %v", added, err)
		}
		clock.Advance(2 * time.Second)
		if ok, _ := c.Has(ctx, "k2"); ok {
			t.Fatal("AddEntry's ttl not applied")
		}
	}
}
