package disk

import (
	"context"
	"testing"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/cachetest"
)

// newTestStore opens a store in a fresh directory and closes it with the
// test.
func newTestStore(t testing.TB, opts Options) *Store {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	s, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStoreConformance(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"inline", Options{}},
		{"files", Options{MinFileSize: 1, MaxValueSize: 2 << 20}},
		{"lru", Options{Policy: LeastRecentlyUsed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cachetest.RunConfig(t, cachetest.Config{
				New: func(t *testing.T, clock cachekit.Clock) cachekit.Store {
					o := tc.opts
					o.Clock = clock
					return newTestStore(t, o)
				},
				MaxValueSize: int(tc.opts.MaxValueSize),
			})
		})
	}
}
