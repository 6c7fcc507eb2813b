package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cachekit/cachekit/bench/internal/report"
)

// cell is one workload and contender: a row of a table.
type cell struct {
	kind      string // wHit, wStampede, wProcess or wExpiry
	workload  string // the JSON workload, such as "stampede/1000g/memory"
	contender string
}

// figures is one round's measurement of a cell: metric name → value.
type figures map[string]float64

// results collects every round of every cell, and what went wrong.
type results struct {
	order  []cell // first-seen order
	rounds map[cell][]figures
	notes  map[cell][]string
}

func newResults() *results {
	return &results{rounds: map[cell][]figures{}, notes: map[cell][]string{}}
}

func (r *results) add(c cell, f figures) {
	if _, ok := r.rounds[c]; !ok {
		r.order = append(r.order, c)
	}
	r.rounds[c] = append(r.rounds[c], f)
}

// note records a problem of a cell once.
func (r *results) note(c cell, s string) {
	if !slices.Contains(r.notes[c], s) {
		r.notes[c] = append(r.notes[c], s)
	}
}

// row is a cell over all its rounds.
type row struct {
	cell
	rounds []figures
	notes  []string
}

// values returns metric m of every round that has it.
func (x row) values(m string) []float64 {
	var v []float64
	for _, f := range x.rounds {
		if y, ok := f[m]; ok {
			v = append(v, y)
		}
	}
	return v
}

func (x row) has(m string) bool { return len(x.values(m)) > 0 }

// median is the median of metric m over rounds (0 without any).
func (x row) median(m string) float64 { return report.Median(x.values(m)) }

// max is the largest value of m over rounds (0 without any).
func (x row) max(m string) float64 {
	v := x.values(m)
	if len(v) == 0 {
		return 0
	}
	return slices.Max(v)
}

// min is the smallest value of m over rounds (0 without any).
func (x row) min(m string) float64 {
	v := x.values(m)
	if len(v) == 0 {
		return 0
	}
	return slices.Min(v)
}

// rows returns every cell in report order: workload kind, workload (first
// seen first), then the contender order of the kind.
func (r *results) rows() []row {
	out := make([]row, 0, len(r.order))
	for _, c := range r.order {
		out = append(out, row{cell: c, rounds: r.rounds[c], notes: r.notes[c]})
	}
	firstSeen := func(w string) int {
		return slices.IndexFunc(r.order, func(c cell) bool { return c.workload == w })
	}
	slices.SortStableFunc(out, func(a, b row) int {
		for _, d := range []int{
			slices.Index(workloadNames, a.kind) - slices.Index(workloadNames, b.kind),
			firstSeen(a.workload) - firstSeen(b.workload),
			slices.Index(namesOf(a.kind), a.contender) - slices.Index(namesOf(b.kind), b.contender),
		} {
			if d != 0 {
				return d
			}
		}
		return 0
	})
	return out
}

// find returns the row of workload and contender.
func find(rows []row, workload, contender string) (row, bool) {
	i := slices.IndexFunc(rows, func(x row) bool { return x.workload == workload && x.contender == contender })
	if i < 0 {
		return row{}, false
	}
	return rows[i], true
}

// namesOf returns the contenders of a workload kind, in report order.
func namesOf(kind string) []string {
	switch kind {
	case wHit:
		return hitNames()
	case wStampede:
		return stampedeNames()
	case wProcess:
		return processNames()
	case wExpiry:
		return expiryNames()
	}
	return nil
}

// metric is one figure of a workload kind.
type metric struct {
	name   string // JSON metric
	unit   string // JSON unit
	head   string // table column
	digits int    // decimals in the table
	// spread: the table shows the median and, when rounds differ, the range
	// over rounds; the JSON adds name+"-max" (the worst round).
	spread bool
	// optional: shown and written only when some round has a non-zero value.
	optional bool
}

// metricsOf lists the figures of each workload kind, in table order.
var metricsOf = map[string][]metric{
	wHit: {
		{name: "time", unit: "ns/op", head: "ns/op", digits: 1},
		{name: "allocs", unit: "allocs/op", head: "allocs/op", digits: 2},
		{name: "overhead", unit: "ns/op", head: "− Cache.Get ns", digits: 1, optional: true},
		{name: "misses", unit: "calls", head: "misses", spread: true, optional: true},
	},
	wStampede: {
		{name: "computations", unit: "calls", head: "computations", spread: true},
		{name: "all-served", unit: "ms", head: "all served ms", digits: 2},
		{name: "values", unit: "values", head: "distinct values", spread: true},
		{name: "errors", unit: "calls", head: "errors", spread: true, optional: true},
	},
	wProcess: {
		{name: "computations", unit: "calls", head: "computations", spread: true},
		{name: "all-served", unit: "ms", head: "all served ms", digits: 2},
		{name: "values", unit: "values", head: "distinct values", spread: true},
		{name: "lease-waits", unit: "callers", head: "lease waits", optional: true},
		{name: "start-skew", unit: "ms", head: "start skew ms", digits: 2},
		{name: "errors", unit: "calls", head: "errors", spread: true, optional: true},
	},
	wExpiry: {
		{name: "computations-per-ttl", unit: "calls", head: "computations/TTL", digits: 2},
		{name: "computations-per-expiry", unit: "calls", head: "per expiry", digits: 2},
		{name: "waiting-per-ttl", unit: "callers", head: "waiting callers/TTL", digits: 1},
		{name: "max-burst", unit: "callers", head: "max burst", spread: true},
		{name: "reads", unit: "reads/s", head: "reads/s", digits: 0},
		{name: "read-p99", unit: "us", head: "read p99 µs", digits: 1},
		{name: "read-max", unit: "ms", head: "read max ms", digits: 2},
		{name: "errors", unit: "calls", head: "errors", spread: true, optional: true},
	},
}

