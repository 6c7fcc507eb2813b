package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	gocache "github.com/go-redis/cache/v9"
	"github.com/viccon/sturdyc"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/memo"
	"github.com/cachekit/cachekit/memory"
)

// user is the cached value of the hit and stampede workloads. Its fields
// are exported for go-redis/cache's msgpack.
type user struct {
	ID   int
	Name string
}

// hitSession is one contender ready for the hit workload: call(i) reads
// key i, which must be present, and checks the value.
type hitSession struct {
	call  func(ctx context.Context, i int) error
	loads *atomic.Int64 // computations so far; a hit computes nothing
	close func() error
}

type hitContender struct {
	name  string
	about string
	open  func(ctx context.Context, keys int) (*hitSession, error)
}

// hitContenders is the hit workload's table, in report order.
var hitContenders = []hitContender{
	{
		name:  "cachekit-cache-get",
		about: "cachekit.Cache[*user].Get of the key a memo.Func stored, key built beforehand (memory store, object tier)",
		open:  openCacheGet,
	},
	{
		name:  "cachekit-memo",
		about: "memo.Func[int, *user].Call, default Options (memory store, object tier; the key is built per call)",
		open:  openMemoHit,
	},
	{
		name:  "sturdyc",
		about: "sturdyc.Client[*user].GetOrFetch, 8 shards, TTL 1h, no early refresh, WithNoContinuousEvictions; key and fetch func built beforehand",
		open:  openSturdycHit,
	},
	{
		name: "go-redis-cache-once-local",
		about: "go-redis/cache Once(&Item{Key, Value: &u, Do}) with NewTinyLFU(10×keys, 1h) and no Redis; key and Do built beforehand;" +
			" a hit decodes msgpack",
		open: openGoRedisCacheHit,
	},
}

func hitNames() []string {
	out := make([]string, len(hitContenders))
	for i, c := range hitContenders {
		out[i] = c.name
	}
	return out
}

func hitWorkload() string { return "hit/memory/1g" }

// hitKey is the key of argument i, as memo.Func.Key writes it (the peers
// get the same strings).
func hitKey(i int) string { return "users.Get(" + strconv.Itoa(i) + ")" }

var errWrongValue = errors.New("wrong value")

func checkUser(u *user, i int) error {
	if u == nil || u.ID != i {
		return errWrongValue
	}
	return nil
}

// newMemoUsers is a memory store, a cache over it and a memo.Func of user
// ids: what cachekit-cache-get and cachekit-memo share.
func newMemoUsers(keys int) (*cachekit.Cache[*user], *memo.Func[int, *user], *atomic.Int64, error) {
	st, err := memory.NewStore(memory.StoreOptions{MaxEntries: max(4*keys, 1<<16)})
	if err != nil {
		return nil, nil, nil, err
	}
	c, err := cachekit.New[*user](st, cachekit.Options{})
	if err != nil {
		return nil, nil, nil, errors.Join(err, st.Close())
	}
	loads := new(atomic.Int64)
	f, err := memo.New(c, "users.Get", func(_ context.Context, id int) (*user, error) {
		loads.Add(1)
		return &user{ID: id, Name: "name"}, nil
	}, memo.Options{})
	if err != nil {
		return nil, nil, nil, errors.Join(err, c.Close())
	}
	return c, f, loads, nil
}

func openCacheGet(ctx context.Context, keys int) (*hitSession, error) {
	c, f, loads, err := newMemoUsers(keys)
	if err != nil {
		return nil, err
	}
	ks := make([]string, keys)
	for i := range ks {
		if _, err := f.Call(ctx, i); err != nil {
			return nil, errors.Join(err, f.Close(), c.Close())
		}
		if ks[i], err = f.Key(i); err != nil {
			return nil, errors.Join(err, f.Close(), c.Close())
		}
	}
	return &hitSession{
		call: func(ctx context.Context, i int) error {
			u, err := c.Get(ctx, ks[i])
			if err != nil {
				return err
			}
			return checkUser(u, i)
		},
		loads: loads,
		close: func() error { return errors.Join(f.Close(), c.Close()) },
	}, nil
}

func openMemoHit(_ context.Context, keys int) (*hitSession, error) {
	c, f, loads, err := newMemoUsers(keys)
	if err != nil {
		return nil, err
	}
	return &hitSession{
		call: func(ctx context.Context, i int) error {
			u, err := f.Call(ctx, i)
			if err != nil {
				return err
			}
			return checkUser(u, i)
		},
		loads: loads,
		close: func() error { return errors.Join(f.Close(), c.Close()) },
	}, nil
}

// sturdycShards is the shard count of the sturdyc clients (its README's
// examples use 10; a power of two here).
const sturdycShards = 8

func openSturdycHit(_ context.Context, keys int) (*hitSession, error) {
	c := sturdyc.New[*user](max(4*keys, 1<<16), sturdycShards, time.Hour, 10, sturdyc.WithNoContinuousEvictions())
	loads := new(atomic.Int64)
	ks := make([]string, keys)
	fetch := make([]sturdyc.FetchFn[*user], keys)
	for i := range ks {
		ks[i] = hitKey(i)
		fetch[i] = func(context.Context) (*user, error) {
			loads.Add(1)
			return &user{ID: i, Name: "name"}, nil
		}
	}
	return &hitSession{
		call: func(ctx context.Context, i int) error {
			u, err := c.GetOrFetch(ctx, ks[i], fetch[i])
			if err != nil {
				return err
			}
			return checkUser(u, i)
		},
		loads: loads,
		close: func() error { return nil }, // sturdyc has no Close; no goroutine was started
	}, nil
}

