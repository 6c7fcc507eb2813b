package qcache

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/qcache/internal/sqldeps"
)

// TableProfile says how the reads of one table are cached automatically,
// like an entry of django-cacheops' CACHEOPS setting. A policy given
// profiles (GranularOptions.Tables, TableOptions.Tables) caches a read
// automatically only when every table it reads has one; other reads are
// cached only under a context from [Cache].
type TableProfile struct {
	// TTL is the lifetime of the cached results of reads of the table; a
	// read of several tables takes the smallest TTL among them. A TTL set
	// with [WithTTL] or [Cache] wins. Default: the policy's TTL.
	TTL time.Duration

	// Lock takes the dog-pile lock across processes for reads of the table
	// (see GranularOptions.Lock); a read of several tables takes it when
	// one of them asks.
	Lock bool

	// Ops are the kinds of reads of the table cached automatically; a read
	// of several tables is automatic only when each of their profiles
	// allows its kind. Only a [GranularPolicy] classifies reads (it parses
	// them); [NewTablePolicy] rejects a profile with Ops. Default (0):
	// AllOps.
	Ops Ops
}

// Ops is a set of kinds of reads, like django-cacheops' operations. The
// kind of a SELECT is read from its outermost select list.
type Ops uint8

// The kinds of reads.
const (
	// OpFetch is a read of rows: any SELECT not of another kind (also
	// UNIONs and window functions).
	OpFetch Ops = 1 << iota
	// OpCount is a SELECT of a single count(...) without GROUP BY.
	OpCount
	// OpAggregate is another SELECT with an aggregate function in its
	// select list, a GROUP BY or a HAVING.
	OpAggregate
	// OpExists is a SELECT of a single EXISTS (...) without FROM, or of
	// constants only with LIMIT 1 (Django's exists()).
	OpExists

	// AllOps is every kind of read.
	AllOps = OpFetch | OpCount | OpAggregate | OpExists
)

// opOf returns the kind of a SELECT in dialect d; OpFetch when it cannot
// tell.
func opOf(d sqldeps.Dialect, sql string) Ops {
	op, err := sqldeps.Classify(d, sql)
	if err != nil {
		return OpFetch
	}
	switch op {
	case sqldeps.OpCount:
		return OpCount
	case sqldeps.OpAggregate:
		return OpAggregate
	case sqldeps.OpExists:
		return OpExists
	}
	return OpFetch
}

// DefaultLockWait is the default for GranularOptions.LockWait and
// TableOptions.LockWait.
const DefaultLockWait = 5 * time.Second

// readConfig is what both policies' options say about reads.
type readConfig struct {
	name       string // "GranularOptions" or "TableOptions", for errors
	classifies bool   // the policy can tell the Ops of a read
	store      cachekit.Store
	ttl        time.Duration // resolved default TTL
	tables     map[string]TableProfile
	lock       bool
	lockWait   time.Duration
	observer   Observer
}

// autoPlan is what the profiles say of the reads of a set of tables.
type autoPlan struct {
	auto bool          // cached without opting in
	ttl  time.Duration // smallest TTL of the tables' profiles; 0: none
	lock bool          // take the lease on a miss
}

// initReader validates and applies c.
func (r *reader) initReader(c readConfig) error {
	for t, pr := range c.tables {
		switch {
		case pr.TTL < 0:
			return fmt.Errorf("qcache: negative %s.Tables[%q].TTL %v", c.name, t, pr.TTL)
		case pr.Ops&^AllOps != 0:
			return fmt.Errorf("qcache: unknown %s.Tables[%q].Ops %#x", c.name, t, pr.Ops)
		case pr.Ops != 0 && pr.Ops != AllOps:
			if !c.classifies {
				return fmt.Errorf("qcache: %s.Tables[%q].Ops needs a GranularPolicy", c.name, t)
			}
			r.classify = true
		}
	}
	r.observer = c.observer
	r.ttl = c.ttl
	r.lock = c.lock
	r.lockWait = c.lockWait
	if r.lockWait == 0 {
		r.lockWait = DefaultLockWait
	}
	if c.tables != nil {
		r.profiles = maps.Clone(c.tables)
	}
	if l, ok := c.store.(cachekit.Leaser); ok {
		r.lease = l.Lease
	}
	r.flights = map[string]*flight{}
	return nil
}

// autoPlan resolves the profiles of tables (sorted, without duplicates)
// for a read of kind op.
func (r *reader) autoPlan(tables []string, op Ops) autoPlan {
	if r.profiles == nil {
		return autoPlan{auto: true, lock: r.lock}
	}
	ap := autoPlan{auto: len(tables) > 0, lock: r.lock}
	for _, t := range tables {
		pr, ok := r.profiles[t]
		if !ok || pr.Ops != 0 && pr.Ops&op == 0 {
			ap.auto = false
		}
		if !ok {
			continue
		}
		if pr.TTL > 0 && (ap.ttl == 0 || pr.TTL < ap.ttl) {
			ap.ttl = pr.TTL
		}
		ap.lock = ap.lock || pr.Lock
	}
	return ap
}

// plan decides whether a cacheable read is cached, for how long and with
// the lease, from the profiles of its tables (ap) and the controls of its
// context.
func (r *reader) plan(ctx context.Context, q Query, ap autoPlan) (ttl time.Duration, lock, ok bool) {
	opts, in := cacheOptionsOf(ctx)
	if !ap.auto && !in {
		return 0, false, false
	}
	ttl = q.TTL
	if ttl <= 0 {
		ttl = ap.ttl
	}
	if ttl <= 0 {
		ttl = r.ttl
	}
	return ttl, ap.lock || opts.Lock, true
}
