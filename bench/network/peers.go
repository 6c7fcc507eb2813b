package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	gocache "github.com/go-redis/cache/v9"
	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"

	"github.com/cachekit/cachekit/bench/internal/report"
)

// client is what the harness needs from a contender. Reads report whether
// they found the keys; values are never retained by the harness.
type client interface {
	get(ctx context.Context, key string) (hit bool, err error)
	set(ctx context.Context, key string, val []byte) error
	// getMany reads the keys in one call (one round trip where the API has
	// one) and reports how many it found.
	getMany(ctx context.Context, keys []string) (hits int, err error)
	close() error
}

// localTier is a client with an in-process tier in front of Redis.
type localTier interface {
	// settle waits until the invalidations of every write completed before
	// the call have reached the tier, so that none of them drops a key
	// after the harness warmed it.
	settle(ctx context.Context) error
	// remoteReads counts the key reads so far that the tier did not serve
	// (sent to Redis).
	remoteReads() uint64
	// renew gives the client a fresh, empty local tier if its library needs
	// one to hold a warmed key space (go-redis/cache: see goRedisCache.renew);
	// the harness calls it before warming.
	renew()
	// tierStats describes the tier's counters, for -v.
	tierStats() string
}

// contender is one entry of the table.
type contender struct {
	name string
	// about is the header's description: library, version, settings.
	about string
	// storePrefixes: the client adds the key prefix itself (our stores);
	// otherwise the harness passes prefixed keys.
	storePrefixes bool
	// compare lists the peers whose medians the table divides by ours, for
	// our contenders (the name starts with "cachekit").
	compare []string
	// local: the client has an in-process tier (it implements localTier);
	// its get and get-many workloads read keys warmed beforehand, and a read
	// the tier did not serve counts as not as expected.
	local bool
	// noGetMany, when set, says why the contender has no get-many rows.
	noGetMany string
	// open connects a client for keys under prefix; keys is the key space,
	// for sizing a local tier.
	open func(ctx context.Context, addr, prefix string, keys int) (client, error)
}

// contenders is the table, in report order.
var contenders = []contender{
	{
		name:          "cachekit-redis",
		about:         "github.com/cachekit/cachekit/redis from this tree (replace ../), default Options, no L1",
		storePrefixes: true,
		compare:       []string{"rueidis", "go-redis", "go-redis-cache"},
		open:          openCachekitRedis,
	},
	{
		name:          "cachekit-redis-ctx",
		about:         "cachekit-redis with Options.ContextTimeoutOnly (no per-call timer; the bound is the caller's context)",
		storePrefixes: true,
		compare:       []string{"rueidis"},
		open:          openCachekitRedisCtx,
	},
	{
		name:  "rueidis",
		about: "raw rueidis " + report.ModVersion("github.com/redis/rueidis") + " Do GET/SET/MGET, default ClientOption but DisableCache",
		open:  openRueidis,
	},
	{
		name:  "go-redis",
		about: "raw go-redis " + report.ModVersion("github.com/redis/go-redis/v9") + " Get/Set/MGet, default Options",
		open:  openGoRedis,
	},
	{
		name:      "go-redis-cache",
		about:     "go-redis/cache " + report.ModVersion("github.com/go-redis/cache/v9") + " over go-redis, no LocalCache; Set TTL its default 1h",
		noGetMany: "go-redis/cache has no multi-key get (a loop of Gets would time 10 round trips, not one call)",
		open:      openGoRedisCache(false),
	},
	{
		name:          "cachekit-tiered",
		local:         true,
		about:         fmt.Sprintf("github.com/cachekit/cachekit/tiered over cachekit-redis, L1Size %d MiB, default MaxStale", tieredL1Size>>20),
		storePrefixes: true,
		compare:       []string{"go-redis-cache-local", "cachekit-redis"},
		open:          openCachekitTiered,
	},
	{
		name:  "go-redis-cache-local",
		local: true,
		about: "go-redis/cache " + report.ModVersion("github.com/go-redis/cache/v9") +
			" with NewTinyLFU(2×keys, 1h) LocalCache; get-many is a loop of Gets (local hits)",
		open: openGoRedisCache(true),
	},
}

