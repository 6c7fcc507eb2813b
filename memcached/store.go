package memcached

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/cachekit/cachekit"
)

var (
	_ cachekit.Store        = (*Store)(nil)
	_ cachekit.Adder        = (*Store)(nil)
	_ cachekit.Toucher      = (*Store)(nil)
	_ cachekit.Counter      = (*Store)(nil)
	_ cachekit.Batcher      = (*Store)(nil)
	_ cachekit.Clearer      = (*Store)(nil)
	_ cachekit.ExpiryReader = (*Store)(nil)
	_ cachekit.Leaser       = (*Store)(nil)
)

// backend names the store in errors.
const backend = "memcached"

// Store is a [cachekit.Store] over a pool of memcached servers. It is safe
// for concurrent use, and by any number of processes sharing the servers
// and the prefix. See the package documentation for what it stores and
// how Clear works.
type Store struct {
	client  *memcache.Client
	ownsCli bool
	prefix  string
	timeout time.Duration
	maxVal  int
	flush   bool
	retries int // how often a call retries on a dead pooled connection
	ns      *namespaces

	mu     sync.RWMutex // protects closed; read-held while a call joins wg
	closed bool
	wg     sync.WaitGroup // calls in flight (their goroutines)
}

// New returns a Store over the servers named by o. It does not contact
// them: a server that is down gives errors wrapping
// [cachekit.ErrUnavailable] when used, and works again once it is back.
// ctx bounds the resolution of host names in o.Addrs.
func New(ctx context.Context, o Options) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memcached: new: %w", err)
	}
	c, err := o.validate(ctx)
	if err != nil {
		return nil, err
	}
	servers := max(c.servers, 4) // unknown with a bare Client: assume a few
	return &Store{
		client:  c.client,
		ownsCli: c.ownClient,
		prefix:  c.prefix,
		timeout: c.timeout,
		maxVal:  c.maxValue,
		flush:   c.flush,
		retries: c.maxIdle*servers + 1,
		ns:      newNamespaces(c.prefix, c.selector, c.callerSelector),
	}, nil
}

// Prefix returns the Store's namespace (Options.Prefix or [DefaultPrefix]).
func (s *Store) Prefix() string { return s.prefix }

// Close waits for the calls in flight (each ends within Options.Timeout, or
// the Client's own timeout per network step for a caller's Client) and
// closes the idle connections of the client the Store built; a caller's
// Client is left open. Later calls return an error wrapping
// [cachekit.ErrClosed]; a second Close returns nil.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.wg.Wait()
	if s.ownsCli {
		if err := s.client.Close(); err != nil {
			return &cachekit.OpError{Op: "close", Backend: backend, Err: err}
		}
	}
	return nil
}

// run runs fn on its own goroutine and waits for it, for ctx and for the
// Store's timeout, whichever comes first. gomemcache has no context: when
// the wait ends first, run returns at once and fn goes on until its current
// network step ends (within the client's timeout), then sees its context
// done and stops. Errors come back as *cachekit.OpError.
func run[T any](s *Store, ctx context.Context, op, key string, fn func(ctx context.Context) (T, error)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, opError(op, key, err)
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return zero, opError(op, key, cachekit.ErrClosed)
	}
	s.wg.Add(1)
	s.mu.RUnlock()

	cctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer s.wg.Done()
		v, err := fn(cctx)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			if cctx.Err() != nil && (errors.Is(r.err, context.Canceled) || errors.Is(r.err, context.DeadlineExceeded)) {
				return zero, opError(op, key, s.waitErr(ctx))
			}
			return zero, opError(op, key, r.err)
		}
		return r.v, nil
	case <-cctx.Done():
		return zero, opError(op, key, s.waitErr(ctx))
	}
}

// waitErr is the error of a call whose wait ended: the caller's
// cancellation, or a server that did not answer in time.
func (s *Store) waitErr(ctx context.Context) error {
	switch err := ctx.Err(); {
	case err == nil:
		return fmt.Errorf("%w: no reply within %v: %w", cachekit.ErrUnavailable, s.timeout, context.DeadlineExceeded)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: no reply before the context's deadline: %w", cachekit.ErrUnavailable, err)
	default:
		return err // cancelled by the caller: the server is not to blame
	}
}

func opError(op, key string, err error) error {
	return &cachekit.OpError{Op: op, Backend: backend, Key: key, Err: err}
}

