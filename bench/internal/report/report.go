// Package report holds what the bench suites share for their reports:
// nearest-rank percentiles, medians over rounds, the JSON rows of
// results/*.json, the load average and module versions of the header, the
// loopback check on server addresses, and the flag and rotation helpers.
// Each suite keeps its own table layout.
package report

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
)

// Percentile is the nearest-rank percentile (p in [0, 1]) of latencies in
// nanoseconds, sorted ascending, returned in µs; 0 for no latencies.
// bench/disk/diskcache_bench.py uses the same rule.
func Percentile(sorted []int64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := max(1, int(math.Ceil(p*float64(len(sorted)))))
	return float64(sorted[min(rank, len(sorted))-1]) / 1e3
}

// Median is the median of v (the mean of the two middle values for an even
// count), without changing v; 0 for an empty v.
func Median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Round rounds v to the given number of decimal digits.
func Round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// Row is one line of a results/*.json file: one metric of one workload and
// contender, for example {"get/100B/1g", "cachekit-redis", "median", 41.2, "us"}.
type Row struct {
	Workload  string  `json:"workload"`
	Contender string  `json:"contender"`
	Metric    string  `json:"metric"`
	Value     float64 `json:"value"`
	Unit      string  `json:"unit"`
}

// WriteJSON writes rows as an indented JSON list to path, creating its
// directory, and replaces the file atomically (write, then rename).
func WriteJSON(path string, rows []Row) error {
	if rows == nil {
		rows = []Row{}
	}
	b, err := json.MarshalIndent(rows, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Finish ends a suite's run: it writes rows to out (when out is not
// empty) and says so, then lists the problems met, which make it return an
// error.
func Finish(out string, rows []Row, problems []string) error {
	if out != "" {
		if err := WriteJSON(out, rows); err != nil {
			return err
		}
		fmt.Printf("wrote %s (%d rows)\n", out, len(rows))
	}
	if len(problems) == 0 {
		return nil
	}
	fmt.Println("\nproblems:")
	for _, p := range problems {
		fmt.Println("  " + p)
	}
	return fmt.Errorf("%d problems (see above)", len(problems))
}

// LoadAvg returns the 1, 5 and 15 minute load averages from /proc/loadavg,
// or "?" where there is none.
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// Loopback refuses any server address but 127.0.0.0/8, ::1 or localhost:
// the suites send traffic nowhere else. name is the environment variable
// the address came from, for the message.
func Loopback(name, addr string) error {
	if addr == "" {
		return fmt.Errorf("%s unset (make bench-disk and make bench-network start the servers)", name)
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s=%q: %w", name, addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%s=%q is not a loopback address; refusing to benchmark it", name, addr)
	}
	return nil
}

// Latencies summarizes one phase's per-op latencies (ns) timed between
// startNs and endNs (Unix ns): median, p99, max and mean in µs, and ops/s
// over the window.
type Latencies struct {
	N                      int
	Median, P99, Max, Mean float64 // µs
	Throughput             float64 // ops/s
}

// Summarize computes Latencies; latNs is not modified.
func Summarize(latNs []int64, startNs, endNs int64) Latencies {
	lat := slices.Clone(latNs)
	slices.Sort(lat)
	l := Latencies{N: len(lat), Median: Percentile(lat, 0.50), P99: Percentile(lat, 0.99), Max: Percentile(lat, 1)}
	if len(lat) > 0 {
		var sum int64
		for _, v := range lat {
			sum += v
		}
		l.Mean = float64(sum) / float64(len(lat)) / 1e3
	}
	if d := endNs - startNs; d > 0 {
		l.Throughput = float64(len(lat)) / (float64(d) / 1e9)
	}
	return l
}

// Rotate returns a copy of names rotated left by k: the order in which a
// round runs its contenders, so that none always runs first.
func Rotate(names []string, k int) []string {
	if len(names) == 0 {
		return nil
	}
	k %= len(names)
	return slices.Concat(names[k:], names[:k])
}

// ParseList splits a comma-separated flag value whose items must each be
// one of valid, none twice; it keeps the order given.
func ParseList(s string, valid []string) ([]string, error) {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		switch {
		case !slices.Contains(valid, f):
			return nil, fmt.Errorf("no %q (have %s)", f, strings.Join(valid, ", "))
		case slices.Contains(out, f):
			return nil, fmt.Errorf("%q given twice", f)
		}
		out = append(out, f)
	}
	return out, nil
}

// ModVersion is the version of a module in this binary's build (its
// replacement's, if replaced), for a run's header; "?" when unknown.
func ModVersion(path string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "?"
	}
	for _, m := range bi.Deps {
		if m.Path == path {
			if m.Replace != nil {
				return m.Replace.Version
			}
			return m.Version
		}
	}
	return "?"
}
