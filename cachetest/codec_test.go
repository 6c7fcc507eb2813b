package cachetest_test

import (
	"testing"

	"github.com/cachekit/cachekit/cachetest"
	"github.com/cachekit/cachekit/codec"
)

func TestRunCodec(t *testing.T) {
	t.Parallel()
	for _, c := range []codec.Codec{codec.Gob, codec.JSON, codec.Raw} {
		t.Run(c.Name(), func(t *testing.T) {
			t.Parallel()
			cachetest.RunCodec(t, c)
		})
	}
}
