package disk

// Schema, version 1. One row per entry in table cache:
//
//	key          the store key (bound as TEXT; compared bytewise)
//	store_time   when the value was written (Unix ns)
//	expire_time  when it expires (Unix ns); NULL never
//	access_time  last recorded access (LRU), access_count reads (LFU)
//	tag          optional tag for Evict
//	size         bytes in the value file; 0 when the value is inline
//	filename     value file (relative name), NULL when inline
//	value        the inline value
//	prev_file    the file an overwrite replaced, returned by the upsert so
//	             the writer can unlink it after commit
//
// settings holds the schema version and the running total of value-file
// bytes (kept by triggers, for Volume). Every policy column is always
// maintained, so processes may use different policies on one directory.
const schemaVersion = 1

var schemaDDL = []string{
	`CREATE TABLE IF NOT EXISTS settings (
		key TEXT PRIMARY KEY NOT NULL,
		value INTEGER NOT NULL
	) WITHOUT ROWID`,
	`INSERT OR IGNORE INTO settings(key, value) VALUES ('schema_version', 1), ('size', 0)`,
	`CREATE TABLE IF NOT EXISTS cache (
		rowid INTEGER PRIMARY KEY,
		key BLOB NOT NULL UNIQUE,
		store_time INTEGER NOT NULL,
		expire_time INTEGER,
		access_time INTEGER NOT NULL,
		access_count INTEGER NOT NULL DEFAULT 0,
		tag BLOB,
		size INTEGER NOT NULL DEFAULT 0,
		filename TEXT,
		value BLOB,
		prev_file TEXT
	)`,
	`CREATE INDEX IF NOT EXISTS cache_expire_time ON cache(expire_time) WHERE expire_time IS NOT NULL`,
	`CREATE TRIGGER IF NOT EXISTS cache_size_insert AFTER INSERT ON cache WHEN NEW.size != 0 BEGIN
		UPDATE settings SET value = value + NEW.size WHERE key = 'size';
	END`,
	`CREATE TRIGGER IF NOT EXISTS cache_size_update AFTER UPDATE OF size ON cache WHEN NEW.size != OLD.size BEGIN
		UPDATE settings SET value = value + NEW.size - OLD.size WHERE key = 'size';
	END`,
	`CREATE TRIGGER IF NOT EXISTS cache_size_delete AFTER DELETE ON cache WHEN OLD.size != 0 BEGIN
		UPDATE settings SET value = value - OLD.size WHERE key = 'size';
	END`,
}

// policyOrder is the column each policy evicts by, smallest first. There is
// no index on them: keeping one costs every write about 11 µs (p50 31 µs
// against 20 µs for a 100-byte set here), so eviction samples instead (see
// cullPolicy).
var policyOrder = map[Policy]string{
	LeastRecentlyStored: "store_time",
	LeastRecentlyUsed:   "access_time",
	LeastFrequentlyUsed: "access_count",
}

const tagIndexDDL = `CREATE INDEX IF NOT EXISTS cache_tag_rowid ON cache(tag, rowid) WHERE tag IS NOT NULL`

// live is the condition of an entry that has not expired at ?now (named
// parameter :now).
const live = `(expire_time IS NULL OR expire_time > :now)`

const (
	sqlGet = `SELECT value, filename, size, expire_time FROM cache WHERE key = :key AND ` + live

	sqlUpsert = `INSERT INTO cache(key, store_time, expire_time, access_time, access_count, tag, size, filename, value)
		VALUES (:key, :now, :exp, :now, 0, :tag, :size, :file, :value)
		ON CONFLICT(key) DO UPDATE SET store_time = excluded.store_time, expire_time = excluded.expire_time,
			access_time = excluded.access_time, access_count = 0, tag = excluded.tag, size = excluded.size,
			prev_file = filename, filename = excluded.filename, value = excluded.value
		RETURNING prev_file`

	// sqlAdd is sqlUpsert that overwrites only an expired row; no row comes
	// back when a live one blocks it.
	sqlAdd = `INSERT INTO cache(key, store_time, expire_time, access_time, access_count, tag, size, filename, value)
		VALUES (:key, :now, :exp, :now, 0, :tag, :size, :file, :value)
		ON CONFLICT(key) DO UPDATE SET store_time = excluded.store_time, expire_time = excluded.expire_time,
			access_time = excluded.access_time, access_count = 0, tag = excluded.tag, size = excluded.size,
			prev_file = filename, filename = excluded.filename, value = excluded.value
		WHERE cache.expire_time IS NOT NULL AND cache.expire_time <= :now
		RETURNING prev_file`

	sqlDelete = `DELETE FROM cache WHERE key = :key RETURNING filename, ` + live

	sqlTouch = `UPDATE cache SET expire_time = :exp WHERE key = :key AND ` + live

	sqlVolume = `SELECT (SELECT page_count FROM pragma_page_count()) - (SELECT freelist_count FROM pragma_freelist_count()),
		(SELECT page_size FROM pragma_page_size()),
		(SELECT value FROM settings WHERE key = 'size')`
)
