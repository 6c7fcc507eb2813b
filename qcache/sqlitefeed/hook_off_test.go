//go:build !sqlite_preupdate_hook && cgo

package sqlitefeed

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/cachekit/cachekit/memory"
	"github.com/cachekit/cachekit/qcache"
)

func TestOpenWithoutHook(t *testing.T) {
	store, err := memory.NewStore(memory.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	p, err := qcache.NewGranularPolicy(qcache.GranularOptions{Store: store, Dialect: qcache.SQLite})
	if err != nil {
		t.Fatal(err)
	}
	db, err := Open("file:"+filepath.Join(t.TempDir(), "db.sqlite"), p, Options{})
	if !errors.Is(err, ErrNoPreUpdateHook) {
		t.Fatalf("Open: %v, %v; want ErrNoPreUpdateHook", db, err)
	}
}
