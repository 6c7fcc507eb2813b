package cachetest_test

import (
	"testing"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/cachetest"
	"github.com/cachekit/cachekit/memory"
)

// Run checks a Store implementation; call it from a test of your own.
func ExampleRun() {
	_ = func(t *testing.T) {
		cachetest.Run(t, func(t *testing.T, clock cachekit.Clock) cachekit.Store {
			s, err := memory.NewStore(memory.StoreOptions{Clock: clock})
			if err != nil {
				t.Fatal(err)
			}
			return s
		})
	}
}
