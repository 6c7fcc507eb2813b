// Package tiered stacks an in-process tier (L1, a [memory.Cache] of bytes)
// over any [cachekit.Store] (L2: Redis, Memcached, disk) and keeps the L1 of
// every process coherent with writes made by any other process.
//
// Reads go to L1 first; on a miss they read L2 and fill L1 synchronously
// with the value's real remaining TTL (from [cachekit.ExpiryReader]), never
// a fresh full TTL for an old value. Writes go to L2 first, then to this
// process's L1; deletes remove the key from both.
//
// # Coherence across processes
//
// Another process's write reaches this L1 as an invalidation from a
// [cachekit.Notifier]: the L2 itself when it is one (the redis store pushes
// invalidations through RESP3 client tracking; the disk store through its
// generation counter), or Options.Bus (for instance a Redis pub/sub channel
// in front of Memcached), on which this store also announces its own
// writes. The invalidated keys are dropped from L1; a nil list (the channel
// broke, or the server was flushed) empties it.
//
// The staleness bound: a read that starts at time t returns from L1 only
// while the notifier's [cachekit.Watermarker] shows that every invalidation
// of writes completed before t - Options.MaxStale has been applied; while
// the channel is down or lagging, every read goes to L2 and nothing is
// filled. So a read never returns a value older than a write that completed
// more than MaxStale before the read started (default 50 ms; the observed
// delay on loopback is well under a millisecond). A notifier that is not a
// Watermarker gives no such bound; New then requires Options.L1TTL, which
// alone bounds how long L1 may serve a value another process replaced.
//
// A fill that raced with an invalidation or a local write of the same key
// is discarded, so a value read from L2 before a write never lands in L1
// after it.
//
// # Faults
//
// An L2 error is returned, wrapped in a [cachekit.OpError], unless
// Options.Degrade is set: then reads that fail are misses and writes that
// fail return nil, and both are counted in [Stats]. Whatever happens, a key
// whose L2 write or delete failed is dropped from this L1 (its state in L2
// is unknown), and a failed Clear empties the L1: an invalidation is never
// silently lost here. A failed announcement on Options.Bus is an error even
// under Degrade, since other processes may then serve the old value.
package tiered

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/memory"
)

// Bus carries invalidations between processes for an L2 that cannot send
// them itself (Memcached): every write of this store is announced with
// Publish after it reached L2, and Subscribe delivers other processes'
// announcements. The redis package's pub/sub bus is one.
type Bus interface {
	cachekit.Notifier
	// Publish announces that keys changed; nil keys means all of them.
	Publish(ctx context.Context, keys []string) error
}

// Options configures a tiered Store. The zero value is not enough: L1Size
// must be set.
type Options struct {
	// L1Size bounds the L1 by bytes (key + value + about 64 bytes of
	// overhead per entry). Required.
	L1Size int64

	// MaxStale is the staleness bound (see the package doc). Default 50 ms.
	MaxStale time.Duration

	// L1TTL caps how long a value stays in L1, whatever its TTL in L2.
	// Required when the notifier cannot bound its delay (it is not a
	// [cachekit.Watermarker]); default: no cap.
	L1TTL time.Duration

	// Bus announces this store's writes and delivers other processes'.
	// Required when L2 is not itself a [cachekit.Notifier]; if both exist,
	// Bus is used.
	Bus Bus

	// Degrade turns L2 failures into misses (reads) and nil errors
	// (writes), counted in Stats.Degraded. It also lets New succeed when the
	// notifier is unreachable: L1 stays unused until a background retry
	// subscribes. Default: errors are returned.
	Degrade bool

	// Clock is the time source for expiry in L1 (the staleness bound always
	// uses the real clock). Default cachekit.SystemClock; tests inject the
	// clock of L2.
	Clock cachekit.Clock

	// KeepL2Open leaves L2 open when the tiered store is closed. Default:
	// Close closes L2 too.
	KeepL2Open bool
}

// Stats are a tiered store's counters.
type Stats struct {
	L1Hits, L1Misses uint64 // reads served by L1 / sent to L2
	Bypassed         uint64 // reads sent to L2 because the channel was down or lagging
	Fills            uint64 // values copied from L2 into L1
	DiscardedFills   uint64 // fills dropped because the key changed meanwhile
	Invalidations    uint64 // keys dropped on another process's notice
	Flushes          uint64 // whole-L1 flushes (channel broke, Clear, nil notice)
	Degraded         uint64 // L2 errors turned into misses or nil under Degrade
}

