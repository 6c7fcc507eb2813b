package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	gocache "github.com/go-redis/cache/v9"
	goredis "github.com/redis/go-redis/v9"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/bench/internal/report"
	workerproc "github.com/cachekit/cachekit/bench/internal/worker"
	"github.com/cachekit/cachekit/disk"
	"github.com/cachekit/cachekit/memo"
	"github.com/cachekit/cachekit/redis"
)

// The cross-process stampede: this process (the parent) starts cfg.procs
// workers per store (this program re-run with workerArg first), which open
// the same disk directory or the same Redis prefix and keep it for the whole
// run. For each round and contender the parent sends every worker
//
//	{"cmd":"run","contender":C,"arg":"r3","at_ns":T,"callers":G}
//
// Each worker parks G goroutines, sleeps until the wall-clock time T (the
// same host: one clock), releases them on the cold argument, and replies
// when all of them have a value:
//
//	{"computations":N,"start_ns":S,"last_ns":L,"values":{"v":n},"errors":E,"lease_waits":W}
//
// N counts the calls of the function in that worker; the parent sums them.
// A worker first replies {"ready":true} (or {"error":...}), and exits 0 on
// {"cmd":"close"} or end of input.

// workerArg, as the first argument, runs this program as a stampede
// worker. It is not a flag of the command line, so -help does not list it.
const workerArg = "-stampede-worker"

// Stores of the cross-process stampede.
const (
	storeDisk  = "disk"
	storeRedis = "redis"
)

// releaseMargin is how far ahead of the run message the release time is
// set, so that every worker has its goroutines parked before it.
const releaseMargin = 150 * time.Millisecond

// workerTimeout bounds one reply of a worker.
const workerTimeout = time.Minute

type procContender struct {
	name   string
	about  string
	stores []string
}

// processContenders is the cross-process workload's table, in report
// order.
var processContenders = []procContender{
	{
		name: "cachekit-memo-lease",
		about: "memo.Func[string, string], Options{Lease: true, LeaseTTL: 10s, TTL: 1m}: one process computes under the store's lease," +
			" the others wait, woken by the store's Notifier",
		stores: []string{storeDisk, storeRedis},
	},
	{
		name:   "cachekit-memo",
		about:  "memo.Func[string, string], Options{TTL: 1m}: coalescing inside each process only (no lease)",
		stores: []string{storeDisk, storeRedis},
	},
	{
		name:   "go-redis-cache-once",
		about:  "go-redis/cache Once over a default go-redis client, no LocalCache, TTL 1m: singleflight inside each process only",
		stores: []string{storeRedis},
	},
}

func processNames() []string {
	out := make([]string, len(processContenders))
	for i, c := range processContenders {
		out[i] = c.name
	}
	return out
}

func processWorkload(cfg config, store string) string {
	return fmt.Sprintf("stampede-%dp/%dg/%s", cfg.procs, cfg.procCallers, store)
}

// procMsg is any message of the protocol, in either direction.
type procMsg struct {
	Cmd        string         `json:"cmd,omitempty"`
	Contender  string         `json:"contender,omitempty"`
	Arg        string         `json:"arg,omitempty"`
	AtNs       int64          `json:"at_ns,omitempty"`
	Callers    int            `json:"callers,omitempty"`
	Ready      bool           `json:"ready,omitempty"`
	Error      string         `json:"error,omitempty"`
	Comps      int64          `json:"computations,omitempty"`
	StartNs    int64          `json:"start_ns,omitempty"`
	LastNs     int64          `json:"last_ns,omitempty"`
	Values     map[string]int `json:"values,omitempty"`
	Errors     int            `json:"errors,omitempty"`
	FirstError string         `json:"first_error,omitempty"`
	LeaseWaits int64          `json:"lease_waits,omitempty"`
}

// workerSet is the workers of one store.
type workerSet struct {
	store   string
	workers []*workerProc
	cleanup func(context.Context) error
	failed  bool
}

// processBench runs the cross-process workload between the others.
type processBench struct {
	cfg  config
	sets []*workerSet
}

// wanted lists the selected contenders that run on store.
func (p *processBench) wanted(store string) []string {
	var out []string
	for _, c := range processContenders {
		if slices.Contains(c.stores, store) && (p.cfg.contenders == nil || slices.Contains(p.cfg.contenders, c.name)) {
			out = append(out, c.name)
		}
	}
	return out
}

