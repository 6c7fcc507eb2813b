package memo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/memory"
)

// keyOf returns the key a function named "f" gives to a.
func keyOf[A any](t testing.TB, a A) string {
	t.Helper()
	enc, err := newKeyEncoder(reflect.TypeFor[A]())
	if err != nil {
		t.Fatalf("newKeyEncoder(%s): %v", reflect.TypeFor[A](), err)
	}
	k, err := makeKey("f", "f(", enc, a)
	if err != nil {
		t.Fatalf("key of %#v: %v", a, err)
	}
	return k
}

type query struct {
	Query  string
	Page   int
	Secret string `cache:"-"`
	Lang   string `cache:"lang"`
	_      int
	hidden bool
}

type userID int

type sku struct{ code string }

func (s sku) CacheKey() string { return "sku:" + s.code }

type ptrKeyer struct{ n int }

func (p *ptrKeyer) CacheKey() string { return fmt.Sprint("p", p.n) }

type node struct {
	V    int
	Next *node
}

type withIface struct {
	Any any
	Err error
}

// TestGoldenKeys pins the encoding: keys must not change between runs or
// releases, or every cached value is lost on upgrade. Changing one of
// these strings is a breaking change.
func TestGoldenKeys(t *testing.T) {
	t.Parallel()
	n := 5
	loc := time.FixedZone("CET", 3600)
	cases := []struct {
		got, want string
	}{
		{keyOf(t, 42), `f(42)`},
		{keyOf(t, -7), `f(-7)`},
		{keyOf(t, userID(9)), `f(9)`},
		{keyOf(t, uint8(255)), `f(255)`},
		{keyOf(t, true), `f(true)`},
		{keyOf(t, 1.5), `f(1.5)`},
		{keyOf(t, 1e21), `f(1e+21)`},
		{keyOf(t, math.Copysign(0, -1)), `f(-0)`},
		{keyOf(t, math.NaN()), `f(NaN)`},
		{keyOf(t, math.Inf(-1)), `f(-Inf)`},
		{keyOf(t, float32(0.1)), `f(0.1)`},
		{keyOf(t, complex(1, -2)), `f((1-2i))`},
		{keyOf(t, "a \"b\"\n"), `f("a \"b\"\n")`},
		{keyOf(t, ""), `f("")`},
		{keyOf(t, []byte("hi")), `f("hi")`},
		{keyOf(t, []byte(nil)), `f(nil)`},
		{keyOf(t, [4]byte{0xde, 0xad, 0xbe, 0xef}), `f(0xdeadbeef)`},
		{keyOf(t, []int{1, 2, 3}), `f([1,2,3])`},
		{keyOf(t, []int{}), `f([])`},
		{keyOf(t, []int(nil)), `f(nil)`},
		{keyOf(t, [2]string{"a", "b"}), `f(["a","b"])`},
		{keyOf(t, map[string]int{"b": 2, "a": 1, "c": 3}), `f({"a":1,"b":2,"c":3})`},
		{keyOf(t, map[int][]string{2: {"x"}, -1: nil}), `f({-1:nil,2:["x"]})`},
		{keyOf(t, &n), `f(5)`},
		{keyOf(t, (*int)(nil)), `f(nil)`},
		{keyOf(t, time.Date(2024, 5, 6, 7, 8, 9, 123456789, loc)), `f(2024-05-06T06:08:09.123456789Z)`},
		{keyOf(t, time.Date(2024, 5, 6, 0, 0, 0, 0, time.UTC)), `f(2024-05-06T00:00:00Z)`},
		{keyOf(t, 1500*time.Millisecond), `f(1.5s)`},
		{keyOf(t, query{Query: "go", Page: 2, Secret: "x", Lang: "en", hidden: true}), `f(Query="go",Page=2,lang="en",hidden=true)`},
		{keyOf(t, struct{}{}), `f()`},
		{keyOf(t, []query{{Query: "q"}}), `f([{Query="q",Page=0,lang="",hidden=false}])`},
		{keyOf(t, sku{"A1"}), `f("sku:A1")`},
		{keyOf(t, []sku{{"A"}, {"B"}}), `f(["sku:A","sku:B"])`},
		{keyOf(t, ptrKeyer{3}), `f("p3")`},
		{keyOf(t, &ptrKeyer{4}), `f("p4")`},
		{keyOf(t, (*ptrKeyer)(nil)), `f(nil)`},
		{keyOf(t, &node{1, &node{2, nil}}), `f({V=1,Next={V=2,Next=nil}})`},
		{keyOf(t, withIface{Any: int64(1)}), `f(Any=int64(1),Err=nil)`},
		{keyOf(t, withIface{Any: 1}), `f(Any=int(1),Err=nil)`},
		{keyOf(t, withIface{Any: []any{"s", 2.5, nil}}), `f(Any=[]interface {}([string("s"),float64(2.5),nil]),Err=nil)`},
		{keyOf(t, any(nil)), `f(nil)`},
		{keyOf(t, map[string]any{"k": sku{"Z"}}), `f({"k":memo.sku("sku:Z")})`},
	}
	for _, tc := range cases {
		if tc.got != tc.want {
			t.Errorf("got %s\n   want %s", tc.got, tc.want)
		}
	}
}

