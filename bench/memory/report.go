package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/cachekit/cachekit/bench/internal/report"
)

// results is everything a run measured.
type results struct {
	hits  []hitRatio
	speed []speedResult
	mem   []memResult
}

// traceOrder lists the traces and their capacities in the order measured.
func traceOrder(hits []hitRatio) (traces []string, caps map[string][]int) {
	caps = map[string][]int{}
	for _, h := range hits {
		if !slices.Contains(traces, h.trace) {
			traces = append(traces, h.trace)
		}
		if !slices.Contains(caps[h.trace], h.capacity) {
			caps[h.trace] = append(caps[h.trace], h.capacity)
		}
	}
	return traces, caps
}

// findHit finds a contender's result on a trace and capacity.
func findHit(hits []hitRatio, trace string, capacity int, name string) (hitRatio, bool) {
	for _, h := range hits {
		if h.trace == trace && h.capacity == capacity && h.contender == name {
			return h, true
		}
	}
	return hitRatio{}, false
}

// hitOf finds a contender's ratio on a trace and capacity.
func hitOf(hits []hitRatio, trace string, capacity int, name string) (float64, bool) {
	h, ok := findHit(hits, trace, capacity, name)
	return h.ratio, ok
}

// oversize tells whether a result was not obtained within the capacity:
// the cache was seen holding more entries than its capacity, or it beat
// Bélády's optimum, which no cache of that capacity can.
func oversize(hits []hitRatio, h hitRatio) bool {
	if h.contender == cOptimal {
		return false
	}
	opt, ok := hitOf(hits, h.trace, h.capacity, cOptimal)
	return h.maxLen > h.capacity || (ok && h.ratio > opt+1e-9)
}

// bestPeerHit is the best ratio of a contender neither ours nor a baseline,
// leaving out oversize results.
func bestPeerHit(hits []hitRatio, trace string, capacity int) (float64, string) {
	best, who := math.Inf(-1), ""
	for _, h := range hits {
		if h.trace == trace && h.capacity == capacity && !ours(h.contender) && !contenders[h.contender].baseline &&
			!oversize(hits, h) && h.ratio > best {
			best, who = h.ratio, h.contender
		}
	}
	return best, who
}