// startProcessBench starts the workers of each store that a selected
// contender runs on. A store that cannot be used is a problem, not an error.
func startProcessBench(ctx context.Context, cfg config) (*processBench, []string) {
	p := &processBench{cfg: cfg}
	var problems []string
	self, err := os.Executable()
	if err != nil {
		return p, []string{fmt.Sprintf("process: %v", err)}
	}
	common := []string{workerArg, "-compute", cfg.compute.String()}
	if len(p.wanted(storeDisk)) > 0 {
		dir, err := os.MkdirTemp("", "cachekit-bench-memo-")
		if err != nil {
			problems = append(problems, fmt.Sprintf("process/disk: %v", err))
		} else {
			s := &workerSet{store: storeDisk, cleanup: func(context.Context) error { return os.RemoveAll(dir) }}
			if err := s.start(ctx, self, cfg.procs, slices.Concat(common, []string{"-store", storeDisk, "-dir", dir})); err != nil {
				problems = append(problems, fmt.Sprintf("process/disk skipped: %v", err))
				_ = s.close(ctx)
			} else {
				p.sets = append(p.sets, s)
				fmt.Printf("  process/disk: %d workers on %s (disk.New, default Options)\n", cfg.procs, dir)
			}
		}
	}
	if len(p.wanted(storeRedis)) > 0 {
		if err := report.Loopback("CACHEKIT_REDIS_ADDR", cfg.redisAddr); err != nil {
			problems = append(problems, fmt.Sprintf("process/redis skipped: %v", err))
		} else {
			memoPrefix := fmt.Sprintf("ckbm.%d.memo:", os.Getpid())
			grcPrefix := fmt.Sprintf("ckbm.%d.grc:", os.Getpid())
			s := &workerSet{store: storeRedis, cleanup: func(ctx context.Context) error {
				return errors.Join(clearPrefix(ctx, cfg.redisAddr, memoPrefix), clearPrefix(ctx, cfg.redisAddr, grcPrefix))
			}}
			args := slices.Concat(common, []string{"-store", storeRedis, "-addr", cfg.redisAddr, "-prefix", memoPrefix, "-grc-prefix", grcPrefix})
			if err := s.start(ctx, self, cfg.procs, args); err != nil {
				problems = append(problems, fmt.Sprintf("process/redis skipped: %v", err))
				_ = s.close(ctx)
			} else {
				p.sets = append(p.sets, s)
				fmt.Printf("  process/redis: %d workers on %s, prefixes %s (memo) and %s (go-redis/cache)\n",
					cfg.procs, cfg.redisAddr, memoPrefix, grcPrefix)
			}
		}
	}
	return p, problems
}

// clearPrefix deletes every key under prefix on the server at addr.
func clearPrefix(ctx context.Context, addr, prefix string) error {
	s, err := redis.New(ctx, redis.Options{Addrs: []string{addr}, Prefix: prefix})
	if err != nil {
		return err
	}
	return errors.Join(s.Clear(ctx), s.Close())
}

func (s *workerSet) start(ctx context.Context, self string, n int, args []string) error {
	for range n {
		w, err := startWorker(ctx, self, args...)
		if err != nil {
			return err
		}
		s.workers = append(s.workers, w)
	}
	return nil
}

// close stops the workers, then removes what they stored.
func (s *workerSet) close(ctx context.Context) error {
	var errs []error
	for _, w := range s.workers {
		if err := w.Stop(procMsg{Cmd: "close"}, workerTimeout); err != nil {
			errs = append(errs, fmt.Errorf("%s worker: %w", s.store, err))
		}
	}
	s.workers = nil
	if s.cleanup != nil {
		errs = append(errs, s.cleanup(ctx))
	}
	return errors.Join(errs...)
}

func (p *processBench) close(ctx context.Context) error {
	if p == nil {
		return nil
	}
	var errs []error
	for _, s := range p.sets {
		errs = append(errs, s.close(ctx))
	}
	return errors.Join(errs...)
}

// round runs one stampede per store and contender, the stores and the
// contenders in orders rotated by k, on an argument new to round r.
func (p *processBench) round(ctx context.Context, res *results, r, k int) (problems []string) {
	if p == nil {
		return nil
	}
	for i := range p.sets {
		s := p.sets[(i+k)%len(p.sets)]
		if s.failed {
			continue
		}
		w := processWorkload(p.cfg, s.store)
		for _, name := range rotate(p.wanted(s.store), nil, k) {
			c := cell{kind: wProcess, workload: w, contender: name}
			f, firstErr, err := s.run(ctx, p.cfg, name, fmt.Sprintf("r%d", r))
			if err != nil {
				res.note(c, err.Error())
				problems = append(problems, fmt.Sprintf("%s %s: %v; no more rounds on %s", w, name, err, s.store))
				for _, wp := range s.workers {
					wp.Kill()
				}
				s.workers, s.failed = nil, true
				break
			}
			if firstErr != "" {
				res.note(c, "first error: "+firstErr)
				problems = append(problems, fmt.Sprintf("%s %s: %v callers failed: %s", w, name, f["errors"], firstErr))
			}
			res.add(c, f)
			logf(p.cfg, "%s %-26s computations %v, all served in %.2f ms, start skew %.2f ms, lease waits %v",
				w, name, f["computations"], f["all-served"], f["start-skew"], f["lease-waits"])
		}
	}
	return problems
}