func openGoRedisCacheHit(_ context.Context, keys int) (*hitSession, error) {
	c := gocache.New(&gocache.Options{LocalCache: gocache.NewTinyLFU(10*keys, time.Hour)})
	loads := new(atomic.Int64)
	ks := make([]string, keys)
	do := make([]func(*gocache.Item) (any, error), keys)
	for i := range ks {
		ks[i] = hitKey(i)
		do[i] = func(*gocache.Item) (any, error) {
			loads.Add(1)
			return &user{ID: i, Name: "name"}, nil
		}
	}
	return &hitSession{
		call: func(ctx context.Context, i int) error {
			var u user
			if err := c.Once(&gocache.Item{Ctx: ctx, Key: ks[i], Value: &u, Do: do[i]}); err != nil {
				return err
			}
			return checkUser(&u, i)
		},
		loads: loads,
		close: func() error { return nil },
	}, nil
}

// hitBatches is how many slices each contender's calls of a round are
// cut into. The contenders take turns slice by slice, so that a change of
// the machine's load within the round hits all of them alike.
const hitBatches = 20

// hitRun is one contender's session in a round and what it measured.
type hitRun struct {
	name    string
	s       *hitSession
	next    int // the key of the next call
	calls   int
	elapsed time.Duration
	mallocs uint64
	failed  int
	first   error
}

// hitRound opens every contender, warms every key, then times cfg.hitOps
// calls per contender on one goroutine, in hitBatches slices taken in turn
// (in an order rotated by k and by the slice), and records ns/op,
// allocs/op, misses and, for cachekit-memo, the difference to
// cachekit-cache-get in the same round.
func hitRound(ctx context.Context, cfg config, res *results, k int) (problems []string) {
	w := hitWorkload()
	var runs []*hitRun
	defer func() {
		for _, r := range runs {
			if err := r.s.close(); err != nil {
				problems = append(problems, fmt.Sprintf("%s %s: close: %v", w, r.name, err))
			}
		}
	}()
	for _, name := range rotate(hitNames(), cfg.contenders, k) {
		hc := hitContenders[indexOf(hitNames(), name)]
		s, err := openHit(ctx, cfg, hc)
		if err != nil {
			res.note(cell{kind: wHit, workload: w, contender: name}, err.Error())
			problems = append(problems, fmt.Sprintf("%s %s: %v", w, name, err))
			continue
		}
		runs = append(runs, &hitRun{name: name, s: s})
	}
	if len(runs) == 0 {
		return problems
	}
	runtime.GC()
	loads := make([]int64, len(runs))
	for i, r := range runs {
		loads[i] = r.s.loads.Load()
	}
	var m0, m1 runtime.MemStats
	for b := range hitBatches {
		n := cfg.hitOps / hitBatches
		if b < cfg.hitOps%hitBatches {
			n++
		}
		for i := range runs {
			r := runs[(i+b)%len(runs)]
			runtime.ReadMemStats(&m0)
			r.elapsed += r.batch(ctx, cfg.hitKeys, n)
			runtime.ReadMemStats(&m1)
			r.mallocs += m1.Mallocs - m0.Mallocs
			r.calls += n
		}
	}
	nsPerOp := map[string]float64{}
	for i, r := range runs {
		c := cell{kind: wHit, workload: w, contender: r.name}
		if r.failed > 0 {
			err := fmt.Errorf("%d of %d calls failed: %w", r.failed, r.calls, r.first)
			res.note(c, err.Error())
			problems = append(problems, fmt.Sprintf("%s %s: %v", w, r.name, err))
			continue
		}
		f := figures{
			"time":   float64(r.elapsed.Nanoseconds()) / float64(r.calls),
			"allocs": float64(r.mallocs) / float64(r.calls),
			"misses": float64(r.s.loads.Load() - loads[i]),
		}
		nsPerOp[r.name] = f["time"]
		res.add(c, f)
		logf(cfg, "%s %-26s %8.1f ns/op %6.2f allocs/op", w, r.name, f["time"], f["allocs"])
	}
	// The overhead is paired within the round: both ran under the same load.
	if m, ok := nsPerOp["cachekit-memo"]; ok {
		if g, ok := nsPerOp["cachekit-cache-get"]; ok {
			rs := res.rounds[cell{kind: wHit, workload: w, contender: "cachekit-memo"}]
			rs[len(rs)-1]["overhead"] = m - g
		}
	}
	return problems
}

// openHit opens a contender and reads every key twice (untimed): every
// key present and, for TinyLFU, admitted.
func openHit(ctx context.Context, cfg config, hc hitContender) (*hitSession, error) {
	s, err := hc.open(ctx, cfg.hitKeys)
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	for range 2 {
		for i := range cfg.hitKeys {
			if err := s.call(ctx, i); err != nil {
				return nil, errors.Join(fmt.Errorf("warm-up: %w", err), s.close())
			}
		}
	}
	return s, nil
}

// batch times n calls, cycling through the keys, and counts the failures.
func (r *hitRun) batch(ctx context.Context, keys, n int) time.Duration {
	i := r.next
	t0 := time.Now()
	for range n {
		if err := r.s.call(ctx, i); err != nil {
			if r.failed++; r.first == nil {
				r.first = err
			}
		}
		if i++; i == keys {
			i = 0
		}
	}
	el := time.Since(t0)
	r.next = i
	return el
}

// indexOf is slices.Index that panics on a missing name (a bug).
func indexOf(names []string, name string) int {
	for i, n := range names {
		if n == name {
			return i
		}
	}
	panic("no contender " + name)
}
