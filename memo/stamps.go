package memo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cachekit/cachekit"
)

// How groups work (django-cache-utils' group backend, cacheops'
// "insideout" stamps):
//
//   - A group's generation is a decimal integer kept in the store under the
//     group's stamp key, without expiry. It starts at a random value, so that
//     a stamp evicted and minted again never repeats an old generation.
//   - A value computed for a function records, in its envelope
//     (cachekit.Entry.Stamps), the generations of the function's own stamp
//     and of its groups, read BEFORE the computation starts.
//   - A read accepts a value only if every generation it records is still
//     current. A stamp that is missing from the store (never minted,
//     evicted, cleared) makes every value recorded under it invalid.
//   - Invalidate increments the stamp (one IncrBy), or deletes it where the
//     store has no Counter: O(1) whatever the number of values. The old
//     values are orphaned and age out by TTL or eviction.
//
// A computation that overlaps an invalidation stores a value stamped with
// the old generation (it was read before the computation), which no read
// accepts: no stale value survives an invalidation.

// GroupOptions configures a [Group]. The zero value reads the generation
// from the store on every call.
type GroupOptions struct {
	// MaxStale lets calls trust a generation read from the store up to this
	// long ago, saving a store read per call. Invalidations made in this
	// process (through any Group of the same name over the same store) are
	// seen at once; those made by other processes within MaxStale. Default
	// 0: no in-process caching, except on a process-local store
	// ([cachekit.ProcessLocal]), where a generation is trusted until this
	// process invalidates it.
	MaxStale time.Duration

	// Clock measures MaxStale. Default [cachekit.SystemClock]. A test seam.
	Clock cachekit.Clock
}

// Group is a set of cached values, across functions and processes, that
// one call invalidates in O(1): [Group.Invalidate] costs one store
// operation however many values the group holds. Put functions in a group
// with Options.Groups. A Group is safe for concurrent use; make one per
// name and process and share it.
type Group struct {
	name  string // as given
	stamp string // stamp name in cachekit.Entry.Stamps
	key   string // store key of the generation
	store cachekit.Store
	vs    cachekit.ValueStore // store's object tier, for copy-free reads; may be nil
	opts  GroupOptions
	// system is set when opts.Clock is the system clock, whose monotonic
	// reading measures MaxStale more cheaply.
	system bool

	// st is shared by every Group of this process over the same store and
	// stamp key (Funcs of the same name, Groups of the same name), so that
	// an invalidation through one is seen at once by all.
	st *genState
	// forever: the store is process-local (cachekit.ProcessLocal), so no
	// other process can change the generation and a generation read here
	// stays current until this process invalidates it.
	forever bool
}

// genState is a stamp's in-process state.
type genState struct {
	local atomic.Pointer[localGen] // generation read recently
	// epoch counts the invalidations made through this process, so that
	// calls stop joining computations started before one.
	epoch atomic.Uint64
}

// genStates maps (store, stamp key) to the process's shared state.
var genStates sync.Map // genStateKey -> *genState

type genStateKey struct {
	store cachekit.Store
	key   string
}

// sharedState returns the process-wide state of key in store (a private
// one when the store's type cannot be a map key).
func sharedState(store cachekit.Store, key string) *genState {
	if t := reflect.TypeOf(store); t == nil || !t.Comparable() {
		return new(genState)
	}
	v, _ := genStates.LoadOrStore(genStateKey{store, key}, new(genState))
	return v.(*genState)
}

// localGen is a generation read from the store at a given time.
type localGen struct {
	gen   uint64
	at    time.Time // when the read started
	epoch uint64    // Group.epoch when the read started
}

// Prefixes of the stamp names, which are also the cache keys of the
// generations (passed through the cache's key function and policy).
const (
	funcStampPrefix  = "memo.func:"
	groupStampPrefix = "memo.group:"
)

// NewGroup returns the group called name whose generation lives in c's
// store, under c's key prefix, version and key policy. Any cache over the
// same store with the same prefix and version reaches the same group, in
// this process or another.
func NewGroup[V any](c *cachekit.Cache[V], name string, opts GroupOptions) (*Group, error) {
	if c == nil {
		return nil, errors.New("memo: NewGroup: nil cache")
	}
	if name == "" {
		return nil, errors.New("memo: NewGroup: empty name")
	}
	if opts.MaxStale < 0 {
		return nil, errors.New("memo: GroupOptions.MaxStale is negative")
	}
	if opts.Clock == nil {
		opts.Clock = cachekit.SystemClock{}
	}
	return newGroup(c, groupStampPrefix+name, name, opts)
}

func newGroup[V any](c *cachekit.Cache[V], stamp, name string, opts GroupOptions) (*Group, error) {
	key, err := c.Key(stamp)
	if err != nil {
		return nil, fmt.Errorf("memo: group %q: %w", name, err)
	}
	g := &Group{name: name, stamp: stamp, key: key, store: c.Store(), opts: opts}
	g.st = sharedState(g.store, key)
	_, g.forever = g.store.(cachekit.ProcessLocal)
	_, g.system = opts.Clock.(cachekit.SystemClock)
	g.vs, _ = g.store.(cachekit.ValueStore)
	return g, nil
}