// classify maps a gomemcache error onto cachekit's sentinels, keeping the
// cause. Protocol outcomes (miss, not stored, CAS conflict) are handled by
// the callers before this.
func classify(err error) error {
	var cte *memcache.ConnectTimeoutError
	var ne net.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, memcache.ErrNoServers), errors.As(err, &cte), errors.As(err, &ne), connBroken(err),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("%w: %w", cachekit.ErrUnavailable, err)
	case errors.Is(err, memcache.ErrMalformedKey):
		return fmt.Errorf("%w: %w", cachekit.ErrInvalidKey, err)
	case strings.Contains(err.Error(), "object too large"):
		// memcached refused the item (its -I is below MaxValueSize) and,
		// for a set, dropped the previous value.
		return fmt.Errorf("%w: %w", cachekit.ErrTooLarge, err)
	}
	return err
}

// connBroken reports an error of a connection the server has closed: what
// a pooled connection to a server that restarted gives on first use.
func connBroken(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// retry calls f again while it fails on a broken connection: gomemcache
// keeps idle connections, and after a server restarts each of them fails
// once (the restarted server never saw the request, so repeating it is
// safe) before the client dials afresh. Other errors are classified.
//
// A broken or refused connection may mean that the server restarted, empty:
// retry then makes this process forget the namespace versions of slots (the
// servers f talks to), so that the next write reads them again instead of
// writing under a version the server no longer has.
func (s *Store) retry(ctx context.Context, slots []*slot, f func() error) error {
	for i := 0; ; i++ {
		err := f()
		if err == nil {
			return nil
		}
		cerr := classify(err)
		if errors.Is(cerr, cachekit.ErrUnavailable) {
			for _, sl := range slots {
				sl.forget()
			}
		}
		if !connBroken(err) || i >= s.retries || ctx.Err() != nil {
			return cerr
		}
	}
}

// Client calls wrapped in retry, each with the slot of the server it talks
// to. Protocol outcomes keep gomemcache's sentinels (memcache.ErrCacheMiss,
// ErrNotStored, ErrCASConflict).

func (s *Store) getMulti(ctx context.Context, slots []*slot, keys []string) (items map[string]*memcache.Item, err error) {
	err = s.retry(ctx, slots, func() error {
		items, err = s.client.GetMulti(keys)
		return err
	})
	return items, err
}

func (s *Store) get(ctx context.Context, sl *slot, key string) (it *memcache.Item, err error) {
	err = s.retry(ctx, []*slot{sl}, func() error {
		it, err = s.client.Get(key)
		return err
	})
	return it, err
}

func (s *Store) set(ctx context.Context, sl *slot, it *memcache.Item) error {
	return s.retry(ctx, []*slot{sl}, func() error { return s.client.Set(it) })
}

func (s *Store) add(ctx context.Context, sl *slot, it *memcache.Item) error {
	return s.retry(ctx, []*slot{sl}, func() error { return s.client.Add(it) })
}

func (s *Store) cas(ctx context.Context, sl *slot, it *memcache.Item) error {
	return s.retry(ctx, []*slot{sl}, func() error { return s.client.CompareAndSwap(it) })
}

func (s *Store) del(ctx context.Context, sl *slot, key string) error {
	return s.retry(ctx, []*slot{sl}, func() error { return s.client.Delete(key) })
}

func (s *Store) incr(ctx context.Context, sl *slot, key string, delta uint64) (n uint64, err error) {
	err = s.retry(ctx, []*slot{sl}, func() error {
		n, err = s.client.Increment(key, delta)
		return err
	})
	return n, err
}

// located is a caller's key with its memcached key and namespace slot.
type located struct {
	key  string
	mkey string
	slot *slot
}

// locate maps a caller's key.
func (s *Store) locate(key string) (located, error) {
	mkey, err := storeKey(s.prefix, key)
	if err != nil {
		return located{}, err
	}
	sl, err := s.ns.slotFor(mkey)
	if err != nil {
		return located{}, classify(err)
	}
	return located{key: key, mkey: mkey, slot: sl}, nil
}

// entry is a value read together with its namespace version.
type entry struct {
	item    *memcache.Item // nil: absent
	h       header
	payload []byte
	live    bool  // present, framed, unexpired, and of the current namespace version
	corrupt error // not nil: present but not framed by this package
	nsVer   uint64
	nsKnown bool // false: the namespace key is absent (every value is a miss)
}

// fetch reads the keys and their namespace keys in one GetMulti (one
// request per server, in parallel), records the versions seen and returns
// the entries in the order of ls.
func (s *Store) fetch(ctx context.Context, ls []located) ([]entry, error) {
	keys := make([]string, 0, len(ls)+1)
	slots := map[*slot]bool{}
	var slotList []*slot
	for _, l := range ls {
		keys = append(keys, l.mkey)
		if !slots[l.slot] {
			slots[l.slot] = true
			slotList = append(slotList, l.slot)
			keys = append(keys, l.slot.key)
		}
	}
	start := time.Now()
	items, err := s.getMulti(ctx, slotList, keys)
	if err != nil {
		return nil, err
	}
	type version struct {
		v     uint64
		known bool
	}
	vers := make(map[*slot]version, len(slots))
	for sl := range slots {
		var v version
		if it := items[sl.key]; it != nil {
			n, err := strconv.ParseUint(string(it.Value), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("namespace key %q holds %q: %w", sl.key, it.Value, cachekit.ErrCorrupt)
			}
			v = version{n, true}
		}
		// An absent namespace key was evicted, flushed, or never written:
		// every value checked against it is a miss until a write creates it.
		sl.observe(start, v.v, v.known)
		vers[sl] = v
	}
	now := time.Now()
	out := make([]entry, len(ls))
	for i, l := range ls {
		v := vers[l.slot]
		e := entry{nsVer: v.v, nsKnown: v.known}
		if it := items[l.mkey]; it != nil {
			e.item = it
			e.h, e.payload, e.corrupt = unframe(it.Value)
			e.live = e.corrupt == nil && v.known && e.h.version == v.v &&
				(e.h.expires.IsZero() || now.Before(e.h.expires))
		}
		out[i] = e
	}
	return out, nil
}

// fetchOne is fetch of one key.
func (s *Store) fetchOne(ctx context.Context, l located) (entry, error) {
	es, err := s.fetch(ctx, []located{l})
	if err != nil {
		return entry{}, err
	}
	return es[0], nil
}

// version returns the namespace version a write to sl's server must carry:
// the one this process saw within versionMaxAge (cached), else the
// server's, which it creates (with a random value) when absent. A stale
// version only makes the value look older than a Clear: a miss, never a
// stale hit.
func (s *Store) version(ctx context.Context, sl *slot) (v uint64, cached bool, err error) {
	if v, ok := sl.fresh(time.Now()); ok {
		return v, true, nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return 0, false, err
		}
		start := time.Now()
		it, err := s.get(ctx, sl, sl.key)
		switch {
		case err == nil:
			v, perr := strconv.ParseUint(string(it.Value), 10, 64)
			if perr != nil {
				return 0, false, fmt.Errorf("namespace key %q holds %q: %w", sl.key, it.Value, cachekit.ErrCorrupt)
			}
			sl.observe(start, v, true)
			return v, false, nil
		case !errors.Is(err, memcache.ErrCacheMiss):
			return 0, false, err
		}
		v := randomVersion()
		switch err := s.add(ctx, sl, &memcache.Item{Key: sl.key, Value: strconv.AppendUint(nil, v, 10)}); {
		case err == nil:
			sl.observe(time.Now(), v, true)
			return v, false, nil
		case !errors.Is(err, memcache.ErrNotStored):
			return 0, false, err
		}
		// Another writer created it first: read theirs.
	}
}

