package sqlitedb

import "strings"

// escapePath makes a file path safe inside a "file:" URI: '?' and '#' would
// start the query or fragment, and '%' an escape.
func escapePath(p string) string {
	return strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(p)
}
