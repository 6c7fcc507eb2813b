package otel_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/cachekit/cachekit/memo"
	"github.com/cachekit/cachekit/metrics"
	"github.com/cachekit/cachekit/metrics/internal/scenario"
	cacheotel "github.com/cachekit/cachekit/metrics/otel"
)

// TestScenarios drives real caches (scenario.All) and checks the data
// points collected against testdata/*.txt.
func TestScenarios(t *testing.T) {
	t.Parallel()
	scenario.Check(t, newMetrics, compare, loadCount)
}

// newMetrics returns a Metrics on a MeterProvider read by a manual reader.
func newMetrics(t *testing.T) (scenario.Adapter, *sdkmetric.ManualReader) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { provider.Shutdown(context.Background()) })
	m, err := cacheotel.New(provider, cacheotel.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return scenario.Adapter{Set: &m.Set, TimeLoad: func(cache string, load scenario.Load) scenario.Load {
		return cacheotel.TimeLoad(m, cache, load)
	}}, reader
}

// collect returns the metrics of the scope read by reader.
func collect(t *testing.T, reader *sdkmetric.ManualReader) []metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name == cacheotel.ScopeName {
			return sm.Metrics
		}
	}
	return nil
}

// render writes the integer sums as text: per metric a line with its
// name, unit and kind, then one line per data point, sorted.
func render(t *testing.T, metrics []metricdata.Metrics) map[string]string {
	t.Helper()
	out := make(map[string]string)
	for _, m := range metrics {
		sum, ok := m.Data.(metricdata.Sum[int64])
		if !ok {
			continue
		}
		kind := "up-down counter"
		if sum.IsMonotonic {
			kind = "counter"
		}
		if sum.Temporality != metricdata.CumulativeTemporality {
			t.Errorf("%s: temporality %v, want cumulative", m.Name, sum.Temporality)
		}
		var points []string
		for _, p := range sum.DataPoints {
			var attrs []string
			for _, kv := range p.Attributes.ToSlice() {
				attrs = append(attrs, fmt.Sprintf("%s=%s", kv.Key, kv.Value.String()))
			}
			points = append(points, fmt.Sprintf("%s{%s} %d\n", m.Name, strings.Join(attrs, ","), p.Value))
		}
		slices.Sort(points)
		out[m.Name] = fmt.Sprintf("# %s %s %s\n%s", m.Name, m.Unit, kind, strings.Join(points, ""))
	}
	return out
}

// compare checks the metrics named in the golden file testdata/name.txt
// against it: for each, a line "# name unit kind" and its data points as
// render writes them.
func compare(t *testing.T, reader *sdkmetric.ManualReader, name string) {
	t.Helper()
	golden := "testdata/" + name + ".txt"
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	got := render(t, collect(t, reader))
	if !strings.HasPrefix(string(want), "# ") {
		t.Fatalf("%s: no metric in the golden file", golden)
	}
	var text strings.Builder
	for line := range strings.Lines(string(want)) {
		if name, ok := strings.CutPrefix(line, "# "); ok {
			name, _, _ = strings.Cut(name, " ")
			text.WriteString(got[name])
		}
	}
	if text.String() != string(want) {
		t.Errorf("%s: got\n%s\nwant\n%s", golden, text.String(), want)
	}
}

// loadCount returns the count and sum of the load duration histogram's
// data point of cache and result.
func loadCount(t *testing.T, reader *sdkmetric.ManualReader, cache, result string) (uint64, float64) {
	t.Helper()
	for _, m := range collect(t, reader) {
		if m.Name != "cachekit.load.duration" {
			continue
		}
		if m.Unit != "s" {
			t.Errorf("%s: unit %q, want s", m.Name, m.Unit)
		}
		h := m.Data.(metricdata.Histogram[float64])
		want := attribute.NewSet(cacheotel.CacheKey.String(cache), cacheotel.LoadResultKey.String(result))
		for _, p := range h.DataPoints {
			if p.Attributes.Equals(&want) {
				if !slices.Equal(p.Bounds, metrics.LoadBuckets) {
					t.Errorf("bounds %v, want %v", p.Bounds, metrics.LoadBuckets)
				}
				return p.Count, p.Sum
			}
		}
	}
	return 0, 0
}

// TestClose checks that the counters are reported until Close, and no
// longer after it.
func TestClose(t *testing.T) {
	t.Parallel()
	reader := sdkmetric.NewManualReader()
	m, err := cacheotel.New(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)), cacheotel.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m.Memo("app").Observe(memo.Event{Kind: memo.Hit})
	if got := render(t, collect(t, reader)); len(got) == 0 {
		t.Fatal("before Close: no counters")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if got := render(t, collect(t, reader)); len(got) != 0 {
		t.Errorf("after Close: %v, want no counters", got)
	}
}

func TestNewInvalid(t *testing.T) {
	t.Parallel()
	if _, err := cacheotel.New(nil, cacheotel.Options{}); err == nil {
		t.Error("New(nil) succeeded, want an error")
	}
	provider := sdkmetric.NewMeterProvider()
	if _, err := cacheotel.New(provider, cacheotel.Options{Buckets: []float64{1, 0.5}}); err == nil {
		t.Error("New with decreasing buckets succeeded, want an error")
	}
}
