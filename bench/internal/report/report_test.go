package report

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestPercentile(t *testing.T) {
	t.Parallel()
	lat := make([]int64, 100)
	for i := range lat {
		lat[i] = int64(i+1) * 1000 // 1..100 µs
	}
	for _, tc := range []struct {
		p    float64
		want float64
	}{{0, 1}, {0.50, 50}, {0.99, 99}, {1, 100}} {
		if got := Percentile(lat, tc.p); got != tc.want {
			t.Errorf("Percentile(1..100 µs, %v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := Percentile(nil, 0.5); got != 0 {
		t.Errorf("Percentile(nil, 0.5) = %v, want 0", got)
	}
	// Nearest rank on few samples: the p99 of 10 values is the largest.
	if got := Percentile([]int64{1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10000}, 0.99); got != 10 {
		t.Errorf("Percentile(10 values, 0.99) = %v, want 10", got)
	}
}

func TestMedian(t *testing.T) {
	t.Parallel()
	v := []float64{3, 1, 2, 10}
	if got := Median(v); got != 2.5 {
		t.Errorf("Median(3,1,2,10) = %v, want 2.5", got)
	}
	if !slices.Equal(v, []float64{3, 1, 2, 10}) {
		t.Errorf("Median changed its argument: %v", v)
	}
	if got := Median([]float64{7, 1, 4}); got != 4 {
		t.Errorf("Median(7,1,4) = %v, want 4", got)
	}
	if got := Median(nil); got != 0 {
		t.Errorf("Median(nil) = %v, want 0", got)
	}
}

func TestWriteJSON(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "results", "x.json")
	rows := []Row{{"get/100B/1g", "cachekit-redis", "median", Round(41.234, 2), "us"}}
	if err := WriteJSON(path, rows); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got []Row
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := []Row{{"get/100B/1g", "cachekit-redis", "median", 41.23, "us"}}
	if !slices.Equal(got, want) {
		t.Errorf("read back %v, want %v", got, want)
	}
	var raw []map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"workload", "contender", "metric", "value", "unit"} {
		if _, ok := raw[0][k]; !ok {
			t.Errorf("row %v has no field %q", raw[0], k)
		}
	}
}

func TestLoopback(t *testing.T) {
	t.Parallel()
	for addr, ok := range map[string]bool{
		"127.0.0.1:6379": true, "localhost:6379": true, "[::1]:6379": true, "127.0.0.2:1": true,
		"10.0.0.1:6379": false, "example.com:6379": false, "": false, "127.0.0.1": false,
	} {
		if err := Loopback("ADDR", addr); (err == nil) != ok {
			t.Errorf("Loopback(%q) = %v, want ok=%v", addr, err, ok)
		}
	}
}

func TestSummarize(t *testing.T) {
	lat := []int64{4000, 1000, 3000, 2000} // ns
	l := Summarize(lat, 0, 2e9)
	if l.N != 4 || l.Median != 2 || l.P99 != 4 || l.Max != 4 || l.Mean != 2.5 || l.Throughput != 2 {
		t.Fatalf("Summarize = %+v", l)
	}
	if lat[0] != 4000 {
		t.Fatal("Summarize sorted its argument")
	}
	if l := Summarize(nil, 0, 0); l != (Latencies{}) {
		t.Fatalf("Summarize(nil) = %+v", l)
	}
}
