package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/cachekit/cachekit/bench/internal/report"
)

// cell identifies one measured combination.
type cell struct {
	workload  string // get, get-many, set
	conc      int    // goroutines
	contender string
}

// name is the workload as written to the JSON: op, value size, concurrency.
func (c cell) name(size int) string {
	return fmt.Sprintf("%s/%dB/%s", c.workload, size, concLabel(c.conc))
}

// stat is one round's summary of one cell.
type stat struct {
	median, p99 float64 // µs
	throughput  float64 // ops/s over the phase's wall-clock window
	n           int     // ops that succeeded
	errors      int
	reads       int
	unexpected  int
	firstError  string
}

func summarize(s sample) stat {
	l := report.Summarize(s.latNs, s.startNs, s.endNs)
	return stat{median: l.Median, p99: l.P99, throughput: l.Throughput, n: l.N,
		errors: s.errors, reads: s.reads, unexpected: s.unexpected, firstError: s.firstError}
}

// results collects every round of every cell.
type results struct {
	rounds map[cell][]stat
}

func newResults() *results { return &results{rounds: map[cell][]stat{}} }

func (r *results) add(c cell, s sample) { r.rounds[c] = append(r.rounds[c], summarize(s)) }

// row is a cell over all its rounds: the median of each metric over rounds.
type row struct {
	cell
	median, p99, throughput float64
	rounds                  int
	errors, reads           int // summed over rounds
	unexpected              int // summed over rounds
	firstError              string
}

// rows returns the cells in report order: workload, concurrency (in the
// order of concs), then the contender table's order.
func (r *results) rows(concs []int) []row {
	out := make([]row, 0, len(r.rounds))
	for c, sts := range r.rounds {
		out = append(out, combine(c, sts))
	}
	names := contenderNames()
	slices.SortFunc(out, func(a, b row) int {
		for _, d := range []int{
			slices.Index(workloads, a.workload) - slices.Index(workloads, b.workload),
			slices.Index(concs, a.conc) - slices.Index(concs, b.conc),
			slices.Index(names, a.contender) - slices.Index(names, b.contender),
		} {
			if d != 0 {
				return d
			}
		}
		return 0
	})
	return out
}

// combine takes the median of each metric over the rounds of one cell and
// sums the counts.
func combine(c cell, sts []stat) row {
	x := row{cell: c, rounds: len(sts)}
	pick := func(f func(stat) float64) float64 {
		v := make([]float64, len(sts))
		for i, s := range sts {
			v[i] = f(s)
		}
		return report.Median(v)
	}
	x.median = pick(func(s stat) float64 { return s.median })
	x.p99 = pick(func(s stat) float64 { return s.p99 })
	x.throughput = pick(func(s stat) float64 { return s.throughput })
	for _, s := range sts {
		x.errors += s.errors
		x.reads += s.reads
		x.unexpected += s.unexpected
		if x.firstError == "" {
			x.firstError = s.firstError
		}
	}
	return x
}

// unexpectedPct is the share of a row's key reads, over all rounds, that
// missed or (local tiers) were not served locally.
func unexpectedPct(x row) float64 {
	if x.reads == 0 {
		return 0
	}
	return 100 * float64(x.unexpected) / float64(x.reads)
}

// ratio is peer / ours, the table's "peer median / ours": above 1 ours is
// faster. 0 when either is missing.
func ratio(peer, ours float64) float64 {
	if peer <= 0 || ours <= 0 {
		return 0
	}
	return peer / ours
}

// find returns the row of contender in rows with the workload and conc of c.
func find(rows []row, workload string, conc int, contender string) (row, bool) {
	i := slices.IndexFunc(rows, func(x row) bool {
		return x.workload == workload && x.conc == conc && x.contender == contender
	})
	if i < 0 {
		return row{}, false
	}
	return rows[i], true
}

// writeTable prints the rows; our rows end with each compared peer's median
// divided by ours (above 1x: ours is faster).
func writeTable(w io.Writer, rows []row) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "workload\tconc\tcontender\tmedian µs\t   p99 µs\t    ops/s\tnote\tpeer median / ours")
	prev := ""
	for _, x := range rows {
		k := fmt.Sprintf("%s/%d", x.workload, x.conc)
		if prev != "" && k != prev {
			fmt.Fprintln(tw, "\t\t\t\t\t\t\t")
		}
		prev = k
		var ratios []string
		if c, ok := findContender(x.contender); ok && ours(x.contender) {
			for _, p := range c.compare {
				if pr, ok := find(rows, x.workload, x.conc, p); ok {
					ratios = append(ratios, fmt.Sprintf("%s %.2fx", p, ratio(pr.median, x.median)))
				}
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%9.2f\t%9.1f\t%9.0f\t%s\t%s\n", x.workload, concLabel(x.conc), x.contender,
			x.median, x.p99, x.throughput, note(x), strings.Join(ratios, ", "))
	}
	return tw.Flush()
}

