package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/xml"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/disk"
	"github.com/cachekit/cachekit/memcached"
	"github.com/cachekit/cachekit/memory"
	"github.com/cachekit/cachekit/redis"
)

// benchCommand is "cachekit bench".
var benchCommand = &command{
	name:    "bench",
	summary: "benchmark the stores side by side and chart the result",
	help: `bench measures Set and then Get of small values on cachekit's stores, one
after the other, for -duration each: the memory store and a disk store in a
temporary directory (removed afterwards), plus Redis and Memcached when
-redis and -memcached give their addresses (their keys live under a prefix
of their own, cleared afterwards). It needs no server and no setup: run it on
the machine you deploy to.

One goroutine calls the store in a loop over -keys keys with -size byte
values: the figures are one caller's latency (ns/op) and rate (ops/s), not
the stores' throughput under contention. Run it several times: a single
short run moves by tens of percent. The side-by-side suites with peers and
their charts are in the repository's bench/ module and docs/benchmarks.md.

It prints a table and writes a bar chart of ops/s (log scale) as SVG to
-chart ("" for none). With -json it prints {"duration", "value_size",
"keys", "results": [{"store", "op", "ops", "ns_per_op", "ops_per_sec"}],
"chart"}; ns_per_op and ops_per_sec are numbers, duration a Go duration.`,
	setup: setupBench,
}

// benchResult is one store and operation's measurement.
type benchResult struct {
	Store     string  `json:"store"`
	Op        string  `json:"op"`
	Ops       int64   `json:"ops"`
	NsPerOp   float64 `json:"ns_per_op"`
	OpsPerSec float64 `json:"ops_per_sec"`
}

// benchReport is the output of bench -json.
type benchReport struct {
	Duration  string        `json:"duration"`
	ValueSize int           `json:"value_size"`
	Keys      int           `json:"keys"`
	Results   []benchResult `json:"results"`
	Chart     string        `json:"chart"`
}

// benchStore is a store under test and how to dispose of it.
type benchStore struct {
	name  string
	store cachekit.Store
	clear cachekit.Clearer // a server store: its keys are cleared before Close
	dir   string           // a disk store: its directory is removed after Close
}

func setupBench(fs *flag.FlagSet) action {
	dur := fs.Duration("duration", 500*time.Millisecond, "measure each operation on each store for this `duration`")
	size := fs.Int("size", 100, "value size in `bytes`")
	nkeys := fs.Int("keys", 1000, "number of distinct `keys`")
	redisAddr := fs.String("redis", "", "also measure the Redis server at `host:port`")
	mcAddr := fs.String("memcached", "", "also measure the Memcached server at `host:port`")
	chart := fs.String("chart", "cachekit-bench.svg", "write the chart to this SVG `file` (\"\" for none)")
	jsonOut := fs.Bool("json", false, "print one JSON document instead of the table")
	return func(ctx context.Context, stdout, stderr io.Writer, args []string) error {
		if err := noArgs(args); err != nil {
			return err
		}
		switch {
		case *dur <= 0:
			return usagef("-duration %v: want a positive duration", *dur)
		case *size < 0:
			return usagef("-size %d: want 0 or more", *size)
		case *nkeys <= 0:
			return usagef("-keys %d: want 1 or more", *nkeys)
		}
		stores, err := openBenchStores(ctx, *redisAddr, *mcAddr)
		defer closeBenchStores(stores, stderr)
		if err != nil {
			return err
		}
		var p *progress
		if !*jsonOut {
			p = startProgress(stderr, "bench", int64(2*len(stores)))
		}
		keys := make([]string, *nkeys)
		for i := range keys {
			keys[i] = "bench:" + strconv.Itoa(i)
		}
		val := bytes.Repeat([]byte("v"), *size)
		var results []benchResult
		for _, bs := range stores {
			set, get, err := benchOne(ctx, bs.store, keys, val, *dur, p)
			if err != nil {
				p.finish()
				return fmt.Errorf("bench %s: %w", bs.name, err)
			}
			set.Store, get.Store = bs.name, bs.name
			results = append(results, set, get)
		}
		p.finish()
		rep := benchReport{Duration: dur.String(), ValueSize: *size, Keys: *nkeys, Results: results, Chart: *chart}
		if *chart != "" {
			title := fmt.Sprintf("cachekit bench: ops/s of one goroutine, %d-byte values, %d keys, %v per run", *size, *nkeys, *dur)
			if err := os.WriteFile(*chart, benchChart(title, results), 0o644); err != nil {
				return fmt.Errorf("write the chart: %w", err)
			}
		}
		if *jsonOut {
			return writeJSON(stdout, rep)
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "store\top\tns/op\tops/s\t")
		for _, r := range results {
			fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.0f\t\n", r.Store, r.Op, r.NsPerOp, r.OpsPerSec)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if *chart != "" {
			fmt.Fprintf(stdout, "chart: %s\n", *chart)
		}
		return nil
	}
}

