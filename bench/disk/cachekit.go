package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/disk"
)

// The contender table's entries for our disk store, without and with its
// in-process L1 tier; they come first.
func init() {
	register(contender{name: "cachekit-disk", ours: true, usesDir: true, check: checkCachekitDisk, open: openCachekitDisk})
	register(contender{name: "cachekit-disk-l1", ours: true, usesDir: true, check: checkCachekitDisk, open: openCachekitDiskL1})
}

// l1Size is the L1 budget of cachekit-disk-l1: room for every 10 KiB value
// of the 20,000-key workloads.
const l1Size = 256 << 20

// The benchmark drives disk.Store through the cachekit.Store contract only.
var _ cachekit.Store = (*disk.Store)(nil)

// checkCachekitDisk opens and closes a store in a scratch dir.
func checkCachekitDisk(ctx context.Context, e env) (string, error) {
	dir, err := os.MkdirTemp("", "cachekit-bench-check-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	st, err := openCachekitDisk(ctx, e, dir)
	if err != nil {
		return "", err
	}
	if err := st.Close(); err != nil {
		return "", err
	}
	return "github.com/cachekit/cachekit/disk from this tree (replace ../), default Options", nil
}

// cachekitDisk adapts *disk.Store to the harness's store.
type cachekitDisk struct{ s *disk.Store }

func openCachekitDisk(ctx context.Context, _ env, dir string) (store, error) {
	return openDisk(ctx, disk.Options{Dir: dir})
}

func openCachekitDiskL1(ctx context.Context, _ env, dir string) (store, error) {
	return openDisk(ctx, disk.Options{Dir: dir, L1Size: l1Size})
}

func openDisk(ctx context.Context, o disk.Options) (store, error) {
	s, err := disk.New(ctx, o)
	if err != nil {
		return nil, err
	}
	return cachekitDisk{s}, nil
}

func (c cachekitDisk) Get(ctx context.Context, key string) (bool, error) {
	_, err := c.s.Get(ctx, key)
	if errors.Is(err, cachekit.ErrMiss) {
		return false, nil
	}
	return err == nil, err
}

// Set stores with ttl 0: no expiry, as the peers do.
func (c cachekitDisk) Set(ctx context.Context, key string, val []byte) error {
	return c.s.Set(ctx, key, val, 0)
}

func (c cachekitDisk) Delete(ctx context.Context, key string) (bool, error) {
	n, err := c.s.Delete(ctx, key)
	return n > 0, err
}

// SetMany uses the store's Batcher for the untimed fill when it has one.
func (c cachekitDisk) SetMany(ctx context.Context, keys []string, val []byte) error {
	b, ok := any(c.s).(cachekit.Batcher)
	if !ok {
		for _, k := range keys {
			if err := c.s.Set(ctx, k, val, 0); err != nil {
				return err
			}
		}
		return nil
	}
	items := make(map[string][]byte, len(keys))
	for _, k := range keys {
		items[k] = val
	}
	return b.SetMany(ctx, items, 0)
}

func (c cachekitDisk) DeleteMany(ctx context.Context, keys []string) error {
	for chunk := range slices.Chunk(keys, fillChunk) {
		if _, err := c.s.Delete(ctx, chunk...); err != nil {
			return fmt.Errorf("cachekit-disk: delete: %w", err)
		}
	}
	return nil
}

func (c cachekitDisk) Close() error { return c.s.Close() }
