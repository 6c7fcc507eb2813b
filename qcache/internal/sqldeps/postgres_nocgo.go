//go:build !cgo

package sqldeps

// Without cgo the PostgreSQL parser (pg_query_go, C code) is not
// available: every PostgreSQL statement is unsupported, so the query cache
// passes it through uncached and treats writes as touching unknown tables.
func analyzePostgres(string) (*Query, error) {
	return nil, unsupported("postgres: built without cgo, no parser")
}

// RewritePostgres needs the PostgreSQL parser: without cgo it returns an
// error wrapping ErrUnsupported.
func RewritePostgres(string, []string, int) (*Rewrite, error) {
	return nil, unsupported("postgres: built without cgo, no parser")
}
