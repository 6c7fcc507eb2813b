package qcache

import (
	"context"
	"database/sql/driver"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/cachekit/cachekit/qcache/internal/sqldeps"
)

// stampSet is the set of store keys a cached value depends on under a
// [GranularPolicy]: the global epoch and, per table read, its epoch, the
// generation of each scheme and the stamps of the conjunctions, plus the
// scheme lists that must hold the schemes. It is built with add, read
// once, and then checked again by fill.
type stampSet struct {
	p     *GranularPolicy
	keys  []string            // sorted keys whose values the checksum covers
	need  map[string][]string // list key -> schemes the value needs in it
	lists []string            // sorted keys of need
	sum   []byte              // checksum of keys as read
}

func (p *GranularPolicy) newStampSet() *stampSet {
	return &stampSet{p: p, keys: []string{p.global}, need: map[string][]string{}}
}

// add adds the dependencies of a query with its arguments.
func (s *stampSet) add(deps sqldeps.Deps, args []driver.NamedValue) {
	p := s.p
	for t, dnf := range deps {
		s.keys = append(s.keys, p.epochKey(t))
		for _, conj := range dnf {
			cols, vals := resolveConj(conj, args)
			s.keys = append(s.keys, p.stampKey(t, cols, vals))
			if len(cols) > 0 {
				sc := strings.Join(cols, ",")
				s.keys = append(s.keys, p.genKey(t, sc))
				s.need[p.listKey(t)] = append(s.need[p.listKey(t)], sc)
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
	slices.Sort(s.keys)
	s.keys = slices.Compact(s.keys)
	s.lists = slices.Sorted(maps.Keys(s.need))

	vals, err := p.getMany(ctx, slices.Concat(s.keys, s.lists, []string{entry}))
	if err != nil {
		return nil, err
	}
	stored := vals[entry]
	// Register the schemes missing from their table's list. A scheme
	// (re-)added rotates its generation: entries filled while it was
	// missing from the list (writers then skipped its stamps) die.
	// A scheme past its deadline counts as missing; one past half its
	// lifetime gets a new deadline.
	var rotate []string
	now := p.opts.Now()
	for _, lk := range s.lists {
		t := strings.TrimPrefix(lk, p.opts.Prefix+"l:")
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
		if _, err := p.opts.Store.Delete(ctx, rotate...); err != nil {
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
	if len(stored) >= len(s.sum) && string(stored[:len(s.sum)]) == string(s.sum) {
		return stored[len(s.sum):], nil
	}
	return nil, nil
}

// fill stores value under entry for ttl if the stamps still have the
// values read, and the lists still hold the schemes; otherwise a write ran
// meanwhile and it stores nothing.
func (s *stampSet) fill(ctx context.Context, entry string, value []byte, ttl time.Duration) error {
	p := s.p
	now, err := p.getMany(ctx, slices.Concat(s.keys, s.lists))
	if err != nil {
		return err
	}
	if string(checksum(s.keys, now)) != string(s.sum) {
		return nil // a write ran meanwhile
	}
	t := p.opts.Now().Unix()
	for _, lk := range s.lists {
		have := parseSchemes(now[lk])
		for _, sc := range s.need[lk] {
			if d, ok := have[sc]; !ok || d < t {
				return nil // dropped from the list meanwhile
			}
		}
	}
	return p.opts.Store.Set(ctx, entry, append(slices.Clip(s.sum), value...), ttl)
}
