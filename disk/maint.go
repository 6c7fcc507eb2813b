package disk

import (
	"context"
	"database/sql"
	"math/rand/v2"
	"sync"
	"time"
)

// maxAccessRecords bounds the reads an LRU/LFU store remembers between
// writes; past it further reads are not recorded until the next write
// (the policy is approximate, memory stays bounded).
const maxAccessRecords = 4096

// volumeEvery is how many writes may pass between two measurements of the
// volume while the estimate is below the size limit.
const volumeEvery = 64

// maintenance does the bookkeeping that DiskCache does inside every write:
// recording accesses (LRU, LFU), removing expired entries and culling past
// the size limit. Reads only touch memory; the database work rides on
// writes, done by whichever writer finds it due (others skip it).
type maintenance struct {
	s *Store

	recording bool                 // the policy needs reads recorded (LRU, LFU); set by init
	accessMu  sync.Mutex           // protects access
	access    map[string]accessRec // reads not yet written

	mu         sync.Mutex // held by the writer doing maintenance; protects the rest
	writes     int        // writes since the volume was measured
	volume     int64      // last measured volume plus bytes written since
	nextExpire int64      // when expired entries are next looked for (Unix ns)
}

type accessRec struct {
	time  int64
	count int64
}

func (m *maintenance) init(s *Store) {
	m.s = s
	m.recording = s.opts.Policy == LeastRecentlyUsed || s.opts.Policy == LeastFrequentlyUsed
	m.access = make(map[string]accessRec)
}

// touched records a read of key; callers check m.recording first.
func (m *maintenance) touched(key string, now int64) {
	m.accessMu.Lock()
	if r, ok := m.access[key]; ok || len(m.access) < maxAccessRecords {
		r.time = max(r.time, now)
		r.count++
		m.access[key] = r
	}
	m.accessMu.Unlock()
}

