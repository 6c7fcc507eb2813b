package qcache

import (
	"context"
	"time"
)

// condSetter is the optional store capability that lets a
// [GranularPolicy] fill check its stamps and store its entry in one round
// trip: SetIfEqual stores val under key for ttl (store-level TTL
// semantics) only if every key of cond holds exactly its value (an absent
// key never matches), and reports whether it stored. It is atomic for the
// keys of cond that the store keeps together with key (on Redis, those of
// key's hash slot: one Lua script); keys kept elsewhere (other slots of a
// Redis Cluster) are read and compared first, in the same call.
//
// [github.com/cachekit/cachekit/redis.Store] implements it. The key layout
// (granular_keys.go) puts a table's keys and the entries of queries whose
// first table it is in one hash slot.
//
// Fallback when the store lacks it: read the stamps again with GetMany and
// Set the entry if they are unchanged (two round trips, not atomic).
// Neither the fallback's gap nor the cluster's per-slot checks can let a
// stale entry be served: a served entry carries the checksum of the values
// of every key it depends on, recomputed from the store on every lookup,
// and a stamp never takes a value again once a write has deleted it (a new
// stamp is random). A fill that slips through a gap stores an entry that
// no lookup serves; the check only keeps such dead entries from replacing
// live ones.
//
// It is unexported until a second user (memo's generation-checked fills)
// shows what a root-package capability should promise; redis.Store
// satisfies it structurally, without importing this package.
type condSetter interface {
	SetIfEqual(ctx context.Context, key string, val []byte, ttl time.Duration, cond map[string][]byte) (bool, error)
}