// note flags a row whose ops failed or whose reads did not find what the
// workload expects.
func note(x row) string {
	var s []string
	if x.errors > 0 {
		s = append(s, fmt.Sprintf("%d errors (%s)", x.errors, x.firstError))
	}
	if x.unexpected > 0 {
		s = append(s, fmt.Sprintf("%.1f%% not as expected", unexpectedPct(x)))
	}
	return strings.Join(s, "; ")
}

// footnote explains the note column when some row has one.
func footnote(rows []row) string {
	for _, x := range rows {
		if x.unexpected > 0 || x.errors > 0 {
			return "note: \"N% not as expected\" counts key reads that missed, or, for the contenders with a local tier,\n" +
				"that the tier did not serve (sent to Redis: for cachekit-tiered also reads bypassed while the Watermark\n" +
				"lagged). \"errors\": failed ops, left out of the figures.\n"
		}
	}
	return ""
}

// invRow is the invalidation delay of one mode, over all rounds' writes.
type invRow struct {
	contender string // cachekit-tiered or cachekit-redis
	what      string // what the worker timed
	writes    int    // writes made
	missed    int    // writes whose invalidation did not arrive
	notHeld   int    // keys the worker's L1 did not hold before the write (tiered)
	flushes   int    // drop-everything notices the worker got
	errors    int    // failed writes
	median    float64
	p99, max  float64 // µs
}

// writeInvTable prints the invalidation delays.
func writeInvTable(w io.Writer, rows []invRow, cfg config) error {
	fmt.Fprintf(w, "invalidation delay: a write here (one every %v) to the drop in a worker process (µs; over all rounds' writes)\n",
		cfg.invalSpacing)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "contender\ttimed in the worker\twrites\tmedian µs\t   p99 µs\t   max µs\tnote")
	for _, x := range rows {
		var notes []string
		for _, n := range []struct {
			v    int
			what string
		}{{x.missed, "never arrived"}, {x.notHeld, "not in the worker's L1 before the write"},
			{x.flushes, "drop-everything notices"}, {x.errors, "failed writes"}} {
			if n.v > 0 {
				notes = append(notes, fmt.Sprintf("%d %s", n.v, n.what))
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%9.1f\t%9.1f\t%9.1f\t%s\n", x.contender, x.what, x.writes, x.median, x.p99, x.max,
			strings.Join(notes, "; "))
	}
	return tw.Flush()
}

// jsonRows turns the rows into results/network.json lines.
func jsonRows(rows []row, inv []invRow, size int) []report.Row {
	out := make([]report.Row, 0, 3*len(rows)+2*len(inv))
	for _, x := range rows {
		name := x.name(size)
		out = append(out,
			report.Row{Workload: name, Contender: x.contender, Metric: "median", Value: report.Round(x.median, 3), Unit: "us"},
			report.Row{Workload: name, Contender: x.contender, Metric: "p99", Value: report.Round(x.p99, 2), Unit: "us"},
			report.Row{Workload: name, Contender: x.contender, Metric: "throughput", Value: report.Round(x.throughput, 0), Unit: "ops/s"},
		)
		// Only on rows the note column flags, so that nobody reads such a
		// row's figures as clean.
		if x.unexpected > 0 {
			out = append(out, report.Row{Workload: name, Contender: x.contender, Metric: "not-as-expected",
				Value: report.Round(unexpectedPct(x), 2), Unit: "%"})
		}
		if x.errors > 0 {
			out = append(out, report.Row{Workload: name, Contender: x.contender, Metric: "errors", Value: float64(x.errors), Unit: "ops"})
		}
	}
	for _, x := range inv {
		name := fmt.Sprintf("invalidation-delay/%dB", size)
		out = append(out,
			report.Row{Workload: name, Contender: x.contender, Metric: "median", Value: report.Round(x.median, 2), Unit: "us"},
			report.Row{Workload: name, Contender: x.contender, Metric: "p99", Value: report.Round(x.p99, 2), Unit: "us"},
			report.Row{Workload: name, Contender: x.contender, Metric: "writes", Value: float64(x.writes), Unit: "writes"},
		)
		if x.missed > 0 {
			out = append(out, report.Row{Workload: name, Contender: x.contender, Metric: "missed", Value: float64(x.missed), Unit: "writes"})
		}
		if x.notHeld > 0 {
			out = append(out, report.Row{Workload: name, Contender: x.contender, Metric: "not-held", Value: float64(x.notHeld), Unit: "keys"})
		}
	}
	return out
}

// target is one of the suite's stated goals, checked against a run.
type target struct {
	goal   string
	detail string
	state  string // "met", "NOT met", or "n/a" (a contender did not run)
}

