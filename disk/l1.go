package disk

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/cachekit/cachekit/memory"
)

// The L1: an optional in-process cache of hot entries in front of SQLite.
//
// Coherence across processes rests on a 64-bit generation counter in a
// memory-mapped sidecar file (cache.gen) that every writer of the directory,
// in any process, increments after its change has committed and before its
// call returns. The L1 remembers the generation its contents are valid for:
// a read first loads the shared counter (one atomic load) and serves from
// the L1 only while the two agree; otherwise the L1 is emptied and the read
// goes to SQLite. A value filled from SQLite is kept only if the counter did
// not move during the read. So a Get never returns a value older than a
// write whose call returned before the Get started. (PRAGMA data_version
// would tell the same, but costs 6-11 µs per call.)
//
// A writer whose increment follows the generation its own L1 holds (no other
// writer came in between) updates its L1 in place instead of emptying it.

// l1val is one L1 entry: a private copy of the value and its expiry.
type l1val struct {
	val []byte
	exp int64 // Unix ns; 0 = never
}

// l1 is the in-process tier of a Store.
type l1 struct {
	gen   *genFile // the shared counter
	cache *memory.Cache[string, l1val]
	valid atomic.Uint64 // generation the contents are valid for
	mu    sync.Mutex    // serializes changes of valid with emptying and writers' updates
}

func newL1(gen *genFile, size int64) (*l1, error) {
	c, err := memory.New(memory.Options[string, l1val]{
		MaxWeight: uint64(size),
		Weigher:   func(k string, v l1val) uint32 { return uint32(min(len(k)+len(v.val)+64, 1<<31)) },
	})
	if err != nil {
		return nil, err
	}
	l := &l1{gen: gen, cache: c}
	l.valid.Store(gen.load())
	return l, nil
}

// get returns a copy of key's value when the L1 holds it and is current.
// now is called only for entries that expire.
func (l *l1) get(key string, now func() int64) ([]byte, time.Time, bool) {
	g := l.gen.load()
	if g != l.valid.Load() {
		l.resync(g)
		return nil, time.Time{}, false
	}
	v, ok := l.cache.Get(key)
	if !ok || (v.exp != 0 && v.exp <= now()) {
		return nil, time.Time{}, false
	}
	var exp time.Time
	if v.exp != 0 {
		exp = time.Unix(0, v.exp)
	}
	return append([]byte(nil), v.val...), exp, true
}

// resync empties the L1 if the shared generation moved past its contents.
func (l *l1) resync(g uint64) {
	l.mu.Lock()
	if l.valid.Load() != g {
		l.cache.Clear()
		l.valid.Store(g)
	}
	l.mu.Unlock()
}

// snapshot returns the generation to pass to fill, loaded before a read
// from SQLite.
func (l *l1) snapshot() uint64 { return l.gen.load() }

// fill keeps a value read from SQLite, if nothing was written meanwhile.
func (l *l1) fill(g uint64, key string, val []byte, exp int64) {
	l.mu.Lock()
	if l.gen.load() == g && l.valid.Load() == g {
		l.cache.Set(key, l1val{val: append([]byte(nil), val...), exp: exp})
	}
	l.mu.Unlock()
}

// wrote is called after a committed change: it bumps the shared generation
// and keeps the L1 coherent. update, if not nil, applies the change to the
// L1 (set or drop the written keys); without it, or when another writer
// moved the generation meanwhile, the L1 is emptied.
func (l *l1) wrote(update func(c *memory.Cache[string, l1val])) {
	l.mu.Lock()
	defer l.mu.Unlock()
	old := l.gen.bump()
	if update != nil && l.valid.Load() == old {
		update(l.cache)
	} else {
		l.cache.Clear()
	}
	l.valid.Store(old + 1)
}

func (l *l1) close() error {
	l.cache.Close()
	return l.gen.close()
}