// run releases every worker's callers at one instant and merges the
// replies.
func (s *workerSet) run(ctx context.Context, cfg config, contender, arg string) (figures, string, error) {
	m := procMsg{Cmd: "run", Contender: contender, Arg: arg, AtNs: time.Now().Add(releaseMargin).UnixNano(), Callers: cfg.procCallers}
	for _, w := range s.workers {
		if err := w.Send(m); err != nil {
			return nil, "", err
		}
	}
	reps := make([]procMsg, 0, len(s.workers))
	for _, w := range s.workers {
		rep, err := w.Recv(ctx, workerTimeout)
		if err != nil {
			return nil, "", err
		}
		reps = append(reps, rep)
	}
	f, first := mergeReplies(reps)
	return f, first, nil
}

// mergeReplies sums the workers' replies: computations, lease waits and
// errors add up, values are counted once over all workers, "all served"
// runs from the earliest release to the last caller's value, and the start
// skew is the spread of the releases.
func mergeReplies(reps []procMsg) (figures, string) {
	f := figures{}
	values := map[string]bool{}
	var first string
	var minStart, maxStart, last int64
	for i, rep := range reps {
		f["computations"] += float64(rep.Comps)
		f["lease-waits"] += float64(rep.LeaseWaits)
		f["errors"] += float64(rep.Errors)
		for v := range rep.Values {
			values[v] = true
		}
		if first == "" {
			first = rep.FirstError
		}
		if i == 0 || rep.StartNs < minStart {
			minStart = rep.StartNs
		}
		maxStart = max(maxStart, rep.StartNs)
		last = max(last, rep.LastNs)
	}
	f["values"] = float64(len(values))
	f["all-served"] = ms(time.Duration(last - minStart))
	f["start-skew"] = ms(time.Duration(maxStart - minStart))
	return f, first
}

// ---------------------------------------------------------------- parent side

// workerProc is the parent's handle on one worker process.
type workerProc = workerproc.Proc[procMsg]

// Failure implements workerproc.Msg.
func (m procMsg) Failure() string { return m.Error }

func startWorker(ctx context.Context, argv0 string, args ...string) (*workerProc, error) {
	w, _, err := workerproc.Start[procMsg](ctx, append([]string{argv0}, args...), workerTimeout)
	return w, err
}

// ---------------------------------------------------------------- worker side

// worker is the state of a worker process: one store, and the contenders'
// functions over it, made on first use.
type worker struct {
	cache     *cachekit.Cache[string]
	compute   time.Duration
	addr      string
	grcPrefix string
	rdb       *goredis.Client
	grc       *gocache.Cache
	funcs     map[string]func(ctx context.Context, arg string) (string, error)
	closers   []func() error
	comps     atomic.Int64 // calls of the function, every contender
	waits     atomic.Int64 // memo LeaseWait events
}

