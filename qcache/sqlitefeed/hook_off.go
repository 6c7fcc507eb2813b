//go:build !sqlite_preupdate_hook || !cgo

package sqlitefeed

// hookSupported: mattn/go-sqlite3 has no pre-update hook in this build.
const hookSupported = false

// register does nothing: Open refuses to run without the hook.
func (fc *feedConn) register() {}