// openBenchStores opens the stores to measure. On error the stores opened
// so far are returned too, for closeBenchStores.
func openBenchStores(ctx context.Context, redisAddr, mcAddr string) ([]benchStore, error) {
	var stores []benchStore
	mem, err := memory.NewStore(memory.StoreOptions{})
	if err != nil {
		return nil, err
	}
	stores = append(stores, benchStore{name: "memory", store: mem})

	dir, err := os.MkdirTemp("", "cachekit-bench-")
	if err != nil {
		return stores, err
	}
	d, err := disk.New(ctx, disk.Options{Dir: dir})
	if err != nil {
		os.RemoveAll(dir)
		return stores, err
	}
	stores = append(stores, benchStore{name: "disk", store: d, dir: dir})

	// The server stores write under a prefix of their own, which Clear
	// removes afterwards: never anything else of the server's.
	suffix := rand.Text()[:10]
	if redisAddr != "" {
		r, err := redis.New(ctx, redis.Options{Addrs: []string{redisAddr}, Prefix: "cachekit-bench:" + suffix + ":"})
		if err != nil {
			return stores, fmt.Errorf("open redis at %s: %w", redisAddr, err)
		}
		stores = append(stores, benchStore{name: "redis", store: r, clear: r})
	}
	if mcAddr != "" {
		m, err := memcached.New(ctx, memcached.Options{Addrs: []string{mcAddr}, Prefix: "cachekit-bench-" + suffix})
		if err != nil {
			return stores, fmt.Errorf("open memcached at %s: %w", mcAddr, err)
		}
		stores = append(stores, benchStore{name: "memcached", store: m, clear: m})
	}
	return stores, nil
}

// closeBenchStores clears the server stores' keys, closes every store and
// removes the disk store's directory, reporting failures on stderr.
func closeBenchStores(stores []benchStore, stderr io.Writer) {
	// Its own context: an interrupted bench still cleans up.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, bs := range stores {
		if bs.clear != nil {
			if err := bs.clear.Clear(ctx); err != nil {
				fmt.Fprintf(stderr, "cachekit bench: clear the %s keys: %v\n", bs.name, err)
			}
		}
		if err := bs.store.Close(); err != nil {
			fmt.Fprintf(stderr, "cachekit bench: close %s: %v\n", bs.name, err)
		}
		if bs.dir != "" {
			if err := os.RemoveAll(bs.dir); err != nil {
				fmt.Fprintf(stderr, "cachekit bench: remove %s: %v\n", bs.dir, err)
			}
		}
	}
}

