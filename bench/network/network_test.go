package main

import (
	"flag"
	"io"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseConcs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in      string
		want    []int
		wantErr bool
	}{
		{in: "1,2,32", want: []int{1, 2, 32}},
		{in: " 4 ", want: []int{4}},
		{in: "0", wantErr: true},
		{in: "1,,2", wantErr: true},
		{in: "1,x", wantErr: true},
		{in: "2,2", wantErr: true},
	} {
		got, err := parseConcs(tc.in)
		if (err != nil) != tc.wantErr || !slices.Equal(got, tc.want) {
			t.Errorf("parseConcs(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	parse := func(args ...string) (config, error) {
		fs := flag.NewFlagSet("network", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		return parseFlags(fs, args)
	}
	cfg, err := parse()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.rounds != 5 || cfg.ops != 20000 || cfg.keys != 10000 || cfg.invalWrites != 2000 ||
		cfg.invalSpacing != time.Millisecond || !slices.Equal(cfg.concs, []int{1, 2, 32}) || cfg.contenders != nil {
		t.Errorf("defaults: got %+v", cfg)
	}
	// -quick shortens what is not given, and only that.
	cfg, err = parse("-quick", "-ops", "500")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.rounds != 2 || cfg.ops != 500 || cfg.invalWrites != 500 {
		t.Errorf("-quick -ops 500: got rounds %d ops %d inval-writes %d, want 2 500 500", cfg.rounds, cfg.ops, cfg.invalWrites)
	}
	cfg, err = parse("-contenders", "cachekit-redis,rueidis")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.contenders, []string{"cachekit-redis", "rueidis"}) {
		t.Errorf("-contenders: got %v", cfg.contenders)
	}
	for _, args := range [][]string{
		{"-contenders", "nope"}, {"-rounds", "0"}, {"-batch", "0"}, {"-keys", "5", "-batch", "10"},
		{"-conc", "1,1"}, {"-inval-writes", "-1"}, {"extra"},
	} {
		if _, err := parse(args...); err == nil {
			t.Errorf("parseFlags(%q): no error", args)
		}
	}
}

// TestPlan checks what the workloads promise: ops ops split over conc
// goroutines, keys within the key space, and distinct keys within every
// get-many op.
func TestPlan(t *testing.T) {
	t.Parallel()
	const keys, ops, batch = 95, 300, 10
	for _, w := range workloads {
		for _, conc := range []int{1, 2, 32} {
			p := plan(mrand.New(mrand.NewPCG(1, 2)), w, conc, keys, ops, batch)
			if len(p.parts) != conc {
				t.Fatalf("%s/%d: %d parts", w, conc, len(p.parts))
			}
			if got := p.ops(); got != ops {
				t.Errorf("%s/%d: %d ops, want %d", w, conc, got, ops)
			}
			wantBatch := 1
			if w == wGetMany {
				wantBatch = batch
			}
			if p.batch != wantBatch {
				t.Errorf("%s: batch %d, want %d", w, p.batch, wantBatch)
			}
			for _, pt := range p.parts {
				if len(pt)%p.batch != 0 {
					t.Fatalf("%s/%d: part of %d keys is not whole ops of %d", w, conc, len(pt), p.batch)
				}
				for i := 0; i < len(pt); i += p.batch {
					op := slices.Clone(pt[i : i+p.batch])
					slices.Sort(op)
					if len(slices.Compact(op)) != p.batch {
						t.Fatalf("%s/%d: op %v reads a key twice", w, conc, pt[i:i+p.batch])
					}
					if op[0] < 0 || op[len(op)-1] >= keys {
						t.Fatalf("%s/%d: op %v outside the key space", w, conc, op)
					}
				}
			}
		}
	}
}

func TestDelays(t *testing.T) {
	t.Parallel()
	starts := []int64{100, 200, 0, 400}
	arrivals := []int64{150, 0, 350, 1400}
	d, missed := delays(starts, arrivals)
	if !slices.Equal(d, []int64{50, 1000}) || missed != 1 {
		t.Errorf("delays = %v, missed %d; want [50 1000], 1", d, missed)
	}
}

func TestArrivals(t *testing.T) {
	t.Parallel()
	var a arrivals
	a.reset([]string{"a", "b", "c"})
	a.record([]string{"b", "x"}, 10)
	a.record([]string{"b", "a"}, 20) // b's first arrival stays
	a.record(nil, 30)
	at, flushes := a.take()
	if !slices.Equal(at, []int64{20, 10, 0}) || flushes != 1 {
		t.Errorf("take = %v, %d flushes; want [20 10 0], 1", at, flushes)
	}
	a.reset([]string{"c"})
	if at, flushes := a.take(); !slices.Equal(at, []int64{0}) || flushes != 0 {
		t.Errorf("after reset: %v, %d flushes", at, flushes)
	}
}

func TestCombineAndRatio(t *testing.T) {
	t.Parallel()
	x := combine(cell{wGet, 1, "cachekit-redis"}, []stat{
		{median: 40, p99: 100, throughput: 20000, reads: 10, unexpected: 1},
		{median: 60, p99: 300, throughput: 10000, reads: 10},
		{median: 50, p99: 200, throughput: 30000, reads: 10, errors: 2, firstError: "boom"},
	})
	if x.median != 50 || x.p99 != 200 || x.throughput != 20000 || x.rounds != 3 {
		t.Errorf("combine: median %v p99 %v ops/s %v rounds %d; want 50 200 20000 3", x.median, x.p99, x.throughput, x.rounds)
	}
	if x.errors != 2 || x.firstError != "boom" || unexpectedPct(x) != 100.0/30 {
		t.Errorf("combine: errors %d %q, unexpected %.2f%%", x.errors, x.firstError, unexpectedPct(x))
	}
	if got := ratio(100, 50); got != 2 {
		t.Errorf("ratio(100, 50) = %v, want 2", got)
	}
	if got := ratio(100, 0); got != 0 {
		t.Errorf("ratio(100, 0) = %v, want 0", got)
	}
	if got := x.name(100); got != "get/100B/1g" {
		t.Errorf("name = %q", got)
	}
}

func TestEvaluateTargets(t *testing.T) {
	t.Parallel()
	r := func(w string, conc int, c string, median, thr float64) row {
		return row{cell: cell{w, conc, c}, median: median, throughput: thr}
	}
	rows := []row{
		r(wGet, 1, "cachekit-redis", 50, 20000), r(wGet, 1, "rueidis", 48, 20500), // within 1.1×
		r(wGet, 32, "cachekit-redis", 300, 90000), r(wGet, 32, "rueidis", 250, 110000), // not
		r(wGet, 32, "go-redis-cache", 400, 60000),
		r(wSet, 32, "cachekit-redis", 300, 50000), r(wSet, 32, "go-redis-cache", 200, 70000),
		r(wGet, 1, "cachekit-tiered", 0.8, 900000), r(wGet, 32, "cachekit-tiered", 1.2, 900000),
	}
	inv := []invRow{{contender: "cachekit-tiered", writes: 100, median: 150, p99: 900}}
	got := map[string]string{}
	for _, tg := range evaluateTargets(rows, inv, []int{1, 32}) {
		got[tg.goal] = tg.state
	}
	want := map[string]string{
		"cachekit-redis get within 1.1× of raw rueidis":               "NOT met",
		"cachekit-redis get-many within 1.1× of raw rueidis":          "n/a",
		"cachekit-redis set within 1.1× of raw rueidis":               "n/a",
		"cachekit-redis get faster than go-redis-cache at 32g":        "met",
		"cachekit-redis set faster than go-redis-cache at 32g":        "NOT met",
		"cachekit-tiered L1 hit (get) under 1 µs":                     "NOT met",
		"cross-process invalidation p99 under 5 ms (cachekit-tiered)": "met",
		// No rows for the ContextTimeoutOnly variant in this table.
		"cachekit-redis-ctx get within 1.1× of raw rueidis":      "n/a",
		"cachekit-redis-ctx get-many within 1.1× of raw rueidis": "n/a",
		"cachekit-redis-ctx set within 1.1× of raw rueidis":      "n/a",
	}
	for goal, state := range want {
		if got[goal] != state {
			t.Errorf("%s: got %q, want %q", goal, got[goal], state)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d targets, want %d: %v", len(got), len(want), got)
	}
	// An invalidation that never arrived fails the target whatever the p99.
	inv[0].missed = 1
	for _, tg := range evaluateTargets(rows, inv, []int{1, 32}) {
		if strings.HasPrefix(tg.goal, "cross-process") && tg.state != "NOT met" {
			t.Errorf("with a missed invalidation: %s", tg.state)
		}
	}
}

func TestJSONRows(t *testing.T) {
	t.Parallel()
	rows := []row{{cell: cell{wGetMany, 32, "cachekit-tiered"}, median: 1.23456, p99: 2, throughput: 1000.4, reads: 10, unexpected: 1}}
	inv := []invRow{{contender: "cachekit-redis", writes: 500, median: 140, p99: 600}}
	got := jsonRows(rows, inv, 100)
	var names []string
	for _, x := range got {
		if !strings.HasPrefix(x.Contender, "cachekit") {
			t.Errorf("row %+v: contender does not start with cachekit", x)
		}
		names = append(names, x.Workload+" "+x.Metric+" "+x.Unit)
	}
	want := []string{
		"get-many/100B/32g median us", "get-many/100B/32g p99 us", "get-many/100B/32g throughput ops/s",
		"get-many/100B/32g not-as-expected %",
		"invalidation-delay/100B median us", "invalidation-delay/100B p99 us", "invalidation-delay/100B writes writes",
	}
	if !slices.Equal(names, want) {
		t.Errorf("rows:\n%v\nwant\n%v", names, want)
	}
	if got[0].Value != 1.235 || got[2].Value != 1000 {
		t.Errorf("rounding: median %v, throughput %v", got[0].Value, got[2].Value)
	}
}

func TestContenders(t *testing.T) {
	t.Parallel()
	for _, c := range contenders {
		if ours(c.name) != strings.HasPrefix(c.name, "cachekit") {
			t.Errorf("%s: ours = %v", c.name, ours(c.name))
		}
		for _, p := range c.compare {
			if _, ok := findContender(p); !ok || p == c.name {
				t.Errorf("%s compares with %q, which is no other contender", c.name, p)
			}
		}
		if len(c.compare) > 0 && !ours(c.name) {
			t.Errorf("%s: only our contenders compare", c.name)
		}
	}
}
