// Command network benchmarks cachekit's network stores side by side with the
// Redis clients and caches Go programs use instead, against one Redis server
// on 127.0.0.1: our redis store against raw rueidis, raw go-redis and
// go-redis/cache, and our tiered store (an L1 over the redis store, kept
// coherent by Redis client tracking) against go-redis/cache with its TinyLFU
// local cache. See bench/README.md; `make bench-network` runs it with a
// private server.
//
// Every op is timed on its own. The workloads (get, get-many of 10 keys, set;
// 100-byte values over a prefilled key space) run at 1, 2 and 32 goroutines;
// contenders are interleaved phase by phase in an order that rotates, and
// each figure is the median over rounds. A second measurement times the
// cross-process invalidation: a worker process (this program re-run with a
// hidden first argument) holds a tiered store, or a Subscribe callback, on a
// prefix that this process writes to, and reports when each invalidation
// arrived.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cachekit/cachekit/bench/internal/report"
)

type config struct {
	rounds       int
	ops          int
	keys         int
	size         int
	batch        int
	concs        []int
	invalWrites  int
	invalSpacing time.Duration
	seed         uint64
	out          string
	contenders   []string // nil: all
	verbose      bool
	addr         string
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == workerArg {
		if err := workerMain(os.Args[2:]); err != nil {
			fmt.Fprintf(os.Stderr, "bench/network worker: %v\n", err)
			os.Exit(1)
		}
		return
	}
	cfg, err := parseFlags(flag.CommandLine, os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench/network: %v\n", err)
		os.Exit(2)
	}
	cfg.addr = os.Getenv("CACHEKIT_REDIS_ADDR")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintf(os.Stderr, "bench/network: %v\n", err)
		os.Exit(1)
	}
}

// parseFlags reads the command line into a config, applying -quick's
// defaults to the flags it leaves unset, and checks the values.
func parseFlags(fs *flag.FlagSet, args []string) (config, error) {
	var cfg config
	quick := fs.Bool("quick", false, "short run: -rounds 2 -ops 3000 -inval-writes 500 unless those are given")
	fs.IntVar(&cfg.rounds, "rounds", 5, "rounds; each figure is the median over rounds")
	fs.IntVar(&cfg.ops, "ops", 20000, "timed ops per workload, concurrency, contender and round (all goroutines together)")
	fs.IntVar(&cfg.keys, "keys", 10000, "prefilled keys per contender")
	fs.IntVar(&cfg.size, "size", 100, "value size in bytes")
	fs.IntVar(&cfg.batch, "batch", 10, "keys per get-many call")
	concs := fs.String("conc", "1,2,32", "comma-separated goroutine counts")
	fs.IntVar(&cfg.invalWrites, "inval-writes", 2000, "invalidation-delay writes per mode, over all rounds (0: skip)")
	fs.DurationVar(&cfg.invalSpacing, "inval-spacing", time.Millisecond, "time between the starts of two invalidation-delay writes")
	fs.Uint64Var(&cfg.seed, "seed", 1, "seed of the key orders")
	fs.StringVar(&cfg.out, "out", "results/network.json", "JSON results file (empty: none)")
	names := fs.String("contenders", "", "comma-separated contenders to run (default: all): "+strings.Join(contenderNames(), ","))
	fs.BoolVar(&cfg.verbose, "v", false, "print every phase on stderr, with its mean and max")
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
		if !set["ops"] {
			cfg.ops = 3000
		}
		if !set["inval-writes"] {
			cfg.invalWrites = 500
		}
	}
	var err error
	if cfg.concs, err = parseConcs(*concs); err != nil {
		return cfg, fmt.Errorf("-conc: %w", err)
	}
	if *names != "" {
		for n := range strings.SplitSeq(*names, ",") {
			if _, ok := findContender(n); !ok {
				return cfg, fmt.Errorf("-contenders: no contender %q (have %s)", n, strings.Join(contenderNames(), ", "))
			}
			cfg.contenders = append(cfg.contenders, n)
		}
	}
	switch {
	case cfg.rounds < 1 || cfg.ops < 1 || cfg.keys < 1 || cfg.size < 1:
		return cfg, fmt.Errorf("-rounds, -ops, -keys and -size must be positive")
	case cfg.batch < 1 || cfg.batch > cfg.keys:
		return cfg, fmt.Errorf("-batch must be between 1 and -keys")
	case cfg.invalWrites < 0 || cfg.invalSpacing < 0:
		return cfg, fmt.Errorf("-inval-writes and -inval-spacing must not be negative")
	}
	return cfg, nil
}

// parseConcs parses "1,2,32" into distinct positive goroutine counts, in
// the order given.
func parseConcs(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive goroutine count", f)
		}
		if slices.Contains(out, n) {
			return nil, fmt.Errorf("%d given twice", n)
		}
		out = append(out, n)
	}
	return out, nil
}

func concLabel(n int) string { return fmt.Sprintf("%dg", n) }