// Name returns the group's name.
func (g *Group) Name() string { return g.name }

// Invalidate makes every value of the group, in every function and
// process, read as a miss from now on. It costs one store operation: an
// IncrBy of the group's generation where the store is a [cachekit.Counter],
// a Delete otherwise. Computations of this process in flight are not
// joined by later calls.
func (g *Group) Invalidate(ctx context.Context) error {
	// Bump before and after the write: a generation read by a call that
	// started before the second bump is never trusted from the local cache
	// (it may predate the write), and a call that starts after Invalidate
	// returns does not join a computation that read the old generation.
	g.st.epoch.Add(1)
	var err error
	if ctr, ok := g.store.(cachekit.Counter); ok {
		_, err = ctr.IncrBy(ctx, g.key, 1)
		if errors.Is(err, cachekit.ErrMiss) {
			err = nil // no stamp: every value is invalid already
		} else if errors.Is(err, cachekit.ErrNotInteger) {
			_, err = g.store.Delete(ctx, g.key) // damaged stamp: start afresh
		}
	} else {
		_, err = g.store.Delete(ctx, g.key)
	}
	g.st.epoch.Add(1)
	if err != nil {
		return fmt.Errorf("memo: invalidate group %q: %w", g.name, err)
	}
	return nil
}

// trusting reports whether generations read from the store are kept in
// process: on a process-local store always, elsewhere with MaxStale.
func (g *Group) trusting() bool { return g.forever || g.opts.MaxStale > 0 }

// cached returns the generation read within MaxStale (on a process-local
// store: read since the last invalidation), if any.
func (g *Group) cached() (uint64, bool) {
	if !g.trusting() {
		return 0, false
	}
	l := g.st.local.Load()
	if l == nil || l.epoch != g.st.epoch.Load() || (!g.forever && g.since(l.at) >= g.opts.MaxStale) {
		return 0, false
	}
	return l.gen, true
}

// now reads the group's clock.
func (g *Group) now() time.Time {
	if g.system {
		return time.Now()
	}
	return g.opts.Clock.Now()
}

// since is the time elapsed since t, a reading of now: on the system clock
// from the monotonic reading alone, which costs half of a time.Now.
func (g *Group) since(t time.Time) time.Duration {
	if g.system {
		return time.Since(t)
	}
	return g.opts.Clock.Now().Sub(t)
}

// readStart is what remember needs to know about a read before it starts.
type readStart struct {
	at    time.Time
	epoch uint64
}

// startRead notes the time and epoch before a read of the generation.
func (g *Group) startRead() readStart {
	if !g.trusting() {
		return readStart{}
	}
	if g.forever {
		return readStart{epoch: g.st.epoch.Load()}
	}
	return readStart{at: g.now(), epoch: g.st.epoch.Load()}
}

// remember keeps gen, read from the store by a read that started at rs,
// for MaxStale.
func (g *Group) remember(gen uint64, rs readStart) {
	if g.trusting() {
		g.st.local.Store(&localGen{gen: gen, at: rs.at, epoch: rs.epoch})
	}
}

// read returns the generation stored for g; ok is false when it is absent
// or unreadable (which makes every value of g invalid).
func (g *Group) read(ctx context.Context) (gen uint64, ok bool, err error) {
	var b []byte
	if g.vs != nil {
		v, err := g.vs.GetValue(ctx, g.key)
		if err != nil {
			return 0, false, missOK(err)
		}
		b, _ = v.([]byte) // not to be modified: the store's own slice
	} else if b, err = g.store.Get(ctx, g.key); err != nil {
		return 0, false, missOK(err)
	}
	gen, ok = parseGen(b)
	return gen, ok, nil
}

// mint stores a fresh random generation for g, unless another caller did
// first, and returns the generation in place.
func (g *Group) mint(ctx context.Context) (uint64, error) {
	var r [8]byte
	_, _ = rand.Read(r[:])
	gen := binary.LittleEndian.Uint64(r[:])>>2 | 1 // in [1, 2^62): room to increment
	val := strconv.AppendUint(nil, gen, 10)
	if a, ok := g.store.(cachekit.Adder); ok {
		added, err := a.Add(ctx, g.key, val, 0)
		if err != nil {
			return 0, fmt.Errorf("memo: mint stamp of %q: %w", g.name, err)
		}
		if added {
			return gen, nil
		}
		cur, ok, err := g.read(ctx)
		if err != nil {
			return 0, err
		}
		if ok {
			return cur, nil // another caller's
		}
		// Present but damaged, or gone again: overwrite below.
	}
	// Not atomic, which is safe: values stamped with a generation that lost
	// the race are invalid.
	if err := g.store.Set(ctx, g.key, val, 0); err != nil {
		return 0, fmt.Errorf("memo: mint stamp of %q: %w", g.name, err)
	}
	return gen, nil
}

