//go:build sqlite_preupdate_hook && cgo

package sqlitefeed

import (
	"strings"

	"github.com/mattn/go-sqlite3"
)

// hookSupported: mattn/go-sqlite3 has the pre-update hook in this build.
const hookSupported = true

// register installs the connection's pre-update hook.
func (fc *feedConn) register() { fc.SQLiteConn.RegisterPreUpdateHook(fc.hook) }

// hook runs inside SQLite for every row a statement changes, before the
// change: it copies the row's old and new values (it must not call back
// into the connection).
func (fc *feedConn) hook(d sqlite3.SQLitePreUpdateData) {
	if strings.EqualFold(d.TableName, changeLogTable) {
		// The first columns are seq, ts and nonce. (mattn stores the
		// values in the slice passed, not through pointers in it.)
		vals := make([]any, 3)
		if d.Op == sqlite3.SQLITE_INSERT && d.New(vals...) == nil {
			n, ok := vals[2].(int64)
			if ok {
				fc.mu.Lock()
				fc.seqs = append(fc.seqs, logEntry{seq: d.NewRowID, nonce: n})
				fc.mu.Unlock()
			}
		}
		return
	}
	if len(d.TableName) >= 7 && strings.EqualFold(d.TableName[:7], "sqlite_") {
		return
	}
	k := tableKey{db: d.DatabaseName, table: d.TableName}
	n := d.Count()
	fc.mu.Lock()
	defer fc.mu.Unlock()
	tc := fc.changes[k]
	if tc == nil {
		tc = &tableChanges{width: n}
		fc.changes[k] = tc
	}
	if tc.coarse {
		return
	}
	if n != tc.width || len(tc.images)+2 > fc.c.opts.MaxImages {
		tc.coarse, tc.images = true, nil
		return
	}
	// The values are fresh copies (mattn copies text and blobs out of
	// SQLite's buffers).
	if d.Op != sqlite3.SQLITE_INSERT {
		old := make([]any, n)
		if err := d.Old(old...); err != nil {
			tc.coarse, tc.images = true, nil
			return
		}
		tc.images = append(tc.images, old)
	}
	if d.Op != sqlite3.SQLITE_DELETE {
		nw := make([]any, n)
		if err := d.New(nw...); err != nil {
			tc.coarse, tc.images = true, nil
			return
		}
		tc.images = append(tc.images, nw)
	}
}
