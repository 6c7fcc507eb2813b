// Command qcache measures why the query cache's row-granular invalidation
// matters: the hit ratio of a read mix of 20 query shapes over Zipf(1.1)
// keys while writes run at 0, 10, 100 and 1,000 per second, for the same
// wrapper (package qcache) with no cache, with table-level invalidation
// (what go-gorm/caches and gorm-cache do: a TablePolicy over
// qcache.SQLTables) and with granular invalidation (GranularPolicy: memory
// and Redis stores with the synchronous write path, and a memory store fed
// by PostgreSQL logical replication through qcache/pgfeed while the writes
// go through a plain connection); and the anchor latencies of one
// primary-key SELECT: uncached, a miss, a memory hit and a Redis hit.
// See docs/benchmarks.md; `make bench-qcache` runs it against a private
// PostgreSQL and Redis on 127.0.0.1.
//
// Modes are interleaved phase by phase in an order that rotates each round,
// every phase starts with a cold cache (its own key prefix) and a warm-up
// that is not measured, and every figure is the median over rounds.
//
// The staleness proof is the test TestStaleness in this directory.
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
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/cachekit/cachekit/bench/internal/report"
)

type config struct {
	quick   bool
	rounds  int
	rows    int
	readers int
	rates   []int
	modes   []string
	warm    time.Duration
	measure time.Duration
	anchorN int // reads per anchor contender per round
	out     string
	dsn     string
	redis   string
}

func parseFlags(fs *flag.FlagSet, args []string) (config, error) {
	var cfg config
	var rates, modes string
	fs.BoolVar(&cfg.quick, "quick", false, "short run (under two minutes): one round, shorter phases")
	fs.IntVar(&cfg.rounds, "rounds", 0, "rounds (default 3, quick 1)")
	fs.IntVar(&cfg.rows, "rows", 0, "rows per table (default 100000, also with -quick)")
	fs.IntVar(&cfg.readers, "readers", 4, "reader goroutines")
	fs.StringVar(&rates, "rates", "0,10,100,1000", "write rates (writes/s), comma-separated")
	fs.StringVar(&modes, "modes", strings.Join(allModes, ","), "modes, comma-separated")
	fs.DurationVar(&cfg.warm, "warm", 0, "unmeasured warm-up per phase (default 4s, quick 1s)")
	fs.DurationVar(&cfg.measure, "measure", 0, "measured time per phase (default 10s, quick 2s)")
	fs.IntVar(&cfg.anchorN, "anchor-ops", 0, "reads per anchor contender per round (default 5000, quick 2000)")
	fs.StringVar(&cfg.out, "out", "", "write the results as JSON to this file")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	def := func(v *int, full, quick int) {
		if *v == 0 {
			*v = full
			if cfg.quick {
				*v = quick
			}
		}
	}
	defd := func(v *time.Duration, full, quick time.Duration) {
		if *v == 0 {
			*v = full
			if cfg.quick {
				*v = quick
			}
		}
	}
	def(&cfg.rounds, 3, 1)
	def(&cfg.rows, 100_000, 100_000)
	def(&cfg.anchorN, 5000, 2000)
	defd(&cfg.warm, 4*time.Second, time.Second)
	defd(&cfg.measure, 10*time.Second, 2*time.Second)
	for f := range strings.SplitSeq(rates, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 {
			return cfg, fmt.Errorf("-rates: bad rate %q", f)
		}
		cfg.rates = append(cfg.rates, n)
	}
	for f := range strings.SplitSeq(modes, ",") {
		f = strings.TrimSpace(f)
		if !slices.Contains(allModes, f) {
			return cfg, fmt.Errorf("-modes: unknown mode %q (want %s)", f, strings.Join(allModes, ","))
		}
		cfg.modes = append(cfg.modes, f)
	}
	if cfg.rows < 1000 || cfg.readers < 1 || cfg.rounds < 1 {
		return cfg, errors.New("-rows must be ≥ 1000, -readers and -rounds ≥ 1")
	}
	return cfg, nil
}