// parseGen parses a stored generation (a decimal uint64, space-padded
// perhaps: memcached pads numbers it rewrites in place).
func parseGen(b []byte) (uint64, bool) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (1<<64-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// missOK turns a miss into "no error" (the caller sees ok=false).
func missOK(err error) error {
	if errors.Is(err, cachekit.ErrMiss) {
		return nil
	}
	return err
}

// stampSet is the list of stamps of one function: its own, then its
// groups'.
type stampSet struct {
	groups  []*Group
	batcher cachekit.Batcher // nil on the object tier or without one
}

func newStampSet(self *Group, groups []*Group, store cachekit.Store) (*stampSet, error) {
	s := &stampSet{groups: []*Group{self}}
	seen := map[string]bool{self.key: true}
	for _, g := range groups {
		if !sameStore(g.store, store) {
			return nil, fmt.Errorf("memo: group %q lives on another store than the function's cache", g.name)
		}
		if seen[g.key] {
			continue
		}
		seen[g.key] = true
		s.groups = append(s.groups, g)
	}
	if _, obj := store.(cachekit.ValueStore); !obj {
		s.batcher, _ = store.(cachekit.Batcher)
	}
	return s, nil
}

// sameStore compares two stores without panicking on incomparable types.
func sameStore(a, b cachekit.Store) bool {
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	return ta == tb && ta.Comparable() && a == b
}

// epoch is the sum of the groups' invalidation counts: it changes when any
// of them is invalidated through this process.
func (s *stampSet) epoch() uint64 {
	var n uint64
	for _, g := range s.groups {
		n += g.st.epoch.Load()
	}
	return n
}

// valid reports whether stamps (from an entry) are the current generations
// of exactly this set's groups. It reads the store for the generations not
// cached in process: one read for one stamp, one GetMany for several where
// the store has it.
func (s *stampSet) valid(ctx context.Context, stamps []cachekit.Stamp) (bool, error) {
	if len(stamps) != len(s.groups) {
		return false, nil
	}
	for i, g := range s.groups {
		if stamps[i].Group != g.stamp {
			return false, nil
		}
	}
	if len(s.groups) == 1 {
		g := s.groups[0]
		if gen, ok := g.cached(); ok {
			return gen == stamps[0].Gen, nil
		}
		rs := g.startRead() // before the read: the cached copy errs on the old side
		gen, ok, err := g.read(ctx)
		if err != nil || !ok {
			return false, err
		}
		g.remember(gen, rs)
		return gen == stamps[0].Gen, nil
	}
	gens, err := s.current(ctx, false)
	if err != nil || gens == nil {
		return false, err
	}
	for i := range gens {
		if gens[i] != stamps[i].Gen {
			return false, nil
		}
	}
	return true, nil
}

// match reports whether stamps (from an entry) are exactly gens, the
// current generations of this set's groups.
func (s *stampSet) match(stamps []cachekit.Stamp, gens []uint64) bool {
	if len(stamps) != len(s.groups) || len(gens) != len(s.groups) {
		return false
	}
	for i, g := range s.groups {
		if stamps[i].Group != g.stamp || stamps[i].Gen != gens[i] {
			return false
		}
	}
	return true
}

// current returns the current generation of every group. With mint, absent
// stamps are created; without, an absent stamp gives nil gens.
func (s *stampSet) current(ctx context.Context, mint bool) ([]uint64, error) {
	gens := make([]uint64, len(s.groups))
	var todo []int // indexes still to read
	for i, g := range s.groups {
		if gen, ok := g.cached(); ok {
			gens[i] = gen
		} else {
			todo = append(todo, i)
		}
	}
	if len(todo) == 0 {
		return gens, nil
	}
	starts := make([]readStart, len(s.groups))
	for _, i := range todo {
		starts[i] = s.groups[i].startRead()
	}
	found := make([]bool, len(s.groups))
	if s.batcher != nil && len(todo) > 1 {
		keys := make([]string, len(todo))
		for j, i := range todo {
			keys[j] = s.groups[i].key
		}
		got, err := s.batcher.GetMany(ctx, keys)
		if err != nil {
			return nil, err
		}
		for _, i := range todo {
			if b, ok := got[s.groups[i].key]; ok {
				gens[i], found[i] = parseGen(b)
			}
		}
	} else {
		for _, i := range todo {
			gen, ok, err := s.groups[i].read(ctx)
			if err != nil {
				return nil, err
			}
			gens[i], found[i] = gen, ok
		}
	}
	for _, i := range todo {
		g := s.groups[i]
		if !found[i] {
			if !mint {
				return nil, nil
			}
			gen, err := g.mint(ctx)
			if err != nil {
				return nil, err
			}
			gens[i] = gen
		}
		g.remember(gens[i], starts[i])
	}
	return gens, nil
}

// stamps turns generations into the envelope's form.
func (s *stampSet) stamps(gens []uint64) []cachekit.Stamp {
	out := make([]cachekit.Stamp, len(gens))
	for i, g := range s.groups {
		out[i] = cachekit.Stamp{Group: g.stamp, Gen: gens[i]}
	}
	return out
}
