package disk

import (
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/cachekit/cachekit"
)

// Policy is the eviction policy applied when the cache exceeds its size
// limit.
type Policy int

// The eviction policies (DiskCache's names in parentheses).
const (
	// LeastRecentlyStored evicts the entries written longest ago
	// ("least-recently-stored", the default). Reads cost nothing extra.
	LeastRecentlyStored Policy = iota
	// LeastRecentlyUsed evicts the entries read or written longest ago
	// ("least-recently-used"). Reads are recorded in memory and written to
	// the database in batches with the next write, never in a read.
	LeastRecentlyUsed
	// LeastFrequentlyUsed evicts the entries read least often
	// ("least-frequently-used"), recorded like LeastRecentlyUsed.
	LeastFrequentlyUsed
	// NoEviction never evicts: the size limit is not enforced.
	NoEviction
)

// String returns DiskCache's name for the policy.
func (p Policy) String() string {
	switch p {
	case LeastRecentlyStored:
		return "least-recently-stored"
	case LeastRecentlyUsed:
		return "least-recently-used"
	case LeastFrequentlyUsed:
		return "least-frequently-used"
	case NoEviction:
		return "none"
	}
	return fmt.Sprintf("Policy(%d)", int(p))
}

// Defaults of [Options].
const (
	// DefaultSizeLimit is the size limit when Options.SizeLimit is zero:
	// 1 GiB, as DiskCache's. Past it the cache evicts (see Stats.Evictions).
	DefaultSizeLimit int64 = 1 << 30
	// DefaultCullLimit is how many entries one write may evict or expire.
	DefaultCullLimit = 10
	// DefaultMinFileSize is the size from which a value goes to a file of
	// its own instead of the database row.
	DefaultMinFileSize = 32 << 10
	// DefaultTimeout is how long an operation waits for other processes'
	// locks before failing with cachekit.ErrTimeout.
	DefaultTimeout = 60 * time.Second
	// DefaultDirMode and DefaultFileMode keep the cache private to its owner.
	DefaultDirMode  fs.FileMode = 0o700
	DefaultFileMode fs.FileMode = 0o600
)

// Options configures a [Store]. Only Dir is required; every other zero
// value means the documented default.
type Options struct {
	// Dir is the cache directory; it is created (with DirMode) if missing.
	// Several Stores, in one process or many, may share a directory.
	Dir string

	// Policy is the eviction policy. Default LeastRecentlyStored.
	Policy Policy

	// SizeLimit is a soft bound on the cache's volume in bytes (database
	// pages in use plus value files). Default [DefaultSizeLimit] (1 GiB);
	// negative means no limit. Every eviction is counted in Stats.
	SizeLimit int64

	// CullLimit bounds how many entries one write may remove (expired ones
	// first, then by policy). Default 10; negative disables culling on
	// writes (call Cull and Expire yourself).
	CullLimit int

	// MinFileSize is the value size from which values are kept in files.
	// Default 32 KiB.
	MinFileSize int

	// MaxValueSize, if positive, refuses larger values with
	// cachekit.ErrTooLarge. Default 0: no limit.
	MaxValueSize int64

	// Timeout bounds how long an operation waits for the database lock held
	// by other connections or processes. Default 60 s. Past it the
	// operation fails with an error wrapping cachekit.ErrTimeout.
	Timeout time.Duration

	// TagIndex creates an index on tags, which makes Evict(tag) fast at a
	// small cost on every tagged write.
	TagIndex bool

	// DirMode and FileMode are the permissions of created directories and
	// files. Defaults 0700 and 0600.
	DirMode, FileMode fs.FileMode

	// ResetCorrupt makes New move a damaged database aside (renamed with a
	// ".corrupt-<time>" suffix) and start an empty cache, instead of failing
	// with cachekit.ErrCorrupt.
	ResetCorrupt bool

	// Clock is the time source for expiry. Default cachekit.SystemClock.
	// Processes sharing a directory must agree on the time.
	Clock cachekit.Clock

	// L1Size, if positive, is the byte budget of an in-process cache of hot
	// entries in front of SQLite. It stays coherent with every other process
	// on the directory through a generation counter in a memory-mapped file
	// (cache.gen): a write anywhere empties the other processes' L1s before
	// the write's call returns. It pays off for read-mostly workloads.
	// Default 0: no L1. Unix only.
	L1Size int64

	// MmapSize is SQLite's memory-mapped I/O size. Default 64 MiB;
	// negative disables it.
	MmapSize int64
}

func (o *Options) normalize() error {
	if o.Dir == "" {
		return errors.New("disk: Options.Dir is required")
	}
	if o.Policy < LeastRecentlyStored || o.Policy > NoEviction {
		return fmt.Errorf("disk: unknown policy %d", o.Policy)
	}
	if o.MinFileSize < 0 || o.MaxValueSize < 0 || o.Timeout < 0 {
		return errors.New("disk: negative MinFileSize, MaxValueSize or Timeout")
	}
	if o.SizeLimit == 0 {
		o.SizeLimit = DefaultSizeLimit
	}
	if o.CullLimit == 0 {
		o.CullLimit = DefaultCullLimit
	}
	if o.MinFileSize == 0 {
		o.MinFileSize = DefaultMinFileSize
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.DirMode == 0 {
		o.DirMode = DefaultDirMode
	}
	if o.FileMode == 0 {
		o.FileMode = DefaultFileMode
	}
	if o.Clock == nil {
		o.Clock = cachekit.SystemClock{}
	}
	if o.MmapSize == 0 {
		o.MmapSize = 64 << 20
	}
	return nil
}

// SetOptions modifies one write of [Store.SetWith] and [Store.SetReader].
type SetOptions struct {
	// TTL as in cachekit.Store.Set: zero or cachekit.NoExpiry never
	// expires; negative deletes the key.
	TTL time.Duration
	// Tag labels the entry for [Store.Evict].
	Tag string
}