// writeHitTables prints one table per trace: a row per contender, a column
// per capacity.
func writeHitTables(w io.Writer, cfg config, hits []hitRatio) {
	traces, caps := traceOrder(hits)
	about := map[string]string{}
	for _, ht := range hitTraces(cfg) {
		about[ht.name] = ht.about
	}
	for _, tr := range traces {
		fmt.Fprintf(w, "hit ratio, %s: %s; miss → Set, one goroutine\n", tr, about[tr])
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprint(tw, "contender\t")
		for _, c := range caps[tr] {
			fmt.Fprintf(tw, "%s\t", capLabel(c))
		}
		fmt.Fprintln(tw)
		var notes []string
		for _, name := range hitContenders {
			var cells []string
			for _, c := range caps[tr] {
				h, ok := findHit(hits, tr, c, name)
				switch {
				case !ok:
					cells = append(cells, "-")
				case oversize(hits, h):
					cells = append(cells, fmt.Sprintf("%.4f*", h.ratio))
					held := "beat Bélády"
					if h.maxLen > h.capacity {
						held = fmt.Sprintf("held up to %d entries", h.maxLen)
					}
					notes = append(notes, fmt.Sprintf("%s at %s: %s", name, capLabel(c), held))
				default:
					cells = append(cells, fmt.Sprintf("%.4f", h.ratio))
				}
			}
			if strings.Trim(strings.Join(cells, ""), "-") == "" {
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t\n", name, strings.Join(cells, "\t"))
		}
		tw.Flush()
		if len(notes) > 0 {
			fmt.Fprintf(w, "* over capacity (left out of the best-peer comparisons): %s\n", strings.Join(notes, "; "))
		}
		fmt.Fprintln(w)
	}
}

// capLabel writes a capacity as 25k, 2.5k or 250.
func capLabel(c int) string {
	switch {
	case c >= 1000 && c%1000 == 0:
		return fmt.Sprintf("%dk", c/1000)
	case c >= 1000:
		return fmt.Sprintf("%.1fk", float64(c)/1000)
	}
	return fmt.Sprint(c)
}

// speedCell gathers one workload, GOMAXPROCS and contender over rounds.
type speedCell struct {
	nsPerOp, allocs []float64
}

func (s speedCell) median() float64 { return report.Median(s.nsPerOp) }
func (s speedCell) best() float64 {
	if len(s.nsPerOp) == 0 {
		return 0
	}
	return slices.Min(s.nsPerOp)
}

type speedKey struct {
	workload  string
	procs     int
	contender string
}

func speedCells(speed []speedResult) map[speedKey]*speedCell {
	m := map[speedKey]*speedCell{}
	for _, s := range speed {
		k := speedKey{s.workload, s.procs, s.contender}
		if m[k] == nil {
			m[k] = &speedCell{}
		}
		m[k].nsPerOp = append(m[k].nsPerOp, s.nsPerOp)
		m[k].allocs = append(m[k].allocs, s.allocs)
	}
	return m
}

// bestPeerSpeed is the lowest median ns/op of a contender neither ours nor
// a baseline.
func bestPeerSpeed(cells map[speedKey]*speedCell, workload string, procs int) (float64, string) {
	best, who := math.Inf(1), ""
	for _, name := range speedContenders {
		c := cells[speedKey{workload, procs, name}]
		if c == nil || ours(name) || contenders[name].baseline {
			continue
		}
		if m := c.median(); m < best {
			best, who = m, name
		}
	}
	return best, who
}

// writeSpeedTable prints a row per workload and contender: median and best
// ns/op over rounds at each GOMAXPROCS, and allocations per op.
func writeSpeedTable(w io.Writer, cfg config, speed []speedResult) {
	cells := speedCells(speed)
	fmt.Fprintf(w, "throughput, ns/op median / best of %d rounds (at GOMAXPROCS > 1, wall time over all goroutines' ops); %d ops per cell\n",
		cfg.rounds, cfg.ops)
	for _, wl := range speedWorkloads {
		fmt.Fprintf(w, "  %s: %s\n", wl.name, wl.about)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "workload\tcontender\t")
	for _, p := range cfg.procs {
		fmt.Fprintf(tw, "cpu=%d\tallocs/op\t", p)
	}
	fmt.Fprint(tw, "vs best peer\t\n")
	for _, wl := range speedWorkloads {
		for _, name := range speedContenders {
			if cells[speedKey{wl.name, cfg.procs[0], name}] == nil {
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t", wl.name, name)
			var vs []string
			for _, p := range cfg.procs {
				c := cells[speedKey{wl.name, p, name}]
				if c == nil {
					fmt.Fprint(tw, "-\t-\t")
					continue
				}
				fmt.Fprintf(tw, "%.0f / %.0f\t%.2f\t", c.median(), c.best(), report.Median(c.allocs))
				if ours(name) {
					if b, who := bestPeerSpeed(cells, wl.name, p); who != "" {
						vs = append(vs, fmt.Sprintf("%.2fx %s", c.median()/b, who))
					}
				}
			}
			fmt.Fprintf(tw, "%s\t\n", strings.Join(vs, ", "))
		}
	}
	tw.Flush()
	fmt.Fprintln(w)
}

// writeMemTable prints the heap per entry of each contender.
func writeMemTable(w io.Writer, mem []memResult) {
	fmt.Fprintln(w, "memory: live heap after GC per resident entry, cache of 1M int keys and values (capacity 1M)")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "contender\tresident\tbytes/entry\t\n")
	for _, m := range mem {
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t\n", m.contender, m.resident, m.perEntry)
	}
	tw.Flush()
	fmt.Fprintln(w)
}

// target is one line of the targets block.
type target struct {
	name   string
	detail string
	met    bool
}

// Target thresholds.
const (
	readRatio     = 0.55  // ours / best peer, median ns/op, 100% Get
	mixRatio      = 0.60  // ours / best peer, median ns/op, 75/25 and churn
	hitSlack      = 0.002 // ours ≥ best peer − hitSlack, every trace and capacity
	optimalShare  = 0.92  // ours ≥ optimalShare × Bélády on the Zipf traces
	optimalAtZipf = 10_000
)

// evaluateTargets compares our figures with the best peer of the same run
// (never the baselines).
func evaluateTargets(cfg config, res results) []target {
	var out []target
	cells := speedCells(res.speed)
	for _, wl := range speedWorkloads {
		limit := mixRatio
		if !wl.sets {
			limit = readRatio
		}
		for _, p := range cfg.procs {
			c := cells[speedKey{wl.name, p, cCachekit}]
			b, who := bestPeerSpeed(cells, wl.name, p)
			if c == nil || who == "" {
				continue
			}
			r := c.median() / b
			out = append(out, target{
				name:   fmt.Sprintf("%s cpu=%d: ns/op ≤ %.2fx best peer", wl.name, p, limit),
				detail: fmt.Sprintf("%.0f vs %s %.0f = %.2fx", c.median(), who, b, r),
				met:    r <= limit,
			})
		}
	}

	traces, caps := traceOrder(res.hits)
	for _, tr := range traces {
		worst, detail, met, n := math.Inf(1), "", true, 0
		for _, c := range caps[tr] {
			ourR, ok := hitOf(res.hits, tr, c, cCachekit)
			best, who := bestPeerHit(res.hits, tr, c)
			if !ok || who == "" {
				continue
			}
			n++
			d := ourR - best
			if d < -hitSlack {
				met = false
			}
			if d < worst {
				worst = d
				detail = fmt.Sprintf("worst at %s: %.4f vs %s %.4f (%+.4f)", capLabel(c), ourR, who, best, d)
			}
		}
		if n > 0 {
			if allDetail := worstVsAll(res.hits, tr, caps[tr]); allDetail != "" {
				detail += "; counting over-capacity results too: " + allDetail
			}
			out = append(out, target{
				name:   fmt.Sprintf("hit ratio %s: ≥ best peer − %.3f at every capacity (%d)", tr, hitSlack, n),
				detail: detail,
				met:    met,
			})
		}
		if !strings.HasPrefix(tr, "zipf") {
			continue
		}
		ourR, ok1 := hitOf(res.hits, tr, optimalAtZipf, cCachekit)
		opt, ok2 := hitOf(res.hits, tr, optimalAtZipf, cOptimal)
		if ok1 && ok2 && opt > 0 {
			var others []string
			for _, c := range caps[tr] {
				o, a := hitOf(res.hits, tr, c, cCachekit)
				b, bb := hitOf(res.hits, tr, c, cOptimal)
				if a && bb && b > 0 && c != optimalAtZipf {
					others = append(others, fmt.Sprintf("%s %.3f", capLabel(c), o/b))
				}
			}
			d := fmt.Sprintf("%.4f vs %.4f = %.3f", ourR, opt, ourR/opt)
			if len(others) > 0 {
				d += " (other capacities: " + strings.Join(others, ", ") + ")"
			}
			out = append(out, target{
				name:   fmt.Sprintf("hit ratio %s cap %s: ≥ %.2f × Bélády", tr, capLabel(optimalAtZipf), optimalShare),
				detail: d,
				met:    ourR/opt >= optimalShare,
			})
		}
	}

	var ourMem *memResult
	best, who := math.Inf(1), ""
	for i, m := range res.mem {
		switch {
		case ours(m.contender):
			ourMem = &res.mem[i]
		case !contenders[m.contender].baseline && m.perEntry < best:
			best, who = m.perEntry, m.contender
		}
	}
	if ourMem != nil && who != "" {
		out = append(out, target{
			name:   "memory per entry ≤ best peer",
			detail: fmt.Sprintf("%.1f B vs %s %.1f B", ourMem.perEntry, who, best),
			met:    ourMem.perEntry <= best,
		})
	}
	return out
}

// worstVsAll is our worst gap on a trace to the best peer result, over-
// capacity ones included, for the targets' detail ("" when none is
// missing).
func worstVsAll(hits []hitRatio, trace string, caps []int) string {
	worst, detail := math.Inf(1), ""
	for _, c := range caps {
		ourR, ok := hitOf(hits, trace, c, cCachekit)
		if !ok {
			continue
		}
		for _, h := range hits {
			if h.trace != trace || h.capacity != c || ours(h.contender) || contenders[h.contender].baseline {
				continue
			}
			if d := ourR - h.ratio; d < worst {
				worst = d
				detail = fmt.Sprintf("worst at %s: %.4f vs %s %.4f (%+.4f)", capLabel(c), ourR, h.contender, h.ratio, d)
			}
		}
	}
	return detail
}

func formatTargets(ts []target) string {
	if len(ts) == 0 {
		return ""
	}
	var b strings.Builder
	met := 0
	b.WriteString("targets (cachekit vs the best peer of this run; baselines excluded):\n")
	for _, t := range ts {
		s := "MISSED"
		if t.met {
			s = "MET"
			met++
		}
		fmt.Fprintf(&b, "  %-6s %s: %s\n", s, t.name, t.detail)
	}
	fmt.Fprintf(&b, "  %d of %d met\n", met, len(ts))
	return b.String()
}

// jsonRows turns the results into results/memory.json rows.
func (res results) jsonRows(cfg config) []report.Row {
	var rows []report.Row
	for _, h := range res.hits {
		w := fmt.Sprintf("hitratio/%s/cap%d", h.trace, h.capacity)
		rows = append(rows, report.Row{Workload: w, Contender: h.contender, Metric: "hit-ratio", Value: report.Round(h.ratio, 5), Unit: "ratio"})
		if h.maxLen > h.capacity {
			rows = append(rows, report.Row{Workload: w, Contender: h.contender, Metric: "max-held", Value: float64(h.maxLen), Unit: "entries"})
		}
	}
	cells := speedCells(res.speed)
	for _, wl := range speedWorkloads {
		for _, p := range cfg.procs {
			for _, name := range speedContenders {
				c := cells[speedKey{wl.name, p, name}]
				if c == nil {
					continue
				}
				w := fmt.Sprintf("%s/cpu%d", wl.name, p)
				rows = append(rows,
					report.Row{Workload: w, Contender: name, Metric: "median", Value: report.Round(c.median(), 1), Unit: "ns/op"},
					report.Row{Workload: w, Contender: name, Metric: "best", Value: report.Round(c.best(), 1), Unit: "ns/op"},
					report.Row{Workload: w, Contender: name, Metric: "allocs", Value: report.Round(report.Median(c.allocs), 3), Unit: "allocs/op"},
					report.Row{Workload: w, Contender: name, Metric: "rounds", Value: float64(len(c.nsPerOp)), Unit: "rounds"})
				if ours(name) {
					if b, who := bestPeerSpeed(cells, wl.name, p); who != "" {
						rows = append(rows, report.Row{Workload: w, Contender: name, Metric: "vs-best-peer",
							Value: report.Round(c.median()/b, 3), Unit: "x"})
					}
				}
			}
		}
	}
	for _, m := range res.mem {
		w := fmt.Sprintf("memory/%d-int", cfg.memEntries)
		rows = append(rows,
			report.Row{Workload: w, Contender: m.contender, Metric: "bytes-per-entry", Value: report.Round(m.perEntry, 1), Unit: "B"},
			report.Row{Workload: w, Contender: m.contender, Metric: "resident", Value: float64(m.resident), Unit: "entries"})
	}
	return rows
}
