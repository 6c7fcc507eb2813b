package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/redis"
	"github.com/cachekit/cachekit/tiered"
)

// tieredL1Size is cachekit-tiered's L1 budget: room for the whole key space
// (10,000 entries of about 200 bytes by default).
const tieredL1Size = 64 << 20

// settleTimeout bounds the wait for a Watermark past a point in time; on a
// healthy server it takes one heartbeat (10 ms) plus a round trip.
const settleTimeout = 5 * time.Second

// The benchmark drives both stores through the cachekit contracts.
var (
	_ cachekit.Store       = (*redis.Store)(nil)
	_ cachekit.Batcher     = (*redis.Store)(nil)
	_ cachekit.Watermarker = (*redis.Store)(nil)
	_ cachekit.Store       = (*tiered.Store)(nil)
	_ cachekit.Batcher     = (*tiered.Store)(nil)
)

// cachekitStore is our redis store (cachekit-redis) or the tiered store over
// it (cachekit-tiered); rs is the redis store in both cases.
type cachekitStore struct {
	st interface {
		cachekit.Store
		cachekit.Batcher
	}
	rs *redis.Store
	t  *tiered.Store // nil for cachekit-redis
}

func openRedisStore(ctx context.Context, addr, prefix string) (*redis.Store, error) {
	return redis.New(ctx, redis.Options{Addrs: []string{addr}, Prefix: prefix})
}

func openCachekitRedis(ctx context.Context, addr, prefix string, _ int) (client, error) {
	rs, err := openRedisStore(ctx, addr, prefix)
	if err != nil {
		return nil, err
	}
	return &cachekitStore{st: rs, rs: rs}, nil
}

// openCachekitRedisCtx is our redis store with ContextTimeoutOnly: no
// per-call timer (the harness's context has no deadline).
func openCachekitRedisCtx(ctx context.Context, addr, prefix string, _ int) (client, error) {
	rs, err := redis.New(ctx, redis.Options{Addrs: []string{addr}, Prefix: prefix, ContextTimeoutOnly: true})
	if err != nil {
		return nil, err
	}
	return &cachekitStore{st: rs, rs: rs}, nil
}

func openCachekitTiered(ctx context.Context, addr, prefix string, _ int) (client, error) {
	rs, err := openRedisStore(ctx, addr, prefix)
	if err != nil {
		return nil, err
	}
	t, err := tiered.New(ctx, rs, tiered.Options{L1Size: tieredL1Size})
	if err != nil {
		return nil, errors.Join(err, rs.Close())
	}
	return &cachekitStore{st: t, rs: rs, t: t}, nil
}

func (c *cachekitStore) get(ctx context.Context, key string) (bool, error) {
	_, err := c.st.Get(ctx, key)
	if errors.Is(err, cachekit.ErrMiss) {
		return false, nil
	}
	return err == nil, err
}

// set stores with ttl 0: no expiry, as raw SET does.
func (c *cachekitStore) set(ctx context.Context, key string, val []byte) error {
	return c.st.Set(ctx, key, val, 0)
}

func (c *cachekitStore) getMany(ctx context.Context, keys []string) (int, error) {
	m, err := c.st.GetMany(ctx, keys)
	return len(m), err
}

// close closes the tiered store, which closes the redis store under it.
func (c *cachekitStore) close() error { return c.st.Close() }

// settle waits until the redis store's Watermark passes the time of the
// call: the invalidations of every write completed before it (this
// process's own writes are reported too) have then been applied to the L1.
func (c *cachekitStore) settle(ctx context.Context) error {
	return waitWatermark(ctx, c.rs, time.Now())
}

// renew does nothing: the tiered L1 keeps what it was given.
func (c *cachekitStore) renew() {}

func (c *cachekitStore) remoteReads() uint64 {
	st := c.t.Stats()
	return st.L1Misses + st.Bypassed
}

func (c *cachekitStore) tierStats() string { return fmt.Sprintf("%+v", c.t.Stats()) }

// waitWatermark waits until w's Watermark is after t, or settleTimeout.
func waitWatermark(ctx context.Context, w cachekit.Watermarker, t time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, settleTimeout)
	defer cancel()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !w.Watermark().After(t) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("watermark %v still not past %v after %v: %w",
				w.Watermark().Format(time.StampMicro), t.Format(time.StampMicro), settleTimeout, ctx.Err())
		case <-tick.C:
		}
	}
	return nil
}
