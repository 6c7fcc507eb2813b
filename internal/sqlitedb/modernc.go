//go:build !cgo || cachekit_purego

package sqlitedb

import (
	"database/sql"
	"errors"
	"fmt"
	"net/url"

	"modernc.org/sqlite"
)

const driverName = "modernc"

func open(cfg Config) (*sql.DB, error) {
	q := url.Values{}
	// busy_timeout first: the pragmas after it may need to wait for a lock.
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", cfg.BusyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "temp_store(MEMORY)")
	if cfg.MmapSize > 0 {
		q.Add("_pragma", fmt.Sprintf("mmap_size(%d)", cfg.MmapSize))
	}
	if cfg.CacheSizeKiB > 0 {
		q.Add("_pragma", fmt.Sprintf("cache_size(%d)", -cfg.CacheSizeKiB))
	}
	q.Set("_txlock", "immediate")
	return sql.Open("sqlite", "file:"+escapePath(cfg.Path)+"?"+q.Encode())
}

func resultCode(err error) (int, bool) {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code(), true
	}
	return 0, false
}
