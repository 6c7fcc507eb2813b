package memory

import (
	"hash/maphash"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// FuzzIndex runs sequences of inserts, replacements, deletes, lookups and
// bulk inserts/deletes (which grow, shrink and rehash shard tables) against
// a map model. Keys are 9 bits wide and hash to one of 97 values, so full
// 64-bit hash collisions between different keys are common.
func FuzzIndex(f *testing.F) {
	f.Add([]byte{0, 1, 0, 2, 1, 0, 1, 1, 0, 2, 1, 0})
	f.Add([]byte{3, 7, 1, 0, 7, 1, 2, 7, 1, 3, 9, 0, 1, 9, 0})
	f.Add([]byte{0, 5, 0, 0, 102, 0, 0, 199, 0, 1, 102, 0, 2, 199, 0, 2, 5, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		x := newIndex[uint16, int]()
		model := make(map[uint16]*node[uint16, int])
		hash := func(k uint16) uint64 { return mix64(uint64(k%97)) | 1 }
		put := func(k uint16, v int) {
			n := &node[uint16, int]{key: k, value: v, hash: hash(k)}
			if s, old := x.find(n.hash, k); old != nil {
				s.node.Store(n)
			} else {
				x.insert(n.hash, n)
			}
			model[k] = n
		}
		del := func(k uint16) {
			if _, old := x.find(hash(k), k); old != nil {
				x.remove(old)
			}
			delete(model, k)
		}
		for i := 0; i+2 < len(ops); i += 3 {
			k := uint16(ops[i+1]) | uint16(ops[i+2]&1)<<8
			switch ops[i] % 5 {
			case 0, 1:
				put(k, i)
			case 2:
				del(k)
			case 3:
				if got, want := x.get(hash(k), k), model[k]; got != want {
					t.Fatalf("op %d: get(%d) = %p, want %p", i/3, k, got, want)
				}
			case 4: // a burst of fresh keys, then their removal
				base := uint16(600 + int(ops[i+1])%200)
				m := int(ops[i+2]) % 64
				for j := range m {
					put(base+uint16(j)*3, j)
				}
				for j := range m {
					if j%2 == 0 {
						del(base + uint16(j)*3)
					}
				}
			}
			if got := x.len(); got != len(model) {
				t.Fatalf("op %d: len = %d, want %d", i/3, got, len(model))
			}
		}
		for k, want := range model {
			if got := x.get(hash(k), k); got != want {
				t.Fatalf("final get(%d) = %p, want %p", k, got, want)
			}
		}
		seen := 0
		x.all(func(n *node[uint16, int]) bool {
			if model[n.key] != n {
				t.Fatalf("all yielded %d (%p), model has %p", n.key, n, model[n.key])
			}
			seen++
			return true
		})
		if seen != len(model) {
			t.Fatalf("all yielded %d nodes, want %d", seen, len(model))
		}
		for i := range x.shards {
			sh := &x.shards[i]
			if t2 := sh.table.Load(); 8*sh.used > maxUsed8ths*len(t2.slots) || sh.live > sh.used {
				t.Fatalf("shard %d: live %d, used %d, %d slots", i, sh.live, sh.used, len(t2.slots))
			}
		}
	})
}

// TestHasher: integer kinds of every size and strings get distinct hashes
// for distinct keys, and equal keys equal hashes.
func TestHasher(t *testing.T) {
	t.Parallel()
	type myInt int32
	check := func(name string, hs []uint64) {
		t.Helper()
		seen := make(map[uint64]bool)
		for _, h := range hs {
			if seen[h] {
				t.Errorf("%s: hash collision among %d small keys", name, len(hs))
				return
			}
			seen[h] = true
		}
	}
	seed := maphash.MakeSeed()
	hi, h8, hm, hs, hp := hasher[int](seed), hasher[uint8](seed), hasher[myInt](seed), hasher[string](seed), hasher[[2]int](seed)
	var a, b, c, d, e []uint64
	for i := range 256 {
		a = append(a, hi(i))
		b = append(b, h8(uint8(i)))
		c = append(c, hm(myInt(-i)))
		d = append(d, hs(string(rune('a'+i))))
		e = append(e, hp([2]int{i, -i}))
	}
	check("int", a)
	check("uint8", b)
	check("named int32", c)
	check("string", d)
	check("array", e)
	for _, k := range []int{0, 1, -1, 1 << 40} {
		kh := newKeyHasher[int](seed)
		if !kh.word || kh.hash(k) != max(hi(k), 1) {
			t.Errorf("keyHasher[int].hash(%d) = %d, hasher: %d (word %v)", k, kh.hash(k), hi(k), kh.word)
		}
	}
	if newKeyHasher[int32](seed).word || newKeyHasher[string](seed).word || !newKeyHasher[uint64](seed).word {
		t.Error("keyHasher.word is wrong for int32, string or uint64")
	}
	if hs("sasa") != hs(strings.Repeat("sa", 2)) || hi(7) != hi(len(a)-249) {
		t.Error("equal keys hash differently")
	}
}

// TestValueKind: which value types are written in place (value.go).
func TestValueKind(t *testing.T) {
	t.Parallel()
	type named float64
	for _, tc := range []struct {
		name string
		got  valueKind
		want valueKind
	}{
		{"*int", valueKindOf[*int](), valuePointer},
		{"map", valueKindOf[map[string]int](), valuePointer},
		{"chan", valueKindOf[chan int](), valuePointer},
		{"int", valueKindOf[int](), valueWord},
		{"named float64", valueKindOf[named](), valueWord},
		{"int32", valueKindOf[int32](), valueOther},
		{"string", valueKindOf[string](), valueOther},
		{"any", valueKindOf[any](), valueOther},
		{"[]byte", valueKindOf[[]byte](), valueOther},
		{"func", valueKindOf[func()](), valueOther},
	} {
		if tc.got != tc.want {
			t.Errorf("valueKindOf[%s] = %d, want %d", tc.name, tc.got, tc.want)
		}
	}
}

// TestInPlaceSet: a Set over a one-word value keeps the node (no
// allocation), with or without a TTL, and still reports the old value as
// replaced; Touch changes the expiry in place too.
func TestInPlaceSet(t *testing.T) {
	// Not parallel: AllocsPerRun refuses to run in parallel tests.
	var replaced []int
	c := newCache(t, Options[string, int]{OnEvict: func(_ string, v int, r Reason) {
		if r == ReasonReplaced {
			replaced = append(replaced, v)
		}
	}})
	c.Set("k", 1)
	n := c.c.get("k")
	c.Set("k", 2)
	if got := c.c.get("k"); got != n {
		t.Error("a one-word Set without expiry made a new node")
	}
	if v, _ := c.Get("k"); v != 2 || len(replaced) != 1 || replaced[0] != 1 {
		t.Fatalf("Get = %d, replaced %v; want 2, [1]", v, replaced)
	}
	quiet := newCache(t, Options[string, int]{}) // OnEvict's queue allocates
	quiet.Set("k", 1)
	if a := testing.AllocsPerRun(100, func() { quiet.Set("k", 3) }); a != 0 {
		t.Errorf("in-place Set: %v allocations, want 0", a)
	}
	c.SetWithTTL("k", 4, time.Hour)
	if got := c.c.get("k"); got != n || got.expiry() == 0 {
		t.Error("a Set with a TTL did not set the expiry in place")
	}
	c.Touch("k", 2*time.Hour)
	c.Set("k", 5)
	if got := c.c.get("k"); got != n || got.expiry() != 0 {
		t.Error("Touch and a Set without TTL did not change the expiry in place")
	}
	if a := testing.AllocsPerRun(100, func() { quiet.SetWithTTL("k", 3, time.Hour) }); a != 0 {
		t.Errorf("in-place Set with a TTL: %v allocations, want 0", a)
	}
}

// TestNodeSize guards the size class of an entry with word-sized keys and
// values: 64 bytes (its expiry is an 8-byte stamp, not a time.Time).
func TestNodeSize(t *testing.T) {
	if n := unsafe.Sizeof(node[int, int]{}); n > 64 {
		t.Errorf("node[int, int] is %d bytes, want at most 64", n)
	}
}

// len returns the number of nodes, for the tests' consistency checks.
// Writers only.
func (x *index[K, V]) len() int {
	n := 0
	for i := range x.shards {
		n += x.shards[i].live
	}
	return n
}
