package main

import (
	"sync"

	theine "github.com/Yiling-J/theine-go"
	"github.com/dgraph-io/ristretto/v2"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/maypok86/otter/v2"

	"github.com/cachekit/cachekit/memory"
)

// cache is what the harness drives: int keys and values, a miss answered by
// Set. Every contender goes through this interface, so the cost of the
// dynamic call is the same for all of them.
type cache interface {
	Get(key int) (int, bool)
	Set(key, value int)
	Close()
}

// sizer is a cache that can count its entries (ristretto cannot without
// its metrics).
type sizer interface{ Len() int }

// contender is one cache configuration under test.
type contender struct {
	name     string
	about    string
	baseline bool // not a bounded cache: shown for scale, never a "peer"
	open     func(capacity int) (cache, error)
}

// Contender names. Ours start with "cachekit".
const (
	cCachekit      = "cachekit"
	cOtter         = "otter"
	cOtterSync     = "otter-sync"
	cRistretto     = "ristretto"
	cRistrettoWait = "ristretto-wait"
	cTheine        = "theine"
	cLRU           = "golang-lru"
	c2Q            = "golang-lru-2q"
	cMap           = "rwmutex-map"
	cOptimal       = "belady"
)

var contenders = map[string]contender{
	cCachekit: {name: cCachekit, about: "memory.New[int, int](memory.Options{MaxEntries: cap})", open: openCachekit},
	cOtter: {name: cOtter, about: "otter.New(&Options{MaximumSize: cap, InitialCapacity: cap}), default executor (a goroutine per maintenance)",
		open: func(n int) (cache, error) { return openOtter(n, false) }},
	cOtterSync: {name: cOtterSync, about: "as otter, with Executor: func(fn func()) { fn() } (maintenance on the caller)",
		open: func(n int) (cache, error) { return openOtter(n, true) }},
	cRistretto: {name: cRistretto, about: "NumCounters 10×cap, MaxCost cap, BufferItems 64, IgnoreInternalCost, cost 1 (as normally used)",
		open: func(n int) (cache, error) { return openRistretto(n, false) }},
	cRistrettoWait: {name: cRistrettoWait, about: "as ristretto, with Wait() after every Set",
		open: func(n int) (cache, error) { return openRistretto(n, true) }},
	cTheine:  {name: cTheine, about: "theine.NewBuilder[int, int](cap).Build(), cost 1", open: openTheine},
	cLRU:     {name: cLRU, about: "lru.New[int, int](cap)", open: openLRU},
	c2Q:      {name: c2Q, about: "lru.New2Q[int, int](cap)", open: open2Q},
	cMap:     {name: cMap, baseline: true, about: "baseline: sync.RWMutex + map[int]int, unbounded (no eviction, no policy)", open: openMap},
	cOptimal: {name: cOptimal, baseline: true, about: "Bélády's optimum: evicts the key used farthest ahead (may decline to admit); hit-ratio upper bound"},
}

// hitContenders and speedContenders are the contenders of the hit-ratio
// simulation and of the throughput and memory measurements, in report order.
var (
	hitContenders   = []string{cCachekit, cOtter, cOtterSync, cRistretto, cRistrettoWait, cTheine, cLRU, c2Q, cOptimal}
	speedContenders = []string{cCachekit, cOtter, cRistretto, cTheine, cLRU, c2Q, cMap}
)

type cachekitCache struct{ c *memory.Cache[int, int] }

func openCachekit(n int) (cache, error) {
	c, err := memory.New[int, int](memory.Options[int, int]{MaxEntries: n})
	if err != nil {
		return nil, err
	}
	return cachekitCache{c}, nil
}

func (c cachekitCache) Get(k int) (int, bool) { return c.c.Get(k) }
func (c cachekitCache) Set(k, v int)          { c.c.Set(k, v) }
func (c cachekitCache) Close()                { _ = c.c.Close() }
func (c cachekitCache) Len() int              { return c.c.Len() }

type otterCache struct{ c *otter.Cache[int, int] }

func openOtter(n int, sync bool) (cache, error) {
	o := &otter.Options[int, int]{MaximumSize: n, InitialCapacity: n}
	if sync {
		o.Executor = func(fn func()) { fn() }
	}
	c, err := otter.New(o)
	if err != nil {
		return nil, err
	}
	return otterCache{c}, nil
}

func (c otterCache) Get(k int) (int, bool) { return c.c.GetIfPresent(k) }
func (c otterCache) Set(k, v int)          { c.c.Set(k, v) }
func (c otterCache) Close()                { c.c.StopAllGoroutines() }
func (c otterCache) Len() int              { return c.c.EstimatedSize() }

type ristrettoCache struct {
	c    *ristretto.Cache[int, int]
	wait bool
}

func openRistretto(n int, wait bool) (cache, error) {
	c, err := ristretto.NewCache(&ristretto.Config[int, int]{
		NumCounters:        10 * int64(n),
		MaxCost:            int64(n),
		BufferItems:        64,
		IgnoreInternalCost: true,
	})
	if err != nil {
		return nil, err
	}
	return ristrettoCache{c, wait}, nil
}

func (c ristrettoCache) Get(k int) (int, bool) { return c.c.Get(k) }
func (c ristrettoCache) Set(k, v int) {
	c.c.Set(k, v, 1)
	if c.wait {
		c.c.Wait()
	}
}
func (c ristrettoCache) Close() { c.c.Close() }

type theineCache struct{ c *theine.Cache[int, int] }

func openTheine(n int) (cache, error) {
	c, err := theine.NewBuilder[int, int](int64(n)).Build()
	if err != nil {
		return nil, err
	}
	return theineCache{c}, nil
}

func (c theineCache) Get(k int) (int, bool) { return c.c.Get(k) }
func (c theineCache) Set(k, v int)          { c.c.Set(k, v, 1) }
func (c theineCache) Close()                { c.c.Close() }
func (c theineCache) Len() int              { return c.c.Len() }

type lruCache struct{ c *lru.Cache[int, int] }

func openLRU(n int) (cache, error) {
	c, err := lru.New[int, int](n)
	if err != nil {
		return nil, err
	}
	return lruCache{c}, nil
}

func (c lruCache) Get(k int) (int, bool) { return c.c.Get(k) }
func (c lruCache) Set(k, v int)          { c.c.Add(k, v) }
func (c lruCache) Close()                {}
func (c lruCache) Len() int              { return c.c.Len() }

type twoQCache struct{ c *lru.TwoQueueCache[int, int] }

func open2Q(n int) (cache, error) {
	c, err := lru.New2Q[int, int](n)
	if err != nil {
		return nil, err
	}
	return twoQCache{c}, nil
}

func (c twoQCache) Get(k int) (int, bool) { return c.c.Get(k) }
func (c twoQCache) Set(k, v int)          { c.c.Add(k, v) }
func (c twoQCache) Close()                {}
func (c twoQCache) Len() int              { return c.c.Len() }

// mapCache is the baseline: a map behind a sync.RWMutex, never evicting.
type mapCache struct {
	mu sync.RWMutex // protects m
	m  map[int]int
}

func openMap(n int) (cache, error) { return &mapCache{m: make(map[int]int, n)}, nil }

func (c *mapCache) Get(k int) (int, bool) {
	c.mu.RLock()
	v, ok := c.m[k]
	c.mu.RUnlock()
	return v, ok
}

func (c *mapCache) Set(k, v int) {
	c.mu.Lock()
	c.m[k] = v
	c.mu.Unlock()
}

func (c *mapCache) Close() {}
