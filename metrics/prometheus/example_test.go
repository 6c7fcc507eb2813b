package prometheus_test

import (
	"context"
	"fmt"
	"log"
	"time"

	prom "github.com/prometheus/client_golang/prometheus"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/memo"
	"github.com/cachekit/cachekit/memory"
	cacheprom "github.com/cachekit/cachekit/metrics/prometheus"
)

func Example() {
	ctx := context.Background()
	reg := prom.NewRegistry() // or prometheus.DefaultRegisterer, served by promhttp
	m, err := cacheprom.New(reg, cacheprom.Options{})
	if err != nil {
		log.Fatal(err)
	}

	store, _ := memory.NewStore(memory.StoreOptions{})
	cache := cachekit.Must[string](store, cachekit.Options{})
	defer cache.Close()
	greet := memo.Must(cache, "greet", cacheprom.TimeLoad(m, "greet", func(_ context.Context, name string) (string, error) {
		return "hello " + name, nil
	}), memo.Options{TTL: time.Minute, Observer: m.Memo("greet")})
	defer greet.Close()

	for range 3 {
		greet.Call(ctx, "ann") // one miss, then two hits
	}

	families, err := reg.Gather()
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range families {
		for _, s := range f.GetMetric() {
			switch f.GetName() {
			case "cachekit_hits_total", "cachekit_misses_total":
				fmt.Println(f.GetName(), s.GetCounter().GetValue())
			case "cachekit_load_duration_seconds":
				fmt.Println(f.GetName(), s.GetLabel()[1].GetValue(), "count", s.GetHistogram().GetSampleCount())
			}
		}
	}
	// Output:
	// cachekit_hits_total 2
	// cachekit_load_duration_seconds error count 0
	// cachekit_load_duration_seconds ok count 1
	// cachekit_misses_total 1
}
