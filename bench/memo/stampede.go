package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	gocache "github.com/go-redis/cache/v9"
	"github.com/viccon/sturdyc"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/memo"
	"github.com/cachekit/cachekit/memory"
)

// loadFunc is the cached function of the stampede workload: it counts its
// calls and takes cfg.compute.
type loadFunc func(ctx context.Context, key string) (*user, error)

// stampedeSession is one contender ready for one stampede.
type stampedeSession struct {
	call  func(ctx context.Context, key string) (*user, error)
	close func() error
}

type stampedeContender struct {
	name  string
	about string
	open  func(load loadFunc) (*stampedeSession, error)
}

// stampedeContenders is the stampede workload's table, in report order.
// Each round opens every contender afresh.
var stampedeContenders = []stampedeContender{
	{
		name:  "cachekit-memo",
		about: "memo.Func[string, *user].Call, Options{TTL: 1m} (coalescing is the default), memory store",
		open:  openMemoStampede,
	},
	{
		name:  "sturdyc",
		about: "sturdyc GetOrFetch (its in-flight map), 8 shards, TTL 1h, WithNoContinuousEvictions",
		open:  openSturdycStampede,
	},
	{
		name:  "go-redis-cache-once-local",
		about: "go-redis/cache Once (x/sync singleflight) with NewTinyLFU(1000, 1h), no Redis",
		open:  openGoRedisCacheStampede,
	},
}

func stampedeNames() []string {
	out := make([]string, len(stampedeContenders))
	for i, c := range stampedeContenders {
		out[i] = c.name
	}
	return out
}

func stampedeWorkload(cfg config) string { return fmt.Sprintf("stampede/%dg/memory", cfg.callers) }

func openMemoStampede(load loadFunc) (*stampedeSession, error) {
	st, err := memory.NewStore(memory.StoreOptions{})
	if err != nil {
		return nil, err
	}
	c, err := cachekit.New[*user](st, cachekit.Options{})
	if err != nil {
		return nil, errors.Join(err, st.Close())
	}
	f, err := memo.New(c, "stampede.get", func(ctx context.Context, key string) (*user, error) {
		return load(ctx, key)
	}, memo.Options{TTL: time.Minute})
	if err != nil {
		return nil, errors.Join(err, c.Close())
	}
	return &stampedeSession{call: f.Call, close: func() error { return errors.Join(f.Close(), c.Close()) }}, nil
}

func openSturdycStampede(load loadFunc) (*stampedeSession, error) {
	c := sturdyc.New[*user](1<<16, sturdycShards, time.Hour, 10, sturdyc.WithNoContinuousEvictions())
	return &stampedeSession{
		call: func(ctx context.Context, key string) (*user, error) {
			return c.GetOrFetch(ctx, key, func(ctx context.Context) (*user, error) { return load(ctx, key) })
		},
		close: func() error { return nil },
	}, nil
}

func openGoRedisCacheStampede(load loadFunc) (*stampedeSession, error) {
	c := gocache.New(&gocache.Options{LocalCache: gocache.NewTinyLFU(1000, time.Hour)})
	return &stampedeSession{
		call: func(ctx context.Context, key string) (*user, error) {
			var u user
			err := c.Once(&gocache.Item{Ctx: ctx, Key: key, Value: &u, Do: func(it *gocache.Item) (any, error) {
				return load(it.Context(), key)
			}})
			if err != nil {
				return nil, err
			}
			return &u, nil
		},
		close: func() error { return nil },
	}, nil
}

// stampedeRound runs one cold-key stampede per contender, in an order
// rotated by k, on a key new to the round r.
func stampedeRound(ctx context.Context, cfg config, res *results, r, k int) (problems []string) {
	w := stampedeWorkload(cfg)
	for _, name := range rotate(stampedeNames(), cfg.contenders, k) {
		sc := stampedeContenders[indexOf(stampedeNames(), name)]
		c := cell{kind: wStampede, workload: w, contender: name}
		f, firstErr, err := stampede(ctx, cfg, sc, fmt.Sprintf("cold-key-r%d", r))
		if err != nil {
			res.note(c, err.Error())
			problems = append(problems, fmt.Sprintf("%s %s: %v", w, name, err))
			continue
		}
		if firstErr != "" {
			res.note(c, "first error: "+firstErr)
			problems = append(problems, fmt.Sprintf("%s %s: %v callers failed: %s", w, name, f["errors"], firstErr))
		}
		res.add(c, f)
		logf(cfg, "%s %-26s computations %v, all served in %.2f ms", w, name, f["computations"], f["all-served"])
	}
	return problems
}

// stampede releases cfg.callers goroutines, parked beforehand, on one cold
// key at once, and reports how often the function ran, when the last caller
// had its value (after the release), how many distinct values the callers
// got and how many failed (with the first error).
func stampede(ctx context.Context, cfg config, sc stampedeContender, key string) (f figures, firstErr string, err error) {
	var comps atomic.Int64
	load := func(ctx context.Context, key string) (*user, error) {
		n := comps.Add(1)
		t := time.NewTimer(cfg.compute)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return &user{ID: int(n), Name: key}, nil
	}
	s, err := sc.open(load)
	if err != nil {
		return nil, "", fmt.Errorf("open: %w", err)
	}
	defer func() { err = errors.Join(err, s.close()) }()

	n := cfg.callers
	ids := make([]int, n)
	errs := make([]error, n)
	ends := make([]time.Duration, n)
	start := make(chan struct{})
	var t0 time.Time // written before close(start), read after it
	var ready, done sync.WaitGroup
	ready.Add(n)
	done.Add(n)
	for i := range n {
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			u, err := s.call(ctx, key)
			ends[i] = time.Since(t0)
			if err == nil && u == nil {
				err = errWrongValue
			}
			if errs[i] = err; err == nil {
				ids[i] = u.ID
			}
		}()
	}
	ready.Wait()
	time.Sleep(10 * time.Millisecond) // every goroutine parked on start
	t0 = time.Now()
	close(start)
	done.Wait()
	f, firstErr = summarizeCallers(ids, errs, ends, comps.Load())
	return f, firstErr, nil
}

// summarizeCallers turns what each caller got (the id of its value, its
// error, when it returned after the release) into the stampede figures.
func summarizeCallers(ids []int, errs []error, ends []time.Duration, computations int64) (figures, string) {
	var last time.Duration
	values := map[int]bool{}
	failed := 0
	first := ""
	for i := range ids {
		last = max(last, ends[i])
		if errs[i] != nil {
			if failed++; first == "" {
				first = errs[i].Error()
			}
			continue
		}
		values[ids[i]] = true
	}
	return figures{
		"computations": float64(computations),
		"all-served":   ms(last),
		"values":       float64(len(values)),
		"errors":       float64(failed),
	}, first
}
