package qcache

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql/driver"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"slices"
	"sync/atomic"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/qcache/internal/rowcodec"
)

// stampStore is what both policies keep in the store: random stamps that a
// write deletes and the next reader draws again, cached results under keys
// that hash a query, and the bookkeeping of invalidations that failed.
type stampStore struct {
	store  cachekit.Store
	prefix string
	global string // key of the global epoch stamp

	// lost counts the invalidations that failed; covered is the highest
	// value of lost that a later global epoch bump has made harmless. While
	// they differ, an entry whose invalidation was lost may be in the store,
	// and lookups bump the epoch before anything else (or fail).
	lost, covered atomic.Uint64

	// cells, when not nil, are the local index's cells (see localIndex):
	// every delete bumps the cells of the keys it deleted, once the store
	// has them deleted (or failed to), so that no entry of the index
	// filled after the delete can depend on versions before it.
	cells *localCells
}

func (s *stampStore) init(store cachekit.Store, prefix string) {
	s.store, s.prefix, s.global = store, prefix, prefix+"g"
}

// recover bumps the global epoch when an invalidation failed since the
// last bump.
func (s *stampStore) recover(ctx context.Context) error {
	lost := s.lost.Load()
	if lost == s.covered.Load() {
		return nil
	}
	_, err := s.store.Delete(ctx, s.global)
	s.bump(s.global)
	if err != nil {
		return err
	}
	s.cover(lost)
	return nil
}

// cover records that a global epoch bump made the first lost failed
// invalidations harmless.
func (s *stampStore) cover(lost uint64) {
	for {
		c := s.covered.Load()
		if c >= lost || s.covered.CompareAndSwap(c, lost) {
			return
		}
	}
}

// deleteStamps deletes stamps (an invalidation). On failure, lookups stop
// serving from the cache until the global epoch has been bumped. While an
// earlier failure is not covered yet, the global epoch is deleted with
// the stamps: a process that only writes records its lost invalidations
// with its next successful one, not only at its next lookup.
//
// NOTE: another process sharing the store does not know of a failure
// until this one has bumped the global epoch (at its next lookup or
// write), and may serve the entries the lost invalidation covered until
// then (or until they expire, if this process never reaches the store
// again). A delete that timed out on a connection that stayed up still
// reaches the server when it answers again (it was sent); a delete that
// never left (broken connection) is the one that opens this window.
func (s *stampStore) deleteStamps(ctx context.Context, keys []string) error {
	lost := s.lost.Load()
	pending := lost != s.covered.Load()
	if pending {
		keys = append(slices.Clip(keys), s.global)
	}
	_, err := s.store.Delete(ctx, keys...)
	s.bump(keys...)
	if err != nil {
		s.lost.Add(1)
		return err
	}
	if pending {
		s.cover(lost)
	}
	return nil
}

// bump bumps the local index's cells of keys (see stampStore.cells).
func (s *stampStore) bump(keys ...string) {
	if s.cells != nil {
		s.cells.bump(s.prefix, keys)
	}
}

// getMany reads keys; absent keys are missing from the map.
func (s *stampStore) getMany(ctx context.Context, keys []string) (map[string][]byte, error) {
	if b, ok := s.store.(cachekit.Batcher); ok {
		return b.GetMany(ctx, keys)
	}
	m := make(map[string][]byte, len(keys))
	for _, k := range keys {
		v, err := s.store.Get(ctx, k)
		switch {
		case err == nil:
			m[k] = v
		case !errors.Is(err, cachekit.ErrMiss):
			return nil, err
		}
	}
	return m, nil
}

// newStamp creates the stamp under key, or returns the one a concurrent
// reader created first.
func (s *stampStore) newStamp(ctx context.Context, key string) (string, error) {
	var r [16]byte
	rand.Read(r[:])
	v := hex.EncodeToString(r[:])
	a, ok := s.store.(cachekit.Adder)
	if !ok {
		// Without Add, two readers may both set a stamp; the loser's fill
		// then fails its stamp check, which only costs a fill.
		return v, s.store.Set(ctx, key, []byte(v), cachekit.NoExpiry)
	}
	added, err := a.Add(ctx, key, []byte(v), cachekit.NoExpiry)
	if err != nil || added {
		return v, err
	}
	got, err := s.store.Get(ctx, key)
	if errors.Is(err, cachekit.ErrMiss) {
		// Deleted again by a write in between: draw once more.
		return s.newStamp(ctx, key)
	}
	return string(got), err
}

// entryKey hashes the query, its arguments and extra (pairs of stamp keys
// and values a policy folds into the key; nil when it checks them apart).
func (s *stampStore) entryKey(q Query, extra ...string) (string, error) {
	m, err := entryMaterial(nil, q, extra...)
	if err != nil {
		return "", err
	}
	return s.entryKeyOf(m), nil
}

// entryMaterial appends to b what entryKey hashes: an encoding of the
// query, its arguments and extra from which they can be read back (so two
// queries have the same material only if they are the same query).
func entryMaterial(b []byte, q Query, extra ...string) ([]byte, error) {
	b = append(b, 1) // key format version
	b = binary.AppendUvarint(b, uint64(len(q.SQL)))
	b = append(b, q.SQL...)
	b = binary.AppendUvarint(b, uint64(len(q.Args)))
	for _, a := range q.Args {
		b = binary.AppendUvarint(b, uint64(a.Ordinal))
		b = binary.AppendUvarint(b, uint64(len(a.Name)))
		b = append(b, a.Name...)
		var err error
		if b, err = rowcodec.AppendValue(b, keyValue(a.Value)); err != nil {
			return nil, err
		}
	}
	for _, x := range extra {
		b = binary.AppendUvarint(b, uint64(len(x)))
		b = append(b, x...)
	}
	return b, nil
}

// entryKeyOf is the store key of the entry of material m.
func (s *stampStore) entryKeyOf(m []byte) string {
	sum := sha256.Sum256(m)
	return s.prefix + "q:" + hex.EncodeToString(sum[:])
}

// keyValue brings a query argument to one of the driver.Value types that
// keys are built from: a driver such as pgx's lets Go ints, uints and
// float32s through unconverted, and they must key the same as the int64 or
// float64 they stand for. Other values are returned as they are (and a type
// the key encoding does not know keeps the query uncached).
func keyValue(v any) any {
	switch v.(type) {
	case nil, int64, float64, bool, []byte, string, time.Time:
		return v
	}
	if c, err := driver.DefaultParameterConverter.ConvertValue(v); err == nil {
		return c
	}
	return v
}
