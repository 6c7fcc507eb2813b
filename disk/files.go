package disk

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Value files: values of Options.MinFileSize bytes or more live in files
// named by 16 random bytes (never by the key, so a hostile key cannot reach
// outside the directory) under two levels of directories:
// <dir>/<2 hex>/<2 hex>/<28 hex>.val. A file is written completely before
// the transaction that references it, and unlinked only after the
// transaction that stops referencing it has committed.

const fileSuffix = ".val"

// errTorn reports a value file whose length differs from the length its row
// recorded: a write that did not finish. It reads as a miss.
var errTorn = errors.New("disk: value file is shorter or longer than recorded")

// files manages the value files of one cache directory.
type files struct {
	dir      string
	dirMode  fs.FileMode
	fileMode fs.FileMode
}

// newName returns a fresh relative file name.
func newName() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	h := hex.EncodeToString(b[:])
	return h[0:2] + "/" + h[2:4] + "/" + h[4:] + fileSuffix
}

// path returns the absolute path of a relative name from the database,
// refusing names that are not of our making.
func (f *files) path(name string) (string, error) {
	if !validName(name) {
		return "", fmt.Errorf("disk: invalid value file name %q", name)
	}
	return filepath.Join(f.dir, filepath.FromSlash(name)), nil
}

// validName reports whether name has the form newName produces.
func validName(name string) bool {
	if len(name) != 2+1+2+1+28+len(fileSuffix) || !strings.HasSuffix(name, fileSuffix) {
		return false
	}
	for i, c := range name[:len(name)-len(fileSuffix)] {
		switch {
		case i == 2 || i == 5:
			if c != '/' {
				return false
			}
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		default:
			return false
		}
	}
	return true
}

// write stores the contents of r in a new file and returns its name and
// size. maxSize, if positive, bounds the size: a larger input gives
// cachekit.ErrTooLarge (wrapped by the caller) and leaves no file.
func (f *files) write(r io.Reader, maxSize int64) (name string, size int64, err error) {
	name = newName()
	p, _ := f.path(name)
	var w *os.File
	for try := 0; ; try++ {
		if err := os.MkdirAll(filepath.Dir(p), f.dirMode); err != nil {
			return "", 0, err
		}
		w, err = os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.fileMode)
		// Check(fix) may remove the (empty) directory between the two
		// calls: make it again.
		if errors.Is(err, fs.ErrNotExist) && try < 3 {
			continue
		}
		if err != nil {
			return "", 0, err
		}
		break
	}
	src := r
	if maxSize > 0 {
		src = io.LimitReader(r, maxSize+1)
	}
	size, err = io.Copy(w, src)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err == nil && maxSize > 0 && size > maxSize {
		err = errTooLarge
	}
	if err != nil {
		os.Remove(p)
		return "", 0, err
	}
	return name, size, nil
}

// errTooLarge is turned into cachekit.ErrTooLarge by the store.
var errTooLarge = errors.New("value too large")

// read returns the contents of the named file, which must hold size bytes.
// A missing file gives an error wrapping fs.ErrNotExist; a file of another
// length gives errTorn.
func (f *files) read(name string, size int64) ([]byte, error) {
	r, err := f.open(name, size)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	buf := make([]byte, size)
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, errTorn
		}
		return nil, err
	}
	return buf, nil
}

// open opens the named file for reading after checking its length.
func (f *files) open(name string, size int64) (*os.File, error) {
	p, err := f.path(name)
	if err != nil {
		return nil, err
	}
	r, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	st, err := r.Stat()
	if err != nil {
		r.Close()
		return nil, err
	}
	if st.Size() != size {
		r.Close()
		return nil, errTorn
	}
	return r, nil
}

// remove unlinks the named files, ignoring those already gone.
func (f *files) remove(names ...string) {
	for _, name := range names {
		if p, err := f.path(name); err == nil {
			os.Remove(p)
		}
	}
}
