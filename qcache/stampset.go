package qcache

import (
	"context"
	"database/sql/driver"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/cachekit/cachekit/qcache/internal/sqldeps"
)

// stampSet is the set of store keys a cached value depends on under a
// [GranularPolicy]: the global epoch and, per table read, its epoch, the
// generation of each scheme and the stamps of the conjunctions, plus the
// scheme lists that must hold the schemes. It is built with add, read
// once, and then checked again by fill (or put).
type stampSet struct {
	p      *GranularPolicy
	keys   []string            // sorted keys whose values the checksum covers
	need   map[string][]string // list key -> schemes the value needs in it
	tables map[string]string   // list key -> its table
	lists  []string            // sorted keys of need
	first  string              // first table read, in sorted order
	sum    []byte              // checksum of keys as read
	vals   map[string][]byte   // values of keys and lists as read
	slowAt int64               // Unix seconds: half the SchemeTTL of the earliest scheme deadline after read
}

func (p *GranularPolicy) newStampSet() *stampSet {
	return &stampSet{p: p, keys: []string{p.global}, need: map[string][]string{}, tables: map[string]string{}}
}

// place returns the key the entry is stored under: entry with the hash tag
// of the first table read, so that the entry shares a Redis Cluster slot
// with that table's stamps and a fill checks them atomically (see
// condSetter). (An entry that does not start with "<prefix>q:" is kept
// whole after the tag.)
func (s *stampSet) place(entry string) string {
	if s.first == "" {
		return entry
	}
	q := s.p.opts.Prefix + "q:"
	return q + s.p.table(s.first) + ":" + strings.TrimPrefix(entry, q)
}

// add adds the dependencies of a query with its arguments.
func (s *stampSet) add(deps sqldeps.Deps, args []driver.NamedValue) {
	p := s.p
	for t, dnf := range deps {
		if s.first == "" || t < s.first {
			s.first = t
		}
		s.keys = append(s.keys, p.epochKey(t))
		for _, conj := range dnf {
			cols, vals := resolveConj(conj, args)
			s.keys = append(s.keys, p.stampKey(t, cols, vals))
			if len(cols) > 0 {
				sc := strings.Join(cols, ",")
				s.keys = append(s.keys, p.genKey(t, sc))
				lk := p.listKey(t)
				s.need[lk] = append(s.need[lk], sc)
				s.tables[lk] = t
			}
		}
	}
}

// read reads the stamps, the scheme lists and the entry in one GetMany. It
// registers the schemes missing from their lists and creates the missing
// stamps, then computes the checksum. It returns the entry's payload when
// the entry was stored under the same checksum, nil otherwise.
func (s *stampSet) read(ctx context.Context, entry string) ([]byte, error) {
	p := s.p
	entry = s.place(entry)
	slices.Sort(s.keys)
	s.keys = slices.Compact(s.keys)
	s.lists = slices.Sorted(maps.Keys(s.need))

	vals, err := p.getMany(ctx, slices.Concat(s.keys, s.lists, []string{entry}))
	if err != nil {
		return nil, err
	}
	stored := vals[entry]
	delete(vals, entry) // s.vals keeps the stamps and lists only
	// Register the schemes missing from their table's list. A scheme
	// (re-)added rotates its generation: entries filled while it was
	// missing from the list (writers then skipped its stamps) die.
	// A scheme past its deadline counts as missing; one past half its
	// lifetime gets a new deadline.
	var rotate []string
	now := p.opts.Now()
	s.slowAt = math.MaxInt64
	for _, lk := range s.lists {
		t := s.tables[lk]
		have := parseSchemes(vals[lk])
		changed := false
		for _, sc := range s.need[lk] {
			d, ok := have[sc]
			switch {
			case !ok || d < now.Unix():
				rotate = append(rotate, p.genKey(t, sc))
				fallthrough
			case d < now.Add(p.opts.SchemeTTL/2).Unix():
				have[sc] = now.Add(p.opts.SchemeTTL).Unix()
				changed = true
			}
			s.slowAt = min(s.slowAt, have[sc]-int64((p.opts.SchemeTTL/2)/time.Second))
		}
		if !changed {
			continue
		}
		for sc, d := range have {
			if d < now.Add(-schemeSkew).Unix() {
				delete(have, sc) // no writer honours it any more
			}
		}
		nv := formatSchemes(have)
		if err := p.opts.Store.Set(ctx, lk, nv, p.opts.SchemeTTL+schemeSkew); err != nil {
			return nil, err
		}
		vals[lk] = nv
	}
	if len(rotate) > 0 {
		_, err := p.opts.Store.Delete(ctx, rotate...)
		p.bump(rotate...)
		if err != nil {
			return nil, err
		}
		for _, k := range rotate {
			delete(vals, k)
		}
		stored = nil
	}
	// Create missing stamps.
	for _, k := range s.keys {
		if len(vals[k]) != 0 {
			continue
		}
		v, err := p.newStamp(ctx, k)
		if err != nil {
			return nil, err
		}
		vals[k] = []byte(v)
		stored = nil
	}
	s.sum = checksum(s.keys, vals)
	s.vals = vals
	if len(stored) >= len(s.sum) && string(stored[:len(s.sum)]) == string(s.sum) {
		return stored[len(s.sum):], nil
	}
	return nil, nil
}

