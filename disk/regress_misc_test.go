package disk

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// GetMany counts a miss twice when a file-backed value is gone: once in
// lookup, once as asked-len(out).
func TestRegressionGetManyDoubleMiss(t *testing.T) {
	s := newTestStore(t, Options{MinFileSize: 16})
	if err := s.Set(bg, "k", bytes.Repeat([]byte("x"), 64), 0); err != nil {
		t.Fatal(err)
	}
	var name string
	s.db.QueryRow(`SELECT filename FROM cache WHERE key='k'`).Scan(&name)
	os.Remove(filepath.Join(s.Dir(), filepath.FromSlash(name)))
	m, err := s.GetMany(bg, []string{"k"})
	if err != nil || len(m) != 0 {
		t.Fatal(m, err)
	}
	if st := s.Stats(); st.Misses != 1 {
		t.Fatalf("one key asked, one miss; Stats = %+v", st)
	}
}

// A stray key of queue shape makes Push fail forever (Index.Push skips it).
func TestRegressionPushMalformedKey(t *testing.T) {
	s := newTestStore(t, Options{})
	if err := s.Set(bg, "q-zzzzzzzzzzzzzzz", []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Push(bg, "q", []byte("v"), PushOptions{}); err != nil {
		t.Fatalf("Push: %v", err)
	}
}
