package main

import (
	"errors"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cachekit/cachekit/bench/internal/report"
)

func TestParseFlags(t *testing.T) {
	t.Parallel()
	parse := func(args ...string) (config, error) {
		fs := flag.NewFlagSet("memo", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		return parseFlags(fs, args)
	}
	cfg, err := parse()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.rounds != 5 || cfg.hitOps != 1_000_000 || cfg.callers != 1000 || cfg.procs != 4 || cfg.periods != 10 ||
		cfg.ttl != 200*time.Millisecond || cfg.compute != 20*time.Millisecond || cfg.contenders != nil ||
		!slices.Equal(cfg.workloads, workloadNames) {
		t.Errorf("defaults: got %+v", cfg)
	}
	// -quick shortens what is not given, and only that.
	cfg, err = parse("-quick", "-hit-ops", "500")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.rounds != 2 || cfg.hitOps != 500 || cfg.periods != 5 {
		t.Errorf("-quick -hit-ops 500: got rounds %d hit-ops %d periods %d, want 2 500 5", cfg.rounds, cfg.hitOps, cfg.periods)
	}
	cfg, err = parse("-workloads", "expiry,hit", "-contenders", "cachekit-memo,sturdyc")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.workloads, []string{wExpiry, wHit}) || !slices.Equal(cfg.contenders, []string{"cachekit-memo", "sturdyc"}) {
		t.Errorf("got workloads %v contenders %v", cfg.workloads, cfg.contenders)
	}
	for _, bad := range [][]string{
		{"-workloads", "nope"},
		{"-contenders", "memcached"},
		{"-procs", "1"},
		{"-rounds", "0"},
		{"-ttl", "0s"},
		{"extra"},
	} {
		if _, err := parse(bad...); err == nil {
			t.Errorf("parseFlags(%q): no error", bad)
		}
	}
}