// fill stores value under entry for ttl if the stamps still have the
// values read, and the lists still hold the schemes; otherwise a write ran
// meanwhile and it stores nothing. On a [condSetter] store that is one
// round trip: the stamps and lists must still hold exactly the values read
// (a list rewritten meanwhile by another reader costs this fill, which is
// rare: lists change at most once per SchemeTTL/2 per scheme). Otherwise it
// reads them again and Sets the entry. Neither form is what keeps stale
// results from being served (the checksum re-verified by every lookup is,
// see condSetter); they keep a fill that lost a race from replacing a live
// entry with a dead one.
func (s *stampSet) fill(ctx context.Context, entry string, value []byte, ttl time.Duration) error {
	_, err := s.put(ctx, entry, value, ttl)
	return err
}

// put is fill that also reports whether it stored the value (false when a
// write ran meanwhile).
func (s *stampSet) put(ctx context.Context, entry string, value []byte, ttl time.Duration) (stored bool, err error) {
	p := s.p
	entry = s.place(entry)
	t := p.opts.Now().Unix()
	if !s.listsHold(s.vals, t) {
		return false, nil // a scheme's deadline passed while the query ran
	}
	val := append(slices.Clip(s.sum), value...)
	if cs, ok := p.opts.Store.(condSetter); ok {
		cond := make(map[string][]byte, len(s.keys)+len(s.lists))
		for _, k := range slices.Concat(s.keys, s.lists) {
			cond[k] = s.vals[k]
		}
		return cs.SetIfEqual(ctx, entry, val, ttl, cond)
	}
	now, err := p.getMany(ctx, slices.Concat(s.keys, s.lists))
	if err != nil {
		return false, err
	}
	if string(checksum(s.keys, now)) != string(s.sum) {
		return false, nil // a write ran meanwhile
	}
	if !s.listsHold(now, t) {
		return false, nil // dropped from the list meanwhile
	}
	if err := p.opts.Store.Set(ctx, entry, val, ttl); err != nil {
		return false, err
	}
	return true, nil
}

// listsHold reports whether the scheme lists in vals hold every scheme the
// value needs, with a deadline not before t (Unix seconds).
func (s *stampSet) listsHold(vals map[string][]byte, t int64) bool {
	for _, lk := range s.lists {
		have := parseSchemes(vals[lk])
		for _, sc := range s.need[lk] {
			if d, ok := have[sc]; !ok || d < t {
				return false
			}
		}
	}
	return true
}
