//go:build cgo && !cachekit_purego

package sqlitedb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"

	"github.com/mattn/go-sqlite3"
)

const driverName = "mattn"

// connector opens mattn connections with a hook that sets the pragmas the
// DSN cannot carry.
type connector struct {
	dsn string
	drv *sqlite3.SQLiteDriver
}

func (c *connector) Connect(context.Context) (driver.Conn, error) { return c.drv.Open(c.dsn) }
func (c *connector) Driver() driver.Driver                        { return c.drv }

func open(cfg Config) (*sql.DB, error) {
	q := url.Values{}
	q.Set("_busy_timeout", fmt.Sprint(cfg.BusyTimeout.Milliseconds()))
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "NORMAL")
	q.Set("_txlock", "immediate")
	// Reuse prepared statements per connection: parsing SQL costs several
	// microseconds, a noticeable share of a disk cache operation.
	q.Set("_stmt_cache_size", "64")
	if cfg.CacheSizeKiB > 0 {
		q.Set("_cache_size", fmt.Sprint(-cfg.CacheSizeKiB))
	}
	dsn := "file:" + escapePath(cfg.Path) + "?" + q.Encode()
	drv := &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
		if cfg.MmapSize > 0 {
			if _, err := c.Exec(fmt.Sprintf("PRAGMA mmap_size=%d", cfg.MmapSize), nil); err != nil {
				return err
			}
		}
		_, err := c.Exec("PRAGMA temp_store=MEMORY", nil)
		return err
	}}
	return sql.OpenDB(&connector{dsn: dsn, drv: drv}), nil
}

func resultCode(err error) (int, bool) {
	var e sqlite3.Error
	if errors.As(err, &e) {
		return int(e.Code), true
	}
	return 0, false
}