// Target thresholds (bench/README.md, docs/benchmarks.md).
const (
	rueidisSlack   = 1.1    // our redis store: at most this much slower than raw rueidis
	l1HitMaxUs     = 1.0    // tiered L1 hit median
	invalP99MaxUs  = 5000.0 // cross-process invalidation p99 on loopback
	targetConcHigh = 32     // "at 32 goroutines"
)

// evaluateTargets checks the rows against the targets. It compares medians
// (and, for "within 1.1×" and "faster", throughput as well) over rounds.
func evaluateTargets(rows []row, inv []invRow, concs []int) []target {
	var out []target
	state := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}

	// 1. cachekit-redis within 1.1× of raw rueidis: median latency and
	// throughput, every workload and concurrency.
	for _, ours := range []string{"cachekit-redis", "cachekit-redis-ctx"} {
		for _, w := range workloads {
			t := target{goal: fmt.Sprintf("%s %s within %.1f× of raw rueidis", ours, w, rueidisSlack), state: "n/a"}
			var parts []string
			all, some := true, false
			for _, c := range concs {
				o, ok1 := find(rows, w, c, ours)
				p, ok2 := find(rows, w, c, "rueidis")
				if !ok1 || !ok2 {
					continue
				}
				some = true
				lat := ratio(o.median, p.median)         // ours / rueidis: above 1 ours is slower
				thr := ratio(p.throughput, o.throughput) // rueidis / ours: above 1 ours is slower
				ok := lat <= rueidisSlack && thr <= rueidisSlack
				all = all && ok
				mark := ""
				if !ok {
					mark = " ✗"
				}
				parts = append(parts, fmt.Sprintf("%s median %.2fx ops/s %.2fx%s", concLabel(c), lat, thr, mark))
			}
			if some {
				t.state = state(all)
				t.detail = "ours/rueidis: " + strings.Join(parts, "; ")
			}
			out = append(out, t)
		}
	}

	// 2. faster than go-redis/cache at 32 goroutines: throughput.
	if slices.Contains(concs, targetConcHigh) {
		for _, w := range []string{wGet, wSet} {
			t := target{goal: fmt.Sprintf("cachekit-redis %s faster than go-redis-cache at %dg", w, targetConcHigh), state: "n/a"}
			o, ok1 := find(rows, w, targetConcHigh, "cachekit-redis")
			p, ok2 := find(rows, w, targetConcHigh, "go-redis-cache")
			if ok1 && ok2 {
				t.state = state(o.throughput > p.throughput)
				t.detail = fmt.Sprintf("ops/s %.0f vs %.0f (%.2fx); median %.1f vs %.1f µs",
					o.throughput, p.throughput, ratio(o.throughput, p.throughput), o.median, p.median)
			}
			out = append(out, t)
		}
	}

	// 3. tiered L1 hit under 1 µs (median), at every concurrency.
	{
		t := target{goal: fmt.Sprintf("cachekit-tiered L1 hit (get) under %.0f µs", l1HitMaxUs), state: "n/a"}
		var parts []string
		all, some := true, false
		for _, c := range concs {
			o, ok := find(rows, wGet, c, "cachekit-tiered")
			if !ok {
				continue
			}
			some = true
			ok = o.median < l1HitMaxUs && o.unexpected == 0
			all = all && ok
			s := fmt.Sprintf("%s %.2f µs", concLabel(c), o.median)
			if r, ok := find(rows, wGet, c, "cachekit-redis"); ok {
				s += fmt.Sprintf(" (redis hit %.1f µs: %.0fx)", r.median, ratio(r.median, o.median))
			}
			if o.unexpected > 0 {
				s += fmt.Sprintf(" but %.1f%% not L1 hits", unexpectedPct(o))
			}
			parts = append(parts, s)
		}
		if some {
			t.state = state(all)
			t.detail = strings.Join(parts, "; ")
		}
		out = append(out, t)
	}

	// 4. cross-process invalidation p99 under 5 ms.
	if len(inv) == 0 {
		out = append(out, target{goal: "cross-process invalidation p99 under 5 ms", state: "n/a"})
	}
	for _, x := range inv {
		out = append(out, target{
			goal:   fmt.Sprintf("cross-process invalidation p99 under 5 ms (%s)", x.contender),
			detail: fmt.Sprintf("p99 %.0f µs, median %.0f µs over %d writes, %d never arrived", x.p99, x.median, x.writes, x.missed),
			state:  state(x.p99 < invalP99MaxUs && x.missed == 0 && x.writes > 0),
		})
	}
	return out
}

func formatTargets(ts []target) string {
	var b strings.Builder
	b.WriteString("targets:\n")
	for _, t := range ts {
		fmt.Fprintf(&b, "  [%s] %s", t.state, t.goal)
		if t.detail != "" {
			fmt.Fprintf(&b, ": %s", t.detail)
		}
		b.WriteByte('\n')
	}
	return b.String()
}
