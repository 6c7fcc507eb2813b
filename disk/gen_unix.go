//go:build unix

package disk

import (
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// genFile is a 64-bit counter shared by every process that maps the same
// file: atomic operations on a MAP_SHARED page are seen by all of them.
type genFile struct {
	mem []byte
	ctr *atomic.Uint64
}

// genSize is the mapped length: one page holds the counter.
const genSize = 4096

func openGen(path string, mode os.FileMode) (*genFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, mode)
	if err != nil {
		return nil, fmt.Errorf("disk: open generation file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("disk: generation file: %w", err)
	}
	if st.Size() < genSize {
		// Growing a file with zeros is safe to race: every process writes
		// the same length and never shrinks it.
		if err := f.Truncate(genSize); err != nil {
			return nil, fmt.Errorf("disk: size generation file: %w", err)
		}
	}
	mem, err := syscall.Mmap(int(f.Fd()), 0, genSize, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("disk: map generation file: %w", err)
	}
	return &genFile{mem: mem, ctr: (*atomic.Uint64)(unsafe.Pointer(&mem[0]))}, nil
}

func (g *genFile) load() uint64 { return g.ctr.Load() }

// bump increments the counter and returns its previous value.
func (g *genFile) bump() uint64 { return g.ctr.Add(1) - 1 }

func (g *genFile) close() error { return syscall.Munmap(g.mem) }

const l1Supported = true