func main() {
	cfg, err := parseFlags(flag.CommandLine, os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench/qcache: %v\n", err)
		os.Exit(2)
	}
	cfg.dsn = os.Getenv("CACHEKIT_POSTGRES_DSN")
	cfg.redis = os.Getenv("CACHEKIT_REDIS_ADDR")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintf(os.Stderr, "bench/qcache: %v\n", err)
		os.Exit(1)
	}
}

// results collects every round of every (workload, contender).
type results struct {
	order []key
	vals  map[key]map[string][]float64
	units map[string]string
	notes map[key][]string
}

type key struct{ workload, contender string }

func newResults() *results {
	return &results{vals: map[key]map[string][]float64{}, units: map[string]string{}, notes: map[key][]string{}}
}

func (r *results) add(k key, ms []metric) {
	if _, ok := r.vals[k]; !ok {
		r.order = append(r.order, k)
		r.vals[k] = map[string][]float64{}
	}
	for _, m := range ms {
		r.vals[k][m.name] = append(r.vals[k][m.name], m.value)
		r.units[m.name] = m.unit
	}
}

func (r *results) note(k key, s string) {
	if !slices.Contains(r.notes[k], s) {
		r.notes[k] = append(r.notes[k], s)
	}
}

// median returns the median of metric m of k over rounds, and whether any
// round measured it.
func (r *results) median(k key, m string) (float64, bool) {
	v := r.vals[k][m]
	return report.Median(v), len(v) > 0
}

func loadWorkload(rate int) string { return fmt.Sprintf("zipf-20shapes/%dw", rate) }

const anchorWorkload = "anchor/pk-select/1g"