func TestParseList(t *testing.T) {
	t.Parallel()
	valid := []string{"a", "b", "c"}
	for _, tc := range []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{in: "a", want: []string{"a"}},
		{in: "c, a", want: []string{"c", "a"}},
		{in: "a,a", wantErr: true},
		{in: "a,,b", wantErr: true},
		{in: "d", wantErr: true},
	} {
		got, err := report.ParseList(tc.in, valid)
		if (err != nil) != tc.wantErr || !slices.Equal(got, tc.want) {
			t.Errorf("report.ParseList(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestRotate(t *testing.T) {
	t.Parallel()
	names := []string{"a", "b", "c", "d"}
	for _, tc := range []struct {
		want []string
		k    int
		out  []string
	}{
		{nil, 0, []string{"a", "b", "c", "d"}},
		{nil, 1, []string{"b", "c", "d", "a"}},
		{nil, 6, []string{"c", "d", "a", "b"}},
		{[]string{"d", "b", "x"}, 1, []string{"d", "b"}},
		{[]string{"x"}, 3, nil},
	} {
		if got := rotate(names, tc.want, tc.k); !slices.Equal(got, tc.out) {
			t.Errorf("rotate(%v, %v, %d) = %v, want %v", names, tc.want, tc.k, got, tc.out)
		}
	}
	// The original slice is left alone.
	if !slices.Equal(names, []string{"a", "b", "c", "d"}) {
		t.Errorf("rotate changed its input: %v", names)
	}
}

// TestContenderNames: every workload's contender names are distinct, and
// ours (and only ours) start with "cachekit".
func TestContenderNames(t *testing.T) {
	t.Parallel()
	for _, w := range workloadNames {
		names := namesOf(w)
		if len(names) == 0 {
			t.Errorf("%s: no contenders", w)
		}
		seen := map[string]bool{}
		for _, n := range names {
			if seen[n] {
				t.Errorf("%s: %s twice", w, n)
			}
			seen[n] = true
		}
		if len(abouts(w)) != len(names) {
			t.Errorf("%s: %d descriptions for %d contenders", w, len(abouts(w)), len(names))
		}
	}
	for _, n := range allContenders() {
		if ours(n) != strings.HasPrefix(n, "cachekit-") {
			t.Errorf("ours(%q) = %v", n, ours(n))
		}
	}
}

func TestEpisodes(t *testing.T) {
	t.Parallel()
	ms := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	for _, tc := range []struct {
		starts []time.Duration
		want   int
	}{
		{nil, 0},
		{ms(5), 1},
		{ms(0, 10, 220, 230, 440), 3},     // sturdyc: a second refresh 10 ms after the first
		{ms(440, 0, 230, 10, 220), 3},     // order does not matter
		{ms(0, 20, 40), 1},                // each within the gap of the one before
		{ms(0, 21, 42, 200, 400, 600), 6}, // XFetch-like: each its own
	} {
		if got := episodes(tc.starts, 20*time.Millisecond); got != tc.want {
			t.Errorf("episodes(%v) = %d, want %d", tc.starts, got, tc.want)
		}
	}
}

func TestSummarizeReads(t *testing.T) {
	t.Parallel()
	stats := []readerStats{
		{reads: 3, lat: []int64{1000, 2000, 20_000_000}, waitedOn: map[int64]int64{2: 1}},
		{reads: 2, lat: []int64{3000, 19_000_000}, waitedOn: map[int64]int64{2: 1, 3: 1}, errors: 1, firstErr: "boom"},
	}
	f, first := summarizeReads(stats, time.Second, 200*time.Millisecond)
	if first != "boom" {
		t.Errorf("first error %q, want boom", first)
	}
	want := figures{
		"waiting-per-ttl": 3.0 / 5, "max-burst": 2, "reads": 5, "read-p99": 20_000, "read-max": 20, "errors": 1,
	}
	for k, v := range want {
		if f[k] != v {
			t.Errorf("%s = %v, want %v", k, f[k], v)
		}
	}
}

func TestSummarizeCallers(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	f, first := summarizeCallers(
		[]int{7, 7, 0, 8},
		[]error{nil, nil, boom, nil},
		[]time.Duration{21 * time.Millisecond, 22 * time.Millisecond, 30 * time.Millisecond, 20 * time.Millisecond},
		2)
	if first != "boom" {
		t.Errorf("first error %q, want boom", first)
	}
	want := figures{"computations": 2, "all-served": 30, "values": 2, "errors": 1}
	for k, v := range want {
		if f[k] != v {
			t.Errorf("%s = %v, want %v", k, f[k], v)
		}
	}
}

func TestMergeReplies(t *testing.T) {
	t.Parallel()
	f, first := mergeReplies([]procMsg{
		{Comps: 1, StartNs: 1_000_000, LastNs: 24_000_000, Values: map[string]int{"v": 25}},
		{Comps: 0, StartNs: 2_500_000, LastNs: 26_000_000, Values: map[string]int{"v": 25}, LeaseWaits: 1},
		{Comps: 0, StartNs: 1_500_000, LastNs: 25_000_000, Values: map[string]int{"v": 24}, LeaseWaits: 1, Errors: 1, FirstError: "x"},
	})
	if first != "x" {
		t.Errorf("first error %q, want x", first)
	}
	want := figures{"computations": 1, "lease-waits": 2, "errors": 1, "values": 1, "all-served": 25, "start-skew": 1.5}
	for k, v := range want {
		if f[k] != v {
			t.Errorf("%s = %v, want %v", k, f[k], v)
		}
	}
}

func TestRowsAndFigures(t *testing.T) {
	t.Parallel()
	res := newResults()
	w := "stampede/10g/memory"
	res.add(cell{wStampede, w, "sturdyc"}, figures{"computations": 1})
	res.add(cell{wStampede, w, "cachekit-memo"}, figures{"computations": 1, "errors": 0})
	res.add(cell{wHit, hitWorkload(), "cachekit-memo"}, figures{"time": 50})
	res.add(cell{wStampede, w, "cachekit-memo"}, figures{"computations": 3, "errors": 0})
	res.add(cell{wStampede, w, "cachekit-memo"}, figures{"computations": 1, "errors": 0})
	res.note(cell{wStampede, w, "sturdyc"}, "n")
	res.note(cell{wStampede, w, "sturdyc"}, "n")
	rows := res.rows()
	var order []string
	for _, x := range rows {
		order = append(order, x.kind+" "+x.contender)
	}
	if want := []string{"hit cachekit-memo", "stampede cachekit-memo", "stampede sturdyc"}; !slices.Equal(order, want) {
		t.Errorf("row order %v, want %v", order, want)
	}
	x, ok := find(rows, w, "cachekit-memo")
	if !ok {
		t.Fatal("no row")
	}
	m := metric0(wStampede, "computations")
	if got := formatFigure(x, m); got != "1 [1–3]" {
		t.Errorf("formatFigure = %q, want %q", got, "1 [1–3]")
	}
	if exactlyOne(x, "computations") {
		t.Error("exactlyOne with a round of 3")
	}
	if s, _ := find(rows, w, "sturdyc"); !exactlyOne(s, "computations") || len(s.notes) != 1 {
		t.Errorf("sturdyc row: exactlyOne %v, notes %q", exactlyOne(s, "computations"), s.notes)
	}
	// JSON: medians, "-max" for spread metrics, optional metrics only when
	// non-zero, and the round count.
	got := map[string]float64{}
	for _, r := range jsonRows([]row{x}) {
		got[r.Metric] = r.Value
	}
	want := map[string]float64{"computations": 1, "computations-max": 3, "rounds": 3}
	if len(got) != len(want) {
		t.Errorf("JSON metrics %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("JSON %s = %v, want %v", k, got[k], v)
		}
	}
}

func TestDedupe(t *testing.T) {
	t.Parallel()
	got := dedupe([]string{"a", "b", "a", "a"})
	if want := []string{"a (3 times)", "b"}; !slices.Equal(got, want) {
		t.Errorf("dedupe = %q, want %q", got, want)
	}
}
