package qcache

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/qcache/internal/rowcodec"
)

// The local index: on a [cachekit.ProcessLocal] store, a GranularPolicy
// keeps the entries it filled or served in process memory, so that a
// repeated hit needs no store read, no checksum and no decoding.
//
// An entry of the index is valid while none of the cells it depends on has
// moved since before the stamps of its fill (or of the slow hit that put it
// there) were read. A cell is an in-process counter: one for the global
// epoch and one per table. Every invalidation (deleteStamps, recover's
// global bump, a scheme generation rotation) bumps the cells of the keys
// it touches once the store has them deleted, whatever it deleted: so any
// write to a table, row-level or not, voids the index's entries of that
// table (table-granular), while the store keeps its row-granular entries
// and the next lookup, served by the store, puts the entry back. The
// index therefore never depends on the scheme lists (a scheme missing from
// a list, evicted or overwritten, costs the store's entries, never the
// index's); it still falls back to the store once half of a scheme's
// SchemeTTL has passed, so that lookups extend the deadlines as they do
// without it, and at the entry's expiry.
//
// Cells are shared by every policy of the process on the same store and
// prefix (localCellsOf), since their writes invalidate each other's
// entries; they are never dropped (one per table name).

// DefaultLocalEntries is the default of GranularOptions.LocalEntries.
const DefaultLocalEntries = 10_000

// localCell is the version counter of one table (or of the global epoch).
type localCell struct{ v atomic.Uint64 }

// localCells are the cells of one (store, prefix).
type localCells struct {
	global localCell
	mu     sync.Mutex            // protects tables
	tables map[string]*localCell // by hash tag ("{<escaped table>}")
}

// cell returns the cell of the table whose hash tag is tag, creating it.
func (c *localCells) cell(tag string) *localCell {
	c.mu.Lock()
	defer c.mu.Unlock()
	x, ok := c.tables[tag]
	if !ok {
		x = &localCell{}
		c.tables[tag] = x
	}
	return x
}

// bump bumps the cells of store keys of prefix: the global epoch's, or the
// cell of the table a key's hash tag names; a key of no table it can tell
// bumps the global cell, and a CachedAs value stamp none.
func (c *localCells) bump(prefix string, keys []string) {
	for _, k := range keys {
		rest, ok := strings.CutPrefix(k, prefix)
		if ok && rest == "g" {
			c.global.v.Add(1)
			continue
		}
		if ok && strings.HasPrefix(rest, "v:") {
			continue // a CachedAs value's stamp: no entry of the index reads it
		}
		i := strings.IndexByte(rest, '{')
		j := strings.IndexByte(rest, '}')
		if !ok || i < 0 || j < i {
			c.global.v.Add(1)
			continue
		}
		c.cell(rest[i : j+1]).v.Add(1)
	}
}

type localKey struct {
	store  cachekit.Store
	prefix string
}

// localRegistry holds the cells of every (store, prefix) that a policy of
// this process uses with its local index. It is the package's one mutable
// registry: policies sharing a store must see each other's writes. It keeps
// the store reachable, so a policy's store lives as long as the process.
var localRegistry sync.Map // localKey -> *localCells

func localCellsOf(store cachekit.Store, prefix string) *localCells {
	k := localKey{store, prefix}
	if c, ok := localRegistry.Load(k); ok {
		return c.(*localCells)
	}
	c, _ := localRegistry.LoadOrStore(k, &localCells{tables: map[string]*localCell{}})
	return c.(*localCells)
}

// localEntry is an entry of the index.
type localEntry struct {
	payload []byte           // the encoded result (what Lookup returns)
	res     *rowcodec.Result // decoded, nil when it holds []byte values
	cells   []*localCell     // the global cell, then those of the tables read
	vers    []uint64         // their versions before the stamps were read
	expires int64            // Unix nanoseconds by GranularOptions.Now
	slowAt  int64            // Unix seconds from which the store must serve
}

// localSnap is the versions of a read's cells, taken before its stamps
// are read.
type localSnap struct {
	cells []*localCell
	vers  []uint64
}

// localIndex is a policy's index of entries by entry material (the
// unhashed entry key, see entryMaterial).
type localIndex struct {
	cells *localCells
	max   int
	hits  atomic.Uint64 // hits it served

	mu      sync.RWMutex           // protects entries
	entries map[string]*localEntry // by entry key
}

func newLocalIndex(store cachekit.Store, prefix string, max int) *localIndex {
	if _, ok := store.(cachekit.ProcessLocal); !ok || max < 0 {
		return nil
	}
	if max == 0 {
		max = DefaultLocalEntries
	}
	return &localIndex{cells: localCellsOf(store, prefix), max: max, entries: map[string]*localEntry{}}
}

// snap reads the versions of the global cell and the cells of tables.
func (x *localIndex) snap(p *GranularPolicy, tables []string) localSnap {
	s := localSnap{cells: make([]*localCell, 0, len(tables)+1), vers: make([]uint64, 0, len(tables)+1)}
	s.cells = append(s.cells, &x.cells.global)
	for _, t := range tables {
		s.cells = append(s.cells, p.keysOf(t).cell)
	}
	for _, c := range s.cells {
		s.vers = append(s.vers, c.v.Load())
	}
	return s
}

// get returns the valid entry under key, if any.
func (x *localIndex) get(key []byte, now time.Time) *localEntry {
	x.mu.RLock()
	e := x.entries[string(key)]
	x.mu.RUnlock()
	if e == nil || now.UnixNano() >= e.expires || now.Unix() >= e.slowAt {
		return nil
	}
	for i, c := range e.cells {
		if c.v.Load() != e.vers[i] {
			return nil
		}
	}
	return e
}

// put records an entry whose stamps were read after snap, unless one of
// its cells moved since (it would be void already).
func (x *localIndex) put(key string, snap localSnap, payload []byte, expires time.Time, slowAt int64) {
	for i, c := range snap.cells {
		if c.v.Load() != snap.vers[i] {
			x.drop(key)
			return
		}
	}
	e := &localEntry{payload: payload, cells: snap.cells, vers: snap.vers, expires: expires.UnixNano(), slowAt: slowAt}
	if res, err := rowcodec.Decode(payload); err == nil && !holdsBytes(res) {
		e.res = res // shared by concurrent replays: no []byte a caller could modify
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if _, ok := x.entries[key]; !ok && len(x.entries) >= x.max {
		for k := range x.entries { // drop one, at random
			delete(x.entries, k)
			break
		}
	}
	x.entries[key] = e
}

func (x *localIndex) drop(key string) {
	x.mu.Lock()
	delete(x.entries, key)
	x.mu.Unlock()
}

// holdsBytes reports whether a result holds a []byte value: a replay hands
// it out by reference (sql.RawBytes is not copied), so such a result is
// decoded again for every hit.
func holdsBytes(r *rowcodec.Result) bool {
	for _, row := range r.Rows {
		for _, v := range row {
			if _, ok := v.([]byte); ok {
				return true
			}
		}
	}
	return false
}