// workerMain is this program run with workerArg: see the protocol above.
func workerMain(args []string) (err error) {
	fs := flag.NewFlagSet("stampede-worker", flag.ContinueOnError)
	store := fs.String("store", "", "disk or redis")
	dir := fs.String("dir", "", "disk: the cache directory")
	addr := fs.String("addr", "", "redis: the server")
	prefix := fs.String("prefix", "", "redis: the memo store's key prefix")
	grcPrefix := fs.String("grc-prefix", "", "redis: go-redis/cache's key prefix")
	compute := fs.Duration("compute", 20*time.Millisecond, "how long the function takes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx := context.Background()
	enc := json.NewEncoder(os.Stdout)
	dec := json.NewDecoder(bufio.NewReader(os.Stdin))
	fail := func(err error) error {
		_ = enc.Encode(procMsg{Error: err.Error()})
		return err
	}

	var st cachekit.Store
	switch *store {
	case storeDisk:
		st, err = disk.New(ctx, disk.Options{Dir: *dir})
	case storeRedis:
		if err := report.Loopback("-addr", *addr); err != nil {
			return fail(err)
		}
		st, err = redis.New(ctx, redis.Options{Addrs: []string{*addr}, Prefix: *prefix})
	default:
		err = fmt.Errorf("unknown store %q", *store)
	}
	if err != nil {
		return fail(err)
	}
	c, err := cachekit.New[string](st, cachekit.Options{})
	if err != nil {
		return fail(errors.Join(err, st.Close()))
	}
	w := &worker{cache: c, compute: *compute, addr: *addr, grcPrefix: *grcPrefix, funcs: map[string]func(context.Context, string) (string, error){}}
	defer func() { err = errors.Join(err, w.close()) }()
	if err := enc.Encode(procMsg{Ready: true}); err != nil {
		return err
	}
	for {
		var m procMsg
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		switch m.Cmd {
		case "run":
			rep, err := w.run(ctx, m)
			if err != nil {
				return fail(err)
			}
			if err := enc.Encode(rep); err != nil {
				return err
			}
		case "close":
			return nil
		default:
			return fail(fmt.Errorf("unknown command %q", m.Cmd))
		}
	}
}

// fn is the cached function: it counts its calls and takes w.compute.
func (w *worker) fn(ctx context.Context, arg string) (string, error) {
	n := w.comps.Add(1)
	t := time.NewTimer(w.compute)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return fmt.Sprintf("%s by pid %d #%d", arg, os.Getpid(), n), nil
}

// caller returns the call of a contender, making it on first use.
func (w *worker) caller(name string) (func(context.Context, string) (string, error), error) {
	if f, ok := w.funcs[name]; ok {
		return f, nil
	}
	var call func(context.Context, string) (string, error)
	switch name {
	case "cachekit-memo-lease", "cachekit-memo":
		opts := memo.Options{TTL: time.Minute}
		if name == "cachekit-memo-lease" {
			opts.Lease, opts.LeaseTTL = true, 10*time.Second
			opts.Observer = memo.ObserverFunc(func(e memo.Event) {
				if e.Kind == memo.LeaseWait {
					w.waits.Add(1)
				}
			})
		}
		f, err := memo.New(w.cache, "stampede."+name, w.fn, opts)
		if err != nil {
			return nil, err
		}
		w.closers = append(w.closers, f.Close)
		call = f.Call
	case "go-redis-cache-once":
		if w.addr == "" {
			return nil, fmt.Errorf("%s needs the redis store", name)
		}
		if w.grc == nil {
			w.rdb = goredis.NewClient(&goredis.Options{Addr: w.addr})
			w.grc = gocache.New(&gocache.Options{Redis: w.rdb})
		}
		call = func(ctx context.Context, arg string) (string, error) {
			var s string
			err := w.grc.Once(&gocache.Item{Ctx: ctx, Key: w.grcPrefix + "stampede:" + arg, Value: &s, TTL: time.Minute,
				Do: func(it *gocache.Item) (any, error) { return w.fn(it.Context(), arg) }})
			return s, err
		}
	default:
		return nil, fmt.Errorf("unknown contender %q", name)
	}
	w.funcs[name] = call
	return call, nil
}

// run parks m.Callers goroutines, releases them at m.AtNs on m.Arg and
// reports what they got.
func (w *worker) run(ctx context.Context, m procMsg) (procMsg, error) {
	call, err := w.caller(m.Contender)
	if err != nil {
		return procMsg{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, workerTimeout/2)
	defer cancel()
	comps0, waits0 := w.comps.Load(), w.waits.Load()
	var (
		mu     sync.Mutex // protects values, failed, first
		values = map[string]int{}
		failed int
		first  string
		last   atomic.Int64
	)
	start := make(chan struct{})
	var ready, done sync.WaitGroup
	ready.Add(m.Callers)
	done.Add(m.Callers)
	for range m.Callers {
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			v, err := call(ctx, m.Arg)
			end := time.Now().UnixNano()
			for {
				l := last.Load()
				if end <= l || last.CompareAndSwap(l, end) {
					break
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if failed++; first == "" {
					first = err.Error()
				}
				return
			}
			values[v]++
		}()
	}
	ready.Wait()
	time.Sleep(time.Until(time.Unix(0, m.AtNs)))
	startNs := time.Now().UnixNano()
	close(start)
	done.Wait()
	return procMsg{
		Comps: w.comps.Load() - comps0, StartNs: startNs, LastNs: last.Load(), Values: values,
		Errors: failed, FirstError: first, LeaseWaits: w.waits.Load() - waits0,
	}, nil
}

func (w *worker) close() error {
	var errs []error
	for _, c := range w.closers {
		errs = append(errs, c())
	}
	if w.rdb != nil {
		errs = append(errs, w.rdb.Close())
	}
	return errors.Join(append(errs, w.cache.Close())...)
}
