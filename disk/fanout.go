package disk

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cachekit/cachekit"
)

// Capabilities the Fanout promises (checked at compile time).
var (
	_ cachekit.Store        = (*Fanout)(nil)
	_ cachekit.Adder        = (*Fanout)(nil)
	_ cachekit.Toucher      = (*Fanout)(nil)
	_ cachekit.Counter      = (*Fanout)(nil)
	_ cachekit.Batcher      = (*Fanout)(nil)
	_ cachekit.Clearer      = (*Fanout)(nil)
	_ cachekit.ExpiryReader = (*Fanout)(nil)
	_ cachekit.Leaser       = (*Fanout)(nil)
)

// DefaultShards is the number of shards of a Fanout whose options leave it
// zero.
const DefaultShards = 8

// shardsFile records a Fanout directory's shard count, so that every
// process maps keys to the same shards.
const shardsFile = "shards"

// FanoutOptions configures a [Fanout].
type FanoutOptions struct {
	// Options apply to every shard, except that Dir is the Fanout's
	// directory (shards live in its subdirectories 000, 001, ...) and
	// SizeLimit is divided evenly among the shards.
	Options

	// Shards is the number of shards. Zero means the count recorded in Dir,
	// or DefaultShards for a new directory. A count that differs from the
	// recorded one is an error: keys would land in other shards.
	Shards int
}

// Fanout is a disk cache sharded over several SQLite databases by a hash of
// the key, so that processes writing at once do not all wait for one
// database's single writer lock (DiskCache's FanoutCache). Unlike
// FanoutCache it never hides a timeout: every error reaches the caller.
type Fanout struct {
	shards []*Store
}

// NewFanout opens (creating if needed) a sharded cache in opts.Dir.
func NewFanout(ctx context.Context, opts FanoutOptions) (*Fanout, error) {
	if opts.Dir == "" {
		return nil, errors.New("disk: FanoutOptions.Dir is required")
	}
	if opts.Shards < 0 || opts.Shards > 999 {
		return nil, fmt.Errorf("disk: %d shards: want 1 to 999", opts.Shards)
	}
	mode := opts.DirMode
	if mode == 0 {
		mode = DefaultDirMode
	}
	if err := os.MkdirAll(opts.Dir, mode); err != nil {
		return nil, fmt.Errorf("disk: create cache directory: %w", err)
	}
	n, err := shardCount(opts)
	if err != nil {
		return nil, err
	}
	so := opts.Options
	if so.SizeLimit > 0 {
		so.SizeLimit = max(so.SizeLimit/int64(n), 1)
	} else if so.SizeLimit == 0 {
		so.SizeLimit = max(DefaultSizeLimit/int64(n), 1)
	}
	f := &Fanout{}
	for i := range n {
		so.Dir = filepath.Join(opts.Dir, fmt.Sprintf("%03d", i))
		s, err := New(ctx, so)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("disk: shard %d: %w", i, err)
		}
		f.shards = append(f.shards, s)
	}
	return f, nil
}

// shardCount reads or records the directory's shard count.
func shardCount(opts FanoutOptions) (int, error) {
	path := filepath.Join(opts.Dir, shardsFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		n, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || n < 1 {
			return 0, fmt.Errorf("disk: %s: %w: bad shard count %q", path, cachekit.ErrCorrupt, b)
		}
		if opts.Shards != 0 && opts.Shards != n {
			return 0, fmt.Errorf("disk: %s has %d shards, options ask for %d", opts.Dir, n, opts.Shards)
		}
		return n, nil
	case !errors.Is(err, fs.ErrNotExist):
		return 0, fmt.Errorf("disk: %w", err)
	}
	n := opts.Shards
	if n == 0 {
		n = DefaultShards
	}
	mode := opts.FileMode
	if mode == 0 {
		mode = DefaultFileMode
	}
	// Write then link: a concurrent opener either sees no file or a whole
	// one, and the first to link wins.
	tmp, err := os.CreateTemp(opts.Dir, shardsFile+".tmp*")
	if err != nil {
		return 0, fmt.Errorf("disk: %w", err)
	}
	defer os.Remove(tmp.Name())
	tmp.Chmod(mode)
	_, err = fmt.Fprintf(tmp, "%d\n", n)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("disk: %w", err)
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
		return shardCount(opts) // another process recorded it first
	} else if err != nil {
		return 0, fmt.Errorf("disk: %w", err)
	}
	return n, nil
}

// Shard returns the shard that holds key.
func (f *Fanout) Shard(key string) *Store {
	h := fnv.New64a()
	h.Write([]byte(key))
	return f.shards[h.Sum64()%uint64(len(f.shards))]
}

// Shards returns the shards, in order.
func (f *Fanout) Shards() []*Store { return f.shards }

// Get is [Store.Get] on the key's shard.
func (f *Fanout) Get(ctx context.Context, key string) ([]byte, error) {
	return f.Shard(key).Get(ctx, key)
}

// GetWithExpiry is [Store.GetWithExpiry] on the key's shard.
func (f *Fanout) GetWithExpiry(ctx context.Context, key string) ([]byte, time.Time, error) {
	return f.Shard(key).GetWithExpiry(ctx, key)
}

