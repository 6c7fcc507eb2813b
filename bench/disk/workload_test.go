package main

import (
	mrand "math/rand/v2"
	"testing"
)

func TestSizeLabel(t *testing.T) {
	t.Parallel()
	for n, want := range map[int]string{100: "100B", 10240: "10KiB", 1000: "1000B"} {
		if got := sizeLabel(n); got != want {
			t.Errorf("sizeLabel(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestPlan checks what the workloads promise: set-new and delete touch each
// key once across all parts, get-miss keys were never written, every timed
// phase has ops ops, and fill plus set-new cover the whole key space.
func TestPlan(t *testing.T) {
	t.Parallel()
	const keys, ops = 1000, 300
	for _, cc := range concs {
		reqs := group{size: 100, conc: cc}.plan(mrand.New(mrand.NewPCG(1, 2)), keys, ops)
		written := map[int]bool{}
		for _, req := range reqs {
			seen := map[int]bool{}
			total := 0
			for _, p := range req.Parts {
				for _, k := range p.Keys {
					if (req.Workload == wSetNew || req.Workload == wDelete || req.Op == opFill) && seen[k] {
						t.Fatalf("%s %s: key %d twice", cc.name, req.Workload, k)
					}
					seen[k] = true
					total++
					if req.Op == opFill || req.Workload == wSetNew {
						written[k] = true
					}
					if req.Workload == wGetMiss && k < keys {
						t.Fatalf("%s get-miss: key %d is in the written key space", cc.name, k)
					}
				}
			}
			if len(req.Parts) != cc.parts {
				t.Fatalf("%s %s: %d parts, want %d", cc.name, req.Workload, len(req.Parts), cc.parts)
			}
			if req.Record && total != ops {
				t.Errorf("%s %s: %d ops, want %d", cc.name, req.Workload, total, ops)
			}
		}
		if len(written) != keys {
			t.Errorf("%s: fill and set-new wrote %d keys, want %d", cc.name, len(written), keys)
		}
	}
	mix := group{size: 100, mix: true, conc: concs[1]}.plan(mrand.New(mrand.NewPCG(1, 2)), keys, ops)
	for _, p := range mix[1].Parts {
		if len(p.Kinds) != len(p.Keys) {
			t.Fatalf("mix part: %d kinds for %d keys", len(p.Kinds), len(p.Keys))
		}
	}
}
