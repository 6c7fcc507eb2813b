package memo_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/memo"
)

// BenchmarkHit compares a memo hit with a raw cachekit.Cache Get of the
// same entry on the memory store (object tier). The difference is memo's
// overhead: encoding the argument, reading (or trusting) the function's
// generation, checking the envelope.
//
//	raw/key-given     Cache.Get with a precomputed key
//	raw/key-built     Cache.Get with the key built per call ("users.Get(" + id + ")")
//	memo/default      Func.Call: generation read from the store on every call
//	memo/stamp-cached Func.Call with Options.StampMaxStale (generation trusted for 1 min)
func BenchmarkHit(b *testing.B) {
	ctx := context.Background()
	const n = 1024
	setup := func(b *testing.B, opts memo.Options) (*cachekit.Cache[*user], *memo.Func[int, *user]) {
		c := newCache[*user](b, nil, cachekit.Options{})
		f := newFunc(b, c, "users.Get", func(_ context.Context, id int) (*user, error) {
			return &user{ID: id, Name: "name"}, nil
		}, opts)
		for i := range n {
			if _, err := f.Call(ctx, i); err != nil {
				b.Fatal(err)
			}
		}
		return c, f
	}
	b.Run("raw/key-given", func(b *testing.B) {
		c, f := setup(b, memo.Options{})
		keys := make([]string, n)
		for i := range keys {
			keys[i], _ = f.Key(i)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := c.Get(ctx, keys[i&(n-1)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("raw/key-built", func(b *testing.B) {
		c, _ := setup(b, memo.Options{})
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := c.Get(ctx, "users.Get("+strconv.Itoa(i&(n-1))+")"); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	for _, bc := range []struct {
		name string
		opts memo.Options
	}{
		{"memo/default", memo.Options{}},
		{"memo/stamp-cached", memo.Options{StampMaxStale: time.Minute}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			_, f := setup(b, bc.opts)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := f.Call(ctx, i&(n-1)); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkHitParallel is BenchmarkHit's memo/default on every core.
func BenchmarkHitParallel(b *testing.B) {
	ctx := context.Background()
	c := newCache[*user](b, nil, cachekit.Options{})
	f := newFunc(b, c, "users.Get", func(_ context.Context, id int) (*user, error) {
		return &user{ID: id}, nil
	}, memo.Options{})
	for i := range 1024 {
		f.Call(ctx, i)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := f.Call(ctx, i&1023); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}
