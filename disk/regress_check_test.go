package disk

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cachekit/cachekit"
)

// Check(fix) treats a value file older than 10 s as an orphan, but a writer
// writes its file before waiting (up to Options.Timeout, 60 s) for the
// lock. The file's age is simulated with Chtimes.
func TestRegressionCheckDeletesPendingWritersFile(t *testing.T) {
	dir := t.TempDir()
	a := newTestStore(t, Options{Dir: dir, MinFileSize: 16, CullLimit: -1})
	b := newTestStore(t, Options{Dir: dir, MinFileSize: 16, CullLimit: -1})
	c := newTestStore(t, Options{Dir: dir, MinFileSize: 16, CullLimit: -1})
	for round := range 20 {
		hold, held := make(chan struct{}), make(chan struct{})
		go a.Transact(bg, func(tx *Tx) error { close(held); <-hold; return nil })
		<-held
		var wg sync.WaitGroup
		wg.Add(2)
		var setErr error
		go func() { defer wg.Done(); setErr = b.Set(bg, "k", bytes.Repeat([]byte("v"), 64), 0) }()
		var pending string
		for pending == "" { // b's file is written; b now waits for the lock
			for _, f := range valueFiles(t, dir) {
				pending = f
			}
		}
		old := time.Now().Add(-11 * time.Second) // as if b had waited 11 s
		if err := os.Chtimes(filepath.Join(dir, filepath.FromSlash(pending)), old, old); err != nil {
			t.Fatal(err)
		}
		go func() { defer wg.Done(); c.Check(bg, true) }()
		time.Sleep(20 * time.Millisecond) // c is waiting for the lock too
		close(hold)
		wg.Wait()
		if setErr != nil {
			t.Fatal(setErr)
		}
		if _, err := a.Get(bg, "k"); errors.Is(err, cachekit.ErrMiss) {
			t.Fatalf("round %d: Set returned nil, but Check removed its value file: Get = %v", round, err)
		}
		a.Clear(bg)
	}
}
