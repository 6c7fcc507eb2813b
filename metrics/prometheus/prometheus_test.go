package prometheus_test

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cachekit/cachekit/memory"
	"github.com/cachekit/cachekit/metrics/internal/scenario"
	cacheprom "github.com/cachekit/cachekit/metrics/prometheus"
)

// adapter is a Metrics as the scenarios see it.
type adapter struct{ *cacheprom.Metrics }

func (a adapter) OnEvict(cache string) func(string, int, memory.Reason) {
	return cacheprom.OnEvict[string, int](a.Metrics, cache)
}

func (a adapter) TimeLoad(cache string, load scenario.Load) scenario.Load {
	return cacheprom.TimeLoad(a.Metrics, cache, load)
}

// newMetrics returns a Metrics registered on a fresh registry.
func newMetrics(t *testing.T) (adapter, *prom.Registry) {
	t.Helper()
	reg := prom.NewRegistry()
	m, err := cacheprom.New(reg, cacheprom.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return adapter{m}, reg
}

// compare checks the metrics of reg named in the golden file against it
// (text exposition format).
func compare(t *testing.T, reg *prom.Registry, golden string) {
	t.Helper()
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

func TestMemo(t *testing.T) {
	t.Parallel()
	m, reg := newMetrics(t)
	scenario.Memo(t, m)
	compare(t, reg, "testdata/memo.prom")
	for _, c := range scenario.MemoLoads {
		n, sum := loadCount(t, reg, c.Cache, c.Result)
		if n != c.N || (n > 0) != (sum > 0) {
			t.Errorf("load duration %s/%s: count %d sum %g, want count %d", c.Cache, c.Result, n, sum, c.N)
		}
	}
}

func TestMemory(t *testing.T) {
	t.Parallel()
	m, reg := newMetrics(t)
	scenario.Memory(t, m)
	compare(t, reg, "testdata/memory.prom")
}

func TestQCache(t *testing.T) {
	t.Parallel()
	m, reg := newMetrics(t)
	scenario.QCache(t, m)
	compare(t, reg, "testdata/qcache.prom")
}

// TestSharedName checks that sources of one cache name are summed into
// one series instead of failing the gathering.
func TestSharedName(t *testing.T) {
	t.Parallel()
	m, reg := newMetrics(t)
	scenario.SharedName(m)
	compare(t, reg, "testdata/shared_name.prom")
}

func TestNewTwiceOnOneRegistry(t *testing.T) {
	t.Parallel()
	_, reg := newMetrics(t)
	_, err := cacheprom.New(reg, cacheprom.Options{})
	if are := (prom.AlreadyRegisteredError{}); !errors.As(err, &are) {
		t.Errorf("second New on one registry: %v, want an AlreadyRegisteredError", err)
	}
}
