package qcache

import "sync"

// maxMemo bounds the statements a textMemo keeps; past it, it starts over.
const maxMemo = 10_000

// textMemo memoizes a value computed from a statement's text. It is safe
// for concurrent use; two goroutines may compute the same value at once,
// and one of them is kept.
type textMemo[V any] struct {
	mu sync.Mutex
	m  map[string]V
}

// get returns the value of sql, computing it with compute on first use.
func (t *textMemo[V]) get(sql string, compute func(string) V) V {
	t.mu.Lock()
	v, ok := t.m[sql]
	t.mu.Unlock()
	if ok {
		return v
	}
	v = compute(sql)
	t.mu.Lock()
	if t.m == nil || len(t.m) >= maxMemo {
		t.m = make(map[string]V)
	}
	t.m[sql] = v
	t.mu.Unlock()
	return v
}
