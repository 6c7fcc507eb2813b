//go:build cgo

package sqldeps

const cgoEnabled = true
