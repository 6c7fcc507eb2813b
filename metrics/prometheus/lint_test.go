package prometheus_test

import (
	"context"
	"errors"
	"testing"

	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cachekit/cachekit/httpcache"
	"github.com/cachekit/cachekit/memo"
	"github.com/cachekit/cachekit/memory"
	cacheprom "github.com/cachekit/cachekit/metrics/prometheus"
)

// TestLintAndPedantic feeds every family some events and checks that what
// Collect sends passes client_golang's linter and matches what Describe
// declares (a pedantic registry fails the gathering otherwise).
func TestLintAndPedantic(t *testing.T) {
	t.Parallel()
	reg := prom.NewPedanticRegistry()
	m, err := cacheprom.New(reg, cacheprom.Options{ConstLabels: prom.Labels{"service": "test"}})
	if err != nil {
		t.Fatal(err)
	}
	mo := m.Memo("users")
	for _, k := range []memo.EventKind{memo.Hit, memo.Miss, memo.StaleServed, memo.Coalesced, memo.StoreError} {
		mo.Observe(memo.Event{Kind: k, Func: "f"})
	}
	mo.Observe(memo.Event{Kind: memo.StaleServed, Err: errors.New("down")})
	ho := m.HTTPCache("pages")
	for _, e := range []httpcache.Event{
		{Kind: httpcache.Hit}, {Kind: httpcache.Miss}, {Kind: httpcache.StaleServed, Status: 503},
		{Kind: httpcache.Invalidated, Reason: "tag:post-1"}, {Kind: httpcache.Invalidated, Reason: "unsafe-method"},
	} {
		ho.Observe(e)
	}
	cacheprom.OnEvict[string, int](m, "local")("k", 1, memory.ReasonEvicted)
	local := memory.Must(memory.Options[string, int]{Stats: true})
	local.Set("a", 1)
	m.Memory("local", local)
	load := cacheprom.TimeLoad(m, "users", func(_ context.Context, k int) (int, error) { return k, nil })
	if _, err := load(t.Context(), 1); err != nil {
		t.Fatal(err)
	}

	if _, err := reg.Gather(); err != nil {
		t.Fatalf("pedantic gathering: %v", err)
	}
	problems, err := testutil.CollectAndLint(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}