// flush writes the recorded reads through q.
func (m *maintenance) flush(ctx context.Context, q execer) error {
	if !m.recording {
		return nil
	}
	m.accessMu.Lock()
	recs := m.access
	if len(recs) == 0 {
		m.accessMu.Unlock()
		return nil
	}
	m.access = make(map[string]accessRec, len(recs))
	m.accessMu.Unlock()
	for k, r := range recs {
		err := m.s.retry(ctx, func() error {
			_, err := q.ExecContext(ctx, `UPDATE cache SET access_time = max(access_time, :time), access_count = access_count + :count WHERE key = :key`,
				sql.Named("time", r.time), sql.Named("count", r.count), sql.Named("key", k))
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// wrote runs the maintenance due after a write of n bytes (n < 0:
// unknown), through q, skipping it when another writer is doing it.
// Errors are not the write's: maintenance is retried on later writes.
func (m *maintenance) wrote(ctx context.Context, q execer, n int64) {
	s := m.s
	if s.opts.CullLimit < 0 || !m.mu.TryLock() {
		return
	}
	defer m.mu.Unlock()
	_ = m.flush(ctx, q)
	now := s.now()
	budget := s.opts.CullLimit
	if now >= m.nextExpire {
		k, _ := s.cullExpired(ctx, q, now, budget)
		budget -= k
		if k < s.opts.CullLimit { // caught up: look again in a second
			m.nextExpire = now + int64(time.Second)
		}
	}
	if s.opts.SizeLimit < 0 || s.opts.Policy == NoEviction || budget <= 0 {
		return
	}
	m.writes++
	m.volume += max(n, 0)
	if m.volume < s.opts.SizeLimit && m.writes < volumeEvery {
		return
	}
	vol, err := s.measureVolume(ctx, q)
	if err != nil {
		return
	}
	m.volume, m.writes = vol, 0
	if vol >= s.opts.SizeLimit {
		_, _ = s.cullPolicy(ctx, q, budget)
	}
}

// cullExpired removes up to limit expired entries.
func (s *Store) cullExpired(ctx context.Context, q execer, now int64, limit int) (int, error) {
	n, err := s.deleteRows(ctx, q, `DELETE FROM cache WHERE rowid IN (SELECT rowid FROM cache
		WHERE expire_time IS NOT NULL AND expire_time <= :now ORDER BY expire_time LIMIT :limit) RETURNING filename`,
		[]any{sql.Named("now", now), sql.Named("limit", limit)})
	s.expirations.Add(uint64(n))
	return n, err
}

// evictSample is how many entries one eviction looks at.
const evictSample = 64

// cullPolicy evicts up to limit entries in the policy's order, sampled as
// Redis samples for its maxmemory policies: it reads a window of at least
// evictSample entries from a random point of the table and evicts the
// oldest (or least used) of them. Rows are in first-insertion order, so a
// window is a slice of the cache's history and the choice is close to
// exact; a whole cache smaller than the window is ordered exactly.
func (s *Store) cullPolicy(ctx context.Context, q execer, limit int) (int, error) {
	order, ok := policyOrder[s.opts.Policy]
	if !ok {
		return 0, nil
	}
	var lo, hi sql.NullInt64
	if err := q.QueryRowContext(ctx, `SELECT min(rowid), max(rowid) FROM cache`).Scan(&lo, &hi); err != nil || !lo.Valid {
		return 0, err
	}
	window := max(evictSample, 4*limit)
	start := lo.Int64
	if span := hi.Int64 - lo.Int64 + 1; span > int64(window) {
		start += rand.Int64N(span)
	}
	// The window wraps around to the table's start when it runs off its end.
	n, err := s.deleteRows(ctx, q, `DELETE FROM cache WHERE rowid IN (
		SELECT rowid FROM (
			SELECT rowid, `+order+` AS o FROM (SELECT rowid, `+order+` FROM cache WHERE rowid >= :start ORDER BY rowid LIMIT :window)
			UNION ALL
			SELECT rowid, `+order+` FROM (SELECT rowid, `+order+` FROM cache WHERE rowid < :start ORDER BY rowid LIMIT :window)
		) ORDER BY o LIMIT :limit) RETURNING filename`,
		[]any{sql.Named("start", start), sql.Named("window", window), sql.Named("limit", limit)})
	s.evictions.Add(uint64(n))
	return n, err
}

// measureVolume returns the bytes in use: database pages not on the free
// list, plus value files.
func (s *Store) measureVolume(ctx context.Context, q execer) (int64, error) {
	var pages, pageSize, fileBytes int64
	if err := s.retry(ctx, func() error { return q.QueryRowContext(ctx, sqlVolume).Scan(&pages, &pageSize, &fileBytes) }); err != nil {
		return 0, err
	}
	return pages*pageSize + fileBytes, nil
}

// Volume returns the cache's size on disk in bytes: the database pages in
// use plus the value files (DiskCache's volume()).
func (s *Store) Volume(ctx context.Context) (int64, error) {
	if err := s.begin(ctx, "volume", ""); err != nil {
		return 0, err
	}
	defer s.end()
	v, err := s.measureVolume(ctx, s.db)
	return v, s.classify("volume", "", err)
}

// Vacuum rebuilds the database file without its free pages, so that the
// space deleted entries left behind goes back to the file system (SQLite's
// VACUUM), then truncates the write-ahead log it went through. Deletions
// never shrink the file by themselves (auto_vacuum is off: it fragments the
// database). It runs alone among this Store's writes, holds the database's
// write lock meanwhile, and needs free disk space about the size of the
// database.
func (s *Store) Vacuum(ctx context.Context) error {
	if err := s.begin(ctx, "vacuum", ""); err != nil {
		return err
	}
	defer s.end()
	err := s.exclusive(ctx, func(ctx context.Context) error {
		for _, q := range []string{`VACUUM`, `PRAGMA wal_checkpoint(TRUNCATE)`} {
			if err := s.retry(ctx, func() error { _, err := s.wdb.ExecContext(ctx, q); return err }); err != nil {
				return err
			}
		}
		return nil
	})
	return s.classify("vacuum", "", err)
}

// Expire removes every expired entry and returns how many it removed.
func (s *Store) Expire(ctx context.Context) (int, error) {
	if err := s.begin(ctx, "expire", ""); err != nil {
		return 0, err
	}
	defer s.end()
	n, err := s.deleteWhere(ctx, "expire", `expire_time IS NOT NULL AND expire_time <= :now`, []any{sql.Named("now", s.now())})
	s.expirations.Add(uint64(n))
	return n, err
}

// Cull removes expired entries, then evicts by policy until the volume is
// below the size limit, and returns how many entries it removed.
func (s *Store) Cull(ctx context.Context) (int, error) {
	n, err := s.Expire(ctx)
	if err != nil || s.opts.SizeLimit < 0 || s.opts.Policy == NoEviction {
		return n, err
	}
	if err := s.begin(ctx, "cull", ""); err != nil {
		return n, err
	}
	defer s.end()
	if err := s.batched(ctx, func(ctx context.Context, q execer) error { return s.maint.flush(ctx, q) }); err != nil {
		return n, s.classify("cull", "", err)
	}
	for {
		vol, err := s.measureVolume(ctx, s.db)
		if err != nil {
			return n, s.classify("cull", "", err)
		}
		if vol < s.opts.SizeLimit {
			return n, nil
		}
		var k int
		err = s.batched(ctx, func(ctx context.Context, q execer) error {
			var err error
			k, err = s.cullPolicy(ctx, q, 100)
			return err
		})
		n += k
		if err != nil || k == 0 {
			return n, s.classify("cull", "", err)
		}
	}
}

// Evict removes every entry with the given tag and returns how many.
func (s *Store) Evict(ctx context.Context, tag string) (int, error) {
	if err := s.begin(ctx, "evict", ""); err != nil {
		return 0, err
	}
	defer s.end()
	return s.deleteWhere(ctx, "evict", `tag = :tag`, []any{sql.Named("tag", tag)})
}

// Len returns the number of live entries.
func (s *Store) Len(ctx context.Context) (int, error) {
	if err := s.begin(ctx, "len", ""); err != nil {
		return 0, err
	}
	defer s.end()
	var n int
	err := s.retry(ctx, func() error {
		return s.db.QueryRowContext(ctx, `SELECT count(*) FROM cache WHERE `+live, sql.Named("now", s.now())).Scan(&n)
	})
	return n, s.classify("len", "", err)
}

// Stats counts this Store's lookups and removals since it was opened.
type Stats struct {
	Hits, Misses uint64
	// Evictions counts entries removed to respect the size limit;
	// Expirations those removed because they expired.
	Evictions, Expirations uint64
}

// Stats returns this Store's counters (kept in memory: reads never write
// to the database for them).
func (s *Store) Stats() Stats {
	return Stats{Hits: s.hits.Load(), Misses: s.misses.Load(), Evictions: s.evictions.Load(), Expirations: s.expirations.Load()}
}
