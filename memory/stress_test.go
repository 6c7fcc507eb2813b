package memory

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestStress runs Get, Set, Add, Update, Touch, Delete, GetOrLoad, All and
// Clear-free churn concurrently, with short TTLs raced by the expiry
// goroutine and a bound that forces evictions, then checks the invariants:
//   - no lost Set: each owner goroutine sets its own keys and reads them
//     back at once; a miss or another value is allowed only if OnEvict
//     reported that key evicted in between;
//   - Len stays within the bound, during the run and after quiescence,
//     where it matches the entries All yields;
//   - OnEvict's evictions and expirations match Stats.
func TestStress(t *testing.T) {
	t.Parallel()
	// Three value kinds: a word (written in place), a pointer (written in
	// place) and a two-word struct (always a new node); see value.go.
	t.Run("int", func(t *testing.T) {
		t.Parallel()
		stress(t, func(i int) int { return i }, func(v int) int { return v })
	})
	t.Run("pointer", func(t *testing.T) {
		t.Parallel()
		stress(t, func(i int) *int { return &i }, func(v *int) int { return *v })
	})
	t.Run("struct", func(t *testing.T) {
		t.Parallel()
		stress(t, func(i int) [2]int { return [2]int{i, -i} }, func(v [2]int) int { return v[0] })
	})
}

