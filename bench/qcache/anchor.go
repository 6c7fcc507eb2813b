package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/cachekit/cachekit/bench/internal/report"
)

// Anchor contenders: the latency of one primary-key SELECT, one goroutine.
const (
	anchorUncached  = "uncached"      // plain pgx through database/sql
	anchorHitMemory = "hit-memory"    // granular policy, memory store, warm
	anchorHitTable  = "hit-table"     // table policy, memory store, warm
	anchorHitRedis  = "hit-redis"     // granular policy, Redis store, warm
	anchorHitTiered = "hit-tiered"    // granular policy, Redis behind an in-process tier, warm
	anchorMiss      = "miss-granular" // granular policy, memory store, never-read key (query + fill)
)

// anchorDBs are the handles the anchor rounds read through.
type anchorDBs map[string]*modeDB

// anchorMode is the mode behind an anchor contender.
var anchorMode = map[string]string{
	anchorUncached:  modeNone,
	anchorHitMemory: modeGranular,
	anchorHitTable:  modeTable,
	anchorHitRedis:  modeGranularRedis,
	anchorHitTiered: modeGranularTiered,
	anchorMiss:      modeGranular,
}

const anchorHot = 1000 // keys the hit contenders cycle through

var anchorSQL = shapes[0].sql // user-pk

// openAnchors opens one handle per anchor contender and warms the caches of
// the hit contenders.
func openAnchors(ctx context.Context, e *pgEnv, names []string, mc modeConfig) (anchorDBs, error) {
	dbs := anchorDBs{}
	base := mc.prefix
	for _, n := range names {
		mc.prefix = fmt.Sprintf("%sanchor:%s:", base, n)
		m, err := openMode(ctx, e, anchorMode[n], mc)
		if err != nil {
			dbs.close()
			return nil, fmt.Errorf("anchor %s: %w", n, err)
		}
		dbs[n] = m
		if n == anchorMiss || n == anchorUncached {
			continue
		}
		for id := range anchorHot {
			if _, err := readAll(ctx, m.db, anchorSQL, int64(id+1)); err != nil {
				dbs.close()
				return nil, fmt.Errorf("anchor %s: warm: %w", n, err)
			}
		}
	}
	return dbs, nil
}

func (d anchorDBs) close() {
	for _, m := range d {
		m.close()
	}
}

// anchorRound reads ops primary keys through one contender and returns the
// latencies (ns) of the reads of the expected kind. missBase is the first
// id the miss contender reads (never read before).
func anchorRound(ctx context.Context, d anchorDBs, name string, ops int, missBase int64) ([]int64, error) {
	m := d[name]
	want := kindHit
	switch name {
	case anchorUncached:
		want = kindUncached
	case anchorMiss:
		want = kindMiss
	}
	lat := make([]int64, 0, ops)
	for i := range ops {
		id := int64(i%anchorHot) + 1
		if name == anchorMiss {
			id = missBase + int64(i)
		}
		rec := &readRec{}
		t0 := time.Now()
		if _, err := readAll(withRec(ctx, rec), m.db, anchorSQL, id); err != nil {
			return nil, fmt.Errorf("anchor %s: %w", name, err)
		}
		d := time.Since(t0)
		if readKind(rec.kind.Load()) == want {
			lat = append(lat, d.Nanoseconds())
		}
	}
	return lat, nil
}

// anchorFigures summarizes one anchor round.
func anchorFigures(lat []int64) []metric {
	s := slices.Clone(lat)
	slices.Sort(s)
	return []metric{
		{"p50", report.Percentile(s, 0.50), "us"},
		{"p99", report.Percentile(s, 0.99), "us"},
		{"n", float64(len(s)), "count"},
	}
}
