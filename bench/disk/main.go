// Command disk benchmarks cachekit's disk store side by side with its peers
// on this machine: Python DiskCache (Debian's python3-diskcache), Redis and
// Memcached on 127.0.0.1. See bench/README.md; `make bench-disk` runs it with
// the servers started.
//
// Every op is timed on its own. Workloads run per value size (100 B, 10 KiB)
// over a key space prefilled where needed, at three concurrencies (1 and 2
// goroutines in one process, 2 processes), plus DiskCache's own 90/9/1 mix
// over 100 keys. Contenders are interleaved phase by phase, in an order that
// rotates, and each figure is the median over rounds.
package main

import (
	"cmp"
	"context"
	_ "embed"
	"flag"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cachekit/cachekit/bench/internal/report"
)

//go:embed diskcache_bench.py
var pyScript []byte

type config struct {
	quick       bool
	rounds      int
	ops         int
	keys        int
	seed        uint64
	out         string
	python      string
	contenders  string
	memlimit    int
	verbose     bool
	sizes       []int
	concurrency []conc
}

func main() {
	var cfg config
	flag.BoolVar(&cfg.quick, "quick", false, "short run: -rounds 2 -ops 1000 unless those are given")
	flag.IntVar(&cfg.rounds, "rounds", 5, "rounds; each figure is the median over rounds")
	flag.IntVar(&cfg.ops, "ops", 5000, "timed ops per workload and round (all threads together; at most -keys)")
	flag.IntVar(&cfg.keys, "keys", 20000, "key space of the get/set/delete workloads")
	flag.Uint64Var(&cfg.seed, "seed", 1, "seed of the key orders and of the mix")
	flag.StringVar(&cfg.out, "out", "results/disk.json", "JSON results file (empty: none)")
	flag.StringVar(&cfg.python, "python", defaultPython(), "Python interpreter that can import diskcache")
	flag.StringVar(&cfg.contenders, "contenders", "", "comma-separated contenders to run (default: all)")
	flag.IntVar(&cfg.memlimit, "memcached-memlimit", 0,
		"if positive, raise the memcached server's memory limit to this many MiB (cache_memlimit) first;\n"+
			"for a private server only (make bench-disk passes 1024: 20k values of 10 KiB do not fit in its 64 MiB)")
	flag.BoolVar(&cfg.verbose, "v", false, "print the time of every phase on stderr")
	worker := flag.String("worker", "", "internal: run as a worker process for this Go contender")
	workerDir := flag.String("worker-dir", "", "internal: the worker's store directory")
	workerPrefix := flag.String("worker-prefix", "", "internal: the worker's key prefix")
	flag.Parse()

	if *worker != "" {
		if err := workerMain(*worker, *workerDir, *workerPrefix, cfg.python); err != nil {
			fmt.Fprintf(os.Stderr, "bench/disk worker %s: %v\n", *worker, err)
			os.Exit(1)
		}
		return
	}
	if cfg.quick {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["rounds"] {
			cfg.rounds = 2
		}
		if !set["ops"] {
			cfg.ops = 1000
		}
	}
	cfg.sizes = []int{100, 10 << 10}
	cfg.concurrency = concs

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintf(os.Stderr, "bench/disk: %v\n", err)
		os.Exit(1)
	}
}

// defaultPython is Debian's interpreter, the one python3-diskcache installs
// for, when it exists: a python3 found first on PATH (pyenv, venv) does not
// see Debian's dist-packages.
func defaultPython() string {
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		return "/usr/bin/python3"
	}
	return "python3"
}