func run(ctx context.Context, cfg config) (err error) {
	start := time.Now()
	if err := report.Loopback("CACHEKIT_REDIS_ADDR", cfg.addr); err != nil {
		return err
	}
	adm, err := newAdmin(cfg.addr)
	if err != nil {
		return err
	}
	defer adm.close()
	version, err := adm.version(ctx)
	if err != nil {
		return err
	}

	fmt.Printf("bench/network  %s  %s %s/%s GOMAXPROCS=%d  load %s\n", start.Format(time.RFC3339),
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), report.LoadAvg())
	fmt.Printf("redis %s at %s; rounds %d, %d timed ops per phase, %d keys of %d B per contender, get-many of %d keys, goroutines %v\n",
		version, cfg.addr, cfg.rounds, cfg.ops, cfg.keys, cfg.size, cfg.batch, cfg.concs)

	var failures []string
	var active []*session
	defer func() {
		// Untimed cleanup: the keys every contender wrote, then the clients.
		for _, s := range active {
			if perr := adm.purge(context.WithoutCancel(ctx), s.keys); perr != nil {
				err = errors.Join(err, fmt.Errorf("%s: delete keys: %w", s.c.name, perr))
			}
			if cerr := s.cl.close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("%s: close: %w", s.c.name, cerr))
			}
		}
	}()
	val := newValue(cfg.size)
	for _, c := range contenders {
		if cfg.contenders != nil && !slices.Contains(cfg.contenders, c.name) {
			continue
		}
		prefix := fmt.Sprintf("ckbn.%d.%s:", os.Getpid(), c.name)
		cl, err := c.open(ctx, cfg.addr, prefix, cfg.keys)
		if err != nil {
			fmt.Printf("  %-21s SKIPPED: %v\n", c.name, err)
			failures = append(failures, fmt.Sprintf("%s skipped: %v", c.name, err))
			continue
		}
		s := &session{c: c, cl: cl, keys: make([]string, cfg.keys), args: make([]string, cfg.keys)}
		for i := range s.keys {
			s.keys[i] = prefix + keyName(i)
			s.args[i] = s.keys[i]
			if c.storePrefixes {
				s.args[i] = keyName(i)
			}
		}
		active = append(active, s)
		fmt.Printf("  %-21s %s\n", c.name, c.about)
	}
	if len(active) == 0 {
		return fmt.Errorf("no contender can run")
	}
	// Untimed fill, through one client for all: every contender reads plain
	// bytes under its keys. Then a burst of concurrent gets on every client:
	// connections open, and rueidis leaves the sync mode it starts in for
	// good (as in any server that ever sees two concurrent calls), so that
	// round 1 measures what the other rounds do.
	for _, s := range active {
		if err := adm.fill(ctx, s.keys, val); err != nil {
			return fmt.Errorf("%s: fill: %w", s.c.name, err)
		}
		if err := burst(ctx, s.cl, s.args); err != nil {
			return fmt.Errorf("%s: first gets: %w", s.c.name, err)
		}
	}

	var inv *invalidation
	if cfg.invalWrites > 0 {
		inv, err = startInvalidation(ctx, cfg, adm, active)
		if err != nil {
			failures = append(failures, fmt.Sprintf("invalidation delay: %v", err))
		} else {
			defer func() { err = errors.Join(err, inv.stop(context.WithoutCancel(ctx))) }()
		}
	}

	res := newResults()
	for r := range cfg.rounds {
		t0 := time.Now()
		pi := 0
		for ci, conc := range cfg.concs {
			for wi, w := range workloads {
				rng := mrand.New(mrand.NewPCG(cfg.seed, uint64((r*len(cfg.concs)+ci)*len(workloads)+wi)))
				p := plan(rng, w, conc, cfg.keys, cfg.ops, cfg.batch)
				for k := range active {
					s := active[(k+r+pi)%len(active)]
					if s.failed || (w == wGetMany && s.c.noGetMany != "") {
						continue
					}
					if err := runPhase(ctx, cfg, res, s, p, val); err != nil {
						failures = append(failures, fmt.Sprintf("%s: %s/%s: %v; dropped from the rest of the run",
							s.c.name, w, concLabel(conc), err))
						s.failed = true
					}
					if err := ctx.Err(); err != nil {
						return err
					}
				}
				pi++
			}
		}
		if inv != nil {
			n := cfg.invalWrites / cfg.rounds
			if r < cfg.invalWrites%cfg.rounds {
				n++
			}
			failures = append(failures, inv.round(ctx, r, n, val)...)
		}
		fmt.Fprintf(os.Stderr, "round %d/%d  %5.1fs  (total %s)\n", r+1, cfg.rounds, time.Since(t0).Seconds(),
			time.Since(start).Round(time.Second))
		if err := ctx.Err(); err != nil {
			return err
		}
	}

	rows := res.rows(cfg.concs)
	var invRows []invRow
	if inv != nil {
		invRows = inv.rows()
	}
	fmt.Println()
	if err := writeTable(os.Stdout, rows); err != nil {
		return err
	}
	fmt.Print(footnote(rows))
	fmt.Printf("median over %d rounds of each figure; median and p99 per op (µs; a get-many op is one call of %d keys);\n"+
		"ops/s = ops / wall time of the phase, all goroutines together. With more goroutines than GOMAXPROCS (%d),\n"+
		"an op's latency includes waiting for a core: compare ops/s there.\n", cfg.rounds, cfg.batch, runtime.GOMAXPROCS(0))
	if len(invRows) > 0 {
		fmt.Println()
		if err := writeInvTable(os.Stdout, invRows, cfg); err != nil {
			return err
		}
	}
	fmt.Println()
	fmt.Print(formatTargets(evaluateTargets(rows, invRows, cfg.concs)))
	fmt.Printf("elapsed %s, load %s\n", time.Since(start).Round(time.Second), report.LoadAvg())
	var jr []report.Row
	if cfg.out != "" {
		jr = jsonRows(rows, invRows, cfg.size)
	}
	return report.Finish(cfg.out, jr, failures)
}

// session is one contender opened for the run.
type session struct {
	c      contender
	cl     client
	keys   []string // server keys, prefix included
	args   []string // what the harness passes: keys, or keys without the prefix the store adds
	failed bool     // an error dropped it from the rest of the run
}
