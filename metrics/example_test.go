package metrics_test

import (
	"fmt"

	"github.com/cachekit/cachekit/memory"
	"github.com/cachekit/cachekit/metrics"
)

func ExampleSet() {
	var set metrics.Set
	local := memory.Must(memory.Options[string, int]{
		Stats:   true,
		OnEvict: metrics.OnEvict[string, int](&set, "local"),
	})
	defer local.Close()
	set.Memory("local", local)

	local.Set("a", 1)
	local.Get("a")
	local.Get("b")
	local.Delete("a")

	names := map[metrics.Family]string{metrics.Hits: "hits", metrics.Misses: "misses", metrics.Evictions: "evictions", metrics.Entries: "entries"}
	for _, s := range set.Snapshot() {
		if s.Value > 0 {
			fmt.Println(s.Cache, names[s.Family], s.Label, s.Value)
		}
	}
	// Output:
	// local hits  1
	// local misses  1
	// local evictions deleted 1
}
