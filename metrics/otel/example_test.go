package otel_test

import (
	"context"
	"fmt"
	"log"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/memo"
	"github.com/cachekit/cachekit/memory"
	cacheotel "github.com/cachekit/cachekit/metrics/otel"
)

func Example() {
	ctx := context.Background()
	// An application uses its exporter's reader (OTLP, Prometheus, ...).
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer provider.Shutdown(ctx)
	m, err := cacheotel.New(provider, cacheotel.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	store, _ := memory.NewStore(memory.StoreOptions{})
	cache := cachekit.Must[string](store, cachekit.Options{})
	defer cache.Close()
	greet := memo.Must(cache, "greet", cacheotel.TimeLoad(m, "greet", func(_ context.Context, name string) (string, error) {
		return "hello " + name, nil
	}), memo.Options{TTL: time.Minute, Observer: m.Memo("greet")})
	defer greet.Close()

	for range 3 {
		greet.Call(ctx, "ann") // one miss, then two hits
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		log.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, metric := range sm.Metrics {
			switch data := metric.Data.(type) {
			case metricdata.Sum[int64]:
				if metric.Name == "cachekit.hits" || metric.Name == "cachekit.misses" {
					fmt.Println(metric.Name, data.DataPoints[0].Value)
				}
			case metricdata.Histogram[float64]:
				fmt.Println(metric.Name, metric.Unit, "count", data.DataPoints[0].Count)
			}
		}
	}
	// Output:
	// cachekit.load.duration s count 1
	// cachekit.hits 2
	// cachekit.misses 1
}