// shown tells whether a metric has a column for these rows.
func shown(m metric, rows []row) bool {
	if !m.optional {
		return true
	}
	return slices.ContainsFunc(rows, func(x row) bool { return slices.ContainsFunc(x.values(m.name), func(v float64) bool { return v != 0 }) })
}

// formatFigure prints the median of a metric, and for a spread metric the
// range over rounds when they differ: "1", "3 [2–4]".
func formatFigure(x row, m metric) string {
	if !x.has(m.name) {
		return "-"
	}
	s := strconv.FormatFloat(x.median(m.name), 'f', m.digits, 64)
	if m.spread && x.min(m.name) != x.max(m.name) {
		s += fmt.Sprintf(" [%s–%s]", strconv.FormatFloat(x.min(m.name), 'f', m.digits, 64),
			strconv.FormatFloat(x.max(m.name), 'f', m.digits, 64))
	}
	return s
}

// title describes a workload kind above its table.
func title(cfg config, kind string) string {
	switch kind {
	case wHit:
		return fmt.Sprintf("hit: one goroutine calls present keys in turn (%d keys, in-process caches); median over %d rounds of %d calls",
			cfg.hitKeys, cfg.rounds, cfg.hitOps)
	case wStampede:
		return fmt.Sprintf("stampede: %d goroutines call one cold key at once; the function takes %v; "+
			"all served = release to the last caller's value", cfg.callers, cfg.compute)
	case wProcess:
		return fmt.Sprintf("stampede across %d processes × %d goroutines on one shared store, released at one instant; "+
			"the function takes %v; computations summed over the processes", cfg.procs, cfg.procCallers, cfg.compute)
	case wExpiry:
		return fmt.Sprintf("expiry: %d goroutines read one key (a read, then a %v pause) for %d TTLs of %v; the function takes %v;\n"+
			"per expiry: computations starting within %v of each other count as one expiry (or early refresh);\n"+
			"waiting callers = reads that returned a value finished after they began; max burst = most of them on one computation",
			cfg.readers, cfg.readPause, cfg.periods, cfg.ttl, cfg.compute, cfg.compute)
	}
	return kind
}