// Set is [Store.Set] on the key's shard.
func (f *Fanout) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	return f.Shard(key).Set(ctx, key, val, ttl)
}

// SetWith is [Store.SetWith] on the key's shard.
func (f *Fanout) SetWith(ctx context.Context, key string, val []byte, o SetOptions) error {
	return f.Shard(key).SetWith(ctx, key, val, o)
}

// Add is [Store.Add] on the key's shard.
func (f *Fanout) Add(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	return f.Shard(key).Add(ctx, key, val, ttl)
}

// Touch is [Store.Touch] on the key's shard.
func (f *Fanout) Touch(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	return f.Shard(key).Touch(ctx, key, ttl)
}

// IncrBy is [Store.IncrBy] on the key's shard.
func (f *Fanout) IncrBy(ctx context.Context, key string, delta int64) (int64, error) {
	return f.Shard(key).IncrBy(ctx, key, delta)
}

// Lease is [Store.Lease] on the key's shard.
func (f *Fanout) Lease(ctx context.Context, key string, ttl time.Duration) (func(context.Context) error, bool, error) {
	return f.Shard(key).Lease(ctx, key, ttl)
}

// Pop is [Store.Pop] on the key's shard.
func (f *Fanout) Pop(ctx context.Context, key string) ([]byte, error) {
	return f.Shard(key).Pop(ctx, key)
}

// Delete removes the keys from their shards and returns how many were live.
func (f *Fanout) Delete(ctx context.Context, keys ...string) (int, error) {
	total := 0
	for s, ks := range f.group(keys) {
		n, err := s.Delete(ctx, ks...)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// group splits keys by shard.
func (f *Fanout) group(keys []string) map[*Store][]string {
	m := make(map[*Store][]string)
	for _, k := range keys {
		s := f.Shard(k)
		m[s] = append(m[s], k)
	}
	return m
}

// GetMany reads the keys from their shards.
func (f *Fanout) GetMany(ctx context.Context, keys []string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(keys))
	for s, ks := range f.group(keys) {
		m, err := s.GetMany(ctx, ks)
		if err != nil {
			return nil, err
		}
		for k, v := range m {
			out[k] = v
		}
	}
	return out, nil
}

// SetMany writes the items to their shards, one transaction per shard
// (atomic per shard, not across shards).
func (f *Fanout) SetMany(ctx context.Context, items map[string][]byte, ttl time.Duration) error {
	per := make(map[*Store]map[string][]byte)
	for k, v := range items {
		s := f.Shard(k)
		if per[s] == nil {
			per[s] = make(map[string][]byte)
		}
		per[s][k] = v
	}
	for s, m := range per {
		if err := s.SetMany(ctx, m, ttl); err != nil {
			return err
		}
	}
	return nil
}

// each runs fn on every shard and joins the errors.
func (f *Fanout) each(fn func(*Store) error) error {
	var errs []error
	for _, s := range f.shards {
		if err := fn(s); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Clear clears every shard.
func (f *Fanout) Clear(ctx context.Context) error {
	return f.each(func(s *Store) error { return s.Clear(ctx) })
}

// sum runs a counting operation on every shard and adds the counts.
func (f *Fanout) sum(fn func(*Store) (int, error)) (int, error) {
	total := 0
	err := f.each(func(s *Store) error {
		n, err := fn(s)
		total += n
		return err
	})
	return total, err
}

// Len returns the number of live entries in all shards.
func (f *Fanout) Len(ctx context.Context) (int, error) {
	return f.sum(func(s *Store) (int, error) { return s.Len(ctx) })
}

// Expire removes expired entries from every shard.
func (f *Fanout) Expire(ctx context.Context) (int, error) {
	return f.sum(func(s *Store) (int, error) { return s.Expire(ctx) })
}

// Cull culls every shard.
func (f *Fanout) Cull(ctx context.Context) (int, error) {
	return f.sum(func(s *Store) (int, error) { return s.Cull(ctx) })
}

// Evict removes the entries with tag from every shard.
func (f *Fanout) Evict(ctx context.Context, tag string) (int, error) {
	return f.sum(func(s *Store) (int, error) { return s.Evict(ctx, tag) })
}

// Volume returns the total volume of the shards.
func (f *Fanout) Volume(ctx context.Context) (int64, error) {
	var total int64
	err := f.each(func(s *Store) error {
		v, err := s.Volume(ctx)
		total += v
		return err
	})
	return total, err
}

// Stats adds up the shards' counters.
func (f *Fanout) Stats() Stats {
	var st Stats
	for _, s := range f.shards {
		x := s.Stats()
		st.Hits += x.Hits
		st.Misses += x.Misses
		st.Evictions += x.Evictions
		st.Expirations += x.Expirations
	}
	return st
}

// Check checks every shard and returns one report per shard.
func (f *Fanout) Check(ctx context.Context, fix bool) ([]*CheckReport, error) {
	reps := make([]*CheckReport, len(f.shards))
	err := f.each(func(s *Store) error {
		rep, err := s.Check(ctx, fix)
		for i, x := range f.shards {
			if x == s {
				reps[i] = rep
			}
		}
		return err
	})
	return reps, err
}

// Close closes every shard.
func (f *Fanout) Close() error {
	return f.each(func(s *Store) error { return s.Close() })
}