// benchOne measures Set and then Get on s for d each, and adds one unit to
// p after each.
func benchOne(ctx context.Context, s cachekit.Store, keys []string, val []byte, d time.Duration, p *progress) (set, get benchResult, err error) {
	set, err = benchLoop(ctx, "set", d, func(i int) error {
		return s.Set(ctx, keys[i%len(keys)], val, cachekit.NoExpiry)
	})
	if err != nil {
		return set, get, err
	}
	p.add(1)
	// A short Set run may not have reached every key: write the others,
	// untimed, so that every Get hits.
	for i := int(set.Ops); i < len(keys); i++ {
		if err := s.Set(ctx, keys[i], val, cachekit.NoExpiry); err != nil {
			return set, get, fmt.Errorf("set: %w", err)
		}
	}
	get, err = benchLoop(ctx, "get", d, func(i int) error {
		v, err := s.Get(ctx, keys[i%len(keys)])
		if err == nil && len(v) != len(val) {
			err = fmt.Errorf("got %d bytes, want %d", len(v), len(val))
		}
		return err
	})
	p.add(1)
	return set, get, err
}

// benchCheckEvery is how many operations pass between two looks at the
// clock (and the context).
const benchCheckEvery = 16

// benchLoop calls op(0), op(1), ... for about d and measures it.
func benchLoop(ctx context.Context, name string, d time.Duration, op func(i int) error) (benchResult, error) {
	r := benchResult{Op: name}
	start := time.Now()
	var elapsed time.Duration
	for i := 0; ; i++ {
		if i%benchCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return r, err
			}
			if elapsed = time.Since(start); elapsed >= d && i > 0 {
				r.Ops = int64(i)
				break
			}
		}
		if err := op(i); err != nil {
			return r, fmt.Errorf("%s: %w", name, err)
		}
	}
	r.NsPerOp = float64(elapsed.Nanoseconds()) / float64(r.Ops)
	r.OpsPerSec = float64(r.Ops) / elapsed.Seconds()
	return r, nil
}

// benchChart draws results as an SVG horizontal bar chart of ops/s on a
// log scale (the stores differ by orders of magnitude), one bar per store
// and operation, each labeled with its figures.
func benchChart(title string, results []benchResult) []byte {
	const (
		left, right, top, barH, gap = 90, 330, 50, 18, 4
		plotW                       = 420
	)
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, r := range results {
		lo, hi = min(lo, math.Log10(r.OpsPerSec)), max(hi, math.Log10(r.OpsPerSec))
	}
	lo, hi = math.Floor(lo)-1, math.Ceil(hi) // the smallest bar keeps a decade of length
	if len(results) == 0 {
		lo, hi = 0, 1
	}
	x := func(v float64) float64 { return (math.Log10(v) - lo) / (hi - lo) * plotW }
	height := top + len(results)*(barH+gap) + 40
	var b bytes.Buffer
	esc := func(s string) string {
		var e bytes.Buffer
		xml.EscapeText(&e, []byte(s)) // writes to a buffer: no error
		return e.String()
	}
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n",
		left+plotW+right, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="10" y="24" font-size="14">%s</text>`+"\n", esc(title))
	axisY := top + len(results)*(barH+gap)
	for dec := lo; dec <= hi; dec++ {
		gx := left + (dec-lo)/(hi-lo)*plotW
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", gx, top-4, gx, axisY)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#555">1e%d</text>`+"\n", gx, axisY+16, int(dec))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" fill="#555">ops/s (log scale)</text>`+"\n", left+plotW/2, axisY+32)
	colors := map[string]string{"set": "#ee854a", "get": "#4878d0"}
	for i, r := range results {
		y := top + i*(barH+gap)
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s %s</text>`+"\n", left-6, y+barH-5, esc(r.Store), esc(r.Op))
		fmt.Fprintf(&b, `<rect class="bar" x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n",
			left, y, max(x(r.OpsPerSec), 1), barH, colors[r.Op])
		fmt.Fprintf(&b, `<text x="%.1f" y="%d">%.0f ops/s, %.0f ns/op</text>`+"\n",
			float64(left)+max(x(r.OpsPerSec), 1)+6, y+barH-5, r.OpsPerSec, r.NsPerOp)
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}
