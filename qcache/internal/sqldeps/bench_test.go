package sqldeps

import (
	"sync"
	"testing"
)

const benchSQL = "SELECT * FROM users u JOIN orders o ON o.user_id = u.id WHERE u.id = $1 AND o.status IN ('new', 'paid') AND u.deleted_at IS NULL ORDER BY o.id LIMIT 10"

func BenchmarkAnalyze(b *testing.B) {
	for _, d := range both {
		if d == Postgres && !cgoEnabled {
			continue
		}
		sql := benchSQL
		if d == SQLite {
			sql = "SELECT * FROM `users` u JOIN `orders` o ON o.user_id = u.id WHERE u.id = ? AND o.status IN ('new', 'paid') AND u.deleted_at IS NULL ORDER BY o.id LIMIT 10"
		}
		b.Run(d.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Analyze(d, sql); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestConcurrent runs Analyze from several goroutines (run with -race).
func TestConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				for _, c := range depCases[i%len(depCases):] {
					for _, d := range both {
						if d == Postgres && !cgoEnabled {
							continue
						}
						Analyze(d, c.sql) //nolint:errcheck // some cases are for one dialect only
					}
				}
			}
		}()
	}
	wg.Wait()
}