// entry is a value in L1 with its absolute expiry (Unix ns, 0 = never).
type entry struct {
	val []byte
	exp int64
}

const stripes = 1024 // change counters, by key hash

// Store is the tiered store. It implements [cachekit.Store] and, when L2
// does, Adder, Toucher, Counter, Batcher, Clearer, Leaser and ExpiryReader
// (calls to a capability L2 lacks return an error wrapping
// [cachekit.ErrNotSupported]).
type Store struct {
	l2   cachekit.Store
	opts Options
	l1   *memory.Cache[string, entry]
	wm   cachekit.Watermarker // nil: no bound from the notifier
	bus  Bus                  // nil: L2 notifies by itself
	stop func()
	// subscribed is set once invalidations flow; L1 is unused before.
	subscribed atomic.Bool
	seed       maphash.Seed
	seq        [stripes]atomic.Uint64 // bumped around every change of a key in the stripe
	epoch      atomic.Uint64          // bumped by every flush

	closeMu sync.RWMutex
	closed  bool

	l1Hits, l1Misses, bypassed, fills, discarded, invalidations, flushes, degraded atomic.Uint64
}

var (
	_ cachekit.Store        = (*Store)(nil)
	_ cachekit.Adder        = (*Store)(nil)
	_ cachekit.Toucher      = (*Store)(nil)
	_ cachekit.Counter      = (*Store)(nil)
	_ cachekit.Batcher      = (*Store)(nil)
	_ cachekit.Clearer      = (*Store)(nil)
	_ cachekit.Leaser       = (*Store)(nil)
	_ cachekit.ExpiryReader = (*Store)(nil)
)

// New stacks an L1 over l2 and subscribes to invalidations (from
// opts.Bus, else from l2). It fails when neither can notify, or when the
// notifier cannot bound its delay and opts.L1TTL is zero.
func New(ctx context.Context, l2 cachekit.Store, opts Options) (*Store, error) {
	if l2 == nil {
		return nil, errors.New("tiered: nil L2 store")
	}
	if opts.L1Size <= 0 {
		return nil, errors.New("tiered: Options.L1Size must be positive")
	}
	if opts.MaxStale < 0 || opts.L1TTL < 0 {
		return nil, errors.New("tiered: negative MaxStale or L1TTL")
	}
	if opts.MaxStale == 0 {
		opts.MaxStale = 50 * time.Millisecond
	}
	if opts.Clock == nil {
		opts.Clock = cachekit.SystemClock{}
	}
	var n cachekit.Notifier = opts.Bus
	if opts.Bus == nil {
		var ok bool
		if n, ok = l2.(cachekit.Notifier); !ok {
			return nil, fmt.Errorf("tiered: L2 %T sends no invalidations; set Options.Bus", l2)
		}
	}
	s := &Store{l2: l2, opts: opts, bus: opts.Bus, seed: maphash.MakeSeed()}
	s.wm, _ = n.(cachekit.Watermarker)
	if s.wm == nil && opts.L1TTL == 0 {
		return nil, fmt.Errorf("tiered: notifier %T cannot bound its delay; set Options.L1TTL", n)
	}
	l1, err := memory.New(memory.Options[string, entry]{
		MaxWeight: uint64(opts.L1Size),
		Weigher:   func(k string, e entry) uint32 { return uint32(min(len(k)+len(e.val)+64, 1<<31)) },
		Clock:     opts.Clock,
	})
	if err != nil {
		return nil, fmt.Errorf("tiered: %w", err)
	}
	s.l1 = l1
	stop, err := n.Subscribe(ctx, s.invalidate)
	switch {
	case err == nil:
		s.stop = stop
		s.subscribed.Store(true)
	case opts.Degrade && errors.Is(err, cachekit.ErrUnavailable):
		// Start anyway, L1 off, and keep trying in the background.
		bctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		s.stop = func() {
			cancel()
			<-done
		}
		go s.resubscribe(bctx, n, done)
	default:
		l1.Close()
		return nil, fmt.Errorf("tiered: subscribe to invalidations: %w", err)
	}
	return s, nil
}

