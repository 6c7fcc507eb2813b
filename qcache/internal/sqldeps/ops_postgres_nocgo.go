//go:build !cgo

package sqldeps

func classifyPostgres(string) (Op, error) {
	return 0, unsupported("postgres: needs cgo")
}
