package disk

import (
	"fmt"
	"testing"
)

// Micro-benchmarks of one Store on one goroutine; the side-by-side
// comparison with DiskCache, Redis and Memcached is `make bench-disk`.

func benchStore(b *testing.B, keys int, size int) (*Store, []string, []byte) {
	b.Helper()
	s := newTestStore(b, Options{})
	val := make([]byte, size)
	names := make([]string, keys)
	items := make(map[string][]byte, keys)
	for i := range names {
		names[i] = fmt.Sprintf("key:%08d", i)
		items[names[i]] = val
	}
	if err := s.SetMany(bg, items, 0); err != nil {
		b.Fatal(err)
	}
	return s, names, val
}

func BenchmarkStoreGet(b *testing.B) {
	for _, size := range []int{100, 10 << 10} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			s, keys, _ := benchStore(b, 20000, size)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := s.Get(bg, keys[i%len(keys)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

func BenchmarkStoreGetMiss(b *testing.B) {
	s, _, _ := benchStore(b, 20000, 100)
	b.ReportAllocs()
	for b.Loop() {
		s.Get(bg, "absent")
	}
}

func BenchmarkStoreSetOverwrite(b *testing.B) {
	for _, size := range []int{100, 10 << 10} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			s, keys, val := benchStore(b, 20000, size)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := s.Set(bg, keys[i%len(keys)], val, 0); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

func BenchmarkStoreSetNewAndDelete(b *testing.B) {
	s, _, val := benchStore(b, 20000, 100)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := fmt.Sprintf("new:%d", i)
		if err := s.Set(bg, k, val, 0); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Delete(bg, k); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkStoreGetL1(b *testing.B) {
	s := newTestStore(b, Options{L1Size: 64 << 20})
	val := make([]byte, 100)
	keys := make([]string, 20000)
	for i := range keys {
		keys[i] = fmt.Sprintf("key:%08d", i)
		s.Set(bg, keys[i], val, 0)
	}
	for _, k := range keys {
		s.Get(bg, k)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.Get(bg, keys[i%len(keys)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