// resubscribe retries a subscription that failed at New (under Degrade)
// until it succeeds or ctx ends; until then L1 is not used.
func (s *Store) resubscribe(ctx context.Context, n cachekit.Notifier, done chan struct{}) {
	defer close(done)
	backoff := 10 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		stop, err := n.Subscribe(ctx, s.invalidate)
		if err == nil {
			s.flush() // nothing was tracked before
			s.subscribed.Store(true)
			<-ctx.Done()
			stop()
			return
		}
		backoff = min(2*backoff, time.Second)
	}
}

// invalidate applies a notice: drop keys, or everything when keys is nil.
func (s *Store) invalidate(keys []string) {
	if keys == nil {
		s.flush()
		return
	}
	for _, k := range keys {
		s.stripe(k).Add(2) // by two: an odd count means a local write is in flight
		s.l1.Delete(k)
	}
	s.invalidations.Add(uint64(len(keys)))
}

func (s *Store) flush() {
	s.epoch.Add(1)
	s.l1.Clear()
	s.flushes.Add(1)
}

func (s *Store) stripe(key string) *atomic.Uint64 {
	return &s.seq[maphash.String(s.seed, key)%stripes]
}

// clockNano is Options.Clock's time in Unix ns; wall, a time.Now() the
// caller has read already, stands for it on the system clock.
func (s *Store) clockNano(wall time.Time) int64 {
	if _, system := s.opts.Clock.(cachekit.SystemClock); system {
		return wall.UnixNano()
	}
	return s.opts.Clock.Now().UnixNano()
}

// current reports whether L1 may serve (and be filled) now: the notifier
// has delivered everything up to MaxStale ago.
func (s *Store) current(now time.Time) bool {
	if !s.subscribed.Load() {
		return false
	}
	if s.wm == nil {
		return true
	}
	w := s.wm.Watermark()
	return !w.IsZero() && now.Sub(w) <= s.opts.MaxStale
}

func (s *Store) begin(op, key string) error {
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return s.opErr(op, key, cachekit.ErrClosed)
	}
	return nil
}

func (s *Store) end() { s.closeMu.RUnlock() }

func (s *Store) opErr(op, key string, err error) error {
	var oe *cachekit.OpError
	if errors.As(err, &oe) && !errors.Is(err, cachekit.ErrClosed) {
		return err // L2 described it already
	}
	return &cachekit.OpError{Op: op, Backend: "tiered", Key: key, Err: err}
}

// failed decides what an L2 error becomes: under Degrade, nil (counted),
// unless it is a miss, a refusal of the input, or a closed store.
func (s *Store) failed(op, key string, err error) error {
	if s.opts.Degrade && degradable(err) {
		s.degraded.Add(1)
		return nil
	}
	return s.opErr(op, key, err)
}

// degradable: errors that say the cache is unreachable, not that the call
// was wrong.
func degradable(err error) bool {
	for _, e := range []error{cachekit.ErrMiss, cachekit.ErrInvalidKey, cachekit.ErrTooLarge,
		cachekit.ErrNotInteger, cachekit.ErrNotSupported, cachekit.ErrClosed, context.Canceled} {
		if errors.Is(err, e) {
			return false
		}
	}
	return true
}

// Get returns the value under key from L1, or from L2 (filling L1).
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	v, _, err := s.get(ctx, "get", key)
	return v, err
}

// GetWithExpiry is Get with the value's absolute expiry (zero: never).
func (s *Store) GetWithExpiry(ctx context.Context, key string) ([]byte, time.Time, error) {
	return s.get(ctx, "get", key)
}

func (s *Store) get(ctx context.Context, op, key string) ([]byte, time.Time, error) {
	if err := s.begin(op, key); err != nil {
		return nil, time.Time{}, err
	}
	defer s.end()
	if err := ctx.Err(); err != nil {
		return nil, time.Time{}, s.opErr(op, key, err)
	}
	now := time.Now()
	cur := s.current(now)
	if cur {
		if e, ok := s.l1.Get(key); ok && (e.exp == 0 || e.exp > s.clockNano(now)) {
			s.l1Hits.Add(1)
			return append([]byte(nil), e.val...), expTime(e.exp), nil
		}
		s.l1Misses.Add(1)
	} else {
		s.bypassed.Add(1)
	}
	seq, ep := s.stripe(key).Load(), s.epoch.Load()
	v, exp, err := s.readL2(ctx, key)
	if err != nil {
		if errors.Is(err, cachekit.ErrMiss) {
			return nil, time.Time{}, s.opErr(op, key, err)
		}
		if s.failed(op, key, err) == nil {
			return nil, time.Time{}, s.opErr(op, key, cachekit.ErrMiss)
		}
		return nil, time.Time{}, s.opErr(op, key, err)
	}
	if cur && seq&1 == 0 {
		s.fill(key, v, exp, seq, ep)
	}
	return v, exp, nil
}

func expTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// readL2 reads key with its expiry when L2 can tell it.
func (s *Store) readL2(ctx context.Context, key string) ([]byte, time.Time, error) {
	if er, ok := s.l2.(cachekit.ExpiryReader); ok {
		return er.GetWithExpiry(ctx, key)
	}
	v, err := s.l2.Get(ctx, key)
	return v, time.Time{}, err
}

// fill puts a value read from L2 into L1 unless the key changed (or L1 was
// flushed) since seq and ep were read: set first, then check again and take
// it back, so that an invalidation between the two is never lost.
func (s *Store) fill(key string, v []byte, exp time.Time, seq, ep uint64) {
	st := s.stripe(key)
	if st.Load() != seq || s.epoch.Load() != ep {
		s.discarded.Add(1)
		return
	}
	if !s.put(key, v, exp) {
		return
	}
	if st.Load() != seq || s.epoch.Load() != ep {
		s.l1.Delete(key)
		s.discarded.Add(1)
		return
	}
	s.fills.Add(1)
}

// put stores a private copy of v in L1 until exp (zero: no expiry), capped
// by L1TTL. It reports false when the value has already expired.
func (s *Store) put(key string, v []byte, exp time.Time) bool {
	var ttl time.Duration
	e := entry{val: append([]byte(nil), v...)}
	if !exp.IsZero() {
		ttl = exp.Sub(s.opts.Clock.Now())
		if ttl <= 0 {
			return false
		}
		e.exp = exp.UnixNano()
	}
	if s.opts.L1TTL > 0 && (ttl == 0 || ttl > s.opts.L1TTL) {
		ttl = s.opts.L1TTL
		if e.exp == 0 {
			e.exp = s.opts.Clock.Now().Add(ttl).UnixNano()
		}
	}
	if ttl == 0 {
		ttl = cachekit.NoExpiry
	}
	s.l1.SetWithTTL(key, e, ttl)
	return true
}

// change runs an L2 write of key between two bumps of its stripe, so that
// concurrent fills of the key are discarded, and then either stores the new
// value in L1 (when no other change of the stripe came in between and L1 is
// current) or drops the key from L1.
func (s *Store) change(key string, write func() error, keep func() ([]byte, time.Time, bool)) error {
	st := s.stripe(key)
	s1 := st.Add(1)
	err := write()
	s2 := st.Add(1)
	if err == nil && keep != nil && s2 == s1+1 && s.current(time.Now()) {
		if v, exp, ok := keep(); ok && s.put(key, v, exp) {
			if st.Load() != s2 {
				s.l1.Delete(key)
			}
			return nil
		}
	}
	s.l1.Delete(key)
	return err
}

// announce tells other processes (through the Bus) that keys changed.
func (s *Store) announce(ctx context.Context, op string, keys []string) error {
	if s.bus == nil {
		return nil
	}
	if err := s.bus.Publish(ctx, keys); err != nil {
		return s.opErr(op, firstKey(keys), fmt.Errorf("changed in L2 but the invalidation was not delivered: %w", err))
	}
	return nil
}

func firstKey(keys []string) string {
	if len(keys) == 1 {
		return keys[0]
	}
	return ""
}

// Set writes val to L2 and then to this process's L1.
func (s *Store) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	if err := s.begin("set", key); err != nil {
		return err
	}
	defer s.end()
	err := s.change(key, func() error { return s.l2.Set(ctx, key, val, ttl) }, func() ([]byte, time.Time, bool) {
		if ttl < 0 {
			return nil, time.Time{}, false
		}
		return val, s.absExpiry(ttl), true
	})
	if err != nil {
		return s.failed("set", key, err)
	}
	return s.announce(ctx, "set", []string{key})
}

