package memcached

import (
	"net"
	"sync"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

// versionMaxAge is how long a write trusts the namespace version this
// process last saw on a server before it reads the version again. Reads
// refresh it on every call; it only matters for a process that writes
// without reading.
const versionMaxAge = time.Second

// slot is one namespace key and this process's view of its version.
type slot struct {
	key string

	mu    sync.Mutex // protects ver, known, at and gen
	ver   uint64
	known bool      // false: the key was absent at the last look, or never looked at
	at    time.Time // when the view was true: the start of the read, or the end of the write, that gave it
	gen   uint64    // counts forget calls
}

// observe records that the namespace version was ver (or absent, if
// !known) at time at. An observation older than the current view is
// ignored, so that a slow read that began before a Clear cannot roll the
// view back past it.
func (sl *slot) observe(at time.Time, ver uint64, known bool) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if at.Before(sl.at) {
		return
	}
	sl.ver, sl.known, sl.at = ver, known, at
}

// forget drops the view after a connection to the slot's server broke or
// was refused: the server may come back empty.
func (sl *slot) forget() {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	sl.known, sl.at = false, time.Now()
	sl.gen++
}

// generation counts the forget calls so far.
func (sl *slot) generation() uint64 {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	return sl.gen
}

// fresh returns the version seen within versionMaxAge of now, if any.
func (sl *slot) fresh(now time.Time) (uint64, bool) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.known && now.Sub(sl.at) < versionMaxAge {
		return sl.ver, true
	}
	return 0, false
}

// namespaces places one namespace key on every server, so that a value and
// the version it is checked against live on the same server: a read costs
// one request to one server, and a server that is down affects only its own
// keys. The key of each server is a function of the server list alone, so
// every process with the same list checks (and clears) the same keys.
type namespaces struct {
	prefix  string
	sel     memcache.ServerSelector // nil: one namespace key for the pool
	dynamic bool                    // the caller owns sel and may change its servers

	mu      sync.RWMutex     // protects servers, byAddr and byName
	servers []string         // sel's servers, in order, when byAddr was built
	byAddr  map[string]*slot // server address → the slot placed on it
	known   map[string]*slot // every slot made so far by name and server, so views survive a rebuild
}

func newNamespaces(prefix string, sel memcache.ServerSelector, dynamic bool) *namespaces {
	ns := &namespaces{prefix: prefix, sel: sel, dynamic: dynamic, byAddr: map[string]*slot{}, known: map[string]*slot{}}
	ns.mu.Lock()
	ns.rebuildLocked()
	ns.mu.Unlock()
	return ns
}

// fallbackLocked is the slot of servers no candidate name lands on (and of
// the whole pool when placement is unknown). ns.mu must be held.
func (ns *namespaces) fallbackLocked() *slot {
	if ns.sel == nil {
		return ns.slotLocked(ns.prefix+"#ns", "")
	}
	name := nsKey(ns.prefix, 0)
	addr := ""
	if a, err := ns.sel.PickServer(name); err == nil {
		addr = a.String()
	}
	return ns.slotLocked(name, addr)
}

// slotLocked returns the slot of the namespace key name on the server
// addr. A name that lands on another server after the servers changed is
// another slot: the view of one server's key says nothing of the other's.
// ns.mu must be held.
func (ns *namespaces) slotLocked(name, addr string) *slot {
	id := name + " " + addr
	sl := ns.known[id]
	if sl == nil {
		sl = &slot{key: name}
		ns.known[id] = sl
	}
	return sl
}

// rebuildLocked maps every server of the selector to the first candidate
// name (prefix#ns0, prefix#ns1, ...) that the selector puts on it. ns.mu
// must be held.
func (ns *namespaces) rebuildLocked() {
	if ns.sel == nil {
		return
	}
	var servers []string
	distinct := map[string]bool{}
	_ = ns.sel.Each(func(a net.Addr) error {
		servers = append(servers, a.String())
		distinct[a.String()] = true
		return nil
	})
	byAddr := make(map[string]*slot, len(distinct))
	for n := 0; len(byAddr) < len(distinct) && n < 256+64*len(distinct); n++ {
		name := nsKey(ns.prefix, n)
		a, err := ns.sel.PickServer(name)
		if err != nil {
			break
		}
		if byAddr[a.String()] == nil {
			byAddr[a.String()] = ns.slotLocked(name, a.String())
		}
	}
	ns.servers, ns.byAddr = servers, byAddr
}

// changedLocked reports whether the selector's servers differ from those byAddr
// was built for. ns.mu must be held for reading.
func (ns *namespaces) changedLocked() bool {
	i, changed := 0, false
	_ = ns.sel.Each(func(a net.Addr) error {
		if i >= len(ns.servers) || ns.servers[i] != a.String() {
			changed = true
		}
		i++
		return nil
	})
	return changed || i != len(ns.servers)
}

// slotFor returns the slot that holds the namespace version of the
// memcached key key.
func (ns *namespaces) slotFor(key string) (*slot, error) {
	if ns.sel == nil {
		ns.mu.Lock()
		defer ns.mu.Unlock()
		return ns.fallbackLocked(), nil
	}
	a, err := ns.sel.PickServer(key)
	if err != nil {
		return nil, err
	}
	ns.mu.RLock()
	sl := ns.byAddr[a.String()]
	stale := ns.dynamic && ns.changedLocked()
	ns.mu.RUnlock()
	if sl != nil && !stale {
		return sl, nil
	}
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if ns.changedLocked() {
		ns.rebuildLocked()
		// The servers changed between PickServer and here: place key anew.
		if a, err = ns.sel.PickServer(key); err != nil {
			return nil, err
		}
	}
	if sl = ns.byAddr[a.String()]; sl == nil {
		sl = ns.fallbackLocked() // no candidate name lands on that server
	}
	return sl, nil
}

// all returns every slot a read may check under the current servers: the
// ones Clear must move on.
func (ns *namespaces) all() []*slot {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if ns.sel != nil && ns.changedLocked() {
		ns.rebuildLocked()
	}
	fb := ns.fallbackLocked()
	out := []*slot{fb}
	for _, sl := range ns.byAddr {
		if sl != fb {
			out = append(out, sl)
		}
	}
	return out
}