// stress is the body of TestStress for values of type V, made from ints
// by wrap and read back by unwrap.
func stress[V any](t *testing.T, wrap func(int) V, unwrap func(V) int) {
	const (
		bound   = 200
		owners  = 4
		others  = 4
		shared  = 1000 // keys 0..shared-1 are everybody's
		ownKeys = 300  // owner w has keys shared+w*ownKeys+...
		rounds  = 4000
	)
	var evictedPairs sync.Map // [2]int{key, value} evicted
	var evictions, expirations atomic.Int64
	c := newCache(t, Options[int, V]{
		MaxEntries:      bound,
		Stats:           true,
		CleanupInterval: time.Millisecond,
		OnEvict: func(k int, vv V, r Reason) {
			v := unwrap(vv)
			switch r {
			case ReasonEvicted:
				evictions.Add(1)
				evictedPairs.Store([2]int{k, v}, true)
			case ReasonExpired:
				expirations.Add(1)
			}
		},
	})
	// A read-back miss is checked after quiescence: OnEvict runs after the
	// evicting write released the lock, so it may not have run yet.
	var suspectsMu sync.Mutex
	var suspects [][2]int
	var wg sync.WaitGroup
	for w := range owners {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range rounds {
				k := shared + w*ownKeys + r.IntN(ownKeys)
				c.Set(k, wrap(i))
				if vv, ok := c.Get(k); !ok || unwrap(vv) != i {
					v := 0
					if ok {
						v = unwrap(vv)
					}
					if ok {
						t.Errorf("Get(%d) after Set(%d) = %d", k, i, v)
						return
					}
					suspectsMu.Lock()
					suspects = append(suspects, [2]int{k, i})
					suspectsMu.Unlock()
				}
				if n := c.Len(); n > bound {
					t.Errorf("Len = %d > %d", n, bound)
					return
				}
			}
		})
	}
	for w := range others {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 2))
			for i := range rounds {
				k := r.IntN(shared)
				switch i % 10 {
				case 0, 1:
					c.SetWithTTL(k, wrap(k), time.Duration(r.IntN(3))*time.Millisecond)
				case 2:
					c.Add(k, wrap(k), 0)
				case 3:
					c.Delete(k)
				case 4:
					c.Update(k, func(old V) (V, error) { return wrap(unwrap(old)), nil })
				case 5:
					c.Touch(k, time.Duration(r.IntN(3)+1)*time.Millisecond)
				case 6:
					for range c.All() {
					}
				case 7:
					c.GetOrLoad(t.Context(), k, func(_ context.Context, k int) (V, error) { return wrap(k), nil })
				default:
					if vv, ok := c.Get(k); ok && unwrap(vv) != k {
						v := unwrap(vv)
						t.Errorf("Get(%d) = %d: another key's value", k, v)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for _, kv := range suspects {
		if _, ok := evictedPairs.Load(kv); !ok {
			t.Errorf("Get(%d) after Set(%d) missed, and OnEvict never saw that value evicted", kv[0], kv[1])
		}
	}
	c.Close() // stops the expiry goroutine: nothing changes from here on
	checkConsistent(t, c.c)
	l := c.Len() // before All: a Get below may remove an entry that expired since
	n := 0
	for k, vv := range c.All() {
		n++
		v := unwrap(vv)
		if gotv, ok := c.Get(k); !ok || unwrap(gotv) != v {
			got := 0
			if ok {
				got = unwrap(gotv)
			}
			// Only an expiry between All and Get may explain a miss.
			if ok || k >= shared {
				t.Errorf("All yielded %d=%d, Get = %d, %v", k, v, got, ok)
			}
		}
	}
	if l > bound || n > l {
		t.Errorf("after quiescence: Len = %d, All yielded %d, bound %d", l, n, bound)
	}
	s := c.Stats()
	if int64(s.Evictions) != evictions.Load() || s.Evictions == 0 {
		t.Errorf("Stats.Evictions = %d, OnEvict saw %d evictions", s.Evictions, evictions.Load())
	}
	if int64(s.Expirations) != expirations.Load() {
		t.Errorf("Stats.Expirations = %d, OnEvict saw %d expirations", s.Expirations, expirations.Load())
	}
}

// checkConsistent verifies, under the lock, that the index, the policy's
// lists and the entry count agree.
func checkConsistent[K comparable, V any](t *testing.T, c *core[K, V]) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	inIndex := make(map[*node[K, V]]bool)
	c.index.all(func(n *node[K, V]) bool {
		if inIndex[n] {
			t.Errorf("node %v twice in the index", n.key)
		}
		if n.removed {
			t.Errorf("removed node %v in the index", n.key)
		}
		inIndex[n] = true
		return true
	})
	linked := 0
	for _, l := range []*nodeList[K, V]{&c.policy.window, &c.policy.probation, &c.policy.protected} {
		for n := l.head; n != nil; n = n.next {
			linked++
			if !inIndex[n] {
				t.Errorf("node %v (removed %v) linked in the policy, not in the index", n.key, n.removed)
			}
		}
	}
	if size := int(c.size.Load()); len(inIndex) != size || linked != size || c.index.len() != size {
		t.Errorf("index holds %d nodes (counted %d), policy %d, size %d", len(inIndex), c.index.len(), linked, size)
	}
}

// TestLockFreeSetRaces races lock-free Sets (setFast: one-word values, no
// expiry) against the locked writers that copy or rewrite the same nodes
// (Touch publishes a copy, Update rewrites the value): every Set must be visible to its setter's next
// Get, since none of the other writers changes a value or removes a key.
func TestLockFreeSetRaces(t *testing.T) {
	t.Parallel()
	const (
		keys    = 8
		setters = 4
		rounds  = 20000
	)
	c := newCache(t, Options[int, *int]{MaxEntries: 1000})
	var stop atomic.Bool
	var others sync.WaitGroup
	for w := range 2 {
		others.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 3))
			for !stop.Load() {
				k := r.IntN(keys * setters)
				if r.IntN(2) == 0 {
					// The entry gets an expiry: the next Set of k takes the
					// locked way (it drops the expiry: a new node).
					c.Touch(k, time.Hour)
				} else {
					c.Update(k, func(old *int) (*int, error) { return old, nil })
				}
			}
		})
	}
	var setWG sync.WaitGroup
	for w := range setters {
		setWG.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 4))
			for i := range rounds {
				k := w*keys + r.IntN(keys) // each setter owns its keys
				v := new(int)
				*v = i
				c.Set(k, v)
				if got, ok := c.Get(k); !ok || got != v {
					t.Errorf("setter %d: Get(%d) after Set(%p) = %p, %v", w, k, v, got, ok)
					return
				}
			}
		})
	}
	setWG.Wait()
	stop.Store(true)
	others.Wait()
	checkConsistent(t, c.c)
}