func contenderNames() []string {
	names := make([]string, len(contenders))
	for i, c := range contenders {
		names[i] = c.name
	}
	return names
}

func findContender(name string) (contender, bool) {
	i := slices.IndexFunc(contenders, func(c contender) bool { return c.name == name })
	if i < 0 {
		return contender{}, false
	}
	return contenders[i], true
}

// ours tells whether a contender is one of cachekit's stores.
func ours(name string) bool { return strings.HasPrefix(name, "cachekit") }

// ---------------------------------------------------------------- rueidis

// rueidisClient is raw rueidis as its README shows it: Do with built
// commands. DisableCache only skips CLIENT TRACKING on its connections (no
// command here uses the client-side cache).
type rueidisClient struct{ c rueidis.Client }

func openRueidis(_ context.Context, addr, _ string, _ int) (client, error) {
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}, DisableCache: true})
	if err != nil {
		return nil, err
	}
	return rueidisClient{c}, nil
}

func (r rueidisClient) get(ctx context.Context, key string) (bool, error) {
	_, err := r.c.Do(ctx, r.c.B().Get().Key(key).Build()).AsBytes()
	if rueidis.IsRedisNil(err) {
		return false, nil
	}
	return err == nil, err
}

func (r rueidisClient) set(ctx context.Context, key string, val []byte) error {
	return r.c.Do(ctx, r.c.B().Set().Key(key).Value(rueidis.BinaryString(val)).Build()).Error()
}

