// Command memo benchmarks cachekit's cached functions (package memo) side by
// side with the libraries Go programs use instead: github.com/viccon/sturdyc
// and github.com/go-redis/cache. See bench/README.md; `make bench-memo` runs
// it with a private Redis on 127.0.0.1.
//
// Four workloads, all in one run: the cost of a hit (memo's Func.Call against
// a raw cachekit.Cache.Get of the same key, sturdyc's GetOrFetch and
// go-redis/cache's Once with its local TinyLFU); a cold-key stampede of 1,000
// goroutines in one process; the same stampede from 4 processes (this program
// re-run with a hidden first argument) on one disk directory and on one Redis;
// and the recomputations and waiting callers around each expiry of a key read
// steadily. Contenders are interleaved round by round in an order that
// rotates, and every figure is the median over rounds.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/cachekit/cachekit/bench/internal/report"
)

// Workload names, in report order.
const (
	wHit      = "hit"
	wStampede = "stampede"
	wProcess  = "process"
	wExpiry   = "expiry"
)

var workloadNames = []string{wHit, wStampede, wProcess, wExpiry}

type config struct {
	rounds      int
	hitOps      int           // timed calls per hit phase
	hitKeys     int           // keys the hit phase cycles through
	callers     int           // goroutines of the in-process stampede
	compute     time.Duration // the cached function's run time (stampedes, expiry)
	procs       int           // processes of the cross-process stampede
	procCallers int           // goroutines per process
	ttl         time.Duration // expiry workload
	periods     int           // expiry: run time in TTLs
	readers     int           // expiry: reading goroutines
	readPause   time.Duration // expiry: pause after each read
	out         string
	workloads   []string
	contenders  []string // nil: all
	verbose     bool
	redisAddr   string
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == workerArg {
		if err := workerMain(os.Args[2:]); err != nil {
			fmt.Fprintf(os.Stderr, "bench/memo worker: %v\n", err)
			os.Exit(1)
		}
		return
	}
	cfg, err := parseFlags(flag.CommandLine, os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench/memo: %v\n", err)
		os.Exit(2)
	}
	cfg.redisAddr = os.Getenv("CACHEKIT_REDIS_ADDR")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintf(os.Stderr, "bench/memo: %v\n", err)
		os.Exit(1)
	}
}

// parseFlags reads the command line into a config, applying -quick's
// defaults to the flags it leaves unset, and checks the values.
func parseFlags(fs *flag.FlagSet, args []string) (config, error) {
	var cfg config
	quick := fs.Bool("quick", false, "short run: -rounds 2 -hit-ops 200000 -periods 5 unless those are given")
	fs.IntVar(&cfg.rounds, "rounds", 5, "rounds; each figure is the median over rounds")
	fs.IntVar(&cfg.hitOps, "hit-ops", 1_000_000, "hit: timed calls per contender and round")
	fs.IntVar(&cfg.hitKeys, "hit-keys", 1024, "hit: keys the calls cycle through")
	fs.IntVar(&cfg.callers, "callers", 1000, "stampede: goroutines calling the cold key at once")
	fs.DurationVar(&cfg.compute, "compute", 20*time.Millisecond, "how long the cached function takes (stampedes, expiry)")
	fs.IntVar(&cfg.procs, "procs", 4, "process: worker processes")
	fs.IntVar(&cfg.procCallers, "proc-callers", 25, "process: goroutines per worker calling the cold key")
	fs.DurationVar(&cfg.ttl, "ttl", 200*time.Millisecond, "expiry: the key's TTL")
	fs.IntVar(&cfg.periods, "periods", 10, "expiry: how many TTLs each contender is read for")
	fs.IntVar(&cfg.readers, "readers", 32, "expiry: goroutines reading the key")
	fs.DurationVar(&cfg.readPause, "read-pause", time.Millisecond, "expiry: pause of a reader after each read")
	fs.StringVar(&cfg.out, "out", "results/memo.json", "JSON results file (empty: none)")
	wl := fs.String("workloads", strings.Join(workloadNames, ","), "comma-separated workloads to run")
	names := fs.String("contenders", "", "comma-separated contenders to run (default: all): "+strings.Join(allContenders(), ","))
	fs.BoolVar(&cfg.verbose, "v", false, "print every phase on stderr")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["rounds"] {
			cfg.rounds = 2
		}
		if !set["hit-ops"] {
			cfg.hitOps = 200_000
		}
		if !set["periods"] {
			cfg.periods = 5
		}
	}
	var err error
	if cfg.workloads, err = report.ParseList(*wl, workloadNames); err != nil {
		return cfg, fmt.Errorf("-workloads: %w", err)
	}
	if *names != "" {
		if cfg.contenders, err = report.ParseList(*names, allContenders()); err != nil {
			return cfg, fmt.Errorf("-contenders: %w", err)
		}
	}
	switch {
	case cfg.rounds < 1 || cfg.hitOps < 1 || cfg.hitKeys < 1 || cfg.callers < 1:
		return cfg, errors.New("-rounds, -hit-ops, -hit-keys and -callers must be positive")
	case cfg.procs < 2 || cfg.procCallers < 1:
		return cfg, errors.New("-procs must be at least 2 and -proc-callers positive")
	case cfg.compute <= 0 || cfg.ttl <= 0 || cfg.periods < 1 || cfg.readers < 1 || cfg.readPause < 0:
		return cfg, errors.New("-compute, -ttl, -periods and -readers must be positive, -read-pause not negative")
	}
	return cfg, nil
}

