// Command memory benchmarks cachekit's in-process cache (memory.Cache)
// side by side with github.com/maypok86/otter/v2,
// github.com/dgraph-io/ristretto/v2, github.com/Yiling-J/theine-go and
// github.com/hashicorp/golang-lru/v2. See bench/README.md; `make
// bench-memory` runs it.
//
// Three parts, all in one run: a hit-ratio simulation (synthetic Zipf traces
// and the ARC P3 and LIRS LOOP traces, replayed single-threaded, a miss
// answered by Set, with Bélády's optimum as the upper bound) that also draws
// a chart per trace; throughput (testing.Benchmark with b.RunParallel at
// GOMAXPROCS 1 and 2, contenders interleaved round by round, median and best
// over rounds); and the live heap per entry of a cache of 1M int entries.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cachekit/cachekit/bench/internal/report"
)

// Parts of a run.
const (
	pHitRatio   = "hitratio"
	pThroughput = "throughput"
	pMemory     = "memory"
)

var partNames = []string{pHitRatio, pThroughput, pMemory}

type config struct {
	quick      bool
	rounds     int
	ops        int   // timed ops per throughput cell
	procs      []int // GOMAXPROCS values of the throughput part
	memEntries int
	traceDir   string
	charts     string // directory of the PNG charts; empty: none
	out        string
	parts      []string
	contenders []string // nil: all
	traces     []string // nil: all
	verbose    bool
}

func (c config) wantContender(name string) bool {
	return c.contenders == nil || slices.Contains(c.contenders, name)
}

func (c config) wantTrace(name string) bool {
	return c.traces == nil || slices.Contains(c.traces, name)
}

func main() {
	cfg, err := parseFlags(flag.NewFlagSet("memory", flag.ExitOnError), os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench/memory: %v\n", err)
		os.Exit(2)
	}
	if err := run(cfg); err != nil {
		fmt.Fprintf(os.Stderr, "bench/memory: %v\n", err)
		os.Exit(1)
	}
}

// parseFlags reads the command line into a config, applying -quick's
// defaults to the flags it leaves unset.
func parseFlags(fs *flag.FlagSet, args []string) (config, error) {
	var cfg config
	fs.BoolVar(&cfg.quick, "quick", false, "short run: -rounds 3 -ops 300000, fewer capacities on the Zipf and P3 traces")
	fs.IntVar(&cfg.rounds, "rounds", 10, "throughput rounds; figures are the median and best over rounds")
	fs.IntVar(&cfg.ops, "ops", 2_000_000, "throughput: timed ops per contender, workload, GOMAXPROCS and round")
	procs := fs.String("cpu", "1,2", "throughput: comma-separated GOMAXPROCS values")
	fs.IntVar(&cfg.memEntries, "mem-entries", 1_000_000, "memory: int entries per cache")
	fs.StringVar(&cfg.traceDir, "traces", "../../shared/traces", "directory of arc-p3.gz and lirs-loop.gz (default: shared/traces beside the repository, from bench/)")
	fs.StringVar(&cfg.charts, "charts", "../docs/charts", "directory of the hit-ratio charts (empty: none)")
	fs.StringVar(&cfg.out, "out", "results/memory.json", "JSON results file (empty: none)")
	parts := fs.String("parts", strings.Join(partNames, ","), "comma-separated parts to run")
	names := fs.String("contenders", "", "comma-separated contenders (default: all)")
	traces := fs.String("trace", "", "comma-separated hit-ratio traces (default: all): zipf-0.99,zipf-1.01,arc-p3,lirs-loop")
	fs.BoolVar(&cfg.verbose, "v", false, "print every measurement on stderr")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if cfg.quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["rounds"] {
			cfg.rounds = 3
		}
		if !set["ops"] {
			cfg.ops = 300_000
		}
	}
	var err error
	if cfg.parts, err = report.ParseList(*parts, partNames); err != nil {
		return cfg, fmt.Errorf("-parts: %w", err)
	}
	if *names != "" {
		all := slices.Concat(hitContenders, speedContenders)
		if cfg.contenders, err = report.ParseList(*names, all); err != nil {
			return cfg, fmt.Errorf("-contenders: %w", err)
		}
	}
	if *traces != "" {
		if cfg.traces, err = report.ParseList(*traces, []string{"zipf-0.99", "zipf-1.01", "arc-p3", "lirs-loop"}); err != nil {
			return cfg, fmt.Errorf("-trace: %w", err)
		}
	}
	for f := range strings.SplitSeq(*procs, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return cfg, fmt.Errorf("-cpu: bad value %q", f)
		}
		cfg.procs = append(cfg.procs, n)
	}
	if cfg.rounds < 1 || cfg.ops < 1 || cfg.memEntries < 1 {
		return cfg, errors.New("-rounds, -ops and -mem-entries must be positive")
	}
	return cfg, nil
}

// filter returns the names for which keep is true, in order.
func filter(names []string, keep func(string) bool) []string {
	var out []string
	for _, n := range names {
		if keep(n) {
			out = append(out, n)
		}
	}
	return out
}

func run(cfg config) error {
	start := time.Now()
	fmt.Printf("bench/memory  %s  %s %s/%s NumCPU=%d  load %s\n", start.Format(time.RFC3339),
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), report.LoadAvg())
	fmt.Printf("otter %s, ristretto %s, theine %s, golang-lru %s; parts %s\n",
		report.ModVersion("github.com/maypok86/otter/v2"), report.ModVersion("github.com/dgraph-io/ristretto/v2"),
		report.ModVersion("github.com/Yiling-J/theine-go"), report.ModVersion("github.com/hashicorp/golang-lru/v2"),
		strings.Join(cfg.parts, ","))
	for _, name := range slices.Concat(hitContenders, []string{cMap}) {
		if cfg.wantContender(name) {
			fmt.Printf("  %-15s %s\n", name, contenders[name].about)
		}
	}
	has := func(p string) bool { return slices.Contains(cfg.parts, p) }

	var res results
	var problems []string
	if has(pHitRatio) {
		var p []string
		res.hits, p = runHitRatios(cfg)
		problems = append(problems, p...)
	}
	if has(pThroughput) {
		var p []string
		res.speed, p = runThroughput(cfg)
		problems = append(problems, p...)
	}
	if has(pMemory) {
		var p []string
		res.mem, p = runMemory(cfg)
		problems = append(problems, p...)
	}

	fmt.Println()
	if has(pHitRatio) {
		writeHitTables(os.Stdout, cfg, res.hits)
		if cfg.charts != "" {
			problems = append(problems, writeCharts(cfg, res.hits)...)
		}
	}
	if has(pThroughput) {
		writeSpeedTable(os.Stdout, cfg, res.speed)
	}
	if has(pMemory) {
		writeMemTable(os.Stdout, res.mem)
	}
	fmt.Print(formatTargets(evaluateTargets(cfg, res)))
	fmt.Printf("elapsed %s, load %s\n", time.Since(start).Round(time.Second), report.LoadAvg())
	return report.Finish(cfg.out, res.jsonRows(cfg), problems)
}

// ours tells whether a contender is cachekit's.
func ours(name string) bool { return strings.HasPrefix(name, "cachekit") }

// logf prints a measurement line on stderr with -v.
func logf(cfg config, format string, args ...any) {
	if cfg.verbose {
		fmt.Fprintf(os.Stderr, "  "+format+"\n", args...)
	}
}