func (r rueidisClient) getMany(ctx context.Context, keys []string) (int, error) {
	vals, err := r.c.Do(ctx, r.c.B().Mget().Key(keys...).Build()).ToArray()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, v := range vals {
		if !v.IsNil() {
			if _, err := v.AsBytes(); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

func (r rueidisClient) close() error {
	r.c.Close()
	return nil
}

// ---------------------------------------------------------------- go-redis

// goRedisClient is raw go-redis with its default Options (a pool of
// 10 × GOMAXPROCS connections, RESP3).
type goRedisClient struct{ c *goredis.Client }

func newGoRedis(addr string) *goredis.Client { return goredis.NewClient(&goredis.Options{Addr: addr}) }

func openGoRedis(ctx context.Context, addr, _ string, _ int) (client, error) {
	c := newGoRedis(addr)
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		return nil, err
	}
	return goRedisClient{c}, nil
}

func (g goRedisClient) get(ctx context.Context, key string) (bool, error) {
	_, err := g.c.Get(ctx, key).Bytes()
	if errors.Is(err, goredis.Nil) {
		return false, nil
	}
	return err == nil, err
}

func (g goRedisClient) set(ctx context.Context, key string, val []byte) error {
	return g.c.Set(ctx, key, val, 0).Err()
}

func (g goRedisClient) getMany(ctx context.Context, keys []string) (int, error) {
	vals, err := g.c.MGet(ctx, keys...).Result()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, v := range vals {
		if v != nil {
			n++
		}
	}
	return n, nil
}

func (g goRedisClient) close() error { return g.c.Close() }

// ---------------------------------------------------------------- go-redis/cache

// goRedisCache is github.com/go-redis/cache over a default go-redis
// client, with or without its TinyLFU local cache. Values are []byte, which
// it stores as they are (no msgpack, no compression).
type goRedisCache struct {
	rdb   *goredis.Client
	c     *gocache.Cache
	local bool
	keys  int // key space, for sizing the local cache
}

// localTTL is the TTL of go-redis-cache-local's entries: longer than any
// run, so that only the workloads decide what the local cache holds.
const localTTL = time.Hour

func openGoRedisCache(local bool) func(ctx context.Context, addr, _ string, keys int) (client, error) {
	return func(ctx context.Context, addr, _ string, keys int) (client, error) {
		rdb := newGoRedis(addr)
		if err := rdb.Ping(ctx).Err(); err != nil {
			_ = rdb.Close()
			return nil, err
		}
		g := &goRedisCache{rdb: rdb, local: local, keys: keys}
		g.renew()
		return g, nil
	}
}

// renew makes the go-redis/cache Cache, with a new local cache if any:
// TinyLFU with room for twice the key space (it admits every key while it
// has room).
//
// The harness renews go-redis-cache-local before each get and get-many
// phase because the TinyLFU that go-redis/cache v9.0.0 ships
// (vmihailenco/go-tinylfu v0.2.2) does not replace an entry on Set of a
// present key: it adds a second list entry, and evicting the stale one later
// deletes the key. After two overwrite passes over 10,000 keys it holds 200
// of them (go-redis/cache issue #105). Renewed, its get phases measure its
// local-hit cost, not that defect.
func (g *goRedisCache) renew() {
	o := &gocache.Options{Redis: g.rdb, StatsEnabled: true}
	if g.local {
		o.LocalCache = gocache.NewTinyLFU(2*g.keys, localTTL)
	}
	g.c = gocache.New(o)
}

func (g *goRedisCache) get(ctx context.Context, key string) (bool, error) {
	var b []byte
	err := g.c.Get(ctx, key, &b)
	if errors.Is(err, gocache.ErrCacheMiss) {
		return false, nil
	}
	return err == nil, err
}

// set uses Item's default TTL (one hour): go-redis/cache has no "no expiry".
func (g *goRedisCache) set(ctx context.Context, key string, val []byte) error {
	return g.c.Set(&gocache.Item{Ctx: ctx, Key: key, Value: val})
}

// getMany is a loop of Gets: go-redis/cache has no multi-key get. Only
// go-redis-cache-local runs it, where every Get is a local hit.
func (g *goRedisCache) getMany(ctx context.Context, keys []string) (int, error) {
	n := 0
	for _, k := range keys {
		hit, err := g.get(ctx, k)
		if err != nil {
			return n, err
		}
		if hit {
			n++
		}
	}
	return n, nil
}

func (g *goRedisCache) close() error { return g.rdb.Close() }

// settle has nothing to wait for: go-redis/cache's local cache is told of
// no writes but its own (other processes' writes show after its TTL).
func (g *goRedisCache) settle(context.Context) error { return nil }

// remoteReads counts the Gets that went to Redis (its Stats count only
// those, hits and misses).
func (g *goRedisCache) remoteReads() uint64 {
	st := g.c.Stats()
	return st.Hits + st.Misses
}

func (g *goRedisCache) tierStats() string {
	st := g.c.Stats()
	return fmt.Sprintf("redis hits %d misses %d", st.Hits, st.Misses)
}

// ---------------------------------------------------------------- admin

// admin is the harness's own connection: untimed fills and deletes, the
// server's version.
type admin struct{ c rueidis.Client }

func newAdmin(addr string) (*admin, error) {
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}, DisableCache: true})
	if err != nil {
		return nil, fmt.Errorf("connect to redis at %s: %w", addr, err)
	}
	return &admin{c}, nil
}

func (a *admin) close() { a.c.Close() }

func (a *admin) version(ctx context.Context) (string, error) {
	info, err := a.c.Do(ctx, a.c.B().Info().Section("server").Build()).ToString()
	if err != nil {
		return "", fmt.Errorf("redis: info: %w", err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			return v, nil
		}
	}
	return "?", nil
}

// adminChunk is the batch size of fills and deletes.
const adminChunk = 500

// fill sets every key to val (no expiry), pipelined.
func (a *admin) fill(ctx context.Context, keys []string, val []byte) error {
	for chunk := range slices.Chunk(keys, adminChunk) {
		cmds := make(rueidis.Commands, 0, len(chunk))
		for _, k := range chunk {
			cmds = append(cmds, a.c.B().Set().Key(k).Value(rueidis.BinaryString(val)).Build())
		}
		for _, resp := range a.c.DoMulti(ctx, cmds...) {
			if err := resp.Error(); err != nil {
				return err
			}
		}
	}
	return nil
}

// purge deletes the keys.
func (a *admin) purge(ctx context.Context, keys []string) error {
	for chunk := range slices.Chunk(keys, adminChunk) {
		if err := a.c.Do(ctx, a.c.B().Unlink().Key(chunk...).Build()).Error(); err != nil {
			return err
		}
	}
	return nil
}