// rotate returns names (filtered by want, nil: all) rotated left by k: the
// order in which a phase runs its contenders.
func rotate(names, want []string, k int) []string {
	var out []string
	for _, n := range names {
		if want == nil || slices.Contains(want, n) {
			out = append(out, n)
		}
	}
	return report.Rotate(out, k)
}

// allContenders lists every contender name of every workload, once.
func allContenders() []string {
	var out []string
	for _, list := range [][]string{hitNames(), stampedeNames(), processNames(), expiryNames()} {
		for _, n := range list {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	return out
}

func run(ctx context.Context, cfg config) (err error) {
	start := time.Now()
	fmt.Printf("bench/memo  %s  %s %s/%s GOMAXPROCS=%d  load %s\n", start.Format(time.RFC3339),
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), report.LoadAvg())
	fmt.Printf("sturdyc %s, go-redis/cache %s; rounds %d; workloads %s\n",
		report.ModVersion("github.com/viccon/sturdyc"), report.ModVersion("github.com/go-redis/cache/v9"), cfg.rounds,
		strings.Join(cfg.workloads, ","))

	for _, w := range cfg.workloads {
		fmt.Printf("%s:\n", w)
		for _, c := range abouts(w) {
			if cfg.contenders == nil || slices.Contains(cfg.contenders, c[0]) {
				fmt.Printf("  %-26s %s\n", c[0], c[1])
			}
		}
	}

	var problems []string
	res := newResults()
	has := func(w string) bool { return slices.Contains(cfg.workloads, w) }

	var procs *processBench
	if has(wProcess) {
		var perr []string
		procs, perr = startProcessBench(ctx, cfg)
		problems = append(problems, perr...)
		defer func() { err = errors.Join(err, procs.close(context.WithoutCancel(ctx))) }()
	}

	for r := range cfg.rounds {
		t0 := time.Now()
		for pi, w := range cfg.workloads {
			k := r + pi
			var p []string
			switch w {
			case wHit:
				p = hitRound(ctx, cfg, res, k)
			case wStampede:
				p = stampedeRound(ctx, cfg, res, r, k)
			case wProcess:
				p = procs.round(ctx, res, r, k)
			case wExpiry:
				p = expiryRound(ctx, cfg, res, k)
			}
			problems = append(problems, p...)
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		fmt.Fprintf(os.Stderr, "round %d/%d  %5.1fs  (total %s)\n", r+1, cfg.rounds, time.Since(t0).Seconds(),
			time.Since(start).Round(time.Second))
	}

	rows := res.rows()
	fmt.Println()
	for _, w := range cfg.workloads {
		if err := writeTable(os.Stdout, cfg, w, rows); err != nil {
			return err
		}
	}
	fmt.Print(formatTargets(evaluateTargets(cfg, rows)))
	fmt.Printf("elapsed %s, load %s\n", time.Since(start).Round(time.Second), report.LoadAvg())
	var jr []report.Row
	if cfg.out != "" {
		jr = jsonRows(rows)
	}
	return report.Finish(cfg.out, jr, dedupe(problems))
}

// abouts lists the contenders of a workload with their descriptions.
func abouts(w string) [][2]string {
	var out [][2]string
	switch w {
	case wHit:
		for _, c := range hitContenders {
			out = append(out, [2]string{c.name, c.about})
		}
	case wStampede:
		for _, c := range stampedeContenders {
			out = append(out, [2]string{c.name, c.about})
		}
	case wProcess:
		for _, c := range processContenders {
			out = append(out, [2]string{c.name, c.about})
		}
	case wExpiry:
		for _, c := range expiryContenders {
			out = append(out, [2]string{c.name, c.about})
		}
	}
	return out
}

// dedupe drops repeated lines, keeping the first of each with a count.
func dedupe(lines []string) []string {
	var out []string
	count := map[string]int{}
	for _, l := range lines {
		if count[l] == 0 {
			out = append(out, l)
		}
		count[l]++
	}
	for i, l := range out {
		if n := count[l]; n > 1 {
			out[i] = fmt.Sprintf("%s (%d times)", l, n)
		}
	}
	return out
}

// ours tells whether a contender is cachekit's.
func ours(name string) bool { return strings.HasPrefix(name, "cachekit") }

// logf prints a phase line on stderr with -v.
func logf(cfg config, format string, args ...any) {
	if cfg.verbose {
		fmt.Fprintf(os.Stderr, "  "+format+"\n", args...)
	}
}