func run(ctx context.Context, cfg config) error {
	if cfg.rounds < 1 || cfg.ops < 1 || cfg.keys < 1 {
		return fmt.Errorf("-rounds, -ops and -keys must be positive")
	}
	start := time.Now()
	e := envFromOS(cfg.python)
	e.memcachedMemlimit = cfg.memlimit
	script, err := os.CreateTemp("", "diskcache_bench-*.py")
	if err != nil {
		return err
	}
	defer os.Remove(script.Name())
	if _, err := script.Write(pyScript); err != nil {
		return err
	}
	if err := script.Close(); err != nil {
		return err
	}
	e.script = script.Name()

	fmt.Printf("bench/disk  %s  %s %s/%s GOMAXPROCS=%d  load %s\n", start.Format(time.RFC3339),
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), report.LoadAvg())
	fmt.Printf("rounds %d, %d timed ops per workload and round, %d keys (mix: %d keys), value sizes %v B\n",
		cfg.rounds, min(cfg.ops, cfg.keys), cfg.keys, mixKeys, cfg.sizes)

	var want []string
	if cfg.contenders != "" {
		want = strings.Split(cfg.contenders, ",")
		for _, name := range want {
			if _, ok := findContender(name); !ok {
				return fmt.Errorf("-contenders: no contender %q", name)
			}
		}
	}
	var active []contender
	var failures []string
	for _, c := range contenders {
		if want != nil && !slices.Contains(want, c.name) {
			continue
		}
		info, err := c.check(ctx, e)
		if err != nil {
			fmt.Printf("  %-14s SKIPPED: %v\n", c.name, err)
			failures = append(failures, fmt.Sprintf("%s skipped: %v", c.name, err))
			continue
		}
		fmt.Printf("  %-14s %s\n", c.name, info)
		active = append(active, c)
	}
	if len(active) == 0 {
		return fmt.Errorf("no contender can run")
	}

	var groups []group
	for _, cc := range cfg.concurrency {
		for _, size := range cfg.sizes {
			groups = append(groups, group{size: size, conc: cc})
		}
		groups = append(groups, group{size: 100, mix: true, conc: cc})
	}

	res := newResults()
	seq := 0
	for r := range cfg.rounds {
		for gi, g := range groups {
			t0 := time.Now()
			rng := mrand.New(mrand.NewPCG(cfg.seed, uint64(r*len(groups)+gi)))
			fails := runGroup(ctx, cfg, res, active, e, g, g.plan(rng, cfg.keys, cfg.ops), r+gi, &seq)
			failures = append(failures, fails...)
			label := sizeLabel(g.size)
			if g.mix {
				label = wMix
			}
			fmt.Fprintf(os.Stderr, "round %d/%d  %-10s %-6s %5.1fs  (total %s)\n", r+1, cfg.rounds, label,
				g.conc.name, time.Since(t0).Seconds(), time.Since(start).Round(time.Second))
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}

	rows := res.rows()
	fmt.Println()
	if err := writeTable(os.Stdout, rows); err != nil {
		return err
	}
	fmt.Print("\n" + footnote(rows))
	fmt.Printf("median over %d rounds of each figure; p99 and median per op (µs); ops/s = ops / wall time of the phase\n", cfg.rounds)
	fmt.Printf("elapsed %s, load %s\n", time.Since(start).Round(time.Second), report.LoadAvg())
	if cfg.out != "" {
		if err := writeJSON(cfg.out, rows); err != nil {
			return err
		}
		fmt.Printf("wrote %s (%d rows)\n", cfg.out, 3*len(rows))
	}
	if len(failures) > 0 {
		fmt.Println("\nproblems:")
		for _, f := range failures {
			fmt.Println("  " + f)
		}
		return fmt.Errorf("%d problems (see above)", len(failures))
	}
	return nil
}

// runGroup opens every contender on a fresh store for g, runs the phases with
// the contenders interleaved (the order rotates by rot plus the phase's
// index), records the timed phases and closes the stores. It returns what
// went wrong; a contender that fails drops out of the rest of the group.
func runGroup(ctx context.Context, cfg config, res *results, active []contender, e env, g group, reqs []request, rot int, seq *int) (failures []string) {
	sessions := make([]session, len(active))
	defer func() {
		for i, s := range sessions {
			if s != nil {
				if err := s.close(); err != nil {
					failures = append(failures, fmt.Sprintf("%s: close: %v", active[i].name, err))
				}
			}
		}
	}()
	for i, c := range active {
		*seq++
		s, err := openSession(ctx, c, e, g.conc, fmt.Sprintf("ckb%d.%d-", os.Getpid(), *seq))
		if err != nil {
			failures = append(failures, err.Error())
			continue
		}
		sessions[i] = s
	}
	type outcome struct {
		smp sample
		err error
	}
	for pi, req := range reqs {
		if ctx.Err() != nil {
			return failures
		}
		var order []int
		for k := range active {
			i := (k + rot + pi) % len(active)
			if sessions[i] != nil && (req.Op != opPurge || active[i].purge) {
				order = append(order, i)
			}
		}
		out := make([]outcome, len(active))
		runOne := func(i int) {
			t0 := time.Now()
			smp, err := sessions[i].run(ctx, req)
			if cfg.verbose {
				fmt.Fprintf(os.Stderr, "  %-14s %-13s %-5s %-3s %6.2fs %s\n", active[i].name, cmp.Or(req.Workload, req.Op),
					sizeLabel(g.size), g.conc.name, time.Since(t0).Seconds(), describe(smp))
			}
			if err == nil && !req.Record && smp.Errors > 0 {
				err = fmt.Errorf("%d errors, first: %s", smp.Errors, smp.FirstError)
			}
			out[i] = outcome{smp, err}
		}
		if req.Record {
			// Timed: one contender at a time.
			for _, i := range order {
				runOne(i)
			}
		} else {
			// Untimed fill and purge: all contenders at once, to save time.
			var wg sync.WaitGroup
			for _, i := range order {
				wg.Go(func() { runOne(i) })
			}
			wg.Wait()
		}
		for _, i := range order {
			c, o := active[i], out[i]
			if o.err != nil {
				failures = append(failures, fmt.Sprintf("%s: %s %s/%s: %v", c.name, cmp.Or(req.Workload, req.Op),
					sizeLabel(g.size), g.conc.name, o.err))
				_ = sessions[i].close()
				sessions[i] = nil
				continue
			}
			if req.Record {
				res.add(cell{req.Workload, g.size, g.conc.name, c.name}, o.smp)
			}
		}
	}
	return failures
}
