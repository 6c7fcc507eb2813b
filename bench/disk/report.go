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
	workload  string // workload name without size and concurrency, e.g. get-hit
	size      int
	conc      string
	contender string
}

// name is the workload as written to the JSON: op, value size, concurrency.
func (c cell) name() string { return fmt.Sprintf("%s/%s/%s", c.workload, sizeLabel(c.size), c.conc) }

func sizeLabel(n int) string {
	if n >= 1024 && n%1024 == 0 {
		return fmt.Sprintf("%dKiB", n/1024)
	}
	return fmt.Sprintf("%dB", n)
}

// stat is one round's summary of one cell.
type stat struct {
	median, p99 float64 // µs
	throughput  float64 // ops/s over the phase's wall-clock window
	n           int
	errors      int
	unexpected  int
	firstError  string
}

func summarize(s sample) stat {
	l := report.Summarize(s.LatNs, s.StartNs, s.EndNs)
	return stat{median: l.Median, p99: l.P99, throughput: l.Throughput, n: l.N,
		errors: s.Errors, unexpected: s.Unexpected, firstError: s.FirstError}
}

// describe summarizes one sample for -v: the distribution's shape, with the
// mean and the maximum that the report leaves out.
func describe(s sample) string {
	if len(s.LatNs) == 0 {
		return ""
	}
	l := report.Summarize(s.LatNs, s.StartNs, s.EndNs)
	return fmt.Sprintf("n=%d median=%.1f p99=%.1f max=%.1f mean=%.1f µs, %.0f ops/s", l.N, l.Median, l.P99, l.Max, l.Mean, l.Throughput)
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
	rounds, n               int // n: ops per round (median)
	errors, unexpected      int // summed over rounds
	firstError              string
}

// rows returns the cells in report order: workload, size, concurrency, then
// the contender table's order.
func (r *results) rows() []row {
	var out []row
	for c, sts := range r.rounds {
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
		x.n = int(pick(func(s stat) float64 { return float64(s.n) }))
		for _, s := range sts {
			x.errors += s.errors
			x.unexpected += s.unexpected
			if x.firstError == "" {
				x.firstError = s.firstError
			}
		}
		out = append(out, x)
	}
	rank := func(list []string, s string) int { return slices.Index(list, s) }
	concNames := make([]string, len(concs))
	for i, c := range concs {
		concNames[i] = c.name
	}
	names := make([]string, len(contenders))
	for i, c := range contenders {
		names[i] = c.name
	}
	slices.SortFunc(out, func(a, b row) int {
		for _, d := range []int{
			rank(workloadOrder, a.workload) - rank(workloadOrder, b.workload),
			a.size - b.size,
			rank(concNames, a.conc) - rank(concNames, b.conc),
			rank(names, a.contender) - rank(names, b.contender),
		} {
			if d != 0 {
				return d
			}
		}
		return 0
	})
	return out
}

// ours tells whether a contender is a cachekit store.
func ours(name string) bool {
	c, ok := findContender(name)
	return ok && c.ours
}

// writeTable prints the rows; cachekit rows end with each peer's median
// divided by ours (above 1x: we are faster).
func writeTable(w io.Writer, rows []row) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "workload\tsize\tconc\tcontender\tmedian µs\t   p99 µs\t    ops/s\tnote\tpeer median / ours")
	byGroup := map[string][]row{}
	for _, x := range rows {
		k := fmt.Sprintf("%s/%d/%s", x.workload, x.size, x.conc)
		byGroup[k] = append(byGroup[k], x)
	}
	prev := ""
	for _, x := range rows {
		k := fmt.Sprintf("%s/%d/%s", x.workload, x.size, x.conc)
		if prev != "" && k != prev {
			fmt.Fprintln(tw, "\t\t\t\t\t\t\t\t")
		}
		prev = k
		var ratios []string
		if ours(x.contender) && x.median > 0 {
			for _, p := range byGroup[k] {
				if p.contender != x.contender && !ours(p.contender) {
					ratios = append(ratios, fmt.Sprintf("%s/%s = %.1fx", p.contender, x.contender, p.median/x.median))
				}
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%9.1f\t%9.1f\t%9.0f\t%s\t%s\n", x.workload, sizeLabel(x.size), x.conc, x.contender,
			x.median, x.p99, x.throughput, note(x), strings.Join(ratios, ", "))
	}
	return tw.Flush()
}

// note flags a row whose ops failed or did not find what the workload
// expects (a get-hit that missed, a delete of an absent key).
func note(x row) string {
	var s []string
	if x.errors > 0 {
		s = append(s, fmt.Sprintf("%d errors (%s)", x.errors, x.firstError))
	}
	if x.unexpected > 0 && x.n > 0 {
		s = append(s, fmt.Sprintf("%.0f%% not as expected", unexpectedPct(x)))
	}
	return strings.Join(s, "; ")
}

// unexpectedPct is the share of a row's ops, over all rounds, whose outcome
// was not the workload's (a get-hit that missed, a delete that found nothing).
func unexpectedPct(x row) float64 { return 100 * float64(x.unexpected) / float64(x.rounds*x.n) }

// footnote explains the note column when some row has one.
func footnote(rows []row) string {
	for _, x := range rows {
		if x.unexpected > 0 || x.errors > 0 {
			return "note: \"N% not as expected\" counts ops that did not find what the workload expects: a get-hit\n" +
				"that missed, a get-miss that hit, a delete of an absent key. On a server that is eviction: its memory\n" +
				"limit (memcached's maxbytes, in the header) is below keys × value size. Such a row measures a mix of\n" +
				"hits and misses; in the JSON it carries a \"not-as-expected\" metric. \"errors\": failed ops, left out.\n"
		}
	}
	return ""
}

// writeJSON writes the rows as metric lines (report.Row), replacing path
// atomically.
func writeJSON(path string, rows []row) error {
	out := make([]report.Row, 0, 3*len(rows))
	for _, x := range rows {
		out = append(out,
			report.Row{Workload: x.name(), Contender: x.contender, Metric: "median", Value: report.Round(x.median, 2), Unit: "us"},
			report.Row{Workload: x.name(), Contender: x.contender, Metric: "p99", Value: report.Round(x.p99, 2), Unit: "us"},
			report.Row{Workload: x.name(), Contender: x.contender, Metric: "throughput", Value: report.Round(x.throughput, 0), Unit: "ops/s"},
		)
		// Only on rows the note column flags, so that nobody reads such a
		// row's figures as clean.
		if x.unexpected > 0 && x.n > 0 {
			out = append(out, report.Row{Workload: x.name(), Contender: x.contender, Metric: "not-as-expected",
				Value: report.Round(unexpectedPct(x), 1), Unit: "%"})
		}
		if x.errors > 0 {
			out = append(out, report.Row{Workload: x.name(), Contender: x.contender, Metric: "errors",
				Value: float64(x.errors), Unit: "ops"})
		}
	}
	return report.WriteJSON(path, out)
}