func run(ctx context.Context, cfg config) error {
	start := time.Now()
	if cfg.dsn == "" {
		return errors.New("CACHEKIT_POSTGRES_DSN is not set (make bench-qcache starts a private server)")
	}
	fmt.Printf("bench/qcache  %s  %s %s/%s GOMAXPROCS=%d  load %s\n", start.Format(time.RFC3339),
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), report.LoadAvg())
	fmt.Printf("rows %d per table (users, posts, comments); %d shapes; Zipf(1.1); readers %d; rates %v/s; rounds %d; phase %s warm + %s\n",
		cfg.rows, len(shapes), cfg.readers, cfg.rates, cfg.rounds, cfg.warm, cfg.measure)

	schema := fmt.Sprintf("qcbench_%d", os.Getpid())
	e, err := newPgEnv(cfg.dsn, schema)
	if err != nil {
		return err
	}
	admin := e.plainDB(2)
	defer func() { _ = admin.Close() }()
	ds := newDataset(cfg.rows)
	t0 := time.Now()
	if err := createSchema(ctx, admin, schema, ds); err != nil {
		return err
	}
	defer func() {
		if _, err := admin.ExecContext(context.WithoutCancel(ctx), `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			fmt.Fprintf(os.Stderr, "drop schema %s: %v\n", schema, err)
		}
	}()
	fmt.Printf("schema %s ready in %s\n", schema, time.Since(t0).Round(time.Millisecond))

	var modes []string
	for _, m := range cfg.modes {
		switch {
		case (m == modeGranularRedis || m == modeGranularTiered) && cfg.redis == "":
			fmt.Printf("skip %s: CACHEKIT_REDIS_ADDR is not set\n", m)
		default:
			modes = append(modes, m)
		}
	}
	var problems []string
	onError := func(err error) {} // cache errors surface as uncached reads; counted there
	res := newResults()
	w := newWriter(ds)
	mc := modeConfig{redisAddr: cfg.redis, conns: cfg.readers + 36, onError: onError, cdcTables: []string{"users", "posts", "comments"}}

	// Anchor latencies first, on an idle database.
	anchors := []string{anchorUncached, anchorHitMemory, anchorHitTable, anchorMiss}
	if slices.Contains(modes, modeGranularRedis) {
		anchors = append(anchors, anchorHitRedis)
	}
	if slices.Contains(modes, modeGranularTiered) {
		anchors = append(anchors, anchorHitTiered)
	}
	mc.prefix = fmt.Sprintf("qcb:%d:", os.Getpid())
	adbs, err := openAnchors(ctx, e, anchors, mc)
	if err != nil {
		return err
	}
	missBase := int64(anchorHot) + 1
	for r := range cfg.rounds * 3 {
		for _, n := range report.Rotate(anchors, r) {
			lat, err := anchorRound(ctx, adbs, n, cfg.anchorN, missBase)
			if err != nil {
				adbs.close()
				return err
			}
			if n == anchorMiss {
				missBase += int64(cfg.anchorN)
			}
			res.add(key{anchorWorkload, n}, anchorFigures(lat))
		}
	}
	adbs.close()
	fmt.Fprintf(os.Stderr, "anchors done (total %s)\n", time.Since(start).Round(time.Second))

	phase := 0
	for r := range cfg.rounds {
		for ri, rate := range cfg.rates {
			for _, mode := range report.Rotate(modes, r+ri) {
				phase++
				mc.prefix = fmt.Sprintf("qcb:%d:%d:", os.Getpid(), phase)
				m, err := openMode(ctx, e, mode, mc)
				if err != nil {
					return err
				}
				lr := runLoad(ctx, m, w, loadConfig{ds: ds, readers: cfg.readers, rate: rate, warm: cfg.warm, measure: cfg.measure, seed: uint64(phase)})
				m.close()
				if err := ctx.Err(); err != nil {
					return err
				}
				k := key{loadWorkload(rate), contenderName(mode)}
				res.add(k, lr.figures())
				if lr.firstErr != nil {
					problems = append(problems, fmt.Sprintf("%s %s: %d read and %d write errors, first: %v",
						k.workload, k.contender, lr.readErrs, lr.writeErrs, lr.firstErr))
				}
				if rate > 0 && float64(lr.writes)/lr.elapsed.Seconds() < 0.8*float64(rate) {
					res.note(k, fmt.Sprintf("writes reached %.0f/s", float64(lr.writes)/lr.elapsed.Seconds()))
				}
				fmt.Fprintf(os.Stderr, "round %d/%d  %-10s %-16s hit %.3f  reads %d  (total %s)\n", r+1, cfg.rounds,
					k.workload, mode, ratio(len(lr.byKind[kindHit]), lr.reads), lr.reads, time.Since(start).Round(time.Second))
			}
		}
	}

	fmt.Println()
	printAnchors(res, anchors)
	printLoad(res, cfg, modes)
	fmt.Print(targets(res, cfg, modes))
	fmt.Printf("elapsed %s, load %s\n", time.Since(start).Round(time.Second), report.LoadAvg())
	var rows []report.Row
	if cfg.out != "" {
		rows = jsonRows(res)
	}
	return report.Finish(cfg.out, rows, problems)
}

func printAnchors(res *results, anchors []string) {
	fmt.Printf("%s: one primary-key SELECT, one goroutine (median over rounds)\n", anchorWorkload)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "contender\tp50 µs\tp99 µs\tvs uncached p50\t")
	unc, _ := res.median(key{anchorWorkload, anchorUncached}, "p50")
	for _, n := range anchors {
		k := key{anchorWorkload, n}
		p50, _ := res.median(k, "p50")
		p99, _ := res.median(k, "p99")
		sp := "-"
		if p50 > 0 && n != anchorUncached {
			sp = fmt.Sprintf("%.1fx", unc/p50)
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%s\t\n", n, p50, p99, sp)
	}
	_ = tw.Flush()
	fmt.Println()
}

func printLoad(res *results, cfg config, modes []string) {
	fmt.Printf("zipf-20shapes: %d readers, 20 shapes over %d rows per table (median over rounds; latency µs)\n", cfg.readers, cfg.rows)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "writes/s\tmode\thit ratio\tsaved q/s\treads/s\twrites/s\thit p50\thit p99\tmiss p50\tmiss p99\tuncached p50\tuncached p99\tinval/s row,table,all\tnotes\t")
	for _, rate := range cfg.rates {
		for _, mode := range modes {
			k := key{loadWorkload(rate), contenderName(mode)}
			f := func(m, format string) string {
				v, ok := res.median(k, m)
				if !ok {
					return "-"
				}
				return fmt.Sprintf(format, v)
			}
			inval := "-"
			if mode != modeNone {
				inval = f("invalidations_row_per_s", "%.0f") + "," + f("invalidations_table_per_s", "%.0f") + "," +
					f("invalidations_global_per_s", "%.0f")
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", rate, mode,
				f("hit_ratio", "%.3f"), f("db_queries_saved_per_s", "%.0f"), f("reads_per_s", "%.0f"), f("writes_per_s", "%.0f"),
				f("hit_p50", "%.1f"), f("hit_p99", "%.1f"), f("miss_p50", "%.1f"), f("miss_p99", "%.1f"),
				f("uncached_p50", "%.1f"), f("uncached_p99", "%.1f"), inval, strings.Join(res.notes[k], "; "))
		}
	}
	_ = tw.Flush()
	fmt.Println()
}

// targets checks the figures against the targets.
func targets(res *results, cfg config, modes []string) string {
	var b strings.Builder
	b.WriteString("targets:\n")
	check := func(name string, got, want float64, ok bool) {
		verdict := "MET"
		switch {
		case !ok:
			verdict = "not measured"
		case got < want:
			verdict = "MISSED"
		}
		fmt.Fprintf(&b, "  %-58s %6.1fx (want ≥ %gx)  %s\n", name, got, want, verdict)
	}
	if slices.Contains(modes, modeTable) && slices.Contains(modes, modeGranular) && slices.Contains(cfg.rates, 100) {
		g, ok1 := res.median(key{loadWorkload(100), contenderName(modeGranular)}, "hit_ratio")
		t, ok2 := res.median(key{loadWorkload(100), contenderName(modeTable)}, "hit_ratio")
		r := g / t
		if t == 0 {
			r = 0
			if g > 0 {
				r = 999
			}
		}
		check("hit ratio at 100 writes/s: granular / table-level", r, 3, ok1 && ok2)
	}
	unc, ok0 := res.median(key{anchorWorkload, anchorUncached}, "p50")
	for _, c := range []struct {
		n    string
		want float64
	}{{anchorHitMemory, 20}, {anchorHitRedis, 2}, {anchorHitTiered, 2}} {
		h, ok := res.median(key{anchorWorkload, c.n}, "p50")
		r := 0.0
		if h > 0 {
			r = unc / h
		}
		check("p50 uncached PK SELECT / "+c.n, r, c.want, ok && ok0)
	}
	return b.String()
}

// jsonRows returns the medians of every metric as report rows.
func jsonRows(res *results) []report.Row {
	var rows []report.Row
	for _, k := range res.order {
		names := make([]string, 0, len(res.vals[k]))
		for m := range res.vals[k] {
			names = append(names, m)
		}
		slices.Sort(names)
		for _, m := range names {
			v, _ := res.median(k, m)
			rows = append(rows, report.Row{Workload: k.workload, Contender: contenderOf(k), Metric: m,
				Value: report.Round(v, 4), Unit: res.units[m]})
		}
	}
	return rows
}

// contenderOf names the JSON contender of a row: anchors by their policy
// and store.
func contenderOf(k key) string {
	if k.workload != anchorWorkload {
		return k.contender
	}
	return contenderName(anchorMode[k.contender]) + "/" + k.contender
}