// randomVersion is the first version of a namespace key: random, so that a
// namespace key that was evicted and created again never repeats a
// version that values written before may still carry. Below 2^62, so that
// increments never wrap.
func randomVersion() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:])>>2 | 1
}

// Get returns the value under key. It returns an error wrapping
// [cachekit.ErrMiss] when the key is absent, expired, or written before the
// last Clear; [cachekit.ErrInvalidKey] for the empty key;
// [cachekit.ErrCorrupt] for bytes not written by this package;
// [cachekit.ErrUnavailable] when the key's server cannot be reached or does
// not answer in time.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	v, _, err := s.getWithExpiry(ctx, "get", key)
	return v, err
}

// GetWithExpiry is Get that also returns the value's absolute expiry (the
// zero time when it never expires).
func (s *Store) GetWithExpiry(ctx context.Context, key string) ([]byte, time.Time, error) {
	return s.getWithExpiry(ctx, "get", key)
}

type valueExpiry struct {
	v   []byte
	exp time.Time
}

func (s *Store) getWithExpiry(ctx context.Context, op, key string) ([]byte, time.Time, error) {
	r, err := run(s, ctx, op, key, func(ctx context.Context) (valueExpiry, error) {
		l, err := s.locate(key)
		if err != nil {
			return valueExpiry{}, err
		}
		e, err := s.fetchOne(ctx, l)
		switch {
		case err != nil:
			return valueExpiry{}, err
		case e.corrupt != nil:
			return valueExpiry{}, e.corrupt
		case !e.live:
			return valueExpiry{}, cachekit.ErrMiss
		}
		// The payload is a subslice of a buffer gomemcache allocated for
		// this read alone: the caller may keep and modify it.
		return valueExpiry{e.payload, e.h.expires}, nil
	})
	return r.v, r.exp, err
}