// writeTable prints the rows of one workload kind.
func writeTable(w io.Writer, cfg config, kind string, all []row) error {
	var rows []row
	for _, x := range all {
		if x.kind == kind {
			rows = append(rows, x)
		}
	}
	if len(rows) == 0 {
		return nil
	}
	var ms []metric
	for _, m := range metricsOf[kind] {
		if shown(m, rows) {
			ms = append(ms, m)
		}
	}
	fmt.Fprintln(w, title(cfg, kind))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := []string{"workload", "contender"}
	for _, m := range ms {
		head = append(head, m.head)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	for _, x := range rows {
		line := []string{x.workload, x.contender}
		for _, m := range ms {
			line = append(line, formatFigure(x, m))
		}
		fmt.Fprintln(tw, strings.Join(line, "\t")+"\t")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, x := range rows {
		for _, n := range x.notes {
			fmt.Fprintf(w, "  note: %s %s: %s\n", x.workload, x.contender, n)
		}
	}
	fmt.Fprintln(w)
	return nil
}

// jsonRows turns the rows into results/memo.json lines: the median of each
// metric over rounds, and for spread metrics the worst round as
// name+"-max".
func jsonRows(rows []row) []report.Row {
	var out []report.Row
	for _, x := range rows {
		for _, m := range metricsOf[x.kind] {
			if !x.has(m.name) || (m.optional && x.min(m.name) == 0 && x.max(m.name) == 0) {
				continue
			}
			out = append(out, report.Row{Workload: x.workload, Contender: x.contender, Metric: m.name,
				Value: report.Round(x.median(m.name), max(m.digits, 3)), Unit: m.unit})
			if m.spread {
				out = append(out, report.Row{Workload: x.workload, Contender: x.contender, Metric: m.name + "-max",
					Value: report.Round(x.max(m.name), max(m.digits, 3)), Unit: m.unit})
			}
		}
		out = append(out, report.Row{Workload: x.workload, Contender: x.contender, Metric: "rounds",
			Value: float64(len(x.rounds)), Unit: "rounds"})
	}
	return out
}

// target is one of the suite's stated goals, checked against a run.
type target struct {
	goal   string
	detail string
	state  string // "met", "NOT met", or "n/a" (not measured)
}

// hitOverheadMaxNs is the target for a memo hit over a raw Cache.Get.
const hitOverheadMaxNs = 100

func state(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

// counts describes a spread metric of the rows of peers in workload.
func counts(rows []row, workload, metric string, peers ...string) string {
	var parts []string
	for _, p := range peers {
		if x, ok := find(rows, workload, p); ok && x.has(metric) {
			parts = append(parts, fmt.Sprintf("%s %s", p, formatFigure(x, metric0(x.kind, metric))))
		}
	}
	return strings.Join(parts, ", ")
}

// metric0 returns the metric called name of kind.
func metric0(kind, name string) metric {
	i := slices.IndexFunc(metricsOf[kind], func(m metric) bool { return m.name == name })
	if i < 0 {
		return metric{name: name}
	}
	return metricsOf[kind][i]
}

// exactlyOne tells whether metric m of x is 1 in every round.
func exactlyOne(x row, m string) bool { return x.has(m) && x.min(m) == 1 && x.max(m) == 1 }

// evaluateTargets checks the rows against the brief's targets.
func evaluateTargets(cfg config, rows []row) []target {
	var out []target

	// 1. A memo hit costs under 100 ns more than a raw Cache.Get.
	{
		t := target{goal: fmt.Sprintf("cachekit-memo hit overhead over cachekit.Cache.Get under %d ns", hitOverheadMaxNs), state: "n/a"}
		w := hitWorkload()
		m, ok1 := find(rows, w, "cachekit-memo")
		g, ok2 := find(rows, w, "cachekit-cache-get")
		if ok1 && ok2 && m.has("overhead") {
			t.state = state(m.median("overhead") < hitOverheadMaxNs && m.max("misses") == 0)
			t.detail = fmt.Sprintf("+%.1f ns (Call %.1f ns/op, %.2f allocs; Get %.1f ns/op, %.2f allocs; median of per-round differences)",
				m.median("overhead"), m.median("time"), m.median("allocs"), g.median("time"), g.median("allocs"))
		}
		out = append(out, t)
	}

	// 2. One computation for a cold-key stampede in one process.
	{
		w := stampedeWorkload(cfg)
		t := target{goal: fmt.Sprintf("cachekit-memo: exactly 1 computation for %d concurrent callers of a cold key, every round", cfg.callers), state: "n/a"}
		if x, ok := find(rows, w, "cachekit-memo"); ok && x.has("computations") {
			t.state = state(exactlyOne(x, "computations") && x.max("errors") == 0 && exactlyOne(x, "values"))
			t.detail = fmt.Sprintf("%s; all served in %.1f ms; peers: %s", formatFigure(x, metric0(wStampede, "computations")),
				x.median("all-served"), counts(rows, w, "computations", "sturdyc", "go-redis-cache-once-local"))
		}
		out = append(out, t)
	}

	// 3. One computation across processes with Options.Lease.
	for _, st := range []string{storeDisk, storeRedis} {
		w := processWorkload(cfg, st)
		t := target{goal: fmt.Sprintf("cachekit-memo-lease: exactly 1 computation across %d processes on %s, every round", cfg.procs, st), state: "n/a"}
		if x, ok := find(rows, w, "cachekit-memo-lease"); ok && x.has("computations") {
			t.state = state(exactlyOne(x, "computations") && x.max("errors") == 0 && exactlyOne(x, "values"))
			t.detail = fmt.Sprintf("%s; all served in %.1f ms; without the lease: %s", formatFigure(x, metric0(wProcess, "computations")),
				x.median("all-served"), counts(rows, w, "computations", "cachekit-memo", "go-redis-cache-once"))
		}
		out = append(out, t)
	}

	// 4. No miss burst at expiry with XFetch.
	{
		w := expiryWorkload(cfg)
		t := target{goal: "cachekit-memo-xfetch: no caller waits for a computation at expiry, every round", state: "n/a"}
		if x, ok := find(rows, w, "cachekit-memo-xfetch"); ok && x.has("max-burst") {
			t.state = state(x.max("max-burst") == 0 && x.max("errors") == 0)
			t.detail = fmt.Sprintf("max burst %s, %.2f computations/TTL; plain TTL: %s", formatFigure(x, metric0(wExpiry, "max-burst")),
				x.median("computations-per-ttl"), counts(rows, w, "max-burst", "cachekit-memo-ttl"))
		}
		out = append(out, t)
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

// ms converts a duration to milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
