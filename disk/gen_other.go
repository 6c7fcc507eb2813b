//go:build !unix

package disk

import (
	"errors"
	"os"
)

// genFile needs shared memory mappings, which this build does not use.
type genFile struct{}

func openGen(string, os.FileMode) (*genFile, error) {
	return nil, errors.New("disk: the L1 tier needs a unix system")
}

func (*genFile) load() uint64 { return 0 }
func (*genFile) bump() uint64 { return 0 }
func (*genFile) close() error { return nil }

const l1Supported = false