// TestGoldenStoreKeys: the cache's prefix, project version and key policy
// apply on top; a long memcached key keeps a readable head and a hash.
func TestGoldenStoreKeys(t *testing.T) {
	t.Parallel()
	s, err := memory.NewStore(memory.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c, err := cachekit.New[string](s, cachekit.Options{Prefix: "app", Version: 7, KeyPolicy: cachekit.MemcachedKey})
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(c, "search.Run", func(_ context.Context, q query) (string, error) { return "", nil }, Options{Version: 2})
	if err != nil {
		t.Fatal(err)
	}
	k, _ := f.Key(query{Query: "go", Page: 2})
	sk, _ := c.Key(k)
	if want := `app:7:search.Run@v2(Query="go",Page=2,lang="",hidden=false)`; sk != want {
		t.Errorf("store key %s, want %s", sk, want)
	}
	k, _ = f.Key(query{Query: strings.Repeat("long query ", 30)})
	sk, _ = c.Key(k)
	const head = `app:7:search.Run@v2(Query="long_query_long_query_`
	if len(sk) != cachekit.MemcachedMaxKeyLen || !strings.HasPrefix(sk, head) || strings.ContainsAny(sk, " \n") {
		t.Errorf("long memcached key %q: want 250 safe bytes starting %q", sk, head)
	}
	if want := `app:7:search.Run@v2(Query="long_query_long_query_long_query_long_query_long_query_long_query_long_query_long_query_long_query_long_query_long_query_long_query_long_query_long_query_long-e99e266d314b44f6c76b0fe731f8f020d2a6b8d74ddce0aeb4742d261b22b63a`; sk != want {
		t.Errorf("long store key\n got %s\nwant %s", sk, want)
	}
}

// TestFastPathMatchesReflect: the allocation-free encoders of scalar
// types write exactly what the reflective ones do.
func TestFastPathMatchesReflect(t *testing.T) {
	t.Parallel()
	check := func(v any) {
		t.Helper()
		typ := reflect.TypeOf(v)
		c := &compiler{done: map[reflect.Type]*encFunc{}}
		enc, err := c.compile(typ, true)
		if err != nil {
			t.Fatal(err)
		}
		slow, err := enc(nil, reflect.ValueOf(v), 0)
		if err != nil {
			t.Fatal(err)
		}
		k := fastKindOf(typ)
		if k == fastNone {
			t.Fatalf("%s has no fast path", typ)
		}
		p := reflect.New(typ)
		p.Elem().Set(reflect.ValueOf(v))
		fast := appendFast(nil, k, p.UnsafePointer())
		if !bytes.Equal(fast, slow) {
			t.Errorf("%T %v: fast %q, reflect %q", v, v, fast, slow)
		}
	}
	for _, v := range []any{
		true, false, int(-1), int8(-128), int16(300), int32(-5), int64(math.MinInt64), uint(7), uint8(255), uint16(65535),
		uint32(1 << 31), uint64(math.MaxUint64), uintptr(9), float32(1.25), float32(math.Inf(1)), 0.1, math.NaN(),
		math.Copysign(0, -1), "x\x00\xff☃", userID(3),
	} {
		check(v)
	}
	if fastKindOf(reflect.TypeFor[time.Duration]()) != fastNone || fastKindOf(reflect.TypeFor[sku]()) != fastNone {
		t.Error("time.Duration and CacheKey types must not take the fast path")
	}
}

// TestUnsupportedTypesRefusedAtBuild: funcs, channels and unsafe pointers
// anywhere in the argument type are refused by New and NewBatch.
func TestUnsupportedTypesRefusedAtBuild(t *testing.T) {
	t.Parallel()
	s, err := memory.NewStore(memory.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c := cachekit.Must[int](s, cachekit.Options{})
	check := func(name string, err error) {
		t.Helper()
		if !errors.Is(err, ErrUnsupportedType) {
			t.Errorf("%s: %v, want ErrUnsupportedType", name, err)
		}
	}
	{
		_, err := New(c, "f", func(context.Context, func()) (int, error) { return 0, nil }, Options{})
		check("func", err)
	}
	{
		_, err := New(c, "f", func(context.Context, chan int) (int, error) { return 0, nil }, Options{})
		check("chan", err)
	}
	{
		_, err := New(c, "f", func(context.Context, unsafe.Pointer) (int, error) { return 0, nil }, Options{})
		check("unsafe.Pointer", err)
	}
	{
		_, err := New(c, "f", func(context.Context, struct{ Done chan struct{} }) (int, error) { return 0, nil }, Options{})
		check("struct with a chan", err)
	}
	{
		_, err := New(c, "f", func(context.Context, map[string][]func()) (int, error) { return 0, nil }, Options{})
		check("map of func slices", err)
	}
	{
		_, err := New(c, "f", func(context.Context, *[2]struct{ P unsafe.Pointer }) (int, error) { return 0, nil }, Options{})
		check("pointer to array of struct with an unsafe pointer", err)
	}
	{
		_, err := NewBatch(c, "f", func(context.Context, []chan int) (map[chan int]int, error) { return nil, nil }, Options{})
		check("batch of chans", err)
	}
	// Skipped fields, recursive types and interfaces are fine.
	if _, err := New(c, "f", func(context.Context, struct {
		N  int
		Fn func() `cache:"-"`
	}) (int, error) {
		return 0, nil
	}, Options{}); err != nil {
		t.Errorf("skipped func field: %v", err)
	}
	if _, err := New(c, "f", func(context.Context, *node) (int, error) { return 0, nil }, Options{}); err != nil {
		t.Errorf("recursive type: %v", err)
	}
	// An interface holding a func is refused when met, at call time.
	f, err := New(c, "f", func(context.Context, withIface) (int, error) { return 0, nil }, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Call(t.Context(), withIface{Any: func() {}}); !errors.Is(err, ErrUnsupportedType) {
		t.Errorf("interface holding a func: %v, want ErrUnsupportedType", err)
	}
	// A pointer cycle is refused, not followed forever.
	cyc := &node{V: 1}
	cyc.Next = cyc
	g, err := New(c, "g", func(context.Context, *node) (int, error) { return 0, nil }, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Key(cyc); !errors.Is(err, ErrKeyTooDeep) {
		t.Errorf("pointer cycle: %v, want ErrKeyTooDeep", err)
	}
	// A panicking CacheKey is an error.
	h, err := New(c, "h", func(context.Context, *ptrKeyer) (int, error) { return 0, nil }, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Key(nil); err != nil {
		t.Errorf("nil pointer keyer: %v", err)
	}
}

// fuzzArg is an argument type with every kind of part the encoder handles.
type fuzzArg struct {
	S      string
	N      int64
	F      float64
	B      []byte
	L      []string
	M      map[string]int
	P      *int64
	I      any
	T      time.Time
	U      uint8
	K      sku
	Nested struct {
		A string
		B []int32
	}
}

// buildArg makes a fuzzArg from fuzz inputs, using flags to choose which
// parts are nil and what the interface holds.
func buildArg(s string, n int64, f float64, b []byte, flags uint8) fuzzArg {
	a := fuzzArg{S: s, N: n, F: f, U: flags}
	if flags&1 != 0 {
		a.B = b
	}
	if flags&2 != 0 {
		a.L = strings.Split(s, ",")
	}
	if flags&4 != 0 {
		a.M = map[string]int{}
		for i := 0; i+1 < len(b); i += 2 {
			a.M[string(b[i:i+1])] = int(b[i+1])
		}
	}
	if flags&8 != 0 {
		p := n
		a.P = &p
	}
	switch flags >> 4 & 3 {
	case 1:
		a.I = n
	case 2:
		a.I = s
	case 3:
		a.I = f
	}
	zones := []*time.Location{time.UTC, time.FixedZone("X", -7200), time.FixedZone("Y", 19800)}
	a.T = time.Unix(n%(1<<37), int64(flags)*7919).In(zones[int(flags)%len(zones)])
	a.K = sku{string(b)}
	a.Nested.A = s
	for _, c := range b {
		a.Nested.B = append(a.Nested.B, int32(int8(c)))
	}
	return a
}

// sameFloat is identity of floats as the key sees them: bits, every NaN
// alike.
func sameFloat(x, y float64) bool {
	return math.Float64bits(x) == math.Float64bits(y) || math.IsNaN(x) && math.IsNaN(y)
}

// sameArg reports whether two fuzz arguments are the same value.
func sameArg(x, y fuzzArg) bool {
	if x.S != y.S || x.N != y.N || !sameFloat(x.F, y.F) || x.U != y.U || x.K != y.K || !x.T.Equal(y.T) ||
		x.Nested.A != y.Nested.A || !reflect.DeepEqual(x.Nested.B, y.Nested.B) {
		return false
	}
	if (x.B == nil) != (y.B == nil) || !bytes.Equal(x.B, y.B) || !reflect.DeepEqual(x.L, y.L) || !reflect.DeepEqual(x.M, y.M) {
		return false
	}
	if (x.P == nil) != (y.P == nil) || x.P != nil && *x.P != *y.P {
		return false
	}
	if reflect.TypeOf(x.I) != reflect.TypeOf(y.I) {
		return false
	}
	if fx, ok := x.I.(float64); ok {
		return sameFloat(fx, y.I.(float64))
	}
	return x.I == y.I
}

// FuzzKeyEncode: distinct argument values never give the same key, and a
// value's key does not change from one encoding to the next (map order).
func FuzzKeyEncode(f *testing.F) {
	f.Add("a,b", int64(1), 1.0, []byte("xy"), uint8(0xff), "a", int64(1), 1.0, []byte("xy"), uint8(0xfd))
	f.Add("", int64(0), 0.0, []byte{}, uint8(0), "", int64(0), math.Copysign(0, -1), []byte(nil), uint8(1))
	f.Add(`a",L=["b`, int64(-1), math.NaN(), []byte(`"}`), uint8(0x16), `a`, int64(-1), math.Inf(1), []byte(`,`), uint8(0x26))
	f.Add("x", int64(12), 0.5, []byte("ab"), uint8(0x14), "x", int64(1), 0.5, []byte("a"), uint8(0x24))
	f.Add("1", int64(1), 1.0, []byte{1, 2, 3, 4}, uint8(0x34), "1", int64(1), 1.0, []byte{3, 4, 1, 2}, uint8(0x34))
	enc, err := newKeyEncoder(reflect.TypeFor[fuzzArg]())
	if err != nil {
		f.Fatal(err)
	}
	key := func(t *testing.T, a fuzzArg) string {
		k, err := makeKey("f", "f(", enc, a)
		if err != nil {
			t.Fatalf("key of %+v: %v", a, err)
		}
		return k
	}
	f.Fuzz(func(t *testing.T, s1 string, n1 int64, f1 float64, b1 []byte, fl1 uint8, s2 string, n2 int64, f2 float64, b2 []byte, fl2 uint8) {
		a, b := buildArg(s1, n1, f1, b1, fl1), buildArg(s2, n2, f2, b2, fl2)
		ka, kb := key(t, a), key(t, b)
		if ka == kb && !sameArg(a, b) {
			t.Fatalf("distinct arguments share the key %s:\n%+v\n%+v", ka, a, b)
		}
		if ka != kb && sameArg(a, b) {
			t.Fatalf("equal arguments have two keys:\n%s\n%s", ka, kb)
		}
		if again := key(t, a); again != ka {
			t.Fatalf("the key changed between encodings:\n%s\n%s", ka, again)
		}
	})
}