// absExpiry is the absolute expiry of a store-level ttl (zero: never).
func (s *Store) absExpiry(ttl time.Duration) time.Time {
	if ttl <= 0 || ttl == cachekit.NoExpiry {
		return time.Time{}
	}
	return s.opts.Clock.Now().Add(ttl)
}

// Delete removes keys from L2 and L1.
func (s *Store) Delete(ctx context.Context, keys ...string) (int, error) {
	if err := s.begin("delete", firstKey(keys)); err != nil {
		return 0, err
	}
	defer s.end()
	var n int
	err := s.changeMany(keys, func() error {
		var err error
		n, err = s.l2.Delete(ctx, keys...)
		return err
	})
	if err != nil {
		return 0, s.failed("delete", firstKey(keys), err)
	}
	return n, s.announce(ctx, "delete", keys)
}

// changeMany is change for several keys, always dropping them from L1.
func (s *Store) changeMany(keys []string, write func() error) error {
	for _, k := range keys {
		s.stripe(k).Add(1)
	}
	err := write()
	for _, k := range keys {
		s.stripe(k).Add(1)
		s.l1.Delete(k)
	}
	return err
}

// Add stores val only if key is absent from L2 (atomic in L2).
func (s *Store) Add(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	a, ok := s.l2.(cachekit.Adder)
	if !ok {
		return false, s.opErr("add", key, cachekit.ErrNotSupported)
	}
	if err := s.begin("add", key); err != nil {
		return false, err
	}
	defer s.end()
	var added bool
	err := s.change(key, func() error {
		var err error
		added, err = a.Add(ctx, key, val, ttl)
		return err
	}, func() ([]byte, time.Time, bool) { return val, s.absExpiry(ttl), added && ttl >= 0 })
	if err != nil {
		return false, s.failed("add", key, err)
	}
	if !added {
		return false, nil
	}
	return true, s.announce(ctx, "add", []string{key})
}

// Touch gives key a new TTL in L2 and drops it from L1 (the next read
// fills it with the new expiry).
func (s *Store) Touch(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	t, ok := s.l2.(cachekit.Toucher)
	if !ok {
		return false, s.opErr("touch", key, cachekit.ErrNotSupported)
	}
	if err := s.begin("touch", key); err != nil {
		return false, err
	}
	defer s.end()
	var found bool
	err := s.change(key, func() error {
		var err error
		found, err = t.Touch(ctx, key, ttl)
		return err
	}, nil)
	if err != nil {
		return false, s.failed("touch", key, err)
	}
	return found, s.announce(ctx, "touch", []string{key})
}

// IncrBy adds delta to the integer under key in L2 (atomically there).
func (s *Store) IncrBy(ctx context.Context, key string, delta int64) (int64, error) {
	c, ok := s.l2.(cachekit.Counter)
	if !ok {
		return 0, s.opErr("incr", key, cachekit.ErrNotSupported)
	}
	if err := s.begin("incr", key); err != nil {
		return 0, err
	}
	defer s.end()
	var n int64
	err := s.change(key, func() error {
		var err error
		n, err = c.IncrBy(ctx, key, delta)
		return err
	}, nil)
	if err != nil { // never degraded: a counter that silently stays put misleads
		return 0, s.opErr("incr", key, err)
	}
	return n, s.announce(ctx, "incr", []string{key})
}

// GetMany returns the present keys, from L1 where it can and from L2 (in
// one batch when L2 is a Batcher) for the rest.
func (s *Store) GetMany(ctx context.Context, keys []string) (map[string][]byte, error) {
	if err := s.begin("get", ""); err != nil {
		return nil, err
	}
	defer s.end()
	if err := ctx.Err(); err != nil {
		return nil, s.opErr("get", "", err)
	}
	out := make(map[string][]byte, len(keys))
	wall := time.Now()
	cur := s.current(wall)
	now := s.clockNano(wall)
	var rest []string
	for _, k := range keys {
		if cur {
			if e, ok := s.l1.Get(k); ok && (e.exp == 0 || e.exp > now) {
				s.l1Hits.Add(1)
				out[k] = append([]byte(nil), e.val...)
				continue
			}
			s.l1Misses.Add(1)
		} else {
			s.bypassed.Add(1)
		}
		rest = append(rest, k)
	}
	if len(rest) == 0 {
		return out, nil
	}
	b, ok := s.l2.(cachekit.Batcher)
	if !ok {
		for _, k := range rest {
			v, _, err := s.get(ctx, "get", k)
			switch {
			case err == nil:
				out[k] = v
			case !errors.Is(err, cachekit.ErrMiss):
				return nil, err
			}
		}
		return out, nil
	}
	seqs := make([]uint64, len(rest))
	for i, k := range rest {
		seqs[i] = s.stripe(k).Load()
	}
	ep := s.epoch.Load()
	got, err := b.GetMany(ctx, rest)
	if err != nil {
		if s.failed("get", "", err) == nil {
			return out, nil
		}
		return nil, s.opErr("get", "", err)
	}
	for i, k := range rest {
		v, ok := got[k]
		if !ok {
			continue
		}
		out[k] = v
		// GetMany does not tell expiries: fill only when L1TTL bounds them.
		if cur && s.opts.L1TTL > 0 && seqs[i]&1 == 0 {
			s.fill(k, v, s.opts.Clock.Now().Add(s.opts.L1TTL), seqs[i], ep)
		}
	}
	return out, nil
}

