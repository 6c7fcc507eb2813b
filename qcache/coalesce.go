package qcache

import (
	"context"
	"errors"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// reader is the read path both policies share: whether a read is cached
// (table profiles, opt-in), its events and counters, and the dog-pile lock
// on a miss.
//
// The lock has two levels. In this process, the first miss of an entry key
// leads a flight and gets the Fill; later misses of the same key wait
// (LockWait at most) until the flight lands (its Fill stored the result or
// abandoned it), then read the cache again and, on a second miss, run the
// query themselves. Across processes, when the read asks for the lock and
// the store is a cachekit.Leaser, the leader also takes a lease on the
// entry key: the holder runs the query, and the others poll the cache for
// its result (LockWait at most) before running the query themselves. A hit
// touches neither level.
type reader struct {
	events
	profiles map[string]TableProfile // nil: every cacheable read is automatic
	ttl      time.Duration           // default TTL
	lock     bool                    // take the lease on every miss
	lockWait time.Duration           // negative: misses never wait
	classify bool                    // a profile restricts Ops: reads need their kind
	lease    func(ctx context.Context, key string, ttl time.Duration) (func(context.Context) error, bool, error)

	// landed counts the flights that have landed, in buckets by the hash
	// of their SQL text. A miss that finds no flight to follow reads the
	// cache again when a flight of its bucket landed since its first read:
	// that flight may have stored the entry in between.
	landed [landedBuckets]atomic.Uint64

	fmu     sync.Mutex         // protects flights
	flights map[string]*flight // the misses being filled, by entry key
}

// flight is a miss being filled in this process; done is closed when its
// Fill has been called.
type flight struct {
	done   chan struct{}
	bucket uint8 // of landed
}

// landedBuckets is the number of buckets of reader.landed.
const landedBuckets = 64

// bucketSeed seeds the hash of bucketOf.
var bucketSeed = maphash.MakeSeed()

// bucketOf returns the bucket of reader.landed of a statement.
func bucketOf(sql string) uint8 { return uint8(maphash.String(bucketSeed, sql) % landedBuckets) }

// generation returns the count of landed flights of a read's bucket.
func (r *reader) generation(ri readInfo) uint64 { return r.landed[ri.bucket].Load() }

// storeFunc stores the result of a miss; stored is false when a write ran
// meanwhile and the result was dropped.
type storeFunc func(ctx context.Context, result []byte) (stored bool, err error)

// probeFunc reads the cache once for a read: the payload on a hit, the
// entry key and the storeFunc of the result on a miss.
type probeFunc func(ctx context.Context) (hit []byte, key string, store storeFunc, err error)

// readInfo is a read as events report it.
type readInfo struct {
	sql    string
	tables []string
	lock   bool  // take the lease on a miss
	bucket uint8 // bucketOf(sql)
}

// Polling bounds of a read waiting for another process's fill.
const (
	minPoll = time.Millisecond
	maxPoll = 50 * time.Millisecond
)

// leaseSuffix ends the key of an entry's lease.
const leaseSuffix = ":lease"

// miss handles a miss of the entry key (store stores its result), found by
// a probe that began when the generation of ri was gen. It returns the Fill of the read,
// or the payload when the entry appeared while the read waited.
func (r *reader) miss(ctx context.Context, ri readInfo, gen uint64, key string, store storeFunc, probe probeFunc) ([]byte, Fill, error) {
	if r.lockWait < 0 {
		r.note(ctx, Miss, ri.sql, ri.tables)
		return nil, r.fill(ri, store, nil), nil
	}
	f, lead := r.join(key, ri.bucket, true)
	switch {
	case !lead:
		r.note(ctx, Coalesced, ri.sql, ri.tables)
		if err := f.wait(ctx, r.lockWait); err != nil {
			return nil, nil, err
		}
		hit, k, s, err := probe(ctx)
		if err != nil || hit != nil {
			return r.found(ctx, ri, hit, err)
		}
		key, store = k, s
		if f, lead = r.join(key, ri.bucket, false); !lead {
			// Another read leads a new flight: do not wait twice.
			r.note(ctx, Miss, ri.sql, ri.tables)
			return nil, r.fill(ri, store, nil), nil
		}
	case r.generation(ri) != gen:
		// A flight of this key may have stored the entry and landed between
		// the probe and the join.
		hit, _, s, err := probe(ctx)
		if err != nil || hit != nil {
			r.land(key, f)
			return r.found(ctx, ri, hit, err)
		}
		store = s
	}
	// This read leads the flight of key.
	var release func(context.Context) error
	if ri.lock && r.lease != nil {
		hit, s, rel, err := r.leased(ctx, ri, key, store, probe)
		if err != nil || hit != nil {
			r.land(key, f)
			return r.found(ctx, ri, hit, err)
		}
		store, release = s, rel
	}
	r.note(ctx, Miss, ri.sql, ri.tables)
	return nil, r.fill(ri, store, func(ctx context.Context) error {
		var err error
		if release != nil {
			err = release(ctx)
		}
		r.land(key, f)
		return err
	}), nil
}

// found ends a read that waited: a hit, or an error.
func (r *reader) found(ctx context.Context, ri readInfo, hit []byte, err error) ([]byte, Fill, error) {
	if err == nil {
		r.note(ctx, Hit, ri.sql, ri.tables)
	}
	return hit, nil, err
}

// leased takes the lease on key for the leader of its flight. It returns
// the payload when another process filled the entry meanwhile; otherwise
// the storeFunc of the latest probe and the lease's release (nil when the
// read runs without the lease: the store failed, or the holder did not
// fill the entry within LockWait).
func (r *reader) leased(ctx context.Context, ri readInfo, key string, store storeFunc, probe probeFunc) ([]byte, storeFunc, func(context.Context) error, error) {
	deadline := time.Now().Add(r.lockWait)
	poll := minPoll
	for waited := false; ; waited = true {
		release, ok, err := r.lease(ctx, key+leaseSuffix, r.lockWait)
		if err != nil {
			return nil, store, nil, nil // fail open: run the query without it
		}
		if ok {
			// The previous holder may have stored the entry and released
			// the lease between our read and our lease.
			hit, _, s, err := probe(ctx)
			if err != nil || hit != nil {
				release(context.WithoutCancel(ctx))
				return hit, nil, nil, err
			}
			return nil, s, release, nil
		}
		if !waited {
			r.note(ctx, LeaseWait, ri.sql, ri.tables)
		}
		d := time.Until(deadline)
		if d <= 0 {
			return nil, store, nil, nil
		}
		if err := sleep(ctx, min(poll, d)); err != nil {
			return nil, nil, nil, err
		}
		poll = min(2*poll, maxPoll)
		hit, _, s, err := probe(ctx)
		if err != nil || hit != nil {
			return hit, nil, nil, err
		}
		store = s
	}
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// join returns the flight of key, and whether the caller leads it (a new
// flight). When a flight is under way, follow says whether to return it;
// otherwise join returns nil, false.
func (r *reader) join(key string, bucket uint8, follow bool) (*flight, bool) {
	r.fmu.Lock()
	defer r.fmu.Unlock()
	if f, ok := r.flights[key]; ok {
		if follow {
			return f, false
		}
		return nil, false
	}
	f := &flight{done: make(chan struct{}), bucket: bucket}
	r.flights[key] = f
	return f, true
}

// land ends the flight f of key and wakes its followers.
func (r *reader) land(key string, f *flight) {
	r.fmu.Lock()
	// Counted under the lock, so that a read that joins after the flight
	// is gone sees the count changed (see miss).
	r.landed[f.bucket].Add(1)
	if r.flights[key] == f {
		delete(r.flights, key)
	}
	r.fmu.Unlock()
	close(f.done)
}

// wait waits until the flight lands, d passes or ctx is done.
func (f *flight) wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-f.done:
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// fill returns the Fill of a miss: it stores the result with store (or
// counts why not), then calls finish (when not nil) on a context that the
// query's cancellation does not cut short. Calls after the first do
// nothing.
func (r *reader) fill(ri readInfo, store storeFunc, finish func(context.Context) error) Fill {
	var called atomic.Bool
	return func(ctx context.Context, result []byte, abandoned error) error {
		if called.Swap(true) {
			return nil
		}
		err := r.complete(ctx, ri, store, result, abandoned)
		if finish != nil {
			err = errors.Join(err, finish(context.WithoutCancel(ctx)))
		}
		return err
	}
}

// complete stores the result of a miss, or counts why it is not stored.
func (r *reader) complete(ctx context.Context, ri readInfo, store storeFunc, result []byte, abandoned error) error {
	switch {
	case errors.Is(abandoned, ErrResultTooLarge):
		r.noteUncached(ctx, ReasonTooLarge, ri.sql, ri.tables, abandoned)
		return nil
	case abandoned != nil:
		r.noteAbandoned(ctx, ri.sql, ri.tables, abandoned)
		return nil
	}
	stored, err := store(ctx, result)
	switch {
	case err != nil:
		r.noteAbandoned(ctx, ri.sql, ri.tables, err)
		return err
	case stored:
		r.note(ctx, Stored, ri.sql, ri.tables)
	default:
		r.note(ctx, Dropped, ri.sql, ri.tables)
	}
	return nil
}