// Set stores a copy of val under key for ttl (store-level TTL semantics: a
// negative ttl deletes the key). A value larger than Options.MaxValueSize
// gives an error wrapping [cachekit.ErrTooLarge] and leaves the previous
// value in place. When the call fails with [cachekit.ErrUnavailable],
// whether the write took effect is unknown.
func (s *Store) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	_, err := run(s, ctx, "set", key, func(ctx context.Context) (struct{}, error) {
		l, err := s.locate(key)
		if err != nil {
			return struct{}{}, err
		}
		return struct{}{}, s.setOne(ctx, l, val, ttl)
	})
	return err
}

// setOne writes one value (ttl < 0: deletes it).
func (s *Store) setOne(ctx context.Context, l located, val []byte, ttl time.Duration) error {
	if ttl < 0 {
		if err := s.del(ctx, l.slot, l.mkey); err != nil && !errors.Is(err, memcache.ErrCacheMiss) {
			return err
		}
		return nil
	}
	if err := s.checkSize(val); err != nil {
		return err
	}
	exp, expires := expiration(time.Now(), ttl)
	for {
		gen := l.slot.generation()
		ver, cached, err := s.version(ctx, l.slot)
		if err != nil {
			return err
		}
		it := &memcache.Item{Key: l.mkey, Value: frame(header{expires, ver}, val), Expiration: exp}
		if err := s.set(ctx, l.slot, it); err != nil {
			return err
		}
		if !cached || l.slot.generation() == gen {
			return nil
		}
		// The write met a broken connection, so the server may have
		// restarted without the version this process remembered, and the
		// value would then read as a miss: write it again under the
		// server's version.
	}
}

func (s *Store) checkSize(val []byte) error {
	if len(val) > s.maxVal {
		return fmt.Errorf("%d bytes, more than MaxValueSize %d: %w", len(val), s.maxVal, cachekit.ErrTooLarge)
	}
	return nil
}

// Delete removes the keys and returns how many held a live value. It reads
// the keys first (one request per server) to tell live values from values
// a Clear has retired, then deletes those present, in parallel; a value
// written between the two steps may be deleted without being counted.
func (s *Store) Delete(ctx context.Context, keys ...string) (int, error) {
	key := ""
	if len(keys) == 1 {
		key = keys[0]
	}
	return run(s, ctx, "delete", key, func(ctx context.Context) (int, error) {
		if len(keys) == 0 {
			return 0, nil
		}
		ls, err := s.locateAll(keys)
		if err != nil {
			return 0, err
		}
		es, err := s.fetch(ctx, ls)
		if err != nil {
			return 0, err
		}
		var present []int
		for i, e := range es {
			if e.item != nil {
				present = append(present, i)
			}
		}
		var (
			mu sync.Mutex // protects n
			n  int
		)
		err = parallel(ctx, len(present), func(j int) error {
			i := present[j]
			err := s.del(ctx, ls[i].slot, ls[i].mkey)
			switch {
			case errors.Is(err, memcache.ErrCacheMiss):
				return nil
			case err != nil:
				return err
			}
			if es[i].live || es[i].corrupt != nil {
				mu.Lock()
				n++
				mu.Unlock()
			}
			return nil
		})
		return n, err
	})
}

// locateAll maps the distinct keys among keys.
func (s *Store) locateAll(keys []string) ([]located, error) {
	ls := make([]located, 0, len(keys))
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		if seen[k] {
			continue
		}
		seen[k] = true
		l, err := s.locate(k)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k, err)
		}
		ls = append(ls, l)
	}
	return ls, nil
}

// maxParallel bounds the requests one call has in flight at once.
const maxParallel = 16

// parallel runs fn(0..n-1) on up to maxParallel goroutines, waits for all,
// and returns the first error. It starts no new work once ctx is done or a
// call has failed.
func parallel(ctx context.Context, n int, fn func(i int) error) error {
	if n == 1 {
		return fn(0)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex // protects first
		first error
		next  = make(chan int)
	)
	for range min(n, maxParallel) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	var stopped error
	for i := range n {
		mu.Lock()
		failed := first != nil
		mu.Unlock()
		if failed {
			break
		}
		if stopped = ctx.Err(); stopped != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if first == nil {
		first = stopped
	}
	return first
}