// SetMany writes every item to L2 (one batch when L2 is a Batcher) and
// drops them from L1.
func (s *Store) SetMany(ctx context.Context, items map[string][]byte, ttl time.Duration) error {
	if err := s.begin("set", ""); err != nil {
		return err
	}
	defer s.end()
	keys := make([]string, 0, len(items))
	for k := range items {
		keys = append(keys, k)
	}
	err := s.changeMany(keys, func() error {
		if b, ok := s.l2.(cachekit.Batcher); ok {
			return b.SetMany(ctx, items, ttl)
		}
		for k, v := range items {
			if err := s.l2.Set(ctx, k, v, ttl); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return s.failed("set", "", err)
	}
	return s.announce(ctx, "set", keys)
}

// Clear clears L2 (its own keys only) and empties L1, also when L2 fails.
func (s *Store) Clear(ctx context.Context) error {
	c, ok := s.l2.(cachekit.Clearer)
	if !ok {
		return s.opErr("clear", "", cachekit.ErrNotSupported)
	}
	if err := s.begin("clear", ""); err != nil {
		return err
	}
	defer s.end()
	err := c.Clear(ctx)
	s.flush()
	if err != nil {
		return s.failed("clear", "", err)
	}
	return s.announce(ctx, "clear", nil)
}

// Lease takes L2's lease on key. The lease writes key in L2 (its owner
// token), so taking and releasing it go through the same path as a write:
// the key is dropped from this L1 and announced on the Bus.
func (s *Store) Lease(ctx context.Context, key string, ttl time.Duration) (func(context.Context) error, bool, error) {
	noop := func(context.Context) error { return nil }
	l, ok := s.l2.(cachekit.Leaser)
	if !ok {
		return noop, false, s.opErr("lease", key, cachekit.ErrNotSupported)
	}
	if err := s.begin("lease", key); err != nil {
		return noop, false, err
	}
	defer s.end()
	var release func(context.Context) error
	var got bool
	err := s.change(key, func() error {
		var err error
		release, got, err = l.Lease(ctx, key, ttl)
		return err
	}, nil)
	if err != nil {
		return noop, false, s.opErr("lease", key, err)
	}
	if !got {
		return release, false, nil
	}
	if err := s.announce(ctx, "lease", []string{key}); err != nil {
		release(ctx)
		return noop, false, err
	}
	return func(ctx context.Context) error {
		err := s.change(key, func() error { return release(ctx) }, nil)
		if err != nil {
			return err
		}
		return s.announce(ctx, "lease", []string{key})
	}, true, nil
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	return Stats{
		L1Hits: s.l1Hits.Load(), L1Misses: s.l1Misses.Load(), Bypassed: s.bypassed.Load(),
		Fills: s.fills.Load(), DiscardedFills: s.discarded.Load(), Invalidations: s.invalidations.Load(),
		Flushes: s.flushes.Load(), Degraded: s.degraded.Load(),
	}
}

// Close stops the subscription, empties L1 and closes L2 (unless
// Options.KeepL2Open). Later calls return ErrClosed; a second Close
// returns nil.
func (s *Store) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return nil
	}
	s.closed = true
	s.closeMu.Unlock()
	s.stop()
	err := s.l1.Close()
	if !s.opts.KeepL2Open {
		err = errors.Join(err, s.l2.Close())
	}
	return err
}
