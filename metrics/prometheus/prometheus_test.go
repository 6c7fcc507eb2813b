package prometheus_test

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cachekit/cachekit/memo"
	"github.com/cachekit/cachekit/metrics/internal/scenario"
	cacheprom "github.com/cachekit/cachekit/metrics/prometheus"
)

// newMetrics returns a Metrics registered on a fresh registry.
func newMetrics(t *testing.T) (scenario.Adapter, *prom.Registry) {
	t.Helper()
	reg := prom.NewRegistry()
	m, err := cacheprom.New(reg, cacheprom.Options{})
	if err != nil {
		t.Fatal(err)
	}
	timeLoad := func(cache string, load scenario.Load) scenario.Load { return cacheprom.TimeLoad(m, cache, load) }
	return scenario.Adapter{Set: &m.Set, TimeLoad: timeLoad}, reg
}

// compare checks the metrics of reg named in the golden file testdata/name.prom
// against it (text exposition format).
func compare(t *testing.T, reg *prom.Registry, name string) {
	t.Helper()
	golden := "testdata/" + name + ".prom"
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for line := range strings.Lines(string(want)) {
		if f := strings.Fields(line); len(f) == 4 && f[1] == "TYPE" {
			names = append(names, f[2])
		}
	}
	if err := testutil.GatherAndCompare(reg, bytes.NewReader(want), names...); err != nil {
		t.Errorf("%s: %v", golden, err)
	}
}

// loadCount returns the sample count and sum of the load histogram of
// cache and result.
func loadCount(t *testing.T, reg *prom.Registry, cache, result string) (uint64, float64) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "cachekit_load_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["cache"] == cache && labels["result"] == result {
				return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
			}
		}
	}
	return 0, 0
}

// TestScenarios drives real caches (scenario.All) and checks the metrics
// gathered against testdata/*.prom.
func TestScenarios(t *testing.T) {
	t.Parallel()
	scenario.Check(t, newMetrics, compare, loadCount)
}

func TestNewTwiceOnOneRegistry(t *testing.T) {
	t.Parallel()
	_, reg := newMetrics(t)
	_, err := cacheprom.New(reg, cacheprom.Options{})
	if are := (prom.AlreadyRegisteredError{}); !errors.As(err, &are) {
		t.Errorf("second New on one registry: %v, want an AlreadyRegisteredError", err)
	}
}

func TestNewInvalidBuckets(t *testing.T) {
	t.Parallel()
	if _, err := cacheprom.New(nil, cacheprom.Options{Buckets: []float64{1, 0.5}}); err == nil {
		t.Error("New with decreasing buckets succeeded, want an error")
	}
}

// TestInvalidCacheName checks that a cache name that is not valid UTF-8
// fails the gathering with an error instead of a panic.
func TestInvalidCacheName(t *testing.T) {
	t.Parallel()
	a, reg := newMetrics(t)
	a.Memo("\xff").Observe(memo.Event{Kind: memo.Hit})
	if _, err := reg.Gather(); err == nil {
		t.Error("Gather succeeded, want an error for the invalid label value")
	}
}
